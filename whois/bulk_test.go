package whois

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anycheck/anycheck/whois/whoistest"
)

// A reply in the shape of the real service's verbose bulk output.
const sampleBulk = `Bulk mode; whois.lab.example [2026-01-01 00:00:00 +0000]
64500   | 192.0.2.1        | 192.0.2.0/24        | ZZ | arin     | 2001-01-01 | EXAMPLE-ISP - Example ISP, ZZ
NA      | 198.51.100.99    | NA                  | NA | NA       | NA         | NA
64510   | 203.0.113.5      | 203.0.113.0/24      | ZZ | ripencc  | 2010-05-05 | TRANSIT-ONE
64511   | 203.0.113.5      | 203.0.113.0/24      | ZZ | ripencc  | 2010-05-05 | TRANSIT-TWO
64520   | 2001:db8::53     | 2001:db8::/32       | ZZ | apnic    | 2004-06-01 | ANYDNS | with a pipe
Error: no ASN or IP match on line 7.
`

func TestParseBulk(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		rows      []bulkRow
		errors    []string
		malformed int
		err       error
	}{
		{
			name: "verbose reply",
			in:   sampleBulk,
			rows: []bulkRow{
				{ASNs: []uint32{64500}, Addr: netip.MustParseAddr("192.0.2.1"), Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "ZZ", Registry: "arin", Allocated: "2001-01-01", ASName: "EXAMPLE-ISP - Example ISP, ZZ"},
				{Addr: netip.MustParseAddr("198.51.100.99"), Unannounced: true},
				{ASNs: []uint32{64510}, Addr: netip.MustParseAddr("203.0.113.5"), Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "ZZ", Registry: "ripencc", Allocated: "2010-05-05", ASName: "TRANSIT-ONE"},
				{ASNs: []uint32{64511}, Addr: netip.MustParseAddr("203.0.113.5"), Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "ZZ", Registry: "ripencc", Allocated: "2010-05-05", ASName: "TRANSIT-TWO"},
				{ASNs: []uint32{64520}, Addr: netip.MustParseAddr("2001:db8::53"), Prefix: netip.MustParsePrefix("2001:db8::/32"), Country: "ZZ", Registry: "apnic", Allocated: "2004-06-01", ASName: "ANYDNS | with a pipe"},
			},
			errors: []string{"Error: no ASN or IP match on line 7."},
		},
		{
			name: "column header, CRLF, space-separated origins",
			in:   "AS      | IP               | BGP Prefix          | CC | Registry | Allocated  | AS Name\r\n64500 64501 | 192.0.2.1 | 192.0.2.0/24 | ZZ | arin | NA | NA\r\n",
			rows: []bulkRow{{ASNs: []uint32{64500, 64501}, Addr: netip.MustParseAddr("192.0.2.1"), Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "ZZ", Registry: "arin"}},
		},
		{
			name: "non-canonical address forms",
			in:   "64520 | 2001:0db8:0000::0053 | 2001:db8::/32 | ZZ | apnic | 2004-06-01 | X\n64500 | ::ffff:192.0.2.1 | 192.0.2.0/24 | ZZ | arin | 2001-01-01 | Y\n",
			rows: []bulkRow{
				{ASNs: []uint32{64520}, Addr: netip.MustParseAddr("2001:db8::53"), Prefix: netip.MustParsePrefix("2001:db8::/32"), Country: "ZZ", Registry: "apnic", Allocated: "2004-06-01", ASName: "X"},
				{ASNs: []uint32{64500}, Addr: netip.MustParseAddr("192.0.2.1"), Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "ZZ", Registry: "arin", Allocated: "2001-01-01", ASName: "Y"},
			},
		},
		{
			name:      "garbage lines are counted, not fatal",
			in:        "hello\n64500 | not-an-ip | x | x | x | x | x\nAS-X | 192.0.2.1 | 192.0.2.0/24 | ZZ | arin | 2001 | N\n",
			malformed: 3,
		},
		{
			name:      "truncated last row",
			in:        "Bulk mode; whois.lab.example [x]\n64500 | 192.0.2.1 | 192.0.2.0/24 | ZZ | arin | 2001-01-01 | A\n64510 | 203.0.1",
			rows:      []bulkRow{{ASNs: []uint32{64500}, Addr: netip.MustParseAddr("192.0.2.1"), Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "ZZ", Registry: "arin", Allocated: "2001-01-01", ASName: "A"}},
			malformed: 1,
			err:       ErrTruncated,
		},
		{
			name: "last complete row without newline",
			in:   "64500 | 192.0.2.1 | 192.0.2.0/24 | ZZ | arin | 2001-01-01 | A",
			rows: []bulkRow{{ASNs: []uint32{64500}, Addr: netip.MustParseAddr("192.0.2.1"), Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "ZZ", Registry: "arin", Allocated: "2001-01-01", ASName: "A"}},
		},
		{
			name: "line too long",
			in:   "64500 | 192.0.2.1 | 192.0.2.0/24 | ZZ | arin | 2001 | " + strings.Repeat("A", maxBulkLine) + "\n",
			err:  ErrLineTooLong,
		},
		{
			name: "ANSI escapes kept raw",
			in:   "64500 | 192.0.2.1 | 192.0.2.0/24 | ZZ | arin | 2001-01-01 | \x1b[31mRED\x1b]0;t\x07\n",
			rows: []bulkRow{{ASNs: []uint32{64500}, Addr: netip.MustParseAddr("192.0.2.1"), Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "ZZ", Registry: "arin", Allocated: "2001-01-01", ASName: "\x1b[31mRED\x1b]0;t\a"}},
		},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := parseBulk(strings.NewReader(tt.in), maxBulkReply)
			if !errors.Is(err, tt.err) || (err != nil) != (tt.err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(rep.Rows, tt.rows) {
				t.Errorf("rows:\n got %+v\nwant %+v", rep.Rows, tt.rows)
			}
			if !slices.Equal(rep.Errors, tt.errors) {
				t.Errorf("errors = %q, want %q", rep.Errors, tt.errors)
			}
			if rep.Malformed != tt.malformed {
				t.Errorf("malformed = %d, want %d", rep.Malformed, tt.malformed)
			}
		})
	}
}

