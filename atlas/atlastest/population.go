package atlastest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strings"

	"github.com/anycheck/anycheck/geo"
	"github.com/miekg/dns"
)

// Site is one instance of the anycast service the population reaches.
type Site struct {
	Hostname string // the hostname.bind answer
	NSID     string // the NSID option payload; "" sends none
	// Upstream4 and Upstream6 are the last router before the instance (the
	// hop that tells sites apart in a traceroute).
	Upstream4, Upstream6 netip.Addr
	RTT                  float64 // milliseconds from a probe in the same area
}

// Behaviour of one probe toward the service.
const (
	Answers     = ""            // the instance answers
	TimesOut    = "timeout"     // DNS times out, the traceroute ends in stars
	Intercepted = "intercepted" // a middlebox answers the DNS query (RA set, class IN, TTL 7984)
	NoResult    = "noresult"    // the probe never reports (offline after scheduling)
)

// ProbeSpec is one fake probe: its metadata (as /api/v2/probes/ serves it)
// and which site it reaches over each family.
type ProbeSpec struct {
	ID           int
	ASNv4, ASNv6 uint32
	Country      string
	Area         string // WW sub-area: West, North-Central, ...
	Lat, Lon     float64
	Addr4, Addr6 netip.Addr // public addresses ("from")
	Site4, Site6 int        // index into Population.Sites
	Behaviour    string
	// RTT4 and RTT6, when set, are the probe's RTTs to its sites in
	// milliseconds (NewWorldPopulation: from the distance); else the
	// site's RTT with a little jitter.
	RTT4, RTT6 float64
	// Tags are system tags the probe page lists (system-auto-geoip-country
	// for a probe Atlas placed on its country).
	Tags []string
}

// Population is a deterministic set of probes and sites: the measured
// world behind the fake API. Every address is from the documentation
// ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)
// and every AS number from the documentation range (64496-64511).
type Population struct {
	Sites  []Site
	Probes []ProbeSpec
	// Start is the timestamp of the first result; results of one
	// measurement spread over a minute after it.
	Start int64
}

var areas = []string{"West", "North-Central", "South-Central", "North-East", "South-East"}
var countries = []string{"NL", "DE", "FR", "GB", "US", "BR", "ZA", "JP", "AU", "IN", "SE", "PL"}

// The population's networks: probe i is in access AS 64496+i%12 (its
// IPv4 address in 198.51.100.16k/28, its IPv6 one in 2001:db8:1kk::/48),
// site s is reached through transit AS 64508+s (203.0.113.64s/26,
// 2001:db8:ff0s::/48 for s+1), and the service is AS 64511.
const (
	accessASes = 12
	firstAS    = 64496
	transitAS  = 64508
	serviceAS  = 64511
)

// NewPopulation makes n probes spread over three sites ("ams", "fra",
// "sin"): probe i's AS, country and area follow from i, its site from its
// AS (one probe in nine lands elsewhere), one probe in 25 times out, one in 40 is intercepted, one in 50 never reports, one in
// four has no IPv6, and one in 15 reaches another site over IPv6 than over
// IPv4.
func NewPopulation(n int) *Population {
	p := &Population{Start: 1767225600} // 2026-01-01T00:00:00Z
	for i, code := range []string{"ams", "fra", "sin"} {
		p.Sites = append(p.Sites, Site{
			Hostname:  fmt.Sprintf("ns%d.%s.anydns.example", i+1, code),
			NSID:      fmt.Sprintf("%s-%d", code, i+1),
			Upstream4: netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + 64*i)}),
			Upstream6: netip.MustParseAddr(fmt.Sprintf("2001:db8:ff0%d::1", i+1)),
			RTT:       8 + 11*float64(i),
		})
	}
	for i := 0; i < n; i++ {
		k := i % accessASes
		ps := ProbeSpec{
			ID:      6001 + i,
			ASNv4:   uint32(firstAS + k),
			Country: countries[i%len(countries)],
			Area:    areas[i%len(areas)],
			Lat:     math.Round((-50+float64(i*37%100))*1000) / 1000,
			Lon:     math.Round((-170+float64(i*53%340))*1000) / 1000,
			Addr4:   netip.AddrFrom4([4]byte{198, 51, 100, byte(16*k + 1 + (i/accessASes)%14)}),
			// Catchment follows the access network (ASes 0-3 reach ams,
			// 4-7 fra, 8-11 sin), except one probe in nine that lands
			// elsewhere: a split inside its AS.
			Site4: (k / 4) % len(p.Sites),
		}
		if i%4 != 3 {
			ps.ASNv6 = ps.ASNv4
			ps.Addr6 = netip.MustParseAddr(fmt.Sprintf("2001:db8:1%02x:%x::2", k, i%65535))
		}
		if i%9 == 4 {
			ps.Site4 = (ps.Site4 + 1) % len(p.Sites)
		}
		ps.Site6 = ps.Site4
		if i%15 == 7 {
			ps.Site6 = (ps.Site4 + 1) % len(p.Sites)
		}
		switch {
		case i%50 == 49:
			ps.Behaviour = NoResult
		case i%25 == 24:
			ps.Behaviour = TimesOut
		case i%40 == 39:
			ps.Behaviour = Intercepted
		}
		p.Probes = append(p.Probes, ps)
	}
	return p
}

