package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/census"
	"github.com/anycheck/anycheck/whois"
)

// Kinds of the census commands' documents.
const (
	// KindCensus is the catchment seen from the instances (`census logs`,
	// `census report`): results are CensusClient rows, the document's
	// census field the CensusSummary.
	KindCensus = "census"
	// KindCensusSend is a census sender's record (`census send`): results
	// are CensusSent, the summary CensusSendSummary.
	KindCensusSend = "census-send"
	// KindCensusListen is a listener's record (`census listen`): results
	// are CensusReply, the summary CensusListenSummary.
	KindCensusListen = "census-listen"
)

// JSONL record types of the census streams.
const (
	RecordSent  = "sent"  // census-send: one echo request
	RecordReply = "reply" // census-listen: one echo reply received
)

// CensusClient is one client prefix of a census: the instances (sites)
// its queries (replies) reached.
type CensusClient struct {
	Prefix string `json:"prefix" schema:"prefix"` // the client prefix (--prefix-len)
	// Sample is one address seen in the prefix (passive) or the target the
	// census sent to (active).
	Sample  string        `json:"sample" schema:"ip"`
	Family  string        `json:"family" schema:"enum=IPv4|IPv6"` // "IPv4" or "IPv6"
	Origin  *CensusOrigin `json:"origin"`                         // null when not looked up or unknown
	Queries uint64        `json:"queries"`                        // its queries (passive) or replies (active) counted
	// Instance is where most of its queries went (its catchment); null
	// for an unresponsive target of an active census.
	Instance  *string          `json:"instance"`
	Instances []CensusInstance `json:"instances"` // every instance it reached, most queries first
	// Split: its queries reached several instances at the same time.
	Split       bool         `json:"split"`
	SplitMs     float64      `json:"split_ms"`               // the time it spent split
	Runs        []CensusRun  `json:"runs"`                   // its timeline when it moved or was split, else []
	Moves       []CensusMove `json:"moves"`                  // changes between runs, oldest first
	DroppedRuns int          `json:"dropped_runs,omitempty"` // earlier runs not kept
	Distance    *CensusRange `json:"distance,omitempty"`     // how far it is from its instance and from the nearest one
}

// CensusOrigin is a client prefix's origin, from the ASN source.
type CensusOrigin struct {
	ASNs    []uint32 `json:"asns"`                   // the prefix's origin ASes
	Prefix  *string  `json:"prefix" schema:"prefix"` // the announced prefix holding it; null when unknown
	ASName  string   `json:"as_name"`                // the first origin AS's name (untrusted)
	Country string   `json:"country"`                // the registry's country code
}

// CensusInstance is one client's queries at one instance.
type CensusInstance struct {
	Name    string `json:"name"`                // the instance
	Queries uint64 `json:"queries"`             // the client's queries there
	First   string `json:"first" schema:"time"` // the first of them
	Last    string `json:"last" schema:"time"`  // the last
}

// CensusRun is a stretch of a client's queries at one instance, or at
// several at the same time (split).
type CensusRun struct {
	Instances []string `json:"instances"`           // the instance, or the instances of a split
	First     string   `json:"first" schema:"time"` // its first query
	Last      string   `json:"last" schema:"time"`  // its last query
	Queries   uint64   `json:"queries"`             // its queries
}

// CensusMove is a change of instance: last query at the old instance
// (left), first at the new (arrived), and how long the client had stayed.
type CensusMove struct {
	From     []string `json:"from"`                  // the instances before
	To       []string `json:"to"`                    // after
	Left     string   `json:"left" schema:"time"`    // the last query at the old instance
	Arrived  string   `json:"arrived" schema:"time"` // the first at the new one
	StayedMs float64  `json:"stayed_ms"`             // how long it had stayed at the old one
}

// CensusRange is a client's distance to the instance it reached and to
// the nearest instance, in km, when both places are known.
type CensusRange struct {
	InstanceKm float64 `json:"instance_km"` // to the instance it reached
	NearestKm  float64 `json:"nearest_km"`  // to the nearest instance
	Nearest    string  `json:"nearest"`     // which that is
}

