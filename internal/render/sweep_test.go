package render

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// sweepFlow is one traced flow of a fixture sweep: a hop per address
// ("*" silent), the last one the destination answering with identity id.
func sweepFlow(sport int, id string, hops ...string) trace.Path {
	dst := netip.MustParseAddr("192.0.2.53")
	p := trace.Path{
		Flow: trace.Flow{Proto: trace.UDP, Src: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.10"), uint16(sport)), Dst: netip.AddrPortFrom(dst, 53)},
		Mode: trace.ModeRaw, Started: t0, Elapsed: 20 * time.Millisecond,
	}
	for i, h := range hops {
		ttl := i + 1
		hop := trace.Hop{TTL: ttl, Probes: []trace.ProbeResult{{Seq: 0, Sent: t0}}}
		rtt := time.Duration(ttl)*300*time.Microsecond + time.Duration(sport%7)*10*time.Microsecond
		switch {
		case h == "*":
		case h == dst.String():
			a := answer(measure.NameHostnameBind, measure.StatusAnswered, rtt, id+".lab")
			a.NSID = []byte(id)
			hop.Probes[0].Reply = &trace.Reply{From: dst, RTT: rtt, Kind: trace.ReplyDNS, ICMPType: -1, ICMPCode: -1, ReplyTTL: 60, QuotedTTL: -1, DNS: &a}
			p.Reached, p.Stop, p.DestTTL = true, trace.StopReached, ttl
			p.Answers = []measure.Answer{a}
			p.Instance = &measure.Identity{Instance: id, Source: "nsid", NSID: id, HostnameBind: id + ".lab"}
		default:
			hop.Probes[0].Reply = &trace.Reply{From: netip.MustParseAddr(h), RTT: rtt, Kind: trace.ReplyTimeExceeded, ICMPType: 11, ICMPCode: 0, ReplyTTL: 64 - ttl, QuotedTTL: 1}
		}
		p.Hops = append(p.Hops, hop)
	}
	if !p.Reached {
		p.Stop = trace.StopMaxTTL
	}
	return p
}

// testSweep is a sweep as the CLI makes it: every flow converted and
// enriched, its AS path and upstream the catchment model's, the sweep
// analysed by the catchment model over the flows in port order.
func testSweep(input string, paths []trace.Path, failed []report.FailedFlow, stop report.SweepStop) report.TraceSweep {
	origins := sweepOrigins()
	flows := make([]report.TraceFlow, len(paths))
	for i, p := range paths {
		flows[i] = report.FromPath(p, nil)
		flows[i].Enrich(origins, map[netip.Addr]string{netip.MustParseAddr("198.51.100.1"): "e1.lab.example"})
		_, facts := live.Path(p, origins)
		flows[i].SetPath(facts)
	}
	_, an := live.Sweep(paths, origins, report.MDAConfidence)
	return report.NewTraceSweep(input, paths[0].Flow.Dst.Addr().String(), "udp", 53, report.SweepIdentityUDP, flows, an, failed, stop)
}

func sweepOrigins() map[netip.Addr]whois.Origin {
	o := func(as uint32, name string) whois.Origin {
		return whois.Origin{ASNs: []uint32{as}, ASName: name, Source: "cymru"}
	}
	return map[netip.Addr]whois.Origin{
		netip.MustParseAddr("198.51.100.10"): o(64500, "ISP-ONE"),
		netip.MustParseAddr("198.51.100.1"):  o(64500, "ISP-ONE"),
		netip.MustParseAddr("198.51.100.18"): o(64500, "ISP-ONE"),
		netip.MustParseAddr("198.51.100.22"): o(64500, "ISP-ONE"),
		netip.MustParseAddr("198.51.100.33"): o(64500, "ISP-ONE"),
		netip.MustParseAddr("203.0.113.1"):   o(64520, "ANYDNS-A"),
		netip.MustParseAddr("203.0.113.5"):   o(64520, "ANYDNS-A"),
		netip.MustParseAddr("203.0.113.69"):  o(64521, "ANYDNS-B"),
		netip.MustParseAddr("192.0.2.53"):    {ASNs: []uint32{64520, 64521}, ASName: "ANYDNS", Source: "cymru"},
	}
}

// diamondSweep: 13 flows through a diamond at TTL 2, all reaching one
// instance: one silent at TTL 3 (on the path its other hops fit), one
// whose destination's answer at TTL 5 was lost (it reached it at 6), one
// silent where the branches differ (on no path).
func diamondSweep() report.TraceSweep {
	var flows []trace.Path
	for sport := 40000; sport < 40013; sport++ {
		mid := "198.51.100.18"
		if sport%3 == 0 {
			mid = "198.51.100.22"
		}
		r1 := "198.51.100.33"
		switch sport {
		case 40007:
			r1 = "*"
		case 40012:
			mid = "*"
		}
		hops := []string{"198.51.100.1", mid, r1, "203.0.113.1", "192.0.2.53"}
		if sport == 40010 {
			hops = []string{"198.51.100.1", mid, r1, "203.0.113.1", "*", "192.0.2.53"}
		}
		flows = append(flows, sweepFlow(sport, "i1-nsd", hops...))
	}
	return testSweep("192.0.2.53", flows, nil,
		report.SweepStop{Mode: "auto", Reason: report.SweepStopMaxFlows, MaxFlows: 13, Rounds: 1})
}

// splitSweep: a catchment split behind equal routes to two sites, one
// flow failed.
func splitSweep() report.TraceSweep {
	var flows []trace.Path
	for sport := 50000; sport < 50008; sport++ {
		if sport%2 == 0 {
			flows = append(flows, sweepFlow(sport, "i1-nsd", "198.51.100.1", "203.0.113.5", "192.0.2.53"))
		} else if sport != 50005 {
			flows = append(flows, sweepFlow(sport, "i2-knot\x1b[2J", "198.51.100.1", "203.0.113.69", "192.0.2.53"))
		}
	}
	failed := []report.FailedFlow{{Sport: 50005, Message: "trace 192.0.2.53 udp/53: bind: address already in use"}}
	return testSweep("ns.lab.example", flows, failed,
		report.SweepStop{Mode: "fixed", Reason: report.SweepStopFlows, MaxFlows: 8, Rounds: 1})
}

func TestSweepTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := SweepText(&b, []report.TraceSweep{diamondSweep(), splitSweep()}, TraceOptions{MaxTTL: 30}); err != nil {
		t.Fatal(err)
	}
	golden(t, "sweep.txt", b.Bytes())
	out := b.String()
	if strings.ContainsAny(out, "\x1b") {
		t.Errorf("control characters reached the terminal:\n%q", out)
	}
	// The split is said before any path, the flows of each path once.
	split := strings.Index(out, "catchment split by flow: i1-nsd on 4 of 7 flows, i2-knot\\x1b[2J on 3")
	if split < 0 || split > strings.Index(out[strings.Index(out, "sweep to ns.lab.example"):], "path 1")+strings.Index(out, "sweep to ns.lab.example") {
		t.Errorf("the catchment split is not called out before the paths:\n%s", out)
	}
	for _, want := range []string{
		"path 1 of 2  8 flows: ports 40000-40001 40003-40004 40006-40007 40009-40010  → i1-nsd",
		"paths     2 distinct paths over 12 of 13 flows; 13 reached the target",
		"unplaced  1 flow (port 40012) silent where the paths differ: each fits more than one",
		"diamond   paths part after ttl 1 (198.51.100.1) and join at ttl 3 (198.51.100.33)",
		"          ttl 2: 198.51.100.18 on 8 flows, 198.51.100.22 on 4 flows",
		"note      the service did not answer 1 of 14 probes that reached it (on 1 flow): answers lost on the way",
		"note      routers did not answer every flow: ttl 2 on 1 of 13 flows, ttl 3 on 1, where other flows got a reply; routers rate-limit ICMP errors",
		"fewer flows, or --rate 5 (about one probe a second for each router), let every reply come",
		"failed    flow 50005: trace 192.0.2.53 udp/53: bind: address already in use",
		"diamond   paths part after ttl 1 (198.51.100.1) and do not join again",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q", want)
		}
	}
}

