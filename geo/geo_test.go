package geo

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPointValid(t *testing.T) {
	for _, tc := range []struct {
		p    Point
		want bool
	}{
		{Point{52.37, 4.89}, true},
		{Point{-90, 180}, true},
		{Point{0, 0}, false}, // null island
		{Point{0, 10}, true},
		{Point{90.01, 0}, false},
		{Point{10, -180.5}, false},
		{Point{math.NaN(), 1}, false},
		{Point{1, math.Inf(1)}, false},
	} {
		if got := tc.p.Valid(); got != tc.want {
			t.Errorf("%v.Valid() = %v", tc.p, got)
		}
	}
}

func TestParsePoint(t *testing.T) {
	p, err := ParsePoint(" 52.37, 4.89 ")
	if err != nil || p != (Point{52.37, 4.89}) {
		t.Errorf("ParsePoint: %v %v", p, err)
	}
	for in, want := range map[string]string{
		"52.37":    "want LAT,LON",
		"a,b":      "want LAT,LON",
		"91,0":     "latitude out of range",
		"0,181":    "longitude out of range",
		"NaN,1":    "not a number",
		"0,0":      "0,0 is where unset locations land",
		"1,+Inf":   "not a number",
		"-0.0,0.0": "0,0",
	} {
		if _, err := ParsePoint(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePoint(%q): %v, want %q", in, err, want)
		}
	}
}

func TestDistance(t *testing.T) {
	ams, _ := LookupIATA("AMS")
	jfk, _ := LookupIATA("JFK")
	// Amsterdam Schiphol to New York JFK: 5,845 km great circle.
	if d := Distance(ams.Point, jfk.Point); math.Abs(d-5845) > 15 {
		t.Errorf("AMS-JFK %.0f km", d)
	}
	if d := Distance(Point{0, 0.0001}, Point{0, 180}); math.Abs(d-math.Pi*EarthRadiusKm) > 1 {
		t.Errorf("antipodes %.0f km", d)
	}
	if d := Distance(jfk.Point, jfk.Point); d != 0 {
		t.Errorf("same point %v", d)
	}
}

func TestRTTBounds(t *testing.T) {
	// 10 ms RTT: 5 ms each way at ~200 km/ms.
	if r := RadiusKm(10 * time.Millisecond); math.Abs(r-999.3) > 0.1 {
		t.Errorf("RadiusKm(10ms) = %.1f", r)
	}
	if m := MinRTT(RadiusKm(37 * time.Millisecond)); (m - 37*time.Millisecond).Abs() > time.Microsecond {
		t.Errorf("MinRTT∘RadiusKm = %v", m)
	}
	for _, rtt := range []time.Duration{0, -time.Millisecond, MaxRTT + 1} {
		if UsableRTT(rtt) {
			t.Errorf("UsableRTT(%v)", rtt)
		}
	}
}

func TestCheckLight(t *testing.T) {
	fra, _ := LookupIATA("FRA")
	syd, _ := LookupIATA("SYD")
	vantage := Point{50.11, 8.68} // Frankfurt
	// An answer from "Sydney" in 12 ms, 16,500 km away: impossible.
	l, ok := CheckLight(vantage, syd.Point, 12*time.Millisecond)
	if !ok || !l.Impossible || l.DistanceKm < 16000 || l.MinRTT < 160*time.Millisecond {
		t.Errorf("Sydney from Frankfurt in 12 ms: %+v %v", l, ok)
	}
	// From Frankfurt's own airport in 1 ms: fine (within the slack).
	if l, ok := CheckLight(vantage, fra.Point, time.Millisecond); !ok || l.Impossible {
		t.Errorf("Frankfurt from Frankfurt: %+v", l)
	}
	// Sydney in 200 ms: possible.
	if l, _ := CheckLight(vantage, syd.Point, 200*time.Millisecond); l.Impossible {
		t.Errorf("Sydney in 200 ms: %+v", l)
	}
	for _, bad := range []struct {
		v   Point
		rtt time.Duration
	}{{Point{0, 0}, time.Millisecond}, {vantage, 0}, {vantage, -1}, {vantage, time.Hour}, {Point{math.NaN(), 0}, time.Millisecond}} {
		if _, ok := CheckLight(bad.v, syd.Point, bad.rtt); ok {
			t.Errorf("CheckLight(%v, %v) gave a verdict", bad.v, bad.rtt)
		}
	}
}

