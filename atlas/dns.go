package atlas

import (
	"encoding/base64"
	"encoding/binary"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/probe"
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
// ("answers": TXT strings only, flags unknown). It returns the classified
// answer and what it says about the instance (see probe.Summarise).
func (d DNSReply) Classify() (catchment.Answer, catchment.Identity) {
	switch {
	case d.Abuf != nil:
		return classifyAbuf(d)
	case d.Timeout:
		return catchment.Answer{Status: probe.StatusTimeout, Detail: d.Error}, catchment.Identity{}
	case d.Error != "":
		return catchment.Answer{Status: probe.StatusError, Detail: d.Error}, catchment.Identity{}
	}
	a := catchment.Answer{Status: probe.StatusEmpty, RTT: d.RTT,
		Detail: "no abuf: the probe kept only its parse of the answers (flags and rcode unknown)"}
	for _, x := range d.Answers {
		if a.Name == "" {
			a.Name = strings.TrimSuffix(x.Name, ".")
		}
		if strings.EqualFold(x.Type, "TXT") {
			a.TXT = append(a.TXT, x.RDATA...)
		}
	}
	if len(a.TXT) > 0 {
		a.Status = probe.StatusAnswered
	}
	id := probe.Summarise([]probe.Answer{{Name: dns.Fqdn(a.Name), Status: a.Status, TXT: a.TXT}})
	return a, identityOf(id)
}

func classifyAbuf(d DNSReply) (catchment.Answer, catchment.Identity) {
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
	pa := probe.ClassifyReply(name, id, d.Abuf)
	pa.RTT = d.RTT
	a := catchment.Answer{
		Name:   strings.TrimSuffix(pa.Name, "."),
		Status: pa.Status,
		RTT:    pa.RTT,
		TXT:    pa.TXT,
		NSID:   probe.DecodeNSID(pa.NSID),
		Detail: pa.Detail,
	}
	for _, s := range pa.Suspicions {
		// A measurement that asked class IN (not an identity query) gets
		// IN answers, TTLs and RA from a resolver by design: only a missing
		// question still means something there.
		if qclass == dns.ClassINET && s != probe.SuspectQuestionMissing {
			continue
		}
		a.Suspicions = append(a.Suspicions, s)
	}
	return a, identityOf(probe.Summarise([]probe.Answer{pa}))
}

func identityOf(id probe.Identity) catchment.Identity {
	return catchment.Identity{Instance: id.Instance, Source: id.InstanceSource, NSID: id.NSID, HostnameBind: id.HostnameBind, IDServer: id.IDServer}
}