func TestSweepJSONGolden(t *testing.T) {
	d := report.New(report.KindSweep, report.Tool{Name: "anycheck", Version: "test"}, t0, "vantage-1")
	sw := []report.TraceSweep{diamondSweep(), splitSweep()}
	for _, s := range sw {
		for _, f := range s.Flows {
			d.AddSource(string(f.Flow.Src) + ":" + strconv.Itoa(f.Flow.Sport))
		}
	}
	d.Results = sw
	var b bytes.Buffer
	if err := JSON(&b, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "sweep.json", b.Bytes())

	b.Reset()
	for _, h := range sw[1].Flows[0].Path.Hops {
		if err := JSONL(&b, d.WithVantage(d.FlowHopRecord("ns.lab.example", sw[1].Flows[0].Flow, h))); err != nil {
			t.Fatal(err)
		}
	}
	if err := JSONL(&b, d.WithVantage(d.ResultRecord("ns.lab.example", sw[1]))); err != nil {
		t.Fatal(err)
	}
	if err := JSONL(&b, d.EndRecord()); err != nil {
		t.Fatal(err)
	}
	golden(t, "sweep.jsonl", b.Bytes())
}

// TestSweepDot: the graph shows the diamond as parallel branches and the
// split as two instances, edges labelled with their flows (each along the
// path it was placed on), and Graphviz renders it unchanged.
func TestSweepDot(t *testing.T) {
	var b bytes.Buffer
	if err := SweepDot(&b, []report.TraceSweep{diamondSweep(), splitSweep()}); err != nil {
		t.Fatal(err)
	}
	golden(t, "sweep.dot", b.Bytes())
	out := b.String()
	for _, want := range []string{
		`"hop:198.51.100.1" -> "hop:198.51.100.18" [label="8 flows\nports 40000-40001 40003-40004 40006-40007 …"`,
		`"hop:198.51.100.1" -> "hop:198.51.100.22" [label="4 flows\nports 40002 40005 40008 40011"`,
		`"hop:203.0.113.5" -> "instance:192.0.2.53/i1-nsd"`,
		`"hop:203.0.113.69" -> "instance:192.0.2.53/i2-knot\\x1b[2J"`,
		`"hop:198.51.100.18" -> "hop:198.51.100.33" [label="8 flows\nports 40000-40001 40003-40004 40006-40007 …"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dot lacks %s", want)
		}
	}
	// A flow silent where others answered is drawn along the path it
	// fits, not through a "*" of its own; one that fits several is not
	// drawn.
	if strings.Contains(out, "silent:") || strings.Contains(out, "40012") {
		t.Errorf("dot draws a flow through hops that did not answer:\n%s", out)
	}
	renderDot(t, out)

	b.Reset()
	if err := TraceDot(&b, []report.TraceResult{traceFixture()}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"vantage:203.0.113.10" -> "hop:203.0.113.1" [label="1 flow\nport 33512"]`) ||
		!strings.Contains(b.String(), `"silent:2:hop:203.0.113.1"`) || !strings.Contains(b.String(), `"instance:192.0.2.53/i1-nsd"`) {
		t.Errorf("single-flow dot:\n%s", b.String())
	}
	renderDot(t, b.String())
}