// CensusSummary is the census document's summary.
type CensusSummary struct {
	Method        string                  `json:"method" schema:"enum=passive|active"` // "passive" or "active"
	Start         *string                 `json:"start" schema:"time"`                 // first query (reply); null without any
	End           *string                 `json:"end" schema:"time"`                   // last query (reply); null without any
	PrefixLen     CensusPrefixLen         `json:"prefix_len"`                          // how clients were grouped
	SplitWindowMs *float64                `json:"split_window_ms"`                     // passive only: queries this close at different instances are a split
	Queries       uint64                  `json:"queries"`                             // queries (replies) counted
	Clients       int                     `json:"clients"`                             // with queries
	Late          uint64                  `json:"late"`                                // queries older than the newest of their client by more than the window: not ordered in
	Instances     []CensusInstanceSummary `json:"instances"`                           // each instance's share
	Affinity      CensusAffinity          `json:"affinity"`                            // how clients kept to their instances
	// Inputs are the logs (passive) or files (active) read.
	Inputs []CensusInput `json:"inputs"`
	// Services are the addresses the clients' queries were sent to
	// (passive), or the anycast address of an active census: the target
	// whose catchment this is.
	Services []string `json:"services"`
	// Census is an active census's id (16 hex digits).
	Census *string `json:"census_id,omitempty"`
	// Sender is an active census's sending site.
	Sender       *string `json:"sender,omitempty"`
	Targets      int     `json:"targets,omitempty"`      // target prefixes sent to
	Unresponsive int     `json:"unresponsive,omitempty"` // of those, without a reply
	Elsewhere    uint64  `json:"elsewhere,omitempty"`    // replies from another address than the target
}

// CensusPrefixLen is how clients were grouped.
type CensusPrefixLen struct {
	IPv4 int `json:"ipv4" schema:"min=0,max=32"`  // IPv4 prefix length
	IPv6 int `json:"ipv6" schema:"min=0,max=128"` // IPv6 prefix length
}

// CensusInstanceSummary is one instance's share of the census.
type CensusInstanceSummary struct {
	Name       string  `json:"name"`        // the instance
	Queries    uint64  `json:"queries"`     // queries it got
	QueryShare float64 `json:"query_share"` // of all queries
	// Clients were seen there at all; MainClients had most of their
	// queries there, and ClientShare is their share of all clients.
	Clients     int           `json:"clients"`
	MainClients int           `json:"main_clients"`          // clients with most of their queries there
	ClientShare float64       `json:"client_share"`          // main_clients' share of all clients
	ASes        []CensusCount `json:"ases"`                  // main clients per origin AS, most first
	Countries   []CensusCount `json:"countries"`             // main clients per country, most first
	MedianKm    *float64      `json:"median_km,omitempty"`   // its main clients' median distance to it
	NotNearest  *int          `json:"not_nearest,omitempty"` // main clients nearer to another instance
}

// CensusCount is a count by key (an AS number, a country code).
type CensusCount struct {
	Key     string `json:"key"`     // the AS number or country code
	Clients int    `json:"clients"` // clients with it
}

// CensusAffinity says how clients kept to their instances.
type CensusAffinity struct {
	Clients int `json:"clients"` // clients counted
	Stable  int `json:"stable"`  // at one instance throughout
	Moved   int `json:"moved"`   // that moved at least once
	Split   int `json:"split"`   // that were split at some time
	Moves   int `json:"moves"`   // moves in all
	// MovesPerClient: number of moves → clients with that many.
	MovesPerClient map[string]int `json:"moves_per_client"`
}

