package watch_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/probe/probetest"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/trace/tracetest"
	"github.com/anycheck/anycheck/watch"
	"github.com/anycheck/anycheck/whois"
)

// service is the watched address in these tests (nothing leaves the
// process: every socket is an in-memory pipe).
var service = netip.MustParseAddrPort("192.0.2.53:53")

func target() []watch.Target { return []watch.Target{{Input: "ns.example", Addr: service}} }

// twoInstances are instance A and B of a service, 2 and 5 ms away.
func twoInstances() (a, b *probetest.Server) {
	a = &probetest.Server{Hostname: "a.lab", IDServer: "a.lab", NSID: []byte("inst-a"), Delay: 2 * time.Millisecond}
	b = &probetest.Server{Hostname: "b.lab", IDServer: "b.lab", NSID: []byte("inst-b"), Delay: 5 * time.Millisecond}
	return a, b
}

// byRound routes the k-th socket opened (one per round and flow) by the
// k-th letter of pattern: 'a', 'b' or '-' (a server that never answers).
func byRound(pattern string, a, b *probetest.Server) *probetest.Net {
	var mu sync.Mutex
	k := 0
	silent := &probetest.Server{Silent: true}
	return &probetest.Net{Route: func(string, netip.AddrPort, netip.AddrPort) (*probetest.Server, error) {
		mu.Lock()
		defer mu.Unlock()
		k++
		switch pattern[min(k, len(pattern))-1] {
		case 'a':
			return a, nil
		case 'b':
			return b, nil
		}
		return silent, nil
	}}
}

// recorder keeps what the engine hands its callbacks, with times from the
// watch's start.
type recorder struct {
	start  time.Time
	events []string
	rounds []watch.Round
}

func (r *recorder) options(o watch.Options) watch.Options {
	o.OnEvent = func(e watch.Event) {
		at := e.Time.Sub(r.start)
		switch {
		case e.Change != nil && e.Change.From != "":
			r.events = append(r.events, fmt.Sprintf("%v %s %s→%s", at, e.Change.Type, e.Change.From, e.Change.Instance))
		case e.Change != nil:
			r.events = append(r.events, fmt.Sprintf("%v %s %s", at, e.Change.Type, e.Change.Instance))
		case e.Path != nil:
			r.events = append(r.events, fmt.Sprintf("%v path(%s) flow %d", at, e.Path.Trigger, e.Flow.Index))
		}
	}
	o.OnRound = func(rd watch.Round) { r.rounds = append(r.rounds, rd) }
	return o
}

// TestRunSwitches: a flow that goes A A A A B B A A is reported as three
// events at the rounds' exact times, not one per round; every round is
// reported once, all from one source port; the summary credits each
// instance its rounds' time.
func TestRunSwitches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		r := &recorder{start: time.Now()}
		res, err := watch.Run(context.Background(), r.options(watch.Options{
			Targets: target(), Interval: 100 * time.Millisecond, Count: 8, ProbeNet: byRound("aaaabbaa", a, b),
		}))
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(r.start); took != 702*time.Millisecond {
			t.Errorf("8 rounds 100ms apart took %v, want 702ms (the last round's answer 2 ms after 700ms)", took)
		}
		want := []string{"0s start inst-a", "400ms switch inst-a→inst-b", "600ms switch inst-b→inst-a"}
		if !slices.Equal(r.events, want) {
			t.Errorf("events %q, want %q", r.events, want)
		}
		if len(r.rounds) != 8 {
			t.Fatalf("%d rounds reported, want 8", len(r.rounds))
		}
		for k, rd := range r.rounds {
			if rd.Time != r.start.Add(time.Duration(k)*100*time.Millisecond) || rd.Flow.Port != probetest.FirstEphemeralPort || !rd.Replied || rd.Summary != nil {
				t.Errorf("round %d: at %v from port %d, replied %v, summary %v; want at %v from %d, replied, no summary",
					k, rd.Time.Sub(r.start), rd.Flow.Port, rd.Replied, rd.Summary, time.Duration(k)*100*time.Millisecond, probetest.FirstEphemeralPort)
			}
		}
		if rd := r.rounds[4]; rd.Instance != "inst-b" || rd.RTT != 5*time.Millisecond {
			t.Errorf("round 4 on %q with RTT %v, want inst-b at 5ms", rd.Instance, rd.RTT)
		}
		if len(a.Queries()) != 12 || len(b.Queries()) != 4 {
			t.Errorf("%d queries to A and %d to B, want 12 and 4", len(a.Queries()), len(b.Queries()))
		}
		if res.Start != r.start || !res.End.IsZero() || res.Interrupted || len(res.Targets) != 1 || len(res.Targets[0].Flows) != 1 || res.Targets[0].Split != nil {
			t.Fatalf("result %+v", res)
		}
		f := res.Targets[0].Flows[0]
		s := f.Summary
		if s.Rounds != 8 || s.Switches != 2 || s.Duration() != 800*time.Millisecond || len(s.Instances) != 2 ||
			s.Instances[0].Identity.Instance != "inst-a" || s.Instances[0].Time != 600*time.Millisecond || s.Instances[1].Time != 200*time.Millisecond {
			t.Errorf("summary %+v", s)
		}
		if f.Current.Instance != "inst-a" || len(f.Answers) != 2 || f.Flow.Source.Port() != probetest.FirstEphemeralPort {
			t.Errorf("flow %+v: want it on inst-a with the last round's two answers", f)
		}
	})
}

