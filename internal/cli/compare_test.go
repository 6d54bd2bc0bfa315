package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/anycheck/anycheck/internal/report/reporttest"
	"github.com/anycheck/anycheck/whois"
)

func atlasFixture(name string) string { return filepath.Join("..", "..", "atlas", "testdata", name) }
func golden(name string) string       { return filepath.Join("..", "..", "testdata", "golden", name) }

func TestCompareUsage(t *testing.T) {
	d := testDeps()
	empty := filepath.Join(t.TempDir(), "empty.json")
	os.WriteFile(empty, nil, 0o644)
	for _, args := range [][]string{
		{"compare"},
		{"compare", "--before", "a.json"},
		{"compare", "--after", "a.json"},
		{"compare", "--before", "a", "--after", "b", "c"},
		{"compare", "-", "-"},
		{"compare", "--sites", "/nonexistent/sites.txt", golden("id.json")},
		{"compare", "-o", "xml", golden("id.json")},
		{"compare", "--asn", "bogus", golden("id.json")},
		// Nothing readable at all: exit 2, nothing on stdout.
		{"compare", "--asn", "none", empty},
		{"compare", "--asn", "none", "/nonexistent/file.json"},
	} {
		r := runCLI(t, d, args...)
		if r.code != ExitUsage || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	// A --sites line with a no-break space between fields (issue 22 item
	// 2: it panicked): a usage error naming the file and line.
	nbsp := filepath.Join(t.TempDir(), "sites.txt")
	os.WriteFile(nbsp, []byte("# ours\nlab auth\u00a0192.0.2.0/24 (i[0-9]+)-nsd\n"), 0o644)
	if r := runCLI(t, d, "compare", "--sites", nbsp, golden("id.json")); r.code != ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, nbsp+":2: U+00A0 between fields") {
		t.Errorf("--sites with U+00A0: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// csv and dot belong to compare only.
	if r := runCLI(t, d, "id", "-o", "csv", "192.0.2.53"); r.code != ExitUsage || !strings.Contains(r.stderr, "-o csv: must be text, json or jsonl") {
		t.Errorf("id -o csv: %d %q", r.code, r.stderr)
	}
}

func TestCompareMixedInputsJSON(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, nil, 0o644)
	v3 := filepath.Join(dir, "v3.json")
	os.WriteFile(v3, []byte(`{"schema":"anycheck/v3","kind":"id","results":[]}`), 0o644)
	r := runCLI(t, testDeps(), "compare", "--asn", "none", "-o", "json",
		atlasFixture("traceroute.jsonl"), atlasFixture("dns.json"), golden("trace.json"), golden("id.json"), empty, v3)
	// Skipped results and files: exit 3, one warning naming each.
	if r.code != ExitPartial {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"traceroute.jsonl: result 4: a ping result", "traceroute.jsonl: result 5: not JSON", "dns.json: result 8: a http result", "empty.json: empty file", `v3.json: document 0: schema "anycheck/v3"`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Kind    string
		Results []struct {
			Vantage  struct{ Label string }
			Target   string
			Instance struct {
				Name   *string
				Source string
			}
			Suspect bool
		}
		Catchment struct {
			Inputs  []struct{ Skipped int }
			Changes []struct{ Kind string }
			Targets []struct {
				Target    string
				Instances []struct {
					Instance string `json:"value"`
					Vantages int
				}
				Service struct {
					Judged    bool
					NotJudged string `json:"not_judged"`
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Kind != "compare" || len(doc.Results) != 10 || len(doc.Catchment.Inputs) != 6 || len(doc.Catchment.Changes) != 2 {
		t.Fatalf("doc: kind %s, %d rows, %d inputs, %d changes", doc.Kind, len(doc.Results), len(doc.Catchment.Inputs), len(doc.Catchment.Changes))
	}
	byVantage := map[string]string{}
	suspect := 0
	for _, row := range doc.Results {
		if row.Instance.Name != nil && row.Target == "192.0.2.53" {
			byVantage[row.Vantage.Label] = *row.Instance.Name
		}
		if row.Suspect {
			suspect++
		}
	}
	// The latest result of probe 1001 (DNS at 01:00:02) and the anycheck
	// vantage joined from its id and trace documents. Eight vantage points
	// are too few to judge answers against the service: the answers'
	// flags are hints, no line is counted apart, and the summary says why.
	if byVantage["probe 1001"] != "ams-2" || byVantage["vantage-1"] != "i1-nsd" || suspect != 0 {
		t.Errorf("instances %v, %d suspect", byVantage, suspect)
	}
	if tg := doc.Catchment.Targets[0]; tg.Service.Judged || !strings.Contains(tg.Service.NotJudged, "fewer than 10") {
		t.Errorf("target %s: judged %v (%q)", tg.Target, tg.Service.Judged, tg.Service.NotJudged)
	}
}

func TestCompareCSVAndDot(t *testing.T) {
	r := runCLI(t, testDeps(), "compare", "--asn", "none", "-o", "csv", atlasFixture("dns.json"))
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(recs) != 10 || recs[0][0] != "vantage" {
		t.Fatalf("csv: %v, %d records:\n%s", err, len(recs), r.stdout)
	}
	for _, rec := range recs {
		if len(rec) != len(recs[0]) {
			t.Fatalf("ragged csv record %v", rec)
		}
		for _, c := range rec {
			if strings.ContainsRune(c, 0x1b) {
				t.Errorf("control character in csv cell %q", c)
			}
		}
	}
	r = runCLI(t, testDeps(), "compare", "--asn", "none", "-o", "dot", atlasFixture("dns.json"), atlasFixture("traceroute.jsonl"))
	if !strings.HasPrefix(r.stdout, `digraph "catchment" {`) || strings.ContainsRune(r.stdout, 0x1b) {
		t.Fatalf("dot:\n%s", r.stdout)
	}
	dot, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("ANYCHECK_LAB") != "" {
			t.Fatal("graphviz dot is needed (make lab-deps)")
		}
		t.Skip("graphviz dot not installed")
	}
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin = strings.NewReader(r.stdout)
	svg, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(svg), "<svg") {
		t.Fatalf("dot -Tsvg: %v\n%s", err, svg)
	}
}

// countingResolver answers every address with a fixed origin and counts
// lookups: compare asks once for the whole input.
type countingResolver struct{ calls atomic.Int32 }

func (c *countingResolver) Lookup(_ context.Context, addrs []netip.Addr) (map[netip.Addr]whois.Origin, error) {
	c.calls.Add(1)
	out := map[netip.Addr]whois.Origin{}
	for _, a := range addrs {
		out[a] = whois.Origin{Addr: a, ASNs: []uint32{64500}, Country: "ZZ", Source: "test"}
	}
	return out, nil
}

func TestCompareOneBulkLookup(t *testing.T) {
	d := testDeps()
	res := &countingResolver{}
	d.newResolver = func(spec string, o whois.Options) (whois.Resolver, error) { return res, nil }
	r := runCLI(t, d, "compare", "-o", "json", atlasFixture("dns.json"), atlasFixture("traceroute.jsonl"))
	if r.code != ExitPartial || res.calls.Load() != 1 {
		t.Fatalf("exit %d, %d lookups", r.code, res.calls.Load())
	}
	if !strings.Contains(r.stdout, `"asns": [`+"\n"+`            64500`) && !strings.Contains(r.stdout, `"country": "ZZ"`) {
		t.Errorf("vantage origins not filled:\n%.2000s", r.stdout)
	}
}

func TestCompareBeforeAfter(t *testing.T) {
	dir := t.TempDir()
	doc := func(name, instance string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(`{"schema":"anycheck/v1","kind":"id","tool":{"name":"anycheck","version":"x"},"started":"2026-11-22T03:00:00Z",
"vantage":{"hostname":"`+strings.SplitN(name, "-", 2)[0]+`","sources":["198.51.100.`+map[bool]string{true: "10", false: "20"}[strings.HasPrefix(name, "c1")]+`:4000"]},
"results":[{"input":"192.0.2.53","address":"192.0.2.53","port":53,"transport":"udp","flows":[{"source":"198.51.100.10:4000","identity":null,
"runs":[{"started":"2026-11-22T03:00:00Z","identity":{"instance":"`+instance+`","instance_source":"nsid","nsid_hostname_disagree":false},
"answers":[{"name":"hostname.bind","transport":"udp","status":"answered","rcode":0,"txt":["x"],"nsid":"`+instance+`","nsid_hex":null,"rtt_ms":0.2,"truncated":false,"suspicions":[],"size":60}]}],
"summary":{"runs":1,"queries":1,"answered":1,"timeouts":0,"rtt_ms":null,"instances":[],"statuses":{}}}],"instances":[],"failed":false}],"errors":[]}`), 0o644)
		return p
	}
	b1, b2 := doc("c1-before.json", "i1-nsd"), doc("c2-before.json", "i2-knot")
	a1, a2 := doc("c1-after.json", "i2-knot"), doc("c2-after.json", "i2-knot")
	r := runCLI(t, testDeps(), "compare", "--asn", "none", "--before", b1, "--before", b2, "--after", a1, "--after", a2)
	var moved []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 5 && f[2] == "moved" {
			moved = append(moved, strings.Join(f[:5], " "))
		}
	}
	// A move exits 3, as watch does on a switch.
	if r.code != ExitPartial || !strings.Contains(r.stdout, "diff: 1 line moved,") || len(moved) != 1 || moved[0] != `c1 192.0.2.53 moved "i1-nsd" "i2-knot"` {
		t.Fatalf("exit %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, testDeps(), "compare", "--asn", "none", "-o", "json", "--before", b1, "--before", b2, "--after", a1, "--after", a2)
	reporttest.Check(t, []byte(r.stdout), false)
}

var updateCompare = flag.Bool("update-compare", false, "rewrite testdata/golden/compare.* from the Atlas fixtures")

// The report of the Atlas-format fixtures, in every format, is golden.
func TestCompareGolden(t *testing.T) {
	for _, format := range []string{"text", "json", "csv", "dot"} {
		r := runCLI(t, testDeps(), "compare", "--asn", "none", "-o", format, atlasFixture("traceroute.jsonl"), atlasFixture("dns.json"))
		if r.code != ExitPartial {
			t.Fatalf("%s: exit %d: %s", format, r.code, r.stderr)
		}
		ext := map[string]string{"text": "txt", "json": "json", "csv": "csv", "dot": "dot"}[format]
		path := golden("compare." + ext)
		if *updateCompare {
			if err := os.WriteFile(path, []byte(r.stdout), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./internal/cli -run TestCompareGolden -update-compare writes it)", err)
		}
		if r.stdout != string(want) {
			t.Errorf("%s differs from %s:\n%s", format, path, r.stdout)
		}
	}
}
