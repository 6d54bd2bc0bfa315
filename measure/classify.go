package measure

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// headerLen is the size of the fixed DNS header.
const headerLen = 12

// ClassifyReply parses reply as the answer to the identity query (name, id)
// and classifies it. It is pure and total: any byte string gives an Answer,
// bytes that are not a reply to this query give StatusMalformed with a
// Detail saying why. RTT and Transport are left for the caller.
func ClassifyReply(name string, id uint16, reply []byte) Answer {
	a, _ := Classify(name, id, reply)
	return a
}

// Classify is ClassifyReply plus whether the bytes are a reply to this
// query at all. A flow's reader uses the second result to pass over
// messages that carry the query's ID but answer nothing (a reflected
// query, a spoofed reply for another name) instead of taking them as the
// answer; bytes that carry our ID but do not parse are ours, and
// malformed.
func Classify(name string, id uint16, reply []byte) (a Answer, ours bool) {
	name = dns.Fqdn(name)
	a = Answer{Name: name, Rcode: -1, Size: len(reply), Status: StatusMalformed, Header: Header{TTL: -1}}
	if len(reply) < 2 {
		a.Detail = fmt.Sprintf("reply of %d bytes has no message ID", len(reply))
		return a, false
	}
	if got := binary.BigEndian.Uint16(reply); got != id {
		a.Detail = fmt.Sprintf("reply ID %d does not match query ID %d", got, id)
		return a, false
	}
	if len(reply) < headerLen {
		a.Detail = fmt.Sprintf("reply of %d bytes is shorter than a DNS header (12)", len(reply))
		return a, true
	}
	flags := binary.BigEndian.Uint16(reply[2:])
	if flags&(1<<15) == 0 {
		// Our own query reflected back, or a stray query: never an answer.
		a.Detail = "QR bit clear: the bytes are a query, not a response"
		return a, false
	}
	truncated := flags&(1<<9) != 0

	var m dns.Msg
	if err := m.Unpack(reply); err != nil {
		a.Truncated = truncated
		a.Detail = "unpack reply: " + strings.TrimPrefix(err.Error(), "dns: ")
		if truncated {
			a.Detail = "truncated reply: " + a.Detail
		}
		return a, true
	}
	// miekg accepts a message that ends where the header promised more
	// records. Answers missing without TC are a broken reply, not an empty
	// one; a bare header (answer count 0) stays acceptable.
	if ancount := int(binary.BigEndian.Uint16(reply[6:])); len(m.Answer) < ancount && !m.Truncated {
		a.Detail = fmt.Sprintf("header promises %d answer records, the message holds %d", ancount, len(m.Answer))
		return a, true
	}
	if m.Opcode != dns.OpcodeQuery {
		a.Detail = fmt.Sprintf("reply opcode %s, want QUERY", opcodeString(m.Opcode))
		return a, true
	}

	var sus suspicions
	if len(m.Question) == 0 {
		// Some middleboxes answer with a bare header (QDCOUNT 0): keep the
		// answer, but say that it does not show which question it answers.
		sus.add(SuspectQuestionMissing)
	} else {
		q := m.Question[0]
		if !strings.EqualFold(dns.Fqdn(q.Name), name) {
			a.Detail = fmt.Sprintf("reply is for %q, not %q", q.Name, name)
			return a, false
		}
		if q.Qtype != dns.TypeTXT {
			sus.add(SuspectQuestionMissing)
		}
		if q.Qclass != dns.ClassCHAOS {
			sus.add(SuspectClassNotCH)
		}
	}

	a.Rcode = m.Rcode
	a.Truncated = m.Truncated
	a.Detail = ""
	a.Header = Header{Known: true, AA: m.Authoritative, RA: m.RecursionAvailable, TTL: -1}
	if m.RecursionAvailable {
		sus.add(SuspectRA)
	}
	if m.Rcode == dns.RcodeSuccess && !m.Authoritative {
		sus.add(SuspectAAClear)
	}
	for _, rr := range m.Answer {
		h := rr.Header()
		if h.Class != dns.ClassCHAOS {
			sus.add(SuspectClassNotCH)
		}
		if txt, ok := rr.(*dns.TXT); ok {
			if h.Ttl > 0 {
				sus.add(SuspectTTLNonZero)
			}
			if a.Header.TTL < 0 || int64(h.Ttl) < a.Header.TTL {
				a.Header.TTL = int64(h.Ttl)
			}
			if a.Header.Class == 0 {
				a.Header.Class = h.Class
			}
			for _, s := range txt.Txt {
				a.TXT = append(a.TXT, Unescape(s))
			}
		}
	}
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok && a.NSID == nil {
				// miekg stores the payload as hex it produced itself, so
				// decoding cannot fail; an empty option counts as absent.
				if b, err := hex.DecodeString(n.Nsid); err == nil && len(b) > 0 {
					a.NSID = b
				}
			}
		}
	}
	a.Status = statusFor(m.Rcode, len(a.TXT))
	if a.Status == StatusOtherRcode {
		a.Detail = "rcode " + rcodeString(m.Rcode)
	}
	a.Suspicions = sus.list()
	return a, true
}

func statusFor(rcode, txt int) Status {
	switch rcode {
	case dns.RcodeSuccess:
		if txt > 0 {
			return StatusAnswered
		}
		return StatusEmpty
	case dns.RcodeServerFailure:
		return StatusServFail
	case dns.RcodeNameError:
		return StatusNXDomain
	case dns.RcodeNotImplemented:
		return StatusNotImp
	case dns.RcodeRefused:
		return StatusRefused
	}
	return StatusOtherRcode
}

func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return fmt.Sprintf("%s (%d)", s, rcode)
	}
	return fmt.Sprint(rcode)
}

func opcodeString(op int) string {
	if s, ok := dns.OpcodeToString[op]; ok {
		return s
	}
	return fmt.Sprint(op)
}

// suspicions collects flags once each, in a fixed order so results compare
// and render stably.
type suspicions uint8

var suspicionOrder = []Suspicion{SuspectRA, SuspectAAClear, SuspectClassNotCH, SuspectTTLNonZero, SuspectQuestionMissing}

func (s *suspicions) add(x Suspicion) {
	for i, y := range suspicionOrder {
		if x == y {
			*s |= 1 << i
		}
	}
}

func (s suspicions) list() []Suspicion {
	var out []Suspicion
	for i, y := range suspicionOrder {
		if s&(1<<i) != 0 {
			out = append(out, y)
		}
	}
	return out
}

// Unescape undoes DNS presentation escaping, as miekg/dns keeps TXT
// character-strings and domain names, giving the bytes that were on the
// wire (renderers escape them for a terminal): "\DDD" (three decimal digits, at
// most 255) is the byte DDD, "\X" is X. A "\DDD" above 255 is no byte:
// its backslash is dropped and the digits are kept as text, as for any
// other "\X". A lone trailing backslash stays.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b = append(b, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); n <= 255 {
				b = append(b, byte(n))
				i += 3
				continue
			}
		}
		b = append(b, s[i+1])
		i++
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
