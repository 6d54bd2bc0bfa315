package report

import (
	"encoding/json"
	"math"
	"net/netip"
	"strings"
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
	Vantage    CompareVantage `json:"vantage"`
	Target     string         `json:"target"`
	TargetName string         `json:"target_name,omitempty"`
	Family     string         `json:"family"` // "ipv4" or "ipv6"
	Time       *string        `json:"time"`   // when the latest part was measured; null when unknown
	Input      string         `json:"input"`  // file and result index
	// Instance is the identity (NSID, hostname.bind, id.server), or the
	// upstream address for traceroute-only data; null when unknown.
	Instance       *string          `json:"instance"`
	InstanceSource string           `json:"instance_source"` // "nsid", "hostname.bind", "id.server", "upstream" or ""
	Identity       *CompareIdentity `json:"identity"`
	Site           *SiteDTO         `json:"site"`
	Upstream       *UpstreamDTO     `json:"upstream"`
	ASPath         []uint32         `json:"as_path"`
	Traced         bool             `json:"traced"`
	Reached        bool             `json:"reached"`
	Hops           []CompareHop     `json:"hops"` // of the first traced flow
	DNSRTTMs       *float64         `json:"dns_rtt_ms"`
	PathRTTMs      *float64         `json:"path_rtt_ms"`
	Answers        []CompareAnswer  `json:"answers"`
	Suspicions     []string         `json:"suspicions"`
	Suspect        bool             `json:"suspect"`
	Timeouts       int              `json:"timeouts"`
	Errors         []string         `json:"errors"`
	FlowInstances  []FlowCount      `json:"flow_instances"`
	Split          bool             `json:"split"`
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
	DistanceKm float64 `json:"distance_km"`
	RTTMs      float64 `json:"rtt_ms"`
	MinRTTMs   float64 `json:"min_rtt_ms"`
	Impossible bool    `json:"impossible"` // the site lies farther than the RTT allows (beyond geo.SiteSlackKm)
}

// LocationDTO is where a vantage point is.
type LocationDTO struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
	// Approximate: the position stands for a country (Atlas placed the
	// probe from IP geolocation, or it sits on the country's centroid).
	Approximate bool `json:"approximate"`
}

// PlaceDTO is a place of the places table (an operator may also place a
// site at bare coordinates: no code, city or country then).
type PlaceDTO struct {
	Code    string  `json:"code,omitempty"` // IATA code
	City    string  `json:"city,omitempty"`
	Country string  `json:"country,omitempty"`
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
}

// LatencyDTO is a target's enumeration by latency (iGreedy): the least
// number of instances the RTTs prove, each placed at the most likely city
// inside its disk, next to the number of sites the names give.
type LatencyDTO struct {
	Instances []LatencyInstance `json:"instances"`
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
	VantageKey  string    `json:"vantage_key"` //
	RTTMs       float64   `json:"rtt_ms"`
	RadiusKm    float64   `json:"radius_km"`
	Place       *PlaceDTO `json:"place"`    // the most likely city in the disk; null when it holds none
	Vantages    int       `json:"vantages"` // vantage points whose disks hold the instance
	Approximate bool      `json:"approximate"`
}

// CatchmentKeyDTO is what a line counts for in the catchment.
type CatchmentKeyDTO struct {
	Kind  string  `json:"kind"`  // "site", "instance" or "upstream" (inferred from the path)
	Value string  `json:"value"` // site code, instance name, or the upstream hop's address
	AS    *uint32 `json:"as"`    // upstream: the upstream AS; null otherwise or when unknown
}

// ReasonDTO is why a line's answers are counted apart from the service's.
type ReasonDTO struct {
	Code string `json:"code"` // unlike_service, identity_mismatch, no_chaos_operator, faster_than_path
	Text string `json:"text"`
}

// CompareVantage is where a row was measured from.
type CompareVantage struct {
	Key     string         `json:"key"`
	Label   string         `json:"label"`
	ProbeID *int           `json:"probe_id"` // RIPE Atlas probe; null otherwise
	Source  *string        `json:"source"`
	Public  *string        `json:"public"`
	Origin  *VantageOrigin `json:"origin"` // null when not looked up
	// Location is where the vantage point is; null when unknown.
	Location *LocationDTO `json:"location"`
}

