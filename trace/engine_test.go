package trace_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/trace/tracetest"
)

var (
	src6 = netip.MustParseAddr("2001:db8::10")
	dst4 = netip.MustParseAddr("192.0.2.53")
	dst6 = netip.MustParseAddr("2001:db8:53::53")
)

func target(v6 bool) netip.Addr {
	if v6 {
		return dst6
	}
	return dst4
}

// inBubble runs a subtest in a synctest bubble. Every test of the engine
// does: the scheduler's timers and the fake network's delays run on the
// bubble's clock, so times are exact and a test asserts them without
// slack for a loaded machine.
func inBubble(f func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) { synctest.Test(t, f) }
}

func runFake(t *testing.T, n *tracetest.Net, o trace.Options) (trace.Path, []int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if !o.Target.IsValid() {
		o.Target = dst4
	}
	o.Net = n
	var streamed []int
	user := o.OnHop
	o.OnHop = func(h trace.Hop) {
		streamed = append(streamed, h.TTL)
		if user != nil {
			user(h)
		}
	}
	p, err := trace.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	checkPathShape(t, p, o)
	return p, streamed
}

// lastAnswer is when the last reply of p came back.
func lastAnswer(p trace.Path) time.Time {
	var last time.Time
	for _, h := range p.Hops {
		for _, pr := range h.Probes {
			if pr.Reply != nil && pr.Sent.Add(pr.Reply.RTT).After(last) {
				last = pr.Sent.Add(pr.Reply.RTT)
			}
		}
	}
	return last
}

// endsAtLastAnswer: a trace where every hop kept answered ends the moment
// its last answer arrives, waiting for nothing else (TTLs past the
// destination, probes never sent).
func endsAtLastAnswer(t *testing.T, p trace.Path) {
	t.Helper()
	if end, last := p.Started.Add(p.Elapsed), lastAnswer(p); !end.Equal(last) {
		t.Errorf("ended %v after its last answer (%v into the trace)", end.Sub(last), last.Sub(p.Started))
	}
}

// checkPathShape asserts what every Path must satisfy: hops consecutive
// from FirstTTL, probes in order, replies only on sent probes.
func checkPathShape(t *testing.T, p trace.Path, o trace.Options) {
	t.Helper()
	first := o.FirstTTL
	if first == 0 {
		first = 1
	}
	for i, h := range p.Hops {
		if h.TTL != first+i {
			t.Fatalf("hop %d has ttl %d, want %d", i, h.TTL, first+i)
		}
		for j, pr := range h.Probes {
			if j > 0 && pr.Seq <= h.Probes[j-1].Seq {
				t.Fatalf("ttl %d: probes out of order", h.TTL)
			}
			if pr.Sent.IsZero() {
				t.Fatalf("ttl %d probe %d: no send time", h.TTL, pr.Seq)
			}
		}
	}
	if p.Reached && (p.DestTTL == 0 || p.Hops[len(p.Hops)-1].TTL != p.DestTTL) {
		t.Fatalf("reached at %d but last hop is %d", p.DestTTL, p.Hops[len(p.Hops)-1].TTL)
	}
}

func hopFroms(h trace.Hop) []string {
	var out []string
	for _, pr := range h.Probes {
		if pr.Reply == nil {
			out = append(out, "*")
		} else {
			out = append(out, pr.Reply.From.String())
		}
	}
	return out
}

func TestRunStopsAtDestination(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), inBubble(func(t *testing.T) {
			n := &tracetest.Net{Hops: tracetest.Routers(3, time.Millisecond), Dest: tracetest.Dest{RTT: 4 * time.Millisecond, Hostname: "fake-inst", NSID: "fake-nsid"}}
			p, streamed := runFake(t, n, trace.Options{Target: target(v6), Rate: 1000, Wait: 5 * time.Second})
			if !p.Reached || p.DestTTL != 4 || p.Stop != trace.StopReached || len(p.Hops) != 4 {
				t.Fatalf("reached %v at %d stop %s with %d hops, want reached at 4", p.Reached, p.DestTTL, p.Stop, len(p.Hops))
			}
			if fmt.Sprint(streamed) != "[1 2 3 4]" {
				t.Errorf("streamed %v", streamed)
			}
			for i, h := range p.Hops[:3] {
				want := tracetest.RouterAddr(v6, i+1).String()
				if got := hopFroms(h); fmt.Sprint(got) != fmt.Sprint([]string{want, want, want}) {
					t.Errorf("ttl %d answered by %v, want %s", h.TTL, got, want)
				}
			}
			for _, pr := range p.Hops[3].Probes {
				if pr.Reply == nil || pr.Reply.Kind != trace.ReplyDNS || pr.Reply.DNS == nil {
					t.Fatalf("destination probe %d: %+v", pr.Seq, pr.Reply)
				}
			}
			if p.Instance == nil || p.Instance.NSID != "fake-nsid" || p.Instance.HostnameBind != "fake-inst" || len(p.Answers) != 3 {
				t.Errorf("instance %+v from %d answers", p.Instance, len(p.Answers))
			}
			// Past the destination only probes sent before its first
			// answer came back went out (at most the window's), and none
			// was waited for.
			answered := p.Hops[3].Probes[0].Sent.Add(p.Hops[3].Probes[0].Reply.RTT)
			for _, pr := range p.Hops[3].Probes {
				answered = minTime(answered, pr.Sent.Add(pr.Reply.RTT))
			}
			beyond := 0
			for _, s := range n.Sends() {
				if s.TTL > 4 {
					beyond++
					if s.At.After(answered) {
						t.Errorf("ttl %d probe %d sent %v after the destination answered at 4", s.TTL, s.Seq, s.At.Sub(answered))
					}
				}
				// Before the destination answers the frontier is below
				// it, so no TTL beyond 4-1+Window is sent: Window-1 TTLs
				// past it.
				if s.TTL > 4-1+trace.DefaultWindow {
					t.Errorf("ttl %d sent: beyond the window", s.TTL)
				}
			}
			if limit := trace.DefaultQueries * (trace.DefaultWindow - 1); beyond > limit {
				t.Errorf("%d probes past the destination, more than the window's %d", beyond, limit)
			}
			endsAtLastAnswer(t, p)
		}))
	}
}