func TestParseBulkTooLarge(t *testing.T) {
	row := "64500 | 192.0.2.1 | 192.0.2.0/24 | ZZ | arin | 2001-01-01 | A\n"
	in := strings.Repeat(row, maxBulkReply/len(row)+10)
	_, err := parseBulk(strings.NewReader(in), maxBulkReply)
	if !errors.Is(err, ErrReplyTooLarge) {
		t.Fatalf("err = %v, want ErrReplyTooLarge", err)
	}
	// Exactly at the cap is fine.
	in = strings.Repeat(row, maxBulkReply/len(row))
	if _, err := parseBulk(strings.NewReader(in), maxBulkReply); err != nil {
		t.Fatalf("reply under the cap: %v", err)
	}
}

func TestParseBulkRejectsForeignPrefix(t *testing.T) {
	rep, err := parseBulk(strings.NewReader(
		"64500 | 198.51.100.7 | 192.0.2.0/24 | ZZ | lab | 2026-01-01 | WRONG\n"+
			"64500 | 2001:db8::1 | 192.0.2.0/24 | ZZ | lab | 2026-01-01 | WRONG FAMILY\n"+
			"64501 | 192.0.2.7 | 192.0.2.0/24 | ZZ | lab | 2026-01-01 | RIGHT\n"), maxBulkReply)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].ASName != "RIGHT" || rep.Rejected != 2 || rep.FirstRejected != "198.51.100.7 in 192.0.2.0/24" {
		t.Errorf("rows %+v, rejected %d (%s)", rep.Rows, rep.Rejected, rep.FirstRejected)
	}
}

