package measure

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestClassifyReplyCaptured classifies real replies captured by RIPE Atlas
// probes (see the comment at the top of each testdata file).
func TestClassifyReplyCaptured(t *testing.T) {
	tests := []struct {
		file   string
		name   string
		id     uint16
		status Status
		rcode  int
		txt    []string
		nsid   string
		sus    []Suspicion
		detail string // substring, for malformed
	}{
		{
			file: "kroot_hostname_bind_chaos.hex", name: NameHostnameBind, id: 35054,
			status: StatusAnswered, txt: []string{"ns1.fi-hel.k.ripe.net"},
		},
		{
			// A recursor on the path answered for A-root: every flag a
			// real root server would not raise.
			file: "aroot_version_bind_middlebox.hex", name: NameVersionBind, id: 40432,
			status: StatusAnswered, txt: []string{"PowerDNS Recursor 3.5.2 $Id$"},
			sus: []Suspicion{SuspectRA, SuspectAAClear, SuspectClassNotCH, SuspectTTLNonZero},
		},
		{
			file: "kroot_notimp_header_only.hex", name: NameHostnameBind, id: 13604,
			status: StatusNotImp, rcode: dns.RcodeNotImplemented,
			sus: []Suspicion{SuspectRA, SuspectQuestionMissing},
		},
		{
			// Not an identity query (". IN SOA"), but the NSID is real.
			file: "kroot_soa_with_nsid.hex", name: ".", id: 43,
			status: StatusEmpty, nsid: "k3.ams-ix.k.ripe.net",
			sus: []Suspicion{SuspectClassNotCH, SuspectQuestionMissing},
		},
		{
			file: "quad9_id_server_servfail.hex", name: NameIDServer, id: 8279,
			status: StatusServFail, rcode: dns.RcodeServerFailure, sus: []Suspicion{SuspectRA},
		},
		{
			file: "quad9_id_server_refused.hex", name: NameIDServer, id: 20955,
			status: StatusRefused, rcode: dns.RcodeRefused, sus: []Suspicion{SuspectRA},
		},
		{
			file: "quad9_id_server_answered.hex", name: NameIDServer, id: 57825,
			status: StatusAnswered, txt: []string{"res300.vie.rrdns.pch.net"},
			sus: []Suspicion{SuspectRA, SuspectAAClear, SuspectTTLNonZero},
		},
		{
			file: "kroot_hostname_bind_chaos.hex", name: NameIDServer, id: 35054,
			status: StatusMalformed, rcode: -1, detail: `reply is for "hostname.bind."`,
		},
		{
			file: "kroot_hostname_bind_chaos.hex", name: NameHostnameBind, id: 35055,
			status: StatusMalformed, rcode: -1, detail: "reply ID 35054 does not match query ID 35055",
		},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.name, func(t *testing.T) {
			reply := readHex(t, tt.file)
			a := ClassifyReply(tt.name, tt.id, reply)
			if a.Status != tt.status || a.Rcode != tt.rcode {
				t.Errorf("status %q rcode %d, want %q rcode %d (detail %q)", a.Status, a.Rcode, tt.status, tt.rcode, a.Detail)
			}
			if !slices.Equal(a.TXT, tt.txt) {
				t.Errorf("TXT %q, want %q", a.TXT, tt.txt)
			}
			if string(a.NSID) != tt.nsid {
				t.Errorf("NSID %q, want %q", a.NSID, tt.nsid)
			}
			if !slices.Equal(a.Suspicions, tt.sus) {
				t.Errorf("suspicions %v, want %v", a.Suspicions, tt.sus)
			}
			if a.Size != len(reply) {
				t.Errorf("size %d, want %d", a.Size, len(reply))
			}
			if tt.detail != "" && !strings.Contains(a.Detail, tt.detail) {
				t.Errorf("detail %q, want it to mention %q", a.Detail, tt.detail)
			}
			if tt.status != StatusMalformed && tt.status != StatusOtherRcode && a.Detail != "" {
				t.Errorf("unexpected detail %q", a.Detail)
			}
		})
	}
}

