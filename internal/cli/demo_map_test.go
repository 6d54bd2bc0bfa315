package cli_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
)

// demoSites names and places the lab's instances for its map: their NSIDs
// ("i1-nsd", "i2-knot") carry no place, so the operator places them.
const demoSites = `lab  auth   192.0.2.0/24,2001:db8:53::/48  ^(i[0-9]+)-(?:nsd|knot)$
lab  place  i1  FRA
lab  place  i2  LHR
`

// TestDemoMap is the maps of `make demo`: the delayed lab (links delayed
// as real paths are: c1 → A 36 ms, c2 → B 62 ms, c3 → A 24 ms or B 32 ms
// by flow), each client measuring with --location where such RTTs put it
// (c1 in Warsaw, c2 in New York, c3 in Paris; instance A placed at
// Frankfurt, B at London), and compare drawing the catchment; then the
// same for 5,000 generated RIPE Atlas probes (atlastest's world
// population). The SVGs go to bin/. It runs only with ANYCHECK_DEMO=1.
func TestDemoMap(t *testing.T) {
	if os.Getenv("ANYCHECK_DEMO") != "1" {
		t.Skip("the demo runs with ANYCHECK_DEMO=1 (make demo)")
	}
	ac := lab.StartAnycastDelayed(t)
	dir := t.TempDir()
	sites := filepath.Join(dir, "sites.txt")
	os.WriteFile(sites, []byte(demoSites), 0o644)
	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	say("\n# the catchment on a map: the delayed lab, each client saying where it is (--location)")
	for _, c := range []struct{ node, where string }{{"c1", "WAW"}, {"c2", "JFK"}, {"c3", "CDG"}} {
		args := []string{"id", "--location", c.where, "-c", "3", "--interval", "100ms", "-o", "json", ac.ServiceV4.String()}
		if c.node == "c3" {
			args = append(args[:len(args)-1], "--flows", "8", ac.ServiceV4.String())
		}
		say("[%s]$ anycheck %s > %s.json", c.node, strings.Join(args, " "), c.node)
		out, errOut, code := labRun(t, ac, c.node, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.node, code, errOut)
		}
		os.WriteFile(filepath.Join(dir, c.node+".json"), []byte(out), 0o644)
	}
	compare := func(svg string, lines bool, args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		say("$ anycheck compare %s", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, lab.Binary(t), append([]string{"compare"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("compare: %v", err)
		}
		fmt.Print(string(out))
		svgArgs := []string{"compare", "-o", "svg"}
		if lines {
			svgArgs = append(svgArgs, "--lines")
		}
		say("$ anycheck %s > %s", strings.Join(append(svgArgs, args...), " "), svg)
		cmd = exec.CommandContext(ctx, lab.Binary(t), append(svgArgs, args...)...)
		cmd.Dir = dir
		if out, err = cmd.Output(); err != nil {
			t.Fatalf("compare -o svg: %v", err)
		}
		path := filepath.Join(binDir(t), svg)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		say("(the map: %s, %d bytes)", path, len(out))
	}
	compare("demo-lab-map.svg", true, "--asn", "none", "--sites", "sites.txt", "c1.json", "c2.json", "c3.json")

	say("\n# 5,000 generated RIPE Atlas probes (atlastest's world population: sites ams, fra, sin)")
	world := filepath.Join(dir, "world")
	os.Mkdir(world, 0o755)
	wsites := writeWorld(t, world, 5000)
	os.Rename(wsites, filepath.Join(dir, "world-sites.txt"))
	compare("demo-world-map.svg", false, "--asn", "none", "--sites", "world-sites.txt", "world")
}

// binDir is the repository's bin/ (make demo's output).
func binDir(t *testing.T) string {
	t.Helper()
	wd, _ := os.Getwd()
	d := filepath.Join(wd, "..", "..", "bin")
	os.MkdirAll(d, 0o755)
	return d
}
