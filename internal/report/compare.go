package report

import (
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/measure"
)

// KindCompare is the document of `anycheck compare`: results are the
// catchment table's rows, Catchment the summary.
const KindCompare = "compare"

// CompareRow is one line of the catchment table: one vantage × target.
type CompareRow struct {
	Vantage CompareVantage `json:"vantage"` // where the line was measured from
	// Input is the target as it was measured: the name given, else the
	// address.
	Input    string  `json:"input"`
	Target   string  `json:"target" schema:"ip"`             // the address
	Family   string  `json:"family" schema:"enum=ipv4|ipv6"` // "ipv4" or "ipv6"
	Time     *string `json:"time" schema:"time"`             // when the latest part was measured; null when unknown
	ReadFrom string  `json:"read_from"`                      // the file and result index the line was read from
	// Instance is what the service said it is (the identity, or the
	// instance most of a sweep's flows reached), with its site; its name
	// is null when none (a traceroute-only line counts by its upstream:
	// see Catchment).
	Instance InstanceDTO `json:"instance"`
	// Flows are the line's flows: the DNS queries' flow (when its answers
	// came over none of the others) and every traced flow, each with its
	// instance, answers and path.
	Flows    []CompareFlow `json:"flows"`
	Upstream *UpstreamDTO  `json:"upstream"` // where the first traced flow entered the service; null when not traced
	ASPath   []uint32      `json:"as_path"`  // the first traced flow's origin ASes; empty when not traced or not looked up
	Traced   bool          `json:"traced"`   // a flow of the line was traced
	Reached  bool          `json:"reached"`  // a traced flow reached the target
	// DNSRTTMs is the least RTT of the line's DNS answers; null without
	// one.
	DNSRTTMs *float64 `json:"dns_rtt_ms"`
	// PathRTTMs is the least RTT of the target's replies on the traced
	// flows; null when none reached it.
	PathRTTMs *float64 `json:"path_rtt_ms"`
	// Suspicions are the codes of apart (the judgements) and of hints
	// (the answers' flags), for a quick filter.
	Suspicions []string `json:"suspicions" schema:"ref=suspicion"`
	// Suspect is set when the line is counted apart from the service
	// (apart is not empty).
	Suspect  bool     `json:"suspect"`
	Timeouts int      `json:"timeouts"` // queries of the line that timed out
	Errors   []string `json:"errors"`   // what went wrong on the line (untrusted text from the inputs is escaped in text output)
	// FlowInstances are the instances the line's flows reached, by flow
	// count; one entry when it is not split.
	FlowInstances []FlowCount `json:"flow_instances"`
	// Split is set when the line's flows reached different instances:
	// its catchment depends on the flow (source port).
	Split bool `json:"split"`
	// Catchment is the key the line counts for: its site, else its
	// instance, else the upstream hop of its path (inferred); null when
	// the line is counted apart, split by flow, or names nothing.
	Catchment *CatchmentKeyDTO `json:"catchment"`
	// Apart says how the line's answers differ from the service's; empty
	// when they are taken as the service's.
	Apart []ReasonDTO `json:"apart"`
	// Hints are the answers' own flags, not judged (see the target's
	// service).
	Hints []string `json:"hints"`
	// Light is the speed-of-light check of the line's answer against the
	// place of the site it names; null when it cannot be made (no place
	// for the vantage or the site, an approximate vantage, no RTT).
	Light *LightDTO `json:"light"`
}

// LightDTO is a speed-of-light check: the vantage-to-site distance, the
// RTT measured and the least RTT light in fibre allows over it.
type LightDTO struct {
	DistanceKm float64 `json:"distance_km"` // from the vantage point to the site
	RTTMs      float64 `json:"rtt_ms"`      // the RTT measured
	MinRTTMs   float64 `json:"min_rtt_ms"`  // the least RTT light in fibre needs over that distance and back
	Impossible bool    `json:"impossible"`  // the site lies farther than the RTT allows (beyond geo.SiteSlackKm)
}

// LocationDTO is where a vantage point is.
type LocationDTO struct {
	Lat float64 `json:"lat" schema:"min=-90,max=90"`   // latitude, degrees north
	Lon float64 `json:"lon" schema:"min=-180,max=180"` // longitude, degrees east
	// Approximate: the position stands for a country (Atlas placed the
	// probe from IP geolocation, or it sits on the country's centroid).
	Approximate bool `json:"approximate"`
}

// PlaceDTO is a place of the places table (an operator may also place a
// site at bare coordinates: no code, city or country then).
type PlaceDTO struct {
	Code    string  `json:"code,omitempty"`    // IATA code
	City    string  `json:"city,omitempty"`    // the city's name
	Country string  `json:"country,omitempty"` // ISO 3166 country code
	Lat     float64 `json:"lat"`               // latitude, degrees north
	Lon     float64 `json:"lon"`               // longitude, degrees east
}