func TestRunProtocols(t *testing.T) {
	for _, proto := range []trace.Protocol{trace.UDP, trace.ICMP, trace.TCP} {
		for _, port := range []uint16{53, 33434} {
			if proto == trace.ICMP && port != 53 {
				continue
			}
			for _, v6 := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s-%d-v6=%v", proto, port, v6), inBubble(func(t *testing.T) {
					n := &tracetest.Net{Hops: tracetest.Routers(2, time.Millisecond), Dest: tracetest.Dest{RTT: 3 * time.Millisecond, Hostname: "fake-inst", NSID: "fake-nsid"}}
					p, _ := runFake(t, n, trace.Options{Target: target(v6), Proto: proto, Port: port, Rate: 1000, Wait: 5 * time.Second})
					if !p.Reached || p.DestTTL != 3 || len(p.Hops) != 3 {
						t.Fatalf("reached %v at %d with %d hops (stop %s)", p.Reached, p.DestTTL, len(p.Hops), p.Stop)
					}
					want := map[trace.Protocol]trace.ReplyKind{trace.UDP: trace.ReplyUnreachable, trace.ICMP: trace.ReplyEcho, trace.TCP: trace.ReplySynAck}[proto]
					if proto == trace.UDP && port == 53 {
						want = trace.ReplyDNS
					}
					for _, pr := range p.Hops[2].Probes {
						if pr.Reply == nil || pr.Reply.Kind != want || pr.Reply.From != target(v6) {
							t.Fatalf("destination reply %+v, want %s from %s", pr.Reply, want, target(v6))
						}
					}
					// The UDP/53 probes are the identity queries; a TCP/53
					// identity needs a connection, which is the caller's to
					// open (internal/cli) once the trace has ended.
					if proto == trace.UDP && port == 53 {
						if p.Instance == nil || p.Instance.NSID != "fake-nsid" || p.Instance.HostnameBind != "fake-inst" {
							t.Errorf("instance %+v, want fake-nsid / fake-inst from the probes' answers", p.Instance)
						}
					} else if p.Instance != nil {
						t.Errorf("instance %+v from a %s/%d trace", p.Instance, proto, port)
					}
				}))
			}
		}
	}
}

func TestRunAdaptiveWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hops := tracetest.Routers(4, time.Millisecond)
		hops[1].Silent = true
		n := &tracetest.Net{Hops: hops, Dest: tracetest.Dest{RTT: 5 * time.Millisecond}}
		p, streamed := runFake(t, n, trace.Options{Rate: 1000, Wait: 10 * time.Second})
		if !p.Reached || p.DestTTL != 5 {
			t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
		}
		if got := hopFroms(p.Hops[1]); fmt.Sprint(got) != "[* * *]" {
			t.Errorf("silent hop shows %v", got)
		}
		if p.Hops[1].RateLimited {
			t.Error("an all-silent hop is not rate limiting")
		}
		if fmt.Sprint(streamed) != "[1 2 3 4 5]" {
			t.Errorf("streamed %v", streamed)
		}
		// Hops 3-5 answered within 5 ms, so hop 2 is given up MinWait
		// (twice 5 ms is less) after its last probe, not after the 10 s
		// Wait; the trace ends then (after the scheduler's read grace).
		last := p.Hops[1].Probes[len(p.Hops[1].Probes)-1].Sent
		if end, want := p.Started.Add(p.Elapsed), last.Add(trace.DefaultMinWait+trace.ReadGrace); !end.Equal(want) {
			t.Errorf("ended %v after hop 2's last probe, want MinWait %v + read grace %v", end.Sub(last), trace.DefaultMinWait, trace.ReadGrace)
		}
	})
}

