package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/anycheck/anycheck/internal/lab"
	"github.com/anycheck/anycheck/internal/report"
)

// tracelbGroup is a set of parallel next hops in scamper's tracelb text
// output: "198.51.100.1 -> (198.51.100.18, 198.51.100.22) -> ...".
var tracelbGroup = regexp.MustCompile(`\(([^)]*)\)`)

// tracelbBranches are the addresses scamper's tracelb shows as parallel
// next hops (the diamonds' branches), sorted.
func tracelbBranches(out string) []string {
	var addrs []string
	for _, m := range tracelbGroup.FindAllStringSubmatch(out, -1) {
		for _, a := range strings.Split(m[1], ",") {
			if a = strings.TrimSpace(a); a != "" && !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	slices.Sort(addrs)
	return addrs
}

// sweepResult decodes one target's sweep from anycheck's -o json.
func sweepResult(out string) (report.TraceSweep, error) {
	var doc struct {
		Kind    string              `json:"kind"`
		Results []report.TraceSweep `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return report.TraceSweep{}, fmt.Errorf("anycheck json: %w", err)
	}
	if doc.Kind != report.KindSweep || len(doc.Results) != 1 {
		return report.TraceSweep{}, fmt.Errorf("anycheck: kind %q with %d results, want one sweep", doc.Kind, len(doc.Results))
	}
	return doc.Results[0], nil
}

// sweepBranches are the addresses a sweep found at the TTLs where its
// paths differ, sorted.
func sweepBranches(s report.TraceSweep) []string {
	var addrs []string
	for _, d := range s.Summary.Diamonds {
		for _, alt := range d.Alternatives {
			for _, a := range alt.Addresses {
				if !slices.Contains(addrs, a.Address) {
					addrs = append(addrs, a.Address)
				}
			}
		}
	}
	slices.Sort(addrs)
	return addrs
}

// TestBenchFlows (issue 7): on the delayed lab, `trace --flows auto`
// through the ECMP diamond against scamper's tracelb on the same path
// (the same branch addresses in at most 0.2× its wall time), and the
// sweep from the split client against a single-flow trace from it (at
// most 3×). Medians of whole-process runs taken in turns. It fails only
// when anycheck fails: an exit status other than 0, branches other than
// the lab's, a split not found.
func TestBenchFlows(t *testing.T) {
	if os.Getenv("ANYCHECK_BENCH") != "1" {
		t.Skip("run by bench/flows.sh (ANYCHECK_BENCH=1)")
	}
	ac := lab.StartAnycastDelayed(t)
	bin := lab.Binary(t)
	// The tools are measured, not the routers' ICMP budget: a sweep and
	// tracelb both send many probes to each router within a second.
	for _, r := range []string{"e1", "m1", "m2", "r1", "ra", "rb", "r3"} {
		if err := ac.DisableICMPRateLimit(r); err != nil {
			t.Fatal(err)
		}
	}
	split := ac.SplitClient()
	for _, c := range []string{"c1", split} {
		if err := nftLoad(ac, c, counters); err != nil {
			t.Fatal(err)
		}
	}
	var goals []goal
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "flows: path\ttool\tmedian\tmin\tmax\tvs anycheck\tpackets\tbranches found\n")
	for _, f := range []lab.Family{lab.IPv4, lab.IPv6} {
		goals = append(goals, diamondRow(t, w, ac, bin, f)...)
	}
	for _, f := range []lab.Family{lab.IPv4, lab.IPv6} {
		goals = append(goals, splitRow(t, w, ac, bin, split, f)...)
	}
	w.Flush()

	fmt.Println()
	fmt.Println("issue 7 targets (medians of this run):")
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, g := range goals {
		verdict := "met"
		if g.ratio > g.limit {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "  %s\t%.3f×\t(≤ %.1f×)\t%s\n", g.what, g.ratio, g.limit, verdict)
	}
	w.Flush()
}

// flowTool is one command of a flows row.
type flowTool struct {
	name     string
	argv     []string
	runs     int
	branches func(out string) ([]string, error)
}

// diamondRow: from c1 through e1's diamond to the NSD instance, anycheck's
// auto sweep against scamper tracelb with its default method (UDP with
// varying destination ports, which the destination answers with port
// unreachable) and with UDP source ports to port 53, anycheck's flows (NSD
// does not answer those non-DNS probes: scamper waits out its gap limit).
// -w 1 bounds scamper's wait for a reply; its pacing (-W, 250 ms between
// probes) is its own.
func diamondRow(t *testing.T, w *tabwriter.Writer, ac *lab.Anycast, bin string, f lab.Family) []goal {
	t.Helper()
	dst := ac.ServiceAddr(f).String()
	var want []string
	for _, a := range ac.ExpectedPath("c1", f)[1].Addrs {
		want = append(want, a.String())
	}
	slices.Sort(want)
	ts := []flowTool{
		{"anycheck trace --flows auto", []string{bin, "trace", "--flows", "auto", "-n", "--asn", "none", "-m", "10", "-o", "json", dst}, runs,
			func(out string) ([]string, error) {
				s, err := sweepResult(out)
				return sweepBranches(s), err
			}},
		{"scamper tracelb", []string{"scamper", "-O", "text", "-c", "tracelb -w 1", "-i", dst}, 3,
			func(out string) ([]string, error) { return tracelbBranches(out), nil }},
		{"scamper tracelb -P udp-sport -d 53", []string{"scamper", "-O", "text", "-c", "tracelb -P udp-sport -d 53 -w 1", "-i", dst}, 1,
			func(out string) ([]string, error) { return tracelbBranches(out), nil }},
	}
	if os.Getenv("ANYCHECK_BENCH_QUICK") == "1" {
		ts = ts[:2]
	}
	results := make([][]run, len(ts))
	found := make([][]string, len(ts))
	for i := range runs {
		for k, tl := range ts {
			if i >= tl.runs {
				continue
			}
			r := timed(t, ac, "c1", tl.argv)
			br, err := tl.branches(r.out)
			if err != nil && r.err == nil {
				r.err = err
			}
			fmt.Fprintf(os.Stderr, "bench: flows c1 %v %s: %s, %d packets, branches %v\n", f, tl.name, ms(r.wall), r.pkts, br)
			if k == 0 && (r.err != nil || !slices.Equal(br, want)) {
				t.Errorf("c1 %v: anycheck sweep: %v, branches %v, want %v\n%s", f, r.err, br, want, r.out)
			}
			found[k] = br
			results[k] = append(results[k], r)
		}
	}
	base := median(results[0])
	var goals []goal
	for k, tl := range ts {
		rs := results[k]
		med := median(rs)
		// scamper's udp-sport probes leave by a path nftables' output
		// hook does not see: no count rather than a false 0.
		pkts := "not counted"
		if p := medianPkts(rs); p > 0 {
			pkts = fmt.Sprint(p)
		}
		fmt.Fprintf(w, "c1 → A through the diamond, %v\t%s\t%s\t%s\t%s\t%.3f×\t%s\t%s\n", f, tl.name, ms(med), ms(minWall(rs)), ms(maxWall(rs)),
			float64(med)/float64(base), pkts, branchString(found[k], want))
		if tl.name == "scamper tracelb" {
			goals = append(goals, goal{fmt.Sprintf("trace --flows auto through the diamond, %v: anycheck / scamper tracelb", f), float64(base) / float64(med), 0.2})
		}
	}
	return goals
}

func branchString(got, want []string) string {
	s := strings.Join(got, " ")
	if s == "" {
		s = "none"
	}
	if slices.Equal(got, want) {
		return s + " (the lab's)"
	}
	return s + " (lab: " + strings.Join(want, " ") + ")"
}

// splitRow: from the split client, the auto sweep against one flow's
// trace; the sweep must find both instances.
func splitRow(t *testing.T, w *tabwriter.Writer, ac *lab.Anycast, bin, client string, f lab.Family) []goal {
	t.Helper()
	dst := ac.ServiceAddr(f).String()
	var sweep, single []run
	flows := map[int]int{}
	for range runs {
		r := timed(t, ac, client, []string{bin, "trace", "--flows", "auto", "-n", "--asn", "none", "-m", "10", "-o", "json", dst})
		s, err := sweepResult(r.out)
		if r.err == nil {
			r.err = err
		}
		if r.err == nil && (!s.Summary.Split || len(s.Summary.Instances) != 2) {
			r.err = fmt.Errorf("no catchment split found: %+v", s.Summary.Instances)
		}
		if r.err != nil {
			t.Errorf("%s %v: anycheck sweep: %v\n%s", client, f, r.err, r.out)
		}
		flows[len(s.Flows)]++
		sweep = append(sweep, r)
		one := timed(t, ac, client, anycheckTrace(bin, dst))
		if one.err != nil {
			t.Errorf("%s %v: anycheck trace: %v\n%s", client, f, one.err, one.out)
		}
		single = append(single, one)
		fmt.Fprintf(os.Stderr, "bench: flows %s %v: sweep %s (%d flows, %d packets), single trace %s\n", client, f, ms(r.wall), len(s.Flows), r.pkts, ms(one.wall))
	}
	ms1, ms2 := median(sweep), median(single)
	name := fmt.Sprintf("%s → A or B by flow (split), %v", client, f)
	fmt.Fprintf(w, "%s\tanycheck trace --flows auto\t%s\t%s\t%s\t%.2f× single\t%d\tflows per run: %v\n", name, ms(ms1), ms(minWall(sweep)), ms(maxWall(sweep)),
		float64(ms1)/float64(ms2), medianPkts(sweep), flowCounts(flows))
	fmt.Fprintf(w, "%s\tanycheck trace (one flow)\t%s\t%s\t%s\t1.00×\t%d\t\n", name, ms(ms2), ms(minWall(single)), ms(maxWall(single)), medianPkts(single))
	return []goal{{fmt.Sprintf("sweep from the split client, %v: --flows auto / one flow", f), float64(ms1) / float64(ms2), 3}}
}

func flowCounts(m map[int]int) string {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%d×%d", m[k], k))
	}
	return strings.Join(parts, " ")
}
