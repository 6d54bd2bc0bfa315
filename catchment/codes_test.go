package catchment

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/geo"
)

// codedObs are n vantage points of AS 64500 answering with the names in
// turn (id.server style: TTL 60, AA set, RA clear, class CH).
func codedObs(n int, names ...string) []Observation {
	var obs []Observation
	for i := 1; i <= n; i++ {
		obs = append(obs, answerObs(i, 64500, reply(0, false, true, 60, dns.ClassCHAOS, names[i%len(names)])))
	}
	return obs
}

// An operator the site-hint table does not know names its instances by
// bare IATA codes ("JNB", "LHR"): the population shows the scheme, so the
// codes are placed as sites without a --sites file. The interceptor's name
// is counted apart and placed nowhere.
func TestBareCodesPlacedByThePopulation(t *testing.T) {
	obs := codedObs(30, "JNB", "LHR", "FRA", "AMS", "GRU", "SIN")
	obs = append(obs, answerObs(31, 64509, reply(0, true, false, 0, dns.ClassINET, "gw.home.lan")))
	rep := Analyse(obs, nil)
	ts := rep.Targets[0]
	if len(ts.Keys) != 6 || len(ts.Apart) != 1 {
		t.Fatalf("keys %+v apart %+v", ts.Keys, ts.Apart)
	}
	for _, k := range ts.Keys {
		want, _ := geo.LookupIATA(k.Key.Value)
		if k.Key.Kind != KeySite || !k.Site.Placed() || k.Site.Place != want || k.Site.Operator != "" {
			t.Errorf("key %+v site %+v, want a site at %v", k.Key, k.Site, want)
		}
	}
	for _, r := range rep.Rows {
		if r.Instance == "gw.home.lan" && r.Site.Site != "" {
			t.Errorf("the interceptor is placed: %+v", r.Site)
		}
		if r.Instance == "JNB" && (r.Site.Site != "jnb" || r.Site.Place.City != "Johannesburg") {
			t.Errorf("JNB row: %+v", r.Site)
		}
	}
}

// The scheme must show in the population, never in one name: too few
// vantage points, names of which too few are codes, one code for every
// vantage point (no scheme at all), names that merely contain a code, and
// a target whose operator the table knows (its patterns decide) give no
// site.
func TestBareCodesNeedThePattern(t *testing.T) {
	mixed := codedObs(20, "JNB", "LHR", "FRA")
	mixed = append(mixed, codedObs(40, "b1-lax", "b2-mia", "b3-lax")[20:]...)
	for i := range mixed {
		mixed[i].Vantage = Vantage{Key: fmt.Sprintf("atlas:%d", i+1), Label: fmt.Sprintf("probe %d", i+1), ProbeID: i + 1}
	}
	known, err := ParseSites(strings.NewReader("op auth 192.0.2.0/24 ([a-z]{3})\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		obs   []Observation
		sites *Sites
	}{
		{"nine vantage points", codedObs(MinPopulation-1, "JNB", "LHR", "FRA"), nil},
		{"half the names are codes", mixed, nil},
		{"one code for all", codedObs(30, "LAN"), nil},
		{"codes inside names", codedObs(30, "ams1", "fra-2", "lhr.example", "k2.jnb-ix"), nil},
		{"the operator's own codes", codedObs(30, "jnb", "lhr", "fra"), known},
	} {
		rep := Analyse(tc.obs, tc.sites)
		for _, r := range rep.Rows {
			if r.Site.Placed() {
				t.Errorf("%s: %s placed at %v", tc.name, r.Instance, r.Site.Place)
			}
		}
	}
}

// A bare name that is no code the places table knows is a site of the
// scheme without a place, saying why; a placed answer faster than light
// from the vantage's position is counted apart.
func TestBareCodesUnplacedAndLight(t *testing.T) {
	obs := codedObs(30, "JNB", "LHR", "FRA", "AMS", "GRU", "SIN", "SYD", "BOM", "LAX", "CDG")
	obs = append(obs, answerObs(31, 64500, reply(0, false, true, 60, dns.ClassCHAOS, "QQX")))
	far := answerObs(32, 64501, reply(0, false, true, 60, dns.ClassCHAOS, "SYD"))
	far.Vantage.Location = geo.Point{Lat: 50.11, Lon: 8.68} // Frankfurt, 10 ms from Sydney
	obs = append(obs, far)
	rep := Analyse(obs, nil)
	var sawUnplaced, sawFar bool
	for _, r := range rep.Rows {
		switch r.Vantage.ProbeID {
		case 31:
			sawUnplaced = true
			if r.Site.Site != "qqx" || r.Site.Placed() || r.Site.Unplaced != "code QQX is not in the places table" {
				t.Errorf("QQX: %+v", r.Site)
			}
		case 32:
			sawFar = true
			if !r.Suspect() || r.Apart[0].Code != SuspectFasterThanLight {
				t.Errorf("SYD from Frankfurt in 10 ms: %+v", r.Apart)
			}
		}
	}
	if !sawUnplaced || !sawFar {
		t.Fatal("rows missing")
	}
}

func TestBareCode(t *testing.T) {
	for name, want := range map[string]string{"JNB": "JNB", "lhr": "LHR", "Fra": "FRA", "ams1": "", "k2.ams-ix": "", "LA": "", "LAXX": "", "é1x": "", "": ""} {
		if got, _ := bareCode(name); got != want {
			t.Errorf("bareCode(%q) = %q, want %q", name, got, want)
		}
	}
}