// reply builds the answer an authoritative server gives to NewQuery(name,
// id): AA, class CH, TTL 0, the TXT strings, and NSID when nsid != "".
// Each test case then bends one property.
func reply(name string, id uint16, nsid string, txt ...string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(NewQuery(name, id))
	m.Authoritative = true
	m.Extra = nil
	if len(txt) > 0 {
		m.Answer = append(m.Answer, txtRR(name, txt...))
	}
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(1232)
	if nsid != "" {
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: nsid})
	}
	m.Extra = append(m.Extra, opt)
	return m
}

// txtRR builds a CH TXT record from raw strings. It goes through RFC 3597
// wire data because dns.TXT would read the strings as zone-file text and
// interpret backslashes, and these tests need exact bytes on the wire.
func txtRR(name string, txt ...string) dns.RR {
	var rdata []byte
	for _, s := range txt {
		rdata = append(rdata, byte(len(s)))
		rdata = append(rdata, s...)
	}
	return &dns.RFC3597{
		Hdr:   dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS},
		Rdata: hex.EncodeToString(rdata),
	}
}

func pack(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	return b
}

func TestClassifyReply(t *testing.T) {
	const id = 0xbeef
	name := NameHostnameBind
	tests := []struct {
		desc   string
		msg    func() *dns.Msg
		status Status
		rcode  int
		txt    []string
		nsid   string
		sus    []Suspicion
		tc     bool
	}{
		{
			desc:   "clean answer with NSID",
			msg:    func() *dns.Msg { return reply(name, id, "67312d6672612d31", "g1.fra") },
			status: StatusAnswered, txt: []string{"g1.fra"}, nsid: "g1-fra-1",
		},
		{
			desc: "several TXT strings and RRs, raw bytes kept unescaped",
			msg: func() *dns.Msg {
				m := reply(name, id, "", "a \"quoted\" \\ \x00\x1b[31m\xff", "second")
				m.Answer = append(m.Answer, txtRR(name, "third"))
				return m
			},
			status: StatusAnswered, txt: []string{"a \"quoted\" \\ \x00\x1b[31m\xff", "second", "third"},
		},
		{
			desc:   "NOERROR without TXT is empty",
			msg:    func() *dns.Msg { return reply(name, id, "") },
			status: StatusEmpty,
		},
		{
			desc: "NOERROR with only a non-TXT record is empty",
			msg: func() *dns.Msg {
				m := reply(name, id, "")
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassCHAOS}, A: []byte{192, 0, 2, 1}})
				return m
			},
			status: StatusEmpty,
		},
		{desc: "refused", msg: rcode(name, id, dns.RcodeRefused), status: StatusRefused, rcode: 5},
		{desc: "notimp", msg: rcode(name, id, dns.RcodeNotImplemented), status: StatusNotImp, rcode: 4},
		{desc: "servfail", msg: rcode(name, id, dns.RcodeServerFailure), status: StatusServFail, rcode: 2},
		{desc: "nxdomain", msg: rcode(name, id, dns.RcodeNameError), status: StatusNXDomain, rcode: 3},
		{desc: "other rcode", msg: rcode(name, id, dns.RcodeYXDomain), status: StatusOtherRcode, rcode: 6},
		{desc: "extended rcode from OPT", msg: rcode(name, id, dns.RcodeBadVers), status: StatusOtherRcode, rcode: 16},
		{
			desc:   "RA set",
			msg:    func() *dns.Msg { m := reply(name, id, "", "x"); m.RecursionAvailable = true; return m },
			status: StatusAnswered, txt: []string{"x"}, sus: []Suspicion{SuspectRA},
		},
		{
			desc:   "AA clear on NOERROR",
			msg:    func() *dns.Msg { m := reply(name, id, "", "x"); m.Authoritative = false; return m },
			status: StatusAnswered, txt: []string{"x"}, sus: []Suspicion{SuspectAAClear},
		},
		{
			desc: "AA clear on REFUSED is normal",
			msg: func() *dns.Msg {
				m := rcode(name, id, dns.RcodeRefused)()
				m.Authoritative = false
				return m
			},
			status: StatusRefused, rcode: 5,
		},
		{
			desc: "answer class IN",
			msg: func() *dns.Msg {
				m := reply(name, id, "", "x")
				m.Answer[0].Header().Class = dns.ClassINET
				return m
			},
			status: StatusAnswered, txt: []string{"x"}, sus: []Suspicion{SuspectClassNotCH},
		},
		{
			desc: "echoed question class IN",
			msg: func() *dns.Msg {
				m := reply(name, id, "", "x")
				m.Question[0].Qclass = dns.ClassINET
				return m
			},
			status: StatusAnswered, txt: []string{"x"}, sus: []Suspicion{SuspectClassNotCH},
		},
		{
			desc: "TTL on TXT",
			msg: func() *dns.Msg {
				m := reply(name, id, "", "x")
				m.Answer[0].Header().Ttl = 86400
				return m
			},
			status: StatusAnswered, txt: []string{"x"}, sus: []Suspicion{SuspectTTLNonZero},
		},
		{
			desc:   "question missing",
			msg:    func() *dns.Msg { m := reply(name, id, "", "x"); m.Question = nil; return m },
			status: StatusAnswered, txt: []string{"x"}, sus: []Suspicion{SuspectQuestionMissing},
		},
		{
			desc: "question for another type",
			msg: func() *dns.Msg {
				m := reply(name, id, "", "x")
				m.Question[0].Qtype = dns.TypeA
				return m
			},
			status: StatusAnswered, txt: []string{"x"}, sus: []Suspicion{SuspectQuestionMissing},
		},
		{
			desc: "all suspicions at once, each listed once in a fixed order",
			msg: func() *dns.Msg {
				m := reply(name, id, "", "x", "y")
				m.Answer = append(m.Answer, dns.Copy(m.Answer[0]))
				for _, rr := range m.Answer {
					rr.Header().Class, rr.Header().Ttl = dns.ClassINET, 60
				}
				m.Question = nil
				m.RecursionAvailable, m.Authoritative = true, false
				return m
			},
			status: StatusAnswered, txt: []string{"x", "y", "x", "y"},
			sus: []Suspicion{SuspectRA, SuspectAAClear, SuspectClassNotCH, SuspectTTLNonZero, SuspectQuestionMissing},
		},
		{
			desc: "0x20 case in the echoed name still matches",
			msg: func() *dns.Msg {
				m := reply(name, id, "", "x")
				m.Question[0].Name = "HostName.BIND."
				return m
			},
			status: StatusAnswered, txt: []string{"x"},
		},
		{
			desc:   "truncated",
			msg:    func() *dns.Msg { m := reply(name, id, "6e"); m.Truncated = true; return m },
			status: StatusEmpty, nsid: "n", tc: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			b := pack(t, tt.msg())
			a := ClassifyReply(name, id, b)
			if a.Status != tt.status || a.Rcode != tt.rcode {
				t.Errorf("status %q rcode %d, want %q rcode %d (detail %q)", a.Status, a.Rcode, tt.status, tt.rcode, a.Detail)
			}
			if !slices.Equal(a.TXT, tt.txt) {
				t.Errorf("TXT %q, want %q", a.TXT, tt.txt)
			}
			if string(a.NSID) != tt.nsid {
				t.Errorf("NSID %q, want %q", a.NSID, tt.nsid)
			}
			if !slices.Equal(a.Suspicions, tt.sus) {
				t.Errorf("suspicions %v, want %v", a.Suspicions, tt.sus)
			}
			if a.Truncated != tt.tc {
				t.Errorf("truncated %v, want %v", a.Truncated, tt.tc)
			}
			if a.Name != name || a.Size != len(b) {
				t.Errorf("name %q size %d, want %q %d", a.Name, a.Size, name, len(b))
			}
		})
	}
}