// TestRunSilentHopRule: a silent hop is given up SilentFactor × the
// largest RTT seen at or beyond it after its probes left (a slow hop
// beyond it counts, not only the destination), once everything beyond it
// answered; never sooner than MinWait.
func TestRunSilentHopRule(t *testing.T) {
	k := time.Duration(trace.SilentFactor)
	cases := []struct {
		name    string
		hop3    time.Duration // RTT of the hop beyond the silent one
		dest    time.Duration
		minWait time.Duration
		want    time.Duration // how long after its probes hop 2 is given up
	}{
		{"destination slowest", 75 * time.Millisecond, 150 * time.Millisecond, 10 * time.Millisecond, k * 150 * time.Millisecond},
		// Hop 3 answers after the destination (its ICMP error took a
		// slow path): its RTT is the reference.
		{"slow hop beyond", 225 * time.Millisecond, 150 * time.Millisecond, 10 * time.Millisecond, k * 225 * time.Millisecond},
		{"min wait", 2 * time.Millisecond, 3 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, inBubble(func(t *testing.T) {
			hops := []tracetest.Hop{{RTT: time.Millisecond}, {Silent: true}, {RTT: c.hop3}}
			n := &tracetest.Net{Hops: hops, Dest: tracetest.Dest{RTT: c.dest}}
			var gaveUp time.Time
			p, _ := runFake(t, n, trace.Options{Wait: 5 * time.Second, MinWait: c.minWait, OnHop: func(h trace.Hop) {
				if h.TTL == 2 {
					gaveUp = time.Now()
				}
			}})
			if !p.Reached || p.DestTTL != 4 {
				t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
			}
			if got := hopFroms(p.Hops[2]); fmt.Sprint(got) == "[* * *]" {
				t.Fatalf("hop 3 (rtt %v) shows %v: given up before it answered", c.hop3, got)
			}
			last := p.Hops[1].Probes[len(p.Hops[1].Probes)-1].Sent
			if waited := gaveUp.Sub(last); waited < c.want {
				t.Errorf("hop 2 given up %v after its last probe, before %v", waited, c.want)
			}
			// Not later either: the old rule (5× the RTT) or waiting for
			// Wait would be far beyond it. The scheduler parks ReadGrace
			// for replies already in its sockets before it gives up.
			if waited := gaveUp.Sub(last); waited > c.want+trace.ReadGrace {
				t.Errorf("hop 2 given up %v after its last probe, want %v", waited, c.want)
			}
		}))
	}
}

func TestRunWaitBoundsSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &tracetest.Net{Hops: []tracetest.Hop{{Silent: true}, {Silent: true}, {Silent: true}}, Dest: tracetest.Dest{Silent: true}}
		p, _ := runFake(t, n, trace.Options{Rate: 1000, Wait: 200 * time.Millisecond, MaxTTL: 3})
		if p.Reached || p.Stop != trace.StopMaxTTL || len(p.Hops) != 3 {
			t.Fatalf("reached %v stop %s hops %d, want max-ttl with 3 silent hops", p.Reached, p.Stop, len(p.Hops))
		}
		// Given up Wait after the last probe (and the read grace), not before.
		last := p.Hops[2].Probes[len(p.Hops[2].Probes)-1].Sent
		if end, want := p.Started.Add(p.Elapsed), last.Add(200*time.Millisecond+trace.ReadGrace); !end.Equal(want) {
			t.Errorf("ended %v after the last probe, want Wait (200ms) + read grace", end.Sub(last))
		}
	})
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// TestRunPacing: probes to different TTLs leave back to back, so a trace
// where everything answers takes about one round trip to the destination
// however many probes it sends; the probes of one TTL (one router) stay
// trace.TTLSpread apart; the packet budget caps the rate.
func TestRunPacing(t *testing.T) {
	t.Run("back to back", inBubble(func(t *testing.T) {
		const rtt = 80 * time.Millisecond
		n := &tracetest.Net{Hops: tracetest.Routers(9, rtt/10), Dest: tracetest.Dest{RTT: rtt}}
		p, _ := runFake(t, n, trace.Options{Wait: 5 * time.Second, Queries: 10})
		if !p.Reached || p.DestTTL != 10 {
			t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
		}
		// The 100 probes up to the destination took 100 ms at the old
		// 1 ms gap between any two packets; now the last probe to the
		// destination leaves 9 × TTLSpread after the first probe of the
		// trace.
		sends := n.Sends()
		var last time.Time
		for _, s := range sends {
			if s.TTL == 10 && s.At.After(last) {
				last = s.At
			}
		}
		if took := last.Sub(sends[0].At); took > 9*trace.TTLSpread {
			t.Errorf("the last probe to the destination left %v after the first probe", took)
		}
		checkSpread(t, sends)
	}))
	t.Run("budget", inBubble(func(t *testing.T) {
		const pps = 50
		budget := trace.NewBudget(pps)
		n := &tracetest.Net{Hops: tracetest.Routers(2, time.Millisecond), Dest: tracetest.Dest{RTT: 2 * time.Millisecond}}
		p, _ := runFake(t, n, trace.Options{Budget: budget, Wait: 5 * time.Second})
		if !p.Reached || p.DestTTL != 3 {
			t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
		}
		checkBudget(t, n.Sends(), pps, budget.Burst())
		checkSpread(t, n.Sends())
	}))
	t.Run("shared budget", inBubble(func(t *testing.T) {
		// Two traces share one budget: together they stay within it.
		const pps = 100
		budget := trace.NewBudget(pps)
		nets := []*tracetest.Net{
			{Hops: tracetest.Routers(4, time.Millisecond), Dest: tracetest.Dest{RTT: time.Millisecond}},
			{Hops: tracetest.Routers(4, time.Millisecond), Dest: tracetest.Dest{RTT: time.Millisecond}},
		}
		done := make(chan trace.Path, 2)
		for _, n := range nets {
			go func() {
				o := trace.Options{Target: dst4, Net: n, Budget: budget, Wait: 5 * time.Second}
				p, err := trace.Run(context.Background(), o)
				if err != nil {
					t.Error(err)
				}
				done <- p
			}()
		}
		for range nets {
			if p := <-done; !p.Reached {
				t.Errorf("a trace sharing the budget did not reach its destination: %s", p.Stop)
			}
		}
		all := append(nets[0].Sends(), nets[1].Sends()...)
		slices.SortFunc(all, func(a, b tracetest.Send) int { return a.At.Compare(b.At) })
		checkBudget(t, all, pps, budget.Burst())
	}))
	t.Run("budget that grants nothing", inBubble(func(t *testing.T) {
		n := &tracetest.Net{Hops: tracetest.Routers(2, time.Millisecond)}
		_, err := trace.Run(context.Background(), trace.Options{Target: dst4, Net: n, Budget: rate.NewLimiter(10, 0)})
		if err == nil || !strings.Contains(err.Error(), "grants no packet") {
			t.Errorf("a budget with burst 0: %v", err)
		}
	}))
}