// LatencyDTO is a target's enumeration by latency (iGreedy): the least
// number of instances the RTTs prove, each placed at the most likely city
// inside its disk, next to the number of sites the names give.
type LatencyDTO struct {
	Instances []LatencyInstance `json:"instances"`   // the instances the RTTs prove
	Used      int               `json:"used"`        // lines with a position and an RTT of the service
	BadRTT    int               `json:"bad_rtt"`     // lines whose RTT was unusable (above 10 s): ignored
	NoPlace   int               `json:"no_location"` // lines with an RTT but no position: ignored
	// Named is how many sites (or instances, where a name places none)
	// the identities name; 0 when the service gives no identity.
	Named int `json:"named"`
	// Approximate counts the instances whose proving vantage point has an
	// approximate position.
	Approximate int `json:"approximate"`
}

// LatencyInstance is one instance the RTTs prove.
type LatencyInstance struct {
	Vantage     string    `json:"vantage"`     // the vantage point whose disk proves it (its label)
	VantageKey  string    `json:"vantage_key"` // its key (as in a row's vantage.key)
	RTTMs       float64   `json:"rtt_ms"`      // its RTT to the service
	RadiusKm    float64   `json:"radius_km"`   // how far light in fibre gets in half that RTT: the disk's radius
	Place       *PlaceDTO `json:"place"`       // the most likely city in the disk; null when it holds none
	Vantages    int       `json:"vantages"`    // vantage points whose disks hold the instance
	Approximate bool      `json:"approximate"` // the proving vantage point's position is approximate
}

// CatchmentKeyDTO is what a line counts for in the catchment.
type CatchmentKeyDTO struct {
	Kind  string  `json:"kind" schema:"enum=site|instance|upstream"` // "site", "instance" or "upstream" (inferred from the path)
	Value string  `json:"value"`                                     // site code, instance name, or the upstream hop's address
	AS    *uint32 `json:"as"`                                        // upstream: the upstream AS; null otherwise or when unknown
}

// ReasonDTO is why a line's answers are counted apart from the service's.
type ReasonDTO struct {
	Code string `json:"code" schema:"ref=suspicion"` // unlike_service, identity_mismatch, no_chaos_operator, faster_than_path, faster_than_light
	Text string `json:"text"`                        // the reason in words, with the figures behind it
}

// CompareVantage is where a row was measured from.
type CompareVantage struct {
	// Key names the vantage point across files and runs: atlas:PROBE for
	// a RIPE Atlas probe, host:… for an anycheck document (its label or
	// host name and addresses), census:PREFIX for a census line.
	Key     string `json:"key"`
	Label   string `json:"label"`                   // how the text output names it
	ProbeID *int   `json:"probe_id" schema:"min=1"` // RIPE Atlas probe; null otherwise
	// Source is the address the measurements left from; null when
	// unknown.
	Source *string `json:"source" schema:"ip"`
	// Public is the vantage point's public address when it differs from
	// its source (an Atlas probe behind NAT); null otherwise.
	Public *string        `json:"public" schema:"ip"`
	Origin *VantageOrigin `json:"origin"` // null when not looked up
	// Location is where the vantage point is; null when unknown.
	Location *LocationDTO `json:"location"`
}

// VantageOrigin is the origin of a vantage's address.
type VantageOrigin struct {
	ASNs    []uint32 `json:"asns"`              // the origin ASes of its address
	ASName  string   `json:"as_name,omitempty"` // the first one's name (untrusted)
	Country string   `json:"country,omitempty"` // its country code (the probe's, for Atlas)
}

// CompareFlow is one flow of a catchment-table line.
type CompareFlow struct {
	Flow     FlowDTO      `json:"flow"`     // the flow's 5-tuple, as far as the input says
	Instance InstanceDTO  `json:"instance"` // what the flow's answers named
	Answers  []AnswerDTO  `json:"answers"`  // the DNS answers that came over the flow
	Path     *ComparePath `json:"path"`     // null for a flow that was not traced
}

// ComparePath is a traced flow's path as compare read it.
type ComparePath struct {
	Reached bool         `json:"reached"` // the target answered on it
	Hops    []CompareHop `json:"hops"`    // one per TTL that was probed
}

// SiteDTO is a site hint from the site-hint table.
type SiteDTO struct {
	// Operator is whose naming the site hint matched (the site-hint
	// table's operator); "" when the site is a bare IATA code, as the
	// service names most of its instances (no operator of the table).
	Operator string `json:"operator"`
	Site     string `json:"site"` // the site code the name carries (an IATA or UN/LOCODE code, or the operator's own)
	// Place is where the site is; null when the name places it nowhere,
	// with Unplaced saying why.
	Place    *PlaceDTO `json:"place"`
	Unplaced string    `json:"unplaced,omitempty"` // why the site has no place
}

