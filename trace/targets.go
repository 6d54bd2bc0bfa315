package trace

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/errgroup"
)

// DefaultParallel is the targets RunTargets traces at once by default.
// Each trace holds a few sockets; a shared Budget bounds their packets.
const DefaultParallel = 16

// TargetsOptions are several traces of one run (`anycheck trace` with
// several targets).
type TargetsOptions struct {
	// Traces are the targets' traces, in order; give them one Budget so
	// the run's rate holds however many run at once. OnHop is replaced
	// (see OnHop below).
	Traces []Options
	// Parallel bounds the traces at once (0: DefaultParallel). Traces
	// with a SrcPort hold that port while they run: they take turns.
	Parallel int
	// Identity, when set, asks a TCP/53 trace's instance over its own
	// flow once it is over (IdentifyTCP53).
	Identity *IdentityOptions
	// OnHop streams trace i's hops as they become final.
	OnHop func(i int, h Hop)
	// OnDone is called as trace i ends, from its goroutine, with its path
	// or its set-up error (never a missing privilege: see RunTargets).
	// Traces not started when ctx ended are not reported.
	OnDone func(i int, p Path, err error)
}

// RunTargets traces every target, Parallel at once. A trace that lacks
// privilege stops the others (they are not reported) and is RunTargets'
// error, wrapping ErrPermission; otherwise it returns nil once every
// trace started has been reported.
func RunTargets(ctx context.Context, o TargetsOptions) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	limit := o.Parallel
	if limit <= 0 {
		limit = DefaultParallel
	}
	for _, t := range o.Traces {
		if t.SrcPort != 0 {
			limit = 1
		}
	}
	var g errgroup.Group
	g.SetLimit(limit)
	var (
		mu      sync.Mutex
		permErr error
	)
	for i, opts := range o.Traces {
		g.Go(func() error {
			if ctx.Err() != nil {
				return nil // interrupted (or a missing privilege) before this trace started
			}
			if o.OnHop != nil {
				opts.OnHop = func(h Hop) { o.OnHop(i, h) }
			}
			p, err := Run(ctx, opts)
			if err == nil && o.Identity != nil {
				IdentifyTCP53(ctx, &p, *o.Identity)
			}
			mu.Lock()
			if errors.Is(err, ErrPermission) {
				if permErr == nil {
					permErr = err
				}
				stop()
			}
			quiet := permErr != nil
			mu.Unlock()
			if !quiet && o.OnDone != nil {
				o.OnDone(i, p, err)
			}
			return nil
		})
	}
	_ = g.Wait() // traces report through OnDone, never an error
	return permErr
}
