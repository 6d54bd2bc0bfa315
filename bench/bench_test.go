// Package bench measures anycheck against its peers on the same lab paths,
// in one run: trace against traceroute, mtr and scamper; id against one
// dig; several targets in one run against the slowest single one. It is a
// measurement, run by bench/trace.sh (`make bench`), never a timing test:
// TestBench skips unless ANYCHECK_BENCH=1. It fails only when anycheck
// itself fails (an exit status other than 0, a hop list other than the
// lab's routing, an instance not named).
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
	"github.com/anycheck/anycheck/internal/report"
)

// runs is how many times each command runs per row; tools take turns, so
// the machine's load weighs on all of them alike.
const runs = 5

// run is one whole-process run of a command inside a lab client.
type run struct {
	wall time.Duration
	pkts int        // packets the client sent (UDP, TCP, echo requests)
	hops [][]string // distinct responders per TTL; none = silent
	err  error
	out  string
}

// tool is one traceroute implementation and how to read its hop list.
type tool struct {
	name string
	argv func(bin, dst string) []string
	hops func(out string) ([][]string, error)
	// slow tools run fewer times: their ratio is informative, not a target.
	runs int
}

var (
	ttlLine = regexp.MustCompile(`^\s*(\d+)\s+(.*)$`)
	mtrLine = regexp.MustCompile(`^\s*(\d+)\.\|--\s+(.*)$`)
)

// addrsPerLine reads "TTL ADDR rtt ADDR rtt ..." lines (traceroute,
// scamper) into the distinct addresses per TTL.
func addrsPerLine(out string) [][]string {
	byTTL := map[int][]string{}
	maxTTL := 0
	for _, line := range strings.Split(out, "\n") {
		m := ttlLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ttl, _ := strconv.Atoi(m[1])
		for _, w := range strings.Fields(m[2]) {
			if a, err := netip.ParseAddr(w); err == nil && !slices.Contains(byTTL[ttl], a.String()) {
				byTTL[ttl] = append(byTTL[ttl], a.String())
			}
		}
		maxTTL = max(maxTTL, ttl)
	}
	hops := make([][]string, maxTTL)
	for i := range hops {
		hops[i] = byTTL[i+1]
	}
	return hops
}

