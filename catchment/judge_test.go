package catchment

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/measure"
)

// reply is an answer with its header facts, as ClassifyReply reads it.
func reply(rcode int, ra, aa bool, ttl int64, class uint16, txt ...string) measure.Answer {
	a := measure.Answer{Name: "hostname.bind.", Rcode: rcode, RTT: 10 * time.Millisecond, TXT: txt,
		Header: measure.Header{Known: true, RA: ra, AA: aa, TTL: -1}}
	switch {
	case rcode == dns.RcodeServerFailure:
		a.Status = measure.StatusServFail
	case len(txt) > 0:
		a.Status = measure.StatusAnswered
		a.Header.TTL, a.Header.Class = ttl, class
	default:
		a.Status = measure.StatusEmpty
	}
	return a
}

func answerObs(i int, as uint32, a measure.Answer) Observation {
	o := Observation{Vantage: Vantage{Key: fmt.Sprintf("atlas:%d", i), Label: fmt.Sprintf("probe %d", i), ProbeID: i, Origin: Origin{ASNs: []uint32{as}}},
		Target: svc4, Answers: []measure.Answer{a}}
	o.Identity = measure.Summarise(o.Answers)
	return o
}

// A public resolver refuses CHAOS (SERVFAIL with RA) for most probes; a
// few ISP boxes intercept port 53 and answer with their own names.
func TestJudgeResolverThatRefusesChaos(t *testing.T) {
	var obs []Observation
	for i := 1; i <= 60; i++ {
		obs = append(obs, answerObs(i, 64500, reply(dns.RcodeServerFailure, true, false, 0, 0)))
	}
	obs = append(obs, answerObs(61, 64501, reply(0, true, true, 0, dns.ClassCHAOS, "msk-dns1-B")))
	obs = append(obs, answerObs(62, 64501, reply(0, true, true, 0, dns.ClassCHAOS, "msk-dns1-B")))
	obs = append(obs, answerObs(63, 64502, reply(0, false, true, 0, dns.ClassCHAOS, "dns1")))
	rep := Analyse(obs, nil)
	ts := rep.Targets[0]
	if !ts.Service.Judged || ts.Service.NoIdentity != "the service does not answer CHAOS hostname.bind: SERVFAIL for 95 % of 63 vantage points" {
		t.Errorf("service %+v", ts.Service)
	}
	if len(ts.Keys) != 0 || len(ts.Apart) != 2 {
		t.Fatalf("keys %+v apart %+v", ts.Keys, ts.Apart)
	}
	g := ts.Apart[0]
	if g.AS != 64501 || len(g.Vantages) != 2 || g.Identities[0] != (InstanceCount{"msk-dns1-B", 2}) ||
		g.Reasons[0].What != "TXT where the service answers SERVFAIL" {
		t.Errorf("apart %+v", g)
	}
	// RA is the service's (it sets it): the interceptor without RA is
	// unlike it on that too.
	if r := ts.Apart[1].Reasons; len(r) != 2 || r[0].What != "RA clear where the service sets it" {
		t.Errorf("dns1 reasons %+v", r)
	}
	for _, r := range rep.Rows {
		if r.Vantage.ProbeID <= 60 && (r.Suspect() || r.Catchment.Valid()) {
			t.Errorf("probe %d: the service's own answer judged %+v / key %+v", r.Vantage.ProbeID, r.Apart, r.Catchment)
		}
	}
}

// An authoritative operator answers with TTL 60 and site codes; RA clear.
// None of its answers is counted apart, an interceptor's is.
func TestJudgeAuthoritativeTTL60(t *testing.T) {
	var obs []Observation
	codes := []string{"JNB", "LHR", "FRA", "AMS", "GRU", "SIN"}
	for i := 1; i <= 30; i++ {
		obs = append(obs, answerObs(i, 64500, reply(0, false, true, 60, dns.ClassCHAOS, codes[i%len(codes)])))
	}
	obs = append(obs, answerObs(31, 64509, reply(0, true, false, 0, dns.ClassINET, "gw.home.lan")))
	rep := Analyse(obs, nil)
	ts := rep.Targets[0]
	if len(ts.Keys) != len(codes) || len(ts.Apart) != 1 {
		t.Fatalf("keys %+v apart %+v", ts.Keys, ts.Apart)
	}
	want := []string{"RA set where the service clears it", "TTL 0 where the service answers with TTL 60", "class IN where the service answers class CH", "name unlike the service's (AMS, FRA, GRU, …)"}
	var got []string
	for _, r := range ts.Apart[0].Reasons {
		got = append(got, r.What)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("reasons %q, want %q", got, want)
	}
}