// WorldSites are where NewWorldPopulation's three sites are (their names
// say so: ams, fra, sin).
var WorldSites = []string{"AMS", "FRA", "SIN"}

// NewWorldPopulation is NewPopulation(n) placed on the globe, for maps and
// latency geometry: each probe sits near an airport of the places table
// (a large one two times in three) in the region its site serves — the
// Americas and north-west Europe for ams, the rest of Europe, Africa and
// the Middle East for fra, Asia and Oceania for sin — so a probe that
// "lands elsewhere" is far from its site, as in real catchments; its
// country is the airport's, and its RTTs follow the distance to the site
// (1.5× the fibre bound plus 1–5 ms of access). One probe in 31 was placed
// by Atlas at country level (on its country's centroid, tagged
// system-auto-geoip-country); a few claim a position on another
// continent than where its RTTs come from (it answers in under 30 ms from
// its site; its tag "misplaced" marks it for tests).
func NewWorldPopulation(n int) *Population {
	p := NewPopulation(n)
	sites := make([]geo.Point, len(WorldSites))
	for i, c := range WorldSites {
		pl, _ := geo.LookupIATA(c)
		sites[i] = pl.Point
	}
	region := func(pt geo.Point) int {
		switch {
		case pt.Lon > 60:
			return 2
		case pt.Lon < -25 || (pt.Lat > 50 && pt.Lon < 10):
			return 0
		}
		return 1
	}
	var byRegion [3][]geo.Place
	for _, pl := range geo.Places() {
		if pl.Kind == geo.MetroCode {
			continue
		}
		r := region(pl.Point)
		byRegion[r] = append(byRegion[r], pl)
		if pl.Kind == geo.LargeAirport {
			byRegion[r] = append(byRegion[r], pl, pl, pl) // large airports weigh more: people live there
		}
	}
	rtt := func(from, site geo.Point, i int) float64 {
		ms := 2*geo.Distance(from, site)/geo.FibreKmPerMs*1.5 + 1 + float64(i%9)/2
		return math.Round(ms*1000) / 1000
	}
	for i := range p.Probes {
		ps := &p.Probes[i]
		home := ps.Site4
		if i%9 == 4 {
			home = (ps.Site4 + len(p.Sites) - 1) % len(p.Sites) // the region it lives in, not the site it reaches
		}
		cands := byRegion[home]
		pl := cands[(i*7919+i/3)%len(cands)]
		// A few kilometres around the airport, deterministic.
		at := geo.Point{Lat: pl.Lat + float64(i%7-3)*0.03, Lon: pl.Lon + float64(i%5-2)*0.04}
		ps.Country = pl.Country
		ps.RTT4 = rtt(at, sites[ps.Site4], i)
		ps.RTT6 = rtt(at, sites[ps.Site6], i) + 0.4
		switch {
		case i%31 == 5:
			if c, ok := geo.Centroid(pl.Country); ok {
				at = c
				ps.Tags = []string{geo.TagAutoGeoCountry}
			}
		case i%23 == 13 && ps.RTT4 < 30:
			// Near its site, yet it says it is on the far side of the globe.
			far := byRegion[2]
			if ps.Site4 == 2 {
				far = byRegion[0]
			}
			at = far[(i*31)%len(far)].Point
			ps.Tags = []string{"misplaced"} // not a real tag: the tests' mark
		}
		ps.Lat, ps.Lon = math.Round(at.Lat*10000)/10000, math.Round(at.Lon*10000)/10000
	}
	return p
}

