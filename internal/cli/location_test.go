package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
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

// TestLabelRecorded: --label names the vantage in the document (id, trace
// and watch), compare shows it, and without it the vantage is named by
// its host name; a label must be printable text.
func TestLabelRecorded(t *testing.T) {
	dir := t.TempDir()
	for _, label := range []string{"c1", "c2"} {
		r := runCLI(t, pipeDeps(&probetest.Server{Hostname: "h1", NSID: []byte("n1")}), "id", "--label", label, "-o", "json", "192.0.2.53")
		if r.code != ExitOK {
			t.Fatalf("--label %s: exit %d, stderr %q", label, r.code, r.stderr)
		}
		reporttest.Check(t, []byte(r.stdout), false)
		var doc struct{ Vantage report.Vantage }
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Vantage.Label != label || doc.Vantage.Hostname != "test-vantage" {
			t.Errorf("--label %s: vantage %+v", label, doc.Vantage)
		}
		if err := os.WriteFile(filepath.Join(dir, label+".json"), []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := runCLI(t, testDeps(), "compare", "--asn", "none", "--all", dir)
	for _, want := range []string{"\nc1 ", "\nc2 "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("compare does not name the vantage %q:\n%s", strings.TrimSpace(want), r.stdout)
		}
	}
	if strings.Contains(r.stdout, "test-vantage") {
		t.Errorf("compare names a labelled vantage by its host name:\n%s", r.stdout)
	}
	r = runCLI(t, pipeDeps(&probetest.Server{Hostname: "h1"}), "id", "-o", "json", "192.0.2.53")
	if strings.Contains(r.stdout, `"label"`) || !strings.Contains(r.stdout, `"hostname": "test-vantage"`) {
		t.Errorf("without --label:\n%s", r.stdout)
	}
	for _, bad := range []string{"", "a\x1bb", strings.Repeat("x", 65)} {
		for _, cmd := range []string{"id", "trace", "watch"} {
			r := runCLI(t, testDeps(), cmd, "--label", bad, "192.0.2.53")
			if r.code != ExitUsage || !strings.Contains(r.stderr, "--label") {
				t.Errorf("%s --label %q: exit %d, stderr %q", cmd, bad, r.code, r.stderr)
			}
		}
	}
}
