package report

import (
	"net/netip"
	"slices"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// TraceResult is one target of `anycheck trace`: the flow traced to it.
type TraceResult struct {
	Input  string      `json:"input"`  // the target as the user wrote it
	Target string      `json:"target"` // the address traced
	Flows  []TraceFlow `json:"flows"`  // the one flow traced
}

// TraceFlow is one traced flow: its 5-tuple, the instance its answers
// named, the answers, and the path. It is the same object in a trace, in
// each flow of a sweep and in a watch's path events.
type TraceFlow struct {
	Flow     FlowDTO     `json:"flow"`     // the flow's 5-tuple: every probe of the trace used it
	Instance InstanceDTO `json:"instance"` // what the flow's DNS answers named (UDP/53 probes, or TCP/53's follow-up)
	Answers  []AnswerDTO `json:"answers"`  // the DNS answers behind Instance
	Path     PathDTO     `json:"path"`     // the hops the flow's probes saw
}

// PathDTO is what a traced flow saw on its way.
type PathDTO struct {
	Mode       string   `json:"mode" schema:"enum=raw|socket"`                                           // "raw" or "socket": what actually ran
	Unobserved []string `json:"unobserved" schema:"enum=nat|mpls|quoted_ttl|reply_ttl"`                  // what this mode cannot see ("nat", "mpls", "quoted_ttl", "reply_ttl")
	Started    string   `json:"started" schema:"time"`                                                   // when the first probe left
	ElapsedMs  float64  `json:"elapsed_ms"`                                                              // how long the trace took
	Reached    bool     `json:"reached"`                                                                 // the destination answered
	StopReason string   `json:"stop_reason" schema:"enum=reached|unreachable|max-ttl|interrupted|error"` // why the trace stopped
	DestTTL    int      `json:"dest_ttl"`                                                                // the TTL at which the destination first answered; 0 when not reached
	Hops       []HopDTO `json:"hops"`                                                                    // one per TTL, from 1, up to the destination or the last TTL tried
	// ASPath is the origin ASes along the path, consecutive duplicates
	// collapsed, hops without an origin skipped, the destination's AS last
	// when it was reached. Empty when the origins were not looked up.
	ASPath []uint32 `json:"as_path"`
	// Upstream is where the path enters the service (the catchment
	// model's one definition, the same in every command): the last AS
	// before the service's origin AS, and the hop; without origins, the
	// last responding hop before the target. Null when no hop before the
	// target answered.
	Upstream *UpstreamDTO `json:"upstream"`
	Notes    []string     `json:"notes"` // what the operator should know (untrusted text is escaped in text output)
	// SourceOrigin is the origin of the flow's source address (the
	// vantage's network); null when not looked up.
	SourceOrigin *OriginDTO `json:"source_origin"`
}

// HopDTO is every probe sent with one TTL.
type HopDTO struct {
	TTL    int        `json:"ttl" schema:"min=1,max=255"` // the probes' IP TTL (IPv6 hop limit)
	Probes []ProbeDTO `json:"probes"`                     // every probe sent with it, in order
	// RateLimited is set when the hop answered some probes and not
	// others in a way that looks like ICMP rate limiting, not loss.
	RateLimited bool           `json:"rate_limited"`
	Responders  []ResponderDTO `json:"responders"` // distinct reply addresses, in order of first reply
}

// ProbeDTO is one probe and its reply (null when nothing came back in time).
type ProbeDTO struct {
	Seq   int       `json:"seq"`   // its number within the hop, from 0
	Reply *ReplyDTO `json:"reply"` // what came back; null when nothing did in time
}

// ReplyDTO is a matched reply.
type ReplyDTO struct {
	From  string  `json:"from" schema:"ip"` // the address the reply came from
	RTTMs float64 `json:"rtt_ms"`           // round-trip time of the probe
	// Kind is what came back: time-exceeded (a router on the way),
	// unreachable (ICMP: see icmp_type and icmp_code), dns (the
	// destination's DNS answer to a UDP/53 probe), udp (another UDP
	// payload), echo-reply, syn-ack, rst, ack.
	Kind      string `json:"kind" schema:"enum=time-exceeded|unreachable|dns|udp|echo-reply|syn-ack|rst|ack"`
	ICMPType  *int   `json:"icmp_type"`  // null when not ICMP
	ICMPCode  *int   `json:"icmp_code"`  // null when not ICMP
	ReplyTTL  *int   `json:"reply_ttl"`  // the reply's own IP TTL on arrival; null when unknown
	QuotedTTL *int   `json:"quoted_ttl"` // the probe's TTL as the ICMP error quotes it; null when not quoted
	// MPLS is the label stack the router quoted (RFC 4950), outermost
	// first; empty when none.
	MPLS []MPLSDTO `json:"mpls"`
	// NAT is set when the quoted probe's addresses or ports differ from
	// what was sent: a NAT on the way rewrote it.
	NAT bool       `json:"nat"`
	DNS *AnswerDTO `json:"dns,omitempty"` // the answer, for a dns reply
}

// MPLSDTO is one RFC 4950 label stack entry.
type MPLSDTO struct {
	Label int  `json:"label"` // the 20-bit label
	TC    int  `json:"tc"`    // traffic class (the former EXP bits)
	S     bool `json:"s"`     // bottom of stack
	TTL   int  `json:"ttl"`   // the entry's TTL
}

// ResponderDTO is an address seen at a hop, with its enrichment.
type ResponderDTO struct {
	Address string     `json:"address" schema:"ip"` // the hop's address
	Name    string     `json:"name,omitempty"`      // reverse DNS name (untrusted)
	Origin  *OriginDTO `json:"origin"`              // null when not looked up
}

// FromPath converts a finished trace; sites places the instance's name
// (nil: no sites).
func FromPath(p trace.Path, sites *catchment.Sites) TraceFlow {
	t := TraceFlow{
		Flow: flowOf(string(p.Flow.Proto), p.Flow.Src, p.Flow.Dst),
		Path: PathDTO{
			Mode:       string(p.Mode),
			Unobserved: append([]string{}, p.Unobserved...),
			Started:    Time(p.Started),
			ElapsedMs:  Ms(p.Elapsed),
			Reached:    p.Reached,
			StopReason: string(p.Stop),
			DestTTL:    p.DestTTL,
			Hops:       []HopDTO{},
			ASPath:     []uint32{},
			Notes:      append([]string{}, p.Notes...),
		},
		Answers: []AnswerDTO{},
	}
	t.Flow.TOS, t.Flow.FlowLabel = int(p.Flow.TOS), int(p.Flow.FlowLabel)
	for _, h := range p.Hops {
		t.Path.Hops = append(t.Path.Hops, FromHop(h))
	}
	if p.Instance != nil {
		t.Instance = InstanceOf(*p.Instance, p.Flow.Dst.Addr(), sites)
	}
	for _, a := range p.Answers {
		t.Answers = append(t.Answers, FromAnswer(a))
	}
	return t
}

// NewTraceResult is one target's result: its input and the flow traced.
func NewTraceResult(input string, f TraceFlow) TraceResult {
	return TraceResult{Input: input, Target: f.Flow.Dst, Flows: []TraceFlow{f}}
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

// Enrich fills responder origins and names and the source's origin from
// lookup results. Missing entries stay null. The AS path and the upstream
// are the catchment model's: SetPath.
func (t *TraceFlow) Enrich(origins map[netip.Addr]whois.Origin, names map[netip.Addr]string) {
	if src, err := netip.ParseAddr(string(t.Flow.Src)); err == nil {
		if o, ok := origins[src]; ok {
			dto := FromOrigin(o)
			t.Path.SourceOrigin = &dto
		}
	}
	for i := range t.Path.Hops {
		for j := range t.Path.Hops[i].Responders {
			r := &t.Path.Hops[i].Responders[j]
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
// catchment.PathOf): its AS path and its upstream, with the upstream AS's
// name from the origin of one of its hops, when the lookup gave one.
func (t *TraceFlow) SetPath(p catchment.PathFacts) {
	t.Path.ASPath = append([]uint32{}, p.ASPath...)
	t.Path.Upstream = upstreamDTO(p.Upstream)
	if p.Upstream == nil || p.Upstream.AS == 0 {
		return
	}
	for i := len(t.Path.Hops) - 1; i >= 0; i-- {
		for _, r := range t.Path.Hops[i].Responders {
			if r.Origin != nil && slices.Contains(r.Origin.ASNs, p.Upstream.AS) && r.Origin.ASName != "" {
				t.Path.Upstream.ASName = r.Origin.ASName
				return
			}
		}
	}
}
