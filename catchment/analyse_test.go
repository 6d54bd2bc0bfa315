package catchment

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"
)

var (
	svc4 = netip.MustParseAddr("192.0.2.53")
	svc6 = netip.MustParseAddr("2001:db8:53::53")
)

func vantage(key string, as uint32) Vantage {
	return Vantage{Key: key, Label: key, Origin: Origin{ASNs: []uint32{as}, Country: "ZZ"}}
}

func answered(instance string, rtt time.Duration, sus ...measure.Suspicion) []measure.Answer {
	return []measure.Answer{{Name: "hostname.bind", Status: measure.StatusAnswered, RTT: rtt, TXT: []string{instance}, Suspicions: sus}}
}

func idObs(v Vantage, target netip.Addr, instance string, rtt time.Duration, sus ...measure.Suspicion) Observation {
	return Observation{Vantage: v, Target: target, Identity: measure.Identity{Instance: instance, Source: "hostname.bind", HostnameBind: instance}, Answers: answered(instance, rtt, sus...)}
}

// asHops builds hops with origins: pairs of address and AS.
func asHops(pairs ...any) []Hop {
	var out []Hop
	for i := 0; i < len(pairs); i += 2 {
		h := Hop{TTL: i/2 + 1}
		if a := pairs[i].(string); a != "*" {
			h.Responders = []Responder{{Addr: netip.MustParseAddr(a), RTT: time.Duration(i+1) * time.Millisecond, ASNs: []uint32{uint32(pairs[i+1].(int))}}}
		}
		out = append(out, h)
	}
	return out
}

func TestResolveIdentityAndUpstream(t *testing.T) {
	o := idObs(vantage("a", 64500), svc4, "i1.lab-a", 6*time.Millisecond)
	o.Flows = []Flow{{Proto: "udp", Reached: true, Hops: asHops("198.51.100.1", 64500, "*", 0, "203.0.113.1", 64520, "192.0.2.53", 64520)}}
	r := Resolve(o, nil)
	if r.Instance != "i1.lab-a" || r.InstanceSource != "hostname.bind" || !r.Identified() {
		t.Errorf("instance %q from %q", r.Instance, r.InstanceSource)
	}
	// The service's origin is AS64520 (the target's replies say so): the
	// upstream AS is the last before it, the hop where the path enters it.
	if u := r.Upstream; u == nil || u.Addr.String() != "203.0.113.1" || u.TTL != 3 || u.AS != 64500 || !u.ByOrigin {
		t.Errorf("upstream %+v", r.Upstream)
	}
	if !slices.Equal(r.ASPath, []uint32{64500, 64520}) || !r.Reached || r.PathRTT != 7*time.Millisecond || r.DNSRTT != 6*time.Millisecond {
		t.Errorf("path %v reached %v rtt %v dns %v", r.ASPath, r.Reached, r.PathRTT, r.DNSRTT)
	}
	// Nothing at all: no instance.
	if r := Resolve(Observation{Vantage: vantage("c", 1), Target: svc4, Errors: []string{"timeout"}}, nil); r.Instance != "" {
		t.Errorf("empty observation named %q", r.Instance)
	}
}