// Operators mix server software: a TTL or AA the sites do not agree on is
// never judged (F-root: TTL 0 at its own sites, 60 at Cloudflare's).
func TestJudgeMixedTTLNotJudged(t *testing.T) {
	var obs []Observation
	for i := 1; i <= 40; i++ {
		ttl, name := int64(0), fmt.Sprintf("ams%da.f.root-servers.org", i%3+1)
		if i%4 == 0 {
			ttl, name = 60, "JNB.cf.f.root-servers.org"
		}
		obs = append(obs, answerObs(i, 64500, reply(0, false, i%2 == 0, ttl, dns.ClassCHAOS, name)))
	}
	rep := Analyse(obs, nil)
	for _, r := range rep.Rows {
		if r.Suspect() {
			t.Errorf("%s: %+v", r.Vantage.Label, r.Apart)
		}
	}
	for _, tr := range rep.Targets[0].Service.Traits {
		if tr.Name == "ttl" && (tr.Judged || tr.Value != "TTL 0") {
			t.Errorf("ttl trait %+v", tr)
		}
	}
}

// Answers-only results (no flags, no RCODE): names alone tell interceptors
// from the service's instances.
func TestJudgeNamesOnly(t *testing.T) {
	var obs []Observation
	names := []string{"b1-lax", "b2-lax", "b3-lax", "b4-lax", "b1-mia", "b2-mia", "b3-mia", "b4-mia"}
	for i := 1; i <= 80; i++ {
		a := measure.Answer{Name: "hostname.bind.", Status: measure.StatusAnswered, Rcode: 0, TXT: []string{names[i%len(names)]}, Header: measure.Header{TTL: -1}}
		obs = append(obs, answerObs(i, 64500, a))
	}
	for i, n := range []string{"dns1", "localhost.localdomain", "FW-Gateway"} {
		a := measure.Answer{Name: "hostname.bind.", Status: measure.StatusAnswered, Rcode: 0, TXT: []string{n}, Header: measure.Header{TTL: -1}}
		obs = append(obs, answerObs(100+i, uint32(64600+i), a))
	}
	ts := Analyse(obs, nil).Targets[0]
	if len(ts.Apart) != 3 || len(ts.Keys) != len(names) {
		t.Fatalf("apart %+v keys %d", ts.Apart, len(ts.Keys))
	}
	if r := ts.Apart[0].Reasons[0].What; !strings.HasPrefix(r, "name unlike the service's (b1-lax, b1-mia, b2-lax") {
		t.Errorf("reason %q", r)
	}
}

