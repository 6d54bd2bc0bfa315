package lab

import (
	"net/netip"
	"slices"
	"testing"
)

// These tests check the lab's address and path model without root.

func modelAnycast(t *testing.T) *Anycast {
	t.Helper()
	l, err := describe(t, AnycastTopology())
	if err != nil {
		t.Fatal(err)
	}
	return newAnycast(l)
}

func hopAddrs(hops []Hop) [][]string {
	var out [][]string
	for _, h := range hops {
		var s []string
		for _, a := range h.Addrs {
			s = append(s, a.String())
		}
		out = append(out, s)
	}
	return out
}

func TestExpectedPathFollowsBGPState(t *testing.T) {
	tests := []struct {
		name     string
		stopped  [][2]string
		client   string
		f        Family
		instance string // "" = unreachable
		asPath   []uint32
		want     [][]string
	}{
		{"c1 v4 fresh", nil, "c1", IPv4, "A", []uint32{64500, 64520}, [][]string{
			{"198.51.100.1"}, {"198.51.100.18", "198.51.100.22"}, {"198.51.100.33"}, {"203.0.113.1"}, {"192.0.2.53"}}},
		{"c1 v6 fresh", nil, "c1", IPv6, "A", []uint32{64500, 64520}, [][]string{
			{"2001:db8:100:1::1"}, {"2001:db8:100:11::2", "2001:db8:100:12::2"}, {"2001:db8:100:20::1"},
			{"2001:db8:120:11::1"}, {"2001:db8:53::53"}}},
		{"c2 v4 fresh: s2 silent", nil, "c2", IPv4, "B", []uint32{64501, 64521}, [][]string{
			nil, {"198.51.100.81"}, {"203.0.113.65"}, {"192.0.2.53"}}},
		{"c1 after ra-r1 stops", [][2]string{{"ra", "r1"}}, "c1", IPv4, "B", []uint32{64500, 64510, 64501, 64521}, [][]string{
			{"198.51.100.1"}, {"198.51.100.18", "198.51.100.22"}, {"198.51.100.33"},
			{"198.51.100.145"}, {"198.51.100.150"}, {"203.0.113.65"}, {"192.0.2.53"}}},
		{"c2 unaffected by ra-r1", [][2]string{{"ra", "r1"}}, "c2", IPv4, "B", []uint32{64501, 64521}, [][]string{
			nil, {"198.51.100.81"}, {"203.0.113.65"}, {"192.0.2.53"}}},
		{"c2 after r2-rb stops (either side)", [][2]string{{"r2", "rb"}}, "c2", IPv6, "A", []uint32{64501, 64510, 64500, 64520}, [][]string{
			nil, {"2001:db8:101:11::1"}, {"2001:db8:110:12::1"}, {"2001:db8:110:11::2"}, {"2001:db8:120:11::1"},
			{"2001:db8:53::53"}}},
		{"c1 cut off", [][2]string{{"ra", "r1"}, {"rt", "r1"}}, "c1", IPv4, "", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ac := modelAnycast(t)
			for _, s := range tc.stopped {
				ac.disabled[s] = true
			}
			in, ok := ac.InstanceOf(tc.client)
			if ok != (tc.instance != "") || in.Name != tc.instance {
				t.Errorf("InstanceOf(%s) = %q, %v; want %q", tc.client, in.Name, ok, tc.instance)
			}
			if got := ac.ExpectedASPath(tc.client); !slices.Equal(got, tc.asPath) {
				t.Errorf("ExpectedASPath(%s) = %v, want %v", tc.client, got, tc.asPath)
			}
			if got := hopAddrs(ac.ExpectedPath(tc.client, tc.f)); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("ExpectedPath(%s, %v)\n got %v\nwant %v", tc.client, tc.f, got, tc.want)
			}
		})
	}
}

func TestReachablePrefixes(t *testing.T) {
	ac := modelAnycast(t)
	ac.disabled[[2]string{"ra", "r1"}] = true
	want, gone := ac.reachablePrefixes("r1")
	for _, pf := range []string{"192.0.2.0/24", "2001:db8:121::/48", "198.51.100.128/26"} {
		if !slices.Contains(want, p(pf)) {
			t.Errorf("r1 should still learn %s, want = %v", pf, want)
		}
	}
	for _, pf := range []string{"203.0.113.0/26", "2001:db8:120::/48"} {
		if !slices.Contains(gone, p(pf)) {
			t.Errorf("r1 must lose %s once ra is cut off, gone = %v", pf, gone)
		}
	}
	if slices.Contains(want, p("198.51.100.0/26")) || slices.Contains(gone, p("198.51.100.0/26")) {
		t.Errorf("r1's own prefix is in want/gone")
	}
}