// checkSpread: two probes to one TTL are at least TTLSpread apart.
func checkSpread(t *testing.T, sends []tracetest.Send) {
	t.Helper()
	last := map[int]tracetest.Send{}
	for _, s := range sends {
		if prev, ok := last[s.TTL]; ok {
			if gap := s.At.Sub(prev.At); gap < trace.TTLSpread {
				t.Errorf("ttl %d probes %d and %d only %v apart", s.TTL, prev.Seq, s.Seq, gap)
			}
		}
		last[s.TTL] = s
	}
}

// checkBudget: no more than burst + pps × elapsed packets by any send,
// exactly (the bubble's clock has no jitter; 1e-6 packets absorbs the
// limiter's float arithmetic).
func checkBudget(t *testing.T, sends []tracetest.Send, pps float64, burst int) {
	t.Helper()
	if len(sends) <= burst {
		t.Fatalf("%d sends: the test needs more than the burst of %d", len(sends), burst)
	}
	for i, s := range sends {
		allowed := float64(burst) + pps*s.At.Sub(sends[0].At).Seconds() + 1e-6
		if float64(i+1) > allowed {
			t.Errorf("send %d (ttl %d) at +%v: more than %d + %v/s", i+1, s.TTL, s.At.Sub(sends[0].At), burst, pps)
		}
	}
}

// TestRunIgnoresStrays: errors quoting another tracer's probe, another
// destination or a tag never sent, and DNS answers from a spoofer, all
// arriving before the real answers, are never taken for them. In socket
// mode the strays are those the kernel would queue on the flow's socket
// (its source port matches): errors about another destination.
func TestRunIgnoresStrays(t *testing.T) {
	for _, mode := range []trace.Mode{trace.ModeRaw, trace.ModeSocket} {
		for _, v6 := range []bool{false, true} {
			for _, proto := range []trace.Protocol{trace.UDP, trace.ICMP, trace.TCP} {
				if proto == trace.TCP && mode == trace.ModeSocket {
					continue
				}
				t.Run(fmt.Sprintf("%s-%s-v6=%v", mode, proto, v6), inBubble(func(t *testing.T) {
					testIgnoresStrays(t, mode, proto, v6)
				}))
			}
		}
	}
}

func testIgnoresStrays(t *testing.T, mode trace.Mode, proto trace.Protocol, v6 bool) {
	n := &tracetest.Net{Hops: tracetest.Routers(3, time.Millisecond), Dest: tracetest.Dest{RTT: 4 * time.Millisecond, Hostname: "fake-inst"}, Strays: true}
	p, _ := runFake(t, n, trace.Options{Target: target(v6), Proto: proto, Mode: mode, Rate: 1000, Wait: 5 * time.Second})
	if !p.Reached || p.DestTTL != 4 {
		t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
	}
	for i, h := range p.Hops[:3] {
		want := tracetest.RouterAddr(v6, i+1)
		for _, pr := range h.Probes {
			if pr.Reply == nil || pr.Reply.From != want || pr.Reply.NAT {
				t.Errorf("ttl %d: reply %+v, want a clean one from %s (sent %v, elapsed %v)", h.TTL, pr.Reply, want, pr.Sent.Sub(p.Started), p.Elapsed)
			}
		}
	}
	if p.Instance != nil && p.Instance.HostnameBind != "fake-inst" {
		t.Errorf("instance %+v: a spoofed answer was taken", p.Instance)
	}
}

func TestRunInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hops := tracetest.Routers(2, time.Millisecond)
		hops = append(hops, tracetest.Hop{Silent: true}, tracetest.Hop{Silent: true})
		n := &tracetest.Net{Hops: hops, Dest: tracetest.Dest{Silent: true}}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var cancelled time.Time
		p, err := trace.Run(ctx, trace.Options{Target: dst4, Net: n, Rate: 1000, Wait: 10 * time.Second, MaxTTL: 6, OnHop: func(h trace.Hop) {
			if h.TTL == 2 {
				cancelled = time.Now()
				cancel()
			}
		}})
		if err != nil {
			t.Fatalf("interrupted run returned error %v, want a partial path", err)
		}
		if p.Stop != trace.StopInterrupted || p.Reached {
			t.Fatalf("stop %s reached %v, want interrupted", p.Stop, p.Reached)
		}
		// It stops at once: no probe's deadline is waited for.
		if d := time.Since(cancelled); d != 0 {
			t.Errorf("the run returned %v after it was cancelled", d)
		}
		checkPathShape(t, p, trace.Options{})
		if len(p.Hops) < 2 {
			t.Fatalf("%d hops kept, want at least the 2 that answered", len(p.Hops))
		}
		for _, h := range p.Hops[:2] {
			if fmt.Sprint(hopFroms(h)) == "[* * *]" {
				t.Errorf("answered hop %d lost its replies", h.TTL)
			}
		}
	})
}

func TestRunStreamsInTTLOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hops := []tracetest.Hop{{RTT: 25 * time.Millisecond}, {RTT: time.Millisecond}, {RTT: 2 * time.Millisecond}}
		n := &tracetest.Net{Hops: hops, Dest: tracetest.Dest{RTT: 3 * time.Millisecond}}
		var got []int
		p, _ := runFake(t, n, trace.Options{Rate: 1000, Wait: 5 * time.Second, OnHop: func(h trace.Hop) {
			got = append(got, h.TTL)
			if fmt.Sprint(hopFroms(h)) == "[* * *]" {
				t.Errorf("hop %d streamed before its slow replies arrived", h.TTL)
			}
		}})
		if fmt.Sprint(got) != "[1 2 3 4]" || !p.Reached {
			t.Fatalf("streamed %v (reached %v)", got, p.Reached)
		}
	})
}

// TestRunRateLimitedHop: "(rate-limited?)" needs evidence: a hop that
// answered with ICMP errors and then went quiet. A destination whose DNS
// service answered one query of three is not a rate-limited router.
func TestRunRateLimitedHop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hops := tracetest.Routers(3, time.Millisecond)
		hops[1].Answers = func(seq int) bool { return seq == 0 }
		n := &tracetest.Net{Hops: hops, Dest: tracetest.Dest{RTT: 4 * time.Millisecond, Answers: func(seq int) bool { return seq == 0 }}}
		p, _ := runFake(t, n, trace.Options{Rate: 1000, Wait: 5 * time.Second, MinWait: 100 * time.Millisecond})
		if !p.Reached || len(p.Hops) != 4 || fmt.Sprint(hopFroms(p.Hops[3])) != "[192.0.2.53 * *]" {
			t.Fatalf("reached %v, hops %d, destination %v", p.Reached, len(p.Hops), hopFroms(p.Hops[len(p.Hops)-1]))
		}
		for _, h := range p.Hops {
			if h.RateLimited != (h.TTL == 2) {
				t.Errorf("ttl %d rate limited = %v (%v)", h.TTL, h.RateLimited, hopFroms(h))
			}
		}
	})
}

// TestRunTCPChallengeACK: a TCP server holding the half-open connection of
// the first SYN (the tracer's RST never reached it) answers the next SYN
// on the 4-tuple with an ACK acknowledging the first, and the one after
// with nothing. The ACK is the destination's answer to the probe that
// caused it; the silence that follows is no ICMP rate limit.
func TestRunTCPChallengeACK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, v6 := range []bool{false, true} {
			n := &tracetest.Net{Hops: tracetest.Routers(2, time.Millisecond), Dest: tracetest.Dest{RTT: 10 * time.Millisecond, HalfOpen: true, RSTLost: true}}
			p, _ := runFake(t, n, trace.Options{Target: target(v6), Proto: trace.TCP, MaxTTL: 3, Rate: 1000, Wait: 5 * time.Second, MinWait: 200 * time.Millisecond})
			if !p.Reached || p.DestTTL != 3 {
				t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
			}
			var kinds []string
			for _, pr := range p.Hops[2].Probes {
				k := "*"
				if pr.Reply != nil {
					k = string(pr.Reply.Kind)
					if pr.Reply.From != target(v6) || pr.Reply.RTT < 10*time.Millisecond {
						t.Errorf("probe %d: %+v", pr.Seq, pr.Reply)
					}
				}
				kinds = append(kinds, k)
			}
			if fmt.Sprint(kinds) != "[syn-ack ack *]" {
				t.Errorf("destination answers %v, want [syn-ack ack *]", kinds)
			}
			if p.Hops[2].RateLimited {
				t.Error("the destination's silence after a challenge ACK is shown as ICMP rate limiting")
			}
		}
	})
}

func TestRunMPLSNATAndUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hops := tracetest.Routers(4, time.Millisecond)
		hops[1].MPLS = []measure.MPLSLabel{{Label: 24001, TC: 1, S: true, TTL: 1}}
		hops[2].NAT = true
		hops[3].Unreachable = true
		n := &tracetest.Net{Hops: hops, Dest: tracetest.Dest{RTT: 4 * time.Millisecond}}
		p, _ := runFake(t, n, trace.Options{Rate: 1000, Wait: 5 * time.Second})
		if p.Reached || p.Stop != trace.StopUnreachable || len(p.Hops) != 4 {
			t.Fatalf("reached %v stop %s hops %d, want unreachable at 4", p.Reached, p.Stop, len(p.Hops))
		}
		for _, pr := range p.Hops[1].Probes {
			if pr.Reply == nil || fmt.Sprint(pr.Reply.MPLS) != fmt.Sprint([]measure.MPLSLabel{{Label: 24001, TC: 1, S: true, TTL: 1}}) {
				t.Errorf("ttl 2 reply %+v, want MPLS label 24001", pr.Reply)
			}
		}
		for _, pr := range p.Hops[2].Probes {
			if pr.Reply == nil || !pr.Reply.NAT {
				t.Errorf("ttl 3 reply %+v, want NAT flagged", pr.Reply)
			}
		}
		for _, pr := range p.Hops[0].Probes {
			if pr.Reply == nil || pr.Reply.NAT || pr.Reply.QuotedTTL != 1 {
				t.Errorf("ttl 1 reply %+v, want clean with quoted ttl 1", pr.Reply)
			}
		}
	})
}

