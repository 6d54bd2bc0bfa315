package cli

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/atlas/atlastest"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/internal/report/reporttest"
)

// geoFixture is testdata/geo: RIPE Atlas DNS results (hostname.bind to
// F-root's address) from eight probes at known places, with their
// metadata (probes.json):
//
//	6001 Amsterdam  ams1a 2.1 ms    6005 Brazil's centroid, Atlas-placed  ams1a 3.0 ms
//	6002 Frankfurt  fra1a 1.5 ms    6006 no position                      fra1b 95 ms
//	6003 Tokyo      NRT   3.0 ms    6007 Paris                            fra1b 9.8 ms
//	6004 Sydney     ams1b 4.2 ms    6008 New York                         EWR   1.2 ms
//
// Sydney answered "from Amsterdam" in 4.2 ms: 16,650 km away, light in
// fibre needs 166 ms there and back.
func geoFixture() string { return filepath.Join("..", "..", "testdata", "geo") }

func TestCompareGeoJSON(t *testing.T) {
	r := runCLI(t, testDeps(), "compare", "--asn", "none", "-o", "json", geoFixture())
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Results   []report.CompareRow
		Catchment report.CompareSummary
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	by := map[int]report.CompareRow{}
	for _, row := range doc.Results {
		by[*row.Vantage.ProbeID] = row
	}
	if len(by) != 8 {
		t.Fatalf("%d rows", len(by))
	}
	// Sydney: impossible, counted apart, with the numbers.
	syd := by[6004]
	if !syd.Suspect || len(syd.Apart) != 1 || syd.Apart[0].Code != "faster_than_light" || syd.Light == nil || !syd.Light.Impossible ||
		syd.Light.DistanceKm < 16500 || syd.Light.DistanceKm > 16800 || syd.Light.MinRTTMs < 165 || syd.Light.RTTMs != 4.2 {
		t.Errorf("Sydney: suspect %v apart %+v light %+v", syd.Suspect, syd.Apart, syd.Light)
	}
	// Paris to Frankfurt in 9.8 ms: possible, checked.
	if p := by[6007]; p.Suspect || p.Light == nil || p.Light.Impossible || p.Light.DistanceKm < 400 || p.Light.DistanceKm > 500 {
		t.Errorf("Paris: %+v", p.Light)
	}
	// The Atlas-placed probe: approximate, no verdict; no position: none.
	if b := by[6005]; b.Vantage.Location == nil || !b.Vantage.Location.Approximate || b.Light != nil || b.Suspect {
		t.Errorf("Brazil: location %+v light %+v", b.Vantage.Location, b.Light)
	}
	if n := by[6006]; n.Vantage.Location != nil || n.Light != nil {
		t.Errorf("no position: %+v %+v", n.Vantage.Location, n.Light)
	}
	if a := by[6001]; a.Instance.Site == nil || a.Instance.Site.Place == nil || a.Instance.Site.Place.Code != "AMS" || a.Instance.Site.Place.Country != "NL" || a.Vantage.Location.Approximate {
		t.Errorf("Amsterdam: site %+v", a.Instance.Site)
	}
	// Latency: five disjoint disks (New York, Frankfurt, Amsterdam, Tokyo,
	// and the approximate one) where the names give four sites; the row
	// counted apart is no sample, the one without a position is counted.
	l := doc.Catchment.Targets[0].Latency
	if l == nil || len(l.Instances) != 5 || l.Named != 4 || l.Approximate != 1 || l.NoPlace != 1 || l.Used != 6 {
		t.Fatalf("latency %+v", l)
	}
	for i, want := range []string{"US", "DE", "NL", "JP", ""} {
		in := l.Instances[i]
		got := ""
		if in.Place != nil {
			got = in.Place.Country
		}
		if got != want {
			t.Errorf("instance %d (%s): %+v, want in %q", i, in.Vantage, in.Place, want)
		}
	}
	r = runCLI(t, testDeps(), "compare", "--asn", "none", geoFixture())
	for _, want := range []string{
		"latency: ≥ 5 instances by RTT from 6 located vantage points; the names give 4 sites; 1 of the 5 rest on a vantage point with an approximate position (left out: 1 vantage point without a position)",
		"faster than light from the vantage's position to site ams (AMS Amsterdam, NL)",
		"16654 km away: light needs ≥ 166.7 ms, answered in 4.2 ms",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCompareGeoSVG(t *testing.T) {
	r := runCLI(t, testDeps(), "compare", "--asn", "none", "--lines", "-o", "svg", geoFixture())
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	d := xml.NewDecoder(strings.NewReader(r.stdout))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not XML: %v", err)
		}
	}
	// One dot per located vantage point (7 of 8), the one counted apart a
	// ring; every placed site a marker.
	if n := strings.Count(r.stdout, "data-v="); n != 7 {
		t.Errorf("%d dots, want 7", n)
	}
	for _, want := range []string{">ams</text>", ">fra</text>", ">nrt</text>", ">ewr</text>", "not from the service (counted apart) — 1", "1 vantage point without a position (not drawn)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	path := golden("compare_geo.svg")
	if *updateCompare {
		os.WriteFile(path, []byte(r.stdout), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/cli -run TestCompareGeoSVG -update-compare writes it)", err)
	}
	if r.stdout != string(want) {
		t.Errorf("SVG differs from %s", path)
	}
}

func TestCompareGeoHTML(t *testing.T) {
	r := runCLI(t, testDeps(), "compare", "--asn", "none", "-o", "html", geoFixture())
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "<tr data-v="); n != 8 {
		t.Errorf("%d table rows, want 8", n)
	}
	for _, want := range []string{"<!DOCTYPE html>", "latency: ≥ 5 instances", "16654 km away", "<figure"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Usage: svg and html are catchment formats only.
	if r := runCLI(t, testDeps(), "id", "-o", "svg", "192.0.2.53"); r.code != ExitUsage {
		t.Errorf("id -o svg: exit %d", r.code)
	}
}

// atlas fetch -o svg: the world population's probes, placed by their
// metadata, on the map; the one Atlas placed by country drawn at its
// country's centroid and said so.
func TestAtlasFetchSVG(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey, Population: atlastest.NewWorldPopulation(200)}).Start(t)
	id := srv.AddFinished(atlastest.Definition{Type: "dns", AF: 4, Target: "192.0.2.53", QName: "hostname.bind", Protocol: "UDP"}, srv.Population.Probes)
	sites := filepath.Join(t.TempDir(), "sites.txt")
	// Its instances answer NSID "ams-1" and hostname.bind "ns1.ams.anydns.example".
	os.WriteFile(sites, []byte("anydns auth 192.0.2.0/24 ^(?P<iata>[a-z]{3})-[0-9]+$\n"), 0o644)
	r := runAtlasCLI(context.Background(), t, atlasDeps(nil), false, "atlas", "fetch", "--atlas-url", srv.URL, "--asn", "none", "--sites", sites, "-o", "svg", fmt.Sprint(id))
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	reported := 0
	for _, p := range srv.Population.Probes {
		if p.Behaviour != atlastest.NoResult {
			reported++
		}
	}
	if n := strings.Count(r.stdout, "data-v="); n != reported {
		t.Errorf("%d dots, want one per probe that reported (%d)", n, reported)
	}
	for _, want := range []string{">ams</text>", ">fra</text>", ">sin</text>", "drawn at an approximate position", "latency: ≥ "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}

}
