package catchment

import (
	"net/netip"
	"testing"
	"time"

	"github.com/anycheck/anycheck/geo"
)

func placeOf(t *testing.T, code string) geo.Place {
	t.Helper()
	p, ok := geo.LookupIATA(code)
	if !ok {
		t.Fatalf("no %s", code)
	}
	return p
}

// latencyRow is an identified row of target from a vantage at loc.
func latencyRow(target string, key string, loc geo.Point, approx bool, site string, place geo.Place, rtt time.Duration) Row {
	return Row{
		Observation: &Observation{
			Vantage: Vantage{Key: key, Label: key, Location: loc, LocationApproximate: approx},
			Target:  netip.MustParseAddr(target),
		},
		Instance:       site + "1." + site,
		InstanceSource: "hostname.bind",
		Site:           SiteHint{Operator: "test", Site: site, Place: place},
		DNSRTT:         rtt,
	}
}

func TestLightOf(t *testing.T) {
	syd := placeOf(t, "SYD")
	fra := Point(50.11, 8.68)
	// Frankfurt answered by "Sydney" in 9 ms: impossible.
	r := latencyRow("192.0.2.53", "fra", fra, false, "syd", syd, 9*time.Millisecond)
	l, ok := LightOf(&r)
	if !ok || !l.Impossible || l.DistanceKm < 16000 || l.MinRTT < 160*time.Millisecond || l.RTT != 9*time.Millisecond {
		t.Errorf("Sydney from Frankfurt in 9 ms: %+v %v", l, ok)
	}
	// The same from an approximate position: nothing can be said.
	r.Vantage.LocationApproximate = true
	if _, ok := LightOf(&r); ok {
		t.Errorf("an approximate vantage gave a verdict")
	}
	// No place for the site, or none for the vantage: nothing.
	r = latencyRow("192.0.2.53", "fra", fra, false, "syd", geo.Place{}, 9*time.Millisecond)
	if _, ok := LightOf(&r); ok {
		t.Errorf("an unplaced site gave a verdict")
	}
	r = latencyRow("192.0.2.53", "fra", geo.Point{}, false, "syd", syd, 9*time.Millisecond)
	if _, ok := LightOf(&r); ok {
		t.Errorf("a vantage without a location gave a verdict")
	}
}

// Point is shorthand for tests.
func Point(lat, lon float64) geo.Point { return geo.Point{Lat: lat, Lon: lon} }

func TestLatencyOf(t *testing.T) {
	ams, nrt := placeOf(t, "AMS"), placeOf(t, "NRT")
	rows := []Row{
		// Two sites by name; three disjoint disks by latency: Amsterdam,
		// Tokyo, and a probe "in Brazil" (on the centroid, approximate)
		// answered fast by "ams".
		latencyRow("192.0.2.53", "a1", Point(52.1, 5.1), false, "ams", ams, 3*time.Millisecond),
		latencyRow("192.0.2.53", "a2", Point(48.8, 2.3), false, "ams", ams, 12*time.Millisecond),
		latencyRow("192.0.2.53", "t1", Point(35.6, 139.7), false, "nrt", nrt, 2*time.Millisecond),
		latencyRow("192.0.2.53", "br", Point(-10.8, -52.9), true, "ams", ams, 4*time.Millisecond),
		// No location: counted; no RTT: no sample.
		latencyRow("192.0.2.53", "x1", geo.Point{}, false, "ams", ams, 5*time.Millisecond),
		latencyRow("192.0.2.53", "x2", Point(40, -100), false, "ams", ams, 0),
		// Another target with a path RTT only (a traceroute that reached).
		{Observation: &Observation{Vantage: Vantage{Key: "p", Location: Point(40.7, -74)}, Target: netip.MustParseAddr("198.51.100.1")}, Reached: true, PathRTT: 7 * time.Millisecond},
	}
	ls := LatencyOf(rows)
	if len(ls) != 2 {
		t.Fatalf("%d targets", len(ls))
	}
	l := ls[0]
	if len(l.Instances) != 3 || l.Named != 2 || l.Approximate != 1 || l.NoPlace != 1 || l.Used != 4 {
		t.Fatalf("instances %d, named %d, approximate %d, no place %d, used %d", len(l.Instances), l.Named, l.Approximate, l.NoPlace, l.Used)
	}
	want := []string{"JP", "NL", ""} // by RTT: Tokyo 2 ms, Amsterdam 3 ms, then the approximate one
	for i, in := range l.Instances {
		row := rows[l.Rows[in.Sample]]
		if i < 2 && in.Place.Country != want[i] {
			t.Errorf("instance %d at %v (vantage %s), want %s", i, in.Place, row.Vantage.Key, want[i])
		}
		if i == 2 && (!in.Approximate || row.Vantage.Key != "br" || in.Place.Country != "BR") {
			t.Errorf("instance %d: %+v from %s", i, in, row.Vantage.Key)
		}
	}
	if p := ls[1]; p.Named != 0 || len(p.Instances) != 1 || p.Instances[0].Place.Country != "US" {
		t.Errorf("path-only target: %+v", p)
	}
}
