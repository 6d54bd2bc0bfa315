package catchment

import (
	"net/netip"
	"strings"
	"testing"
)

// Every built-in pattern with a real identity string of its operator.
func TestBuiltinSitesRealIdentities(t *testing.T) {
	s := BuiltinSites()
	for _, tc := range []struct {
		identity, operator, site, source string
	}{
		// K-root hostname.bind, RIPE Atlas msm 1423386 (refdata dns_kroot_hostname_bind_chaos_v4_fw4700).
		{"ns1.fi-hel.k.ripe.net", "k-root", "fi-hel", "Atlas result"},
		// K-root NSID over IPv6, RIPE Atlas msm 1004048 (refdata dns_kroot_soa_with_nsid_v6_fw4610).
		{"k3.ams-ix.k.ripe.net", "k-root", "ams-ix", "Atlas NSID"},
		// F-root hostname.bind (ISC-run site), in a dig parser's documentation.
		{"ams1a.f.root-servers.org", "f-root", "ams", "dig output"},
		// F-root hostname.bind of a Cloudflare-hosted site (netmeister.org, "dns-rrs", 2021).
		{"EWR.cf.f.root-servers.org", "f-root", "ewr", "dig output"},
		// Quad9 id.server, RIPE Atlas msm 24980204 (refdata quad9_id_server_chaos_9.9.9.9).
		{"res110.mia.rrdns.pch.net", "quad9", "mia", "Atlas result"},
	} {
		h, ok := s.Hint(tc.identity)
		if !ok || h.Operator != tc.operator || h.Site != tc.site {
			t.Errorf("%s (%s): hint %+v %v, want %s/%s", tc.identity, tc.source, h, ok, tc.operator, tc.site)
		}
	}
	// Every built-in line is exercised above.
	ops := map[string]bool{}
	for _, p := range s.patterns {
		ops[p.operator] = true
	}
	if len(ops) != 3 || len(s.patterns) != 4 {
		t.Errorf("the table grew (%d lines): add a real identity string for each new pattern", len(s.patterns))
	}
}

func TestSitesUnknownGivesNoHint(t *testing.T) {
	s := BuiltinSites()
	for _, id := range []string{"", "i1-nsd", "PowerDNS Recursor 3.5.2 $Id$", "ns1.fi-hel.k.ripe.net.evil.example", "xres110.mia.rrdns.pch.net"} {
		if h, ok := s.Hint(id); ok {
			t.Errorf("%q: got hint %+v", id, h)
		}
	}
	var nilSites *Sites
	if _, ok := nilSites.Hint("ns1.fi-hel.k.ripe.net"); ok {
		t.Errorf("nil table gave a hint")
	}
}

func TestSitesOperatorOf(t *testing.T) {
	s := BuiltinSites()
	for addr, want := range map[string]string{"193.0.14.129": "k-root", "2001:7fd::1": "k-root", "9.9.9.9": "quad9", "192.5.5.241": "f-root", "::ffff:9.9.9.9": "quad9"} {
		op, _, ok := s.OperatorOf(netip.MustParseAddr(addr))
		if !ok || op != want {
			t.Errorf("%s: %q %v, want %s", addr, op, ok, want)
		}
	}
	if _, _, ok := s.OperatorOf(netip.MustParseAddr("192.0.2.53")); ok {
		t.Errorf("a documentation address belongs to no operator")
	}
}

func TestParseSitesUserFile(t *testing.T) {
	user, err := ParseSites(strings.NewReader(`
# our own service
lab   auth    192.0.2.0/24   i[0-9]+\.(lab-[a-z]+)
lab   auth    192.0.2.0/24   (i[0-9]+)-(?:nsd|knot)
silent nochaos 198.51.100.53/32 -
`), "sites.txt")
	if err != nil {
		t.Fatal(err)
	}
	s := BuiltinSites().With(user)
	if h, ok := s.Hint("i1.lab-a"); !ok || h != (SiteHint{"lab", "lab-a"}) {
		t.Errorf("user pattern: %+v %v", h, ok)
	}
	if h, ok := s.Hint("I2-KNOT"); !ok || h.Site != "i2" {
		t.Errorf("case-insensitive match: %+v %v", h, ok)
	}
	if h, ok := s.Hint("ns1.fi-hel.k.ripe.net"); !ok || h.Operator != "k-root" {
		t.Errorf("builtin kept: %+v", h)
	}
	if _, kind, ok := s.OperatorOf(netip.MustParseAddr("198.51.100.53")); !ok || kind != KindNoChaos {
		t.Errorf("nochaos operator: %v %v", kind, ok)
	}
}

func TestParseSitesErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"a auth -", "f.txt:1: want 4 fields"},
		{"\n\na weird - x(y)", "f.txt:3: kind \"weird\""},
		{"a auth 300.0.0.0/8 (x)", "target \"300.0.0.0/8\""},
		{"a auth - x(", "f.txt:1: pattern"},
		{"a auth - nogroup", "no group for the site code"},
		{"a nochaos 192.0.2.0/24 (x)", "nochaos operator has no naming pattern"},
		{"a nochaos - -", "needs target prefixes"},
		// Issue 22 item 2: a no-break space or a vertical tab between fields
		// (Fields splits there, the pattern search did not) panicked.
		{"# x\na auth\u00a0- (x)", "f.txt:2: U+00A0 between fields"},
		{"a auth -\v(x)", "f.txt:1: U+000B between fields"},
		{"a\u2003auth - (x)", "f.txt:1: U+2003 between fields"},
	} {
		_, err := ParseSites(strings.NewReader(tc.text), "f.txt")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.text, err, tc.want)
		}
	}
}

// A user's --sites file is parsed without panics, whatever it holds.
func FuzzParseSites(f *testing.F) {
	f.Add(builtinSites)
	f.Add("a nochaos 192.0.2.0/24 -\nb auth - (x)\n")
	f.Add("a auth 2001:db8::/32,192.0.2.1/32 ^(a|b)[0-9]+$")
	f.Add("a auth\u00a0- (x)\nb\vauth - (y)")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseSites(strings.NewReader(text), "fuzz")
		if err != nil {
			return
		}
		s.Hint(text)
		s.OperatorOf(netip.MustParseAddr("192.0.2.1"))
	})
}
