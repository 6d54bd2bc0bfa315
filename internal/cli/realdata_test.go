package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/internal/report/reporttest"
)

var updateRealdata = flag.Bool("update-realdata", false, "rewrite testdata/realdata/* and testdata/golden/realdata_*.txt")

// The real-data fixtures reproduce, in RIPE Atlas's documented result
// format (DNS results with abuf or with only the probe's "answers",
// traceroutes with the "hop 255" tail) and the probe archive's dump format,
// the situations of real measurements that the lab does not show (issue
// 17). They are written by the generators below (-update-realdata) from
// the documentation address ranges and private AS numbers — except the
// root letter's address, which its operator's naming patterns are keyed
// by — and never copied from real results.
//
//   - resolver: a public resolver that refuses CHAOS (SERVFAIL with RA)
//     from almost every probe; a few ISP boxes intercept port 53 and
//     answer with their own names; the same probes' traceroutes reach the
//     resolver through four upstreams.
//   - authttl60: an authoritative operator whose id.server answers are site
//     codes (JNB, LHR, …) with TTL 60, AA set, RA clear; an interceptor.
//   - rootanswers: a root letter's hostname.bind from 300 probes in
//     answers-only results (no abuf): nine servers at two sites, and
//     interceptors' names.
//   - traceonly: periodic ICMP traceroutes from 74 probes to an anycast
//     prefix that never answers a traceroute; three probes change site
//     between the rounds, two traces die in their own network.
type realdataFixture struct {
	name  string
	gen   func(*fixtureGen)
	sites string // a site-hint file's lines, "" for none
}

var realdataFixtures = []realdataFixture{
	{"resolver", genResolver, ""},
	// No site hints: its names are bare IATA codes, placed because most
	// of the service's answers are.
	{"authttl60", genAuthTTL60, ""},
	{"rootanswers", genRootAnswers, ""},
	{"traceonly", genTraceOnly, ""},
}

func TestRealdataFixtures(t *testing.T) {
	for _, fx := range realdataFixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "realdata")
			g := newFixtureGen()
			fx.gen(g)
			files := map[string][]byte{
				filepath.Join(dir, fx.name, "results.json"): g.resultsJSON(),
				filepath.Join(dir, fx.name, "probes.json"):  g.probesJSON(),
				filepath.Join(dir, fx.name+".ipasn.dat"):    g.ipasn(),
			}
			if fx.sites != "" {
				files[filepath.Join(dir, fx.name+".sites.txt")] = []byte(fx.sites)
			}
			for path, data := range files {
				if *updateRealdata {
					os.MkdirAll(filepath.Dir(path), 0o755)
					if err := os.WriteFile(path, data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				// The committed fixture is what its generator writes.
				if have, err := os.ReadFile(path); err != nil || !bytes.Equal(have, data) {
					t.Fatalf("%s differs from its generator's output (-update-realdata): %v", path, err)
				}
			}
			args := []string{"compare", "--asn", "file:" + filepath.Join(dir, fx.name+".ipasn.dat")}
			if fx.sites != "" {
				args = append(args, "--sites", filepath.Join(dir, fx.name+".sites.txt"))
			}
			args = append(args, filepath.Join(dir, fx.name))
			r := runCLI(t, testDeps(), args...)
			if r.code != ExitOK || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			path := golden("realdata_" + fx.name + ".txt")
			if *updateRealdata {
				os.WriteFile(path, []byte(r.stdout), 0o644)
			}
			if want, err := os.ReadFile(path); err != nil || string(want) != r.stdout {
				t.Errorf("text differs from %s: %v\n%s", path, err, r.stdout)
			}
			js := runCLI(t, testDeps(), append(args[:1:1], append([]string{"-o", "json"}, args[1:]...)...)...)
			reporttest.Check(t, []byte(js.stdout), false)
			checkRealdata(t, fx.name, r.stdout, js.stdout)
		})
	}
}

