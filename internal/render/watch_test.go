package render

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// labOrigins are the lab's address plan as an ASN source gives it.
var labOrigins = map[string]uint32{
	"198.51.100.10": 64500, "198.51.100.1": 64500, "198.51.100.22": 64500, "198.51.100.33": 64500,
	"203.0.113.1": 64520, "198.51.100.129": 64510, "198.51.100.66": 64501, "203.0.113.65": 64521,
}

// watchTrace is a trace of the watched flow through the given hops, ending
// at the anycast address served by instance.
func watchTrace(at time.Time, instance string, hops ...string) report.TraceFlow {
	p := trace.Path{
		Flow: trace.Flow{Proto: trace.UDP, Src: netip.MustParseAddrPort("198.51.100.10:40429"), Dst: netip.MustParseAddrPort("192.0.2.53:53")},
		Mode: trace.ModeRaw, Started: at, Elapsed: 3 * time.Millisecond, Reached: true, Stop: trace.StopReached,
		DestTTL:  len(hops) + 1,
		Instance: &measure.Identity{Instance: instance, Source: "nsid", NSID: instance},
	}
	for i, h := range append(hops, "192.0.2.53") {
		hop := trace.Hop{TTL: i + 1}
		if h != "*" {
			r := &trace.Reply{From: netip.MustParseAddr(h), RTT: time.Duration(i+1) * 100 * time.Microsecond, Kind: trace.ReplyTimeExceeded, ICMPType: 11, ICMPCode: 0, ReplyTTL: 64 - i, QuotedTTL: 1}
			if h == "192.0.2.53" {
				r.Kind, r.ICMPType, r.ICMPCode, r.QuotedTTL = trace.ReplyDNS, -1, -1, -1
			}
			hop.Probes = []trace.ProbeResult{{Seq: 0, Sent: at, Reply: r}}
		} else {
			hop.Probes = []trace.ProbeResult{{Seq: 0, Sent: at}}
		}
		p.Hops = append(p.Hops, hop)
	}
	tp := report.FromPath(p, nil)
	origins := map[netip.Addr]whois.Origin{netip.MustParseAddr("192.0.2.53"): {ASNs: []uint32{64520, 64521}, Source: "cymru"}}
	for a, as := range labOrigins {
		origins[netip.MustParseAddr(a)] = whois.Origin{ASNs: []uint32{as}, Source: "cymru"}
	}
	tp.Enrich(origins, nil)
	_, facts := live.Path(p, origins)
	tp.SetPath(facts)
	return tp
}

func watchRound(at time.Time, nsid string, rtt time.Duration) catchment.WatchRound {
	r := catchment.WatchRound{Time: at}
	if nsid == "" {
		for _, n := range []string{"hostname.bind", "id.server"} {
			r.Answers = append(r.Answers, measure.Answer{Name: n, Status: measure.StatusTimeout})
		}
		return r
	}
	host := strings.Replace(nsid, "-nsd", ".lab-a", 1)
	host = strings.Replace(host, "-knot", ".lab-b", 1)
	for _, n := range []string{"hostname.bind", "id.server"} {
		r.Answers = append(r.Answers, measure.Answer{Name: n, Status: measure.StatusAnswered, RTT: rtt, TXT: []string{host}, NSID: []byte(nsid)})
	}
	r.Identity = measure.Identity{Instance: nsid, Source: "nsid", NSID: nsid, HostnameBind: host, IDServer: host}
	return r
}