// Pfx2as is the routing table of the population's world as a CAIDA
// pfx2as table (prefix, length, origin AS per line), for an offline ASN
// source (--asn file:PATH).
func (p *Population) Pfx2as() string {
	var b strings.Builder
	for k := 0; k < accessASes; k++ {
		fmt.Fprintf(&b, "198.51.100.%d\t28\t%d\n2001:db8:1%02x::\t48\t%d\n", 16*k, firstAS+k, k, firstAS+k)
	}
	for s := range p.Sites {
		fmt.Fprintf(&b, "203.0.113.%d\t26\t%d\n2001:db8:ff0%d::\t48\t%d\n", 64*s, transitAS+s, s+1, transitAS+s)
	}
	fmt.Fprintf(&b, "192.0.2.0\t24\t%d\n2001:db8:53::\t48\t%d\n", serviceAS, serviceAS)
	return b.String()
}

// Probe returns the probe with the given id.
func (p *Population) Probe(id int) (ProbeSpec, bool) {
	for _, ps := range p.Probes {
		if ps.ID == id {
			return ps, true
		}
	}
	return ProbeSpec{}, false
}

// Definition is what a result generator needs of a measurement definition.
type Definition struct {
	Type     string // "dns", "traceroute"
	AF       int
	Target   string // an address literal
	QName    string // dns: query_argument
	Protocol string // "UDP", "TCP" (dns); "UDP", "ICMP", "TCP" (traceroute)
	Port     int    // traceroute TCP destination port
}

// Results returns the results measurement msm of definition d gets from
// the given probes, in the documented result format, one JSON object per
// result. Probes that never report give none; probes without an address of
// the family give an error result like the firmware's.
func (p *Population) Results(msm int, d Definition, probes []ProbeSpec) [][]byte {
	out := make([][]byte, 0, len(probes))
	for i, ps := range probes {
		if ps.Behaviour == NoResult {
			continue
		}
		ts := p.Start + int64(i%60)
		var r any
		switch d.Type {
		case "dns":
			r = p.dnsResult(msm, d, ps, ts)
		case "traceroute":
			r = p.tracerouteResult(msm, d, ps, ts)
		default:
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			panic(err) // maps of plain values always marshal
		}
		out = append(out, b)
	}
	return out
}

func (ps ProbeSpec) from(af int) netip.Addr {
	if af == 6 {
		return ps.Addr6
	}
	return ps.Addr4
}

func (ps ProbeSpec) site(af int) int {
	if af == 6 {
		return ps.Site6
	}
	return ps.Site4
}

// srcAddr is the probe's own address: behind a home NAT over IPv4.
func (ps ProbeSpec) srcAddr(af int) string {
	if af == 6 {
		return ps.Addr6.String()
	}
	return fmt.Sprintf("192.168.%d.%d", ps.ID%250, 2+ps.ID%200)
}

func (p *Population) rtt(ps ProbeSpec, af int) float64 {
	if af == 6 && ps.RTT6 > 0 {
		return ps.RTT6
	}
	if af != 6 && ps.RTT4 > 0 {
		return ps.RTT4
	}
	s := p.Sites[ps.site(af)]
	return math.Round((s.RTT+float64(ps.ID%17)*0.7)*1000) / 1000
}

func (p *Population) dnsResult(msm int, d Definition, ps ProbeSpec, ts int64) map[string]any {
	r := map[string]any{
		"fw": 5080, "mver": "2.6.2", "lts": 17, "af": d.AF, "dst_addr": d.Target, "dst_port": "53",
		"proto": d.Protocol, "msm_id": msm, "group_id": msm, "msm_name": "Tdig", "prb_id": ps.ID,
		"timestamp": ts, "type": "dns",
	}
	from := ps.from(d.AF)
	if !from.IsValid() {
		// The firmware reports a socket error when the probe has no
		// address of the family.
		r["from"] = ""
		r["error"] = map[string]any{"socket": "connect failed Network is unreachable"}
		return r
	}
	r["from"] = from.String()
	r["src_addr"] = ps.srcAddr(d.AF)
	if ps.Behaviour == TimesOut {
		r["error"] = map[string]any{"timeout": 5000}
		return r
	}
	id := uint16(ps.ID*7919 + msm)
	m := new(dns.Msg)
	m.Id = id
	m.Response = true
	m.Question = []dns.Question{{Name: dns.Fqdn(d.QName), Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}
	rt := p.rtt(ps, d.AF)
	if ps.Behaviour == Intercepted {
		// An intercepting resolver on the probe's path: RA set, AA clear,
		// class IN, a cache TTL, no NSID.
		m.RecursionAvailable = true
		m.RecursionDesired = true
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(d.QName), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 7984},
			Txt: []string{"unbound 1.13.1"}}}
		rt = math.Round(rt*100) / 1000 // the middlebox is next door
	} else {
		s := p.Sites[ps.site(d.AF)]
		m.Authoritative = true
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(d.QName), Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS},
			Txt: []string{s.Hostname}}}
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(1232)
		if s.NSID != "" {
			opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: fmt.Sprintf("%x", s.NSID)})
		}
		m.Extra = []dns.RR{opt}
	}
	abuf, err := m.Pack()
	if err != nil {
		panic(err) // a message built above always packs
	}
	txt := m.Answer[0].(*dns.TXT).Txt
	r["result"] = map[string]any{
		"rt": rt, "size": len(abuf), "abuf": base64.StdEncoding.EncodeToString(abuf), "ID": int(id),
		"ANCOUNT": len(m.Answer), "QDCOUNT": 1, "NSCOUNT": 0, "ARCOUNT": len(m.Extra),
		"answers": []map[string]any{{"TYPE": "TXT", "NAME": strings.TrimSuffix(d.QName, "."), "RDATA": txt}},
	}
	return r
}