// renderDot runs Graphviz on a graph; CI (ANYCHECK_LAB=1) has it.
func renderDot(t *testing.T, graph string) {
	t.Helper()
	dot, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("ANYCHECK_LAB") != "" {
			t.Fatal("graphviz dot is needed (make lab-deps)")
		}
		t.Skip("graphviz dot not installed")
	}
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin = strings.NewReader(graph)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	svg, err := cmd.Output()
	if err != nil || !strings.Contains(string(svg), "<svg") || stderr.Len() > 0 {
		t.Fatalf("dot -Tsvg: %v, stderr %q\n%s", err, stderr.String(), graph)
	}
}

// TestPortRanges: ports are written as ranges, cut with "…" at the limit.
func TestPortRanges(t *testing.T) {
	for _, c := range []struct {
		ports []int
		limit int
		want  string
	}{
		{[]int{40002, 40000, 40001, 40005, 40007, 40008}, 0, "40000-40002 40005 40007-40008"},
		{[]int{1}, 0, "1"},
		{[]int{5, 5, 6}, 0, "5-6"},
		{[]int{1, 3, 5, 7, 9, 11}, 6, "1 3 5 …"},
	} {
		if got := portRanges(c.ports, c.limit); got != c.want {
			t.Errorf("portRanges(%v, %d) = %q, want %q", c.ports, c.limit, got, c.want)
		}
	}
}