// watchFixture is a failover and back, watched every second with --trace,
// then a loss: the events as they were streamed and the summary.
func watchFixture() ([]report.WatchEvent, []report.WatchTarget) {
	id := report.WatchFlowID{Input: "192.0.2.53", Target: netip.MustParseAddrPort("192.0.2.53:53"), Source: netip.MustParseAddrPort("198.51.100.10:40429"), Interval: time.Second, Started: t0}
	w := catchment.NewWatcher(id.Target.Addr(), time.Second, nil, 0)
	pathA := []string{"198.51.100.1", "198.51.100.22", "198.51.100.33", "203.0.113.1"}
	pathB := []string{"198.51.100.1", "198.51.100.22", "198.51.100.33", "198.51.100.129", "198.51.100.66", "203.0.113.65"}
	seq := []struct {
		nsid string
		rtt  time.Duration
	}{
		{"i1-nsd", 210 * time.Microsecond}, {"i1-nsd", 230 * time.Microsecond}, {"i1-nsd", 190 * time.Microsecond},
		{"i2-knot", 350 * time.Microsecond}, {"i2-knot", 340 * time.Microsecond},
		{"i1-nsd", 220 * time.Microsecond}, {"i1-nsd", 200 * time.Microsecond},
		{"", 0}, {"", 0}, {"", 0},
	}
	var events []report.WatchEvent
	var prev *report.TraceFlow
	var last []measure.Answer
	var current measure.Identity
	for i, s := range seq {
		at := t0.Add(time.Duration(i) * time.Second)
		r := watchRound(at, s.nsid, s.rtt)
		last = r.Answers
		if r.Identity.Instance != "" {
			current = r.Identity
		}
		for _, e := range w.Observe(r) {
			events = append(events, report.FromWatchEvent(id, e))
			if e.Type == catchment.WatchStart || e.Type == catchment.WatchSwitch {
				hops := pathA
				if s.nsid == "i2-knot" {
					hops = pathB
				}
				tp := watchTrace(at.Add(2*time.Millisecond), s.nsid, hops...)
				var c catchment.PathChange
				if prev != nil {
					c = catchment.ComparePaths(prev.CatchmentFlow(id.Target.Addr()), tp.CatchmentFlow(id.Target.Addr()))
				}
				events = append(events, report.NewWatchPathEvent(id, string(e.Type), at.Add(2*time.Millisecond), tp, prev, c, prev != nil))
				prev = &tp
			}
		}
	}
	sum := report.FromWatchSummary(id, w.Summary(t0.Add(10500*time.Millisecond)), last, current, events, 0)
	return events, []report.WatchTarget{report.NewWatchTarget(id, []report.WatchFlow{sum}, nil)}
}

