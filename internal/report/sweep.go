package report

import (
	"cmp"
	"slices"

	"github.com/anycheck/anycheck/catchment"
)

// KindSweep is the document of `anycheck trace --flows N|auto` (N > 1): its
// results are TraceSweeps, one per target. A single-flow trace stays
// KindTrace.
const KindSweep = "sweep"

// Identity sources of a sweep's flows.
const (
	SweepIdentityUDP  = "udp53" // every udp/53 probe is an identity query: each flow's instance comes with its path
	SweepIdentityTCP  = "tcp53" // asked over a TCP connection from each flow's source port after its trace
	SweepIdentityNone = "none"  // icmp probes and other ports carry no identity query
)

// Stop reasons of a sweep.
const (
	SweepStopFlows       = "flows"       // --flows N: every flow asked for was traced
	SweepStopMDA         = "mda"         // --flows auto: no hop needs more flows to rule out another next hop
	SweepStopMaxFlows    = "max_flows"   // --flows auto: --max-flows reached while some hop still wanted flows
	SweepStopInterrupted = "interrupted" // Ctrl-C
	SweepStopFailed      = "failed"      // --flows auto: no flow of the last round could be traced
	SweepStopStalled     = "stalled"     // --flows auto: the last round brought no reply to the hops that wanted flows (rate-limited routers)
)

// TraceSweep is one target of a flow sweep: every flow traced towards it
// (flows that differ only in the source port, or ICMP echo identifier),
// the distinct paths they took and what that says about the catchment.
type TraceSweep struct {
	Input    string `json:"input"`                               // the target as the user wrote it
	Target   string `json:"target" schema:"ip"`                  // the address traced
	Protocol string `json:"protocol" schema:"enum=udp|tcp|icmp"` // the flows' protocol
	Dport    int    `json:"dport"`                               // the flows' destination port; 0 for icmp
	// Identity says where each flow's instance comes from (SweepIdentity*):
	// "udp53", "tcp53" or "none".
	Identity string `json:"identity_from" schema:"enum=udp53|tcp53|none"`
	// Flows are the traced flows by source port, each the same object as a
	// single trace's flow.
	Flows []TraceFlow `json:"flows"`
	// FailedFlows are flows that could not be traced (a port in use, a
	// send the host refused); the others are complete.
	FailedFlows []FailedFlow `json:"failed_flows"`
	Paths       []SweepPath  `json:"paths"`   // the distinct paths the flows took
	Summary     SweepSummary `json:"summary"` // what the sweep found
}

// FailedFlow is a flow of a sweep that could not be traced.
type FailedFlow struct {
	Sport   int    `json:"sport"`   // its source port (icmp: echo identifier)
	Message string `json:"message"` // why it could not be traced
}

// SweepPath is a path several flows took: the same responders at every
// TTL where they answered (catchment.PlacePaths); a hop is silent only
// when no flow of the path got a reply there.
type SweepPath struct {
	Sports    []int       `json:"sports"`    // the flows that took it, by source port (icmp: echo identifier)
	Hops      []SweepHop  `json:"hops"`      // one per TTL, from 1
	Instances []FlowCount `json:"instances"` // instances reached over it, by flow count
	Reached   int         `json:"reached"`   // flows of the path that reached the target
	// ASPath is the path's origin ASes, as for a single trace (the
	// catchment model's).
	ASPath []uint32 `json:"as_path"`
	// Upstream is where the path enters the service, as for a single
	// trace; null when no hop before the target answered.
	Upstream *UpstreamDTO `json:"upstream"`
}

// SweepHop is one TTL of a path.
type SweepHop struct {
	TTL        int            `json:"ttl"`        // the hop's TTL
	Responders []ResponderDTO `json:"responders"` // empty: silent ("*") on every flow of the path
	// RTTMs is the median, over the path's flows, of each flow's smallest
	// RTT at this hop; null when silent.
	RTTMs *float64 `json:"rtt_ms"`
	// RateLimited counts the path's flows whose probes at this hop were
	// answered and then not (a router's ICMP rate limit, most likely).
	RateLimited int `json:"rate_limited"`
}