// CensusInput is one input file and what was read from it.
type CensusInput struct {
	File      string            `json:"file"`               // the file name
	Instance  string            `json:"instance,omitempty"` // named with --instance NAME=FILE
	Format    string            `json:"format"`             // "dnstap", "pcap", "pcapng", "anycheck jsonl", "verfploeter csv", …
	Records   uint64            `json:"records"`            // records read
	Queries   uint64            `json:"queries"`            // queries among them
	Responses uint64            `json:"responses"`          // responses among them
	Skipped   map[string]uint64 `json:"skipped"`            // records skipped, by reason
	Truncated bool              `json:"truncated"`          // the file ended inside a record
	// Identities are the server identities the log names.
	Identities []string `json:"identities"`
	// Servers are the addresses its queries were sent to.
	Servers []string `json:"servers,omitempty"`
}

// Times is the wire form of census times: RFC 3339 with nanoseconds, UTC.
func censusTime(t time.Time) string { return Time(t) }

func censusOptTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := censusTime(t)
	return &s
}

// CensusID is the wire form of a census id: 16 hex digits.
func CensusID(id uint64) string { return fmt.Sprintf("%016x", id) }

// ParseCensusID reads a census id (1 to 16 hex digits, not 0).
func ParseCensusID(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || v == 0 || len(s) > 16 {
		return 0, fmt.Errorf("census id %q: want 1 to 16 hex digits, not 0", s)
	}
	return v, nil
}