// TestRunLostAndBack: three silent rounds make a loss, dated from the
// first of them; the next answer is the flow coming back.
func TestRunLostAndBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		r := &recorder{start: time.Now()}
		res, err := watch.Run(context.Background(), r.options(watch.Options{
			Targets: target(), Interval: time.Second, Timeout: 200 * time.Millisecond, Count: 6, ProbeNet: byRound("a---aa", a, b),
		}))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"0s start inst-a", "3s lost inst-a", "4s back inst-a"}
		if !slices.Equal(r.events, want) {
			t.Errorf("events %q, want %q", r.events, want)
		}
		if rd := r.rounds[3]; !rd.Lost || rd.Replied || rd.Instance != "" {
			t.Errorf("the third silent round: %+v, want lost without a reply", rd)
		}
		s := res.Targets[0].Flows[0].Summary
		if s.Losses != 1 || s.Missed != 3 || s.Timeouts != 6 || s.NoAnswer.Time != 3*time.Second {
			t.Errorf("summary: %d losses, %d missed rounds, %d timeouts, %v without answer; want 1, 3, 6, 3s", s.Losses, s.Missed, s.Timeouts, s.NoAnswer.Time)
		}
	})
}

// TestRunDuration: Duration ends the watch at its deadline, which is the
// end of the watched time; a cancelled context ends it too, as an
// interruption, at that moment.
func TestRunDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := twoInstances()
		start := time.Now()
		res, err := watch.Run(context.Background(), watch.Options{
			Targets: target(), Interval: 100 * time.Millisecond, Duration: 350 * time.Millisecond, ProbeNet: byRound("a", a, nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		s := res.Targets[0].Flows[0].Summary
		if time.Since(start) != 350*time.Millisecond || res.Interrupted || res.End != start.Add(350*time.Millisecond) || s.Rounds != 4 || s.Duration() != 350*time.Millisecond {
			t.Errorf("after %v: interrupted %v, end %v, %d rounds over %v; want 350ms, not interrupted, 4 rounds over 350ms",
				time.Since(start), res.Interrupted, res.End.Sub(start), s.Rounds, s.Duration())
		}

		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		start = time.Now()
		res, err = watch.Run(ctx, watch.Options{Targets: target(), Interval: 100 * time.Millisecond, ProbeNet: byRound("a", a, nil)})
		if err != nil {
			t.Fatal(err)
		}
		s = res.Targets[0].Flows[0].Summary
		if !res.Interrupted || res.End != start.Add(250*time.Millisecond) || s.Rounds != 3 || s.Duration() != 250*time.Millisecond {
			t.Errorf("cancelled: interrupted %v, end %v, %d rounds over %v; want interrupted at 250ms after 3 rounds", res.Interrupted, res.End.Sub(start), s.Rounds, s.Duration())
		}
	})
}

// TestRunFlowsSplit: flows leave from Sport up, each keeps its port, and
// flows of one target on different instances are a split.
func TestRunFlowsSplit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		nw := &probetest.Net{Route: func(_ string, local, _ netip.AddrPort) (*probetest.Server, error) {
			if local.Port() == 41001 {
				return b, nil
			}
			return a, nil
		}}
		r := &recorder{start: time.Now()}
		res, err := watch.Run(context.Background(), r.options(watch.Options{
			Targets: target(), Flows: 3, Sport: 41000, Interval: 100 * time.Millisecond, Count: 2, ProbeNet: nw,
		}))
		if err != nil {
			t.Fatal(err)
		}
		ports := map[int]uint16{}
		for _, rd := range r.rounds {
			if p, ok := ports[rd.Flow.Index]; ok && p != rd.Flow.Port {
				t.Errorf("flow %d moved from port %d to %d", rd.Flow.Index, p, rd.Flow.Port)
			}
			ports[rd.Flow.Index] = rd.Flow.Port
		}
		if fmt.Sprint(ports) != "map[0:41000 1:41001 2:41002]" || len(r.rounds) != 6 {
			t.Errorf("%d rounds from ports %v, want 6 from 41000-41002", len(r.rounds), ports)
		}
		sp := res.Targets[0].Split
		if sp == nil || !sp.Split || len(sp.Instances) != 2 || sp.Instances[0].Instance != "inst-a" || sp.Instances[0].Count != 2 {
			t.Errorf("split %+v, want inst-a on 2 flows and inst-b on 1", sp)
		}
	})
}