func TestRunSocketModeUnobserved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &tracetest.Net{Hops: tracetest.Routers(1, time.Millisecond), Dest: tracetest.Dest{RTT: time.Millisecond}, Mode: trace.ModeSocket}
		p, _ := runFake(t, n, trace.Options{Rate: 1000, Mode: trace.ModeSocket})
		if p.Mode != trace.ModeSocket || !slices.Contains(p.Unobserved, "nat") || !slices.Contains(p.Unobserved, "mpls") {
			t.Fatalf("mode %s unobserved %v", p.Mode, p.Unobserved)
		}
		n = &tracetest.Net{Hops: tracetest.Routers(1, time.Millisecond), Dest: tracetest.Dest{RTT: time.Millisecond}}
		p, _ = runFake(t, n, trace.Options{Rate: 1000})
		if p.Mode != trace.ModeRaw || len(p.Unobserved) != 0 {
			t.Fatalf("raw: mode %s unobserved %v", p.Mode, p.Unobserved)
		}
	})
}

func TestRunFirstTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &tracetest.Net{Hops: tracetest.Routers(3, time.Millisecond), Dest: tracetest.Dest{RTT: time.Millisecond}}
		p, streamed := runFake(t, n, trace.Options{Rate: 1000, FirstTTL: 3})
		if fmt.Sprint(streamed) != "[3 4]" || p.Hops[0].TTL != 3 || p.DestTTL != 4 {
			t.Fatalf("streamed %v, first hop %d, dest %d", streamed, p.Hops[0].TTL, p.DestTTL)
		}
		for _, s := range n.Sends() {
			if s.TTL < 3 {
				t.Fatalf("sent ttl %d below FirstTTL 3", s.TTL)
			}
		}
	})
}

func TestRunErrors(t *testing.T) {
	permErr := fmt.Errorf("open raw socket: operation not permitted: %w", trace.ErrPermission)
	cases := []struct {
		name string
		o    trace.Options
		want string
		perm bool
	}{
		{"no target", trace.Options{}, "no target", false},
		{"bad protocol", trace.Options{Target: dst4, Proto: "sctp"}, "sctp", false},
		{"bad mode", trace.Options{Target: dst4, Mode: "magic"}, "magic", false},
		{"ttl range", trace.Options{Target: dst4, FirstTTL: 10, MaxTTL: 5}, "ttl range 10-5", false},
		{"max ttl", trace.Options{Target: dst4, MaxTTL: 300}, "ttl range", false},
		{"queries", trace.Options{Target: dst4, Queries: 11}, "11 queries", false},
		{"rate", trace.Options{Target: dst4, Rate: -1}, "rate", false},
		// A budget that slow would take hours per trace (1e-300: for ever).
		{"rate too slow", trace.Options{Target: dst4, Rate: 1e-300}, "rate 1e-300", false},
		{"rate NaN", trace.Options{Target: dst4, Rate: math.NaN()}, "rate NaN", false},
		{"wait", trace.Options{Target: dst4, Wait: -time.Second}, "wait", false},
		{"min wait above wait", trace.Options{Target: dst4, Wait: time.Second, MinWait: 2 * time.Second}, "min wait 2s", false},
		{"window", trace.Options{Target: dst4, Window: -1}, "window -1", false},
		{"family", trace.Options{Target: dst4, Source: src6}, "family", false},
		{"permission", trace.Options{Target: dst4, Net: &tracetest.Net{OpenErr: permErr}}, "trace 192.0.2.53 udp/53: open raw socket: operation not permitted", true},
	}
	for _, c := range cases {
		t.Run(c.name, inBubble(func(t *testing.T) {
			if c.o.Net == nil {
				c.o.Net = &tracetest.Net{}
			}
			_, err := trace.Run(context.Background(), c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if errors.Is(err, trace.ErrPermission) != c.perm {
				t.Errorf("errors.Is(err, trace.ErrPermission) = %v", !c.perm)
			}
		}))
	}
}

// TestRunDoesNotSpin: while a low hop waits longer than a silent hop above
// it (its own sibling answered slowly), the scheduler sleeps instead of
// waking for the higher hop's deadline again and again.
func TestRunDoesNotSpin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Hop 2's probes are given up 2×20ms after sending (hop 3 and the
		// destination answer in 20ms); hop 1's first probe answers in 35ms, so
		// its other two are waited for 2×35ms: for 30ms hop 2 is final but
		// cannot be shown before hop 1.
		hops := tracetest.Routers(3, 20*time.Millisecond)
		hops[0].RTT = 35 * time.Millisecond
		hops[0].Answers = func(seq int) bool { return seq == 0 }
		hops[1].Silent = true
		hops[2].RTT = 20 * time.Millisecond
		n := &tracetest.Net{Hops: hops, Dest: tracetest.Dest{RTT: 20 * time.Millisecond}}
		p, loops, err := trace.RunCountingLoops(context.Background(), trace.Options{Target: dst4, Net: n, Rate: 1000, Wait: 5 * time.Second, MinWait: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Reached || !p.Hops[0].RateLimited {
			t.Fatalf("reached %v, hop 1 %v", p.Reached, hopFroms(p.Hops[0]))
		}
		// Sends, replies and a handful of deadlines: a few dozen iterations.
		if loops > 500 {
			t.Errorf("%d scheduler iterations for a %v trace: busy waiting", loops, p.Elapsed)
		}
	})
}

