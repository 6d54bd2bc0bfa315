package measure

import (
	"strconv"
	"time"
)

// Identity query names (CHAOS TXT), fully qualified.
const (
	NameHostnameBind  = "hostname.bind."
	NameIDServer      = "id.server."
	NameVersionBind   = "version.bind."
	NameVersionServer = "version.server."
)

// Transport is the DNS transport an answer came over.
type Transport string

// DNS transports.
const (
	UDP Transport = "udp"
	TCP Transport = "tcp"
)

// Status classifies one identity query's outcome.
type Status string

// Statuses of an identity query.
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
	StatusError      Status = "error"     // local failure (socket, no route, ...)
	// StatusUnreachable: an ICMP destination unreachable came back instead
	// of an answer (port unreachable, !N, !H, administratively
	// prohibited; Answer.Detail says which and from whom), or, over TCP,
	// the connection was refused.
	StatusUnreachable Status = "unreachable"
	// StatusNoTXT is a reply without TXT strings whose RCODE is unknown:
	// a RIPE Atlas result that kept only the probe's parse of the answer
	// section ("answers", no "abuf") cannot say NOERROR from SERVFAIL.
	StatusNoTXT Status = "no_txt"
)

// Suspicion names a property of an answer that a real authoritative server
// answering CHAOS identity queries would not show: a hint that something on
// the path (a resolver, a middlebox, an interceptor) answered instead. A
// single answer has no population to compare with, so these are hints;
// the catchment model judges answers against what the service answers
// most vantage points instead.
type Suspicion string

// Answer-level suspicions, decided by ClassifyReply.
const (
	SuspectRA              Suspicion = "ra_set"           // recursion available bit set
	SuspectAAClear         Suspicion = "aa_clear"         // authoritative answer bit clear on a NOERROR answer
	SuspectClassNotCH      Suspicion = "class_not_ch"     // an answer RR (or the echoed question) is not class CH
	SuspectTTLNonZero      Suspicion = "ttl_nonzero"      // a TXT answer with TTL > 0
	SuspectQuestionMissing Suspicion = "question_missing" // QDCOUNT 0 or question differs from what was asked
)

// Header is what a reply's header and records say beyond its TXT strings:
// the facts the catchment model compares across vantage points.
type Header struct {
	// Known is false when only the TXT strings are known (a RIPE Atlas
	// result without "abuf"); the other fields are then zero.
	Known bool
	AA    bool   // authoritative answer
	RA    bool   // recursion available
	Class uint16 // class of the first TXT answer; 0 when there is none
	// TTL is the smallest TTL of the TXT answers; -1 when there is none.
	TTL int64
}

// Answer is the outcome of one identity query.
type Answer struct {
	Name       string    // the query name, fully qualified ("hostname.bind.")
	Transport  Transport // transport of the final attempt ("" when unknown)
	Status     Status    // classification
	Rcode      int       // DNS RCODE when a reply was parsed, else -1
	Header     Header    // flags, class and TTL of the reply
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
func (a Answer) Replied() bool {
	switch a.Status {
	case StatusTimeout, StatusError, StatusMalformed, StatusUnreachable, "":
		return false
	}
	return true
}

// Identity is what a set of answers from one flow says about the instance.
type Identity struct {
	Instance      string // NSID text, else hostname.bind, else id.server ("" when none); untrusted
	Source        string // "nsid", "hostname.bind", "id.server" or ""
	NSID          string // NSID decoded to text ("" when absent or not printable)
	NSIDHex       string // NSID as lower-case hex
	HostnameBind  string // first TXT string of hostname.bind
	IDServer      string // first TXT string of id.server
	VersionBind   string
	VersionServer string
	// Disagree is set when NSID and hostname.bind are both present and differ.
	Disagree bool
}

// Identity sources: where Identity.Instance comes from.
const (
	SourceNSID         = "nsid"
	SourceHostnameBind = "hostname.bind"
	SourceIDServer     = "id.server"
)

// MPLSLabel is one RFC 4950 label stack entry quoted in an ICMP extension.
type MPLSLabel struct {
	Label uint32
	TC    uint8 // traffic class (formerly EXP)
	S     bool  // bottom of stack
	TTL   uint8
}

// UnreachableMark is traceroute's mark for an ICMP destination unreachable
// of ICMP type typ (3 for IPv4, 1 for ICMPv6) and code (RFC 792, RFC 1812,
// RFC 4443): "!N", "!H", "!P", "!X" or "!<code>"; "" for port unreachable.
func UnreachableMark(typ, code int) string {
	if typ == 1 { // ICMPv6 destination unreachable
		switch code {
		case 0:
			return "!N"
		case 1:
			return "!X"
		case 3:
			return "!H"
		case 4:
			return ""
		}
		return "!<" + strconv.Itoa(code) + ">"
	}
	switch code {
	case 0:
		return "!N"
	case 1:
		return "!H"
	case 2:
		return "!P"
	case 3:
		return ""
	case 9, 10, 13:
		return "!X"
	}
	return "!<" + strconv.Itoa(code) + ">"
}
