package trace_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/trace/tracetest"
)

// counting is a fake network that counts the traces open at once.
type counting struct {
	*tracetest.Net
	mu        sync.Mutex
	open, max int
}

type countedConn struct {
	trace.Conn
	n    *counting
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.n.mu.Lock()
		c.n.open--
		c.n.mu.Unlock()
	})
	return c.Conn.Close()
}

func (n *counting) Open(ctx context.Context, f trace.Flow, m trace.Mode) (trace.Conn, error) {
	c, err := n.Net.Open(ctx, f, m)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.open++
	n.max = max(n.max, n.open)
	n.mu.Unlock()
	return &countedConn{Conn: c, n: n}, nil
}

func targetsOptions(n trace.Network, count int, srcPort uint16) trace.TargetsOptions {
	var o trace.TargetsOptions
	budget := trace.NewBudget(1000)
	for i := range count {
		o.Traces = append(o.Traces, trace.Options{
			Target: netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)}), SrcPort: srcPort, Queries: 1, Wait: time.Second, Budget: budget, Net: n,
		})
	}
	return o
}

// TestRunTargets: every target is traced and reported once, its hops
// streamed under its own index, Parallel at once; traces that share a
// source port take turns.
func TestRunTargets(t *testing.T) {
	for _, c := range []struct {
		srcPort  uint16
		parallel int
		want     int
	}{{0, 3, 3}, {40000, 3, 1}} {
		t.Run(fmt.Sprint(c.srcPort), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := &counting{Net: &tracetest.Net{Hops: tracetest.Routers(2, time.Millisecond), Dest: tracetest.Dest{RTT: 3 * time.Millisecond, Hostname: "i", NSID: "i"}}}
				o := targetsOptions(n, 8, c.srcPort)
				o.Parallel = c.parallel
				var mu sync.Mutex
				var done []int
				hops := map[int]int{}
				o.OnHop = func(i int, _ trace.Hop) { mu.Lock(); hops[i]++; mu.Unlock() }
				o.OnDone = func(i int, p trace.Path, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil || !p.Reached || p.Flow.Dst.Addr() != o.Traces[i].Target {
						t.Errorf("trace %d: %v, reached %v to %s", i, err, p.Reached, p.Flow.Dst)
					}
					done = append(done, i)
				}
				if err := trace.RunTargets(context.Background(), o); err != nil {
					t.Fatal(err)
				}
				sort.Ints(done)
				if fmt.Sprint(done) != "[0 1 2 3 4 5 6 7]" || len(hops) != 8 || hops[7] != 3 {
					t.Errorf("done %v, hops %v; want each of the 8 once, 3 hops each", done, hops)
				}
				if n.max != c.want {
					t.Errorf("%d traces at once, want %d", n.max, c.want)
				}
			})
		})
	}
}

// TestRunTargetsPermission: a trace without privilege stops the run: its
// error is RunTargets', and no trace is reported after it.
func TestRunTargetsPermission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &tracetest.Net{OpenErr: fmt.Errorf("open raw socket: %w", trace.ErrPermission)}
		o := targetsOptions(n, 4, 0)
		o.Parallel = 1
		reported := 0
		o.OnDone = func(int, trace.Path, error) { reported++ }
		err := trace.RunTargets(context.Background(), o)
		if !errors.Is(err, trace.ErrPermission) || reported != 0 {
			t.Errorf("%v after %d traces reported; want ErrPermission and none", err, reported)
		}
	})
}

// TestRunTargetsTCPIdentity: with Identity, a TCP/53 trace that reached
// the service gets its instance over its own flow.
func TestRunTargetsTCPIdentity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &tracetest.Net{Dest: tracetest.Dest{RTT: time.Millisecond, Hostname: "i1.lab", NSID: "i1"}}
		o := targetsOptions(n, 1, 0)
		o.Traces[0].Proto, o.Traces[0].Port = trace.TCP, 53
		o.Identity = &trace.IdentityOptions{Timeout: time.Second, Net: n}
		var got trace.Path
		o.OnDone = func(_ int, p trace.Path, _ error) { got = p }
		if err := trace.RunTargets(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		if got.Instance == nil || got.Instance.Instance != "i1" || len(n.Dials()) != 1 || n.Dials()[0].Local != got.Flow.Src {
			t.Errorf("instance %v over %v; want i1 over a connection from %s", got.Instance, n.Dials(), got.Flow.Src)
		}
	})
}