// VantageOrigin is the origin of a vantage's address.
type VantageOrigin struct {
	ASNs    []uint32 `json:"asns"`
	ASName  string   `json:"as_name,omitempty"`
	Country string   `json:"country,omitempty"`
}

// CompareIdentity is the identity strings a row's answers carried.
type CompareIdentity struct {
	NSID         string `json:"nsid,omitempty"`
	HostnameBind string `json:"hostname_bind,omitempty"`
	IDServer     string `json:"id_server,omitempty"`
}

// SiteDTO is a site hint from the site-hint table.
type SiteDTO struct {
	Operator string `json:"operator"`
	Site     string `json:"site"`
	// Place is where the site is; null when the name places it nowhere,
	// with Unplaced saying why.
	Place    *PlaceDTO `json:"place"`
	Unplaced string    `json:"unplaced,omitempty"`
}

// UpstreamDTO is where a path enters the service: the hop (TTL, address,
// its origin ASes and RTT) and the upstream AS before the service's.
type UpstreamDTO struct {
	TTL     int      `json:"ttl"`
	Address string   `json:"address"`
	ASNs    []uint32 `json:"asns"`
	RTTMs   *float64 `json:"rtt_ms"`
	// AS is the last AS before the service's origin AS; null when
	// unknown. ByOrigin is false when no origin AS told it apart and the
	// hop is the last responding hop before the target.
	AS       *uint32 `json:"as,omitempty"`
	ByOrigin bool    `json:"by_origin,omitempty"`
}

// CompareHop is one hop of a row's path.
type CompareHop struct {
	TTL        int                `json:"ttl"`
	Responders []CompareResponder `json:"responders"`
}

// CompareResponder is an address seen at a hop.
type CompareResponder struct {
	Address     string   `json:"address"`
	ASNs        []uint32 `json:"asns"`
	RTTMs       *float64 `json:"rtt_ms"`
	Unreachable string   `json:"unreachable,omitempty"`
}

// CompareAnswer is one identity answer of a row.
type CompareAnswer struct {
	Name       string   `json:"name"`
	Status     string   `json:"status"`
	RTTMs      *float64 `json:"rtt_ms"`
	TXT        []string `json:"txt"`
	NSID       string   `json:"nsid,omitempty"`
	Suspicions []string `json:"suspicions"`
	Detail     string   `json:"detail,omitempty"`
}

// FlowCount is how many flows reached an instance.
type FlowCount struct {
	Instance string `json:"instance"`
	Flows    int    `json:"flows"`
}

// CompareSummary is the catchment summary of a compare document.
type CompareSummary struct {
	Inputs    []CompareInput  `json:"inputs"`
	Targets   []CompareTarget `json:"targets"`
	DualStack []DualStackDTO  `json:"dual_stack"`
	PathsPart []PartingDTO    `json:"paths_part"`
	Changes   []ChangeDTO     `json:"changes"`
	// Diff is set for `compare --before A --after B`.
	Diff *DiffDTO `json:"diff,omitempty"`
}

// CompareInput is one file read.
type CompareInput struct {
	Name    string `json:"name"`
	Side    string `json:"side,omitempty"` // "before" or "after" in a diff
	Format  string `json:"format"`         // "anycheck", "atlas json array", …
	Results int    `json:"results"`        // results read
	Skipped int    `json:"skipped"`        // results (or documents) skipped with a warning
}

// CompareTarget is the catchment of one target address.
type CompareTarget struct {
	Target   string   `json:"target"`
	Names    []string `json:"names"`
	Family   string   `json:"family"`
	Vantages int      `json:"vantages"`
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
	Apart          []ApartDTO `json:"apart"`
	UnknownReasons []CountDTO `json:"unknown_reasons"`
	ErrorReasons   []CountDTO `json:"error_reasons"`
	// Latency is the enumeration by latency; null when no line has a
	// position and an RTT.
	Latency *LatencyDTO `json:"latency"`
}

