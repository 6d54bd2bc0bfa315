package probe

import (
	"context"
	"net"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Identity query names. Run asks the first two unless Options.Names says
// otherwise, and the version names too when Options.Version is set.
const (
	NameHostnameBind  = "hostname.bind."
	NameIDServer      = "id.server."
	NameVersionBind   = "version.bind."
	NameVersionServer = "version.server."
)

// Transport is the DNS transport an answer came over.
type Transport string

const (
	UDP Transport = "udp"
	TCP Transport = "tcp"
)

// Status classifies one identity query's outcome.
type Status string

const (
	StatusAnswered   Status = "answered"  // NOERROR with at least one TXT string
	StatusEmpty      Status = "empty"     // NOERROR, no TXT in the answer section
	StatusRefused    Status = "refused"   // RCODE 5
	StatusNotImp     Status = "notimp"    // RCODE 4
	StatusServFail   Status = "servfail"  // RCODE 2
	StatusNXDomain   Status = "nxdomain"  // RCODE 3
	StatusOtherRcode Status = "rcode"     // any other RCODE (see Answer.Rcode)
	StatusTimeout    Status = "timeout"   // no answer within the deadline
	StatusMalformed  Status = "malformed" // bytes came back that are not a DNS reply to our query
	StatusError      Status = "error"     // local failure (socket, connection refused, ...)
)

// Suspicion names a property of an answer that a real authoritative server
// answering CHAOS identity queries would not show: a hint that something on
// the path (a resolver, a middlebox, an interceptor) answered instead.
type Suspicion string

const (
	SuspectRA              Suspicion = "ra_set"           // recursion available bit set
	SuspectAAClear         Suspicion = "aa_clear"         // authoritative answer bit clear on a NOERROR answer
	SuspectClassNotCH      Suspicion = "class_not_ch"     // an answer RR (or the echoed question) is not class CH
	SuspectTTLNonZero      Suspicion = "ttl_nonzero"      // a TXT answer with TTL > 0
	SuspectQuestionMissing Suspicion = "question_missing" // QDCOUNT 0 or question differs from what was asked
)

// Answer is the outcome of one identity query.
type Answer struct {
	Name       string    // the query name, fully qualified ("hostname.bind.")
	Transport  Transport // transport of the final attempt
	Status     Status    // classification
	Rcode      int       // DNS RCODE when a reply was parsed, else -1
	TXT        []string  // TXT strings of the answer section, raw (untrusted, unescaped)
	NSID       []byte    // EDNS NSID payload, raw (nil when absent)
	RTT        time.Duration
	Truncated  bool        // the UDP reply had TC set (and the query was retried over TCP)
	Suspicions []Suspicion // empty for a clean authoritative answer
	Detail     string      // human detail for timeout/error/malformed (no trailing newline)
	Size       int         // reply size in bytes (0 when none)
}

// Replied reports whether a DNS reply to the query's question came back,
// with any RCODE: what counts as an answer from the server. A timeout, a
// local error and bytes that are no reply to the question (malformed) do
// not.
func (a Answer) Replied() bool { return a.Rcode >= 0 }

// Identity is what a set of answers from one flow says about the instance.
type Identity struct {
	Instance       string // NSID text, else hostname.bind, else id.server ("" when none)
	InstanceSource string // "nsid", "hostname.bind", "id.server" or ""
	NSID           string // NSID decoded to text ("" when absent); untrusted
	NSIDHex        string // NSID as lower-case hex
	HostnameBind   string // first TXT string of hostname.bind
	IDServer       string // first TXT string of id.server
	VersionBind    string
	VersionServer  string
	// Disagree is set when NSID and hostname.bind are both present and differ.
	Disagree bool
}

// Result is one run of the query set over one flow (one source port).
type Result struct {
	Target   netip.AddrPort // server
	Source   netip.AddrPort // local address and port actually used (the flow)
	Started  time.Time
	Answers  []Answer
	Identity Identity
}

// Options configures Run.
type Options struct {
	Target netip.AddrPort // server address and port (port 53 usually)
	// Source is the local address/port of the flow. An invalid address means
	// "any"; port 0 means an ephemeral port chosen once for the whole run.
	Source  netip.AddrPort
	Names   []string      // query names; nil = hostname.bind and id.server
	Version bool          // also ask version.bind and version.server
	TCP     bool          // every query over one TCP connection
	Timeout time.Duration // per query; 0 = 2s
	// Limiter is the packet budget shared by every run of the caller
	// (one token per query sent); nil sends at once. Time a query waits
	// for a token does not count against its Timeout.
	Limiter *rate.Limiter
	// Net lets tests and callers inject sockets; nil = the real network.
	Net Network
}

// Network opens the sockets a run uses. Tests inject their own; nil in
// Options means the host's real network stack.
type Network interface {
	// ListenUDP opens a UDP socket bound to laddr (port 0 = ephemeral) and
	// connected to raddr, so every query of the run leaves from one port.
	ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error)
	// DialTCP connects from laddr (port 0 = ephemeral) to raddr.
	DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error)
}
