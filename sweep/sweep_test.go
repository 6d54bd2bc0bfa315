package sweep

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/trace/tracetest"
)

// TestNextBatch: the next round asks what the hops short of flows lack,
// scaled by the share of flows that reach them.
func TestNextBatch(t *testing.T) {
	v := func(flows, needed int) catchment.MDAVertex {
		return catchment.MDAVertex{Flows: flows, Needed: needed, NextHops: 1}
	}
	for _, c := range []struct {
		uns          []catchment.MDAVertex
		traced, room int
		want         int
		why          string
	}{
		{[]catchment.MDAVertex{v(16, 21)}, 16, 48, 5, "a hop every flow passes lacks 5"},
		{[]catchment.MDAVertex{v(4, 6)}, 16, 48, 8, "a hop a quarter of the flows reach: 2 more there take 8"},
		{[]catchment.MDAVertex{v(4, 6), v(14, 16)}, 16, 48, 8, "the hop that needs most decides"},
		{[]catchment.MDAVertex{v(1, 6)}, 16, 48, 48, "a rare branch is capped by the room left"},
		{[]catchment.MDAVertex{v(5, 6)}, 5, 1, 1, "never more than the room"},
		{[]catchment.MDAVertex{v(6, 6)}, 6, 10, 1, "at least one"},
	} {
		if got := NextBatch(c.uns, c.traced, c.room); got != c.want {
			t.Errorf("%s: %d, want %d", c.why, got, c.want)
		}
	}
}

// ecmp is a diamond behind one router: flows take branch a or b by their
// source port, as a router's hash does; busy ports cannot be bound.
type ecmp struct {
	mu      sync.Mutex
	branch  [2]func() *tracetest.Net
	pick    func(port uint16) int // the branch a port takes; nil = a hash
	busy    map[uint16]bool
	open    int // flows traced at once now
	maxOpen int
	nets    []*tracetest.Net
}

func (e *ecmp) Open(ctx context.Context, f trace.Flow, m trace.Mode) (trace.Conn, error) {
	e.mu.Lock()
	if e.busy[f.Src.Port()] {
		e.mu.Unlock()
		return nil, fmt.Errorf("bind %s: %w", f.Src, syscall.EADDRINUSE)
	}
	b := int(uint32(f.Src.Port())*2654435761>>16) & 1
	if e.pick != nil {
		b = e.pick(f.Src.Port())
	}
	n := e.branch[b]()
	e.nets = append(e.nets, n)
	e.open++
	e.maxOpen = max(e.maxOpen, e.open)
	e.mu.Unlock()
	c, err := n.Open(ctx, f, m)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, e: e}, nil
}

type countedConn struct {
	trace.Conn
	e    *ecmp
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.e.mu.Lock()
		c.e.open--
		c.e.mu.Unlock()
	})
	return c.Conn.Close()
}

func diamond() *ecmp {
	branch := func(mid string) func() *tracetest.Net {
		return func() *tracetest.Net {
			return &tracetest.Net{
				Hops: []tracetest.Hop{{Addr: netip.MustParseAddr("198.51.100.1"), RTT: time.Millisecond}, {Addr: netip.MustParseAddr(mid), RTT: 2 * time.Millisecond}},
				Dest: tracetest.Dest{RTT: 3 * time.Millisecond, Hostname: "inst", NSID: "inst"},
			}
		}
	}
	return &ecmp{branch: [2]func() *tracetest.Net{branch("198.51.100.2"), branch("198.51.100.3")}}
}

func options(n trace.Network) Options {
	return Options{Trace: trace.Options{Target: netip.MustParseAddr("192.0.2.53"), Net: n, Queries: 1, Wait: time.Second, Budget: trace.NewBudget(1000)}}
}

// A fixed sweep traces its flows at once from the ports given, streaming
// hops and flows as they end.
func TestRunFixed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := diamond()
		o := options(n)
		o.Flows, o.Ports, o.Slots = 8, NewPorts(40000, 8), make(chan struct{}, 3)
		var mu sync.Mutex
		var flows, hops []int
		o.OnFlow = func(f Flow) { mu.Lock(); flows = append(flows, f.Port); mu.Unlock() }
		o.OnHop = func(sport int, _ trace.Hop) { mu.Lock(); hops = append(hops, sport); mu.Unlock() }
		r := Run(context.Background(), o)
		if r.Reason != StopFlows || r.Rounds != 1 || len(r.Paths) != 8 || len(flows) != 8 || len(hops) != 8*3 {
			t.Fatalf("reason %s rounds %d: %d paths, %d flows reported, %d hops", r.Reason, r.Rounds, len(r.Paths), len(flows), len(hops))
		}
		slices.Sort(flows)
		if flows[0] != 40000 || flows[7] != 40007 {
			t.Errorf("ports %v, want 40000-40007", flows)
		}
		if n.maxOpen > 3 {
			t.Errorf("%d flows traced at once, more than the 3 slots", n.maxOpen)
		}
	})
}

// Auto adds rounds until the MDA rule is met at every hop, or the cap.
func TestRunAuto(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := options(diamond())
		o.Auto, o.Flows = true, 64
		r := Run(context.Background(), o)
		need := catchment.MDAStoppingPoint(2, Confidence)
		if r.Reason != StopMDA || len(r.Paths) < need {
			t.Errorf("reason %s after %d rounds, %d flows; want mda with at least %d", r.Reason, r.Rounds, len(r.Paths), need)
		}
		o = options(diamond())
		o.Auto, o.Flows = true, 8
		if r := Run(context.Background(), o); r.Reason != StopMaxFlows || len(r.Paths) != 8 {
			t.Errorf("capped at 8: reason %s, %d flows", r.Reason, len(r.Paths))
		}
	})
}