// ShareDTO is one catchment key's share of a target's catchment.
type ShareDTO struct {
	Instance    string      `json:"instance"` // the key's value: site code, instance name or upstream hop
	Source      string      `json:"source"`   // the key's kind: "site", "instance" or "upstream"
	Site        *SiteDTO    `json:"site"`
	UpstreamAS  *uint32     `json:"upstream_as"` // upstream keys: the upstream AS; null otherwise
	Members     []FlowCount `json:"members"`     // the instances counted under the key, by vantage points ("flows")
	Vantages    int         `json:"vantages"`
	Share       float64     `json:"share"`
	ASNs        []uint32    `json:"asns"`
	Countries   []string    `json:"countries"`
	MedianRTTMs *float64    `json:"median_rtt_ms"`
}

// ServiceDTO is what a target answers most vantage points.
type ServiceDTO struct {
	Replied      int        `json:"replied"`
	Identified   int        `json:"identified"`
	Judged       bool       `json:"judged"`
	NotJudged    string     `json:"not_judged,omitempty"`
	NoIdentity   string     `json:"no_identity,omitempty"`
	Traits       []TraitDTO `json:"traits"`
	Traced       int        `json:"traced"`
	Reached      int        `json:"reached"`
	PathInferred bool       `json:"path_inferred"`
}

// TraitDTO is one property of the service's answers.
type TraitDTO struct {
	Query  string  `json:"query"`
	Name   string  `json:"name"` // reply, ra, class, ttl, name
	Value  string  `json:"value"`
	Share  float64 `json:"share"`
	Of     int     `json:"of"`
	Judged bool    `json:"judged"`
}

// SplitDTO is the vantage points of one AS split by flow.
type SplitDTO struct {
	AS        *uint32     `json:"as"`
	Vantages  []string    `json:"vantages"`
	Instances []FlowCount `json:"instances"`
}

// ApartDTO is the answers counted apart from the service's, from one AS.
type ApartDTO struct {
	AS         *uint32     `json:"as"`
	Vantages   []string    `json:"vantages"`
	Identities []FlowCount `json:"identities"` // what they named, by vantage points ("flows")
	Reasons    []CountDTO  `json:"reasons"`
}

// CountDTO is how many lines share one reason.
type CountDTO struct {
	What  string `json:"what"`
	Count int    `json:"count"`
}

// DualStackDTO is a vantage whose IPv4 and IPv6 reach different instances.
type DualStackDTO struct {
	Vantage    string     `json:"vantage"`
	VantageKey string     `json:"vantage_key"`
	IPv4       FamilySide `json:"ipv4"`
	IPv6       FamilySide `json:"ipv6"`
	SameSite   bool       `json:"same_site"`
}

// FamilySide is one family's side of a dual-stack divergence.
type FamilySide struct {
	Target   string   `json:"target"`
	Instance string   `json:"instance"`
	Site     *SiteDTO `json:"site"`
}

// PartingDTO is where paths of one origin AS part towards different instances.
type PartingDTO struct {
	Target   string     `json:"target"`
	OriginAS uint32     `json:"origin_as"`
	Common   []uint32   `json:"common"`
	Sides    []PartSide `json:"sides"`
}

// PartSide is one instance's side of a parting.
type PartSide struct {
	Instance string       `json:"instance"`
	Vantages []string     `json:"vantages"`
	ASPath   []uint32     `json:"as_path"`
	AS       *uint32      `json:"as"`  // first AS after the common part; null when the path ends there
	Hop      *UpstreamDTO `json:"hop"` // first hop in that AS
}

// ChangeDTO is a line whose instance or upstream changed over a periodic
// measurement.
type ChangeDTO struct {
	Vantage string     `json:"vantage"`
	Target  string     `json:"target"`
	Kind    string     `json:"kind"` // "instance" or "upstream"
	Events  []EventDTO `json:"events"`
	// EventsOmitted counts earlier changes not kept (a line keeps its
	// latest catchment.MaxChanges).
	EventsOmitted int `json:"events_omitted"`
}

// EventDTO is one switch.
type EventDTO struct {
	Time *string `json:"time"`
	From string  `json:"from"`
	To   string  `json:"to"`
}

// DiffDTO is the difference between two runs.
type DiffDTO struct {
	Moves []MoveDTO `json:"moves"`
}

