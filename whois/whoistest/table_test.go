package whoistest

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseTable(t *testing.T) {
	in := "# lab\n192.0.2.0/24 | 64500 | ZZ | lab | 2020-01-01 | EXAMPLE-ISP\n\n198.51.100.128/25 | 64511 AS64512 | ZZ\n2001:db8::/32|64520\n"
	rows, err := ParseTable(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].ASName != "EXAMPLE-ISP" || !slices.Equal(rows[1].ASNs, []uint32{64511, 64512}) || rows[2].Prefix.String() != "2001:db8::/32" {
		t.Errorf("rows = %+v", rows)
	}
	for _, bad := range []string{"192.0.2.0/24\n", "192.0.2.0/33 | 1\n", "192.0.2.0/24 | x\n", "192.0.2.0/24 | \n"} {
		if _, err := ParseTable(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseTable(%q): no error", bad)
		}
	}
}

func TestServerReply(t *testing.T) {
	rows, err := ParseTable(strings.NewReader("192.0.2.0/24 | 64500 64501 | ZZ | lab | 2020-01-01 | EXAMPLE\n2001:db8::/32 | 64520 | | | | \n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(Config{Rows: rows, Header: "Bulk mode; test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("begin\nverbose\n192.0.2.9\n2001:db8::1\n203.0.113.1\nbogus\nend\n"))
	var lines []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		lines = append(lines, strings.Join(strings.Fields(sc.Text()), " "))
	}
	want := []string{
		"Bulk mode; test",
		"64500 | 192.0.2.9 | 192.0.2.0/24 | ZZ | lab | 2020-01-01 | EXAMPLE",
		"64501 | 192.0.2.9 | 192.0.2.0/24 | ZZ | lab | 2020-01-01 | EXAMPLE",
		"64520 | 2001:db8::1 | 2001:db8::/32 | NA | NA | NA | NA",
		"NA | 203.0.113.1 | NA | NA | NA | NA | NA",
		"Error: no ASN or IP match on line 6.",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("reply:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if q := s.Queried(); !slices.Equal(q, []netip.Addr{netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("203.0.113.1")}) {
		t.Errorf("queried %v", q)
	}
	if s.Connections() != 1 {
		t.Errorf("%d connections", s.Connections())
	}
}

func TestWritePfx2as(t *testing.T) {
	var b bytes.Buffer
	rows := []Row{
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), ASNs: []uint32{64500}},
		{Prefix: netip.MustParsePrefix("2001:db8::/32"), ASNs: []uint32{64520, 64521}},
	}
	if err := WritePfx2as(&b, rows); err != nil {
		t.Fatal(err)
	}
	if want := "192.0.2.0\t24\t64500\n2001:db8::\t32\t64520_64521\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