// UpstreamDTO is where a path enters the service: the hop (TTL, address,
// its origin ASes and RTT) and the upstream AS before the service's.
type UpstreamDTO struct {
	TTL     int      `json:"ttl"`                 // the hop's TTL
	Address string   `json:"address" schema:"ip"` // the hop's address
	ASNs    []uint32 `json:"asns"`                // the hop's origin ASes; empty when not looked up
	RTTMs   *float64 `json:"rtt_ms"`              // the least RTT of its replies; null when unknown
	// AS is the last AS before the service's origin AS; null when
	// unknown.
	AS     *uint32 `json:"as"`
	ASName string  `json:"as_name,omitempty"` // the upstream AS's name, when the lookup gave one (untrusted)
	// ByOrigin is true when the service's origin AS told where the path
	// enters it (the hop is the first in that AS before the target);
	// false when the hop is the last responding hop before the target.
	ByOrigin bool `json:"by_origin"`
}

// CompareHop is one hop of a row's path.
type CompareHop struct {
	TTL        int                `json:"ttl" schema:"min=0,max=255"` // the TTL
	Responders []CompareResponder `json:"responders"`                 // the addresses that answered at it; empty when silent
}

// CompareResponder is an address seen at a hop.
type CompareResponder struct {
	Address string   `json:"address" schema:"ip"` // the address
	ASNs    []uint32 `json:"asns"`                // its origin ASes; empty when not looked up
	RTTMs   *float64 `json:"rtt_ms"`              // its least RTT; null when unknown
	// Unreachable is the ICMP unreachable it sent instead of passing the
	// probe on ("!X", "!H", …); absent otherwise.
	Unreachable string `json:"unreachable,omitempty"`
}

// FlowCount is how many flows reached an instance.
type FlowCount struct {
	Instance string `json:"instance"` // the instance's name
	Flows    int    `json:"flows"`    // flows (or vantage points) that reached it
}

// CompareSummary is the catchment summary of a compare document.
type CompareSummary struct {
	Inputs  []CompareInput  `json:"inputs"`  // the files read
	Targets []CompareTarget `json:"targets"` // the catchment of each target address
	// DualStack are the vantage points whose IPv4 and IPv6 reach
	// different instances.
	DualStack []DualStackDTO `json:"dual_stack"`
	// PathsPart are the places where paths from one AS part towards
	// different instances.
	PathsPart []PartingDTO `json:"paths_part"`
	// Changes are the lines whose instance or upstream changed over a
	// periodic measurement.
	Changes []ChangeDTO `json:"changes"`
	// Diff is set for `compare --before A --after B`.
	Diff *DiffDTO `json:"diff,omitempty"`
}

// CompareInput is one file read.
type CompareInput struct {
	Name    string `json:"name"`                                      // the file name
	Side    string `json:"side,omitempty" schema:"enum=before|after"` // "before" or "after" in a diff
	Format  string `json:"format"`                                    // "anycheck", "atlas json array", …
	Results int    `json:"results"`                                   // results read
	Skipped int    `json:"skipped"`                                   // results (or documents) skipped with a warning
}

// CompareTarget is the catchment of one target address.
type CompareTarget struct {
	Target   string   `json:"target" schema:"ip"`             // the address
	Names    []string `json:"names"`                          // the names it was measured as
	Family   string   `json:"family" schema:"enum=ipv4|ipv6"` // "ipv4" or "ipv6"
	Vantages int      `json:"vantages"`                       // vantage points (lines) towards it
	// Instances are the catchment by key (site, instance or upstream),
	// by vantage count.
	Instances []ShareDTO `json:"instances"`
	Suspect   int        `json:"suspect"` // lines counted apart (not from the service)
	Unknown   int        `json:"unknown"` // lines naming nothing
	Errors    int        `json:"errors"`  // lines with errors or timeouts
	// Service is what the target answers most vantage points.
	Service ServiceDTO `json:"service"`
	// Split are the vantage points split by flow, by AS.
	Split []SplitDTO `json:"split"`
	// Apart are the answers not from the service, by the vantage's AS.
	Apart []ApartDTO `json:"apart"`
	// UnknownReasons are why lines name nothing, by count.
	UnknownReasons []CountDTO `json:"unknown_reasons"`
	// ErrorReasons are the lines' errors, by count.
	ErrorReasons []CountDTO `json:"error_reasons"`
	// Latency is the enumeration by latency; null when no line has a
	// position and an RTT.
	Latency *LatencyDTO `json:"latency"`
}

