package sweep

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/anycheck/anycheck/trace"
)

// DefaultInFlight bounds the flows a run traces at once over all its
// targets (each flow holds its own sockets; the budget bounds packets).
const DefaultInFlight = 64

// TargetsOptions are the sweeps of one run (`anycheck trace --flows` with
// several targets).
type TargetsOptions struct {
	// Sweeps are the targets' sweeps, in order; give them one
	// Trace.Budget. Their Ports and Slots are set here.
	Sweeps []Options
	// Sport is the first port of every target's flows; 0: the flows of
	// all targets take automatic ports from one plan for the run.
	Sport int
	// Parallel bounds the targets swept at once (0:
	// trace.DefaultParallel). A flow holds its port while it runs, so
	// with Sport, whose range every target uses, the targets take turns.
	Parallel int
	// InFlight bounds the flows traced at once over all targets (0:
	// DefaultInFlight).
	InFlight int
}

// RunTargets sweeps every target and returns their results in order. A
// target not started when ctx ended has no rounds (Reason
// StopInterrupted). A flow that lacks privilege stops every sweep, and
// its error (wrapping trace.ErrPermission) is RunTargets' error.
func RunTargets(ctx context.Context, o TargetsOptions) ([]Result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	limit := o.Parallel
	if limit <= 0 {
		limit = trace.DefaultParallel
	}
	if o.Sport != 0 {
		limit = 1
	}
	inFlight := o.InFlight
	if inFlight <= 0 {
		inFlight = DefaultInFlight
	}
	slots := make(chan struct{}, inFlight)
	flows := 0
	for _, s := range o.Sweeps {
		flows += planned(s)
	}
	shared := NewPorts(0, flows)
	out := make([]Result, len(o.Sweeps))
	var g errgroup.Group
	g.SetLimit(limit)
	for i, so := range o.Sweeps {
		so.Ports, so.Slots = shared, slots
		if o.Sport != 0 {
			so.Ports = NewPorts(o.Sport, planned(so))
		}
		g.Go(func() error {
			if ctx.Err() != nil {
				out[i].Reason = StopInterrupted
				return nil // interrupted before this target started
			}
			out[i] = Run(ctx, so)
			if out[i].Permission != nil {
				cancel(out[i].Permission)
			}
			return nil
		})
	}
	_ = g.Wait() // targets report through their results, never an error
	for _, r := range out {
		if r.Permission != nil {
			return out, r.Permission
		}
	}
	return out, nil
}

// planned is how many ports a sweep may take: its flows, or an automatic
// sweep's first round.
func planned(o Options) int {
	if o.Flows > 0 {
		return o.Flows
	}
	return FirstRound
}