// checkRealdata asserts what each fixture's report must say, beyond its
// golden text: the truth the fixture was made to show.
func checkRealdata(t *testing.T, name, text, js string) {
	t.Helper()
	var doc struct {
		Catchment struct {
			Targets []struct {
				Vantages  int
				Instances []struct {
					Instance string `json:"value"`
					Source   string `json:"kind"`
					Vantages int
					Members  []struct{ Instance string }
				}
				Suspect int
				Service struct {
					Judged       bool
					NoIdentity   string `json:"no_identity"`
					PathInferred bool   `json:"path_inferred"`
				}
				Apart []struct {
					AS       uint32
					Vantages []string
				}
			}
			Changes []struct{ Kind string }
		}
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Catchment.Targets) != 1 {
		t.Fatalf("%d targets", len(doc.Catchment.Targets))
	}
	tg := doc.Catchment.Targets[0]
	kinds := map[string]int{}
	for _, k := range tg.Instances {
		kinds[k.Source] += k.Vantages
	}
	switch name {
	case "resolver":
		// The resolver's own answers are its catchment (by upstream, from
		// the traceroutes); the interceptors are counted apart, never as
		// instances; the report says once that the service refuses CHAOS.
		if !strings.HasPrefix(tg.Service.NoIdentity, "the service does not answer CHAOS hostname.bind: SERVFAIL for 96 %") ||
			kinds["instance"] != 0 || kinds["site"] != 0 || kinds["upstream"] != 192 || tg.Suspect != 8 || len(tg.Apart) != 4 {
			t.Errorf("resolver: %+v", tg)
		}
	case "authttl60":
		// Every genuine answer counts, placed at its site; TTL 60 and AA
		// are the service's, the interceptor's TTL 0 and RA are not.
		if kinds["site"] != 119 || tg.Suspect != 3 || !strings.Contains(text, "TTL 0 where the service answers with TTL 60") ||
			!strings.Contains(text, "\n    FRA Frankfurt am Main, DE  24 vantage points") {
			t.Errorf("authttl60: %+v", tg)
		}
	case "rootanswers":
		// Nine servers at two sites; the interceptors apart.
		if len(tg.Instances) != 2 || tg.Instances[0].Source != "site" || len(tg.Instances[0].Members)+len(tg.Instances[1].Members) != 9 || tg.Suspect != 4 {
			t.Errorf("rootanswers: %+v", tg)
		}
	case "traceonly":
		// No probe reaches the target: the catchment is inferred from
		// where the paths enter the service, labelled so; changes between
		// the rounds are listed.
		if !tg.Service.PathInferred || kinds["upstream"] != 72 || len(doc.Catchment.Changes) != 3 ||
			!strings.Contains(text, "the catchment is inferred from where paths enter the service") {
			t.Errorf("traceonly: %+v, %d changes", tg, len(doc.Catchment.Changes))
		}
	}
}

// fixtureGen collects a fixture's results, probes and routing table.
type fixtureGen struct {
	rng     *rand.Rand
	results []string
	probes  []string
	routes  []string
	seen    map[int]bool
}

func newFixtureGen() *fixtureGen {
	return &fixtureGen{rng: rand.New(rand.NewPCG(17, 1)), seen: map[int]bool{}}
}

const fixtureStart = 1767225600 // 2026-01-01T00:00:00Z

func (g *fixtureGen) add(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	g.results = append(g.results, string(b))
}

func (g *fixtureGen) resultsJSON() []byte {
	return []byte("[\n" + strings.Join(g.results, ",\n") + "\n]\n")
}

// probesJSON is the probe archive's daily dump.
func (g *fixtureGen) probesJSON() []byte {
	return []byte(fmt.Sprintf(`{"meta": {"total_count": %d, "snapshot_datetime": %d, "limit": 0, "offset": null, "source_filename": "probes_2026-01-01.txt.gz"}, "objects": [`+"\n", len(g.probes), fixtureStart) +
		strings.Join(g.probes, ",\n") + "\n]}\n")
}

