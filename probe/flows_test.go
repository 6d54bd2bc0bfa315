package probe_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/probe/probetest"
)

// TestRunFlows: every target over every flow, each flow's runs from one
// port Interval apart, all at once; a target is handed on once
// its last flow is done, with its runs in order.
func TestRunFlows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		near := &probetest.Server{Hostname: "near", NSID: []byte("near"), Delay: time.Millisecond}
		far := &probetest.Server{Hostname: "far", NSID: []byte("far"), Delay: 30 * time.Millisecond}
		targets := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53"), netip.MustParseAddrPort("192.0.2.2:53")}
		nw := &probetest.Net{Route: func(_ string, _, remote netip.AddrPort) (*probetest.Server, error) {
			if remote == targets[0] {
				return far, nil
			}
			return near, nil
		}}
		start := time.Now()
		var mu sync.Mutex
		var order []string
		runs := 0
		got := probe.RunFlows(context.Background(), probe.FlowsOptions{
			Targets: targets, Flows: 3, Runs: 2, Interval: 100 * time.Millisecond, Net: nw,
			OnRun: func(_, _ int, _ probe.Result) {
				mu.Lock()
				runs++
				mu.Unlock()
			},
			OnTarget: func(i int, tr probe.TargetRuns) {
				mu.Lock()
				defer mu.Unlock()
				order = append(order, fmt.Sprintf("%d at %v", i, time.Since(start)))
			},
		})
		// The near target's flows end after 100ms and two 1 ms runs; the
		// far one's after 100ms and two 30 ms runs.
		if fmt.Sprint(order) != "[1 at 102ms 0 at 160ms]" || runs != 12 {
			t.Errorf("targets done %v after %d runs, want target 1 at 102ms, then 0 at 160ms, after 12", order, runs)
		}
		for i, tr := range got {
			if tr.Target != targets[i] || len(tr.Flows) != 3 {
				t.Fatalf("target %d: %+v", i, tr)
			}
			for f, rs := range tr.Flows {
				if len(rs) != 2 || tr.Setup[f] != nil {
					t.Fatalf("target %d flow %d: %d runs, setup %v", i, f, len(rs), tr.Setup[f])
				}
				for _, r := range rs {
					if r.Source.Port() != rs[0].Source.Port() || r.Identity.Instance == "" {
						t.Errorf("target %d flow %d: a run from %s naming %q", i, f, r.Source, r.Identity.Instance)
					}
				}
				if gap := rs[1].Started.Sub(rs[0].Started); gap != 100*time.Millisecond+near.Delay && gap != 100*time.Millisecond+far.Delay {
					t.Errorf("target %d flow %d: runs %v apart, want the interval after the first run's answers", i, f, gap)
				}
			}
		}
	})
}

// TestRunFlowsEphemeralPorts: without Sport each flow keeps the port its
// first run was given.
func TestRunFlowsEphemeralPorts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &probetest.Server{Hostname: "a", Delay: time.Millisecond}
		nw := &probetest.Net{Route: func(string, netip.AddrPort, netip.AddrPort) (*probetest.Server, error) { return srv, nil }}
		got := probe.RunFlows(context.Background(), probe.FlowsOptions{
			Targets: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}, Flows: 4, Runs: 3, Net: nw,
		})
		seen := map[uint16]bool{}
		for f, rs := range got[0].Flows {
			for _, r := range rs[1:] {
				if r.Source.Port() != rs[0].Source.Port() {
					t.Errorf("flow %d moved from port %d to %d", f, rs[0].Source.Port(), r.Source.Port())
				}
			}
			seen[rs[0].Source.Port()] = true
		}
		if len(seen) != 4 {
			t.Errorf("4 flows on ports %v, want 4 ports", seen)
		}
	})
}

// TestRunFlowsPortTaken: flows leave from Sport+f; one whose port is
// taken cannot be opened: its setup error names the port, and the other
// flows run.
func TestRunFlowsPortTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &probetest.Server{Hostname: "a", Delay: time.Millisecond}
		nw := &probetest.Net{Route: func(string, netip.AddrPort, netip.AddrPort) (*probetest.Server, error) { return srv, nil }}
		target := netip.MustParseAddrPort("192.0.2.1:53")
		held, err := nw.ListenUDP(context.Background(), netip.AddrPortFrom(netip.Addr{}, 41001), target)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		got := probe.RunFlows(context.Background(), probe.FlowsOptions{Targets: []netip.AddrPort{target}, Flows: 3, Sport: 41000, Net: nw})[0]
		if !errors.Is(got.Setup[1], syscall.EADDRINUSE) || !strings.Contains(got.Setup[1].Error(), ":41001") || len(got.Flows[1]) != 0 {
			t.Errorf("flow 1: setup %v with %d runs, want a bind error on 41001", got.Setup[1], len(got.Flows[1]))
		}
		if got.Setup[0] != nil || got.Setup[2] != nil || len(got.Flows[0]) != 1 || len(got.Flows[2]) != 1 || got.Flows[2][0].Source.Port() != 41002 {
			t.Errorf("flows 0 and 2: setup %v %v, runs %d %d", got.Setup[0], got.Setup[2], len(got.Flows[0]), len(got.Flows[2]))
		}
	})
}

// TestRunFlowsInterrupted: when ctx ends, a run keeps the answers that came
// back and drops the queries cut short (they did not time out); runs not
// started are not made.
func TestRunFlowsInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &probetest.Server{Hostname: "a", IDServer: "a", Delay: time.Millisecond}
		lose := &probetest.Server{Hostname: "a", IDServer: "a", Delay: time.Millisecond, Lose: func(q probetest.Query) bool { return q.Name == "id.server." }}
		k := 0
		var mu sync.Mutex
		nw := &probetest.Net{Route: func(string, netip.AddrPort, netip.AddrPort) (*probetest.Server, error) {
			mu.Lock()
			defer mu.Unlock()
			k++
			if k == 1 {
				return srv, nil
			}
			return lose, nil
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		got := probe.RunFlows(ctx, probe.FlowsOptions{
			Targets: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}, Runs: 5, Interval: 100 * time.Millisecond, Timeout: time.Second, Net: nw,
		})[0].Flows[0]
		if len(got) != 2 || len(got[0].Answers) != 2 || len(got[1].Answers) != 1 || got[1].Identity.Instance != "a" {
			t.Fatalf("runs %+v; want a whole first run and the second's one answer", got)
		}
	})
}

// TestRunFlowsBudget: the queries of every flow share one budget of Rate
// a second, whose burst is one run's queries at a low rate.
func TestRunFlowsBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &probetest.Server{Hostname: "a", Delay: time.Millisecond}
		nw := &probetest.Net{Route: func(string, netip.AddrPort, netip.AddrPort) (*probetest.Server, error) { return srv, nil }}
		start := time.Now()
		probe.RunFlows(context.Background(), probe.FlowsOptions{
			Targets: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}, Flows: 4, Rate: 10, Net: nw,
		})
		// 8 queries: a burst of 2, then 6 at 10 a second.
		if took := time.Since(start); took != 600*time.Millisecond+srv.Delay {
			t.Errorf("8 queries at 10/s took %v, want 601ms", took)
		}
	})
}
