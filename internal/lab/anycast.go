package lab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// Anycast is the project's standard lab (see doc.go for the picture):
// two clients in different catchments of one anycast DNS service.
type Anycast struct {
	*Lab

	// ServiceV4 and ServiceV6 are the anycast addresses both instances hold.
	ServiceV4, ServiceV6 netip.Addr
	// ServicePrefixV4/V6 are announced by ra (AS64520) and rb (AS64521).
	ServicePrefixV4, ServicePrefixV6 netip.Prefix
	// A (i1, NSD) and B (i2, Knot).
	A, B Instance
	// Dnstap are the instances' dnstap collectors, by instance name ("A",
	// "B"), when the lab was started with StartAnycastDnstap.
	Dnstap map[string]*Dnstap
}

// Instance is one anycast instance of the DNS service.
type Instance struct {
	Name     string    // "A" or "B"
	Node     string    // "i1" or "i2"
	Origin   string    // the router announcing it: "ra" or "rb"
	Server   DNSServer // NSD or Knot
	Identity string    // hostname.bind / id.server answer
	NSID     string    // EDNS NSID as text
}

// AS is an autonomous system of the lab with the address blocks it originates.
type AS struct {
	Number   uint32
	Name     string // AS name as a whois source would give it
	Router   string // the BGP router (one per AS)
	Prefixes []netip.Prefix
}

// Hop is what a traceroute should show at one TTL.
type Hop struct {
	// Nodes that may answer at this TTL: two for the ECMP diamond's middle.
	Nodes []string
	// Addrs that may answer, one per node (the interface the probe entered);
	// empty for a silent hop, which shows as "*".
	Addrs []netip.Addr
}

// Silent reports whether the hop never answers.
func (h Hop) Silent() bool { return len(h.Addrs) == 0 }

// Has reports whether a is one of the addresses this hop may answer from.
func (h Hop) Has(a netip.Addr) bool { return slices.Contains(h.Addrs, a) }

func (h Hop) String() string {
	if h.Silent() {
		return fmt.Sprintf("* (%v silent)", h.Nodes)
	}
	return fmt.Sprintf("%v %v", h.Addrs, h.Nodes)
}

var (
	svc4 = netip.MustParseAddr("192.0.2.53")
	svc6 = netip.MustParseAddr("2001:db8:53::53")
)