func (p *Population) tracerouteResult(msm int, d Definition, ps ProbeSpec, ts int64) map[string]any {
	paris := 1 + ps.ID%16
	r := map[string]any{
		"fw": 5080, "mver": "2.6.2", "lts": 17, "af": d.AF, "dst_addr": d.Target, "dst_name": d.Target,
		"proto": d.Protocol, "msm_id": msm, "group_id": msm, "msm_name": "Traceroute", "prb_id": ps.ID,
		"timestamp": ts, "endtime": ts + 4, "type": "traceroute", "paris_id": paris, "size": 48,
	}
	from := ps.from(d.AF)
	if !from.IsValid() {
		r["from"] = ""
		r["result"] = []map[string]any{{"hop": 1, "error": "connect failed: Network is unreachable"}}
		return r
	}
	r["from"] = from.String()
	r["src_addr"] = ps.srcAddr(d.AF)
	site := p.Sites[ps.site(d.AF)]
	total := p.rtt(ps, d.AF)
	reply := func(addr string, rtt float64, ttl int) map[string]any {
		return map[string]any{"from": addr, "rtt": math.Round(rtt*1000) / 1000, "size": 28, "ttl": ttl}
	}
	hop := func(n int, rs ...map[string]any) map[string]any { return map[string]any{"hop": n, "result": rs} }
	star := map[string]any{"x": "*"}
	three := func(addr string, rtt float64, ttl int) []map[string]any {
		return []map[string]any{reply(addr, rtt, ttl), reply(addr, rtt+0.05, ttl), reply(addr, rtt+0.1, ttl)}
	}
	var gw, isp, upstream string
	k := (ps.ID - 6001) % accessASes
	if d.AF == 6 {
		gw = fmt.Sprintf("2001:db8:1%02x:%x::1", k, (ps.ID-6001)%65535)
		isp = fmt.Sprintf("2001:db8:1%02x:ffff::1", k)
		upstream = site.Upstream6.String()
	} else {
		gw = fmt.Sprintf("192.168.%d.1", ps.ID%250)
		isp = fmt.Sprintf("198.51.100.%d", 16*k+15)
		upstream = site.Upstream4.String()
	}
	hops := []map[string]any{
		hop(1, three(gw, 0.4, 64)...),
		hop(2, three(isp, 2.1, 254)...),
	}
	if ps.Behaviour == TimesOut {
		// The path dies after the access network: stars to the end, then
		// the firmware's hop 255 tail.
		for n := 3; n <= 5; n++ {
			hops = append(hops, hop(n, star, star, star))
		}
		hops = append(hops, hop(255, star, star, star))
		r["result"] = hops
		return r
	}
	hops = append(hops,
		hop(3, star, star, star),
		hop(4, three(upstream, total-0.6, 252)...),
		hop(5, three(d.Target, total, 59)...),
	)
	r["result"] = hops
	return r
}

// WriteProbes writes the probes' metadata as a JSON array of
// /api/v2/probes/ objects (what `atlas run --save` keeps as probes.json).
func (p *Population) WriteProbes(w io.Writer) error {
	out := make([]map[string]any, len(p.Probes))
	for i, ps := range p.Probes {
		out[i] = probeJSON(ps)
	}
	return json.NewEncoder(w).Encode(out)
}
