package trace_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/trace/tracetest"
)

// checkWindow asserts the in-flight bound on what the fake network saw:
// a probe at TTL t went out only after some probe at a TTL of at least
// t-window had answered or could have been given up (Wait after it was
// sent), or t was within the first window.
func checkWindow(t *testing.T, n *tracetest.Net, p trace.Path, first, window int, wait time.Duration) {
	t.Helper()
	sends := n.Sends()
	// When each TTL first became known: its first answer, or Wait after
	// its first unanswered probe.
	known := map[int]time.Time{}
	for _, h := range p.Hops {
		for _, pr := range h.Probes {
			at := pr.Sent.Add(wait)
			if pr.Reply != nil {
				at = pr.Sent.Add(pr.Reply.RTT)
			}
			if k, ok := known[h.TTL]; !ok || at.Before(k) {
				known[h.TTL] = at
			}
		}
	}
	for _, s := range sends {
		if s.TTL < first+window {
			continue
		}
		ok := false
		for ttl, at := range known {
			if ttl >= s.TTL-window && !at.After(s.At) {
				ok = true
			}
		}
		// A TTL past the last hop kept (beyond the destination) is only
		// sent when something at or above ttl-window answered; answers
		// past the destination are not in p.Hops, so accept any answer at
		// the destination's TTL or above.
		if !ok && p.Reached {
			if at, found := known[p.DestTTL]; found && p.DestTTL >= s.TTL-window && !at.After(s.At) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("ttl %d probe %d sent %v into the trace with nothing known at ttl >= %d", s.TTL, s.Seq, s.At.Sub(p.Started), s.TTL-window)
		}
	}
}

// TestRunWindowBoundsProbesPastDestination: with the destination at TTL 5,
// MaxTTL 30 and Window 8, no probe goes beyond TTL 12 (5+8-1: the frontier
// is at most 4 before the destination answers), so the service sees a
// handful of queries, not the 28 an unbounded first round sends.
func TestRunWindowBoundsProbesPastDestination(t *testing.T) {
	const dest, maxTTL, queries = 5, 30, 3
	cases := []struct {
		name      string
		routerRTT time.Duration
		window    int
		// most probes the destination may receive; 0 = only the TTL bound
		maxAtDest int
	}{
		// Routers answer within the first round: the frontier rises with
		// them, and the window still bounds the TTL.
		{"fast routers", time.Millisecond, 8, 0},
		// Routers slower than the destination (but within the 250ms MinWait
		// the test sets, so they are not given up): the frontier has not moved
		// when the destination answers, so only TTLs 5-8 of the first
		// window reach it, each with its q probes.
		{"slow routers", 150 * time.Millisecond, 8, (8 - (dest - 1)) * queries},
		{"window 1", time.Millisecond, 1, queries},
		{"default window", 150 * time.Millisecond, 0, (trace.DefaultWindow - (dest - 1)) * queries},
	}
	for _, c := range cases {
		t.Run(c.name, inBubble(func(t *testing.T) {
			// The destination answers after 40ms: by then an unbounded
			// first round (1 probe/ms) would have reached TTL 30.
			n := &tracetest.Net{Hops: tracetest.Routers(dest-1, c.routerRTT), Dest: tracetest.Dest{RTT: 40 * time.Millisecond}}
			for i := range n.Hops {
				n.Hops[i].RTT = c.routerRTT
			}
			p, streamed := runFake(t, n, trace.Options{Rate: 1000, Wait: 5 * time.Second, MaxTTL: maxTTL, Queries: queries, Window: c.window, MinWait: 250 * time.Millisecond})
			if !p.Reached || p.DestTTL != dest || p.Stop != trace.StopReached || len(p.Hops) != dest {
				t.Fatalf("reached %v at %d stop %s with %d hops, want reached at %d", p.Reached, p.DestTTL, p.Stop, len(p.Hops), dest)
			}
			if fmt.Sprint(streamed) != "[1 2 3 4 5]" {
				t.Errorf("streamed %v", streamed)
			}
			for _, h := range p.Hops {
				if got := hopFroms(h); len(got) != queries || fmt.Sprint(got) == "[* * *]" {
					t.Errorf("ttl %d: %v", h.TTL, got)
				}
				for _, pr := range h.Probes {
					if pr.Reply == nil {
						t.Errorf("ttl %d probe %d unanswered on a path where everything answers", h.TTL, pr.Seq)
					}
				}
			}
			window := c.window
			if window == 0 {
				window = trace.DefaultWindow
			}
			atDest := 0
			for _, s := range n.Sends() {
				if s.TTL > dest+window-1 {
					t.Errorf("ttl %d probe %d sent: beyond %d (destination %d + window %d - 1)", s.TTL, s.Seq, dest+window-1, dest, window)
				}
				if s.TTL >= dest {
					atDest++
				}
			}
			if c.maxAtDest > 0 && atDest > c.maxAtDest {
				t.Errorf("the destination received %d probes, want at most %d", atDest, c.maxAtDest)
			}
			checkWindow(t, n, p, 1, window, 5*time.Second)
			endsAtLastAnswer(t, p)
		}))
	}
}