// slowFlow delays every reply read on the sockets of one source port by
// delay, and the others' by quick: that flow's rounds end long after the
// others'.
type slowFlow struct {
	probe.Network
	port         uint16
	delay, quick time.Duration
}

type slowConn struct {
	net.Conn
	delay time.Duration
}

func (c slowConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	time.Sleep(c.delay)
	return n, err
}

func (s slowFlow) ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	c, err := s.Network.ListenUDP(ctx, laddr, raddr)
	if err != nil {
		return c, err
	}
	if laddr.Port() != s.port {
		return slowConn{c, s.quick}, nil
	}
	return slowConn{c, s.delay}, nil
}

// TestRunEventsInTimeOrder: a slow flow's start (dated when its queries
// left) is handed on before the quick flows' traces, which were made while
// it waited for its answers: events come in time order over all flows.
func TestRunEventsInTimeOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &tracetest.Net{Hops: tracetest.RoutersAt("198.51.100.1", "203.0.113.1"), Dest: tracetest.Dest{RTT: time.Millisecond, Hostname: "a.lab", NSID: "inst-a"}}
		r := &recorder{start: time.Now()}
		_, err := watch.Run(context.Background(), r.options(watch.Options{
			Targets: target(), Flows: 3, Sport: 41000, Interval: time.Second, Count: 1, Trace: true,
			ProbeNet: slowFlow{Network: fake, port: 41002, delay: 60 * time.Millisecond, quick: 5 * time.Millisecond}, TraceNet: fake,
		}))
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range r.events {
			kinds = append(kinds, strings.Fields(e)[1])
		}
		if got := strings.Join(kinds, ","); got != "start,start,start,path(start),path(start),path(start)" || !strings.HasPrefix(r.events[2], "0s start") {
			t.Errorf("events %q: want the three starts, then the three traces", r.events)
		}
	})
}

// TestRunTracePathChange: with Trace, a flow is traced from its own port
// after its start and after each switch; each trace's origins give its AS
// path, and a trace after a switch says where the new path leaves the old.
func TestRunTracePathChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &tracetest.Switching{
			Pattern: "aaabba",
			A:       &tracetest.Net{Hops: tracetest.RoutersAt("198.51.100.1", "198.51.100.33", "203.0.113.1"), Dest: tracetest.Dest{RTT: time.Millisecond, Hostname: "a.lab", NSID: "inst-a"}},
			B:       &tracetest.Net{Hops: tracetest.RoutersAt("198.51.100.1", "198.51.100.33", "198.51.100.129", "203.0.113.65"), Dest: tracetest.Dest{RTT: 2 * time.Millisecond, Hostname: "b.lab", NSID: "inst-b"}},
		}
		table := asOrigins(map[string]uint32{"198.51.100.1": 64500, "198.51.100.33": 64500, "203.0.113.1": 64520, "198.51.100.129": 64510, "203.0.113.65": 64521})
		var paths []watch.Event
		var rounds []watch.Round
		_, err := watch.Run(context.Background(), watch.Options{
			Targets: target(), Interval: 100 * time.Millisecond, Count: 6, Trace: true, Resolver: table,
			ProbeNet: nw, TraceNet: nw,
			OnEvent: func(e watch.Event) {
				if e.Path != nil {
					paths = append(paths, e)
				}
			},
			OnRound: func(r watch.Round) { rounds = append(rounds, r) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 3 {
			t.Fatalf("%d traces, want one after the start and one after each of the two switches", len(paths))
		}
		first, second := paths[0].Path, paths[1].Path
		if first.Trigger != catchment.WatchStart || first.Previous != nil || fmt.Sprint(first.Facts.ASPath) != "[64500 64520]" || first.Lookup.Origins == nil {
			t.Errorf("first trace: trigger %s, previous %v, AS path %v", first.Trigger, first.Previous, first.Facts.ASPath)
		}
		var changed []int
		for _, h := range second.Change.Changed {
			changed = append(changed, h.TTL)
		}
		if second.Trigger != catchment.WatchSwitch || second.Previous == nil || second.Change.Part != 2 || fmt.Sprint(changed) != "[3 4 5]" ||
			fmt.Sprint(second.Facts.ASPath) != "[64500 64510 64521]" {
			t.Errorf("trace after the switch: trigger %s, parts after ttl %d, changed %v, AS path %v; want switch, 2, [3 4 5], [64500 64510 64521]",
				second.Trigger, second.Change.Part, changed, second.Facts.ASPath)
		}
		for _, e := range paths {
			if e.Path.Trace.Flow.Src.Port() != rounds[0].Flow.Port || e.Flow.Port != rounds[0].Flow.Port {
				t.Errorf("a trace from port %d, the flow is %d", e.Path.Trace.Flow.Src.Port(), rounds[0].Flow.Port)
			}
		}
	})
}