func rcode(name string, id uint16, rc int) func() *dns.Msg {
	return func() *dns.Msg {
		m := reply(name, id, "")
		m.Rcode = rc
		if rc > 0xf {
			// The upper bits ride in the OPT record; Pack splits them.
			m.Extra[0].(*dns.OPT).SetExtendedRcode(uint16(rc))
		}
		return m
	}
}

func TestClassifyReplyMalformed(t *testing.T) {
	const id = 0x0102
	good, err := reply(NameHostnameBind, id, "", "g1.fra").Pack()
	if err != nil {
		t.Fatal(err)
	}
	header := func(flags uint16, counts ...uint16) []byte {
		b := binary.BigEndian.AppendUint16(nil, id)
		b = binary.BigEndian.AppendUint16(b, flags)
		for _, c := range counts {
			b = binary.BigEndian.AppendUint16(b, c)
		}
		return b
	}
	tests := []struct {
		desc   string
		reply  []byte
		detail string
	}{
		{"nothing", nil, "0 bytes has no message ID"},
		{"one byte", []byte{0x01}, "1 bytes has no message ID"},
		{"shorter than a header", []byte{0x01, 0x02, 0x84, 0x00, 0, 0}, "shorter than a DNS header"},
		{"wrong ID", append([]byte{0x02, 0x01}, good[2:]...), "reply ID 513 does not match query ID 258"},
		{"query, not response", append(header(0x0000, 1, 0, 0, 0), good[12:]...), "QR bit clear"},
		{"question for another name", pack(t, reply(NameIDServer, id, "", "x")), `reply is for "id.server."`},
		{"cut inside the question", header(0x8400, 1, 0, 0, 0, 0x3f, 'x'), "unpack reply"},
		{"cut inside an answer", good[:len(good)-15], "unpack reply"},
		{"counts promise records that are absent", append(header(0x8400, 1, 3, 0, 0), good[12:31]...), "header promises 3 answer records, the message holds 0"},
		{"truncated and cut", append(header(0x8600, 1, 1, 0, 0), good[12:40]...), "truncated reply: unpack reply"},
		{"opcode NOTIFY", append(header(0x8400|dns.OpcodeNotify<<11, 1, 1, 0, 0), good[12:]...), "opcode NOTIFY"},
		{"compression loop", append(header(0x8400, 1, 0, 0, 0), 0xc0, 12, 0, 16, 0, 3), "unpack reply"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			a := ClassifyReply(NameHostnameBind, id, tt.reply)
			if a.Status != StatusMalformed || a.Rcode != -1 {
				t.Errorf("status %q rcode %d, want malformed, -1", a.Status, a.Rcode)
			}
			if !strings.Contains(a.Detail, tt.detail) {
				t.Errorf("detail %q, want it to mention %q", a.Detail, tt.detail)
			}
			if a.TXT != nil || a.NSID != nil || a.Suspicions != nil {
				t.Errorf("malformed answer carries data: %+v", a)
			}
		})
	}
}