// TestRunWindowSilentPath: when nothing answers, the window slides as
// probes are given up, so the trace still reaches MaxTTL, in about
// ceil(MaxTTL/Window) × Wait, and the scheduler sleeps while blocked.
func TestRunWindowSilentPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxTTL, window = 12, 4
		const wait = 150 * time.Millisecond
		n := &tracetest.Net{Hops: make([]tracetest.Hop, maxTTL), Dest: tracetest.Dest{Silent: true}}
		for i := range n.Hops {
			n.Hops[i].Silent = true
		}
		var streamed []int
		p, loops, err := trace.RunCountingLoops(context.Background(), trace.Options{Target: dst4, Net: n, Rate: 1000, Wait: wait, MaxTTL: maxTTL, Window: window,
			OnHop: func(h trace.Hop) { streamed = append(streamed, h.TTL) }})
		if err != nil {
			t.Fatal(err)
		}
		if p.Reached || p.Stop != trace.StopMaxTTL || len(p.Hops) != maxTTL {
			t.Fatalf("reached %v stop %s with %d hops, want max-ttl with %d", p.Reached, p.Stop, len(p.Hops), maxTTL)
		}
		if len(streamed) != maxTTL || streamed[maxTTL-1] != maxTTL {
			t.Errorf("streamed %v", streamed)
		}
		for _, h := range p.Hops {
			if got := hopFroms(h); fmt.Sprint(got) != "[* * *]" {
				t.Errorf("ttl %d: %v, want 3 silent probes", h.TTL, got)
			}
		}
		if got := len(n.Sends()); got != maxTTL*3 {
			t.Errorf("%d probes sent, want %d", got, maxTTL*3)
		}
		checkWindow(t, n, p, 1, window, wait)
		// TTLs 1-4 go at once, 5-8 when 1-4 are given up, 9-12 a Wait later,
		// and their last probes are waited for once more: 3 × Wait plus
		// pacing. An engine that stalled would wait an hour (the test's 20 s
		// context); one that ignored the window would take 1 × Wait.
		lower := (maxTTL + window - 1) / window * wait
		// Exactly: each window is given up after the read grace, and the
		// last window's third probes leave 2 × TTLSpread after its first.
		windows := time.Duration((maxTTL + window - 1) / window)
		if want := lower + windows*trace.ReadGrace + 2*trace.TTLSpread; p.Elapsed != want {
			t.Errorf("took %v, want %v", p.Elapsed, want)
		}
		// Sends, and a wake per deadline: not a poll while blocked.
		if loops > 500 {
			t.Errorf("%d scheduler iterations for a %v trace: busy waiting", loops, p.Elapsed)
		}
	})
}

// TestRunWindowSilentGapBeforeDestination: a run of silent hops longer
// than the window in front of the destination delays the probes beyond it
// by one Wait but does not stop the trace from reaching it.
func TestRunWindowSilentGapBeforeDestination(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 4
		const wait = 200 * time.Millisecond
		hops := tracetest.Routers(8, time.Millisecond)
		for i := 1; i < 7; i++ {
			hops[i].Silent = true // TTLs 2-7
		}
		n := &tracetest.Net{Hops: hops, Dest: tracetest.Dest{RTT: time.Millisecond}}
		p, streamed := runFake(t, n, trace.Options{Rate: 1000, Wait: wait, Window: window})
		if !p.Reached || p.DestTTL != 9 || len(p.Hops) != 9 {
			t.Fatalf("reached %v at %d with %d hops, want the destination at 9", p.Reached, p.DestTTL, len(p.Hops))
		}
		if fmt.Sprint(streamed) != "[1 2 3 4 5 6 7 8 9]" {
			t.Errorf("streamed %v", streamed)
		}
		for _, s := range n.Sends() {
			if s.TTL > 9+window-1 {
				t.Errorf("ttl %d sent past the destination's window", s.TTL)
			}
		}
		checkWindow(t, n, p, 1, window, wait)
		// One Wait for the gap (and the read grace); then the destination
		// answers at once, and the gap's last hops are given up MinWait
		// after their last probes (2 × TTLSpread after the first).
		if most := wait + 2*trace.ReadGrace + 2*trace.TTLSpread + trace.DefaultMinWait; p.Elapsed > most {
			t.Errorf("took %v, want at most %v", p.Elapsed, most)
		}
	})
}