func familyOf(c census.Client) string {
	if c.Prefix.Addr().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// FromCensusClient converts one client row; origins are by the client's
// sample address (may be nil), names index the census's instances.
func FromCensusClient(c *census.Census, cl census.Client, origin *whois.Origin, dist *census.Distance) CensusClient {
	name := func(i int) string { return c.Instances[i].Name }
	names := func(is []int) []string {
		out := make([]string, len(is))
		for k, i := range is {
			out[k] = name(i)
		}
		return out
	}
	row := CensusClient{
		Prefix: cl.Prefix.String(), Sample: cl.Sample.String(), Family: familyOf(cl), Queries: cl.Queries,
		Instances: []CensusInstance{}, Runs: []CensusRun{}, Moves: []CensusMove{},
		Split: cl.Split(), SplitMs: Ms(cl.SplitTime()), DroppedRuns: cl.DroppedRuns,
	}
	if m := cl.Main(); m >= 0 {
		n := name(m)
		row.Instance = &n
	}
	for _, ci := range cl.Instances {
		row.Instances = append(row.Instances, CensusInstance{Name: name(ci.Instance), Queries: ci.Queries, First: censusTime(ci.First), Last: censusTime(ci.Last)})
	}
	for _, r := range cl.Runs {
		row.Runs = append(row.Runs, CensusRun{Instances: names(r.Instances), First: censusTime(r.First), Last: censusTime(r.Last), Queries: r.Queries})
	}
	for _, m := range cl.Moves() {
		row.Moves = append(row.Moves, CensusMove{From: names(m.From), To: names(m.To), Left: censusTime(m.Left), Arrived: censusTime(m.Arrived), StayedMs: Ms(m.Stayed)})
	}
	if origin != nil && (len(origin.ASNs) > 0 || origin.Country != "") {
		o := &CensusOrigin{ASNs: slices.Clone(origin.ASNs), ASName: origin.ASName, Country: origin.Country}
		if o.ASNs == nil {
			o.ASNs = []uint32{}
		}
		if origin.Prefix.IsValid() {
			p := origin.Prefix.String()
			o.Prefix = &p
		}
		row.Origin = o
	}
	if dist != nil {
		row.Distance = &CensusRange{InstanceKm: round1(dist.InstanceKm), NearestKm: round1(dist.NearestKm), Nearest: name(dist.Nearest)}
	}
	return row
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// NewCensusSummary sums a census up: instances with their shares, origin
// ASes and countries of their main clients, affinity; origins and
// distances are by client index (either may be nil).
func NewCensusSummary(c *census.Census, origins map[int]whois.Origin, dist map[int]census.Distance) CensusSummary {
	s := CensusSummary{
		Method: string(c.Method), Start: censusOptTime(c.Start), End: censusOptTime(c.End),
		PrefixLen: CensusPrefixLen{IPv4: c.PrefixLen4, IPv6: c.PrefixLen6},
		Queries:   c.Queries, Late: c.Late, Elsewhere: c.Elsewhere,
		Instances: []CensusInstanceSummary{}, Inputs: []CensusInput{}, Services: []string{},
	}
	if c.Method == census.Passive {
		w := Ms(c.SplitWindow)
		s.SplitWindowMs = &w
	}
	a := c.Affinity()
	s.Clients = a.Clients
	s.Affinity = CensusAffinity{Clients: a.Clients, Stable: a.Stable, Moved: a.Moved, Split: a.Split, Moves: a.Moves, MovesPerClient: map[string]int{}}
	for n, k := range a.MovesPerClient {
		s.Affinity.MovesPerClient[strconv.Itoa(n)] = k
	}
	type tally struct {
		ases, countries map[string]int
		km              []float64
		notNearest      int
	}
	per := make([]tally, len(c.Instances))
	for i := range per {
		per[i] = tally{ases: map[string]int{}, countries: map[string]int{}}
	}
	for i, cl := range c.Clients {
		m := cl.Main()
		if m < 0 {
			if cl.Queries == 0 && c.Method == census.Active {
				s.Unresponsive++
			}
			continue
		}
		if og, ok := origins[i]; ok {
			for _, as := range og.ASNs {
				per[m].ases[fmt.Sprintf("AS%d", as)]++
			}
			if og.Country != "" {
				per[m].countries[og.Country]++
			}
		}
		if d, ok := dist[i]; ok {
			per[m].km = append(per[m].km, d.InstanceKm)
			if d.Nearest != m {
				per[m].notNearest++
			}
		}
	}
	if c.Method == census.Active {
		s.Targets = len(c.Clients)
	}
	for i, in := range c.Instances {
		is := CensusInstanceSummary{Name: in.Name, Queries: in.Queries, Clients: in.Clients, MainClients: in.Main,
			ASes: censusCounts(per[i].ases), Countries: censusCounts(per[i].countries)}
		if c.Queries > 0 {
			is.QueryShare = share(in.Queries, c.Queries)
		}
		if a.Clients > 0 {
			is.ClientShare = share(uint64(in.Main), uint64(a.Clients))
		}
		if len(per[i].km) > 0 {
			slices.Sort(per[i].km)
			med := round1(median(per[i].km))
			nn := per[i].notNearest
			is.MedianKm, is.NotNearest = &med, &nn
		}
		s.Instances = append(s.Instances, is)
	}
	return s
}

func share(n, of uint64) float64 { return math.Round(float64(n)/float64(of)*1e4) / 1e4 }

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func censusCounts(m map[string]int) []CensusCount {
	out := make([]CensusCount, 0, len(m))
	for _, k := range catchment.Ranked(m) {
		out = append(out, CensusCount{Key: k, Clients: m[k]})
	}
	return out
}

// FromLogStats converts one log's counts.
func FromLogStats(file, instance string, st census.LogStats) CensusInput {
	in := CensusInput{File: file, Instance: instance, Format: string(st.Format), Records: st.Records, Queries: st.Queries,
		Responses: st.Responses, Skipped: map[string]uint64{}, Truncated: st.Truncated, Identities: slices.Clone(st.Identities)}
	for k, v := range st.Skipped {
		in.Skipped[k] = v
	}
	if in.Identities == nil {
		in.Identities = []string{}
	}
	for _, a := range st.Servers {
		in.Servers = append(in.Servers, a.String())
	}
	return in
}

// CensusSent is one echo request of a census sender.
type CensusSent struct {
	Census string  `json:"census"`             // the census id (16 hex digits)
	Site   string  `json:"site"`               // the sending site
	Seq    int     `json:"seq"`                // the request's sequence number
	Target string  `json:"target" schema:"ip"` // the address it went to
	At     string  `json:"at" schema:"time"`   // when
	Error  *string `json:"error"`              // why it could not be sent; null when it was
}

// FromSent converts one sent request.
func FromSent(id uint64, site string, s census.Sent) CensusSent {
	out := CensusSent{Census: CensusID(id), Site: site, Seq: s.Seq, Target: s.Target.String(), At: censusTime(s.At)}
	if s.Err != nil {
		e := s.Err.Error()
		out.Error = &e
	}
	return out
}

// CensusSendSummary is a sender's run.
type CensusSendSummary struct {
	Census      string  `json:"census"`              // the census id
	Site        string  `json:"site"`                // the sending site
	Anycast     string  `json:"anycast" schema:"ip"` // the anycast address it sent from
	Targets     int     `json:"targets"`             // targets given
	Sent        int     `json:"sent"`                // requests sent
	Failed      int     `json:"failed"`              // requests that could not be sent
	Start       *string `json:"start" schema:"time"` // the first request; null without any
	End         *string `json:"end" schema:"time"`   // the last; null without any
	RateHz      float64 `json:"rate"`                // achieved, requests per second
	Interrupted bool    `json:"interrupted"`         // stopped by a signal before every target was sent to
}

// FromSendSummary converts a sender's summary.
func FromSendSummary(s census.SendSummary, site, anycast string, targets int) CensusSendSummary {
	return CensusSendSummary{Census: CensusID(s.Census), Site: site, Anycast: anycast, Targets: targets, Sent: s.Sent, Failed: s.Failed,
		Start: censusOptTime(s.Start), End: censusOptTime(s.End), RateHz: math.Round(s.Rate()*100) / 100, Interrupted: s.Interrupted}
}

// CensusReply is one echo reply a listener kept.
type CensusReply struct {
	Site     string `json:"site"`                   // the listening site: where the reply arrived (the catchment)
	Census   string `json:"census"`                 // the census id the request carried
	Sender   string `json:"sender"`                 // the site that sent the request
	Target   string `json:"target" schema:"ip"`     // the address the request went to
	From     string `json:"from"`                   // the address the reply came from ("" when unknown)
	Seq      int    `json:"seq"`                    // the request's sequence number
	TTL      *int   `json:"ttl"`                    // the reply's IP TTL on arrival; null when unknown
	Sent     string `json:"sent" schema:"time"`     // when the request left (from its payload)
	Received string `json:"received" schema:"time"` // when the reply arrived
	// ElapsedMs is received − sent: the round trip when the sender and the
	// listener are one host; across hosts it includes their clock difference.
	ElapsedMs float64 `json:"elapsed_ms"`
}

// FromReply converts one reply.
func FromReply(r census.Reply) CensusReply {
	out := CensusReply{Site: r.Site, Census: CensusID(r.Census), Sender: r.Sender, Target: r.Target.String(), Seq: r.Seq,
		Sent: censusTime(r.Sent), Received: censusTime(r.Received), ElapsedMs: Ms(r.Received.Sub(r.Sent))}
	if r.From.IsValid() {
		out.From = r.From.String()
	}
	if r.TTL >= 0 {
		ttl := r.TTL
		out.TTL = &ttl
	}
	return out
}

// CensusListenSummary is a listener's run.
type CensusListenSummary struct {
	Site        string  `json:"site"`                // the listening site
	Anycast     string  `json:"anycast" schema:"ip"` // the anycast address listened on
	Census      *string `json:"census"`              // the census listened for; null: any
	Replies     uint64  `json:"replies"`             // census replies kept
	OtherICMP   uint64  `json:"other_icmp"`          // other ICMP ignored
	NoPayload   uint64  `json:"no_payload"`          // echo replies without a census payload
	OtherCensus uint64  `json:"other_census"`        // replies of another census
	Malformed   uint64  `json:"malformed"`           // payloads that did not parse
}

// FromListenStats converts a listener's counts.
func FromListenStats(st census.ListenStats, site, anycast string, id uint64) CensusListenSummary {
	out := CensusListenSummary{Site: site, Anycast: anycast, Replies: st.Replies, OtherICMP: st.OtherICMP,
		NoPayload: st.NoPayload, OtherCensus: st.OtherCensus, Malformed: st.Malformed}
	if id != 0 {
		s := CensusID(id)
		out.Census = &s
	}
	return out
}