// ipasn is the routing table in pyasn's ipasn.dat format.
func (g *fixtureGen) ipasn() []byte {
	return []byte("; IP-ASN32-DAT file\n; anycheck test fixture: documentation prefixes, private AS numbers\n;\n" + strings.Join(g.routes, "\n") + "\n")
}

func (g *fixtureGen) route(prefix string, as uint32) {
	g.routes = append(g.routes, fmt.Sprintf("%s\t%d", prefix, as))
}

var fixtureCities = []struct {
	cc       string
	lat, lon float64
}{
	{"NL", 52.37, 4.90}, {"DE", 50.11, 8.68}, {"GB", 51.51, -0.13}, {"FR", 48.86, 2.35}, {"US", 40.71, -74.01},
	{"US", 34.05, -118.24}, {"BR", -23.55, -46.63}, {"ZA", -26.20, 28.05}, {"JP", 35.68, 139.69}, {"SG", 1.35, 103.82},
	{"AU", -33.87, 151.21}, {"IN", 19.08, 72.88}, {"RU", 55.76, 37.62}, {"SE", 59.33, 18.07}, {"PL", 52.23, 21.01},
	{"CA", 43.65, -79.38}, {"AR", -34.60, -58.38}, {"KE", -1.29, 36.82}, {"ES", 40.42, -3.70}, {"IT", 45.46, 9.19},
}

// probe adds probe id in access AS as (one of twenty networks, each in its
// city), its public address from 203.0.113.0/24 or 198.51.100.0/25.
func (g *fixtureGen) probe(id int, as uint32, city int) string {
	public := fmt.Sprintf("203.0.113.%d", id%250+1)
	if id%500 >= 250 {
		public = fmt.Sprintf("198.51.100.%d", id%120+1)
	}
	if !g.seen[id] {
		g.seen[id] = true
		c := fixtureCities[city%len(fixtureCities)]
		g.probes = append(g.probes, fmt.Sprintf(`{"id": %d, "asn_v4": %d, "asn_v6": null, "country_code": %q, "latitude": %.4f, "longitude": %.4f, "address_v4": %q, "prefix_v4": null, "address_v6": null, "prefix_v6": null, "is_anchor": false, "status_name": "Connected", "tags": ["system-v3", "system-ipv4-works"]}`,
			id, as, c.cc, c.lat+float64(id%7)*0.01, c.lon+float64(id%5)*0.01, public))
	}
	return public
}

func (g *fixtureGen) rtt(lo, hi float64) float64 {
	return float64(int((lo+g.rng.Float64()*(hi-lo))*1000)) / 1000
}

// cityPoint is where probes of network net are.
func cityPoint(net int) geo.Point {
	c := fixtureCities[net%len(fixtureCities)]
	return geo.Point{Lat: c.lat, Lon: c.lon}
}

// siteRTT is a plausible RTT from network net's city to the site with IATA
// code: the least light in fibre allows, half again for the detour of real
// paths, and a millisecond or two of access network.
func (g *fixtureGen) siteRTT(net int, code string) float64 {
	p, ok := geo.LookupIATA(code)
	if !ok {
		panic("no place " + code)
	}
	least := float64(geo.MinRTT(geo.Distance(cityPoint(net), p.Point))) / 1e6
	return g.rtt(least*1.5+1, least*1.5+2.5)
}

// nearest is the site (IATA code) nearest to network net's city.
func nearest(net int, codes []string) string {
	best, bestKm := "", -1.0
	for _, c := range codes {
		p, _ := geo.LookupIATA(c)
		if d := geo.Distance(cityPoint(net), p.Point); bestKm < 0 || d < bestKm {
			best, bestKm = c, d
		}
	}
	return best
}

