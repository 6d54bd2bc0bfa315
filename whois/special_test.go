package whois

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestSpecial(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"172.32.0.1", ""},
		{"192.168.1.1", "private"},
		{"100.64.0.1", "cgnat"},
		{"100.127.255.255", "cgnat"},
		{"100.128.0.1", ""},
		{"127.0.0.1", "loopback"},
		{"169.254.10.10", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "this-network"},
		{"224.0.0.5", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"198.18.0.1", "benchmarking"},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fd00::1", "ula"},
		{"fc00::1", "ula"},
		{"ff02::1", "multicast"},
		{"100::1", "discard"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:192.0.2.1", ""},
		// Documentation ranges are looked up: the labs announce them.
		{"192.0.2.1", ""},
		{"198.51.100.7", ""},
		{"203.0.113.200", ""},
		{"2001:db8::1", ""},
		{"9.9.9.9", ""},
		{"2a00::1", ""},
	}
	for _, tt := range tests {
		if got := Special(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Special(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	if got := Special(netip.Addr{}); got != "unspecified" {
		t.Errorf("Special(invalid) = %q, want unspecified", got)
	}
}

func TestNew(t *testing.T) {
	for _, spec := range []string{"", "cymru-whois", "file:", "FILE:x", "bgp"} {
		_, err := New(spec, Options{})
		if err == nil {
			t.Errorf("New(%q): no error", spec)
			continue
		}
		if spec != "file:" && !strings.Contains(err.Error(), "cymru, cymru-dns, file:PATH, none") {
			t.Errorf("New(%q) = %v, want the valid specs listed", spec, err)
		}
	}
	if _, err := New("file:/nonexistent/table", Options{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/table") {
		t.Errorf("New(file:/nonexistent/table) = %v, want an error naming the path", err)
	}
	if _, err := New("cymru", Options{}); err != nil {
		t.Errorf("New(cymru) = %v", err)
	}
	if _, err := New("cymru-dns", Options{DNSServer: "127.0.0.1:53"}); err != nil {
		t.Errorf("New(cymru-dns) = %v", err)
	}
}

func TestNone(t *testing.T) {
	r, err := New("none", Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Lookup(context.Background(), addrs("192.0.2.1", "10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[netip.MustParseAddr("10.0.0.1")].Special != "private" {
		t.Errorf("none: got %+v, want only the private address labelled", got)
	}
}

func TestCacheFileName(t *testing.T) {
	a := cacheFileName("cymru", "whois.cymru.com:43")
	b := cacheFileName("cymru", "192.0.2.43:43")
	c := cacheFileName("cymru-dns", "[::1]:53_origin.asn.cymru.com.")
	if a == b || a == c {
		t.Errorf("cache files collide: %q %q %q", a, b, c)
	}
	for _, n := range []string{a, b, c} {
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
				t.Errorf("cache file name %q has %q", n, r)
			}
		}
	}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestWithPort(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "",
		"192.0.2.43":         "192.0.2.43:43",
		"192.0.2.43:4343":    "192.0.2.43:4343",
		"2001:db8::43":       "[2001:db8::43]:43",
		"[2001:db8::43]:443": "[2001:db8::43]:443",
		"whois.example":      "whois.example:43",
	} {
		if got := withPort(in, "43"); got != want {
			t.Errorf("withPort(%q) = %q, want %q", in, got, want)
		}
	}
}