// A round whose flows all hash onto the other branch has not stalled: its
// flows were answered at the TTLs the short hop wants, just by the other
// router. Auto goes on and meets the MDA rule. (The lab's diamond: 5 of 16
// flows through m1, 6 needed; the 4 flows of the next round all took m2,
// which stopped the sweep as "stalled" by the luck of the hash.) A round whose
// flows get no answer there is a stall: routers that stopped answering.
func TestRunAutoUnluckyRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := diamond()
		// Round 1 (40000-40015): 5 flows through a, 11 through b; round
		// 2 (4 flows): all through b; then a again.
		n.pick = func(port uint16) int {
			switch {
			case port < 40005, port >= 40020:
				return 0
			}
			return 1
		}
		o := options(n)
		o.Auto, o.Flows, o.Ports = true, 64, NewPorts(40000, 64)
		r := Run(context.Background(), o)
		if r.Reason != StopMDA || r.Rounds < 3 {
			t.Errorf("reason %s after %d rounds, %d flows; want mda after a third round", r.Reason, r.Rounds, len(r.Paths))
		}

		// The same, with the routers silent to round 2's flows: stalled.
		n = diamond()
		n.pick = func(port uint16) int {
			if port < 40005 {
				return 0
			}
			return 1
		}
		quiet := n.branch[1]
		n.branch[1] = func() *tracetest.Net {
			net := quiet()
			// Open holds n.mu and appends after branch(): flows past
			// round 1's 16.
			if len(n.nets) >= 16 {
				for i := range net.Hops {
					net.Hops[i].Silent = true
				}
			}
			return net
		}
		o = options(n)
		o.Auto, o.Flows, o.Ports = true, 64, NewPorts(40000, 64)
		if r := Run(context.Background(), o); r.Reason != StopStalled || r.Rounds != 2 {
			t.Errorf("routers silent after round 1: reason %s after %d rounds; want stalled after 2", r.Reason, r.Rounds)
		}
	})
}

// Automatic ports skip ports in use; a given range keeps them and says
// which flow could not be traced; a missing privilege stops the sweep.
func TestRunPorts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := diamond()
		n.busy = map[uint16]bool{}
		for p := 40000; p < 40010; p += 2 {
			n.busy[uint16(p)] = true
		}
		o := options(n)
		o.Flows, o.Ports = 4, &Ports{next: 40000}
		r := Run(context.Background(), o)
		if len(r.Paths) != 4 || len(r.Failed) != 0 {
			t.Errorf("automatic ports: %d paths, failed %+v", len(r.Paths), r.Failed)
		}
		for _, p := range r.Paths {
			if n.busy[p.Flow.Src.Port()] {
				t.Errorf("traced from busy port %d", p.Flow.Src.Port())
			}
		}
		o.Ports = NewPorts(40000, 4)
		r = Run(context.Background(), o)
		if len(r.Paths) != 2 || len(r.Failed) != 2 || r.Failed[0].Port%2 != 0 || !errors.Is(r.Failed[0].Err, syscall.EADDRINUSE) {
			t.Errorf("given ports: %d paths, failed %+v", len(r.Paths), r.Failed)
		}
		perm := options(&tracetest.Net{OpenErr: fmt.Errorf("raw socket: %w", trace.ErrPermission)})
		perm.Flows = 4
		if r := Run(context.Background(), perm); !errors.Is(r.Permission, trace.ErrPermission) || len(r.Paths) != 0 {
			t.Errorf("no privilege: %+v", r)
		}
	})
}

// RunTargets: the targets' flows take automatic ports from one plan (no
// port twice), within one bound on flows in flight over all targets; with
// a first port every target's flows start there, one target at a time.
func TestRunTargets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := diamond()
		var o TargetsOptions
		o.InFlight = 5
		var mu sync.Mutex
		ports := map[int]int{}
		for range 3 {
			so := options(n)
			so.Flows = 8
			so.OnFlow = func(f Flow) { mu.Lock(); ports[f.Port]++; mu.Unlock() }
			o.Sweeps = append(o.Sweeps, so)
		}
		rs, err := RunTargets(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 3 || len(rs[2].Paths) != 8 || len(ports) != 24 || n.maxOpen > 5 {
			t.Errorf("%d results, %d distinct ports, %d flows at once; want 3 × 8 flows on 24 ports, at most 5 at once", len(rs), len(ports), n.maxOpen)
		}

		n = diamond()
		o.Sport, o.InFlight = 40000, 0
		ports = map[int]int{}
		for i := range o.Sweeps {
			o.Sweeps[i].Trace.Net = n
		}
		if _, err := RunTargets(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		if len(ports) != 8 || ports[40000] != 3 || ports[40007] != 3 || n.maxOpen > 8 {
			t.Errorf("ports %v, %d flows at once; want 40000-40007 three times, one target at a time", ports, n.maxOpen)
		}
	})
}

// RunTargets: a flow without privilege stops every target's sweep.
func TestRunTargetsPermission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		perm := options(&tracetest.Net{OpenErr: fmt.Errorf("raw socket: %w", trace.ErrPermission)})
		perm.Flows = 4
		rs, err := RunTargets(context.Background(), TargetsOptions{Sweeps: []Options{perm, perm, perm}, Parallel: 1})
		if !errors.Is(err, trace.ErrPermission) || len(rs) != 3 || rs[2].Rounds != 0 || rs[2].Reason != StopInterrupted {
			t.Errorf("%v; results %+v: want ErrPermission with the later targets not started", err, rs)
		}
	})
}
