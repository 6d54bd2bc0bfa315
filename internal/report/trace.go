package report

import (
	"net/netip"
	"slices"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// TracePath is one traced flow on the wire.
type TracePath struct {
	Input      string       `json:"input"`  // the target as the user wrote it
	Target     string       `json:"target"` // the address traced
	Flow       FlowDTO      `json:"flow"`
	Mode       string       `json:"mode"` // "raw" or "socket": what actually ran
	Unobserved []string     `json:"unobserved"`
	Started    string       `json:"started"`
	ElapsedMs  float64      `json:"elapsed_ms"`
	Reached    bool         `json:"reached"`
	StopReason string       `json:"stop_reason"`
	DestTTL    int          `json:"dest_ttl"`
	Hops       []HopDTO     `json:"hops"`
	Instance   *IdentityDTO `json:"instance"` // null when no identity was obtained
	Answers    []AnswerDTO  `json:"answers"`
	// ASPath is the origin ASes along the path, consecutive duplicates
	// collapsed, special/unknown hops skipped, the destination's AS last.
	// Empty when enrichment did not run.
	ASPath []uint32 `json:"as_path"`
	// Upstream ("instance upstream") is the origin of the last responding
	// hop before the destination that lies outside the destination's AS:
	// the network that hands traffic to the anycast site. Null when the
	// origins are unknown.
	Upstream *OriginDTO `json:"instance_upstream"`
	// PathUpstream is where the path enters the service (catchment's one
	// definition, as compare prints it): the upstream AS and the hop;
	// without origins, the last responding hop before the target. Null
	// when no hop before the target answered.
	PathUpstream *UpstreamDTO `json:"upstream"`
	Notes        []string     `json:"notes"`
	// SourceOrigin is the origin of the flow's source address (the
	// vantage's network); null when not looked up.
	SourceOrigin *OriginDTO `json:"source_origin"`
}

// FlowDTO is the fixed 5-tuple of a trace.
type FlowDTO struct {
	Protocol  string `json:"protocol"`
	Src       string `json:"src"`
	Sport     int    `json:"sport"` // ICMP: the echo identifier
	Dst       string `json:"dst"`
	Dport     int    `json:"dport"`
	TOS       int    `json:"tos"`
	FlowLabel int    `json:"flow_label"`
}

// HopDTO is every probe sent with one TTL.
type HopDTO struct {
	TTL         int            `json:"ttl"`
	Probes      []ProbeDTO     `json:"probes"`
	RateLimited bool           `json:"rate_limited"`
	Responders  []ResponderDTO `json:"responders"` // distinct reply addresses, in order of first reply
}

// ProbeDTO is one probe and its reply (null when nothing came back in time).
type ProbeDTO struct {
	Seq   int       `json:"seq"`
	Reply *ReplyDTO `json:"reply"`
}

// ReplyDTO is a matched reply.
type ReplyDTO struct {
	From      string     `json:"from"`
	RTTMs     float64    `json:"rtt_ms"`
	Kind      string     `json:"kind"`
	ICMPType  *int       `json:"icmp_type"`  // null when not ICMP
	ICMPCode  *int       `json:"icmp_code"`  // null when not ICMP
	ReplyTTL  *int       `json:"reply_ttl"`  // null when unknown
	QuotedTTL *int       `json:"quoted_ttl"` // null when not quoted
	MPLS      []MPLSDTO  `json:"mpls"`
	NAT       bool       `json:"nat"`
	DNS       *AnswerDTO `json:"dns,omitempty"`
}

// MPLSDTO is one RFC 4950 label stack entry.
type MPLSDTO struct {
	Label int  `json:"label"`
	TC    int  `json:"tc"`
	S     bool `json:"s"`
	TTL   int  `json:"ttl"`
}

// ResponderDTO is an address seen at a hop, with its enrichment.
type ResponderDTO struct {
	Address string     `json:"address"`
	Name    string     `json:"name,omitempty"` // reverse DNS name (untrusted)
	Origin  *OriginDTO `json:"origin"`         // null when not looked up
}

// FromPath converts a finished trace.
func FromPath(input string, p trace.Path) TracePath {
	t := TracePath{
		Input:  input,
		Target: p.Flow.Dst.Addr().String(),
		Flow: FlowDTO{
			Protocol:  string(p.Flow.Proto),
			Src:       addrString(p.Flow.Src.Addr()),
			Sport:     int(p.Flow.Src.Port()),
			Dst:       addrString(p.Flow.Dst.Addr()),
			Dport:     int(p.Flow.Dst.Port()),
			TOS:       int(p.Flow.TOS),
			FlowLabel: int(p.Flow.FlowLabel),
		},
		Mode:       string(p.Mode),
		Unobserved: append([]string{}, p.Unobserved...),
		Started:    p.Started.UTC().Format(time.RFC3339Nano),
		ElapsedMs:  Ms(p.Elapsed),
		Reached:    p.Reached,
		StopReason: string(p.Stop),
		DestTTL:    p.DestTTL,
		Hops:       []HopDTO{},
		Answers:    []AnswerDTO{},
		ASPath:     []uint32{},
		Notes:      append([]string{}, p.Notes...),
	}
	for _, h := range p.Hops {
		t.Hops = append(t.Hops, FromHop(h))
	}
	if p.Instance != nil {
		id := FromIdentity(*p.Instance)
		t.Instance = &id
	}
	for _, a := range p.Answers {
		t.Answers = append(t.Answers, FromAnswer(a))
	}
	return t
}

// FromHop converts one hop (also used for streaming).
func FromHop(h trace.Hop) HopDTO {
	d := HopDTO{TTL: h.TTL, Probes: []ProbeDTO{}, RateLimited: h.RateLimited, Responders: []ResponderDTO{}}
	seen := map[netip.Addr]bool{}
	for _, pr := range h.Probes {
		p := ProbeDTO{Seq: pr.Seq}
		if r := pr.Reply; r != nil {
			p.Reply = fromReply(*r)
			if !seen[r.From] {
				seen[r.From] = true
				d.Responders = append(d.Responders, ResponderDTO{Address: r.From.String()})
			}
		}
		d.Probes = append(d.Probes, p)
	}
	return d
}

func fromReply(r trace.Reply) *ReplyDTO {
	d := &ReplyDTO{
		From:      r.From.String(),
		RTTMs:     Ms(r.RTT),
		Kind:      string(r.Kind),
		ICMPType:  optInt(r.ICMPType),
		ICMPCode:  optInt(r.ICMPCode),
		ReplyTTL:  optInt(r.ReplyTTL),
		QuotedTTL: optInt(r.QuotedTTL),
		MPLS:      []MPLSDTO{},
		NAT:       r.NAT,
	}
	for _, l := range r.MPLS {
		d.MPLS = append(d.MPLS, MPLSDTO{Label: int(l.Label), TC: int(l.TC), S: l.S, TTL: int(l.TTL)})
	}
	if r.DNS != nil {
		a := FromAnswer(*r.DNS)
		d.DNS = &a
	}
	return d
}

// optInt maps the engine's "-1 = unknown" to JSON null.
func optInt(v int) *int {
	if v < 0 {
		return nil
	}
	return &v
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Addresses lists every distinct responder address of the path, for enrichment.
func (t *TracePath) Addresses() []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(s string) {
		a, err := netip.ParseAddr(s)
		if err != nil || seen[a] {
			return
		}
		seen[a] = true
		out = append(out, a)
	}
	for _, h := range t.Hops {
		for _, r := range h.Responders {
			add(r.Address)
		}
	}
	add(t.Target)
	add(t.Flow.Src)
	return out
}

// Enrich fills responder origins and names and the source's origin from
// lookup results. Missing entries stay null. The AS path and the upstream
// are the catchment model's: SetPath.
func (t *TracePath) Enrich(origins map[netip.Addr]whois.Origin, names map[netip.Addr]string) {
	if src, err := netip.ParseAddr(t.Flow.Src); err == nil {
		if o, ok := origins[src]; ok {
			dto := FromOrigin(o)
			t.SourceOrigin = &dto
		}
	}
	for i := range t.Hops {
		for j := range t.Hops[i].Responders {
			r := &t.Hops[i].Responders[j]
			a, err := netip.ParseAddr(r.Address)
			if err != nil {
				continue
			}
			r.Name = names[a]
			if o, ok := origins[a]; ok {
				dto := FromOrigin(o)
				r.Origin = &dto
			}
		}
	}
}

// SetPath writes what the catchment model says about the path (live.Path,
// catchment.PathOf): its AS path and its upstream. instance_upstream is the
// origin of the upstream AS's last hop, when the origins told it.
func (t *TracePath) SetPath(p catchment.PathFacts) {
	t.ASPath = append([]uint32{}, p.ASPath...)
	t.PathUpstream = upstreamDTO(p.Upstream)
	t.Upstream = nil
	if p.Upstream == nil || !p.Upstream.ByOrigin {
		return
	}
	for i := len(t.Hops) - 1; i >= 0; i-- {
		for _, r := range t.Hops[i].Responders {
			if r.Address != t.Target && r.Origin != nil && slices.Contains(r.Origin.ASNs, p.Upstream.AS) {
				t.Upstream = r.Origin
				return
			}
		}
	}
}
