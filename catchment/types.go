package catchment

import (
	"net/netip"
	"time"

	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/measure"
)

// Family is an IP address family.
type Family uint8

// Address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// FamilyOf returns the family of a (4in6-unmapped) address; 0 when invalid.
func FamilyOf(a netip.Addr) Family {
	switch {
	case !a.IsValid():
		return 0
	case a.Unmap().Is4():
		return IPv4
	}
	return IPv6
}

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "unknown"
}

// Origin is the routed origin of an address, as an ASN source reports it.
type Origin struct {
	ASNs    []uint32 // origin ASes; several for a multi-origin (anycast) prefix
	ASName  string   // untrusted
	Country string   // ISO code of the prefix's registration, when known
}

// AS is the first origin AS, 0 when unknown.
func (o Origin) AS() uint32 {
	if len(o.ASNs) == 0 {
		return 0
	}
	return o.ASNs[0]
}

// Vantage is a point measurements were taken from.
type Vantage struct {
	// Key identifies the vantage across inputs and runs ("atlas:6036",
	// "host:fra1"); observations with equal keys come from one place.
	Key string
	// Label is what an operator reads ("probe 6036", "fra1").
	Label   string
	ProbeID int        // RIPE Atlas probe id; 0 when not an Atlas probe
	Source  netip.Addr // source address of the measurement (may be private behind NAT)
	Public  netip.Addr // public address when known (Atlas "from"); ASN lookups prefer it
	Origin  Origin     // origin of the vantage's address; zero when not looked up
	// Location is where the vantage point is (an Atlas probe's position,
	// --location); the zero Point (not Valid) when unknown.
	Location geo.Point
	// LocationApproximate: the position stands for a country, not a place
	// (geo.Approximate); such a vantage point is never the proof of an
	// impossible answer.
	LocationApproximate bool
}

// LookupAddr is the address whose origin names the vantage's network: the
// public address when known, else the source.
func (v Vantage) LookupAddr() netip.Addr {
	if v.Public.IsValid() {
		return v.Public
	}
	return v.Source
}

// Responder is one address that answered probes at a hop.
type Responder struct {
	Addr netip.Addr
	RTT  time.Duration // smallest RTT of its replies; 0 when unknown (late replies only)
	ASNs []uint32      // origin ASes when known
	// Unreachable is the ICMP unreachable mark of its replies ("!H", "!N",
	// "!P", "!X", "!A", or "!<code>"); "" for time-exceeded and
	// destination replies.
	Unreachable string
}

// Hop is every reply to the probes of one TTL of a flow.
type Hop struct {
	TTL        int
	Responders []Responder // in order of first reply; empty = silent ("*")
	// RateLimited is set when the hop answered and then went silent (a
	// router's ICMP rate limit, most likely).
	RateLimited bool
}

// Silent reports whether no probe at this hop was answered.
func (h Hop) Silent() bool { return len(h.Responders) == 0 }

// Flow is the measurement of one Paris flow (a fixed 5-tuple): its hop list
// and, when its probes were identity queries, the instance at its end.
type Flow struct {
	Proto  string         // "udp", "icmp" or "tcp"
	Source netip.AddrPort // source address and port; port 0 when unknown
	Dport  uint16         // destination port; 0 for ICMP or when unknown
	// ID names the flow where the source port is unknown (an Atlas
	// paris_id); 0 otherwise.
	ID       int
	Hops     []Hop // ordered by TTL
	Reached  bool  // the destination answered
	Identity measure.Identity
	// Answers are the DNS answers that came over this flow (a UDP/53
	// trace's, a sweep flow's, a TCP/53 trace's follow-up); none when
	// the answers came over a flow of their own (Observation.Answers).
	Answers []measure.Answer
}

// Observation is what one vantage measured towards one target address:
// identity answers, traced flows, or both. It is one line of the catchment
// table.
type Observation struct {
	Vantage    Vantage
	Target     netip.Addr
	TargetName string // the name the user measured when it was not an address literal
	// TargetOrigin is the origin of the target's address (the service's
	// origin ASes); zero when not looked up. The target's own replies on
	// a traced flow name it too.
	TargetOrigin Origin
	Time         time.Time        // when the latest part was measured; zero when unknown
	Input        string           // provenance: file name and result index
	Identity     measure.Identity // from the DNS answers; zero when none
	Answers      []measure.Answer
	// DNSSource is the flow the identity queries left from, when known
	// and none of Flows (an id run's single flow); invalid otherwise.
	DNSSource netip.AddrPort
	Flows     []Flow   // one for a trace, many for a flow sweep; none for DNS-only data
	Errors    []string // measurement errors of the vantage (untrusted text)
}

// Family is the target's address family.
func (o *Observation) Family() Family { return FamilyOf(o.Target) }

// Key is the catchment-table key: vantage × target (the target fixes the family).
func (o *Observation) Key() Key {
	return Key{Vantage: o.Vantage.Key, Target: o.Target}
}

// Key identifies one line of the catchment table.
type Key struct {
	Vantage string
	Target  netip.Addr
}