func TestUnescapeTXT(t *testing.T) {
	// Every byte value, through miekg's escaping and back.
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	for _, raw := range [][]byte{all, []byte(`\123`), []byte(`"\"`), []byte("plain"), {}} {
		for chunk := range slices.Chunk(raw, 255) {
			m := reply(NameHostnameBind, 1, "", string(chunk))
			b, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			a := ClassifyReply(NameHostnameBind, 1, b)
			if len(a.TXT) != 1 || !bytes.Equal([]byte(a.TXT[0]), chunk) {
				t.Errorf("TXT round trip of %q gave %q", chunk, a.TXT)
			}
		}
	}
}

// FuzzClassifyReply feeds arbitrary bytes to the parser of untrusted
// answers: it must never panic and must keep its own invariants.
func FuzzClassifyReply(f *testing.F) {
	seeds := []struct {
		file string
		name string
		id   uint16
	}{
		{"kroot_hostname_bind_chaos.hex", NameHostnameBind, 35054},
		{"aroot_version_bind_middlebox.hex", NameVersionBind, 40432},
		{"kroot_notimp_header_only.hex", NameHostnameBind, 13604},
		{"kroot_soa_with_nsid.hex", ".", 43},
		{"quad9_id_server_servfail.hex", NameIDServer, 8279},
		{"quad9_id_server_refused.hex", NameIDServer, 20955},
		{"quad9_id_server_answered.hex", NameIDServer, 57825},
		{"query_hostname_bind_id1234.hex", NameHostnameBind, 0x1234},
	}
	for _, s := range seeds {
		f.Add(s.name, s.id, readHex(f, s.file))
	}
	b, _ := reply(NameHostnameBind, 7, "67312d6672612d31", "g1.fra", "\x00\xff\\\"").Pack()
	f.Add(NameHostnameBind, uint16(7), b)
	f.Add(NameHostnameBind, uint16(7), b[:len(b)/2])
	f.Add("", uint16(0), []byte{})
	f.Fuzz(func(t *testing.T, name string, id uint16, reply []byte) {
		a := ClassifyReply(name, id, reply)
		if a.Size != len(reply) {
			t.Errorf("size %d for %d bytes", a.Size, len(reply))
		}
		switch a.Status {
		case StatusMalformed:
			if a.Rcode != -1 || a.Detail == "" {
				t.Errorf("malformed with rcode %d detail %q", a.Rcode, a.Detail)
			}
		case StatusAnswered:
			if a.Rcode != 0 || len(a.TXT) == 0 {
				t.Errorf("answered with rcode %d and %d TXT strings", a.Rcode, len(a.TXT))
			}
		case StatusEmpty:
			if a.Rcode != 0 || len(a.TXT) != 0 {
				t.Errorf("empty with rcode %d and %d TXT strings", a.Rcode, len(a.TXT))
			}
		case StatusRefused, StatusNotImp, StatusServFail, StatusNXDomain, StatusOtherRcode:
			if a.Rcode <= 0 {
				t.Errorf("%s with rcode %d", a.Status, a.Rcode)
			}
		default:
			t.Errorf("status %q from a pure parser", a.Status)
		}
		if a.Status != StatusMalformed && (len(reply) < 12 || binary.BigEndian.Uint16(reply) != id || reply[2]&0x80 == 0) {
			t.Errorf("%s for bytes that are not a reply with ID %d", a.Status, id)
		}
		for i := 1; i < len(a.Suspicions); i++ {
			if slices.Index(suspicionOrder, a.Suspicions[i-1]) >= slices.Index(suspicionOrder, a.Suspicions[i]) {
				t.Errorf("suspicions out of order or repeated: %v", a.Suspicions)
			}
		}
		if a.NSID != nil && len(a.NSID) == 0 {
			t.Error("empty non-nil NSID")
		}
	})
}

