package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/sweep"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// Flow sweep limits.
const (
	maxSweepFlows = 256 // --flows N and --max-flows
	// defaultMaxFlows caps --flows auto.
	defaultMaxFlows = 64
)

// validateSweep checks --flows, --max-flows and --strict; maxFlowsSet says
// whether --max-flows was given.
func (o *traceOptions) validateSweep(maxFlowsSet bool) error {
	o.flowsAuto, o.flowsN = false, 0
	if o.flows == "auto" {
		o.flowsAuto = true
	} else {
		n, err := strconv.Atoi(o.flows)
		if err != nil || n < 1 || n > maxSweepFlows {
			return usageErr("--flows %q: must be a number from 1 to %d, or auto", o.flows, maxSweepFlows)
		}
		o.flowsN = n
	}
	if o.flowsAuto {
		if o.maxFlows < 2 || o.maxFlows > maxSweepFlows {
			return usageErr("--max-flows %d: must be between 2 and %d", o.maxFlows, maxSweepFlows)
		}
	} else if maxFlowsSet {
		return usageErr("--max-flows %d: only --flows auto has a cap; give --flows auto or drop --max-flows", o.maxFlows)
	}
	if o.strict && !o.sweeping() {
		return usageErr("--strict: one flow cannot show a catchment split; add --flows N (N > 1) or --flows auto")
	}
	if n := o.flowCap(); o.sweeping() && o.sport != 0 && o.sport+n-1 > 65535 {
		what := "--sport"
		if o.proto == "icmp" {
			what = "--sport (echo identifier)"
		}
		return usageErr("%s %d with %d flows: ports run past 65535 (the last would be %d); use a lower --sport or fewer flows", what, o.sport, n, o.sport+n-1)
	}
	return nil
}

// sweeping reports whether this run traces several flows per target.
func (o *traceOptions) sweeping() bool { return o.flowsAuto || o.flowsN > 1 }

// flowCap is the most flows a target may get: N, or the auto cap.
func (o *traceOptions) flowCap() int {
	if o.flowsAuto {
		return o.maxFlows
	}
	return max(o.flowsN, 1)
}

// identityKind says where a sweep's flows get their instance from.
func (o *traceOptions) identityKind() string {
	switch {
	case o.proto == "udp" && o.port == 53:
		return report.SweepIdentityUDP
	case o.proto == "tcp" && o.port == 53:
		return report.SweepIdentityTCP
	}
	return report.SweepIdentityNone
}

// sweepRun is one `trace --flows` run: every target's flows share the
// packet budget and the bound on flows in flight.
type sweepRun struct {
	o      *traceOptions
	s      *streams
	d      *deps
	out    *runOutput
	src    netip.Addr
	budget *rate.Limiter
	prog   *sweepProgress
}

// targetSweep is one target's sweep: what sweep.Run found.
type targetSweep struct {
	input string
	addr  netip.Addr
	sweep.Result
}

func runSweep(ctx context.Context, o *traceOptions) error {
	s, d := o.s, o.d
	src, addrs, unresolved, err := o.resolveTargets(ctx, d)
	if err != nil {
		return err
	}
	resolver, err := o.e.resolver(o.g, d)
	if err != nil {
		return err
	}
	run := &sweepRun{
		o: o, s: s, d: d, src: src,
		out:    newRunOutput(s, o.g, d, report.KindSweep),
		budget: trace.NewBudget(o.rate),
	}
	unres, err := unresolvedTargets(run.out, len(addrs), unresolved)
	if err != nil {
		return err
	}
	run.prog = newSweepProgress(s, o.targets)
	targets := make([]*targetSweep, len(addrs))
	so := sweep.TargetsOptions{Sport: o.sport, Parallel: o.parallel}
	for i, a := range addrs {
		targets[i] = &targetSweep{input: o.targets[i], addr: a}
		so.Sweeps = append(so.Sweeps, run.options(targets[i]))
	}
	swept, err := sweep.RunTargets(ctx, so)
	run.prog.done()
	if err != nil {
		return permissionErr(err, permissionHint(o.proto, o.mode))
	}
	for i, r := range swept {
		targets[i].Result = r
	}

	oc := outcome{failed: unres}
	oc.interrupted = ctx.Err() != nil
	results := make([]report.TraceSweep, 0, len(targets))
	for _, t := range targets {
		if t.Rounds == 0 {
			continue // never started (Ctrl-C): left out, as a single trace's
		}
		sw := run.result(ctx, resolver, t, oc.interrupted)
		if !oc.interrupted && (sw.Summary.Failed > 0 || sw.Summary.Reached < sw.Summary.Flows || sw.Summary.Flows == 0) {
			oc.failed++
		}
		if o.strict && sw.Summary.Split {
			oc.failed++
			run.out.warn(fmt.Sprintf("%s: catchment split by flow (--strict): exit %d", render.Escape(t.input), ExitPartial))
		}
		results = append(results, sw)
		run.out.result(t.input, sw)
	}
	return finish(run.out, results, oc, func(w io.Writer, rs []report.TraceSweep) error {
		if o.g.output == formatDot {
			return render.SweepDot(w, rs)
		}
		return render.SweepText(w, rs, render.TraceOptions{MaxTTL: o.maxTTL, Rate: o.rate, Wide: o.wide})
	})
}