// ShareDTO is one catchment key's share of a target's catchment.
type ShareDTO struct {
	Instance    string      `json:"value"`                                     // the key's value: site code, instance name or upstream hop
	Source      string      `json:"kind" schema:"enum=site|instance|upstream"` // the key's kind: "site", "instance" or "upstream"
	Site        *SiteDTO    `json:"site"`                                      // the site, for site keys; null otherwise
	UpstreamAS  *uint32     `json:"upstream_as"`                               // upstream keys: the upstream AS; null otherwise
	Members     []FlowCount `json:"members"`                                   // the instances counted under the key, by vantage points ("flows")
	Vantages    int         `json:"vantages"`                                  // vantage points in it
	Share       float64     `json:"share" schema:"min=0,max=1"`                // of the target's vantage points in the catchment
	ASNs        []uint32    `json:"asns"`                                      // the vantage points' ASes, most first
	Countries   []string    `json:"countries"`                                 // their countries, most first
	MedianRTTMs *float64    `json:"median_rtt_ms"`                             // their median RTT to the service; null without RTTs
}

// ServiceDTO is what a target answers most vantage points.
type ServiceDTO struct {
	Replied    int `json:"replied"`    // lines with a DNS reply
	Identified int `json:"identified"` // lines whose answers named an instance
	// Judged is set when the population was large and uniform enough to
	// judge lines "unlike the service" by its traits.
	Judged bool `json:"judged"`
	// NotJudged says why not, when judged is false (too few vantage
	// points, or no trait shared by most).
	NotJudged string `json:"not_judged,omitempty"`
	// NoIdentity says that the service names no instance to most vantage
	// points (refused CHAOS, or answers without TXT), and what it does
	// instead; absent otherwise.
	NoIdentity string     `json:"no_identity,omitempty"`
	Traits     []TraitDTO `json:"traits"`  // what most of its replies share
	Traced     int        `json:"traced"`  // lines with a traced flow
	Reached    int        `json:"reached"` // of those, lines whose trace reached the target
	// PathInferred is set when no trace reached the target: the
	// catchment is inferred from where paths enter the service.
	PathInferred bool `json:"path_inferred"`
}

// TraitDTO is one property of the service's answers.
type TraitDTO struct {
	Query  string  `json:"query"`                                      // the query name it is about ("hostname.bind")
	Name   string  `json:"name" schema:"enum=reply|ra|class|ttl|name"` // reply, ra, class, ttl, name
	Value  string  `json:"value"`                                      // the most common value ("answered", "true", "CH", "0", the naming)
	Share  float64 `json:"share" schema:"min=0,max=1"`                 // of the replies that have it
	Of     int     `json:"of"`                                         // replies counted
	Judged bool    `json:"judged"`                                     // share is high enough to judge lines by it
}

// SplitDTO is the vantage points of one AS split by flow.
type SplitDTO struct {
	AS        *uint32     `json:"as"`        // the AS; null when unknown
	Vantages  []string    `json:"vantages"`  // the split vantage points' labels
	Instances []FlowCount `json:"instances"` // the instances their flows reached
}

// ApartDTO is the answers counted apart from the service's, from one AS.
type ApartDTO struct {
	AS         *uint32     `json:"as"`         // the AS; null when unknown
	Vantages   []string    `json:"vantages"`   // the vantage points' labels
	Identities []FlowCount `json:"identities"` // what they named, by vantage points ("flows")
	Reasons    []CountDTO  `json:"reasons"`    // why, by count
}

// CountDTO is how many lines share one reason.
type CountDTO struct {
	What  string `json:"what"`                 // the reason
	Count int    `json:"count" schema:"min=1"` // lines with it
}

// DualStackDTO is a vantage whose IPv4 and IPv6 reach different instances.
type DualStackDTO struct {
	Vantage    string     `json:"vantage"`     // its label
	VantageKey string     `json:"vantage_key"` // its key
	IPv4       FamilySide `json:"ipv4"`        // where its IPv4 goes
	IPv6       FamilySide `json:"ipv6"`        // where its IPv6 goes
	// SameSite is set when the two instances are at one site (their
	// names place them there): different servers, same place.
	SameSite bool `json:"same_site"`
}

// FamilySide is one family's side of a dual-stack divergence.
type FamilySide struct {
	Target   string   `json:"target" schema:"ip"` // the family's service address
	Instance string   `json:"instance"`           // the instance reached
	Site     *SiteDTO `json:"site"`               // its site; null when its name places none
}