// TestRunSendErrors: a probe the kernel refuses (a local firewall, a full
// buffer) is a silent probe and a note, not the end of the trace; a
// permission error mid-run ends it with ErrPermission.
func TestRunSendErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &tracetest.Net{Hops: tracetest.Routers(3, time.Millisecond), Dest: tracetest.Dest{RTT: time.Millisecond},
			SendErr: map[int]error{2: errors.New("send: operation not permitted")}}
		p, _ := runFake(t, n, trace.Options{Rate: 1000, Wait: 5 * time.Second})
		if !p.Reached || p.DestTTL != 4 || fmt.Sprint(hopFroms(p.Hops[1])) != "[* * *]" {
			t.Fatalf("reached %v at %d, hop 2 %v", p.Reached, p.DestTTL, hopFroms(p.Hops[1]))
		}
		if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "send ttl 2: send: operation not permitted") {
			t.Errorf("notes %q", p.Notes)
		}
		endsAtLastAnswer(t, p) // nothing waited for the probes that never left

		n = &tracetest.Net{Hops: tracetest.Routers(3, time.Millisecond), Dest: tracetest.Dest{RTT: time.Millisecond},
			SendErr: map[int]error{3: fmt.Errorf("send: operation not permitted: %w", trace.ErrPermission)}}
		p, err := trace.Run(context.Background(), trace.Options{Target: dst4, Net: n, Rate: 1000})
		if !errors.Is(err, trace.ErrPermission) || p.Stop != trace.StopError {
			t.Fatalf("err %v stop %s, want trace.ErrPermission and stop error", err, p.Stop)
		}

		// The very first probe cannot leave: no path to trace at all.
		n = &tracetest.Net{Hops: tracetest.Routers(3, time.Millisecond), SendErr: map[int]error{1: errors.New("send: network is unreachable")}}
		p, err = trace.Run(context.Background(), trace.Options{Target: dst4, Net: n, Rate: 1000})
		if err == nil || !strings.Contains(err.Error(), "trace 192.0.2.53 udp/53: send: network is unreachable") || p.Stop != trace.StopError {
			t.Fatalf("err %v stop %s, want the send error", err, p.Stop)
		}
		if len(n.Sends()) != 1 {
			t.Errorf("%d probes tried after the first failed", len(n.Sends()))
		}
	})
}

// TestRunUDP53NoService: a UDP/53 trace whose destination answers port
// unreachable reached the host, names no instance, and says why.
func TestRunUDP53NoService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, v6 := range []bool{false, true} {
			n := &tracetest.Net{Hops: tracetest.Routers(2, time.Millisecond), Dest: tracetest.Dest{RTT: time.Millisecond, Closed: true}}
			p, _ := runFake(t, n, trace.Options{Target: target(v6), Rate: 1000, Wait: 5 * time.Second})
			if !p.Reached || p.Stop != trace.StopReached || p.Instance != nil {
				t.Fatalf("reached %v stop %s instance %+v", p.Reached, p.Stop, p.Instance)
			}
			want := target(v6).String() + " answered port unreachable: the destination has no DNS service on udp/53"
			if !slices.Contains(p.Notes, want) {
				t.Errorf("notes %q, want %q", p.Notes, want)
			}
			// Another port: port unreachable is simply the end of the trace.
			p, _ = runFake(t, n, trace.Options{Target: target(v6), Port: 33434, Rate: 1000, Wait: 5 * time.Second})
			if !p.Reached || len(p.Notes) != 0 {
				t.Errorf("udp/33434: reached %v notes %q", p.Reached, p.Notes)
			}
		}
	})
}

// TestRunTCPHalfOpen: a TCP server keeps a SYN's half-open connection until
// the tracer's RST (sent on the SYN-ACK) reaches it, about one round trip
// after the SYN. The probes of the destination's TTL go one answer apart,
// so each gets its own SYN-ACK and the hop is not shown rate limited.
func TestRunTCPHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, v6 := range []bool{false, true} {
			const rtt = 30 * time.Millisecond
			n := &tracetest.Net{Hops: tracetest.Routers(3, time.Millisecond), Dest: tracetest.Dest{RTT: rtt, HalfOpen: true}}
			p, _ := runFake(t, n, trace.Options{Target: target(v6), Proto: trace.TCP, Rate: 1000, Wait: 5 * time.Second})
			if !p.Reached || p.DestTTL != 4 {
				t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
			}
			for _, pr := range p.Hops[3].Probes {
				if pr.Reply == nil || pr.Reply.Kind != trace.ReplySynAck {
					t.Errorf("v6=%v: destination probe %d: %+v, want a syn-ack", v6, pr.Seq, pr.Reply)
				}
			}
			if p.Hops[3].RateLimited {
				t.Errorf("v6=%v: destination shown rate limited", v6)
			}
			// The routers' probes still go 1 ms apart, not one answer apart.
			// The destination's three probes go one answer apart, and
			// nothing is waited for after the last.
			if p.Elapsed != 3*rtt {
				t.Errorf("took %v, want 3 × %v", p.Elapsed, rtt)
			}
			endsAtLastAnswer(t, p)
		}
	})
}