// MoveDTO is one line that changed between the runs.
type MoveDTO struct {
	Vantage         string     `json:"vantage"`
	VantageKey      string     `json:"vantage_key"`
	Target          string     `json:"target"`
	Family          string     `json:"family"`
	Kind            string     `json:"kind"` // moved, flows, upstream, lost, found, gone, new
	Before          *MoveState `json:"before"`
	After           *MoveState `json:"after"`
	InstanceChanged bool       `json:"instance_changed"`
	UpstreamChanged bool       `json:"upstream_changed"`
	SameSite        bool       `json:"same_site,omitempty"`
}

// MoveState is one run's side of a move.
type MoveState struct {
	Instance       *string      `json:"instance"`
	InstanceSource string       `json:"instance_source"`
	Upstream       *UpstreamDTO `json:"upstream"`
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

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
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
	if h.Operator == "" {
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
// its CompareRow, hops included, converted only when it is written: a
// document of 10,000 traced rows never holds every converted row (and its
// hops) at once. Row is the same row without hops, for the text, CSV and
// dot renderings.
type CompareLine struct{ row *catchment.Row }

// MarshalJSON writes the line as its CompareRow.
func (l CompareLine) MarshalJSON() ([]byte, error) { return json.Marshal(FromRow(*l.row, true)) }

// Row is the line's CompareRow without its hops.
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

// FromRow converts one catchment-table row; with hops, the hops of its
// first traced flow.
func FromRow(r catchment.Row, hops bool) CompareRow {
	v := r.Vantage
	c := CompareRow{
		Vantage: CompareVantage{Key: v.Key, Label: v.Label, Source: optAddr(v.Source), Public: optAddr(v.Public)},
		Target:  r.Target.String(), TargetName: r.TargetName, Family: r.Family().String(),
		Time: optTime(r.Time), Input: r.Input,
		Instance: optStr(r.Instance), InstanceSource: r.InstanceSource,
		Site: siteDTO(r.Site), Upstream: upstreamDTO(r.Upstream), ASPath: nonNil(r.ASPath),
		Traced: r.Traced, Reached: r.Reached, Hops: []CompareHop{},
		DNSRTTMs: optMs(r.DNSRTT), PathRTTMs: optMs(r.PathRTT),
		Answers: []CompareAnswer{}, Suspicions: []string{}, Suspect: r.Suspect(),
		Timeouts: r.Timeouts, Errors: nonNil(r.Errors), FlowInstances: flowCounts(r.FlowInstances), Split: r.Split,
		Catchment: keyDTO(r.Catchment), Apart: []ReasonDTO{}, Hints: []string{},
		Light: lightDTO(r.Light),
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
	if id := r.Identity; id.NSID != "" || id.HostnameBind != "" || id.IDServer != "" {
		c.Identity = &CompareIdentity{NSID: id.NSID, HostnameBind: id.HostnameBind, IDServer: id.IDServer}
	}
	for _, f := range r.Flows {
		if !hops || len(f.Hops) == 0 {
			continue
		}
		c.Hops = make([]CompareHop, 0, len(f.Hops))
		for _, h := range f.Hops {
			ch := CompareHop{TTL: h.TTL, Responders: make([]CompareResponder, 0, len(h.Responders))}
			for _, x := range h.Responders {
				ch.Responders = append(ch.Responders, CompareResponder{Address: x.Addr.String(), ASNs: nonNil(x.ASNs), RTTMs: optMs(x.RTT), Unreachable: x.Unreachable})
			}
			c.Hops = append(c.Hops, ch)
		}
		break
	}
	for _, a := range r.Answers {
		ca := CompareAnswer{Name: strings.TrimSuffix(a.Name, "."), Status: string(a.Status), RTTMs: optMs(a.RTT), TXT: nonNil(a.TXT), NSID: measure.DecodeNSID(a.NSID), Suspicions: []string{}, Detail: a.Detail}
		if ca.Status == "" {
			ca.Status = "error"
		}
		for _, s := range a.Suspicions {
			ca.Suspicions = append(ca.Suspicions, string(s))
		}
		c.Answers = append(c.Answers, ca)
	}
	for _, s := range r.Suspicions() {
		c.Suspicions = append(c.Suspicions, string(s))
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
		m := &MoveState{Instance: optStr(r.Instance), InstanceSource: r.InstanceSource, Upstream: upstreamDTO(r.Upstream)}
		if r.Split {
			m.FlowInstances = flowCounts(r.FlowInstances)
		}
		if r.Suspect() {
			m.Instance, m.InstanceSource = nil, ""
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
