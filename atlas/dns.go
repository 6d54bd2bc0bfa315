package atlas

import (
	"encoding/base64"
	"encoding/binary"
	"slices"
	"sort"
	"strings"

	"github.com/anycheck/anycheck/measure"

	"github.com/miekg/dns"
)

func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Classify reads a DNS reply the way `anycheck id` reads its own: from the
// raw answer (abuf, decoded with miekg/dns: flags, class, TTLs, NSID from
// the OPT record) when the probe kept it, else from the probe's own parse
// ("answers": TXT strings only; flags and RCODE unknown). It returns the
// classified answer and what it says about the instance (see
// measure.Summarise).
func (d DNSReply) Classify() (measure.Answer, measure.Identity) {
	a, id := d.classify()
	if t := measure.Transport(d.Proto); t == measure.UDP || t == measure.TCP {
		a.Transport = t
	}
	return a, id
}

func (d DNSReply) classify() (measure.Answer, measure.Identity) {
	switch {
	case d.Abuf != nil:
		return classifyAbuf(d)
	case d.Timeout:
		return measure.Answer{Status: measure.StatusTimeout, Rcode: -1, Header: measure.Header{TTL: -1}, Detail: d.Error}, measure.Identity{}
	case d.Error != "":
		return measure.Answer{Status: measure.StatusError, Rcode: -1, Header: measure.Header{TTL: -1}, Detail: d.Error}, measure.Identity{}
	}
	a := measure.Answer{Status: measure.StatusNoTXT, Rcode: -1, Header: measure.Header{TTL: -1}, RTT: d.RTT, Size: d.Size,
		Detail: "no abuf: the probe kept only its parse of the answers (flags and rcode unknown)"}
	for _, x := range d.Answers {
		if a.Name == "" && x.Name != "" {
			a.Name = dns.Fqdn(x.Name)
		}
		if strings.EqualFold(x.Type, "TXT") {
			a.TXT = append(a.TXT, x.RDATA...)
		}
	}
	if len(a.TXT) > 0 {
		// TXT strings in the answer section: the reply was NOERROR.
		a.Status, a.Rcode = measure.StatusAnswered, dns.RcodeSuccess
	}
	return a, measure.Summarise([]measure.Answer{a})
}

func classifyAbuf(d DNSReply) (measure.Answer, measure.Identity) {
	// The question (and so the name to classify against) comes from the
	// answer itself; a reply without one is flagged question_missing.
	name := ""
	var qclass uint16
	var m dns.Msg
	if m.Unpack(d.Abuf) == nil && len(m.Question) > 0 {
		name, qclass = m.Question[0].Name, m.Question[0].Qclass
	}
	var id uint16
	if len(d.Abuf) >= 2 {
		id = binary.BigEndian.Uint16(d.Abuf)
	}
	a := measure.ClassifyReply(name, id, d.Abuf)
	a.RTT = d.RTT
	if qclass == dns.ClassINET {
		// A measurement that asked class IN (not an identity query) gets
		// IN answers, TTLs and RA from a resolver by design: only a
		// missing question still means something there.
		a.Suspicions = slices.DeleteFunc(a.Suspicions, func(s measure.Suspicion) bool { return s != measure.SuspectQuestionMissing })
	}
	return a, measure.Summarise([]measure.Answer{a})
}
