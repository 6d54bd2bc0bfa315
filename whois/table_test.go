package whois

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gaissmai/bart"

	"github.com/anycheck/anycheck/whois/whoistest"
)

const samplePfx2as = `# CAIDA routeviews-prefix2as style
192.0.2.0	24	64500
198.51.100.0	24	64510_64511
198.51.100.128	25	64512,64513
203.0.113.0	24	64520_64521,64522
2001:db8::	32	64530
`

// samplePyasn is pyasn's ipasn.dat (pyasn_util_convert.py's output): ';'
// comments, "prefix/length<TAB>AS".
const samplePyasn = `; IP-ASN32-DAT file
; Original file : rib.20260101.0600.bz2
; Prefixes-v4   : 4
;
192.0.2.0/24	64500
198.51.100.0/24	64510
198.51.100.128/25	64512
2001:db8::/32	64530
`

const sampleIPtoASN = "192.0.2.0\t192.0.2.255\t64500\tZZ\tEXAMPLE-ISP Example ISP\n" +
	"198.51.100.0\t198.51.100.127\t0\tNone\tNot routed\n" +
	"198.51.100.128\t198.51.100.200\t64510\tZZ\tTRANSIT-ONE\n" +
	"2001:db8::\t2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\t64530\tZZ\tV6-NET\n"

func lookupTable(t *testing.T, tab prefixIndex, s string) (netip.Prefix, tableEntry, bool) {
	t.Helper()
	return tab.lookup(netip.MustParseAddr(s))
}

func TestParsePfx2as(t *testing.T) {
	tab, err := parsePfx2as(strings.NewReader(samplePfx2as))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr   string
		prefix string
		asns   []uint32
	}{
		{"192.0.2.77", "192.0.2.0/24", []uint32{64500}},
		{"198.51.100.5", "198.51.100.0/24", []uint32{64510, 64511}},      // multi-origin
		{"198.51.100.130", "198.51.100.128/25", []uint32{64512, 64513}},  // AS set, more specific
		{"203.0.113.1", "203.0.113.0/24", []uint32{64520, 64521, 64522}}, // both
		{"2001:db8:1::1", "2001:db8::/32", []uint32{64530}},
	}
	for _, tt := range tests {
		p, e, ok := lookupTable(t, tab, tt.addr)
		if !ok || p.String() != tt.prefix || !slices.Equal(e.ASNs, tt.asns) {
			t.Errorf("%s: %v %+v %v, want %s %v", tt.addr, p, e, ok, tt.prefix, tt.asns)
		}
	}
	if _, _, ok := lookupTable(t, tab, "8.8.8.8"); ok {
		t.Error("uncovered address found")
	}
	for _, bad := range []string{
		"192.0.2.0\t24\n",
		"192.0.2.0\t33\t1\n",
		"192.0.2.0\tx\t1\n",
		"192.0.2.0\t24\tAS_x\n",
		"192.0.2.0\t24\t_\n",
		"nope\t24\t1\n",
		strings.Repeat("1", maxTableLine+1) + "\n",
	} {
		if _, err := parsePfx2as(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("parsePfx2as(%.40q) = %v, want an error naming line 1", bad, err)
		}
	}
}