func TestMergeBulk(t *testing.T) {
	rep, err := parseBulk(strings.NewReader(sampleBulk+
		// A less specific covering route for the same address must not win.
		"64999 | 192.0.2.1 | 192.0.0.0/16 | ZZ | arin | 1999-01-01 | COVER\n"), maxBulkReply)
	if err != nil {
		t.Fatal(err)
	}
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	ask := addrs("192.0.2.1", "198.51.100.99", "203.0.113.5", "2001:db8::53", "203.0.113.77")
	ask = append(ask, mapped)
	out := map[netip.Addr]Origin{}
	mergeBulk(out, ask, rep)
	want := map[netip.Addr]Origin{
		netip.MustParseAddr("192.0.2.1"):     {Addr: netip.MustParseAddr("192.0.2.1"), ASNs: []uint32{64500}, Prefix: netip.MustParsePrefix("192.0.2.0/24"), ASName: "EXAMPLE-ISP - Example ISP, ZZ", Country: "ZZ", Registry: "arin", Allocated: "2001-01-01", Source: "cymru"},
		mapped:                               {Addr: mapped, ASNs: []uint32{64500}, Prefix: netip.MustParsePrefix("192.0.2.0/24"), ASName: "EXAMPLE-ISP - Example ISP, ZZ", Country: "ZZ", Registry: "arin", Allocated: "2001-01-01", Source: "cymru"},
		netip.MustParseAddr("198.51.100.99"): {Addr: netip.MustParseAddr("198.51.100.99"), Source: "cymru", Unannounced: true},
		netip.MustParseAddr("203.0.113.5"):   {Addr: netip.MustParseAddr("203.0.113.5"), ASNs: []uint32{64510, 64511}, Prefix: netip.MustParsePrefix("203.0.113.0/24"), ASName: "TRANSIT-ONE", Country: "ZZ", Registry: "ripencc", Allocated: "2010-05-05", Source: "cymru"},
		netip.MustParseAddr("2001:db8::53"):  {Addr: netip.MustParseAddr("2001:db8::53"), ASNs: []uint32{64520}, Prefix: netip.MustParsePrefix("2001:db8::/32"), ASName: "ANYDNS | with a pipe", Country: "ZZ", Registry: "apnic", Allocated: "2004-06-01", Source: "cymru"},
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("merge:\n got %+v\nwant %+v", out, want)
	}
}

func FuzzParseBulk(f *testing.F) {
	f.Add([]byte(sampleBulk))
	f.Add([]byte("Bulk mode; whois.lab.example [x]\nNA | 2001:db8::1 | NA | NA | NA | NA | NA\n"))
	f.Add([]byte("AS | IP | BGP Prefix | CC | Registry | Allocated | AS Name\r\n"))
	f.Add([]byte("64500 64501 | 192.0.2.1 | 192.0.2.0/24 | ZZ | arin | 2001 | A|B|C\n"))
	f.Add([]byte("4294967295 | ::ffff:1.2.3.4 | 1.2.3.0/33 | | | |\n"))
	f.Add([]byte("64500 | 192.0.2.1 | 192.0.2.0/24 | ZZ | arin | 2001-01-01 | \x1b[31mX\n64510 | 203.0"))
	f.Add([]byte("Error: no ASN or IP match on line 1.\n\n\n|||||||\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := parseBulk(bytes.NewReader(data), maxBulkReply)
		if len(data) <= maxBulkReply && errors.Is(err, ErrReplyTooLarge) {
			t.Fatalf("ErrReplyTooLarge for %d bytes", len(data))
		}
		for _, r := range rep.Rows {
			if !r.Addr.IsValid() || r.Addr.Is4In6() {
				t.Fatalf("row with address %v", r.Addr)
			}
			if r.Unannounced != (len(r.ASNs) == 0) {
				t.Fatalf("row %+v: unannounced and ASNs disagree", r)
			}
			if r.Prefix.IsValid() && r.Prefix != r.Prefix.Masked() {
				t.Fatalf("unmasked prefix %v", r.Prefix)
			}
		}
		ask := make([]netip.Addr, 0, len(rep.Rows))
		for _, r := range rep.Rows {
			ask = append(ask, r.Addr)
		}
		out := map[netip.Addr]Origin{}
		mergeBulk(out, ask, rep)
		for a, o := range out {
			if o.Addr != a || (o.Unannounced && len(o.ASNs) > 0) {
				t.Fatalf("merged origin %+v under %v", o, a)
			}
		}
	})
}