// SweepSummary is what a sweep found.
type SweepSummary struct {
	Flows   int `json:"flows"`   // flows traced
	Reached int `json:"reached"` // flows that reached the target
	Failed  int `json:"failed"`  // flows that could not be traced
	Paths   int `json:"paths"`   // distinct paths (PlacePaths)
	// Diamonds are the stretches of TTLs where paths differ: they part
	// after part_ttl and join at join_ttl (null: they never join, e.g. they
	// end at one anycast address on different instances).
	Diamonds []DiamondDTO `json:"diamonds"`
	// Instances are the instances reached, by flow count.
	Instances    []FlowCount `json:"instances"`
	Unidentified int         `json:"unidentified"` // flows with no identified instance
	// Split is true when the flows reached more than one instance: the
	// catchment depends on the flow (source port).
	Split bool      `json:"split"`
	Stop  SweepStop `json:"stop"` // how many flows were used and why the sweep stopped
	// Unplaced are the flows (source ports) on no path: silent where the
	// paths differ, so they fit several, or without any reply. A flow
	// whose silent hops fit one path only is counted on it.
	Unplaced []int `json:"unplaced"`
}

// DiamondDTO is one stretch of TTLs where paths part and join again.
type DiamondDTO struct {
	PartTTL      int               `json:"part_ttl"`     // last TTL all paths share before they part; 0 = from the first hop
	PartAddress  *string           `json:"part_address"` // the hop they part after; null when part_ttl is 0
	JoinTTL      *int              `json:"join_ttl"`     // null: the paths never join
	JoinAddress  *string           `json:"join_address"` // the hop they join at; null when they never join
	Alternatives []AlternativesDTO `json:"alternatives"` // the addresses seen at each TTL in between
}

// AlternativesDTO are the addresses seen at one TTL inside a diamond.
type AlternativesDTO struct {
	TTL       int              `json:"ttl"`       // the TTL
	Addresses []AddressFlowDTO `json:"addresses"` // the addresses seen at it, with their flows
}

// AddressFlowDTO is an address and how many flows saw it.
type AddressFlowDTO struct {
	Address string `json:"address" schema:"ip"` // the address
	Flows   int    `json:"flows"`               // flows that saw it
}

// SweepStop says how many flows were used and why the sweep stopped.
type SweepStop struct {
	Mode       string  `json:"mode" schema:"enum=fixed|auto"`                                       // "fixed" (--flows N) or "auto"
	Reason     string  `json:"reason" schema:"enum=flows|mda|max_flows|interrupted|failed|stalled"` // why the sweep stopped
	Confidence float64 `json:"confidence"`                                                          // the MDA confidence (--flows auto) of having seen every next hop
	MaxFlows   int     `json:"max_flows"`                                                           // auto: --max-flows; fixed: N
	Rounds     int     `json:"rounds"`                                                              // batches of flows sent
	// Unsatisfied are the hops whose next hops have not been probed by
	// enough flows to rule out one more at Confidence (the MDA stopping
	// rule); empty when the rule is met.
	Unsatisfied []MDAVertexDTO `json:"unsatisfied"`
}

// MDAVertexDTO is a hop that wants more flows.
type MDAVertexDTO struct {
	TTL      int     `json:"ttl"`       // 0 for the vantage itself
	Address  *string `json:"address"`   // null for the vantage
	NextHops int     `json:"next_hops"` // next hops seen after it so far
	Flows    int     `json:"flows"`     // flows that probed past it
	Needed   int     `json:"needed"`    // flows the stopping rule wants for one more next hop
}

// FromMDAVertices converts the vertices MDAUnsatisfied returns.
func FromMDAVertices(vs []catchment.MDAVertex) []MDAVertexDTO {
	out := []MDAVertexDTO{}
	for _, v := range vs {
		d := MDAVertexDTO{TTL: v.TTL, NextHops: v.NextHops, Flows: v.Flows, Needed: v.Needed}
		if v.Addr.IsValid() {
			s := v.Addr.String()
			d.Address = &s
		}
		out = append(out, d)
	}
	return out
}