// TestUpstreamOf: one definition of the upstream for every command.
func TestUpstreamOf(t *testing.T) {
	type want struct {
		addr     string
		ttl      int
		as       uint32
		byOrigin bool
	}
	for _, tc := range []struct {
		name   string
		hops   []Hop
		origin []uint32
		want   want
	}{
		// The service's routers are silent: the upstream's own router is
		// the hop (trace's golden path).
		{"silent service network", asHops("203.0.113.1", 64500, "*", 0, "198.51.100.6", 64510, "192.0.2.53", 64520), nil, want{"198.51.100.6", 3, 64510, true}},
		// The path enters the service's AS before the target: that hop
		// tells sites apart (the lab's diamond).
		{"entry hop", asHops("198.51.100.1", 64500, "198.51.100.33", 64500, "203.0.113.1", 64520, "192.0.2.53", 64520), nil, want{"203.0.113.1", 3, 64500, true}},
		// A multi-origin service: either origin is the service.
		{"multi-origin", asHops("198.51.100.1", 64500, "203.0.113.69", 64521, "192.0.2.53", 64521), []uint32{64520, 64521}, want{"203.0.113.69", 2, 64500, true}},
		// The target never answers: its origin comes from the lookup.
		{"unreached", asHops("198.51.100.1", 64500, "198.51.100.9", 64510, "*", 0), []uint32{64520}, want{"198.51.100.9", 2, 64510, true}},
		// Without origins: the last responding hop before the target.
		{"no origins", []Hop{{TTL: 1, Responders: []Responder{{Addr: netip.MustParseAddr("198.51.100.1")}}}, {TTL: 2, Responders: []Responder{{Addr: netip.MustParseAddr("198.51.100.9")}}}, {TTL: 3, Responders: []Responder{{Addr: svc4}}}}, nil, want{"198.51.100.9", 2, 0, false}},
		// The Atlas TTL 255 tail is no hop of the path.
		{"atlas tail", append(asHops("198.51.100.1", 64500, "198.51.100.9", 64500), Hop{TTL: 255, Responders: []Responder{{Addr: svc4}}}), nil, want{"198.51.100.9", 2, 0, false}},
		// A hop of the other family (a hostile or broken result) is no
		// hop of an IPv4 path: it never becomes the upstream.
		{"other family", asHops("198.51.100.1", 64500, "198.51.100.9", 64510, "2001:db8::9", 64511, "192.0.2.53", 64520), nil, want{"198.51.100.9", 2, 64510, true}},
		{"other family only", asHops("2001:db8::9", 64511, "192.0.2.53", 64520), nil, want{"invalid IP", 0, 0, false}},
	} {
		u, ok := UpstreamOf(Flow{Hops: tc.hops}, svc4, func() []uint32 {
			if tc.origin != nil {
				return tc.origin
			}
			return targetASNs(Flow{Hops: tc.hops}, svc4)
		}())
		got := want{u.Addr.String(), u.TTL, u.AS, u.ByOrigin}
		if ok != u.Addr.IsValid() || got != tc.want {
			t.Errorf("%s: %+v (%v), want %+v", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := UpstreamOf(Flow{Hops: asHops("*", 0, "192.0.2.53", 64520)}, svc4, nil); ok {
		t.Error("an upstream where no hop before the target answered")
	}
}

// The upstream is found in every row of a catchment (10,000 Atlas
// traceroutes in compare's bench) and every collected trace: it makes no
// garbage (it listed the path's responders in a new slice each time, a
// third of the memory compare allocated after reading).
func TestUpstreamOfAllocatesNothing(t *testing.T) {
	f := Flow{Hops: append(asHops("198.51.100.1", 64500, "198.51.100.33", 64500, "203.0.113.1", 64520, "*", 0, "203.0.113.2", 64520, "192.0.2.53", 64520),
		Hop{TTL: 255, Responders: []Responder{{Addr: svc4}}})}
	origin := []uint32{64520}
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := UpstreamOf(f, svc4, origin); !ok {
			t.Fatal("no upstream")
		}
	}); n != 0 {
		t.Errorf("UpstreamOf: %v allocations a call, want none", n)
	}
}

// A hop of the other address family (a broken or forged result) is no hop
// of the path: its AS is in neither the AS path of the flow nor where the
// paths of one origin AS part.
func TestASPathOtherFamily(t *testing.T) {
	hops := asHops("198.51.100.1", 64500, "2001:db8::9", 64511, "198.51.100.9", 64510, "192.0.2.53", 64520)
	for _, tc := range []struct {
		name    string
		target  netip.Addr
		reached bool
		want    []uint32
	}{
		{"reached", svc4, true, []uint32{64500, 64510, 64520}},
		{"unreached", svc4, false, []uint32{64500, 64510}},
		{"IPv6 target", netip.MustParseAddr("2001:db8:53::53"), false, []uint32{64511}},
	} {
		f := Flow{Hops: hops, Reached: tc.reached}
		if !tc.reached {
			f.Hops = hops[:3]
		}
		if got := PathOf(f, tc.target, nil).ASPath; !slices.Equal(got, tc.want) {
			t.Errorf("%s: AS path %v, want %v", tc.name, got, tc.want)
		}
	}
	// Two vantage points of AS64500 reach two instances; the one whose
	// result carries an IPv6 hop parts from the other at AS64510, not at
	// the IPv6 hop's AS.
	a := idObs(vantage("a", 64500), svc4, "i1.lab-a", 6*time.Millisecond)
	a.Flows = []Flow{{Proto: "udp", Reached: true, Hops: hops}}
	b := idObs(vantage("b", 64500), svc4, "i2.lab-b", 6*time.Millisecond)
	b.Flows = []Flow{{Proto: "udp", Reached: true, Hops: asHops("198.51.100.1", 64500, "198.51.100.77", 64530, "192.0.2.53", 64520)}}
	parts := Analyse([]Observation{a, b}, nil).Partings
	if len(parts) != 1 || parts[0].A.AS != 64510 || parts[0].B.AS != 64530 || !slices.Equal(parts[0].A.ASPath, []uint32{64500, 64510, 64520}) {
		t.Errorf("partings %+v", parts)
	}
}

func TestOwnReasonsAndSigns(t *testing.T) {
	sites := BuiltinSites()
	kroot := netip.MustParseAddr("193.0.14.129")
	quad9 := netip.MustParseAddr("9.9.9.9")
	user, err := ParseSites(strings.NewReader("blind nochaos 198.51.100.53/32 -"), "u")
	if err != nil {
		t.Fatal(err)
	}
	sites = sites.With(user)
	for _, tc := range []struct {
		name  string
		o     Observation
		apart []Suspicion
		signs []Suspicion
	}{
		{"clean authoritative", idObs(vantage("a", 1), kroot, "ns1.fi-hel.k.ripe.net", time.Millisecond), nil, nil},
		{"aa clear alone", idObs(vantage("a", 1), svc4, "i1", time.Millisecond, measure.SuspectAAClear), nil, nil},
		// One answer's flags are hints: never counted apart on their own.
		{"interceptor on the path", idObs(vantage("a", 1), kroot, "ns1.fi-hel.k.ripe.net", time.Millisecond, measure.SuspectRA, measure.SuspectClassNotCH, measure.SuspectTTLNonZero),
			nil, []Suspicion{"class_not_ch", "ra_set", "ttl_nonzero"}},
		{"resolver sets RA and TTL", idObs(vantage("a", 1), quad9, "res110.mia.rrdns.pch.net", time.Millisecond, measure.SuspectRA, measure.SuspectTTLNonZero), nil, nil},
		{"identity of someone else", idObs(vantage("a", 1), kroot, "PowerDNS Recursor 3.5.2", time.Millisecond), []Suspicion{SuspectIdentityMismatch}, []Suspicion{SuspectIdentityMismatch}},
		{"operator that never answers", idObs(vantage("a", 1), netip.MustParseAddr("198.51.100.53"), "resolver.isp.example", time.Millisecond), []Suspicion{SuspectNoChaosOperator}, []Suspicion{SuspectNoChaosOperator}},
		{"no table entry, no mismatch", idObs(vantage("a", 1), svc4, "anything", time.Millisecond), nil, nil},
	} {
		r := Resolve(tc.o, sites)
		if got := r.Suspicions(); !slices.Equal(got, tc.apart) {
			t.Errorf("%s: apart %v, want %v", tc.name, got, tc.apart)
		}
		if got := AnswerSigns(tc.o.Target, tc.o.Identity, tc.o.Answers, sites); !slices.Equal(got, tc.signs) {
			t.Errorf("%s: signs %v, want %v", tc.name, got, tc.signs)
		}
	}

	// Faster than the path: the DNS answer in 1 ms, the last hop before
	// the target 40 ms away.
	o := idObs(vantage("a", 1), svc4, "i1", time.Millisecond)
	o.Flows = []Flow{{Hops: []Hop{{TTL: 1, Responders: []Responder{{Addr: netip.MustParseAddr("198.51.100.1"), RTT: 40 * time.Millisecond}}}}}}
	if r := Resolve(o, nil); !slices.Equal(r.Suspicions(), []Suspicion{SuspectFasterThanPath}) || r.Apart[0].Text != "answer in 1 ms, the hop before the target takes 40 ms" {
		t.Errorf("fast answer: %+v", r.Apart)
	}
	// Within noise: 3 ms against 6 ms is not flagged.
	o.Answers[0].RTT, o.Flows[0].Hops[0].Responders[0].RTT = 2*time.Millisecond, 6*time.Millisecond
	if r := Resolve(o, nil); r.Suspect() {
		t.Errorf("noise flagged: %v", r.Apart)
	}
}

func TestSharesByKey(t *testing.T) {
	var obs []Observation
	for i, in := range []string{"i1", "i1", "i1", "i2"} {
		v := vantage(string(rune('a'+i)), uint32(64500+i%2))
		obs = append(obs, idObs(v, svc4, in, time.Duration(i+1)*time.Millisecond))
	}
	// Faster than its own path: counted apart.
	fast := idObs(vantage("x", 64999), svc4, "box", time.Millisecond)
	fast.Flows = []Flow{{Hops: asHops("198.51.100.1", 64999, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "*", 0, "198.51.100.2", 64999)}}
	obs = append(obs, fast)
	obs = append(obs, Observation{Vantage: vantage("y", 64999), Target: svc4, Answers: []measure.Answer{{Name: "hostname.bind.", Status: measure.StatusTimeout}}})
	rep := Analyse(obs, nil)
	if len(rep.Targets) != 1 {
		t.Fatalf("targets %+v", rep.Targets)
	}
	ts := rep.Targets[0]
	if ts.Vantages != 6 || len(ts.Apart) != 1 || ts.ErrorLines != 1 || len(ts.Keys) != 2 {
		t.Fatalf("summary %+v", ts)
	}
	if g := ts.Apart[0]; g.AS != 64999 || !slices.Equal(g.Vantages, []string{"x"}) || g.Identities[0].Instance != "box" {
		t.Errorf("apart %+v", g)
	}
	if !slices.Equal(ts.Unknown, []Count{{"no DNS reply", 1}}) || !slices.Equal(ts.Errors, []Count{{"identity query timed out", 1}}) {
		t.Errorf("unknown %v errors %v", ts.Unknown, ts.Errors)
	}
	i1 := ts.Keys[0]
	if i1.Key.Kind != KeyInstance || i1.Key.Value != "i1" || i1.Vantages != 3 || i1.Share != 0.75 || i1.MedianRTT != 2*time.Millisecond {
		t.Errorf("i1 share %+v", i1)
	}
	if !slices.Equal(i1.ASNs, []uint32{64500, 64501}) || !slices.Equal(i1.Countries, []string{"ZZ"}) {
		t.Errorf("i1 ases %v countries %v", i1.ASNs, i1.Countries)
	}
	// Fewer than MinPopulation answered: no judgement, and it says why.
	if ts.Service.Judged || !strings.Contains(ts.Service.NotJudged, "5 vantage points replied; fewer than 10") {
		t.Errorf("service %+v", ts.Service)
	}
}

func TestDualStackDivergence(t *testing.T) {
	rows := []Row{
		Resolve(idObs(vantage("a", 1), svc4, "i1", 0), nil),
		Resolve(idObs(vantage("a", 1), svc6, "i2", 0), nil),
		Resolve(idObs(vantage("b", 1), svc4, "i1", 0), nil),
		Resolve(idObs(vantage("b", 1), svc6, "i1", 0), nil),
	}
	d := DualStackDivergence(rows)
	if len(d) != 1 || d[0].Vantage.Key != "a" || d[0].IPv4.Instance != "i1" || d[0].IPv6.Instance != "i2" {
		t.Fatalf("divergence %+v", d)
	}
	// Two IPv4 target addresses: address-only targets no longer pair.
	rows = append(rows, Resolve(idObs(vantage("a", 1), netip.MustParseAddr("198.51.100.53"), "z", 0), nil))
	if d := DualStackDivergence(rows); len(d) != 0 {
		t.Errorf("ambiguous address targets paired: %+v", d)
	}
	// Named targets pair by name; same site on both families is flagged.
	sites := BuiltinSites()
	o4 := idObs(vantage("p", 1), netip.MustParseAddr("193.0.14.129"), "ns1.fi-hel.k.ripe.net", 0)
	o6 := idObs(vantage("p", 1), netip.MustParseAddr("2001:7fd::1"), "ns2.fi-hel.k.ripe.net", 0)
	o4.TargetName, o6.TargetName = "k.root-servers.net", "K.ROOT-SERVERS.NET"
	d = DualStackDivergence(append(rows, Resolve(o4, sites), Resolve(o6, sites)))
	if len(d) != 1 || !d[0].SameSite || d[0].IPv4.Site.Site != "fi-hel" {
		t.Errorf("named pair: %+v", d)
	}
}

func TestPathsPart(t *testing.T) {
	mk := func(key string, instance string, h []Hop) Observation {
		o := idObs(vantage(key, 64500), svc4, instance, 0)
		o.Flows = []Flow{{Hops: h, Reached: true}}
		return o
	}
	obs := []Observation{
		mk("a", "i1", asHops("198.51.100.1", 64500, "203.0.113.1", 64510, "192.0.2.53", 64520)),
		mk("b", "i1", asHops("198.51.100.2", 64500, "203.0.113.1", 64510, "192.0.2.53", 64520)),
		mk("c", "i2", asHops("198.51.100.3", 64500, "203.0.113.9", 64511, "192.0.2.53", 64521)),
		// Another origin AS: not compared with these.
		{Vantage: vantage("d", 64999), Target: svc4, Identity: measure.Identity{Instance: "i3", Source: "nsid"}, Flows: []Flow{{Hops: asHops("10.0.0.1", 64999)}}},
	}
	p := Analyse(obs, nil).Partings
	if len(p) != 1 {
		t.Fatalf("partings %+v", p)
	}
	got := p[0]
	if got.OriginAS != 64500 || !slices.Equal(got.Common, []uint32{64500}) || got.A.AS != 64510 || got.B.AS != 64511 {
		t.Errorf("parting %+v", got)
	}
	if got.A.Hop == nil || got.A.Hop.Addr.String() != "203.0.113.1" || got.B.Hop.TTL != 2 || !slices.Equal(got.A.Vantages, []string{"a", "b"}) {
		t.Errorf("sides %+v / %+v", got.A, got.B)
	}
}

func TestCollectorLatestAndChanges(t *testing.T) {
	c := NewCollector()
	v := vantage("atlas:1", 64500)
	t0 := time.Unix(1_700_000_000, 0).UTC()
	// Out of order, as files of a periodic measurement may be.
	for _, s := range []struct {
		dt int
		in string
	}{{0, "i1"}, {600, "i2"}, {300, "i1"}, {900, "i2"}, {1200, ""}} {
		o := idObs(v, svc4, s.in, time.Millisecond)
		if s.in == "" {
			o = Observation{Vantage: v, Target: svc4, Answers: []measure.Answer{{Status: measure.StatusTimeout}}}
		}
		o.Time = t0.Add(time.Duration(s.dt) * time.Second)
		c.Add(o)
	}
	tr := Observation{Vantage: v, Target: svc4, Time: t0.Add(100 * time.Second), Flows: []Flow{{Hops: asHops("198.51.100.1", 64500, "203.0.113.1", 64520)}}}
	c.Add(tr)
	if c.Len() != 1 {
		t.Fatalf("lines %d", c.Len())
	}
	obs := c.Observations()
	// The latest identity part is the timeout; the trace part joins it.
	if obs[0].Identity.Instance != "" || len(obs[0].Flows) != 1 || !obs[0].Time.Equal(t0.Add(1200*time.Second)) {
		t.Errorf("merged %+v", obs[0])
	}
	ch := c.Changes()
	if len(ch) != 1 || ch[0].Kind != "instance" || len(ch[0].Events) != 1 {
		t.Fatalf("changes %+v", ch)
	}
	if e := ch[0].Events[0]; e.From != "i1" || e.To != "i2" || !e.Time.Equal(t0.Add(600*time.Second)) {
		t.Errorf("event %+v", e)
	}
}

func TestDiff(t *testing.T) {
	up := func(o Observation, addr string) Observation {
		o.Flows = []Flow{{Hops: asHops(addr, 64500, "192.0.2.53", 64520), Reached: true}}
		return o
	}
	before := []Row{
		Resolve(up(idObs(vantage("c1", 1), svc4, "i1", 0), "203.0.113.1"), nil),
		Resolve(up(idObs(vantage("c2", 1), svc4, "i2", 0), "203.0.113.9"), nil),
		Resolve(idObs(vantage("c3", 1), svc4, "i2", 0), nil),
		Resolve(up(Observation{Vantage: vantage("t1", 1), Target: svc4}, "203.0.113.1"), nil),
	}
	after := []Row{
		Resolve(up(idObs(vantage("c1", 1), svc4, "i2", 0), "203.0.113.5"), nil),
		Resolve(up(idObs(vantage("c2", 1), svc4, "i2", 0), "203.0.113.9"), nil),
		Resolve(idObs(vantage("c4", 1), svc4, "i2", 0), nil),
		Resolve(up(Observation{Vantage: vantage("t1", 1), Target: svc4}, "203.0.113.7"), nil),
	}
	m := Diff(before, after)
	var got []string
	for _, x := range m {
		got = append(got, x.Kind+":"+x.Vantage.Label)
	}
	// A traceroute-only line whose upstream changed is no move: its
	// catchment is inferred from the path.
	want := []string{"moved:c1", "upstream:t1", "gone:c3", "new:c4"}
	if !slices.Equal(got, want) {
		t.Fatalf("moves %v, want %v", got, want)
	}
	if !m[0].InstanceChanged || !m[0].UpstreamChanged || m[1].InstanceChanged || !m[1].UpstreamChanged || !Moved(m) {
		t.Errorf("c1 %+v, t1 %+v", m[0], m[1])
	}
	if Moved(m[1:]) {
		t.Error("an upstream change counted as a move")
	}
}
