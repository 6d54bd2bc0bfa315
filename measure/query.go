package measure

import "github.com/miekg/dns"

// ednsUDPSize is the EDNS0 UDP payload size advertised in every query: the
// DNS flag day 2020 value, small enough to avoid IP fragmentation on any
// path, large enough for identity answers with NSID.
const ednsUDPSize = 1232

// NewQuery builds the CHAOS TXT identity query for name with message ID id.
//
// SetQuestion sets class IN and RD=1, both wrong here: identity names live in
// class CH, and RD=1 invites a resolver on the path to recurse and answer
// for the real server. The query carries EDNS0 with an empty NSID option
// (RFC 5001) so the instance names itself even if it hides hostname.bind.
func NewQuery(name string, id uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	m.Id = id
	m.RecursionDesired = false
	m.Question[0].Qclass = dns.ClassCHAOS

	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(ednsUDPSize)
	opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	m.Extra = append(m.Extra, opt)
	return m
}