// TestRunRetriesLostAnswer: with one probe per hop, the destination's
// answer to the probe at its own TTL is lost and the next TTL's arrives.
// The silent TTL just below is asked again before the trace ends, so the
// destination is placed where it is, not one hop further behind a "*".
func TestRunRetriesLostAnswer(t *testing.T) {
	for _, proto := range []trace.Protocol{trace.UDP, trace.ICMP} {
		n := &tracetest.Net{Hops: tracetest.Routers(3, time.Millisecond), Dest: tracetest.Dest{RTT: 4 * time.Millisecond, Hostname: "h", NSID: "n",
			Lost: func(ttl, seq int) bool { return ttl == 4 && seq == 0 }}}
		p, streamed := runFake(t, n, trace.Options{Proto: proto, Queries: 1, Window: 2, Wait: 5 * time.Second, MinWait: 100 * time.Millisecond})
		if !p.Reached || p.DestTTL != 4 || len(p.Hops) != 4 {
			t.Fatalf("%s: reached %v at ttl %d with %d hops, want the destination at 4", proto, p.Reached, p.DestTTL, len(p.Hops))
		}
		if got := fmt.Sprint(hopFroms(p.Hops[3])); got != "[* 192.0.2.53]" {
			t.Errorf("%s: ttl 4 probes %s, want the lost answer and the retry's", proto, got)
		}
		if fmt.Sprint(streamed) != "[1 2 3 4]" {
			t.Errorf("%s: streamed %v", proto, streamed)
		}
		if proto == trace.UDP && (p.Instance == nil || p.Instance.NSID != "n") {
			t.Errorf("identity %+v", p.Instance)
		}
	}
}

// TestRunRetriesLostAnswersNotStreamedSilent: two answers in a row are
// lost, so the trace waits them out before it knows where the destination
// is; those TTLs are not streamed as silent hops meanwhile, and the
// retries put the destination at its TTL.
func TestRunRetriesLostAnswersNotStreamedSilent(t *testing.T) {
	n := &tracetest.Net{Hops: tracetest.Routers(3, time.Millisecond), Dest: tracetest.Dest{RTT: 4 * time.Millisecond,
		Lost: func(ttl, seq int) bool { return (ttl == 4 || ttl == 5) && seq == 0 }}}
	var silent []int
	p, streamed := runFake(t, n, trace.Options{Queries: 1, Window: 2, Wait: 400 * time.Millisecond, MinWait: 100 * time.Millisecond, OnHop: func(h trace.Hop) {
		if fmt.Sprint(hopFroms(h)) == "[*]" {
			silent = append(silent, h.TTL)
		}
	}})
	if !p.Reached || p.DestTTL != 4 || len(p.Hops) != 4 {
		t.Fatalf("reached %v at ttl %d with %d hops, want the destination at 4", p.Reached, p.DestTTL, len(p.Hops))
	}
	if fmt.Sprint(streamed) != "[1 2 3 4]" || len(silent) > 0 {
		t.Errorf("streamed %v, silent %v: want 1-4 and none silent", streamed, silent)
	}
}

// TestRunRetriesOnlyBelowDestination: a router that never answers just
// before the destination is asked until its hop has 3 probes (what a
// single trace sends) and stays "*"; a silent router with an answering one
// after it is a router, not a lost answer, and gets no retry; with -q 3
// nothing is retried.
func TestRunRetriesOnlyBelowDestination(t *testing.T) {
	hops := tracetest.Routers(4, time.Millisecond)
	hops[1].Silent = true
	hops[3].Silent = true
	n := &tracetest.Net{Hops: hops, Dest: tracetest.Dest{RTT: 5 * time.Millisecond}}
	p, _ := runFake(t, n, trace.Options{Queries: 1, Window: 2, Wait: 5 * time.Second, MinWait: 50 * time.Millisecond})
	if !p.Reached || p.DestTTL != 5 {
		t.Fatalf("reached %v at ttl %d", p.Reached, p.DestTTL)
	}
	if got := fmt.Sprint(hopFroms(p.Hops[1]), hopFroms(p.Hops[3])); got != "[*] [* * *]" {
		t.Errorf("ttl 2 and 4 probes %s, want [*] [* * *]", got)
	}
	for _, s := range n.Sends() {
		if s.TTL > 5 {
			t.Errorf("probe sent at ttl %d past the destination", s.TTL)
		}
	}
	n = &tracetest.Net{Hops: hops, Dest: tracetest.Dest{RTT: 5 * time.Millisecond}}
	p, _ = runFake(t, n, trace.Options{Queries: 3, Wait: 5 * time.Second, MinWait: 50 * time.Millisecond})
	if len(p.Hops) != 5 || len(p.Hops[3].Probes) != 3 {
		t.Errorf("-q 3: %d hops, ttl 4 has %d probes, want 3", len(p.Hops), len(p.Hops[3].Probes))
	}
}