// chaosReply is the wire form of a reply to a CHAOS TXT query.
func chaosReply(qname string, id uint16, rcode int, aa, ra bool, class uint16, ttl uint32, txt ...string) []byte {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(qname), dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	m.Id, m.Response, m.Authoritative, m.RecursionAvailable, m.RecursionDesired, m.Rcode = id, true, aa, ra, false, rcode
	for _, s := range txt {
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(qname), Rrtype: dns.TypeTXT, Class: class, Ttl: ttl}, Txt: []string{s}})
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// dnsResult is one Atlas DNS result: a reply as abuf (answersOnly: only
// the probe's parse of the answer section), or a timeout (reply nil).
func (g *fixtureGen) dnsResult(msm, probe int, as uint32, city int, ts int, target, qname string, rt float64, reply []byte, answersOnly bool) {
	public := g.probe(probe, as, city)
	r := map[string]any{"fw": 5080, "mver": "2.6.2", "lts": 12, "dst_addr": target, "dst_port": "53", "af": 4,
		"src_addr": fmt.Sprintf("192.168.%d.%d", probe%200, 10+probe%90), "proto": "UDP", "msm_id": msm, "prb_id": probe,
		"timestamp": ts, "msm_name": "Tdig", "from": public, "type": "dns", "group_id": msm, "stored_timestamp": ts + 3}
	if reply == nil {
		r["error"] = map[string]any{"timeout": 5000}
		g.add(r)
		return
	}
	var m dns.Msg
	if err := m.Unpack(reply); err != nil {
		panic(err)
	}
	res := map[string]any{"rt": rt, "size": len(reply), "ID": int(m.Id), "ANCOUNT": len(m.Answer), "QDCOUNT": len(m.Question), "NSCOUNT": 0, "ARCOUNT": 0}
	if answersOnly {
		var answers []map[string]any
		for _, rr := range m.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				answers = append(answers, map[string]any{"TYPE": "TXT", "NAME": strings.TrimSuffix(rr.Header().Name, "."), "RDATA": txt.Txt})
			}
		}
		if answers != nil {
			res["answers"] = answers
		}
	} else {
		res["abuf"] = base64.StdEncoding.EncodeToString(reply)
	}
	r["result"] = res
	g.add(r)
}

// hop is one TTL of a fixture traceroute: a responder ("" silent) and its RTT.
type hop struct {
	from string
	rtt  float64
}

// traceResult is one Atlas ICMP Paris traceroute; the hop 255 tail follows
// a trace that did not reach the target.
func (g *fixtureGen) traceResult(msm, probe int, as uint32, city int, ts int, target string, hops []hop, reached bool) {
	public := g.probe(probe, as, city)
	var out []map[string]any
	for i, h := range hops {
		var replies []map[string]any
		for range 3 {
			if h.from == "" {
				replies = append(replies, map[string]any{"x": "*"})
				continue
			}
			rep := map[string]any{"from": h.from, "ttl": 64 - i, "size": 28, "rtt": g.rtt(h.rtt, h.rtt*1.1+0.2)}
			if h.from == target {
				rep["ttl"], rep["size"] = 56, 48
			}
			replies = append(replies, rep)
		}
		out = append(out, map[string]any{"hop": i + 1, "result": replies})
	}
	if !reached {
		out = append(out, map[string]any{"hop": 255, "result": []map[string]any{{"x": "*"}, {"x": "*"}, {"x": "*"}}})
	}
	g.add(map[string]any{"fw": 5080, "lts": 15, "endtime": ts + 9, "dst_name": target, "dst_addr": target,
		"src_addr": fmt.Sprintf("192.168.%d.%d", probe%200, 10+probe%90), "proto": "ICMP", "af": 4, "size": 48, "paris_id": probe%16 + 1,
		"result": out, "msm_id": msm, "prb_id": probe, "timestamp": ts, "msm_name": "Traceroute", "from": public, "type": "traceroute",
		"group_id": msm, "stored_timestamp": ts + 12})
}

