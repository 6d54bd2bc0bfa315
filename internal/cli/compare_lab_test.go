package cli_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
	"github.com/anycheck/anycheck/internal/report/reporttest"
)

var updateLab = flag.Bool("update-lab", false, "rewrite testdata/golden/compare_lab.* from a lab run")

// labMeasure runs id (both families) and a UDP/53 trace (IPv4) from every
// lab client with -o json and writes them to dir/<client>-{id,trace}.json.
func labMeasure(t *testing.T, ac *lab.Anycast, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range ac.Clients() {
		// id first, then trace: the catchment line keeps the latest
		// answers, so the order is part of the golden output.
		for _, run := range []struct {
			kind string
			args []string
		}{
			{"id", []string{"id", "-o", "json", ac.ServiceAddr(lab.IPv4).String(), ac.ServiceAddr(lab.IPv6).String()}},
			{"trace", []string{"trace", "--asn", "none", "-n", "-q", "1", "-w", "1s", "-m", "12", "-o", "json", ac.ServiceAddr(lab.IPv4).String()}},
		} {
			kind, args := run.kind, run.args
			out, errOut, code := labRun(t, ac, c, args...)
			if code != 0 {
				t.Fatalf("%s %s: exit %d: %s", c, kind, code, errOut)
			}
			if err := os.WriteFile(filepath.Join(dir, c+"-"+kind+".json"), []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// compareIn runs `anycheck compare` on the host (it reads files, sends
// nothing) in dir.
func compareIn(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lab.Binary(t), append([]string{"compare", "--asn", "none"}, args...)...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if stderr.Len() > 0 {
		t.Logf("compare %v stderr: %s", args, stderr.String())
	}
	return string(out), code
}

// normalise replaces what differs from run to run: RTTs, times, the
// host's name, source ports.
func normalise(s, host string) string {
	for _, re := range []struct{ re, to string }{
		{`\d+\.\d+ ms`, "X ms"},
		{`("[a-z_]*rtt_ms"|"median_rtt_ms"): [0-9.]+`, `$1: 0.0`},
		{`("time"|"started"): "[^"]*"`, `$1: "2000-01-01T00:00:00.000Z"`},
		{`,(true|false),(true|false),[0-9.]*,[0-9.]*,(true|false),`, ",$1,$2,R,R,$3,"},
		{`20\d\d-\d\d-\d\dT[0-9:.]+Z`, "2000-01-01T00:00:00.000Z"},
		// A flow's source port is the kernel's choice.
		{`"sport": \d+`, `"sport": 0`},
		{`"version": "[^"]*"`, `"version": "V"`},
		// The middle of c1's ECMP diamond depends on the flow's random port.
		{`198\.51\.100\.(18|22)\b`, "198.51.100.22"},
	} {
		s = regexp.MustCompile(re.re).ReplaceAllString(s, re.to)
	}
	if host != "" {
		s = strings.ReplaceAll(s, host, "HOST")
	}
	// Column widths follow the host name's length: compare words, not padding.
	return regexp.MustCompile(`  +`).ReplaceAllString(s, "  ")
}

// TestLabCompare: id and trace from both lab clients, compared: each
// client on its own instance (golden text, JSON and CSV); after instance
// A's route is withdrawn, `compare --before/--after` lists exactly c1 —
// the client that moved — and the dot output renders.
func TestLabCompare(t *testing.T) {
	ac := lab.StartAnycast(t)
	dir := t.TempDir()
	labMeasure(t, ac, filepath.Join(dir, "before"))
	host, _ := os.Hostname()

	for _, format := range []string{"text", "json", "csv"} {
		out, code := compareIn(t, dir, "-o", format, "before")
		if code != 0 {
			t.Fatalf("compare -o %s: exit %d", format, code)
		}
		if format == "json" {
			reporttest.Check(t, []byte(out), false)
			checkLabCatchment(t, ac, out)
		}
		ext := map[string]string{"text": "txt", "json": "json", "csv": "csv"}[format]
		path := filepath.Join("..", "..", "testdata", "golden", "compare_lab."+ext)
		got := normalise(out, host)
		if *updateLab {
			os.WriteFile(path, []byte(got), 0o644)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("compare -o %s differs from %s (normalised):\n%s", format, path, got)
		}
	}

	dot, code := compareIn(t, dir, "-o", "dot", "before")
	if code != 0 {
		t.Fatalf("dot: exit %d", code)
	}
	svg := exec.Command("dot", "-Tsvg")
	svg.Stdin = strings.NewReader(dot)
	if b, err := svg.CombinedOutput(); err != nil || !strings.Contains(string(b), "<svg") {
		t.Fatalf("dot -Tsvg: %v\n%s", err, b)
	}

	if err := ac.StopBGP(ac.A.Origin, "r1"); err != nil {
		t.Fatal(err)
	}
	if in, err := ac.WaitInstance(context.Background(), "c1"); err != nil || in.Node != ac.B.Node {
		t.Fatalf("after stopping %s–r1, c1 should reach %s: %v %v", ac.A.Origin, ac.B.Node, in.Node, err)
	}
	labMeasure(t, ac, filepath.Join(dir, "after"))
	// A move exits 3, as watch does on a switch.
	out, code := compareIn(t, dir, "-o", "json", "--before", "before", "--after", "after")
	if code != 3 {
		t.Fatalf("diff: exit %d, want 3 (c1 moved)", code)
	}
	reporttest.Check(t, []byte(out), false)
	diffJSON := filepath.Join("..", "..", "testdata", "golden", "compare_lab_diff.json")
	if *updateLab {
		os.WriteFile(diffJSON, []byte(normalise(out, host)), 0o644)
	}
	if want, err := os.ReadFile(diffJSON); err != nil || normalise(out, host) != string(want) {
		t.Errorf("compare --before --after -o json differs from %s (normalised), %v:\n%s", diffJSON, err, normalise(out, host))
	}
	var doc struct {
		Catchment struct {
			Diff struct {
				Moves []struct {
					Vantage, Target, Kind string
					Before, After         struct{ Instance struct{ Name string } }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	c1 := ac.ClientAddr("c1", lab.IPv4).String()
	moved := map[string]bool{}
	for _, m := range doc.Catchment.Diff.Moves {
		if m.Kind != "moved" || !strings.HasSuffix(m.Vantage, " "+c1) || m.Before.Instance.Name != ac.A.NSID || m.After.Instance.Name != ac.B.NSID {
			t.Errorf("unexpected change %+v (only c1, %s, moves from %s to %s)", m, c1, ac.A.NSID, ac.B.NSID)
		}
		moved[m.Target] = true
	}
	if !moved[ac.ServiceAddr(lab.IPv4).String()] || !moved[ac.ServiceAddr(lab.IPv6).String()] {
		t.Errorf("c1 should have moved on both families: %+v", doc.Catchment.Diff.Moves)
	}
	text, _ := compareIn(t, dir, "--before", "before", "--after", "after")
	t.Logf("diff:\n%s", text)
	path := filepath.Join("..", "..", "testdata", "golden", "compare_lab_diff.txt")
	got := normalise(text, host)
	if *updateLab {
		os.WriteFile(path, []byte(got), 0o644)
	}
	if want, err := os.ReadFile(path); err != nil {
		t.Fatal(err)
	} else if got != string(want) {
		t.Errorf("compare --before/--after differs from %s (normalised):\n%s", path, got)
	}
}

// checkLabCatchment: each client reaches the instance the lab's routing
// says, on both families, and each instance has half the vantage points.
func checkLabCatchment(t *testing.T, ac *lab.Anycast, out string) {
	t.Helper()
	var doc struct {
		Results []struct {
			Vantage  struct{ Label string }
			Target   string
			Instance struct{ Name *string }
		}
		Catchment struct {
			Targets []struct {
				Instances []struct {
					Instance string `json:"value"`
					Share    float64
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Results) != 4 {
		t.Fatalf("want 2 clients × 2 targets, got %d lines", len(doc.Results))
	}
	for _, r := range doc.Results {
		for _, c := range ac.Clients() {
			if !strings.HasSuffix(r.Vantage.Label, " "+ac.ClientAddr(c, lab.IPv4).String()) {
				continue
			}
			want, _ := ac.InstanceOf(c)
			if r.Instance.Name == nil || *r.Instance.Name != want.NSID {
				t.Errorf("%s → %s: instance %v, want %s", c, r.Target, r.Instance.Name, want.NSID)
			}
		}
	}
	for _, tg := range doc.Catchment.Targets {
		if len(tg.Instances) != 2 || tg.Instances[0].Share != 0.5 {
			t.Errorf("shares %+v", tg.Instances)
		}
	}
}

// TestLabCompareSplit is the fifth real-data situation, in the lab: the
// split client's sweep (its flows reach both sites) is counted as split —
// its own line in the summary, not a share of either instance — and its
// AS is where paths part; another sweep from other source ports is no
// move; when one site's route to it is withdrawn, the split ends (a
// flow-dependent difference, exit 0); when a client loses its only
// instance, it moved (exit 3).
func TestLabCompareSplit(t *testing.T) {
	ac := lab.StartAnycast(t)
	for _, r := range []string{"r3", "ra", "rb"} {
		if err := ac.DisableICMPRateLimit(r); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	_, _, table := startLabWhois(t, ac)
	pfx2as := writePfx2as(t, table)
	svc := ac.ServiceAddr(lab.IPv4).String()
	split := ac.SplitClient()
	run := func(side, sport string) {
		if err := os.MkdirAll(filepath.Join(dir, side), 0o755); err != nil {
			t.Fatal(err)
		}
		clients := ac.Clients()
		if !slices.Contains(clients, split) {
			clients = append(clients, split)
		}
		for _, c := range clients {
			args := []string{"trace", "--asn", "none", "-n", "-q", "1", "-w", "1s", "-m", "12", "-o", "json", svc}
			if c == split {
				args = append([]string{"trace", "--flows", "16", "--sport", sport}, args[1:]...)
			}
			out, errOut, code := labRun(t, ac, c, args...)
			if code != 0 {
				t.Fatalf("%s %s: exit %d: %s", side, c, code, errOut)
			}
			if err := os.WriteFile(filepath.Join(dir, side, c+".json"), []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	run("before", "42000")
	out, code := compareIn(t, dir, "--asn", "file:"+pfx2as, "before")
	if code != 0 {
		t.Fatalf("compare: exit %d", code)
	}
	host, _ := os.Hostname()
	got := normalise(out, host)
	path := filepath.Join("..", "..", "testdata", "golden", "realdata_split.txt")
	if *updateLab {
		os.WriteFile(path, []byte(got), 0o644)
	}
	if want, err := os.ReadFile(path); err != nil || got != string(want) {
		t.Errorf("compare differs from %s (normalised): %v\n%s", path, err, got)
	}
	c3 := ac.ClientAddr(split, lab.IPv4).String()
	for _, want := range []string{"split by flow: 1 vantage point\n    AS64502  ", " " + c3 + "  flows to ", "where paths part:\n  AS64502 → " + svc} {
		if !strings.Contains(out, want) {
			t.Errorf("compare lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "catchment: 3 vantage points") {
		t.Errorf("the split client counts for an instance:\n%s", out)
	}

	// Other source ports hash onto the sites otherwise: no move.
	run("ports", "43000")
	out, code = compareIn(t, dir, "--asn", "file:"+pfx2as, "--before", "before", "--after", "ports")
	if code != 0 || strings.Contains(out, " moved ") {
		t.Errorf("another sweep of the split client: exit %d\n%s", code, out)
	}
	// Site A's peering with c3's router goes: c3 reaches B only — its
	// flows differ, it did not move (exit 0).
	if err := ac.StopBGP(ac.A.Origin, "r3"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		o, _, _ := labRun(t, ac, split, "trace", "--flows", "8", "--sport", "43000", "--asn", "none", "-n", "-q", "1", "-w", "1s", "-m", "12", svc)
		return !strings.Contains(o, "split")
	})
	run("withdrawn", "43000")
	out, code = compareIn(t, dir, "--asn", "file:"+pfx2as, "--before", "ports", "--after", "withdrawn")
	if code != 0 || !strings.Contains(out, " flows ") || strings.Contains(out, " moved ") {
		t.Errorf("the split ends: exit %d, want a flow-dependent difference and 0\n%s", code, out)
	}
	t.Logf("split ends:\n%s", out)
}

// waitFor polls cond for up to 30 seconds (BGP converging).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the lab's routing")
		}
		time.Sleep(500 * time.Millisecond)
	}
}
