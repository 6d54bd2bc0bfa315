package probe

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/anycheck/anycheck/internal/wait"
	"github.com/anycheck/anycheck/measure"
)

// The defaults of RunFlows.
const (
	// DefaultRate is the queries per second of a RunFlows without Rate or
	// Limiter: a politeness bound that one run never reaches.
	DefaultRate = 1000
	// DefaultParallel bounds the flows probed at once (each holds a UDP
	// and perhaps a TCP socket); the rate bounds the packets.
	DefaultParallel = 256
)

// FlowsOptions are the runs of `anycheck id`: every target asked over
// Flows flows (source ports), Runs times each, Interval apart.
type FlowsOptions struct {
	Targets []netip.AddrPort
	// Flows per target (0: 1). Flow f leaves from port Sport+f, or,
	// without Sport, from the ephemeral port its first run was given,
	// kept for its later runs.
	Flows int
	Sport uint16
	// Runs per flow (0: 1), Interval apart.
	Runs     int
	Interval time.Duration
	// The query set and its transport, as in Options.
	Names   []string
	Version bool
	TCP     bool
	Timeout time.Duration
	// Limiter is the packet budget of the whole survey; nil makes one of
	// Rate queries per second (0: DefaultRate) whose burst lets a run's
	// queries leave together, and a few targets' runs too: up to 20 ms
	// worth of Rate (at most 16 queries), never fewer than one run's.
	Limiter *rate.Limiter
	Rate    float64
	// Parallel bounds the flows probed at once (0: DefaultParallel).
	Parallel int
	Net      Network

	// OnRun is called after each run that was made (not one cut short by
	// ctx), from its flow's goroutine.
	OnRun func(target, flow int, r Result)
	// OnTarget is called once every flow of target i is done, from the
	// goroutine of its last flow: callers can stream each target's
	// result as soon as it is known.
	OnTarget func(i int, t TargetRuns)
}

// TargetRuns are the runs made to one target.
type TargetRuns struct {
	Target netip.AddrPort
	// Flows are each flow's runs, in order. A run cut short by ctx keeps
	// only the answers that came back (and is left out without any).
	Flows [][]Result
	// Setup is, per flow, why it could not be opened (its port is taken:
	// a *BindError); nil when it was.
	Setup []error
}

// RunFlows asks every target over every flow at once, within Parallel
// flows and the packet budget, and returns the runs in the order given.
// It returns when all are done or ctx ends (with what answered until then).
func RunFlows(ctx context.Context, o FlowsOptions) []TargetRuns {
	o.Flows, o.Runs = max(o.Flows, 1), max(o.Runs, 1)
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Limiter == nil {
		if o.Rate <= 0 {
			o.Rate = DefaultRate
		}
		perRun := len(queryNames(Options{Names: o.Names, Version: o.Version}))
		o.Limiter = rate.NewLimiter(rate.Limit(o.Rate), max(perRun, min(16, int(o.Rate/50))))
	}
	out := make([]TargetRuns, len(o.Targets))
	pending := make([]atomic.Int32, len(o.Targets))
	var mu sync.Mutex // guards out while flows write their slots
	for i, t := range o.Targets {
		out[i] = TargetRuns{Target: t, Flows: make([][]Result, o.Flows), Setup: make([]error, o.Flows)}
		pending[i].Store(int32(o.Flows))
	}
	var g errgroup.Group
	g.SetLimit(o.Parallel)
	for i := range o.Targets {
		for f := range o.Flows {
			g.Go(func() error {
				runs, setup := o.flow(ctx, i, f)
				mu.Lock()
				out[i].Flows[f], out[i].Setup[f] = runs, setup
				mu.Unlock()
				if pending[i].Add(-1) == 0 && o.OnTarget != nil {
					mu.Lock()
					t := out[i]
					mu.Unlock()
					o.OnTarget(i, t)
				}
				return nil
			})
		}
	}
	_ = g.Wait() // flows report through their slots, never an error
	return out
}

// flow makes the runs of flow f of target i, Interval apart, all from one
// source port: Sport+f or the first run's.
func (o *FlowsOptions) flow(ctx context.Context, i, f int) ([]Result, error) {
	var runs []Result
	for c := range o.Runs {
		if ctx.Err() != nil || (c > 0 && wait.Sleep(ctx, o.Interval) != nil) {
			return runs, nil
		}
		src := netip.AddrPortFrom(netip.Addr{}, 0)
		if len(runs) > 0 {
			src = netip.AddrPortFrom(netip.Addr{}, runs[0].Source.Port())
		} else if o.Sport != 0 {
			src = netip.AddrPortFrom(netip.Addr{}, o.Sport+uint16(f))
		}
		res, err := Run(ctx, Options{
			Target: o.Targets[i], Source: src, Names: o.Names, Version: o.Version, TCP: o.TCP,
			Timeout: o.Timeout, Limiter: o.Limiter, Net: o.Net,
		})
		if ctx.Err() != nil {
			// Keep what answered before the end; the queries cut short
			// did not time out.
			res.Answers = cameBack(res.Answers)
			if err == nil && len(res.Answers) > 0 {
				res.Identity = measure.Summarise(res.Answers)
				runs = append(runs, res)
			}
			return runs, nil
		}
		if err != nil {
			return runs, err
		}
		runs = append(runs, res)
		if o.OnRun != nil {
			o.OnRun(i, f, res)
		}
	}
	return runs, nil
}

// cameBack keeps the answers of a run that something came back for.
func cameBack(as []measure.Answer) []measure.Answer {
	var out []measure.Answer
	for _, a := range as {
		if a.Replied() || a.Status == measure.StatusMalformed {
			out = append(out, a)
		}
	}
	return out
}