// options are the sweep engine's options for target t: the flows' trace
// (one run-wide budget, a sweep's -q and -N unless given, a longer least
// wait), the run's bound on flows in flight, and the output's streams.
func (r *sweepRun) options(t *targetSweep) sweep.Options {
	o := r.o
	opts := o.libOptions(t.addr, r.src, r.d)
	opts.Budget = r.budget
	if !o.queriesSet {
		opts.Queries = 1
	}
	if !o.windowSet {
		opts.Window = sweep.Window
	}
	opts.MinWait = min(sweep.MinWait, opts.Wait)
	so := sweep.Options{
		Trace: opts, Flows: o.flowCap(), Auto: o.flowsAuto,
		Identity: &trace.IdentityOptions{QName: o.qname, Timeout: o.wait, Limiter: r.budget, Net: r.d.probeNet},
		OnStart:  func(round int) { r.prog.add(1, round) },
		OnHop: func(sport int, h trace.Hop) {
			f := report.FlowDTO{Protocol: o.proto, Sport: sport, Dst: t.addr.String(), Dport: int(opts.Port)}
			if r.src.IsValid() {
				f.Src = report.OptString(r.src.String())
			}
			r.out.record(r.out.doc.FlowHopRecord(t.input, f, report.FromHop(h)))
		},
		OnFlow: func(f sweep.Flow) {
			defer r.prog.finished()
			switch {
			case errors.Is(f.Err, trace.ErrPermission):
			case f.Err != nil:
				r.out.problem(report.Problem{Target: t.input, Stage: "trace", Message: fmt.Sprintf("flow %d: %v", f.Port, f.Err)})
			case f.Path.Stop != trace.StopInterrupted || len(f.Path.Hops) > 0:
				r.out.source(f.Path.Flow.Src.String())
			}
		},
		OnNoPorts: func() {
			r.out.problem(report.Problem{Target: t.input, Stage: "trace", Message: fmt.Sprintf("%s: no source port left below 65536 for more flows", t.input)})
		},
	}
	return so
}

// result enriches a target's flows in one lookup for all their addresses
// and sums the sweep up.
func (r *sweepRun) result(ctx context.Context, resolver whois.Resolver, t *targetSweep, interrupted bool) report.TraceSweep {
	o := r.o
	paths := slices.Clone(t.Paths)
	slices.SortStableFunc(paths, func(a, b trace.Path) int { return cmp.Compare(a.Flow.Src.Port(), b.Flow.Src.Port()) })
	flows := make([]report.TraceFlow, len(paths))
	sites := catchment.BuiltinSites()
	for i, p := range paths {
		flows[i] = report.FromPath(p, sites)
	}
	var origins map[netip.Addr]whois.Origin
	if len(flows) > 0 {
		pe := o.e.enrichPaths(ctx, o.g, resolver, t.input, "sweep", paths, flows, interrupted)
		pe.report(r.out)
		origins = pe.origins
	}
	mode := "fixed"
	if o.flowsAuto {
		mode = "auto"
	}
	dport := o.port
	if o.proto == "icmp" {
		dport = 0
	}
	stop := report.SweepStop{Mode: mode, Reason: t.Reason, MaxFlows: o.flowCap(), Rounds: t.Rounds}
	var failed []report.FailedFlow
	for _, f := range t.Failed {
		failed = append(failed, report.FailedFlow{Sport: f.Port, Message: f.Err.Error()})
	}
	_, an := live.Sweep(paths, origins, report.MDAConfidence)
	return report.NewTraceSweep(t.input, t.addr.String(), o.proto, dport, o.identityKind(), flows, an, failed, stop)
}

// sweepProgress shows, on a terminal stderr, how far a sweep that runs
// longer than progressAfter got: flows traced of those started, the round
// and the time so far, kept current while flows wait on silent hops.
type sweepProgress struct {
	s     *streams
	label string // "192.0.2.53", or "3 targets"
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	mu                sync.Mutex
	total, fin, round int
}

// progressAfter is how long a sweep runs before it shows progress: a
// quicker one would only flicker.
const progressAfter = time.Second

func newSweepProgress(s *streams, targets []string) *sweepProgress {
	p := &sweepProgress{s: s, label: fmt.Sprintf("%d targets", len(targets)), start: time.Now(), stop: make(chan struct{})}
	if len(targets) == 1 {
		p.label = render.Escape(targets[0])
	}
	if s.errTTY {
		p.wg.Go(p.tick)
	}
	return p
}

// tick redraws the line four times a second once the sweep is slow.
func (p *sweepProgress) tick() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

// draw writes the line (mu held) once the sweep has run progressAfter.
func (p *sweepProgress) draw() {
	el := time.Since(p.start)
	if !p.s.errTTY || el < progressAfter {
		return
	}
	line := fmt.Sprintf("sweeping %s: %d of %d flows traced", p.label, p.fin, p.total)
	if p.round > 1 {
		line += fmt.Sprintf(", round %d", p.round)
	}
	p.s.status("%s, %.1fs", line, el.Seconds())
}

// add counts n more flows started in a round (the highest round of any
// target so far).
func (p *sweepProgress) add(n, round int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total += n
	p.round = max(p.round, round)
}

func (p *sweepProgress) finished() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fin++
	p.draw()
}

func (p *sweepProgress) done() {
	close(p.stop)
	p.wg.Wait()
	p.s.clearStatus()
}