// The naming schemes of real root letters (refdata names) all fit their
// own service: none is judged unlike it.
func TestNameSchemesOfRealServices(t *testing.T) {
	for _, names := range [][]string{
		{"M-CDG-3", "M-ORY-1", "M-SJC-1", "M-NRT-JPNAP-4", "M-CDG-1", "M-ORY-2", "M-SJC-2", "M-NRT-2", "M-CDG-2", "M-ORY-3"},
		{"ns1.fi-hel.k.ripe.net", "k3.ams-ix.k.ripe.net", "ns1.gb-lon.k.ripe.net", "ns3.de-fra.k.ripe.net", "ns1.hu-bud.k.ripe.net", "ns1.ar-bue.k.ripe.net", "ns1.de-kae.k.ripe.net", "ns2.fi-hel.k.ripe.net", "ns1.nl-ams.k.ripe.net", "ns2.gb-lon.k.ripe.net"},
		{"c01.FRA.eroot", "p03.sfo.eroot", "c01.IST.eroot", "p02.fra.eroot", "c01.ZRH.eroot", "p04.ams.eroot", "c01.ATL.eroot", "p05.qpg.eroot", "c01.DME.eroot", "p01.sfo.eroot"},
		{"rootns-lon8", "rootns-mnz5", "rootns-was1", "rootns-ein4", "rootns-atl7", "rootns-fra8", "rootns-elcmb1", "rootns-elzag2", "rootns-elotp2", "rootns-lon1"},
		{"ams1b.f.root-servers.org", "JNB.cf.f.root-servers.org", "ARN.cf.f.root-servers.org", "ams1a.f.root-servers.org", "fra1b.f.root-servers.org", "lhr1a.f.root-servers.org", "sin1a.f.root-servers.org", "EWR.cf.f.root-servers.org", "mad1a.f.root-servers.org", "yyz1a.f.root-servers.org"},
	} {
		s := newNameStats()
		for _, n := range names {
			s.add(n)
		}
		if tr := s.trait(); !tr.Judged || tr.Share != 1 {
			t.Errorf("%s…: %+v", names[0], tr)
		}
		for _, bad := range []string{"dns1", "localhost.localdomain", "PowerDNS Recursor 3.5.2"} {
			if s.fits(bad) {
				t.Errorf("%q fits the names of %s…", bad, names[0])
			}
		}
	}
}

func TestNameShape(t *testing.T) {
	for in, want := range map[string]string{
		"b1-lax": "a1 9-a3", "b4-mia": "a1 9-a3", "JNB": "a3", "c01.FRA.eroot": "a1 9.a3.a+", "msk-dns1-B": "a3-a3 9-a1", "": "",
	} {
		if got := nameShape(in); got != want {
			t.Errorf("nameShape(%q) = %q, want %q", in, got, want)
		}
	}
}

// A target that never answers traceroute: every vantage point counts by
// where its path enters the service (inferred), none is "without".
func TestPathInferredCatchment(t *testing.T) {
	var obs []Observation
	for i := 1; i <= 12; i++ {
		up := "203.0.113.1"
		if i%3 == 0 {
			up = "198.51.100.77"
		}
		o := Observation{Vantage: Vantage{Key: fmt.Sprintf("atlas:%d", i), Label: fmt.Sprintf("probe %d", i), ProbeID: i}, Target: netip.MustParseAddr("192.0.2.80"),
			Flows: []Flow{{Proto: "icmp", Hops: []Hop{{TTL: 1, Responders: []Responder{{Addr: netip.MustParseAddr("10.0.0.1")}}}, {TTL: 2, Responders: []Responder{{Addr: netip.MustParseAddr(up), RTT: 20 * time.Millisecond}}}, {TTL: 3}}}}}
		obs = append(obs, o)
	}
	// Two traces end in their own network: where they ended says nothing.
	home := obs[0]
	home.Vantage = Vantage{Key: "atlas:100", Label: "probe 100", ProbeID: 100, Origin: Origin{ASNs: []uint32{64999}}}
	home.Flows = []Flow{{Hops: []Hop{{TTL: 1, Responders: []Responder{{Addr: netip.MustParseAddr("198.51.100.250"), ASNs: []uint32{64999}}}}}}}
	lan := obs[0]
	lan.Vantage = Vantage{Key: "atlas:101", Label: "probe 101", ProbeID: 101}
	lan.Flows = []Flow{{Hops: []Hop{{TTL: 1, Responders: []Responder{{Addr: netip.MustParseAddr("192.168.1.1")}}}}}}
	ts := Analyse(append(slices.Clone(obs), home, lan), nil).Targets[0]
	if !ts.Service.PathInferred || len(ts.Keys) != 2 || ts.Keys[0].Key.Kind != KeyUpstream || ts.Keys[0].Vantages != 8 ||
		!slices.Equal(ts.Unknown, []Count{{"the trace ended in the vantage's own network", 2}}) {
		t.Errorf("summary %+v", ts)
	}
	// Fewer than MinPopulation traces: an unreached trace infers nothing.
	ts = Analyse(obs[:5], nil).Targets[0]
	if ts.Service.PathInferred || len(ts.Keys) != 0 || ts.Unknown[0] != (Count{"the trace did not reach the target", 5}) {
		t.Errorf("small summary %+v", ts)
	}
}
