package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/internal/report/reporttest"
	"github.com/anycheck/anycheck/probe/probetest"
)

// --location is recorded in the document's vantage, as coordinates or as
// an IATA code placed by the places table; JSON and the JSONL end line.
func TestLocationRecorded(t *testing.T) {
	for _, tc := range []struct {
		flag, format string
		want         report.Location
	}{
		{"52.37,4.89", "json", report.Location{Lat: 52.37, Lon: 4.89}},
		{"ams", "json", report.Location{Lat: 52.3086, Lon: 4.7639, Place: "AMS"}},
		{"-33.9, 151.2", "jsonl", report.Location{Lat: -33.9, Lon: 151.2}},
	} {
		r := runCLI(t, pipeDeps(&probetest.Server{Hostname: "h1"}), "id", "--location", tc.flag, "-o", tc.format, "192.0.2.53")
		if r.code != ExitOK {
			t.Fatalf("--location %s: exit %d, stderr %q", tc.flag, r.code, r.stderr)
		}
		reporttest.Check(t, []byte(r.stdout), tc.format == "jsonl")
		last := r.stdout
		if tc.format == "jsonl" {
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			last = lines[len(lines)-1]
		}
		var doc struct{ Vantage report.Vantage }
		if err := json.Unmarshal([]byte(last), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Vantage.Location == nil || *doc.Vantage.Location != tc.want {
			t.Errorf("--location %s: vantage %+v, want %+v", tc.flag, doc.Vantage.Location, tc.want)
		}
	}
	// Without the flag, no location.
	r := runCLI(t, pipeDeps(&probetest.Server{Hostname: "h1"}), "id", "-o", "json", "192.0.2.53")
	if strings.Contains(r.stdout, `"location"`) {
		t.Errorf("a location without --location:\n%s", r.stdout)
	}
}

func TestLocationBad(t *testing.T) {
	for flag, want := range map[string]string{
		"0,0":      "0,0 is where unset locations land",
		"91,3":     "latitude out of range",
		"NaN,3":    "not a number",
		"ZZZ":      `"ZZZ" is not an IATA code of the places table`,
		"Paris":    "want LAT,LON",
		"52.3;4.8": "want LAT,LON",
	} {
		for _, cmd := range []string{"id", "trace", "watch"} {
			r := runCLI(t, testDeps(), cmd, "--location", flag, "192.0.2.53")
			if r.code != ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, "--location") || !strings.Contains(r.stderr, want) {
				t.Errorf("%s --location %q: exit %d, stderr %q; want usage error with %q", cmd, flag, r.code, r.stderr, want)
			}
		}
	}
}