// PartingDTO is where paths of one origin AS part towards different instances.
type PartingDTO struct {
	Target   string     `json:"target" schema:"ip"` // the service address
	OriginAS uint32     `json:"origin_as"`          // the vantage points' AS
	Common   []uint32   `json:"common"`             // the AS path both sides share
	Sides    []PartSide `json:"sides"`              // where each side goes after it
}

// PartSide is one instance's side of a parting.
type PartSide struct {
	Instance string       `json:"instance"` // the instance (or catchment key) the side reaches
	Vantages []string     `json:"vantages"` // the vantage points on it
	ASPath   []uint32     `json:"as_path"`  // their AS path
	AS       *uint32      `json:"as"`       // first AS after the common part; null when the path ends there
	Hop      *UpstreamDTO `json:"hop"`      // first hop in that AS
}

// ChangeDTO is a line whose instance or upstream changed over a periodic
// measurement.
type ChangeDTO struct {
	Vantage string     `json:"vantage"`                              // the vantage point's label
	Target  string     `json:"target" schema:"ip"`                   // the address
	Kind    string     `json:"kind" schema:"enum=instance|upstream"` // "instance" or "upstream"
	Events  []EventDTO `json:"events"`                               // the changes, oldest first
	// EventsOmitted counts earlier changes not kept (a line keeps its
	// latest catchment.MaxChanges).
	EventsOmitted int `json:"events_omitted"`
}

// EventDTO is one switch.
type EventDTO struct {
	Time *string `json:"time" schema:"time"` // when; null when the result was undated
	From string  `json:"from"`               // the instance (or upstream address) before
	To   string  `json:"to"`                 // after
}

// DiffDTO is the difference between two runs.
type DiffDTO struct {
	Moves []MoveDTO `json:"moves"` // the lines that changed
}

// MoveDTO is one line that changed between the runs.
type MoveDTO struct {
	Vantage    string `json:"vantage"`                        // the vantage point's label
	VantageKey string `json:"vantage_key"`                    // its key
	Target     string `json:"target" schema:"ip"`             // the address
	Family     string `json:"family" schema:"enum=ipv4|ipv6"` // "ipv4" or "ipv6"
	// Kind is the change: moved (another instance), flows (its flows
	// spread differently), upstream (same instance, another upstream),
	// lost (it named an instance and no longer does), found (the
	// reverse), gone (not measured after), new (not measured before).
	Kind            string     `json:"kind" schema:"enum=moved|flows|upstream|lost|found|gone|new"`
	Before          *MoveState `json:"before"`              // the line before; null when new
	After           *MoveState `json:"after"`               // the line after; null when gone
	InstanceChanged bool       `json:"instance_changed"`    // its instance differs
	UpstreamChanged bool       `json:"upstream_changed"`    // its upstream differs
	SameSite        bool       `json:"same_site,omitempty"` // the two instances are at one site
}

// MoveState is one run's side of a move.
type MoveState struct {
	// Instance is what the line's answers named; its name is null when
	// they named none, or were not the service's (counted apart).
	Instance InstanceDTO  `json:"instance"`
	Upstream *UpstreamDTO `json:"upstream"` // where its path entered the service; null when not traced
	// FlowInstances are the instances its flows reached when it was split.
	FlowInstances []FlowCount `json:"flow_instances,omitempty"`
}

func optMs(d time.Duration) *float64 {
	if d <= 0 {
		return nil
	}
	v := Ms(d)
	return &v
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := Time(t)
	return &s
}

func optAddr(a netip.Addr) *string {
	if !a.IsValid() {
		return nil
	}
	s := a.String()
	return &s
}

func siteDTO(h catchment.SiteHint) *SiteDTO {
	if h.Site == "" {
		return nil
	}
	return &SiteDTO{Operator: h.Operator, Site: h.Site, Place: placeDTO(h.Place), Unplaced: h.Unplaced}
}

func placeDTO(p geo.Place) *PlaceDTO {
	if !p.Valid() {
		return nil
	}
	return &PlaceDTO{Code: p.Code, City: p.City, Country: p.Country, Lat: p.Lat, Lon: p.Lon}
}