func TestPlacesTable(t *testing.T) {
	all := Places()
	if len(all) < 4500 {
		t.Fatalf("%d places", len(all))
	}
	for _, tc := range []struct{ code, city, country string }{
		{"LAX", "Los Angeles", "US"}, {"jnb", "Johannesburg", "ZA"}, {"VIE", "Vienna", "AT"},
		{"AMS", "Amsterdam", "NL"}, {"FRA", "Frankfurt am Main", "DE"},
		{"LON", "London", "GB"}, {"TYO", "Tokyo", "JP"}, {"PAR", "Paris", "FR"}, // metropolitan codes
	} {
		p, ok := LookupIATA(tc.code)
		if !ok || p.City != tc.city || p.Country != tc.country || !p.Valid() {
			t.Errorf("%s: %+v %v", tc.code, p, ok)
		}
	}
	for _, code := range []string{"", "AB", "ABCD", "ABO", "ZZZ", "a1b"} {
		if p, ok := LookupIATA(code); ok && code != "ABO" {
			t.Errorf("%q: %+v", code, p)
		}
	}
	// ABO is Aboisso, Côte d'Ivoire, in OurAirports only as a small
	// airfield: not in the table, so am-abo (Abovyan, Armenia) can never
	// be placed there.
	if p, ok := LookupIATA("ABO"); ok && p.Country == "AM" {
		t.Errorf("ABO: %+v", p)
	}
}

func TestCentroidsAndApproximate(t *testing.T) {
	nl, ok := Centroid("nl")
	if !ok || Distance(nl, Point{52.2, 5.6}) > 30 {
		t.Errorf("NL centroid %v %v", nl, ok)
	}
	ru, _ := Centroid("RU")
	if ru.Lon < 60 || ru.Lon > 130 {
		t.Errorf("RU centroid %v (the antimeridian must not pull it)", ru)
	}
	if a, why := Approximate("NL", Point{52.37, 4.89}, []string{"system-v3", TagAutoGeoCountry}); !a || !strings.Contains(why, "country level") {
		t.Errorf("tagged probe: %v %q", a, why)
	}
	if a, why := Approximate("NL", Point{nl.Lat + 0.01, nl.Lon}, nil); !a || !strings.Contains(why, "centroid") {
		t.Errorf("probe on the centroid: %v %q", a, why)
	}
	if a, _ := Approximate("NL", Point{52.37, 4.89}, []string{TagAutoGeoCity}); a {
		t.Errorf("city-level placement is not approximate")
	}
	if a, _ := Approximate("XX", Point{52.37, 4.89}, nil); a {
		t.Errorf("unknown country")
	}
}

// The probe archive sample (RIPE NCC's daily dump, 2018-12-11): 40 real
// probes set by their hosts or by Atlas at city level; none sits on its
// country's centroid, so none is approximate.
func TestApproximateRefdata(t *testing.T) {
	b, err := os.ReadFile(refdata("atlas/probes_archive_sample_20181211.json"))
	if err != nil {
		t.Skip("refdata not here:", err)
	}
	var dump struct {
		Objects []struct {
			ID        int
			Country   string `json:"country_code"`
			Latitude  float64
			Longitude float64
			Tags      []string
		}
	}
	if err := json.Unmarshal(b, &dump); err != nil {
		t.Fatal(err)
	}
	for _, p := range dump.Objects {
		if a, why := Approximate(p.Country, Point{p.Latitude, p.Longitude}, p.Tags); a {
			t.Errorf("probe %d (%s %v,%v): approximate (%s)", p.ID, p.Country, p.Latitude, p.Longitude, why)
		}
	}
	if len(dump.Objects) != 40 {
		t.Errorf("%d probes", len(dump.Objects))
	}
}

