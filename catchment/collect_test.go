package catchment

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// liveGrowth is how much f grows the live heap (after collections).
func liveGrowth(f func()) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return max(1, int64(after.HeapAlloc)-int64(before.HeapAlloc))
}

// flapping feeds c results of lines vantage points, each switching
// instance on every one of its perLine results, in time order.
func flapping(c *Collector, lines, perLine int) {
	t0 := time.Unix(1_700_000_000, 0).UTC()
	vs := make([]Vantage, lines)
	for i := range vs {
		vs[i] = vantage(fmt.Sprintf("atlas:%d", i), 64500)
	}
	for r := range perLine {
		for i, v := range vs {
			o := idObs(v, svc4, fmt.Sprintf("i%d", (r+i)%2), time.Millisecond)
			o.Time = t0.Add(time.Duration(r) * time.Minute)
			c.Add(o)
		}
	}
}

// The collector's memory grows with the lines, not with the results: a
// flapping line keeps a bounded history of its changes and counts the
// earlier ones (4M periodic results once took 434 MB, an endless stream
// grew without end).
func TestCollectorMemoryBoundedByLines(t *testing.T) {
	var c1, c10 *Collector
	h1 := liveGrowth(func() { c1 = NewCollector(); flapping(c1, 200, 300) })
	runtime.KeepAlive(c1)
	c1 = nil
	h10 := liveGrowth(func() { c10 = NewCollector(); flapping(c10, 200, 3000) })
	t.Logf("200 lines: %d KB after 300 results each, %d KB after 3000", h1>>10, h10>>10)
	if h10 > 2*h1 {
		t.Errorf("ten times the results took %.1f times the memory", float64(h10)/float64(h1))
	}
	ch := c10.Changes()
	if len(ch) != 200 {
		t.Fatalf("%d changed lines, want 200", len(ch))
	}
	for _, x := range ch {
		if len(x.Events) > MaxChanges || len(x.Events)+x.EventsOmitted != 2999 {
			t.Fatalf("%s: %d events kept, %d omitted; want at most %d kept of 2999", x.Vantage, len(x.Events), x.EventsOmitted, MaxChanges)
		}
		if last := x.Events[len(x.Events)-1]; !last.Time.Equal(time.Unix(1_700_000_000, 0).UTC().Add(2999 * time.Minute)) {
			t.Fatalf("%s: the latest change is kept: %+v", x.Vantage, last)
		}
	}
	runtime.KeepAlive(c10)
}

// Results of one line out of time order still give the changes in time
// order; one that lands inside a run of another value splits it, and the
// change back is dated by the run's last result (the ones between its
// first and last are not kept).
func TestCollectorHistoryOutOfOrder(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0).UTC()
	v := vantage("atlas:1", 64500)
	c := NewCollector()
	for _, s := range []struct {
		dt int
		in string
	}{{0, "a"}, {10, "a"}, {20, "a"}, {5, "b"}, {30, "c"}, {25, "c"}, {-10, "c"}} {
		o := idObs(v, svc4, s.in, time.Millisecond)
		o.Time = t0.Add(time.Duration(s.dt) * time.Minute)
		c.Add(o)
	}
	ch := c.Changes()
	if len(ch) != 1 {
		t.Fatalf("changes %+v", ch)
	}
	var got []string
	for _, e := range ch[0].Events {
		got = append(got, fmt.Sprintf("%s→%s@%d", e.From, e.To, int(e.Time.Sub(t0)/time.Minute)))
	}
	// c before, a at 0, b at 5, a again by 20 (a at 10 is not kept), c from 25.
	if fmt.Sprint(got) != "[c→a@0 a→b@5 b→a@20 a→c@25]" {
		t.Errorf("events %v", got)
	}
}