func round(v float64, places int) float64 {
	f := math.Pow(10, float64(places))
	return math.Round(v*f) / f
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func lightDTO(l *geo.Light) *LightDTO {
	if l == nil {
		return nil
	}
	return &LightDTO{DistanceKm: round(l.DistanceKm, 1), RTTMs: ms(l.RTT), MinRTTMs: ms(l.MinRTT), Impossible: l.Impossible}
}

// latencyDTO converts a target's enumeration; rows are the report's rows.
func latencyDTO(l catchment.Latency, rows []catchment.Row) *LatencyDTO {
	d := &LatencyDTO{Instances: []LatencyInstance{}, Used: l.Used, BadRTT: l.BadRTT, NoPlace: l.NoPlace, Named: l.Named, Approximate: l.Approximate}
	for _, in := range l.Instances {
		r := &rows[l.Rows[in.Sample]]
		d.Instances = append(d.Instances, LatencyInstance{Vantage: r.Vantage.Label, VantageKey: r.Vantage.Key,
			RTTMs: ms(catchment.LatencyRTT(r)), RadiusKm: round(in.RadiusKm, 1), Place: placeDTO(in.Place),
			Vantages: len(in.Vantages), Approximate: in.Approximate})
	}
	return d
}

func upstreamDTO(u *catchment.Upstream) *UpstreamDTO {
	if u == nil {
		return nil
	}
	return &UpstreamDTO{TTL: u.TTL, Address: u.Addr.String(), ASNs: nonNil(u.ASNs), RTTMs: optMs(u.RTT), AS: optAS(u.AS), ByOrigin: u.ByOrigin}
}

func optAS(as uint32) *uint32 {
	if as == 0 {
		return nil
	}
	return &as
}

func keyDTO(k catchment.CatchmentKey) *CatchmentKeyDTO {
	if !k.Valid() {
		return nil
	}
	return &CatchmentKeyDTO{Kind: string(k.Kind), Value: k.Value, AS: optAS(k.AS)}
}

func countsDTO(cs []catchment.Count) []CountDTO {
	out := make([]CountDTO, 0, len(cs))
	for _, c := range cs {
		out = append(out, CountDTO{What: c.What, Count: c.N})
	}
	return out
}

func flowCounts(cs []catchment.InstanceCount) []FlowCount {
	out := make([]FlowCount, 0, len(cs))
	for _, c := range cs {
		out = append(out, FlowCount{Instance: c.Instance, Flows: c.Count})
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// CompareLine is one catchment-table row on its way out. In JSON it is
// its CompareRow, flows (answers and hops) included, converted only when
// it is written: a document of 10,000 traced rows never holds every
// converted row (and its hops) at once. Row is the same row without its
// flows, for the renderings.
type CompareLine struct{ row *catchment.Row }

// MarshalJSON writes the line as its CompareRow.
func (l CompareLine) MarshalJSON() ([]byte, error) { return json.Marshal(FromRow(*l.row, true)) }

// Row is the line's CompareRow without its flows.
func (l CompareLine) Row() CompareRow { return FromRow(*l.row, false) }

// Label names the line in JSONL records: vantage and target.
func (l CompareLine) Label() string { return l.row.Vantage.Label + " " + l.row.Target.String() }

// CompareRows is the rows of lines, without hops.
func CompareRows(lines []CompareLine) []CompareRow {
	rows := make([]CompareRow, len(lines))
	for i, l := range lines {
		rows[i] = l.Row()
	}
	return rows
}

// rowInstance is the instance object of a catchment line.
func rowInstance(r catchment.Row) InstanceDTO {
	return FromIdentity(measure.Identity{Instance: r.Instance, Source: r.InstanceSource, NSID: r.Identity.NSID,
		NSIDHex: r.Identity.NSIDHex, HostnameBind: r.Identity.HostnameBind, IDServer: r.Identity.IDServer,
		VersionBind: r.Identity.VersionBind, VersionServer: r.Identity.VersionServer, Disagree: r.Identity.Disagree}, r.Site)
}

// FromRow converts one catchment-table row; with flows, its flows (their
// answers and paths: what -o json writes; the renderings need neither).
func FromRow(r catchment.Row, flows bool) CompareRow {
	v := r.Vantage
	c := CompareRow{
		Vantage: CompareVantage{Key: v.Key, Label: v.Label, Source: optAddr(v.Source), Public: optAddr(v.Public)},
		Input:   r.Target.String(), Target: r.Target.String(), Family: r.Family().String(),
		Time: optTime(r.Time), ReadFrom: r.Input,
		Instance: rowInstance(r),
		Flows:    []CompareFlow{}, Upstream: upstreamDTO(r.Upstream), ASPath: nonNil(r.ASPath),
		Traced: r.Traced, Reached: r.Reached,
		DNSRTTMs: optMs(r.DNSRTT), PathRTTMs: optMs(r.PathRTT),
		Suspicions: []string{}, Suspect: r.Suspect(),
		Timeouts: r.Timeouts, Errors: nonNil(r.Errors), FlowInstances: flowCounts(r.FlowInstances), Split: r.Split,
		Catchment: keyDTO(r.Catchment), Apart: []ReasonDTO{}, Hints: []string{},
		Light: lightDTO(r.Light),
	}
	if r.TargetName != "" {
		c.Input = r.TargetName
	}
	if v.Location.Valid() {
		c.Vantage.Location = &LocationDTO{Lat: v.Location.Lat, Lon: v.Location.Lon, Approximate: v.LocationApproximate}
	}
	for _, x := range r.Apart {
		c.Apart = append(c.Apart, ReasonDTO{Code: string(x.Code), Text: x.Text})
	}
	for _, h := range r.Hints {
		c.Hints = append(c.Hints, string(h))
	}
	if v.ProbeID > 0 {
		id := v.ProbeID
		c.Vantage.ProbeID = &id
	}
	if o := v.Origin; len(o.ASNs) > 0 || o.Country != "" {
		c.Vantage.Origin = &VantageOrigin{ASNs: nonNil(o.ASNs), ASName: o.ASName, Country: o.Country}
	}
	for _, s := range r.Suspicions() {
		c.Suspicions = append(c.Suspicions, string(s))
	}
	if !flows {
		return c
	}
	// The answers' own flow, when they came over none of the traced ones.
	carried := slices.ContainsFunc(r.Flows, func(f catchment.Flow) bool { return len(f.Answers) > 0 })
	if len(r.Answers) > 0 && !carried {
		f := CompareFlow{Flow: flowOf("udp", r.DNSSource, netip.AddrPortFrom(r.Target, 53)), Instance: c.Instance, Answers: make([]AnswerDTO, 0, len(r.Answers))}
		if !r.DNSSource.IsValid() && r.Vantage.Source.IsValid() {
			f.Flow.Src = OptString(r.Vantage.Source.String())
		}
		for _, a := range r.Answers {
			f.Answers = append(f.Answers, FromAnswer(a))
		}
		if len(r.Flows) > 0 {
			// A line whose answers and flows were measured apart (an
			// Atlas DNS result and a traceroute): the answers named the
			// line's instance.
			f.Instance = FromIdentity(r.Identity, r.Site)
		}
		c.Flows = append(c.Flows, f)
	}
	for _, f := range r.Flows {
		cf := CompareFlow{Flow: flowOf(f.Proto, f.Source, netip.AddrPortFrom(r.Target, f.Dport)), Answers: make([]AnswerDTO, 0, len(f.Answers))}
		if f.Source.Port() == 0 && f.Source.Addr().IsValid() && !f.Source.Addr().IsUnspecified() {
			cf.Flow.Src = OptString(f.Source.Addr().String())
		}
		if f.Identity.Instance != "" {
			h := r.Site
			if f.Identity.Instance != r.Instance {
				h = catchment.SiteHint{}
			}
			cf.Instance = FromIdentity(f.Identity, h)
		}
		for _, a := range f.Answers {
			cf.Answers = append(cf.Answers, FromAnswer(a))
		}
		if len(f.Hops) > 0 {
			cf.Path = &ComparePath{Reached: f.Reached, Hops: make([]CompareHop, 0, len(f.Hops))}
			for _, h := range f.Hops {
				ch := CompareHop{TTL: h.TTL, Responders: make([]CompareResponder, 0, len(h.Responders))}
				for _, x := range h.Responders {
					ch.Responders = append(ch.Responders, CompareResponder{Address: x.Addr.String(), ASNs: nonNil(x.ASNs), RTTMs: optMs(x.RTT), Unreachable: x.Unreachable})
				}
				cf.Path.Hops = append(cf.Path.Hops, ch)
			}
		}
		c.Flows = append(c.Flows, cf)
	}
	return c
}

// FromCatchment builds the lines and the summary of a compare document.
func FromCatchment(rep catchment.Report, changes []catchment.Change, inputs []CompareInput) ([]CompareLine, *CompareSummary) {
	rows := make([]CompareLine, len(rep.Rows))
	for i := range rep.Rows {
		rows[i] = CompareLine{&rep.Rows[i]}
	}
	s := &CompareSummary{Inputs: nonNil(inputs), Targets: []CompareTarget{}, DualStack: []DualStackDTO{}, PathsPart: []PartingDTO{}, Changes: []ChangeDTO{}}
	for _, t := range rep.Targets {
		ct := targetDTO(t)
		for _, l := range rep.Latency {
			if l.Target == t.Target {
				ct.Latency = latencyDTO(l, rep.Rows)
			}
		}
		s.Targets = append(s.Targets, ct)
	}
	for _, d := range rep.DualStack {
		s.DualStack = append(s.DualStack, DualStackDTO{Vantage: d.Vantage.Label, VantageKey: d.Vantage.Key,
			IPv4:     FamilySide{Target: d.IPv4.Target.String(), Instance: d.IPv4.Instance, Site: siteDTO(d.IPv4.Site)},
			IPv6:     FamilySide{Target: d.IPv6.Target.String(), Instance: d.IPv6.Instance, Site: siteDTO(d.IPv6.Site)},
			SameSite: d.SameSite})
	}
	for _, p := range rep.Partings {
		pd := PartingDTO{Target: p.Target.String(), OriginAS: p.OriginAS, Common: nonNil(p.Common)}
		for _, side := range []catchment.PartSide{p.A, p.B} {
			ps := PartSide{Instance: side.Instance, Vantages: nonNil(side.Vantages), ASPath: nonNil(side.ASPath), Hop: upstreamDTO(side.Hop)}
			if side.AS != 0 {
				as := side.AS
				ps.AS = &as
			}
			pd.Sides = append(pd.Sides, ps)
		}
		s.PathsPart = append(s.PathsPart, pd)
	}
	for _, c := range changes {
		cd := ChangeDTO{Vantage: c.Vantage, Target: c.Target.String(), Kind: c.Kind, Events: []EventDTO{}, EventsOmitted: c.EventsOmitted}
		for _, e := range c.Events {
			cd.Events = append(cd.Events, EventDTO{Time: optTime(e.Time), From: e.From, To: e.To})
		}
		s.Changes = append(s.Changes, cd)
	}
	return rows, s
}

func targetDTO(t catchment.TargetSummary) CompareTarget {
	ct := CompareTarget{Target: t.Target.String(), Names: nonNil(t.Names), Family: catchment.FamilyOf(t.Target).String(),
		Vantages: t.Vantages, Instances: []ShareDTO{}, Errors: t.ErrorLines,
		Split: []SplitDTO{}, Apart: []ApartDTO{}, UnknownReasons: countsDTO(t.Unknown), ErrorReasons: countsDTO(t.Errors)}
	for _, sh := range t.Keys {
		d := ShareDTO{Instance: sh.Key.Value, Source: string(sh.Key.Kind), Members: flowCounts(sh.Instances),
			Vantages: sh.Vantages, Share: float64(int(sh.Share*10000+0.5)) / 10000, ASNs: nonNil(sh.ASNs),
			Countries: nonNil(sh.Countries), MedianRTTMs: optMs(sh.MedianRTT), UpstreamAS: optAS(sh.Key.AS)}
		if sh.Key.Kind == catchment.KeySite {
			d.Site = siteDTO(sh.Site)
		}
		ct.Instances = append(ct.Instances, d)
	}
	for _, u := range t.Unknown {
		ct.Unknown += u.N
	}
	for _, g := range t.Split {
		ct.Split = append(ct.Split, SplitDTO{AS: optAS(g.AS), Vantages: nonNil(g.Vantages), Instances: flowCounts(g.Instances)})
	}
	for _, g := range t.Apart {
		ct.Suspect += len(g.Vantages)
		ct.Apart = append(ct.Apart, ApartDTO{AS: optAS(g.AS), Vantages: nonNil(g.Vantages), Identities: flowCounts(g.Identities), Reasons: countsDTO(g.Reasons)})
	}
	svc := t.Service
	ct.Service = ServiceDTO{Replied: svc.Replied, Identified: svc.Identified, Judged: svc.Judged, NotJudged: svc.NotJudged,
		NoIdentity: svc.NoIdentity, Traits: []TraitDTO{}, Traced: svc.Traced, Reached: svc.Reached, PathInferred: svc.PathInferred}
	for _, tr := range svc.Traits {
		ct.Service.Traits = append(ct.Service.Traits, TraitDTO{Query: tr.Query, Name: tr.Name, Value: tr.Value,
			Share: float64(int(tr.Share*10000+0.5)) / 10000, Of: tr.Of, Judged: tr.Judged})
	}
	return ct
}

// FromMoves converts the diff of two runs.
func FromMoves(moves []catchment.Move) *DiffDTO {
	d := &DiffDTO{Moves: []MoveDTO{}}
	state := func(r *catchment.Row) *MoveState {
		if r == nil {
			return nil
		}
		m := &MoveState{Instance: rowInstance(*r), Upstream: upstreamDTO(r.Upstream)}
		if r.Split {
			m.FlowInstances = flowCounts(r.FlowInstances)
		}
		if r.Suspect() {
			m.Instance = InstanceDTO{}
		}
		return m
	}
	for _, m := range moves {
		d.Moves = append(d.Moves, MoveDTO{Vantage: m.Vantage.Label, VantageKey: m.Vantage.Key, Target: m.Target.String(),
			Family: catchment.FamilyOf(m.Target).String(), Kind: m.Kind, Before: state(m.Before), After: state(m.After),
			InstanceChanged: m.InstanceChanged, UpstreamChanged: m.UpstreamChanged, SameSite: m.SameSite})
	}
	return d
}