func p(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func a(s string) netip.Addr   { return netip.MustParseAddr(s) }
func ps(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, x := range s {
		out[i] = p(x)
	}
	return out
}

// toward returns static routes for every documentation range via v4/v6
// next hops (one each for a plain route, several for ECMP). Connected and
// more specific routes win, so this is "everything else in the lab", never a
// default route: nothing can leave the lab.
func toward(v4, v6 []netip.Addr) []Route {
	return []Route{
		{Dst: p("192.0.2.0/24"), Via: v4},
		{Dst: p("198.51.100.0/24"), Via: v4},
		{Dst: p("203.0.113.0/24"), Via: v4},
		{Dst: p("2001:db8::/32"), Via: v6},
	}
}

func via(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, x := range s {
		out[i] = a(x)
	}
	return out
}

// anycastASes is the address plan: every link is numbered from one AS's block.
var anycastASes = []AS{
	{64500, "ISP-ONE", "r1", ps("198.51.100.0/26", "2001:db8:100::/48")},
	{64501, "ISP-TWO", "r2", ps("198.51.100.64/26", "2001:db8:101::/48")},
	{64502, "ISP-THREE", "r3", ps("198.51.100.192/26", "2001:db8:102::/48")},
	{64510, "TRANSIT", "rt", ps("198.51.100.128/26", "2001:db8:110::/48")},
	{64520, "ANYDNS-A", "ra", ps("203.0.113.0/26", "2001:db8:120::/48", "192.0.2.0/24", "2001:db8:53::/48")},
	{64521, "ANYDNS-B", "rb", ps("203.0.113.64/26", "2001:db8:121::/48", "192.0.2.0/24", "2001:db8:53::/48")},
}

// AnycastTopology returns the standard lab's description; StartAnycast runs it.
func AnycastTopology() Topology {
	// The diamond's branch is chosen by a hash of the 5-tuple (src, dst,
	// proto, sport, dport = 0x37), as a hardware router does. Policy 1 would
	// reuse a local socket's random sk_txhash, so one flow from two sockets
	// could take two branches: the lab would lie about Paris traceroute.
	ecmp := map[string]string{
		"net.ipv4.fib_multipath_hash_policy": "3",
		"net.ipv4.fib_multipath_hash_fields": "0x37",
		"net.ipv6.fib_multipath_hash_policy": "3",
		"net.ipv6.fib_multipath_hash_fields": "0x37",
	}
	bgp := func(as uint32, nbs ...string) *BGP {
		b := &BGP{AS: as}
		for _, x := range anycastASes {
			if x.Number == as {
				b.Announce = x.Prefixes
			}
		}
		for _, n := range nbs {
			b.Neighbors = append(b.Neighbors, Neighbor{Node: n})
		}
		return b
	}
	multipath := func(b *BGP) *BGP {
		b.Multipath, b.NoTransit = true, true
		return b
	}
	routes := func(extra []Route, base []Route) []Route { return append(base, extra...) }
	return Topology{
		Nodes: []Node{
			{Name: "c1", Routes: toward(via("198.51.100.1"), via("2001:db8:100:1::1"))},
			{Name: "e1", Router: true, Sysctls: ecmp,
				Routes: toward(via("198.51.100.18", "198.51.100.22"), via("2001:db8:100:11::2", "2001:db8:100:12::2"))},
			{Name: "m1", Router: true, Routes: routes(
				[]Route{{Dst: p("198.51.100.0/27"), Via: via("198.51.100.17")}, {Dst: p("2001:db8:100::/59"), Via: via("2001:db8:100:11::1")}},
				toward(via("198.51.100.33"), via("2001:db8:100:20::1")))},
			{Name: "m2", Router: true, Routes: routes(
				[]Route{{Dst: p("198.51.100.0/27"), Via: via("198.51.100.21")}, {Dst: p("2001:db8:100::/59"), Via: via("2001:db8:100:12::1")}},
				toward(via("198.51.100.33"), via("2001:db8:100:20::1")))},
			// r1 returns everything behind e1 via m1 only: the diamond is
			// one-way, and either branch's replies come back fine.
			{Name: "r1", Router: true, BGP: bgp(64500, "ra", "rt"), Routes: []Route{
				{Dst: p("198.51.100.0/27"), Via: via("198.51.100.34")}, {Dst: p("2001:db8:100::/59"), Via: via("2001:db8:100:20::2")}}},
			{Name: "ra", Router: true, BGP: bgp(64520, "r1", "r3"), Routes: []Route{
				{Dst: p("192.0.2.0/24"), Via: via("203.0.113.18")}, {Dst: p("2001:db8:53::/48"), Via: via("2001:db8:120:1::2")}}},
			{Name: "i1", Service: ps("192.0.2.53/32", "2001:db8:53::53/128"),
				Routes: toward(via("203.0.113.17"), via("2001:db8:120:1::1"))},
			{Name: "rt", Router: true, BGP: bgp(64510, "r1", "r2")},
			{Name: "svc", Routes: toward(via("198.51.100.129"), via("2001:db8:110:1::1"))},
			{Name: "c2", Routes: toward(via("198.51.100.65"), via("2001:db8:101:1::1"))},
			// s2 forwards but never says "time exceeded": a silent hop.
			{Name: "s2", Router: true, Routes: toward(via("198.51.100.81"), via("2001:db8:101:11::1")),
				NFT: `table inet silent {
	chain output {
		type filter hook output priority 0; policy accept;
		icmp type time-exceeded drop
		icmpv6 type time-exceeded drop
	}
}
`},
			{Name: "r2", Router: true, BGP: bgp(64501, "rt", "rb"), Routes: []Route{
				{Dst: p("198.51.100.64/28"), Via: via("198.51.100.82")}, {Dst: p("2001:db8:101:1::/64"), Via: via("2001:db8:101:11::2")}}},
			{Name: "rb", Router: true, BGP: bgp(64521, "r2", "r3"), Routes: []Route{
				{Dst: p("192.0.2.0/24"), Via: via("203.0.113.82")}, {Dst: p("2001:db8:53::/48"), Via: via("2001:db8:121:1::2")}}},
			{Name: "i2", Service: ps("192.0.2.53/32", "2001:db8:53::53/128"),
				Routes: toward(via("203.0.113.81"), via("2001:db8:121:1::1"))},
			// c3's access router peers privately with both sites of the
			// service: two equal routes (AS paths 64520 and 64521) that
			// BIRD installs as one ECMP route, balanced by the 5-tuple
			// hash like e1's diamond, so c3's instance depends on its
			// source port. r3 is a customer: it announces only its own
			// prefixes, never one site's routes to the other.
			{Name: "c3", Routes: toward(via("198.51.100.193"), via("2001:db8:102:1::1"))},
			{Name: "r3", Router: true, Sysctls: ecmp, BGP: multipath(bgp(64502, "ra", "rb"))},
		},
		Links: []Link{
			// AS64500 198.51.100.0/26, 2001:db8:100::/48
			{Ends: []End{{"e1", ps("198.51.100.1/28", "2001:db8:100:1::1/64")}, {"c1", ps("198.51.100.10/28", "2001:db8:100:1::10/64")}}},
			{Ends: []End{{"e1", ps("198.51.100.17/30", "2001:db8:100:11::1/64")}, {"m1", ps("198.51.100.18/30", "2001:db8:100:11::2/64")}}},
			{Ends: []End{{"e1", ps("198.51.100.21/30", "2001:db8:100:12::1/64")}, {"m2", ps("198.51.100.22/30", "2001:db8:100:12::2/64")}}},
			{Name: "core", Ends: []End{
				{"r1", ps("198.51.100.33/29", "2001:db8:100:20::1/64")},
				{"m1", ps("198.51.100.34/29", "2001:db8:100:20::2/64")},
				{"m2", ps("198.51.100.35/29", "2001:db8:100:20::3/64")}}},
			// AS64501 198.51.100.64/26, 2001:db8:101::/48
			{Ends: []End{{"s2", ps("198.51.100.65/28", "2001:db8:101:1::1/64")}, {"c2", ps("198.51.100.74/28", "2001:db8:101:1::10/64")}}},
			{Ends: []End{{"r2", ps("198.51.100.81/30", "2001:db8:101:11::1/64")}, {"s2", ps("198.51.100.82/30", "2001:db8:101:11::2/64")}}},
			// AS64510 198.51.100.128/26, 2001:db8:110::/48 (transit numbers its customer links)
			{Ends: []End{{"rt", ps("198.51.100.129/28", "2001:db8:110:1::1/64")}, {"svc", ps("198.51.100.130/28", "2001:db8:110:1::10/64")}}},
			{Ends: []End{{"rt", ps("198.51.100.145/30", "2001:db8:110:11::1/64")}, {"r1", ps("198.51.100.146/30", "2001:db8:110:11::2/64")}}},
			{Ends: []End{{"rt", ps("198.51.100.149/30", "2001:db8:110:12::1/64")}, {"r2", ps("198.51.100.150/30", "2001:db8:110:12::2/64")}}},
			// AS64520 203.0.113.0/26, 2001:db8:120::/48 (the anycast operator numbers its edge links)
			{Ends: []End{{"ra", ps("203.0.113.1/30", "2001:db8:120:11::1/64")}, {"r1", ps("203.0.113.2/30", "2001:db8:120:11::2/64")}}},
			{Ends: []End{{"ra", ps("203.0.113.17/30", "2001:db8:120:1::1/64")}, {"i1", ps("203.0.113.18/30", "2001:db8:120:1::2/64")}}},
			// AS64521 203.0.113.64/26, 2001:db8:121::/48
			{Ends: []End{{"rb", ps("203.0.113.65/30", "2001:db8:121:11::1/64")}, {"r2", ps("203.0.113.66/30", "2001:db8:121:11::2/64")}}},
			{Ends: []End{{"rb", ps("203.0.113.81/30", "2001:db8:121:1::1/64")}, {"i2", ps("203.0.113.82/30", "2001:db8:121:1::2/64")}}},
			// Each site numbers its private peering with r3 (AS64502).
			{Ends: []End{{"ra", ps("203.0.113.5/30", "2001:db8:120:12::1/64")}, {"r3", ps("203.0.113.6/30", "2001:db8:120:12::2/64")}}},
			{Ends: []End{{"rb", ps("203.0.113.69/30", "2001:db8:121:12::1/64")}, {"r3", ps("203.0.113.70/30", "2001:db8:121:12::2/64")}}},
			// AS64502 198.51.100.192/26, 2001:db8:102::/48
			{Ends: []End{{"r3", ps("198.51.100.193/28", "2001:db8:102:1::1/64")}, {"c3", ps("198.51.100.202/28", "2001:db8:102:1::10/64")}}},
		},
	}
}

// anycastDelays are one-way delays for the standard lab's links: access
// links of a millisecond or two, metro links of a few, long-haul links of
// 6 to 25 ms, so that round trips from the clients are those of real
// paths (c1 → A 36 ms, c1 → svc 24 ms, c2 → B 62 ms, c2 → A once B's
// route is gone 60 ms, c3 → A 24 ms or B 32 ms by its flow).
var anycastDelays = map[string]time.Duration{
	"e1-c1":  1 * time.Millisecond,
	"e1-m1":  2 * time.Millisecond,
	"e1-m2":  2 * time.Millisecond,
	"core":   2 * time.Millisecond,
	"ra-r1":  12 * time.Millisecond,
	"ra-i1":  1 * time.Millisecond,
	"rt-r1":  6 * time.Millisecond,
	"rt-r2":  6 * time.Millisecond,
	"rt-svc": 1 * time.Millisecond,
	"s2-c2":  1 * time.Millisecond,
	"r2-s2":  4 * time.Millisecond,
	"rb-r2":  25 * time.Millisecond,
	"rb-i2":  1 * time.Millisecond,
	"r3-c3":  1 * time.Millisecond,
	"ra-r3":  10 * time.Millisecond,
	"rb-r3":  14 * time.Millisecond,
}

// DelayedAnycastTopology is AnycastTopology with every link delayed as
// real paths are (see Link.Delay): the lab for measuring waits and speed.
func DelayedAnycastTopology() Topology {
	topo := AnycastTopology()
	for i := range topo.Links {
		topo.Links[i].Delay = anycastDelays[linkName(topo.Links[i])]
	}
	return topo
}

// StartAnycast starts the standard lab: topology, BIRD on the six routers,
// NSD on i1 and Knot on i2, all in parallel; it returns once BGP has
// converged and both instances answer. Teardown is automatic.
func StartAnycast(t testing.TB) *Anycast {
	t.Helper()
	return startAnycast(t, AnycastTopology(), false)
}

// StartAnycastDelayed is StartAnycast on DelayedAnycastTopology.
func StartAnycastDelayed(t testing.TB) *Anycast {
	t.Helper()
	return startAnycast(t, DelayedAnycastTopology(), false)
}

// StartAnycastDnstap is StartAnycast with both instances logging their
// clients' queries as dnstap (NSD: queries and responses; Knot's
// mod-dnstap: queries), each to a collector in its node (Anycast.Dnstap),
// with the instance's NSID as the dnstap identity.
func StartAnycastDnstap(t testing.TB) *Anycast {
	t.Helper()
	Require(t, "fstrm_capture")
	return startAnycast(t, AnycastTopology(), true)
}

func startAnycast(t testing.TB, topo Topology, dnstap bool) *Anycast {
	t.Helper()
	Require(t)
	start := time.Now()
	l, err := newLab(t, topo)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	if err := l.build(); err != nil {
		t.Fatalf("lab: %v", err)
	}
	ac := newAnycast(l)
	built := time.Now()
	var bgpAt, dnsAt [2]time.Time
	var g errgroup.Group
	g.Go(func() error {
		if err := l.startBGP(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
		defer cancel()
		err := l.WaitConverged(ctx)
		bgpAt[0] = time.Now()
		return err
	})
	if dnstap {
		ac.Dnstap = map[string]*Dnstap{}
		for _, in := range []Instance{ac.A, ac.B} {
			d, err := l.StartDnstap(in.Node)
			if err != nil {
				t.Fatalf("lab: %v", err)
			}
			ac.Dnstap[in.Name] = d
		}
	}
	for i, in := range []Instance{ac.A, ac.B} {
		g.Go(func() error {
			di := DNSInstance{Server: in.Server, Identity: in.Identity, NSID: in.NSID, Listen: []netip.Addr{svc4, svc6}}
			if d := ac.Dnstap[in.Name]; d != nil {
				di.DnstapSocket = d.Socket
			}
			err := l.StartDNS(in.Node, di)
			dnsAt[i] = time.Now()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("lab: %v", err)
	}
	// Ready means usable end to end: each client reaches its instance,
	// and the split client's router balances over both sites.
	for _, c := range ac.Clients() {
		g.Go(func() error {
			_, err := ac.WaitInstance(context.Background(), c)
			return err
		})
	}
	g.Go(func() error { return ac.waitSplit(context.Background()) })
	if err := g.Wait(); err != nil {
		t.Fatalf("lab: %v", err)
	}
	ms := func(t time.Time) time.Duration { return t.Sub(start).Round(time.Millisecond) }
	t.Logf("lab %s: anycast lab up in %v (namespaces and links %v, BGP converged %v, NSD %v, Knot %v; dir %s)",
		l.id, time.Since(start).Round(time.Millisecond), ms(built), ms(bgpAt[0]), ms(dnsAt[0]), ms(dnsAt[1]), l.dir)
	return ac
}

func newAnycast(l *Lab) *Anycast {
	return &Anycast{
		Lab:       l,
		ServiceV4: svc4, ServiceV6: svc6,
		ServicePrefixV4: p("192.0.2.0/24"), ServicePrefixV6: p("2001:db8:53::/48"),
		A: Instance{Name: "A", Node: "i1", Origin: "ra", Server: NSD, Identity: "i1.lab-a", NSID: "i1-nsd"},
		B: Instance{Name: "B", Node: "i2", Origin: "rb", Server: Knot, Identity: "i2.lab-b", NSID: "i2-knot"},
	}
}

// Clients are the client nodes, each in its own catchment at start.
func (ac *Anycast) Clients() []string { return []string{"c1", "c2"} }

// SplitClient is the client whose catchment is split by flow: its access
// router r3 has equal BGP routes to both sites (private peering with ra and
// rb) and balances flows over them by a hash of the 5-tuple, so which
// instance answers depends on the source port. It is not one of Clients.
func (ac *Anycast) SplitClient() string { return "c3" }

// SplitPaths is what a traceroute from the split client shows on a flow
// that reaches instance A and on one that reaches B (r3, then the site's
// router, then the service address), keyed by instance name.
func (ac *Anycast) SplitPaths(f Family) map[string][]Hop {
	out := map[string][]Hop{}
	for _, in := range []Instance{ac.A, ac.B} {
		out[in.Name] = []Hop{
			{Nodes: []string{"r3"}, Addrs: []netip.Addr{ac.Addr("r3", "c3", f)}},
			{Nodes: []string{in.Origin}, Addrs: []netip.Addr{ac.Addr(in.Origin, "r3", f)}},
			{Nodes: []string{in.Node}, Addrs: []netip.Addr{ac.ServiceAddr(f)}},
		}
	}
	return out
}

// waitSplit waits (bounded by convergeTimeout) until r3 holds one route
// with two next hops (ra and rb) for the service prefix in both families.
func (ac *Anycast) waitSplit(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, convergeTimeout)
	defer cancel()
	err := poll(ctx, 100*time.Millisecond, func() error {
		for _, pf := range []netip.Prefix{ac.ServicePrefixV4, ac.ServicePrefixV6} {
			f, fam := IPv4, "-4"
			if pf.Addr().Is6() {
				f, fam = IPv6, "-6"
			}
			out, err := ac.inNS(ctx, ac.ns["r3"], "ip", fam, "route", "show", pf.String())
			if err != nil {
				return err
			}
			for _, gw := range []string{"ra", "rb"} {
				if !strings.Contains(string(out), "via "+ac.Addr(gw, "r3", f).String()) {
					return fmt.Errorf("r3's route to %s is not over both sites yet: %q", pf, strings.TrimSpace(string(out)))
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// ClientAddr is the client's (only) address of the family.
func (ac *Anycast) ClientAddr(client string, f Family) netip.Addr {
	ac.t.Helper()
	switch client {
	case "c1":
		return ac.Addr("c1", "e1", f)
	case "c2":
		return ac.Addr("c2", "s2", f)
	case "c3":
		return ac.Addr("c3", "r3", f)
	}
	ac.t.Fatalf("lab: %q is not a client of the anycast lab", client)
	return netip.Addr{}
}

// ServicesAddr is the services host's address (svc, AS64510), reachable from
// both clients: run whois or DNS servers there with Spawn.
func (ac *Anycast) ServicesAddr(f Family) netip.Addr { return ac.Addr("svc", "rt", f) }

// ServiceAddr returns ServiceV4 or ServiceV6.
func (ac *Anycast) ServiceAddr(f Family) netip.Addr {
	if f == IPv6 {
		return ac.ServiceV6
	}
	return ac.ServiceV4
}

// ASes lists the lab's autonomous systems and the prefixes each originates
// (the service prefix has two origins, 64520 and 64521): the truth for an
// offline prefix-to-AS table or a lab whois server.
func (ac *Anycast) ASes() []AS {
	out := slices.Clone(anycastASes)
	for i := range out {
		out[i].Prefixes = slices.Clone(out[i].Prefixes)
	}
	return out
}

// OriginAS is the AS originating the most specific lab prefix holding
// addr; ok is false when no lab prefix holds it or when that prefix has
// several origins (the anycast service prefix).
func (ac *Anycast) OriginAS(addr netip.Addr) (as uint32, ok bool) {
	best, multi := -1, false
	for _, x := range anycastASes {
		for _, pf := range x.Prefixes {
			switch {
			case !pf.Contains(addr) || pf.Bits() < best:
			case pf.Bits() > best:
				best, as, multi = pf.Bits(), x.Number, false
			case as != x.Number:
				multi = true
			}
		}
	}
	if best < 0 || multi {
		return 0, false
	}
	return as, true
}

// access describes the hops between a client and its BGP router.
func (ac *Anycast) access(client string, f Family) (router string, hops []Hop) {
	switch client {
	case "c1":
		return "r1", []Hop{
			{Nodes: []string{"e1"}, Addrs: []netip.Addr{ac.Addr("e1", "c1", f)}},
			{Nodes: []string{"m1", "m2"}, Addrs: []netip.Addr{ac.Addr("m1", "e1", f), ac.Addr("m2", "e1", f)}},
			{Nodes: []string{"r1"}, Addrs: []netip.Addr{ac.Addr("r1", "core", f)}},
		}
	case "c2":
		return "r2", []Hop{
			{Nodes: []string{"s2"}},
			{Nodes: []string{"r2"}, Addrs: []netip.Addr{ac.Addr("r2", "s2", f)}},
		}
	}
	ac.t.Fatalf("lab: %q is not a client of the anycast lab", client)
	return "", nil
}

// bgpPath is the chain of BGP routers from one router to the nearest
// instance origin over established sessions (breadth first = shortest AS
// path; the lab's routers form a line, so there are no ties).
func (ac *Anycast) bgpPath(from string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == ac.A.Origin || cur == ac.B.Origin {
			var path []string
			for n := cur; n != ""; n = prev[n] {
				path = append([]string{n}, path...)
			}
			return path
		}
		if cur != from && ac.nodes[cur].BGP.NoTransit {
			continue // a customer carries no traffic between its neighbours
		}
		for _, nb := range ac.nodes[cur].BGP.Neighbors {
			if _, seen := prev[nb.Node]; seen || !ac.SessionUp(cur, nb.Node) {
				continue
			}
			prev[nb.Node] = cur
			queue = append(queue, nb.Node)
		}
	}
	return nil
}

// InstanceOf is the instance the client should reach given the BGP sessions
// stopped so far; ok is false when the service is unreachable from it.
func (ac *Anycast) InstanceOf(client string) (in Instance, ok bool) {
	router, _ := ac.access(client, IPv4)
	path := ac.bgpPath(router)
	if path == nil {
		return Instance{}, false
	}
	if path[len(path)-1] == ac.A.Origin {
		return ac.A, true
	}
	return ac.B, true
}

// ExpectedPath is what a traceroute from client to the service address
// should show, hop by hop, given the sessions stopped so far: routers answer
// from the interface the probe entered (icmp_errors_use_inbound_ifaddr, and
// IPv6 source selection on the symmetric return path); the diamond's middle
// hop lists m1 and m2; s2 is silent; the last hop is the service address.
// It is nil when the service is unreachable from client.
func (ac *Anycast) ExpectedPath(client string, f Family) []Hop {
	router, hops := ac.access(client, f)
	path := ac.bgpPath(router)
	if path == nil {
		return nil
	}
	for i := 1; i < len(path); i++ {
		hops = append(hops, Hop{Nodes: []string{path[i]}, Addrs: []netip.Addr{ac.Addr(path[i], path[i-1], f)}})
	}
	in, _ := ac.InstanceOf(client)
	return append(hops, Hop{Nodes: []string{in.Node}, Addrs: []netip.Addr{ac.ServiceAddr(f)}})
}

// ExpectedASPath is the AS path from client to the instance it reaches,
// given the sessions stopped so far: the client's own AS first, the
// instance's origin AS last; nil when the service is unreachable.
func (ac *Anycast) ExpectedASPath(client string) []uint32 {
	router, _ := ac.access(client, IPv4)
	var out []uint32
	for _, r := range ac.bgpPath(router) {
		out = append(out, ac.nodes[r].BGP.AS)
	}
	return out
}

// IdentifyFrom asks the service address, from client, who answers.
func (ac *Anycast) IdentifyFrom(ctx context.Context, client string, f Family) (Identity, error) {
	return ac.Identify(ctx, client, ac.ServiceAddr(f))
}

// WaitInstance waits (bounded by ctx and 30 s) until client reaches, over
// IPv4 and IPv6, the instance InstanceOf expects, e.g. after StopBGP.
func (ac *Anycast) WaitInstance(ctx context.Context, client string) (Instance, error) {
	want, ok := ac.InstanceOf(client)
	if !ok {
		return Instance{}, fmt.Errorf("lab: the service is unreachable from %s with the sessions stopped", client)
	}
	ctx, cancel := context.WithTimeout(ctx, convergeTimeout)
	defer cancel()
	if err := ac.WaitConverged(ctx); err != nil {
		return want, err
	}
	err := poll(ctx, 100*time.Millisecond, func() error {
		for _, f := range []Family{IPv4, IPv6} {
			id, err := ac.IdentifyFrom(ctx, client, f)
			if err != nil {
				return err
			}
			if id.Hostname != want.Identity || id.NSID != want.NSID {
				return fmt.Errorf("%v: %s reaches %q/%q", f, client, id.Hostname, id.NSID)
			}
		}
		return nil
	})
	if err != nil {
		return want, fmt.Errorf("lab: %s did not move to instance %s (%s): %w", client, want.Name, want.Identity, err)
	}
	return want, nil
}