// labRows is a small routing table in documentation space.
var labRows = []whoistest.Row{
	{Prefix: netip.MustParsePrefix("192.0.2.0/24"), ASNs: []uint32{64500}, Country: "ZZ", Registry: "lab", Allocated: "2020-01-01", ASName: "EXAMPLE-ISP"},
	{Prefix: netip.MustParsePrefix("198.51.100.0/25"), ASNs: []uint32{64510}, Country: "ZZ", Registry: "lab", Allocated: "2020-01-02", ASName: "TRANSIT-ONE"},
	{Prefix: netip.MustParsePrefix("198.51.100.128/25"), ASNs: []uint32{64511, 64512}, Country: "ZZ", Registry: "lab", Allocated: "2020-01-03", ASName: "MOAS-NET"},
	{Prefix: netip.MustParsePrefix("203.0.113.0/24"), ASNs: []uint32{64520}, Country: "ZZ", Registry: "lab", Allocated: "2020-01-04", ASName: "ANYDNS"},
	{Prefix: netip.MustParsePrefix("2001:db8::/32"), ASNs: []uint32{64520}, Country: "ZZ", Registry: "lab", Allocated: "2020-01-04", ASName: "ANYDNS"},
	{Prefix: netip.MustParsePrefix("2001:db8:100::/48"), ASNs: []uint32{64510}, Country: "ZZ", Registry: "lab", Allocated: "2020-01-02", ASName: "TRANSIT-ONE"},
}

// hops20 is a 20-hop worth of addresses across the lab table, two of them
// private (never sent) and one unannounced.
var hops20 = addrs(
	"10.0.0.1", "192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.1",
	"198.51.100.2", "198.51.100.129", "198.51.100.200", "203.0.113.1", "203.0.113.53",
	"2001:db8::1", "2001:db8::53", "2001:db8:100::1", "2001:db8:100::2", "2001:db8:ffff::1",
	"100.64.1.1", "203.0.113.254", "192.0.2.254", "198.51.100.100", "9.9.9.9",
)