// genResolver: 200 probes ask a public resolver for CHAOS hostname.bind.
// It answers SERVFAIL with RA set; 8 probes in four ISPs get a TXT answer
// from a box on their path (fast, whatever the resolver's distance); 6
// time out. Every probe's traceroute reaches the resolver, entering its
// network (AS65200) by one of four upstreams.
func genResolver(g *fixtureGen) {
	const target = "192.0.2.10"
	g.route("192.0.2.0/26", 65200)
	// The resolver's sites, each entered from its own upstream.
	sites := []string{"AMS", "IAD", "NRT", "GRU"}
	uplinks := map[string]struct {
		transit, entry string
		as             uint32
	}{"AMS": {"198.51.100.129", "192.0.2.2", 65100}, "IAD": {"198.51.100.161", "192.0.2.3", 65101}, "NRT": {"198.51.100.193", "192.0.2.4", 65102}, "GRU": {"198.51.100.225", "192.0.2.5", 65103}}
	for i := range 4 {
		g.route(fmt.Sprintf("198.51.100.%d/27", 128+32*i), uint32(65100+i))
	}
	interceptors := map[int]struct {
		name   string
		ra     bool
		class  uint16
		ttl    uint32
		answer int // how many of the AS's probes it answers
	}{
		2:  {"msk-dns1-B", true, dns.ClassCHAOS, 0, 3},
		7:  {"dns1", true, dns.ClassINET, 3600, 2},
		11: {"OpenWrt", false, dns.ClassCHAOS, 0, 2},
		15: {"unbound 1.13.1", true, dns.ClassCHAOS, 0, 1},
	}
	answered := map[int]int{}
	for i := 0; i < 200; i++ {
		id, net := 10001+i, i%20
		as := uint32(65001 + net)
		site := nearest(net, sites)
		u := uplinks[site]
		rt := g.siteRTT(net, site)
		ts := fixtureStart + i*3
		var reply []byte
		switch ic, ok := interceptors[net]; {
		case ok && answered[net] < ic.answer:
			answered[net]++
			reply = chaosReply("hostname.bind", uint16(i*7+1), dns.RcodeSuccess, true, ic.ra, ic.class, ic.ttl, ic.name)
			rt = g.rtt(0.8, 2.5)
		case i%33 == 5:
			reply = nil // timeout
		default:
			reply = chaosReply("hostname.bind", uint16(i*7+1), dns.RcodeServerFailure, false, true, 0, 0)
		}
		g.dnsResult(2000001, id, as, net, ts, target, "hostname.bind", rt, reply, false)
		path := g.siteRTT(net, site)
		g.traceResult(2000002, id, as, net, ts+1, target, []hop{
			{fmt.Sprintf("192.168.%d.1", id%200), 0.6}, {"", 0}, {u.transit, path * 0.8}, {u.entry, path * 0.95}, {target, path},
		}, true)
	}
}

// genAuthTTL60: an authoritative operator's id.server answers are the
// site's IATA code, with TTL 60, AA set, RA clear, class CH; 119 probes get
// them, three behind one ISP get a home router's answer, two time out.
func genAuthTTL60(g *fixtureGen) {
	const target = "192.0.2.80"
	g.route("192.0.2.64/26", 65300)
	sites := []string{"AMS", "FRA", "LHR", "CDG", "JFK", "LAX", "GRU", "JNB", "NRT", "SIN", "SYD", "BOM"}
	for i := 0; i < 124; i++ {
		id, net := 20001+i, i%20
		as := uint32(65001 + net)
		ts := fixtureStart + i*2
		site := nearest(net, sites)
		rt := g.siteRTT(net, site)
		var reply []byte
		switch {
		case net == 9 && i < 60:
			reply = chaosReply("id.server", uint16(i+100), dns.RcodeSuccess, false, true, dns.ClassINET, 0, "gw.home.lan")
			rt = g.rtt(0.4, 1)
		case i == 50 || i == 101:
		default:
			reply = chaosReply("id.server", uint16(i+100), dns.RcodeSuccess, true, false, dns.ClassCHAOS, 60, site)
		}
		g.dnsResult(2000101, id, as, net, ts, target, "id.server", rt, reply, false)
	}
}

