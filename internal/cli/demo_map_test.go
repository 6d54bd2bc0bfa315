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

	"github.com/anycheck/anycheck/atlas/atlastest"
	"github.com/anycheck/anycheck/internal/lab"
)

// demoSites names and places the lab's instances for its map: their NSIDs
// ("i1-nsd", "i2-knot") carry no place, so the operator places them.
const demoSites = `lab  auth   192.0.2.0/24,2001:db8:53::/48  ^(i[0-9]+)-(?:nsd|knot)$
lab  place  i1  FRA
lab  place  i2  LHR
`

// TestDemoMap is the maps of `make demo` (run after TestDemo): the delayed
// lab (links delayed as real paths are: c1 → A 36 ms, c2 → B 62 ms, c3 →
// A 24 ms or B 32 ms by flow), each client measuring with --location
// where such RTTs put it (c1 in Warsaw, c2 in New York, c3 in Paris;
// instance A placed at Frankfurt, B at London) and --label naming it, and
// compare drawing the catchment; then the same for 5,000 generated RIPE
// Atlas probes (atlastest's world population). The SVGs go to the
// repository's bin/. It runs only with ANYCHECK_DEMO=1.
func TestDemoMap(t *testing.T) {
	if os.Getenv("ANYCHECK_DEMO") != "1" {
		t.Skip("the demo runs with ANYCHECK_DEMO=1 (make demo)")
	}
	ac := lab.StartAnycastDelayed(t)
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sites.txt", []byte(demoSites))
	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	say("\n# the catchment on a map. The same lab again, its links now delayed as real paths are")
	say("# (c1 → i1 36 ms, c2 → i2 62 ms, c3 → i1 24 ms or i2 32 ms by flow); each client says")
	say("# where it is (--location, an IATA code) and names itself (--label), and sites.txt")
	say("# places the instances, whose names carry no place:")
	for _, line := range strings.Split(strings.TrimSpace(demoSites), "\n") {
		say("#   %s", strings.Join(strings.Fields(line), " "))
	}
	for _, c := range []struct{ node, where string }{{"c1", "WAW"}, {"c2", "JFK"}, {"c3", "CDG"}} {
		args := []string{"id", "--location", c.where, "--label", c.node, "-c", "3", "--interval", "100ms", "-o", "json", ac.ServiceV4.String()}
		if c.node == "c3" {
			args = append(args[:len(args)-1], "--flows", "8", ac.ServiceV4.String())
		}
		say("[%s]$ anycheck %s > %s.json", c.node, strings.Join(args, " "), c.node)
		out, errOut, code := labRun(t, ac, c.node, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.node, code, errOut)
		}
		write(c.node+".json", []byte(out))
	}
	bin := lab.ModuleFile(t, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
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
		path := filepath.Join(bin, svg)
		say("$ anycheck %s > %s", strings.Join(append(svgArgs, args...), " "), path)
		cmd = exec.CommandContext(ctx, lab.Binary(t), append(svgArgs, args...)...)
		cmd.Dir = dir
		if out, err = cmd.Output(); err != nil {
			t.Fatalf("compare -o svg: %v", err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		say("(the map: %s, %d KB; open it in a browser)", path, (len(out)+512)/1024)
	}
	compare("demo-lab-map.svg", true, "--asn", "none", "--sites", "sites.txt", "c1.json", "c2.json", "c3.json")

	const probes = 5000
	behaviour := map[string]int{}
	for _, p := range atlastest.NewWorldPopulation(probes).Probes {
		behaviour[p.Behaviour]++
	}
	say("\n# %d generated RIPE Atlas probes with their metadata (atlastest's world population:", probes)
	say("# sites ams, fra, sin; %d probes never report, %d time out, %d sit behind a resolver that", behaviour[atlastest.NoResult], behaviour[atlastest.TimesOut], behaviour[atlastest.Intercepted])
	say("# answers in the service's place, and one in nine reaches a site outside its own region):")
	say("# results.json and probes.json in world/")
	world := filepath.Join(dir, "world")
	if err := os.Mkdir(world, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(writeWorld(t, world, probes), filepath.Join(dir, "world-sites.txt")); err != nil {
		t.Fatal(err)
	}
	compare("demo-world-map.svg", false, "--asn", "none", "--sites", "world-sites.txt", "world")
}