// FuzzClassifyReplyTXT: whatever bytes a server puts in its TXT strings
// come out of ClassifyReply unchanged (they pass through miekg's escaping
// and our unescaping on the way).
func FuzzClassifyReplyTXT(f *testing.F) {
	f.Add([]byte("ns1.fi-hel.k.ripe.net"), []byte(`\065\\"`))
	f.Add([]byte{0, 0xff, '\\', '1', '2', '3'}, []byte{})
	f.Fuzz(func(t *testing.T, s1, s2 []byte) {
		if len(s1) > 255 || len(s2) > 255 {
			return
		}
		b, err := reply(NameHostnameBind, 9, "", string(s1), string(s2)).Pack()
		if err != nil {
			t.Fatal(err)
		}
		a := ClassifyReply(NameHostnameBind, 9, b)
		if len(a.TXT) != 2 || a.TXT[0] != string(s1) || a.TXT[1] != string(s2) {
			t.Errorf("TXT %q, want %q", a.TXT, []string{string(s1), string(s2)})
		}
	})
}

// TestClassifyReplyHeader: the facts the catchment model compares across
// vantage points (AA, RA, the TXT class and smallest TTL) come from the
// reply itself.
func TestClassifyReplyHeader(t *testing.T) {
	for _, tt := range []struct {
		file string
		name string
		id   uint16
		want Header
	}{
		{"kroot_hostname_bind_chaos.hex", NameHostnameBind, 35054, Header{Known: true, AA: true, Class: dns.ClassCHAOS, TTL: 0}},
		{"aroot_version_bind_middlebox.hex", NameVersionBind, 40432, Header{Known: true, RA: true, Class: dns.ClassINET, TTL: 7984}},
		{"quad9_id_server_servfail.hex", NameIDServer, 8279, Header{Known: true, RA: true, TTL: -1}},
	} {
		a := ClassifyReply(tt.name, tt.id, readHex(t, tt.file))
		if a.Header != tt.want {
			t.Errorf("%s: header %+v, want %+v", tt.file, a.Header, tt.want)
		}
	}
	if a := ClassifyReply(NameHostnameBind, 1, []byte{0}); a.Header.Known || a.Replied() {
		t.Errorf("a byte that is no reply: %+v", a)
	}
}