// TestRunTracePermission: a trace without privilege ends the watch with
// its error.
func TestRunTracePermission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := twoInstances()
		start := time.Now()
		_, err := watch.Run(context.Background(), watch.Options{
			Targets: target(), Interval: 100 * time.Millisecond, Trace: true, ProbeNet: byRound("a", a, nil),
			TraceNet: &tracetest.Net{OpenErr: fmt.Errorf("open raw socket: %w", trace.ErrPermission)},
		})
		if !errors.Is(err, trace.ErrPermission) || time.Since(start) != 2*time.Millisecond {
			t.Errorf("after %v: %v; want trace.ErrPermission after the first round's 2 ms", time.Since(start), err)
		}
	})
}

// TestRunSharedBudget: the budget is the whole watch's: eight flows
// starting on the same tick do not send their 16 queries at once.
func TestRunSharedBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := twoInstances()
		start := time.Now()
		_, err := watch.Run(context.Background(), watch.Options{
			Targets: target(), Flows: 8, Interval: time.Second, Count: 1, Budget: trace.NewBudget(10), ProbeNet: byRound("a", a, nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		// A burst of 2, then 14 queries at 10 a second.
		if took := time.Since(start); took != 1400*time.Millisecond+a.Delay {
			t.Errorf("16 queries within 10 a second took %v, want 1.4s and the last answer's 2ms", took)
		}
	})
}

// TestRunRoundSummaries: with RoundSummaries each round carries the flow's
// summary at the round's own time — counters a monitor exports from it
// only grow.
func TestRunRoundSummaries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		r := &recorder{start: time.Now()}
		_, err := watch.Run(context.Background(), r.options(watch.Options{
			Targets: target(), Interval: 100 * time.Millisecond, Count: 5, Timeout: 50 * time.Millisecond, RoundSummaries: true,
			ProbeNet: byRound("ab-ab", a, b),
		}))
		if err != nil {
			t.Fatal(err)
		}
		// a→b, a silent round, b→a, a→b.
		switches := []int{0, 1, 1, 2, 3}
		for k, rd := range r.rounds {
			s := rd.Summary
			if s == nil || s.Rounds != k+1 || s.Duration() != time.Duration(k)*100*time.Millisecond || s.Switches != switches[k] {
				t.Errorf("round %d: summary %+v; want %d rounds over %v, %d switches", k, s, k+1, time.Duration(k)*100*time.Millisecond, switches[k])
			}
		}
	})
}

// TestRunBadOptions: options that cannot make a watch are errors naming
// the option, before anything is sent.
func TestRunBadOptions(t *testing.T) {
	for _, c := range []struct {
		o    watch.Options
		want string
	}{
		{watch.Options{Targets: target(), Interval: 10 * time.Millisecond}, "interval 10ms"},
		{watch.Options{Targets: target(), Interval: time.Second, Flows: 2, Sport: 65535}, "source port 65535 with 2 flows"},
		{watch.Options{Targets: target(), Interval: time.Second, Flows: 1000}, "1000 flows"},
		{watch.Options{Targets: []watch.Target{{Input: "x"}}, Interval: time.Second}, `target "x"`},
	} {
		_, err := watch.Run(context.Background(), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %q", c.o, err, c.want)
		}
	}
}

// asOrigins is a fixed ASN source: each address's origin AS.
func asOrigins(table map[string]uint32) whois.Fixed {
	out := whois.Fixed{}
	for s, as := range table {
		a := netip.MustParseAddr(s)
		out[a] = whois.Origin{Addr: a, ASNs: []uint32{as}, Source: "test"}
	}
	return out
}