func startWhois(t *testing.T, cfg whoistest.Config) *whoistest.Server {
	t.Helper()
	if cfg.Rows == nil {
		cfg.Rows = labRows
	}
	s, err := whoistest.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func checkLabOrigins(t *testing.T, got map[netip.Addr]Origin, source string) {
	t.Helper()
	want := map[string]struct {
		asns    []uint32
		prefix  string
		name    string
		special string
	}{
		"10.0.0.1":         {special: "private"},
		"100.64.1.1":       {special: "cgnat"},
		"192.0.2.1":        {[]uint32{64500}, "192.0.2.0/24", "EXAMPLE-ISP", ""},
		"198.51.100.1":     {[]uint32{64510}, "198.51.100.0/25", "TRANSIT-ONE", ""},
		"198.51.100.200":   {[]uint32{64511, 64512}, "198.51.100.128/25", "MOAS-NET", ""},
		"203.0.113.53":     {[]uint32{64520}, "203.0.113.0/24", "ANYDNS", ""},
		"2001:db8::53":     {[]uint32{64520}, "2001:db8::/32", "ANYDNS", ""},
		"2001:db8:100::2":  {[]uint32{64510}, "2001:db8:100::/48", "TRANSIT-ONE", ""},
		"2001:db8:ffff::1": {[]uint32{64520}, "2001:db8::/32", "ANYDNS", ""},
	}
	for s, w := range want {
		a := netip.MustParseAddr(s)
		o, ok := got[a]
		if !ok {
			t.Errorf("%s: missing", s)
			continue
		}
		if w.special != "" {
			if o.Special != w.special || o.Source != SourceSpecial || o.ASNs != nil {
				t.Errorf("%s: %+v, want special %q", s, o, w.special)
			}
			continue
		}
		if o.Addr != a || !slices.Equal(o.ASNs, w.asns) || o.Prefix.String() != w.prefix || o.ASName != w.name || o.Source != source {
			t.Errorf("%s: got %+v, want ASNs %v prefix %s name %s source %s", s, o, w.asns, w.prefix, w.name, source)
		}
	}
	if o := got[netip.MustParseAddr("9.9.9.9")]; !o.Unannounced || o.ASNs != nil {
		t.Errorf("9.9.9.9: %+v, want unannounced", o)
	}
}

func noSpecialQueried(t *testing.T, queried []netip.Addr) {
	t.Helper()
	for _, a := range queried {
		if Special(a) != "" {
			t.Errorf("server was asked about special address %s", a)
		}
	}
}

func TestBulkLookup(t *testing.T) {
	srv := startWhois(t, whoistest.Config{})
	r, err := New("cymru", Options{WhoisServer: srv.Addr(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Lookup(context.Background(), hops20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(hops20) {
		t.Errorf("got %d origins for %d addresses", len(got), len(hops20))
	}
	checkLabOrigins(t, got, SourceCymru)
	if n := srv.Connections(); n != 1 {
		t.Errorf("connections = %d, want 1", n)
	}
	if q := srv.Queried(); len(q) != len(hops20)-2 {
		t.Errorf("server asked about %d addresses, want %d: %v", len(q), len(hops20)-2, q)
	}
	noSpecialQueried(t, srv.Queried())
}

// TestBulkOneConnectionThenCache is the connection count: one
// lookup of 20 hops opens one whois connection; the same lookup again,
// from a new Resolver sharing the cache directory, opens none.
func TestBulkOneConnectionThenCache(t *testing.T) {
	srv := startWhois(t, whoistest.Config{})
	var dials atomic.Int32
	opts := Options{
		WhoisServer: srv.Addr(),
		Timeout:     5 * time.Second,
		CacheDir:    t.TempDir(),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	for run := 1; run <= 2; run++ {
		r, err := New("cymru", opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Lookup(context.Background(), hops20)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		checkLabOrigins(t, got, SourceCymru)
		for a, o := range got {
			if o.Special == "" && o.Cached != (run == 2) {
				t.Errorf("run %d: %s cached = %v", run, a, o.Cached)
			}
		}
		if n := srv.Connections(); n != 1 {
			t.Errorf("after run %d: %d connections, want 1", run, n)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("dialled %d times, want 1", n)
	}
	noSpecialQueried(t, srv.Queried())

	// NoCache goes to the server again.
	opts.NoCache = true
	r, _ := New("cymru", opts)
	if _, err := r.Lookup(context.Background(), hops20); err != nil {
		t.Fatal(err)
	}
	if n := srv.Connections(); n != 2 {
		t.Errorf("with NoCache: %d connections, want 2", n)
	}
}

func TestBulkOnlySpecialDialsNothing(t *testing.T) {
	opts := Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		t.Errorf("dialled %s for special addresses only", addr)
		return nil, errors.New("no")
	}}
	r, _ := New("cymru", opts)
	got, err := r.Lookup(context.Background(), addrs("10.0.0.1", "fe80::1", "127.0.0.1", "fd12::1"))
	if err != nil || len(got) != 4 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestBulkServerErrorLine(t *testing.T) {
	// A request line the server cannot parse comes back as an error line;
	// simulate it with a dialer that rewrites the request.
	srv := startWhois(t, whoistest.Config{})
	r, _ := New("cymru", Options{WhoisServer: srv.Addr(), Timeout: 5 * time.Second,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return rewriteConn{c}, nil
		}})
	got, err := r.Lookup(context.Background(), addrs("192.0.2.1", "203.0.113.9"))
	if err == nil || !strings.Contains(err.Error(), "no ASN or IP match on line") || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("err = %v, want the server's error line and the server named", err)
	}
	if o := got[netip.MustParseAddr("192.0.2.1")]; !slices.Equal(o.ASNs, []uint32{64500}) {
		t.Errorf("answered address lost: %+v", o)
	}
}

// rewriteConn garbles the second address of a request.
type rewriteConn struct{ net.Conn }

func (c rewriteConn) Write(b []byte) (int, error) {
	n := len(b)
	_, err := c.Conn.Write(bytes.Replace(b, []byte("203.0.113.9"), []byte("203.0.113.x"), 1))
	return n, err
}

func (c rewriteConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

func TestBulkHostile(t *testing.T) {
	const timeout = 700 * time.Millisecond
	tests := []struct {
		name    string
		cfg     whoistest.Config
		wantErr func(error) bool
		check   func(t *testing.T, got map[netip.Addr]Origin)
		timeout time.Duration // default timeout; the floods need time to reach the size limits on a loaded machine
	}{
		{
			name:    "never answers",
			cfg:     whoistest.Config{Mode: whoistest.Silent},
			wantErr: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		},
		{
			name:    "byte by byte",
			cfg:     whoistest.Config{Mode: whoistest.Slow, SlowDelay: 20 * time.Millisecond},
			wantErr: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		},
		{
			name:    "megabytes",
			cfg:     whoistest.Config{Mode: whoistest.Flood, FloodBytes: 64 << 20},
			wantErr: func(err error) bool { return errors.Is(err, ErrReplyTooLarge) },
			timeout: 20 * time.Second,
		},
		{
			name:    "endless line",
			cfg:     whoistest.Config{Mode: whoistest.LongLine, FloodBytes: 64 << 20},
			wantErr: func(err error) bool { return errors.Is(err, ErrLineTooLong) },
			timeout: 20 * time.Second,
		},
		{
			name:    "closes early",
			cfg:     whoistest.Config{Mode: whoistest.CloseEarly},
			wantErr: func(err error) bool { return errors.Is(err, ErrTruncated) },
			check: func(t *testing.T, got map[netip.Addr]Origin) {
				if o := got[netip.MustParseAddr("192.0.2.1")]; !slices.Equal(o.ASNs, []uint32{64500}) {
					t.Errorf("the row before the cut is lost: %+v", o)
				}
			},
		},
		{
			// Issue 13 item 4: a row whose prefix does not contain its
			// address is no answer for it.
			name: "prefix not containing the address",
			cfg:  whoistest.Config{Mode: whoistest.ForeignPrefix},
			wantErr: func(err error) bool {
				return err != nil && strings.Contains(err.Error(), "198.51.100.1 in 192.0.2.0/24")
			},
			check: func(t *testing.T, got map[netip.Addr]Origin) {
				for _, s := range []string{"198.51.100.1", "203.0.113.53", "2001:db8::53"} {
					if o, ok := got[netip.MustParseAddr(s)]; ok {
						t.Errorf("%s answered with %+v", s, o)
					}
				}
				if o := got[netip.MustParseAddr("192.0.2.1")]; o.Prefix.String() != "192.0.2.0/24" {
					t.Errorf("the row that does contain its address is lost: %+v", o)
				}
			},
		},
		{
			name:    "ANSI escapes in AS names",
			cfg:     whoistest.Config{Mode: whoistest.ANSI},
			wantErr: func(err error) bool { return err == nil },
			check: func(t *testing.T, got map[netip.Addr]Origin) {
				// Origin keeps the raw text; escaping is the renderer's job.
				if o := got[netip.MustParseAddr("203.0.113.53")]; o.ASName != whoistest.ANSIPrefix+"ANYDNS" {
					t.Errorf("AS name %q, want the raw escapes kept", o.ASName)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startWhois(t, tt.cfg)
			timeout := cmp.Or(tt.timeout, timeout)
			r, _ := New("cymru", Options{WhoisServer: srv.Addr(), Timeout: timeout})
			peak := heapPeak(t)
			start := time.Now()
			got, err := r.Lookup(context.Background(), addrs("192.0.2.1", "198.51.100.1", "203.0.113.53", "2001:db8::53", "10.1.1.1"))
			elapsed := time.Since(start)
			heap := peak()
			if !tt.wantErr(err) {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), "whois "+srv.Addr()) {
				t.Errorf("error %q does not name the server", err)
			}
			if elapsed > timeout+time.Second {
				t.Errorf("took %v with a %v timeout", elapsed, timeout)
			}
			// The flood modes send 64 MiB; the heap must never hold it.
			if heap > 32<<20 {
				t.Errorf("heap in use peaked at %d MiB", heap>>20)
			}
			if o := got[netip.MustParseAddr("10.1.1.1")]; o.Special != "private" {
				t.Errorf("private address not labelled: %+v", o)
			}
			noSpecialQueried(t, srv.Queried())
			if tt.check != nil {
				tt.check(t, got)
			}
			t.Logf("%s: %v after %v, heap peak %d MiB", tt.name, err, elapsed.Round(time.Millisecond), heap>>20)
		})
	}
}

func TestBulkContextCancel(t *testing.T) {
	srv := startWhois(t, whoistest.Config{Mode: whoistest.Silent})
	r, _ := New("cymru", Options{WhoisServer: srv.Addr(), Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := r.Lookup(ctx, addrs("192.0.2.1"))
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v, want a prompt error", err, time.Since(start))
	}
}

func TestBulkConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r, _ := New("cymru", Options{WhoisServer: addr, Timeout: time.Second})
	_, err = r.Lookup(context.Background(), addrs("192.0.2.1"))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("whois %s: connect:", addr)) {
		t.Fatalf("err = %v", err)
	}
}

// heapPeak samples the heap in use until the returned func is called and
// returns the peak seen.
func heapPeak(t *testing.T) func() uint64 {
	t.Helper()
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}

// TestBulkOverIPv6 reaches the whois server over IPv6 loopback, as a
// --whois-server [::1]:43 would.
func TestBulkOverIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	srv := startWhois(t, whoistest.Config{Listen: "[::1]:0"})
	r, _ := New("cymru", Options{WhoisServer: srv.Addr(), Timeout: 2 * time.Second})
	got, err := r.Lookup(context.Background(), addrs("2001:db8:100::1", "192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if o := got[netip.MustParseAddr("2001:db8:100::1")]; !slices.Equal(o.ASNs, []uint32{64510}) {
		t.Errorf("got %+v", o)
	}
}

// FuzzMergeBulk is bulk record merging: whatever the reply, each address
// asked gets at most one origin, about itself, whose prefix contains it,
// with origins only when announced and no origin twice.
func FuzzMergeBulk(f *testing.F) {
	f.Add([]byte(sampleBulk), "192.0.2.1 203.0.113.5 ::ffff:192.0.2.1 198.51.100.99")
	f.Add([]byte("64500 | 198.51.100.7 | 192.0.2.0/24 | ZZ | x | x | X\nNA | 198.51.100.7 | NA | NA | NA | NA | NA\n64501 64501 | 198.51.100.7 | 198.51.100.0/24 | ZZ | x | x | Y\n"), "198.51.100.7")
	f.Add([]byte("64500 | 2001:db8::1 | 2001:db8::/32 | ZZ | x | x | X\n64501 | 2001:db8::1 | 2001:db8::/48 | ZZ | x | x | Y\n64502 | 2001:db8::1 | 2001:db8::/48 | ZZ | x | x | Z\n"), "2001:db8::1 2001:db8::2")
	f.Fuzz(func(t *testing.T, reply []byte, asked string) {
		var ask []netip.Addr
		for _, w := range strings.Fields(asked) {
			if a, err := netip.ParseAddr(w); err == nil {
				ask = append(ask, a)
			}
		}
		rep, _ := parseBulk(bytes.NewReader(reply), maxBulkReply)
		out := map[netip.Addr]Origin{}
		mergeBulk(out, ask, rep)
		for a, o := range out {
			if !slices.Contains(ask, a) || o.Addr != a || o.Source != SourceCymru {
				t.Fatalf("origin %+v under %s, asked %v", o, a, ask)
			}
			if o.Unannounced != (len(o.ASNs) == 0) {
				t.Fatalf("%s: unannounced %v with origins %v", a, o.Unannounced, o.ASNs)
			}
			if o.Prefix.IsValid() && !o.Prefix.Contains(lookupAddr(a)) {
				t.Fatalf("%s: prefix %s does not contain it", a, o.Prefix)
			}
			if len(slices.Compact(slices.Sorted(slices.Values(o.ASNs)))) != len(o.ASNs) {
				t.Fatalf("%s: repeated origins %v", a, o.ASNs)
			}
		}
	})
}

// TestBulkBatches: a Lookup of more addresses than one request should
// carry goes out as several bulk requests, each answered in full.
func TestBulkBatches(t *testing.T) {
	srv := startWhois(t, whoistest.Config{})
	r, _ := New("cymru", Options{WhoisServer: srv.Addr(), Timeout: 10 * time.Second})
	var ask []netip.Addr
	for i := range 2*maxBulkBatch + 5 {
		ask = append(ask, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}).Next())
	}
	got, err := r.Lookup(context.Background(), ask)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Connections(); n != 3 {
		t.Errorf("%d connections for %d addresses, want 3", n, len(ask))
	}
	for _, a := range ask {
		if o := got[a]; !slices.Equal(o.ASNs, []uint32{64520}) {
			t.Fatalf("%s: %+v", a, o)
		}
	}
}