func TestLand(t *testing.T) {
	rings := Land()
	pts := 0
	for _, r := range rings {
		pts += len(r)
		for _, p := range r {
			if p.Lat < -90 || p.Lat > 90 || p.Lon < -180 || p.Lon > 180 {
				t.Fatalf("point off the globe: %v", p)
			}
		}
	}
	// No edge runs across the map: rings that crossed ±180° were cut there
	// (only Antarctica's closing edge along the pole spans it).
	for i, r := range rings {
		for k := 1; k < len(r); k++ {
			if math.Abs(r[k].Lon-r[k-1].Lon) > 180 && math.Abs(r[k].Lat) != 90 {
				t.Errorf("ring %d crosses the map: %v → %v", i, r[k-1], r[k])
			}
		}
	}
	if len(rings) < 100 || pts < 5000 || pts > 40000 {
		t.Errorf("%d rings, %d points", len(rings), pts)
	}
}

// population places n vantage points around the given sites (real
// airports) and gives each the RTT to its nearest site, inflated as real
// paths are (1.3–2.5× the fibre bound plus up to 4 ms of queueing), with a
// few broken samples.
func population(seed uint64, n int, sites []string) ([]Sample, []Place) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var sp []Place
	for _, c := range sites {
		p, ok := LookupIATA(c)
		if !ok {
			panic(c)
		}
		sp = append(sp, p)
	}
	all := Places()
	samples := make([]Sample, n)
	for i := range samples {
		// Vantage points near airports of the table: where people are.
		a := all[rng.IntN(len(all))]
		v := Point{math.Max(-89, math.Min(89, a.Lat+rng.NormFloat64()*0.3)), math.Max(-179.9, math.Min(179.9, a.Lon+rng.NormFloat64()*0.3))}
		best := math.Inf(1)
		for _, s := range sp {
			best = math.Min(best, Distance(v, s.Point))
		}
		rtt := time.Duration((2*best/FibreKmPerMs*(1.3+rng.Float64()*1.2) + rng.Float64()*4) * float64(time.Millisecond))
		samples[i] = Sample{Vantage: v, RTT: rtt + 100*time.Microsecond, Approximate: rng.IntN(50) == 0}
	}
	return samples, sp
}

var rootLike = []string{"AMS", "FRA", "LHR", "IAD", "LAX", "MIA", "NRT", "SIN", "SYD", "JNB", "GRU", "BOM", "YYZ", "DXB", "EZE", "NBO", "AKL", "HKG", "SEA", "ORD"}

func TestEnumerateFindsTheSites(t *testing.T) {
	samples, sites := population(7, 3000, rootLike)
	e := Enumerate(samples)
	if e.Used != 3000 || e.BadRTT != 0 || e.NoPlace != 0 {
		t.Fatalf("used %d bad %d noplace %d", e.Used, e.BadRTT, e.NoPlace)
	}
	// A lower bound: never more instances than there are sites, and with
	// vantage points next to every site nearly all of them.
	if len(e.Instances) > len(sites) || len(e.Instances) < len(sites)*3/4 {
		t.Fatalf("%d instances of %d sites", len(e.Instances), len(sites))
	}
	// Every placed instance lies within its disk and near a real site.
	for _, in := range e.Instances {
		if !in.Located() {
			continue
		}
		near := math.Inf(1)
		for _, s := range sites {
			near = math.Min(near, Distance(in.Place.Point, s.Point))
		}
		if near > 500 {
			t.Errorf("instance at %v is %.0f km from any site", in.Place, near)
		}
		if d := Distance(samples[in.Sample].Vantage, in.Place.Point); d > in.RadiusKm {
			t.Errorf("instance %v outside its disk", in.Place)
		}
		if len(in.Vantages) == 0 {
			t.Errorf("instance %v: no vantage in its disk", in.Place)
		}
	}
}