// genRootAnswers: 300 probes ask a root letter for hostname.bind; the
// results keep only the probe's parse of the answers (no abuf). Nine
// servers answer at two sites (b1-lax … b5-lax, b1-mia … b4-mia); four
// probes get an interceptor's name; five time out.
func genRootAnswers(g *fixtureGen) {
	const target = "199.9.14.201"
	g.route("199.9.14.0/24", 65400)
	lax := []string{"b1-lax", "b2-lax", "b3-lax", "b4-lax", "b5-lax"}
	mia := []string{"b1-mia", "b2-mia", "b3-mia", "b4-mia"}
	boxes := map[int]string{41: "dns1", 97: "dns1", 150: "localhost.localdomain", 233: "FW-Gateway-01"}
	for i := 0; i < 300; i++ {
		id, net := 30001+i, i%20
		as := uint32(65001 + net)
		ts := fixtureStart + i
		var reply []byte
		site := nearest(net, []string{"LAX", "MIA"})
		rt := g.siteRTT(net, site)
		switch name, box := boxes[i]; {
		case box:
			as = uint32(65040 + i%3)
			reply = chaosReply("hostname.bind", uint16(i), dns.RcodeSuccess, false, true, dns.ClassCHAOS, 0, name)
			rt = g.rtt(0.5, 2)
		case i%61 == 30:
		case site == "LAX":
			reply = chaosReply("hostname.bind", uint16(i), dns.RcodeSuccess, false, false, dns.ClassCHAOS, 0, lax[g.rng.IntN(len(lax))])
		default:
			reply = chaosReply("hostname.bind", uint16(i), dns.RcodeSuccess, false, false, dns.ClassCHAOS, 0, mia[g.rng.IntN(len(mia))])
		}
		g.dnsResult(2000201, id, as, net, ts, target, "hostname.bind", rt, reply, true)
	}
}

// genTraceOnly: 74 probes trace an anycast prefix (AS65500) that answers
// no traceroute, every 15 minutes, twice. Each path ends at the upstream
// router of the site it reaches (three sites, four routers), then stars;
// three probes reach another site in the second round; two traces end in
// their own network.
func genTraceOnly(g *fixtureGen) {
	const target = "192.0.2.200"
	g.route("192.0.2.192/26", 65500)
	// Three sites; the Frankfurt one has two upstream routers.
	routers := map[string][]struct {
		addr string
		as   uint32
	}{"FRA": {{"198.51.100.129", 65100}, {"198.51.100.130", 65100}}, "IAD": {{"198.51.100.161", 65101}}, "SIN": {{"198.51.100.193", 65102}}}
	g.route("198.51.100.128/27", 65100)
	g.route("198.51.100.160/27", 65101)
	g.route("198.51.100.192/27", 65102)
	for round := 0; round < 2; round++ {
		for i := 0; i < 74; i++ {
			id, net := 40001+i, i%20
			as := uint32(65001 + net)
			site := nearest(net, []string{"FRA", "IAD", "SIN"})
			if round == 1 && (i == 2 || i == 8 || i == 13) {
				site = "IAD" // moved to another site
			}
			rs := routers[site]
			r := rs[i%len(rs)]
			base := g.siteRTT(net, site)
			ts := fixtureStart + round*900 + i*2
			hops := []hop{{fmt.Sprintf("192.168.%d.1", id%200), 0.7}, {"", 0}, {r.addr, base}, {"", 0}, {"", 0}, {"", 0}, {"", 0}, {"", 0}}
			if i == 30 || i == 61 {
				hops = []hop{{fmt.Sprintf("192.168.%d.1", id%200), 0.7}, {"", 0}, {"", 0}, {"", 0}, {"", 0}}
			}
			g.traceResult(2000301, id, as, net, ts, target, hops, false)
		}
	}
}