func TestParseIPtoASN(t *testing.T) {
	tab, err := parseIPtoASN(strings.NewReader(sampleIPtoASN))
	if err != nil {
		t.Fatal(err)
	}
	p, e, ok := lookupTable(t, tab, "192.0.2.9")
	if !ok || p.String() != "192.0.2.0/24" || !slices.Equal(e.ASNs, []uint32{64500}) || e.ASName != "EXAMPLE-ISP Example ISP" || e.Country != "ZZ" {
		t.Errorf("192.0.2.9: %v %+v", p, e)
	}
	if _, e, _ := lookupTable(t, tab, "198.51.100.9"); !e.Unannounced {
		t.Errorf("AS 0 range: %+v, want unannounced", e)
	}
	// 198.51.100.128-200 is 128/26 + 192/29 + 200/32.
	for addr, want := range map[string]string{"198.51.100.130": "198.51.100.128/26", "198.51.100.199": "198.51.100.192/29", "198.51.100.200": "198.51.100.200/32"} {
		if p, e, ok := lookupTable(t, tab, addr); !ok || p.String() != want || e.ASName != "TRANSIT-ONE" {
			t.Errorf("%s: %v %+v, want %s", addr, p, e, want)
		}
	}
	if _, _, ok := lookupTable(t, tab, "198.51.100.201"); ok {
		t.Error("198.51.100.201 is past the range")
	}
	if p, _, _ := lookupTable(t, tab, "2001:db8::1"); p.String() != "2001:db8::/32" {
		t.Errorf("IPv6 range became %v", p)
	}
	for _, bad := range []string{
		"192.0.2.9\t192.0.2.1\t1\tZZ\tx\n",
		"192.0.2.0\t2001:db8::\t1\tZZ\tx\n",
		"192.0.2.0\t192.0.2.255\tx\tZZ\tx\n",
		"192.0.2.0\n",
	} {
		if _, err := parseIPtoASN(strings.NewReader(bad)); err == nil {
			t.Errorf("parseIPtoASN(%q): no error", bad)
		}
	}
}

func TestIPtoASNRanges(t *testing.T) {
	tests := []struct {
		from, to string
		probe    map[string]string // address → the prefix answered; "" = not covered
	}{
		{"192.0.2.0", "192.0.2.255", map[string]string{"192.0.2.0": "192.0.2.0/24", "192.0.2.255": "192.0.2.0/24", "192.0.3.0": ""}},
		{"198.51.100.1", "198.51.100.6", map[string]string{"198.51.100.0": "", "198.51.100.1": "198.51.100.1/32", "198.51.100.3": "198.51.100.2/31", "198.51.100.5": "198.51.100.4/31", "198.51.100.6": "198.51.100.6/32", "198.51.100.7": ""}},
		{"0.0.0.0", "255.255.255.255", map[string]string{"203.0.113.9": "0.0.0.0/0"}},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", map[string]string{"2001:db8::1": "::/0"}},
		{"2001:db8::", "2001:db8::1:0", map[string]string{"2001:db8::ffff": "2001:db8::/112", "2001:db8::1:0": "2001:db8::1:0/128", "2001:db8::1:1": ""}},
	}
	for _, tt := range tests {
		tab, err := parseIPtoASN(strings.NewReader(tt.from + "\t" + tt.to + "\t64500\tZZ\tX\n"))
		if err != nil {
			t.Fatalf("%s-%s: %v", tt.from, tt.to, err)
		}
		for a, want := range tt.probe {
			p, e, ok := lookupTable(t, tab, a)
			if want == "" {
				if ok {
					t.Errorf("%s-%s: %s answered %v", tt.from, tt.to, a, p)
				}
				continue
			}
			if !ok || p.String() != want || e.ASName != "X" {
				t.Errorf("%s-%s: %s gave %v %+v %v, want %s", tt.from, tt.to, a, p, e, ok, want)
			}
		}
	}
	// Unsorted input is sorted; overlapping ranges are refused.
	tab, err := parseIPtoASN(strings.NewReader("198.51.100.0\t198.51.100.255\t2\tZZ\tB\n192.0.2.0\t192.0.2.255\t1\tZZ\tA\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, e, _ := lookupTable(t, tab, "192.0.2.9"); e.ASName != "A" {
		t.Errorf("unsorted: %+v", e)
	}
	if _, err := parseIPtoASN(strings.NewReader("192.0.2.0\t192.0.2.255\t1\tZZ\tA\n192.0.2.128\t192.0.3.0\t2\tZZ\tB\n")); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("overlapping ranges: %v", err)
	}
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestLoadTableFormats(t *testing.T) {
	tests := []struct {
		name, file string
		data       []byte
		format     string
	}{
		{"pfx2as", "routeviews-rv2-20260101.pfx2as", []byte(samplePfx2as), FormatPfx2as},
		{"pfx2as gzip", "routeviews.pfx2as.gz", gz(t, samplePfx2as), FormatPfx2as},
		{"pyasn", "ipasn_20260101.dat", []byte(samplePyasn), FormatPyasn},
		{"pyasn gzip", "ipasn_20260101.dat.gz", gz(t, samplePyasn), FormatPyasn},
		{"iptoasn", "ip2asn-combined.tsv", []byte(sampleIPtoASN), FormatIPtoASN},
		{"iptoasn gzip, no extension", "table", gz(t, sampleIPtoASN), FormatIPtoASN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New("file:"+writeFile(t, tt.file, tt.data), Options{})
			if err != nil {
				t.Fatal(err)
			}
			tab := r.(*Table)
			if tab.Format != tt.format {
				t.Errorf("format %s, want %s", tab.Format, tt.format)
			}
			got, err := r.Lookup(context.Background(), addrs("192.0.2.1", "10.0.0.1", "8.8.8.8"))
			if err != nil {
				t.Fatal(err)
			}
			if o := got[netip.MustParseAddr("192.0.2.1")]; !slices.Equal(o.ASNs, []uint32{64500}) || o.Prefix.String() != "192.0.2.0/24" || o.Source != SourceFile {
				t.Errorf("192.0.2.1: %+v", o)
			}
			if o := got[netip.MustParseAddr("10.0.0.1")]; o.Special != "private" {
				t.Errorf("10.0.0.1: %+v", o)
			}
			if o := got[netip.MustParseAddr("8.8.8.8")]; !o.Unannounced {
				t.Errorf("8.8.8.8: %+v, want unannounced", o)
			}
		})
	}
	for _, bad := range [][]byte{[]byte("hello world\n"), []byte(""), gz(t, "x y z\n"), []byte{0x1f, 0x8b, 0, 0}} {
		if _, err := New("file:"+writeFile(t, "t", bad), Options{}); err == nil {
			t.Errorf("table %q loaded", bad)
		}
	}
}