func TestWatchTextGolden(t *testing.T) {
	events, flows := watchFixture()
	var b bytes.Buffer
	for _, e := range events {
		if err := WatchEventText(&b, e, WatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	b.WriteString("\n")
	if err := WatchText(&b, flows, WatchOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "watch.txt", b.Bytes())
	out := b.String()
	for _, want := range []string{
		"03:00:00.000  192.0.2.53 :40429  start    i1-nsd  rtt 0.21 ms",
		"03:00:03.000  192.0.2.53 :40429  switch   i1-nsd → i2-knot  rtt 0.19 → 0.35 ms",
		// The path leaves the old one after r1 (AS64500): hops 4–7 differ.
		"path     to i2-knot leaves the old path after ttl 3 198.51.100.33 AS64500; 4 hops differ",
		"path     to i1-nsd, 5 hops  (as path 64500 → 64520)  upstream 203.0.113.1 from AS64500\n      1  198.51.100.1 AS64500\n",
		"      4  203.0.113.1 AS64520         →  198.51.100.129 AS64510\n",
		"      7  -                           →  192.0.2.53 AS64520_AS64521\n",
		"03:00:09.000  192.0.2.53 :40429  lost     no reply since 03:00:07.000 (3 rounds), last on i1-nsd",
		"i1-nsd     50.0%  5s    5",
		"i2-knot    20.0%  2s    2",
		"no answer  30.0%  3s    3",
		"2 switches, 1 loss, 6 of 20 queries timed out; lost at the end",
		"longest stable run: i1-nsd for 3s (3 rounds, 03:00:00.000 – 03:00:03.000)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("watch text lacks %q:\n%s", want, out)
		}
	}
}

func TestWatchJSONGolden(t *testing.T) {
	events, flows := watchFixture()
	d := report.New(report.KindWatch, report.Tool{Name: "anycheck", Version: "test"}, t0, "vantage-1")
	d.AddSource("198.51.100.10:40429")
	d.Results = flows
	var b bytes.Buffer
	if err := JSON(&b, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "watch.json", b.Bytes())

	b.Reset()
	for _, e := range events {
		if err := JSONL(&b, d.WithVantage(d.EventRecord(e))); err != nil {
			t.Fatal(err)
		}
	}
	if err := JSONL(&b, d.WithVantage(d.ResultRecord("192.0.2.53", flows[0]))); err != nil {
		t.Fatal(err)
	}
	if err := JSONL(&b, d.EndRecord()); err != nil {
		t.Fatal(err)
	}
	golden(t, "watch.jsonl", b.Bytes())
}

// Hostile identities and error texts are escaped in every event line.
func TestWatchTextEscapes(t *testing.T) {
	evil := "x\x1b[2J\u202ey"
	fl := report.FlowDTO{Protocol: "udp", Src: "198.51.100.10", Sport: 1, Dst: "192.0.2.53", Dport: 53}
	for _, e := range []report.WatchEvent{
		{Time: "2026-11-22T03:00:00Z", Type: "start", Target: evil, Flow: fl, Instance: report.InstanceDTO{Name: report.OptString(evil)}},
		{Time: "2026-11-22T03:00:00Z", Type: "switch", Target: "t", Flow: fl, Instance: report.InstanceDTO{Name: report.OptString(evil)}, From: &report.InstanceDTO{Name: report.OptString(evil)}},
		{Time: "2026-11-22T03:00:00Z", Type: "suspect", Target: "t", Flow: fl, Instance: report.InstanceDTO{Name: report.OptString(evil)}, Suspicions: []string{"ra_set"}},
		{Time: "2026-11-22T03:00:00Z", Type: "error", Target: "t", Flow: fl, Detail: evil},
		{Time: "2026-11-22T03:00:00Z", Type: "lost", Target: "t", Flow: fl, Instance: report.InstanceDTO{Name: report.OptString(evil)}, Since: "2026-11-22T03:00:00Z", Misses: 3},
	} {
		var b bytes.Buffer
		if err := WatchEventText(&b, e, WatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(b.String(), "\x1b\u202e") || !strings.Contains(b.String(), `x\x1b[2J\u{202e}y`) {
			t.Errorf("%s: not escaped: %q", e.Type, b.String())
		}
	}
}

// An identity that changes every round has no stable run: the summary
// says so (it said "longest stable run: (other instances)" past the 64
// instances a flow tells apart, and one round of one of them below).
func TestWatchTextIdentityEveryRound(t *testing.T) {
	flow := func(sport int) report.WatchFlow {
		return report.WatchFlow{Flow: report.FlowDTO{Protocol: "udp", Src: "198.51.100.10", Sport: sport, Dst: "192.0.2.53", Dport: 53},
			Started: "2026-11-22T03:00:00.000Z", Ended: "2026-11-22T03:01:40.000Z", DurationMs: 100000, IntervalMs: 1000,
			Rounds: 100, Answered: 100, Switches: 99, LostAfter: 3, ChangedEveryRound: true,
			Instances: []report.WatchInstance{{Instance: report.InstanceDTO{Name: "X000", Source: "nsid"}, WatchShare: report.WatchShare{Rounds: 1, TimeMs: 1000, Share: 0.01}},
				{Instance: report.InstanceDTO{Name: "(other instances)"}, WatchShare: report.WatchShare{Rounds: 37, TimeMs: 37000, Share: 0.37}}},
			LongestStable: &report.WatchRun{Instance: "X042", Start: "2026-11-22T03:00:42.000Z", End: "2026-11-22T03:00:43.000Z", DurationMs: 1000, Rounds: 1}}
	}
	for _, flows := range [][]report.WatchFlow{{flow(40000)}, {flow(40000), flow(40001)}} {
		tg := report.WatchTarget{Input: "192.0.2.53", Target: "192.0.2.53", Port: 53, Transport: "udp", Flows: flows}
		var b bytes.Buffer
		if err := WatchText(&b, []report.WatchTarget{tg}, WatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if out := b.String(); strings.Contains(out, "longest stable run") || !strings.Contains(out, "no stable run: the instance changed on every round") {
			t.Errorf("%d flows:\n%s", len(flows), out)
		}
	}
}

// Over several flows an instance's time is summed over the flows that
// spent it there: 4 flows watched for 1.5 s show "6s" for one instance.
// The column says so, so that it does not read as longer than the watch.
func TestWatchTextFlowTimeColumn(t *testing.T) {
	flow := func(sport int) report.WatchFlow {
		return report.WatchFlow{Flow: report.FlowDTO{Protocol: "udp", Src: "198.51.100.202", Sport: sport, Dst: "192.0.2.53", Dport: 53},
			Started: "2026-11-22T03:00:00.000Z", Ended: "2026-11-22T03:00:01.500Z", DurationMs: 1500, IntervalMs: 500,
			Rounds: 3, Answered: 3, LostAfter: 3,
			Instances:     []report.WatchInstance{{Instance: report.InstanceDTO{Name: "i2-knot", Source: "nsid"}, WatchShare: report.WatchShare{Rounds: 3, TimeMs: 1500, Share: 1}}},
			LongestStable: &report.WatchRun{Instance: "i2-knot", Start: "2026-11-22T03:00:00.000Z", End: "2026-11-22T03:00:01.500Z", DurationMs: 1500, Rounds: 3}}
	}
	tg := report.WatchTarget{Input: "192.0.2.53", Target: "192.0.2.53", Port: 53, Transport: "udp", Flows: []report.WatchFlow{flow(40000), flow(40001), flow(40002), flow(40003)}}
	var b bytes.Buffer
	if err := WatchText(&b, []report.WatchTarget{tg}, WatchOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "  instance  share   flow time  flows  rounds") || !strings.Contains(out, "  i2-knot   100.0%  6s         4      12") {
		t.Errorf("the instances' time over 4 flows:\n%s", out)
	}
}