// The split client's router is a customer of both sites: it learns their
// routes but passes on none, so cutting a site off its other peer does not
// make r3 a transit between the sites, and no client's path crosses it.
func TestSplitClientIsNoTransit(t *testing.T) {
	ac := modelAnycast(t)
	ac.disabled[[2]string{"ra", "r1"}] = true
	want, gone := ac.reachablePrefixes("ra")
	if !slices.Contains(want, p("198.51.100.192/26")) || slices.Contains(want, p("198.51.100.0/26")) || !slices.Contains(gone, p("198.51.100.0/26")) {
		t.Errorf("ra with r1 cut off: want %v, gone %v; it should learn r3's prefix only", want, gone)
	}
	if in, ok := ac.InstanceOf("c1"); !ok || in.Name != "B" || slices.Contains(ac.bgpPath("r1"), "r3") {
		t.Errorf("c1 after ra-r1 stops: %q via %v, want B not through r3", in.Name, ac.bgpPath("r1"))
	}
	for f, want := range map[Family][2][][]string{
		IPv4: {{{"198.51.100.193"}, {"203.0.113.5"}, {"192.0.2.53"}}, {{"198.51.100.193"}, {"203.0.113.69"}, {"192.0.2.53"}}},
		IPv6: {{{"2001:db8:102:1::1"}, {"2001:db8:120:12::1"}, {"2001:db8:53::53"}}, {{"2001:db8:102:1::1"}, {"2001:db8:121:12::1"}, {"2001:db8:53::53"}}},
	} {
		paths := ac.SplitPaths(f)
		if got := hopAddrs(paths["A"]); !slices.EqualFunc(got, want[0], slices.Equal) {
			t.Errorf("%v: split path to A %v, want %v", f, got, want[0])
		}
		if got := hopAddrs(paths["B"]); !slices.EqualFunc(got, want[1], slices.Equal) {
			t.Errorf("%v: split path to B %v, want %v", f, got, want[1])
		}
	}
}

func TestOriginAS(t *testing.T) {
	ac := modelAnycast(t)
	tests := []struct {
		addr string
		as   uint32
		ok   bool
	}{
		{"198.51.100.18", 64500, true},
		{"198.51.100.81", 64501, true},
		{"198.51.100.145", 64510, true},
		{"203.0.113.1", 64520, true},
		{"2001:db8:121:11::1", 64521, true},
		{"192.0.2.53", 0, false},      // two origins: the anycast prefix
		{"2001:db8:53::53", 0, false}, // same in IPv6
		{"198.51.100.200", 64502, true},
		{"203.0.113.200", 0, false}, // not announced by anyone
	}
	for _, tc := range tests {
		as, ok := ac.OriginAS(netip.MustParseAddr(tc.addr))
		if as != tc.as || ok != tc.ok {
			t.Errorf("OriginAS(%s) = %d, %v; want %d, %v", tc.addr, as, ok, tc.as, tc.ok)
		}
	}
}

// Every lab address comes from the documentation ranges, so no test can
// ever address a real host.
func TestAnycastUsesDocumentationAddressesOnly(t *testing.T) {
	doc := ps("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
	inDoc := func(a netip.Addr) bool {
		return slices.ContainsFunc(doc, func(d netip.Prefix) bool { return d.Contains(a) })
	}
	topo := AnycastTopology()
	for _, lk := range topo.Links {
		for _, e := range lk.Ends {
			for _, pf := range e.Addrs {
				if !inDoc(pf.Addr()) {
					t.Errorf("%s: address %s outside documentation ranges", e.Node, pf)
				}
			}
		}
	}
	for _, n := range topo.Nodes {
		for _, r := range n.Routes {
			if !inDoc(r.Dst.Addr()) || r.Dst.Bits() == 0 {
				t.Errorf("%s: route %s leaves the documentation ranges", n.Name, r.Dst)
			}
		}
	}
}

func TestNamesFitInterfaceLimit(t *testing.T) {
	l, err := describe(t, AnycastTopology())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.id) != 8 {
		t.Errorf("lab id %q: want 8 characters", l.id)
	}
	other, _ := describe(t, AnycastTopology())
	if other.id == l.id {
		t.Errorf("two labs got the same id %q", l.id)
	}
	if _, err := describe(t, Topology{Nodes: []Node{{Name: "averyveryverylongname"}}}); err == nil {
		t.Error("a node name longer than an interface name allows was accepted")
	}
}

func TestParseDig(t *testing.T) {
	tests := []struct {
		name, out string
		want      Identity
		wantErr   bool
	}{
		{"nsd", `; <<>> DiG 9.18.49 <<>> @192.0.2.53 CH TXT hostname.bind
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 16196
;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
; NSID: 69 31 2d 6e 73 64 ("i1-nsd")
;; QUESTION SECTION:
;hostname.bind.			CH	TXT

;; ANSWER SECTION:
hostname.bind.		0	CH	TXT	"i1.lab-a"
`, Identity{Hostname: "i1.lab-a", NSID: "i1-nsd"}, false},
		{"nsid only", "; NSID: 69 32 (\"i2\")\n", Identity{NSID: "i2"}, false},
		{"refused", ";; ->>HEADER<<- opcode: QUERY, status: REFUSED, id: 1\n", Identity{}, true},
		{"timeout", ";; communications error to 192.0.2.53#53: timed out\n", Identity{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDig([]byte(tc.out))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseDig = %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzParseDig(f *testing.F) {
	f.Add([]byte("hostname.bind.\t\t0\tCH\tTXT\t\"i1.lab-a\"\n; NSID: 69 31 (\"i1\")\n"))
	f.Add([]byte("; NSID: (\"\")\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, out []byte) {
		id, err := parseDig(out)
		if err == nil && id.Hostname == "" && id.NSID == "" {
			t.Errorf("no error but empty identity for %q", out)
		}
	})
}

// Every delay of the delayed anycast lab names a link of it, and every
// link is delayed.
func TestDelayedAnycastTopology(t *testing.T) {
	topo := DelayedAnycastTopology()
	named := map[string]bool{}
	for _, lk := range topo.Links {
		named[linkName(lk)] = true
		if lk.Delay <= 0 || lk.Delay > MaxDelay {
			t.Errorf("link %s: delay %v", linkName(lk), lk.Delay)
		}
	}
	for name := range anycastDelays {
		if !named[name] {
			t.Errorf("delay for %q: no such link", name)
		}
	}
	for _, lk := range AnycastTopology().Links {
		if lk.Delay != 0 {
			t.Errorf("link %s of the standard lab is delayed (%v)", linkName(lk), lk.Delay)
		}
	}
}