func TestLoadTableMMDB(t *testing.T) {
	path := filepath.Join("..", "testdata", "whois", "GeoLite2-ASN-Test.mmdb")
	r, err := New("file:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f := r.(*Table).Format; f != FormatMMDB {
		t.Fatalf("format %s", f)
	}
	src, err := os.ReadFile(filepath.Join("..", "testdata", "whois", "GeoLite2-ASN-Test.source.json"))
	if err != nil {
		t.Fatal(err)
	}
	var records []map[string]struct {
		ASN uint32 `json:"autonomous_system_number"`
		Org string `json:"autonomous_system_organization"`
	}
	if err := json.Unmarshal(src, &records); err != nil {
		t.Fatal(err)
	}
	// Expected answers come from a longest-prefix match over the source
	// networks (they nest). The database merges adjacent networks with the
	// same data, so the prefix it reports may be wider than the source's:
	// it must hold the address and carry the same data.
	type want struct {
		asn uint32
		org string
	}
	var source bart.Table[want]
	var ask []netip.Addr
	for _, rec := range records {
		for p, v := range rec {
			pfx := netip.MustParsePrefix(p)
			source.Insert(pfx, want{v.ASN, v.Org})
			// Ask about the first and the last address of every network.
			ask = append(ask, pfx.Addr(), lastAddr(pfx))
		}
	}
	got, err := r.Lookup(context.Background(), ask)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, a := range ask {
		if Special(a) != "" {
			continue
		}
		checked++
		o := got[a]
		w, _ := source.Lookup(a)
		if !slices.Equal(o.ASNs, []uint32{w.asn}) || o.ASName != w.org || !o.Prefix.Contains(a) || o.Unannounced || o.Source != SourceFile {
			t.Errorf("%s: got %+v, want AS%d %q", a, o, w.asn, w.org)
		}
	}
	if checked < 1000 {
		t.Errorf("only %d addresses checked", checked)
	}
	// Outside every test network: unannounced.
	if o := must(r.Lookup(context.Background(), addrs("192.0.2.1")))[netip.MustParseAddr("192.0.2.1")]; !o.Unannounced {
		t.Errorf("192.0.2.1: %+v", o)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestWritePfx2as checks the lab helper: a table written from whoistest
// rows loads as file: and answers like the bulk server.
func TestWritePfx2as(t *testing.T) {
	var b bytes.Buffer
	if err := whoistest.WritePfx2as(&b, labRows); err != nil {
		t.Fatal(err)
	}
	r, err := New("file:"+writeFile(t, "lab.pfx2as", b.Bytes()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Lookup(context.Background(), hops20)
	if err != nil {
		t.Fatal(err)
	}
	// pfx2as carries no names; compare everything else.
	for a, o := range got {
		o.ASName = ""
		got[a] = o
	}
	for s, asns := range map[string][]uint32{"192.0.2.1": {64500}, "198.51.100.200": {64511, 64512}, "2001:db8:100::2": {64510}, "2001:db8::53": {64520}} {
		if o := got[netip.MustParseAddr(s)]; !slices.Equal(o.ASNs, asns) {
			t.Errorf("%s: %+v, want %v", s, o, asns)
		}
	}
	if !got[netip.MustParseAddr("9.9.9.9")].Unannounced {
		t.Error("9.9.9.9 not unannounced")
	}
}

func FuzzParsePfx2as(f *testing.F) {
	f.Add([]byte(samplePfx2as))
	f.Add([]byte("1.0.0.0\t24\t13335\n1.0.4.0\t22\t38803_56203\n"))
	f.Add([]byte("::\t0\t0\n\n#x\n"))
	f.Add([]byte("192.0.2.0 24 1,2,3_4\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := parsePfx2as(bytes.NewReader(data))
		if err != nil {
			return
		}
		for p, i := range tab.routes.All() {
			if e := tab.entries[i]; p != p.Masked() || len(e.ASNs) == 0 {
				t.Fatalf("entry %v %+v", p, e)
			}
		}
	})
}

func FuzzParseIPtoASN(f *testing.F) {
	f.Add([]byte(sampleIPtoASN))
	f.Add([]byte("1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n"))
	f.Add([]byte("::\tffff::\t0\tNone\tNot routed\n"))
	f.Add([]byte("0.0.0.1 255.255.255.254 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := parseIPtoASN(bytes.NewReader(data))
		if err != nil {
			return
		}
		for fam, list := range [][]addrRange{tab.v4, tab.v6} {
			is4 := fam == 0
			for i, r := range list {
				if e := tab.entries[r.entry]; e.Unannounced == (len(e.ASNs) > 0) {
					t.Fatalf("entry %+v", e)
				}
				if less128(r.toHi, r.toLo, r.fromHi, r.fromLo) || i > 0 && !less128(list[i-1].toHi, list[i-1].toLo, r.fromHi, r.fromLo) {
					t.Fatalf("ranges out of order or overlapping at %d", i)
				}
				// Both ends answer with a prefix inside the range.
				for _, end := range []netip.Addr{addrFrom128(r.fromHi, r.fromLo, is4), addrFrom128(r.toHi, r.toLo, is4)} {
					if p, _, ok := tab.lookup(end); !ok || !p.Contains(end.Unmap()) {
						t.Fatalf("range end %s: %v %v", end, p, ok)
					}
				}
			}
		}
	})
}

// TestLoadTableHostile is issue 13 item 9: endless or bomb-like input is
// refused on its first bytes, without reading it into memory, and a
// compressed MaxMind DB still loads (by its name).
func TestLoadTableHostile(t *testing.T) {
	var zeros bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zeros, gzip.BestCompression)
	chunk := make([]byte, 1<<20)
	for range 64 { // 64 MiB of zeros in 64 KiB
		zw.Write(chunk)
	}
	zw.Close()
	mmdb, err := os.ReadFile(filepath.Join("..", "testdata", "whois", "GeoLite2-ASN-Test.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       string // in the error; "" = loads
	}{
		{"empty", os.DevNull, "unrecognised table format"},
		{"/dev/zero", "/dev/zero", "binary data"},
		{"gzip bomb", writeFile(t, "bomb.gz", zeros.Bytes()), "binary data"},
		{"directory", t.TempDir(), "is a directory"},
		{"mmdb gzip", writeFile(t, "asn.mmdb.gz", gz(t, string(mmdb))), ""},
		{"mmdb, any name", writeFile(t, "asn.db", mmdb), ""},
		{"mmdb gzip, other name", writeFile(t, "asn.db.gz", gz(t, string(mmdb))), "binary data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peak := heapPeak(t)
			_, err := LoadTable(tt.path)
			heap := peak()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Count(err.Error(), tt.path) != 1 {
				t.Errorf("err = %v, want one naming the path once and %q", err, tt.want)
			}
			if heap > 16<<20 {
				t.Errorf("heap peaked at %d MiB", heap>>20)
			}
		})
	}
}

// FuzzLoadTable is format detection, gzip and MaxMind DB loading: any
// file either fails with an error naming it or loads into a table whose
// answers are well formed.
func FuzzLoadTable(f *testing.F) {
	mmdb, err := os.ReadFile(filepath.Join("..", "testdata", "whois", "GeoLite2-ASN-Test.mmdb"))
	if err != nil {
		f.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(sampleIPtoASN))
	zw.Close()
	for _, seed := range [][]byte{[]byte(samplePfx2as), []byte(sampleIPtoASN), z.Bytes(), mmdb, mmdb[len(mmdb)/2:], {0x1f, 0x8b, 8, 0}, []byte("#\n\n1.0.0.0\t24\t13335\n")} {
		f.Add(seed, false)
	}
	f.Add(mmdb, true)
	f.Fuzz(func(t *testing.T, data []byte, named bool) {
		name := "table"
		if named {
			name = "table.mmdb"
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		tab, err := LoadTable(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		got, _ := tab.Lookup(context.Background(), addrs("192.0.2.1", "2001:db8::1", "1.0.0.1", "::ffff:1.0.0.1"))
		for a, o := range got {
			if o.Addr != a || (o.Prefix.IsValid() && !o.Prefix.Contains(a.Unmap())) || (!o.Unannounced && len(o.ASNs) == 0) {
				t.Fatalf("%s: %+v", a, o)
			}
		}
	})
}

// The real ipasn.dat sample in the reference data (IPv6, pyasn's own
// comment header) loads and answers, when it is beside the repository.
func TestLoadPyasnRefdata(t *testing.T) {
	for _, path := range []string{"../../shared/refdata/asn/pyasn_ipasn6_20151101_first300.dat", "/work/shared/refdata/asn/pyasn_ipasn6_20151101_first300.dat"} {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		tab, err := LoadTable(path)
		if err != nil || tab.Format != FormatPyasn {
			t.Fatalf("%v, format %v", err, tab)
		}
		got, err := tab.Lookup(context.Background(), addrs("1.0.4.1", "1.0.64.9"))
		if err != nil || !slices.Equal(got[netip.MustParseAddr("1.0.4.1")].ASNs, []uint32{56203}) || !slices.Equal(got[netip.MustParseAddr("1.0.64.9")].ASNs, []uint32{18144}) {
			t.Errorf("lookups %+v, %v", got, err)
		}
		return
	}
	t.Skip("no refdata/asn beside the repository")
}