func TestEnumerateBadInput(t *testing.T) {
	lhr, _ := LookupIATA("LHR")
	syd, _ := LookupIATA("SYD")
	samples := []Sample{
		{Vantage: Point{51.5, -0.1}, RTT: 2 * time.Millisecond},
		{Vantage: Point{-33.9, 151.2}, RTT: 3 * time.Millisecond},
		{Vantage: Point{0, 0}, RTT: time.Millisecond},            // null island
		{Vantage: Point{math.NaN(), 3}, RTT: time.Millisecond},   // NaN
		{Vantage: Point{95, 3}, RTT: time.Millisecond},           // out of range
		{Vantage: Point{48.8, 2.3}, RTT: 0},                      // no RTT
		{Vantage: Point{48.8, 2.3}, RTT: -5 * time.Millisecond},  // negative
		{Vantage: Point{48.8, 2.3}, RTT: 40 * time.Second},       // absurd
		{Vantage: Point{48.8, 2.3}, RTT: 150 * time.Millisecond}, // fine, overlaps both
	}
	e := Enumerate(samples)
	if e.Used != 3 || e.BadRTT != 3 || e.NoPlace != 3 {
		t.Errorf("used %d bad %d noplace %d", e.Used, e.BadRTT, e.NoPlace)
	}
	if len(e.Instances) != 2 || e.Instances[0].Place.Code != lhr.Code && e.Instances[0].Place.Country != "GB" || e.Instances[1].Place.Country != syd.Country {
		t.Errorf("instances %+v", e.Instances)
	}
	if e := Enumerate(nil); len(e.Instances) != 0 {
		t.Errorf("nothing gave %+v", e)
	}
	// A disk at sea holds no place: an instance without one.
	e = Enumerate([]Sample{{Vantage: Point{-40, -120}, RTT: time.Millisecond}})
	if len(e.Instances) != 1 || e.Instances[0].Located() {
		t.Errorf("disk at sea: %+v", e.Instances)
	}
}

// Enumerate against the O(n²) reference: the same instances, to the place.
func TestEnumerateMatchesReference(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		samples, _ := population(seed, 1500, rootLike[:5+int(seed)*3])
		got, want := Enumerate(samples), referenceEnumerate(samples)
		if !sameInstances(got, want) {
			t.Errorf("seed %d: %d instances, reference %d", seed, len(got.Instances), len(want.Instances))
		}
	}
}

func sameInstances(a, b Enumeration) bool {
	if len(a.Instances) != len(b.Instances) || a.Used != b.Used {
		return false
	}
	for i := range a.Instances {
		x, y := a.Instances[i], b.Instances[i]
		if x.Sample != y.Sample || x.Place != y.Place || len(x.Vantages) != len(y.Vantages) {
			return false
		}
	}
	return true
}

// refdata finds a file of the shared reference data: $ANYCHECK_REFDATA,
// shared/ beside the repository (CI), or the workplace's copy.
func refdata(name string) string {
	for _, d := range []string{os.Getenv("ANYCHECK_REFDATA"), "../../shared/refdata", "/work/shared/refdata"} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name)
		}
	}
	return filepath.Join("../../shared/refdata", name)
}

// A vantage point with an approximate position weighs less: its disk is
// taken only where no precise one reaches, even when its RTT is lower.
func TestEnumerateApproximateWeighsLess(t *testing.T) {
	samples := []Sample{
		{Vantage: Point{50.1, 8.7}, RTT: 4 * time.Millisecond, Approximate: true},   // "Frankfurt", approximate: its disk holds Amsterdam
		{Vantage: Point{52.4, 4.9}, RTT: 6 * time.Millisecond},                      // Amsterdam, 360 km away: the disks meet
		{Vantage: Point{1.35, 103.8}, RTT: 2 * time.Millisecond, Approximate: true}, // Singapore: alone there
	}
	e := Enumerate(samples)
	if len(e.Instances) != 2 || e.Instances[0].Sample != 1 || e.Instances[1].Sample != 2 || !e.Instances[1].Approximate {
		t.Errorf("instances %+v", e.Instances)
	}
}

// --location and anything else that reads a position: no panic, and what
// parses is a Valid point that prints back to itself.
func FuzzParsePoint(f *testing.F) {
	for _, s := range []string{"52.37,4.89", "-33.9, 151.2", "0,0", "NaN,1", "91,0", "1e308,1", ",", "1,2,3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePoint(s)
		if err != nil {
			return
		}
		if !p.Valid() {
			t.Fatalf("%q parsed to %v, not Valid", s, p)
		}
		if q, err := ParsePoint(p.String()); err != nil || q != p {
			t.Fatalf("%v does not read back: %v %v", p, q, err)
		}
	})
}
