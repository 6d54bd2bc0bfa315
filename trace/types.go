package trace

import (
	"net/netip"
	"time"

	"github.com/anycheck/anycheck/measure"

	"golang.org/x/time/rate"
)

// Protocol is the probe protocol of a flow.
type Protocol string

const (
	UDP  Protocol = "udp"
	TCP  Protocol = "tcp"
	ICMP Protocol = "icmp"
)

// Mode is how probes are sent and replies read.
type Mode string

const (
	ModeAuto   Mode = "auto"   // raw when permitted, else socket
	ModeRaw    Mode = "raw"    // raw IP sockets (CAP_NET_RAW)
	ModeSocket Mode = "socket" // unprivileged: UDP socket + IP_RECVERR, ICMP ping socket
)

// Flow is the fixed 5-tuple (plus TOS / flow label) every probe of a trace keeps.
type Flow struct {
	Proto     Protocol
	Src       netip.AddrPort // source address and port (for ICMP the port field carries the echo identifier)
	Dst       netip.AddrPort // destination address and port (port 0 for ICMP)
	TOS       uint8          // IPv4 TOS / IPv6 traffic class
	FlowLabel uint32         // IPv6 flow label (20 bits)
}

// ReplyKind names what answered a probe.
type ReplyKind string

const (
	ReplyTimeExceeded ReplyKind = "time-exceeded"
	ReplyUnreachable  ReplyKind = "unreachable" // ICMP destination/port unreachable (type/code say which)
	ReplyDNS          ReplyKind = "dns"         // the destination's DNS answer to a UDP/53 probe
	ReplyUDP          ReplyKind = "udp"         // any other UDP payload from the destination
	ReplyEcho         ReplyKind = "echo-reply"
	ReplySynAck       ReplyKind = "syn-ack"
	ReplyRST          ReplyKind = "rst"
	// ReplyACK is a bare ACK from the destination: its answer to a SYN that
	// found the 4-tuple still held by an earlier probe's half-open
	// connection (an RFC 5961 challenge ACK). It acknowledges that earlier
	// probe, so the engine credits it to the probe that caused it.
	ReplyACK ReplyKind = "ack"
)

// Known reports whether k is one of the kinds above.
func (k ReplyKind) Known() bool {
	switch k {
	case ReplyTimeExceeded, ReplyUnreachable, ReplyDNS, ReplyUDP, ReplyEcho, ReplySynAck, ReplyRST, ReplyACK:
		return true
	}
	return false
}

// Reply is one matched answer to a probe.
type Reply struct {
	From      netip.Addr
	RTT       time.Duration
	Kind      ReplyKind
	ICMPType  int // -1 when the reply is not ICMP
	ICMPCode  int // -1 when the reply is not ICMP
	ReplyTTL  int // TTL / hop limit of the reply packet; -1 when unknown (socket mode)
	QuotedTTL int // TTL of our probe as quoted by the router; -1 when not quoted
	MPLS      []measure.MPLSLabel
	// NAT is set when the quoted ports or checksum differ from what was sent.
	NAT bool
	// DNS is the classified DNS answer when Kind == ReplyDNS.
	DNS *measure.Answer
}

// ProbeResult is one probe sent at a TTL and its reply (nil Reply = no answer in time).
type ProbeResult struct {
	Seq   int // 0-based probe index within the hop
	Sent  time.Time
	Reply *Reply
}

// Hop is every probe sent with one TTL.
type Hop struct {
	TTL    int
	Probes []ProbeResult
	// RateLimited is set when the hop's silence looks like ICMP rate
	// limiting: it answered with ICMP errors (time exceeded, unreachable),
	// then a later probe to it got nothing.
	RateLimited bool
}

// StopReason says why a trace ended.
type StopReason string

