package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/anycheck/anycheck/atlas"
	"github.com/anycheck/anycheck/atlas/atlastest"
)

// atlasRun is one timed run of a command: wall time and peak resident set.
type atlasRun struct {
	wall time.Duration
	cpu  time.Duration // user + system
	rss  int64         // bytes
}

func timeCommand(t *testing.T, argv []string, wantOut string) atlasRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, errb.String())
	}
	if !strings.Contains(out.String(), wantOut) {
		t.Fatalf("%s: output lacks %q:\n%.2000s", strings.Join(argv, " "), wantOut, out.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return atlasRun{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), rss: ru.Maxrss * 1024}
}

func medianRun(runs []atlasRun) atlasRun {
	walls := make([]time.Duration, len(runs))
	cpus := make([]time.Duration, len(runs))
	var rss int64
	for i, r := range runs {
		walls[i], cpus[i] = r.wall, r.cpu
		rss = max(rss, r.rss)
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	return atlasRun{wall: walls[len(walls)/2], cpu: cpus[len(cpus)/2], rss: rss}
}

// TestBenchAtlas renders 5,000 probes' DNS and traceroute results with
// their metadata, served by the fake Atlas API on loopback, and times
// anycheck against jq grouping the same results by probe. It is a
// measurement (bench/atlas.sh), never a pass/fail timing test.
func TestBenchAtlas(t *testing.T) {
	if os.Getenv("ANYCHECK_BENCH") != "1" {
		t.Skip("a benchmark: run bench/atlas.sh (make bench)")
	}
	bin := os.Getenv("ANYCHECK_BIN")
	jq, err := exec.LookPath("jq")
	if bin == "" || err != nil {
		t.Fatalf("needs ANYCHECK_BIN (%q) and jq (%v)", bin, err)
	}
	const probes, runs = 5000, 5
	pop := atlastest.NewPopulation(probes)
	srv := (&atlastest.Server{Population: pop}).Start(t)
	dnsID := srv.AddFinished(atlastest.Definition{Type: "dns", AF: 4, Target: "192.0.2.53", QName: "hostname.bind", Protocol: "UDP"}, pop.Probes)
	trID := srv.AddFinished(atlastest.Definition{Type: "traceroute", AF: 4, Target: "192.0.2.53", Protocol: "UDP"}, pop.Probes)
	ids := []string{fmt.Sprint(dnsID), fmt.Sprint(trID)}
	dir := t.TempDir()
	table := filepath.Join(dir, "world.txt")
	if err := os.WriteFile(table, []byte(pop.Pfx2as()), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(dir, "saved")
	fetch := slices.Concat([]string{bin, "atlas", "fetch", "--atlas-url", srv.URL, "--asn", "none", "--save", saved}, ids)
	timeCommand(t, fetch, "catchment")
	files, _ := filepath.Glob(filepath.Join(saved, "msm-*.json"))
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			size += st.Size()
		}
	}

	// The download alone: both result sets and the probes' metadata, read
	// and thrown away.
	c := &atlas.Client{BaseURL: srv.URL}
	ctx := context.Background()
	var downloads []atlasRun
	for range runs {
		start := time.Now()
		for _, id := range []int{dnsID, trID} {
			body, err := c.Results(ctx, id, atlas.ResultsQuery{})
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, body)
			body.Close()
		}
		all := make([]int, len(pop.Probes))
		for i, p := range pop.Probes {
			all[i] = p.ID
		}
		if _, err := c.Probes(ctx, all); err != nil {
			t.Fatal(err)
		}
		downloads = append(downloads, atlasRun{wall: time.Since(start)})
	}
	download := medianRun(downloads)

	cases := []struct {
		name string
		argv []string
		want string
	}{
		{"jq: group the results by probe (peer)", []string{jq, "-n", "[inputs[]] | group_by(.prb_id) | length"}, ""},
		{"anycheck compare over the saved files (--asn none)", []string{bin, "compare", "--asn", "none", saved}, "catchment"},
		{"anycheck compare over the saved files (--asn file:)", []string{bin, "compare", "--asn", "file:" + table, saved}, "catchment"},
		{"anycheck atlas fetch from the API (--asn none)", slices.Concat([]string{bin, "atlas", "fetch", "--atlas-url", srv.URL, "--asn", "none"}, ids), "catchment"},
		{"anycheck atlas fetch from the API (--asn file:)", slices.Concat([]string{bin, "atlas", "fetch", "--atlas-url", srv.URL, "--asn", "file:" + table}, ids), "catchment"},
	}
	cases[0].argv = append(cases[0].argv, files...)
	results := make([]atlasRun, len(cases))
	for i, cs := range cases {
		var rs []atlasRun
		for range runs {
			rs = append(rs, timeCommand(t, cs.argv, cs.want))
		}
		results[i] = medianRun(rs)
	}
	fmt.Printf("%d probes: DNS + traceroute results %.1f MB (2 files), metadata of %d probes; median of %d runs\n\n", probes, float64(size)/1e6, probes, runs)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "what\tmedian wall\tvs jq\tmedian CPU\tvs jq\tpeak RSS")
	fmt.Fprintf(w, "download only (results + probe metadata, in-process client)\t%s\t\t\t\t\n", download.wall.Round(time.Millisecond))
	for i, cs := range cases {
		r := results[i]
		fmt.Fprintf(w, "%s\t%s\t%.2f×\t%s\t%.2f×\t%.0f MB\n", cs.name, r.wall.Round(time.Millisecond), float64(r.wall)/float64(results[0].wall),
			r.cpu.Round(time.Millisecond), float64(r.cpu)/float64(results[0].cpu), float64(r.rss)/(1<<20))
	}
	w.Flush()
	for _, i := range []int{3, 4} {
		fmt.Printf("\n%s: %s after the download (%s − %s)", cases[i].name, (results[i].wall - download.wall).Round(time.Millisecond),
			results[i].wall.Round(time.Millisecond), download.wall.Round(time.Millisecond))
	}
	fmt.Println()
}
