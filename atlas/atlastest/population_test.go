package atlastest

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"

	"github.com/miekg/dns"
	"time"

	"github.com/anycheck/anycheck/geo"
)

// The keys of the documented result formats (RIPE Atlas "measurement
// result format", firmware 4650 and later), as real results carry them.
var (
	dnsKeys        = []string{"af", "dst_addr", "dst_port", "from", "fw", "group_id", "lts", "msm_id", "msm_name", "mver", "prb_id", "proto", "result", "src_addr", "timestamp", "type"}
	dnsResultKeys  = []string{"ANCOUNT", "ARCOUNT", "ID", "NSCOUNT", "QDCOUNT", "abuf", "answers", "rt", "size"}
	tracerouteKeys = []string{"af", "dst_addr", "dst_name", "endtime", "from", "fw", "group_id", "lts", "msm_id", "msm_name", "mver", "paris_id", "prb_id", "proto", "result", "size", "src_addr", "timestamp", "type"}
)

func keys(m map[string]json.RawMessage) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func TestGeneratedResultsFollowTheDocumentedFormat(t *testing.T) {
	pop := NewPopulation(100)
	dnsDef := Definition{Type: "dns", AF: 4, Target: "192.0.2.53", QName: "hostname.bind", Protocol: "UDP"}
	seen := map[string]int{}
	for _, b := range pop.Results(1001, dnsDef, pop.Probes) {
		var r map[string]json.RawMessage
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		var prb int
		json.Unmarshal(r["prb_id"], &prb)
		ps, _ := pop.Probe(prb)
		if _, ok := r["error"]; ok {
			seen["error"]++
			if ps.Behaviour != TimesOut {
				t.Errorf("probe %d (%q) has an error result", prb, ps.Behaviour)
			}
			continue
		}
		if got := keys(r); !slices.Equal(got, dnsKeys) {
			t.Fatalf("dns result keys %v, want %v", got, dnsKeys)
		}
		var res map[string]json.RawMessage
		json.Unmarshal(r["result"], &res)
		if got := keys(res); !slices.Equal(got, dnsResultKeys) {
			t.Fatalf("dns result.result keys %v, want %v", got, dnsResultKeys)
		}
		var abuf string
		json.Unmarshal(res["abuf"], &abuf)
		raw, err := base64.StdEncoding.DecodeString(abuf)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(raw); err != nil {
			t.Fatalf("abuf of probe %d: %v", prb, err)
		}
		txt := m.Answer[0].(*dns.TXT)
		if ps.Behaviour == Intercepted {
			seen["intercepted"]++
			if !m.RecursionAvailable || txt.Hdr.Class != dns.ClassINET || txt.Hdr.Ttl == 0 || m.IsEdns0() != nil {
				t.Errorf("intercepted answer of probe %d looks authoritative: %v", prb, m)
			}
			continue
		}
		seen["answered"]++
		site := pop.Sites[ps.Site4]
		nsid := ""
		if opt := m.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if n, ok := o.(*dns.EDNS0_NSID); ok {
					b, _ := hex.DecodeString(n.Nsid)
					nsid = string(b)
				}
			}
		}
		if !m.Authoritative || m.RecursionAvailable || txt.Hdr.Class != dns.ClassCHAOS || txt.Txt[0] != site.Hostname || nsid != site.NSID ||
			m.Question[0].Name != "hostname.bind." || m.Question[0].Qclass != dns.ClassCHAOS {
			t.Errorf("answer of probe %d: %v (nsid %q), want %s / %s", prb, m, nsid, site.Hostname, site.NSID)
		}
	}
	if seen["answered"] < 80 || seen["error"] < 2 || seen["intercepted"] < 2 {
		t.Errorf("mix of results %v", seen)
	}

	trDef := Definition{Type: "traceroute", AF: 6, Target: "2001:db8:53::53", Protocol: "UDP"}
	for _, b := range pop.Results(1002, trDef, pop.Probes) {
		var r map[string]json.RawMessage
		json.Unmarshal(b, &r)
		var hops []struct {
			Hop    int               `json:"hop"`
			Error  string            `json:"error"`
			Result []json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(r["result"], &hops); err != nil {
			t.Fatal(err)
		}
		if hops[0].Error != "" {
			// A probe without IPv6: the firmware's hop-level error.
			var from string
			json.Unmarshal(r["from"], &from)
			if from != "" || len(hops) != 1 {
				t.Errorf("hop error result %s", b)
			}
			continue
		}
		if got := keys(r); !slices.Equal(got, tracerouteKeys) {
			t.Fatalf("traceroute keys %v, want %v", got, tracerouteKeys)
		}
		last := hops[len(hops)-1]
		var reply struct {
			From string `json:"from"`
			X    string `json:"x"`
		}
		json.Unmarshal(last.Result[0], &reply)
		if last.Hop != 255 && reply.From != trDef.Target {
			t.Errorf("trace ends at hop %d from %q, want the target or the hop 255 tail", last.Hop, reply.From)
		}
	}
}

func TestDualStackDivergenceIsInThePopulation(t *testing.T) {
	pop := NewPopulation(60)
	n := 0
	for _, p := range pop.Probes {
		if p.Addr6.IsValid() && p.Site4 != p.Site6 {
			n++
		}
	}
	if n == 0 {
		t.Error("no probe reaches another site over IPv6: the population cannot show dual-stack divergence")
	}
}

// The world population's geography is consistent: every honest probe's RTT
// is above what light allows from where it says it is; the probes that
// claim another continent break that bound; Atlas-placed ones sit on their
// country's centroid.
func TestWorldPopulation(t *testing.T) {
	pop := NewWorldPopulation(600)
	var sites []geo.Point
	for _, c := range WorldSites {
		pl, _ := geo.LookupIATA(c)
		sites = append(sites, pl.Point)
	}
	impossible, approx, misplaced := 0, 0, 0
	for i, ps := range pop.Probes {
		at := geo.Point{Lat: ps.Lat, Lon: ps.Lon}
		if !at.Valid() || ps.RTT4 <= 0 || ps.RTT6 <= 0 {
			t.Fatalf("probe %d: %+v", ps.ID, ps)
		}
		l, _ := geo.CheckLight(at, sites[ps.Site4], time.Duration(ps.RTT4*float64(time.Millisecond)))
		switch {
		case i%31 == 5:
			approx++
			if a, _ := geo.Approximate(ps.Country, at, ps.Tags); !a {
				t.Errorf("probe %d: not approximate", ps.ID)
			}
		case slices.Contains(ps.Tags, "misplaced"):
			misplaced++
			if l.Impossible {
				impossible++
			}
		case l.Impossible:
			t.Errorf("probe %d at %v: %+v", ps.ID, at, l)
		}
	}
	if approx != 20 || misplaced < 3 || impossible != misplaced {
		t.Errorf("%d approximate, %d misplaced, %d of them impossible", approx, misplaced, impossible)
	}
}