// idFlowsFixture: `id --flows 5` towards a split: three flows on i1, one
// on i2 whose answer looks intercepted, one without any answer.
func idFlowsFixture() report.IDTarget {
	target := netip.MustParseAddrPort("192.0.2.53:53")
	run := func(port uint16, id string, rtt time.Duration, sus ...measure.Suspicion) []probe.Result {
		res := probe.Result{Target: target, Source: netip.AddrPortFrom(netip.MustParseAddr("203.0.113.10"), port), Started: t0}
		if id == "" {
			res.Answers = []measure.Answer{answer(measure.NameHostnameBind, measure.StatusTimeout, 0), answer(measure.NameIDServer, measure.StatusTimeout, 0)}
			return []probe.Result{res}
		}
		for _, name := range []string{measure.NameHostnameBind, measure.NameIDServer} {
			a := answer(name, measure.StatusAnswered, rtt, id+".lab")
			a.NSID = []byte(id)
			a.Suspicions = sus
			res.Answers = append(res.Answers, a)
		}
		res.Identity = measure.Summarise(res.Answers)
		return []probe.Result{res}
	}
	flows := [][]probe.Result{
		run(40000, "i1-nsd", 410*time.Microsecond),
		run(40001, "i2-knot\x1b[31m", 1250*time.Microsecond, measure.SuspectRA),
		run(40002, "i1-nsd", 380*time.Microsecond),
		run(40003, "", 0),
		run(40004, "i1-nsd", 395*time.Microsecond),
	}
	t := report.FromIDRuns("192.0.2.53", target, false, flows, nil)
	cf := live.IDFlows(flows)
	t.FlowSummary = report.FromSplit(len(cf), catchment.SplitOf(cf))
	return t
}

func TestIDFlowsGolden(t *testing.T) {
	var b bytes.Buffer
	if err := IDText(&b, []report.IDTarget{idFlowsFixture()}); err != nil {
		t.Fatal(err)
	}
	golden(t, "id_flows.txt", b.Bytes())
	out := b.String()
	if strings.ContainsRune(out, 0x1b) {
		t.Errorf("control character reached the terminal:\n%q", out)
	}
	for _, want := range []string{
		"catchment split by flow: i1-nsd on 3 of 5 flows, i2-knot\\x1b[31m.lab on 1",
		"  40003  —",
		"2 of 2 queries unanswered (2 timeout)",
		"! ra_set",
		"instances i1-nsd on 3 of 5 flows, i2-knot\\x1b[31m.lab on 1; 1 flow without an identity  — catchment split by flow",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	d := report.New(report.KindID, report.Tool{Name: "anycheck", Version: "test"}, t0, "vantage-1")
	d.Results = []report.IDTarget{idFlowsFixture()}
	b.Reset()
	if err := JSON(&b, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "id_flows.json", b.Bytes())
}
