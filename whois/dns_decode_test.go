package whois

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/whois/whoistest"
)

// TestDNSASNameIsText is issue 13 item 6: an AS name sent as UTF-8 bytes
// comes back as that text, not as DNS presentation escapes
// (`Soci\195\169t\195\169 \"quoted\"`), and so does a name longer than one
// TXT character-string.
func TestDNSASNameIsText(t *testing.T) {
	names := map[string]string{
		"192.0.2.0/24":    `Société Générale "quoted" back\slash`,
		"198.51.100.0/24": strings.Repeat("Ünïcødé-", 40) + "\x1b[31m",
	}
	var rows []whoistest.Row
	asn := uint32(64500)
	for p, name := range names {
		rows = append(rows, whoistest.Row{Prefix: netip.MustParsePrefix(p), ASNs: []uint32{asn}, Country: "ZZ", ASName: name})
		asn++
	}
	_, addr := startDNS(t, rows, whoistest.Zones{})
	r, err := New("cymru-dns", Options{DNSServer: addr, Timeout: 5 * time.Second, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 { // from the source, then from the cache
		got, err := r.Lookup(context.Background(), addrs("192.0.2.1", "198.51.100.1"))
		if err != nil {
			t.Fatal(err)
		}
		for p, name := range names {
			a := netip.MustParsePrefix(p).Addr().Next()
			if o := got[a]; o.ASName != name || o.Cached != (run == 1) {
				t.Errorf("run %d: %s name %q (cached %v), want %q", run, a, o.ASName, o.Cached, name)
			}
		}
	}
}

// TestReverseNamesRawBytes is issue 13 item 15: a PTR name is decoded from
// presentation form once, so a renderer's escaping is the only one.
func TestReverseNamesRawBytes(t *testing.T) {
	h, addr := startDNS(t, nil, whoistest.Zones{})
	want := map[netip.Addr]string{
		netip.MustParseAddr("192.0.2.1"):    "r1.société.example",
		netip.MustParseAddr("192.0.2.2"):    "evil\x1b[2J.example",
		netip.MustParseAddr("2001:db8::53"): `a\.b.example`,
	}
	for a, n := range want {
		h.SetName(a, n)
	}
	want[netip.MustParseAddr("2001:db8::53")] = "a.b.example" // an escaped dot inside a label
	got := ReverseNames(context.Background(), addrs("192.0.2.1", "192.0.2.2", "2001:db8::53"), PTROptions{Server: addr, Timeout: 2 * time.Second})
	for a, n := range want {
		if got[a] != n {
			t.Errorf("%s: %q, want %q", a, got[a], n)
		}
	}
}

func TestAnswerRecords(t *testing.T) {
	q := "7.2.0.192.in-addr.arpa."
	rr := func(s string) dns.RR { return must(dns.NewRR(s)) }
	tests := []struct {
		name   string
		answer []dns.RR
		want   string
	}{
		{"direct", []dns.RR{rr(q + " 60 IN PTR r1.example.")}, "r1.example"},
		{"owner differs in case", []dns.RR{rr(strings.ToUpper(q) + " 60 IN PTR r1.example.")}, "r1.example"},
		{"RFC 2317 CNAME", []dns.RR{rr(q + " 60 IN CNAME 7.0-63.2.0.192.in-addr.arpa."), rr("7.0-63.2.0.192.in-addr.arpa. 60 IN PTR r2.example.")}, "r2.example"},
		{"another name's PTR", []dns.RR{rr("8.2.0.192.in-addr.arpa. 60 IN PTR spoof.example.")}, ""},
		{"CNAME loop", []dns.RR{rr(q + " 60 IN CNAME a.example."), rr("a.example. 60 IN CNAME " + q)}, ""},
		{"no answer", nil, ""},
	}
	for _, tt := range tests {
		m := new(dns.Msg)
		m.Answer = tt.answer
		if got := ptrName(m, q); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// wireRR builds one resource record in wire form: owner "x.", type, class
// IN, TTL 0, and rdata.
func wireRR(rrtype uint16, rdata []byte) []byte {
	b := []byte{1, 'x', 0}
	b = binary.BigEndian.AppendUint16(b, rrtype)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
	return append(b, rdata...)
}

// FuzzTXTText: whatever bytes a TXT record carries, txtStrings gives back
// exactly those bytes (character-strings joined).
func FuzzTXTText(f *testing.F) {
	f.Add([]byte(`Société "q" \195 back\slash`))
	f.Add([]byte{0, 1, '\\', '"', 0xff, 0xc3})
	f.Add(bytes.Repeat([]byte("é"), 200))
	f.Fuzz(func(t *testing.T, text []byte) {
		if len(text) > 4000 {
			return
		}
		var rdata []byte
		for rest := text; len(rest) > 0; {
			n := min(len(rest), 255)
			rdata = append(append(rdata, byte(n)), rest[:n]...)
			rest = rest[n:]
		}
		if len(rdata) == 0 {
			rdata = []byte{0}
		}
		rr, _, err := dns.UnpackRR(wireRR(dns.TypeTXT, rdata), 0)
		if err != nil {
			t.Fatal(err)
		}
		got := txtStrings([]dns.RR{rr})
		if len(got) != 1 || got[0] != string(text) {
			t.Fatalf("txtStrings = %q, want %q", got, text)
		}
	})
}

// FuzzPTRName: a PTR target's labels come back as their raw bytes joined
// by dots, whatever bytes they hold.
func FuzzPTRName(f *testing.F) {
	f.Add([]byte("r1\x00soci\xc3\xa9t\xc3\xa9\x00example"))
	f.Add([]byte("a.b\x00\\\x00\x1b[2J"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		labels := bytes.Split(in, []byte{0}) // NUL separates labels in the input
		var rdata []byte
		var want []string
		for _, l := range labels {
			if len(l) == 0 || len(l) > 63 {
				return // not a valid label
			}
			rdata = append(append(rdata, byte(len(l))), l...)
			want = append(want, string(l))
		}
		if len(rdata) > 250 {
			return
		}
		rdata = append(rdata, 0)
		rr, _, err := dns.UnpackRR(wireRR(dns.TypePTR, rdata), 0)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		rr.Header().Name = "7.2.0.192.in-addr.arpa."
		m.Answer = []dns.RR{rr}
		if got := ptrName(m, "7.2.0.192.in-addr.arpa."); got != strings.Join(want, ".") {
			t.Fatalf("ptrName = %q, want %q", got, strings.Join(want, "."))
		}
	})
}

// FuzzReverseAnswer is PTR parsing from a whole reply: no panic, and a
// name is only taken from a record that answers the question.
func FuzzReverseAnswer(f *testing.F) {
	q := "7.2.0.192.in-addr.arpa."
	for _, s := range []string{q + " 60 IN PTR r1.example.", q + " 60 IN CNAME c.example.", "c.example. 60 IN PTR r2.example."} {
		m := new(dns.Msg)
		m.SetQuestion(q, dns.TypePTR)
		m.Answer = append(m.Answer, must(dns.NewRR(s)))
		f.Add(must(m.Pack()))
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil {
			return
		}
		name := ptrName(m, q)
		if name == "" {
			return
		}
		if !hasPTR(m) || len(name) > 255 {
			t.Fatalf("name %q from %v", name, m.Answer)
		}
	})
}

func hasPTR(m *dns.Msg) bool {
	for _, rr := range m.Answer {
		if _, ok := rr.(*dns.PTR); ok {
			return true
		}
	}
	return false
}
