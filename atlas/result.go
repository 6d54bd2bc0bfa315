package atlas

import (
	"net/netip"
	"time"

	"github.com/anycheck/anycheck/measure"
)

// Result types this reader understands.
const (
	TypeTraceroute = "traceroute"
	TypeDNS        = "dns"
)

// Result is one RIPE Atlas measurement result (one probe, one run), in any
// firmware's layout, decoded. Unknown values are zero; addresses that do
// not parse are invalid netip.Addr.
type Result struct {
	Type     string     // TypeTraceroute or TypeDNS
	Firmware int        // "fw"
	ProbeID  int        // "prb_id"
	MsmID    int        // "msm_id"
	Time     time.Time  // "timestamp" (UTC)
	AF       int        // 4 or 6
	Dst      netip.Addr // "dst_addr" (fw 4400: "addr"/"address")
	DstName  string     // "dst_name" (fw 4400: "name"); untrusted
	From     netip.Addr // the probe's public address as the controller saw it
	Src      netip.Addr // "src_addr": the probe's own source address (often private)
	Proto    string     // "udp", "icmp" or "tcp" (lower case)
	Error    string     // a result-level error ("timeout 5000 ms", socket errors)
	Trace    *Traceroute
	DNS      []DNSReply // one for "result", one per "resultset" entry
	// Warnings say what was left out of a result that was read: values
	// outside what Atlas writes (a time past year 9999, hop numbers
	// outside 1…255, TTLs outside 0…255) and hops past the 255th.
	Warnings []string
}

// Traceroute is the traceroute part of a result.
type Traceroute struct {
	ParisID int // the Paris flow id; 0 = classic traceroute (a new flow per probe)
	Size    int
	EndTime time.Time
	Hops    []TraceHop
}

// TraceHop is one TTL of an Atlas traceroute.
type TraceHop struct {
	TTL int // 1…; Atlas's final probe to the target has TTL 255
	// Error replaces the replies when the probe could not even send
	// ("connect failed: Network is unreachable").
	Error   string
	Replies []TraceReply
}

// TraceReply is one probe's outcome at a hop.
type TraceReply struct {
	Timeout bool       // {"x":"*"}: no reply
	From    netip.Addr // invalid when absent or empty
	RTT     time.Duration
	// Late is set (> 0) when the reply came after later probes were sent
	// and has no RTT: it belongs to the probe that many places earlier.
	Late int
	// Err is the ICMP unreachable code letter ("N", "H", "A", "P", "p",
	// "h") or number; "" for time exceeded and destination replies.
	Err   string
	TTL   int        // TTL of the reply packet; -1 when absent
	ITTL  int        // TTL of the probe as quoted by the router: 1 unless the router says otherwise
	Edst  netip.Addr // the destination the quoted probe carried, when it differs from the target
	Size  int
	Flags string // TCP flags of a TCP reply ("SA", "R")
	Error string // a per-probe error (bind or send failure)
	MPLS  []measure.MPLSLabel
}

// DNSReply is one DNS query's outcome: the result, or one resultset entry.
type DNSReply struct {
	Dst     netip.Addr // the server asked (a resultset entry's own dst_addr)
	AF      int
	Proto   string
	Time    time.Time
	Timeout bool   // error {"timeout": N}
	Error   string // any error, timeouts included
	RTT     time.Duration
	Size    int
	Abuf    []byte        // the raw answer; nil when the probe kept only "answers"
	Answers []AtlasAnswer // the probe's own parse of the answer section
}

// AtlasAnswer is one entry of the probe-parsed "answers" list.
type AtlasAnswer struct {
	Type  string
	Name  string
	RDATA []string // fw < 4750: one string; later: a list
}
