package whois

import (
	"context"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/whois/whoistest"
)

func TestParseOriginTXT(t *testing.T) {
	tests := []struct {
		in      string
		want    originTXT
		wantErr bool
	}{
		{in: "64500 | 192.0.2.0/24 | ZZ | arin | 2001-01-01",
			want: originTXT{ASNs: []uint32{64500}, Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "ZZ", Registry: "arin", Allocated: "2001-01-01"}},
		{in: "64500 64501 | 192.0.2.0/24 | ZZ | arin | ",
			want: originTXT{ASNs: []uint32{64500, 64501}, Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "ZZ", Registry: "arin"}},
		{in: "64520 | 2001:db8::/32 | ZZ | apnic | 2004-06-01",
			want: originTXT{ASNs: []uint32{64520}, Prefix: netip.MustParsePrefix("2001:db8::/32"), Country: "ZZ", Registry: "apnic", Allocated: "2004-06-01"}},
		{in: "64500|192.0.2.7/24", want: originTXT{ASNs: []uint32{64500}, Prefix: netip.MustParsePrefix("192.0.2.0/24")}},
		{in: "NA | NA | NA | NA | NA", wantErr: true},
		{in: "64500", wantErr: true},
		{in: "", wantErr: true},
		{in: "99999999999 | 192.0.2.0/24", wantErr: true},
		{in: "64500 | 192.0.2.0/40", wantErr: true},
		{in: "64500 | " + strings.Repeat("x", maxTXTLen), wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseOriginTXT(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseOriginTXT(%q) err = %v", tt.in, err)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseOriginTXT(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseASNameTXT(t *testing.T) {
	tests := []struct {
		in      string
		want    asNameTXT
		wantErr bool
	}{
		{in: "64500 | ZZ | arin | 2001-01-01 | EXAMPLE-ISP - Example, ZZ",
			want: asNameTXT{ASN: 64500, Country: "ZZ", Registry: "arin", Allocated: "2001-01-01", Name: "EXAMPLE-ISP - Example, ZZ"}},
		{in: "64500 | ZZ | arin | | NAME | WITH | PIPES",
			want: asNameTXT{ASN: 64500, Country: "ZZ", Registry: "arin", Name: "NAME | WITH | PIPES"}},
		{in: "64500 | ZZ | arin | 2001-01-01 | \x1b[31mRED",
			want: asNameTXT{ASN: 64500, Country: "ZZ", Registry: "arin", Allocated: "2001-01-01", Name: "\x1b[31mRED"}},
		{in: "64500 | ZZ | arin | 2001-01-01", wantErr: true},
		{in: "x | ZZ | arin | 2001-01-01 | N", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseASNameTXT(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseASNameTXT(%q) err = %v", tt.in, err)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("parseASNameTXT(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestOriginFromTXT(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.200")
	got, err := originFromTXT(a, []string{
		"64999 | 198.51.100.0/24 | ZZ | arin | 1999-01-01",  // covering, less specific
		"64511 | 198.51.100.128/25 | ZZ | lab | 2020-01-03", // most specific
		"64512 | 198.51.100.128/25 | ZZ | lab | 2020-01-03", // second origin, same prefix
		"64666 | 203.0.113.0/24 | ZZ | lab | 2020-01-03",    // not covering: ignored
		"garbage",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.ASNs, []uint32{64511, 64512}) || got.Prefix != netip.MustParsePrefix("198.51.100.128/25") {
		t.Errorf("got %+v", got)
	}
	if _, err := originFromTXT(a, []string{"garbage"}); err == nil {
		t.Error("only a malformed record: no error")
	}
	if o, err := originFromTXT(a, []string{"64666 | 203.0.113.0/24 | ZZ | lab | 2020-01-03"}); err == nil || !strings.Contains(err.Error(), "203.0.113.0/24") {
		t.Errorf("only a record for other space: %+v, %v; want an error naming its prefix", o, err)
	}
	if o, err := originFromTXT(a, nil); err != nil || !o.Unannounced {
		t.Errorf("no records: %+v, %v; want unannounced", o, err)
	}
}

func TestOriginName(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.1", "1.2.0.192.origin.asn.cymru.com."},
		{"::ffff:198.51.100.7", "7.100.51.198.origin.asn.cymru.com."},
		{"2001:db8::53", "3.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.origin6.asn.cymru.com."},
	}
	for _, tt := range tests {
		if got := originName(netip.MustParseAddr(tt.addr), DefaultOriginZone, DefaultOrigin6Zone); got != tt.want {
			t.Errorf("originName(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
	if got := originName(netip.MustParseAddr("192.0.2.1"), "origin.lab.example", ""); got != "1.2.0.192.origin.lab.example." {
		t.Errorf("custom zone: %s", got)
	}
}

func FuzzParseOriginTXT(f *testing.F) {
	for _, s := range []string{
		"64500 | 192.0.2.0/24 | ZZ | arin | 2001-01-01",
		"64500 64501 | 2001:db8::/32 | ZZ | ripencc |",
		"AS64500|1.2.3.4/33",
		"| | | |",
		"4294967296 | 0.0.0.0/0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseOriginTXT(s)
		if err != nil {
			return
		}
		if len(o.ASNs) == 0 || !o.Prefix.IsValid() || o.Prefix != o.Prefix.Masked() {
			t.Fatalf("parseOriginTXT(%q) = %+v without error", s, o)
		}
		if _, err := originFromTXT(o.Prefix.Addr(), []string{s, s}); err != nil {
			t.Fatalf("originFromTXT: %v", err)
		}
	})
}

func FuzzParseASNameTXT(f *testing.F) {
	for _, s := range []string{
		"64500 | ZZ | arin | 2001-01-01 | EXAMPLE-ISP",
		"64500 | | | | ",
		"AS1|a|b|c|d|e|f",
		"64500 | ZZ | arin | 2001-01-01 | \x1b]0;x\x07",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := parseASNameTXT(s)
		if err == nil && len(rec.Name) > len(s) {
			t.Fatalf("name longer than the record: %+v", rec)
		}
	})
}

func startDNS(t *testing.T, rows []whoistest.Row, zones whoistest.Zones) (*whoistest.DNS, string) {
	t.Helper()
	h := whoistest.NewDNS(rows, zones)
	srv, err := whoistest.StartDNS("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return h, srv.Addr
}

func TestDNSLookup(t *testing.T) {
	h, addr := startDNS(t, labRows, whoistest.Zones{})
	r, err := New("cymru-dns", Options{DNSServer: addr, Timeout: 2 * time.Second, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Lookup(context.Background(), hops20)
	if err != nil {
		t.Fatal(err)
	}
	checkLabOrigins(t, got, SourceCymruDNS)
	if len(got) != len(hops20) {
		t.Errorf("got %d origins for %d addresses", len(got), len(hops20))
	}
	var origin, names int
	for _, q := range h.Queries() {
		switch {
		case strings.HasSuffix(q, ".origin.asn.cymru.com."), strings.HasSuffix(q, ".origin6.asn.cymru.com."):
			origin++
			if strings.HasPrefix(q, "1.0.0.10.") || strings.HasPrefix(q, "1.1.64.100.") {
				t.Errorf("asked about a special address: %s", q)
			}
		case strings.HasSuffix(q, ".asn.cymru.com."):
			names++
		}
	}
	// One origin query per lookable address, one name query per distinct first origin AS.
	if origin != len(hops20)-2 || names != 4 {
		t.Errorf("%d origin and %d name queries, want %d and 4: %q", origin, names, len(hops20)-2, h.Queries())
	}
}

func TestDNSLookupCustomZones(t *testing.T) {
	zones := whoistest.Zones{Origin: "origin.lab.example.", Origin6: "origin6.lab.example.", ASN: "asn.lab.example."}
	_, addr := startDNS(t, labRows, zones)
	r, err := New("cymru-dns", Options{DNSServer: addr, Timeout: 2 * time.Second,
		OriginZone: zones.Origin, Origin6Zone: zones.Origin6, ASNZone: zones.ASN})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Lookup(context.Background(), hops20)
	if err != nil {
		t.Fatal(err)
	}
	checkLabOrigins(t, got, SourceCymruDNS)
}

func TestDNSLookupCached(t *testing.T) {
	h, addr := startDNS(t, labRows, whoistest.Zones{})
	opts := Options{DNSServer: addr, Timeout: 2 * time.Second, CacheDir: t.TempDir()}
	for run := 1; run <= 2; run++ {
		r, _ := New("cymru-dns", opts)
		got, err := r.Lookup(context.Background(), hops20)
		if err != nil {
			t.Fatal(err)
		}
		checkLabOrigins(t, got, SourceCymruDNS)
	}
	// 9.9.9.9 is the only origin query that cannot be answered from a
	// cached prefix, but its NXDOMAIN is cached too: the second run asks nothing.
	first := len(hops20) - 2 + 4
	if n := len(h.Queries()); n != first {
		t.Errorf("%d queries over two runs, want %d (all in the first)", n, first)
	}
}

func TestDNSLookupUnreachable(t *testing.T) {
	// A UDP port with nobody behind it: every query must end by the timeout.
	r, _ := New("cymru-dns", Options{DNSServer: "127.0.0.1:9", Timeout: 300 * time.Millisecond})
	start := time.Now()
	got, err := r.Lookup(context.Background(), addrs("192.0.2.1", "203.0.113.1", "10.0.0.1"))
	if err == nil || !strings.Contains(err.Error(), "cymru-dns @127.0.0.1:9") {
		t.Errorf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	if len(got) != 1 || got[netip.MustParseAddr("10.0.0.1")].Special != "private" {
		t.Errorf("got %+v", got)
	}
}

func TestReverseNames(t *testing.T) {
	h, addr := startDNS(t, nil, whoistest.Zones{})
	h.SetName(netip.MustParseAddr("192.0.2.1"), "r1.isp.example")
	h.SetName(netip.MustParseAddr("2001:db8::53"), "g1.fra.example")
	h.SetName(netip.MustParseAddr("10.0.0.1"), "leak.internal")
	got := ReverseNames(context.Background(), addrs("192.0.2.1", "2001:db8::53", "198.51.100.9", "10.0.0.1"),
		PTROptions{Server: addr, Timeout: time.Second})
	want := map[netip.Addr]string{
		netip.MustParseAddr("192.0.2.1"):    "r1.isp.example",
		netip.MustParseAddr("2001:db8::53"): "g1.fra.example",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, q := range h.Queries() {
		if strings.HasSuffix(q, "10.in-addr.arpa.") {
			t.Errorf("asked about a private address: %s", q)
		}
	}
	start := time.Now()
	if got := ReverseNames(context.Background(), addrs("192.0.2.1"), PTROptions{Server: "127.0.0.1:9", Timeout: 200 * time.Millisecond}); len(got) != 0 {
		t.Errorf("dead server: %v", got)
	}
	if time.Since(start) > time.Second {
		t.Errorf("dead server took %v", time.Since(start))
	}
}

// TestDNSLookupBoundedByTimeout: with a resolver that never answers, a
// batch larger than the concurrency still ends by opts.Timeout.
func TestDNSLookupBoundedByTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close() // a socket that reads nothing: queries time out
	r, _ := New("cymru-dns", Options{DNSServer: pc.LocalAddr().String(), Timeout: 400 * time.Millisecond, Concurrency: 2})
	var ask []netip.Addr
	for i := range 20 {
		ask = append(ask, netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}))
	}
	start := time.Now()
	got, err := r.Lookup(context.Background(), ask)
	if err == nil || len(got) != 0 {
		t.Errorf("got %v, %v; want an error and nothing", got, err)
	}
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Errorf("took %v with a 400ms timeout", el)
	}
}

// FuzzOriginFromTXT is TXT record merging: whatever the records, an origin
// is about the address asked, its prefix contains it, it names origins
// unless unannounced, and no origin twice.
func FuzzOriginFromTXT(f *testing.F) {
	f.Add("198.51.100.200", "64999 | 198.51.100.0/24 | ZZ | arin | 1999-01-01", "64511 64511 | 198.51.100.128/25 | ZZ | lab | 2020-01-03", "64666 | 203.0.113.0/24")
	f.Add("2001:db8::1", "64500 | 2001:db8::/32", "64501 | 2001:db8::/48 | ZZ", "garbage")
	f.Add("::ffff:192.0.2.1", "64500 | 192.0.2.0/24", "", "64500 | ::ffff:192.0.2.0/120")
	f.Fuzz(func(t *testing.T, addr, txt1, txt2, txt3 string) {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return
		}
		o, err := originFromTXT(a, []string{txt1, txt2, txt3})
		if err != nil {
			return
		}
		if o.Addr != a || o.Source != SourceCymruDNS || o.Unannounced != (len(o.ASNs) == 0) {
			t.Fatalf("origin %+v for %s", o, a)
		}
		if !o.Unannounced && !o.Prefix.Contains(lookupAddr(a)) {
			t.Fatalf("%s: prefix %s does not contain it", a, o.Prefix)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(o.ASNs)))) != len(o.ASNs) {
			t.Fatalf("%s: repeated origins %v", a, o.ASNs)
		}
	})
}