func dropFirst(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// tracePaths decodes anycheck's -o json trace document: each result's
// traced path.
func tracePaths(out string) ([]report.TraceFlow, error) {
	var doc struct {
		Results []report.TraceResult `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("anycheck json: %w", err)
	}
	var paths []report.TraceFlow
	for _, r := range doc.Results {
		paths = append(paths, r.Flows...)
	}
	return paths, nil
}

// beyondRatios are, over every anycheck trace of the bench, each reply's
// RTT divided by the largest RTT of a reply from a higher TTL of the same
// trace: the data behind the silent-hop factor (trace.silentFactor).
var beyondRatios []float64

func collectRatios(p report.PathDTO) {
	var largest float64 // the largest RTT above the current TTL
	for i := len(p.Hops) - 1; i >= 0; i-- {
		var here float64
		for _, pr := range p.Hops[i].Probes {
			if pr.Reply == nil {
				continue
			}
			if largest > 0 {
				beyondRatios = append(beyondRatios, pr.Reply.RTTMs/largest)
			}
			here = max(here, pr.Reply.RTTMs)
		}
		largest = max(largest, here)
	}
}

func anycheckHops(out string) ([][]string, error) {
	paths, err := tracePaths(out)
	if err != nil {
		return nil, err
	}
	if len(paths) != 1 {
		return nil, fmt.Errorf("anycheck: %d results, want 1", len(paths))
	}
	collectRatios(paths[0].Path)
	var hops [][]string
	for _, h := range paths[0].Path.Hops {
		var addrs []string
		for _, p := range h.Probes {
			if p.Reply != nil && !slices.Contains(addrs, p.Reply.From) {
				addrs = append(addrs, p.Reply.From)
			}
		}
		hops = append(hops, addrs)
	}
	return hops, nil
}

// anycheckTrace is the command line every anycheck trace row uses: no
// enrichment (the peers do none), the same TTL limit as the peers.
func anycheckTrace(bin string, dsts ...string) []string {
	return append([]string{bin, "trace", "-n", "--asn", "none", "-m", "10", "-o", "json"}, dsts...)
}

func tools() []tool {
	return []tool{
		{"anycheck", func(bin, dst string) []string { return anycheckTrace(bin, dst) }, anycheckHops, runs},
		// Knot drops a non-DNS payload to port 53 without a reply, so
		// traceroute waits at every TTL up to -m: -w 1 -m 10 bound it.
		// (-w 1 caps the wait; the waits relative to other hops' RTTs,
		// 3× the hop's own and 10× a later hop's, stay traceroute's.)
		{"traceroute -U -p 53", func(_, dst string) []string {
			return []string{"traceroute", "-n", "-U", "-p", "53", "-w", "1", "-m", "10", dst}
		}, func(out string) ([][]string, error) { return addrsPerLine(dropFirst(out)), nil }, runs},
		{"mtr -u -P 53", func(_, dst string) []string {
			return []string{"mtr", "-r", "-n", "-c", "1", "-u", "-P", "53", "-m", "10", dst}
		}, func(out string) ([][]string, error) {
			var hops [][]string
			for _, line := range strings.Split(out, "\n") {
				m := mtrLine.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				f := strings.Fields(m[2])
				if len(f) == 0 || strings.HasPrefix(f[0], "???") {
					hops = append(hops, nil)
				} else {
					hops = append(hops, []string{f[0]})
				}
			}
			return hops, nil
		}, 3},
		// scamper's udp-paris probes to port 53 carry no DNS query, so a DNS
		// server never answers them and scamper waits out its gap limit
		// past the destination; -w 1 keeps the bench bounded.
		{"scamper udp-paris", func(_, dst string) []string {
			return []string{"scamper", "-O", "text", "-c", "trace -P udp-paris -d 53 -w 1 -m 10", "-i", dst}
		}, func(out string) ([][]string, error) { return addrsPerLine(dropFirst(out)), nil }, 3},
	}
}

// counters counts what a client sends: probes and queries of every tool.
const counters = `table inet acbench {
	chain out {
		type filter hook output priority 0; policy accept;
		meta l4proto { udp, tcp } counter
		icmp type echo-request counter
		icmpv6 type echo-request counter
	}
}
`

var counterRe = regexp.MustCompile(`counter packets (\d+)`)

func sent(t *testing.T, ac *lab.Anycast, client string) int {
	t.Helper()
	out, _, err := ac.Run(context.Background(), client, "nft", "list", "table", "inet", "acbench")
	if err != nil {
		t.Fatalf("packet counters on %s: %v", client, err)
	}
	n := 0
	for _, m := range counterRe.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

// timed runs argv in client and counts the packets it sent.
func timed(t *testing.T, ac *lab.Anycast, client string, argv []string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := sent(t, ac, client)
	start := time.Now()
	out, errOut, err := ac.Run(ctx, client, argv...)
	r := run{wall: time.Since(start), err: err, out: string(out)}
	r.pkts = sent(t, ac, client) - before
	if err != nil {
		r.err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(errOut)))
	}
	return r
}

// matches says whether a hop list is the lab's routing: same length, one
// responder per hop (a mix of the diamond's branches within one run is a
// path no packet took), from the addresses the lab allows, none exactly
// where the lab has a silent hop.
func matches(got [][]string, want []lab.Hop) bool {
	if len(got) != len(want) {
		return false
	}
	for i, w := range want {
		if w.Silent() {
			if len(got[i]) != 0 {
				return false
			}
			continue
		}
		if len(got[i]) != 1 {
			return false
		}
		a, err := netip.ParseAddr(got[i][0])
		if err != nil || !w.Has(a) {
			return false
		}
	}
	return true
}

func hopString(hops [][]string) string {
	var s []string
	for _, h := range hops {
		if len(h) == 0 {
			s = append(s, "*")
		} else {
			s = append(s, strings.Join(h, "|"))
		}
	}
	return strings.Join(s, " ")
}

func median(rs []run) time.Duration {
	ws := make([]time.Duration, len(rs))
	for i, r := range rs {
		ws[i] = r.wall
	}
	slices.Sort(ws)
	return ws[len(ws)/2]
}

func medianPkts(rs []run) int {
	ps := make([]int, len(rs))
	for i, r := range rs {
		ps[i] = r.pkts
	}
	slices.Sort(ps)
	return ps[len(ps)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// goal is one of issue 11's targets and what this run measured for it.
type goal struct {
	what  string
	ratio float64
	limit float64
}

// scenario is one path of the trace table.
type scenario struct {
	name   string
	client string
	f      lab.Family
	want   func() []lab.Hop
	// goal, when set, is the most anycheck's median may be of traceroute's.
	goal float64
}

// silence makes a router stop sending time-exceeded, like s2.
const silence = `table inet acbench_silent {
	chain output {
		type filter hook output priority 0; policy accept;
		icmp type time-exceeded drop
		icmpv6 type time-exceeded drop
	}
}
`

// TestBench brings up the delayed anycast lab (round trips of 24 to 62 ms)
// and prints, per table row, the median wall time of whole-process runs,
// ratios against anycheck measured in the same run, packets sent, and
// whether the hop lists agree with the lab's routing; then the issue's
// targets, met or missed.
func TestBench(t *testing.T) {
	if os.Getenv("ANYCHECK_BENCH") != "1" {
		t.Skip("run by bench/trace.sh (ANYCHECK_BENCH=1)")
	}
	ac := lab.StartAnycastDelayed(t)
	bin := lab.Binary(t)
	// The bench measures the tools, not the routers' ICMP budget: with
	// Linux's default rate limit, back-to-back runs of four tools would
	// see "*" where the budget ran out.
	for _, r := range []string{"e1", "m1", "m2", "r1", "ra", "s2", "r2", "rb", "rt"} {
		if err := ac.DisableICMPRateLimit(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range ac.Clients() {
		if err := nftLoad(ac, c, counters); err != nil {
			t.Fatal(err)
		}
	}
	// A second NSD, on the services host: four targets for the
	// several-targets rows (the anycast address and svc, both families).
	if err := ac.StartDNS("svc", lab.DNSInstance{Server: lab.NSD, Identity: "svc.lab", NSID: "svc-nsd",
		Listen: []netip.Addr{ac.ServicesAddr(lab.IPv4), ac.ServicesAddr(lab.IPv6)}}); err != nil {
		t.Fatal(err)
	}
	var goals []goal
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)

	raSilent := func(f lab.Family) func() []lab.Hop {
		return func() []lab.Hop {
			hops := ac.ExpectedPath("c1", f)
			for i := range hops {
				if slices.Contains(hops[i].Nodes, "ra") {
					hops[i].Addrs = nil
				}
			}
			return hops
		}
	}
	expected := func(client string, f lab.Family) func() []lab.Hop {
		return func() []lab.Hop { return ac.ExpectedPath(client, f) }
	}
	fmt.Fprintf(w, "trace: path\ttool\tmedian\tmin\tmax\tvs anycheck\tpackets\thops agree with the lab\n")
	for _, s := range []scenario{
		{"c1 → A (NSD), all answer, ECMP", "c1", lab.IPv4, expected("c1", lab.IPv4), 1.1},
		{"c1 → A (NSD), all answer, ECMP", "c1", lab.IPv6, expected("c1", lab.IPv6), 1.1},
	} {
		goals = append(goals, traceRow(t, w, ac, bin, s)...)
	}
	if err := nftLoad(ac, "ra", silence); err != nil {
		t.Fatal(err)
	}
	for _, s := range []scenario{
		{"c1 → A (NSD), ra silent", "c1", lab.IPv4, raSilent(lab.IPv4), 0.5},
		{"c1 → A (NSD), ra silent", "c1", lab.IPv6, raSilent(lab.IPv6), 0.5},
	} {
		goals = append(goals, traceRow(t, w, ac, bin, s)...)
	}
	if _, _, err := ac.Run(context.Background(), "ra", "nft", "delete", "table", "inet", "acbench_silent"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []scenario{
		{"c2 → B (Knot), s2 silent", "c2", lab.IPv4, expected("c2", lab.IPv4), 0},
		{"c2 → B (Knot), s2 silent", "c2", lab.IPv6, expected("c2", lab.IPv6), 0},
	} {
		goals = append(goals, traceRow(t, w, ac, bin, s)...)
	}
	w.Flush()

	fmt.Println()
	goals = append(goals, idRows(t, ac, bin)...)
	fmt.Println()
	goals = append(goals, manyTargets(t, ac, bin)...)

	fmt.Println()
	fmt.Println("issue 11 targets (medians of this run):")
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, g := range goals {
		verdict := "met"
		if g.ratio > g.limit {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "  %s\t%.2f×\t(≤ %.1f×)\t%s\n", g.what, g.ratio, g.limit, verdict)
	}
	w.Flush()
	if len(beyondRatios) > 0 {
		slices.Sort(beyondRatios)
		fmt.Printf("\nsilent-hop factor data: a reply's RTT / the largest RTT from a higher TTL of its trace, over %d replies: median %.2f, 99th percentile %.2f, max %.2f (the engine waits 2×)\n",
			len(beyondRatios), beyondRatios[len(beyondRatios)/2], beyondRatios[len(beyondRatios)*99/100], beyondRatios[len(beyondRatios)-1])
	}
}

func nftLoad(ac *lab.Anycast, node, ruleset string) error {
	f, err := os.CreateTemp("", "acbench-*.nft")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(ruleset); err != nil {
		return err
	}
	f.Close()
	_, _, err = ac.Run(context.Background(), node, "nft", "-f", f.Name())
	return err
}

// traceRow runs every tool on one path, taking turns, and prints a row per
// tool; anycheck must exit 0 and show the lab's routing every time.
func traceRow(t *testing.T, w *tabwriter.Writer, ac *lab.Anycast, bin string, s scenario) []goal {
	t.Helper()
	dst := ac.ServiceAddr(s.f).String()
	want := s.want()
	ts := tools()
	if os.Getenv("ANYCHECK_BENCH_QUICK") == "1" {
		ts = ts[:2] // anycheck and traceroute: the targets' peers
	}
	results := make([][]run, len(ts))
	for i := range runs {
		for k, tl := range ts {
			if i >= tl.runs {
				continue
			}
			r := timed(t, ac, s.client, tl.argv(bin, dst))
			hops, err := tl.hops(r.out)
			if err != nil && r.err == nil {
				r.err = err
			}
			r.hops = hops
			fmt.Fprintf(os.Stderr, "bench: %s %v %s: %s, %d packets\n", s.client, s.f, tl.name, ms(r.wall), r.pkts)
			if tl.name == "anycheck" {
				if r.err != nil {
					t.Errorf("%s %v: anycheck failed: %v\n%s", s.name, s.f, r.err, r.out)
				} else if !matches(hops, want) {
					t.Errorf("%s %v: anycheck's hops %s are not the lab's routing %v", s.name, s.f, hopString(hops), want)
				}
			}
			results[k] = append(results[k], r)
		}
	}
	base := median(results[0])
	var trMedian time.Duration
	for k, tl := range ts {
		rs := results[k]
		agree := 0
		for _, r := range rs {
			if matches(r.hops, want) {
				agree++
			}
		}
		med := median(rs)
		if strings.HasPrefix(tl.name, "traceroute") {
			trMedian = med
		}
		walls := make([]time.Duration, len(rs))
		for i, r := range rs {
			walls[i] = r.wall
		}
		fmt.Fprintf(w, "%s, %v\t%s\t%s\t%s\t%s\t%.2f×\t%d\t%d/%d %s\n", s.name, s.f, tl.name, ms(med), ms(slices.Min(walls)), ms(slices.Max(walls)),
			float64(med)/float64(base), medianPkts(rs), agree, len(rs), hopString(rs[len(rs)-1].hops))
	}
	var exp []string
	for _, h := range want {
		exp = append(exp, h.String())
	}
	fmt.Fprintf(w, "%s, %v\t(lab routing)\t\t\t\t\t\t%s\n", s.name, s.f, strings.Join(exp, " "))
	w.Flush()
	if s.goal == 0 {
		return nil
	}
	return []goal{{fmt.Sprintf("trace %s, %v: anycheck / traceroute", s.name, s.f), float64(base) / float64(trMedian), s.goal}}
}

// idRows compares `anycheck id` with one dig asking the same server for
// hostname.bind and NSID, from each client (c1 → A 36 ms, c2 → B 62 ms).
func idRows(t *testing.T, ac *lab.Anycast, bin string) []goal {
	t.Helper()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "id: path\ttool\tmedian\tmin\tmax\tvs dig\tpackets\n")
	var goals []goal
	for _, c := range []struct {
		client string
		in     lab.Instance
	}{{"c1", ac.A}, {"c2", ac.B}} {
		dst := ac.ServiceAddr(lab.IPv4).String()
		var any, dig []run
		for range runs {
			r := timed(t, ac, c.client, []string{bin, "id", "-o", "json", dst})
			if r.err == nil {
				r.err = checkID(r.out, c.in)
			}
			if r.err != nil {
				t.Errorf("id from %s: anycheck failed: %v\n%s", c.client, r.err, r.out)
			}
			any = append(any, r)
			d := timed(t, ac, c.client, []string{"dig", "@" + dst, "+norecurse", "+nsid", "+tries=1", "+time=2", "CH", "TXT", "hostname.bind"})
			if d.err != nil || !strings.Contains(d.out, c.in.NSID) {
				t.Logf("dig from %s: %v\n%s", c.client, d.err, d.out)
			}
			dig = append(dig, d)
			fmt.Fprintf(os.Stderr, "bench: id %s: anycheck %s, dig %s\n", c.client, ms(r.wall), ms(d.wall))
		}
		ma, md := median(any), median(dig)
		name := fmt.Sprintf("%s → %s (%s)", c.client, c.in.Name, c.in.Server)
		fmt.Fprintf(w, "%s\tanycheck id\t%s\t%s\t%s\t%.2f×\t%d\n", name, ms(ma), ms(minWall(any)), ms(maxWall(any)), float64(ma)/float64(md), medianPkts(any))
		fmt.Fprintf(w, "%s\tdig +nsid CH TXT hostname.bind\t%s\t%s\t%s\t1.00×\t%d\n", name, ms(md), ms(minWall(dig)), ms(maxWall(dig)), medianPkts(dig))
		goals = append(goals, goal{fmt.Sprintf("id %s: anycheck id / dig", name), float64(ma) / float64(md), 1.1})
	}
	w.Flush()
	return goals
}

func minWall(rs []run) time.Duration {
	m := rs[0].wall
	for _, r := range rs {
		m = min(m, r.wall)
	}
	return m
}

func maxWall(rs []run) time.Duration {
	m := rs[0].wall
	for _, r := range rs {
		m = max(m, r.wall)
	}
	return m
}

// checkID says whether an id document names the instance, for every target.
func checkID(out string, in ...lab.Instance) error {
	var doc struct {
		Results []report.IDTarget `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return fmt.Errorf("anycheck json: %w", err)
	}
	if len(doc.Results) != len(in) {
		return fmt.Errorf("%d results, want %d", len(doc.Results), len(in))
	}
	for i, r := range doc.Results {
		if r.Failed || len(r.Flows) == 0 || string(r.Flows[0].Instance.NSID) != in[i].NSID {
			return fmt.Errorf("target %s: not identified as %s", r.Input, in[i].NSID)
		}
	}
	return nil
}

// manyTargets compares one run over four targets with single runs of each,
// for trace and id, from c1: the anycast service (A, 36 ms) and the
// services host's NSD (24 ms), each over IPv4 and IPv6.
func manyTargets(t *testing.T, ac *lab.Anycast, bin string) []goal {
	t.Helper()
	svc := lab.Instance{Name: "svc", NSID: "svc-nsd"}
	targets := []string{ac.ServiceV4.String(), ac.ServiceV6.String(), ac.ServicesAddr(lab.IPv4).String(), ac.ServicesAddr(lab.IPv6).String()}
	instances := []lab.Instance{ac.A, ac.A, svc, svc}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "several targets (c1)\tmedian\tmin\tmax\tvs slowest single\tpackets\n")
	var goals []goal
	for _, cmd := range []struct {
		name  string
		argv  func(dsts ...string) []string
		check func(out string, in []lab.Instance) error
	}{
		{"trace", func(dsts ...string) []string { return anycheckTrace(bin, dsts...) }, checkTrace},
		{"id", func(dsts ...string) []string { return append([]string{bin, "id", "-o", "json"}, dsts...) },
			func(out string, in []lab.Instance) error { return checkID(out, in...) }},
	} {
		singles := make([][]run, len(targets))
		var all []run
		for range runs {
			for i, dst := range targets {
				r := timed(t, ac, "c1", cmd.argv(dst))
				if r.err == nil {
					r.err = cmd.check(r.out, instances[i:i+1])
				}
				if r.err != nil {
					t.Errorf("%s %s: anycheck failed: %v\n%s", cmd.name, dst, r.err, r.out)
				}
				singles[i] = append(singles[i], r)
			}
			r := timed(t, ac, "c1", cmd.argv(targets...))
			if r.err == nil {
				r.err = cmd.check(r.out, instances)
			}
			if r.err != nil {
				t.Errorf("%s %v: anycheck failed: %v\n%s", cmd.name, targets, r.err, r.out)
			}
			all = append(all, r)
			fmt.Fprintf(os.Stderr, "bench: %s ×4: %s\n", cmd.name, ms(r.wall))
		}
		var slowest time.Duration
		for i, rs := range singles {
			m := median(rs)
			slowest = max(slowest, m)
			fmt.Fprintf(w, "anycheck %s %s\t%s\t%s\t%s\t\t%d\n", cmd.name, targets[i], ms(m), ms(minWall(rs)), ms(maxWall(rs)), medianPkts(rs))
		}
		m := median(all)
		fmt.Fprintf(w, "anycheck %s (all four)\t%s\t%s\t%s\t%.2f×\t%d\n", cmd.name, ms(m), ms(minWall(all)), ms(maxWall(all)), float64(m)/float64(slowest), medianPkts(all))
		goals = append(goals, goal{fmt.Sprintf("%s of 4 targets / slowest single", cmd.name), float64(m) / float64(slowest), 1.5})
	}
	w.Flush()
	return goals
}

// checkTrace says whether every trace reached its target and named the
// instance there.
func checkTrace(out string, in []lab.Instance) error {
	paths, err := tracePaths(out)
	if err != nil {
		return err
	}
	if len(paths) != len(in) {
		return fmt.Errorf("%d results, want %d", len(paths), len(in))
	}
	for i, p := range paths {
		if !p.Path.Reached || string(p.Instance.NSID) != in[i].NSID {
			return fmt.Errorf("trace to %s: reached %v, instance %+v, want NSID %s", p.Flow.Dst, p.Path.Reached, p.Instance, in[i].NSID)
		}
	}
	return nil
}