const (
	StopReached     StopReason = "reached"     // the destination answered
	StopUnreachable StopReason = "unreachable" // an ICMP unreachable other than port-unreachable from the destination
	StopMaxTTL      StopReason = "max-ttl"     // -m reached without the destination answering
	StopInterrupted StopReason = "interrupted" // context cancelled (Ctrl-C)
	StopError       StopReason = "error"
)

// Known reports whether r is one of the reasons above.
func (r StopReason) Known() bool {
	switch r {
	case StopReached, StopUnreachable, StopMaxTTL, StopInterrupted, StopError:
		return true
	}
	return false
}

// Path is the finished (or interrupted) trace of one flow.
type Path struct {
	Flow    Flow
	Mode    Mode // raw or socket: the mode that actually ran
	Started time.Time
	Elapsed time.Duration
	Hops    []Hop // ordered by TTL, from FirstTTL to the last TTL probed (trailing all-silent hops past the destination are dropped)
	Reached bool
	Stop    StopReason
	// DestTTL is the TTL at which the destination first answered (0 when not reached).
	DestTTL int
	// Instance is the identity of the DNS instance at the end of this flow,
	// from the UDP/53 probes' own DNS answers. Nil for other flows: a TCP/53
	// trace leaves the identity to its caller, who can ask it over a TCP
	// connection from Flow.Src once Run has returned and freed the port.
	Instance *measure.Identity
	// Answers are the DNS answers behind Instance.
	Answers []measure.Answer
	// Unobserved lists what this mode could not see, e.g. "nat" and "mpls"
	// in socket mode (no quoted header), "reply_ttl".
	Unobserved []string
	// Notes are non-fatal problems worth showing the operator.
	Notes []string
}

// Addresses are the addresses of the path to look up, each once: the
// hops' responders by TTL, then the destination and the source.
func (p Path) Addresses() []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, h := range p.Hops {
		for _, pr := range h.Probes {
			if pr.Reply != nil {
				add(pr.Reply.From)
			}
		}
	}
	add(p.Flow.Dst.Addr())
	add(p.Flow.Src.Addr())
	return out
}

// Options configures Run.
type Options struct {
	Target   netip.Addr
	Source   netip.Addr    // optional local address; invalid = chosen by routing
	Proto    Protocol      // default UDP
	Port     uint16        // destination port (UDP/TCP); default 53
	SrcPort  uint16        // source port / ICMP identifier; 0 = pick a free one
	Mode     Mode          // default ModeAuto
	FirstTTL int           // default 1
	MaxTTL   int           // default 30
	Queries  int           // probes per hop (-q), default 3
	Rate     float64       // packets per second of the budget Run makes when Budget is nil (NewBudget(Rate)), default 1000
	Wait     time.Duration // max wait for a reply (-w), default 2s
	// Budget is the run-wide packet budget, shared by every trace of a
	// run (targets, flows): each probe takes a token. Nil = a budget of
	// this trace's own, NewBudget(Rate).
	Budget *rate.Limiter
	// MinWait is the least a silent probe is waited for once every TTL
	// beyond it up to the destination has answered or been given up (it is
	// then given up after 2× the largest RTT seen at or beyond its TTL, at
	// least MinWait, at most Wait); default 25ms.
	MinWait time.Duration
	// Window bounds how far ahead of what is known probes may go (like
	// traceroute -N): a probe with TTL t is sent only while t <= frontier +
	// Window, the frontier being the highest TTL with a probe that answered
	// or was given up (FirstTTL-1 before any). Without it the first round
	// would send every TTL up to MaxTTL at once, and each probe at or past
	// the destination's distance is a real query to the service (or an ICMP
	// error that spends the destination's rate limit). Default 16.
	Window int
	QName  string // DNS query name for UDP/53 probes, default probe.NameHostnameBind
	// OnHop, when set, is called (from the engine's goroutine, in TTL order)
	// as soon as each hop is final, for streaming output. It must not block.
	OnHop func(Hop)
	// Net injects the socket layer; nil = the host's sockets.
	Net Network
}