// NewTraceSweep builds one target's sweep result from its (enriched)
// flows, sorted by source port, and the catchment model's analysis of them
// (live.Sweep over the same order): flows[i] is the analysis's flow i.
// stop is filled in by the caller but for Unsatisfied, which comes from
// the analysis.
func NewTraceSweep(input, target, protocol string, dport int, identity string, flows []TraceFlow, an catchment.Sweep, failed []FailedFlow, stop SweepStop) TraceSweep {
	failed = slices.Clone(failed)
	slices.SortStableFunc(failed, func(a, b FailedFlow) int { return cmp.Compare(a.Sport, b.Sport) })
	s := TraceSweep{
		Input: input, Target: target, Protocol: protocol, Dport: dport, Identity: identity,
		Flows: slices.Clone(flows), FailedFlows: failed, Paths: []SweepPath{},
	}
	if s.Flows == nil {
		s.Flows = []TraceFlow{}
	}
	if s.FailedFlows == nil {
		s.FailedFlows = []FailedFlow{}
	}
	for _, g := range an.Paths {
		s.Paths = append(s.Paths, sweepPath(flows, g))
	}
	sum := SweepSummary{
		Flows: len(flows), Failed: len(failed), Paths: len(an.Paths), Unplaced: []int{}, Reached: an.Reached,
		Diamonds: fromDiamonds(an.Diamonds), Instances: []FlowCount{},
		Unidentified: an.Split.Unidentified, Split: an.Split.Split, Stop: stop,
	}
	for _, i := range an.Unplaced {
		sum.Unplaced = append(sum.Unplaced, flows[i].Flow.Sport)
	}
	for _, in := range an.Split.Instances {
		sum.Instances = append(sum.Instances, FlowCount{Instance: in.Instance, Flows: in.Count})
	}
	if sum.Stop.Confidence == 0 {
		sum.Stop.Confidence = MDAConfidence
	}
	sum.Stop.Unsatisfied = FromMDAVertices(an.Unsatisfied)
	s.Summary = sum
	return s
}

// MDAConfidence is the confidence of the multipath-detection stopping rule
// a sweep applies (the published 95 % table: 6, 11, 16, 21, 27, 33 flows).
const MDAConfidence = 0.95

func sweepPath(flows []TraceFlow, g catchment.Path) SweepPath {
	p := SweepPath{Sports: []int{}, Hops: []SweepHop{}, Instances: []FlowCount{}, Reached: g.Reached,
		ASPath: nonNil(g.Facts.ASPath), Upstream: upstreamDTO(g.Facts.Upstream)}
	for _, i := range g.Flows {
		p.Sports = append(p.Sports, flows[i].Flow.Sport)
	}
	for _, in := range g.Instances {
		p.Instances = append(p.Instances, FlowCount{Instance: in.Instance, Flows: in.Count})
	}
	hopAt := func(f TraceFlow, ttl int) *HopDTO {
		for k := range f.Path.Hops {
			if f.Path.Hops[k].TTL == ttl {
				return &f.Path.Hops[k]
			}
		}
		return nil
	}
	// The path's hops are those its flows answered with (a flow silent at
	// a TTL where others answered is on the path all the same), each
	// responder as a flow's enrichment gave it.
	for hi, h := range g.Hops {
		sh := SweepHop{TTL: h.TTL, Responders: []ResponderDTO{}, RTTMs: optMs(g.HopRTT[hi]), RateLimited: g.RateLimited[hi]}
		for _, r := range h.Responders {
			for _, i := range g.Flows {
				fh := hopAt(flows[i], h.TTL)
				if fh == nil {
					continue
				}
				k := slices.IndexFunc(fh.Responders, func(d ResponderDTO) bool { return d.Address == r.Addr.String() })
				if k >= 0 {
					sh.Responders = append(sh.Responders, fh.Responders[k])
					break
				}
			}
		}
		p.Hops = append(p.Hops, sh)
	}
	return p
}

// fromDiamonds converts diamonds.
func fromDiamonds(ds []catchment.Diamond) []DiamondDTO {
	out := []DiamondDTO{}
	for _, d := range ds {
		dto := DiamondDTO{PartTTL: d.Part, PartAddress: optAddr(d.PartAddr), Alternatives: []AlternativesDTO{}}
		if d.Join > 0 {
			j := d.Join
			dto.JoinTTL = &j
			dto.JoinAddress = optAddr(d.JoinAddr)
		}
		for _, alt := range d.Alternatives {
			a := AlternativesDTO{TTL: alt.TTL, Addresses: []AddressFlowDTO{}}
			for i, addr := range alt.Addrs {
				a.Addresses = append(a.Addresses, AddressFlowDTO{Address: addr.String(), Flows: alt.Flows[i]})
			}
			dto.Alternatives = append(dto.Alternatives, a)
		}
		out = append(out, dto)
	}
	return out
}
