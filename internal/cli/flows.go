package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// Flow sweep limits.
const (
	maxSweepFlows = 256 // --flows N and --max-flows
	// defaultMaxFlows caps --flows auto.
	defaultMaxFlows = 64
	// sweepInFlight bounds the flows traced at once in a run (each holds
	// its own sockets); the packet budget bounds their packets.
	sweepInFlight = 64
	// autoFirstRound is the first round of --flows auto: 16 flows rule
	// out a fourth next hop at any hop every flow passes (MDA at 95 %),
	// and give each branch of a two-way diamond 8 flows on average, more
	// than the 6 its own next hop needs, so that a diamond is usually
	// settled in one round.
	autoFirstRound = 16
	// portTries bounds how many ports a flow of an automatic port range
	// tries when the one it was given is in use.
	portTries = 16
	// sweepWindow is a sweep's -N: the TTLs a flow probes beyond what it
	// knows. Every probe at or past the destination's distance is a query
	// to the service, and DNS servers limit the answers they send one
	// network (NSD's response rate limiting: 200 a second by default), so
	// a sweep keeps each flow to about sweepWindow queries: with 64 flows
	// at once, 16 each would be a thousand, and the dropped answers would
	// show as flows that never reached the service. The destination's probe
	// then leaves once the hop sweepWindow before it has answered: a flow
	// takes about that hop's round trip longer than one trace.
	sweepWindow = 2
	// sweepMinWait is the least a flow of a sweep waits for a silent
	// hop once the hops beyond it answered (a single trace: 25 ms). Every
	// flow has its own sockets, and each raw ICMP socket receives every
	// flow's errors: with many flows on a busy host a router's reply can
	// be read tens of milliseconds after the destination's, and a hop
	// given up too early splits its flow off into a path of its own.
	sweepMinWait = 100 * time.Millisecond
	// dynamicPorts is the start of the IANA dynamic port range, where an
	// automatic sweep picks its consecutive ports.
	dynamicPorts = 49152
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

// portPlan hands out flows their source ports (ICMP: echo identifiers),
// each once: consecutive from --sport, or from a random start in the
// dynamic range. With automatic ports a port in use is skipped; a --sport
// range is the user's and is kept as asked.
type portPlan struct {
	mu       sync.Mutex
	next     int
	explicit bool
}

// newPortPlan plans the ports of up to flows flows: from sport when given,
// else from a random start in the dynamic range that leaves room for them
// and a quarter more, for ports skipped on the way (take says when the
// range runs out).
func newPortPlan(sport, flows int) *portPlan {
	if sport != 0 {
		return &portPlan{next: sport, explicit: true}
	}
	span := max(1, 65536-dynamicPorts-flows-flows/4)
	return &portPlan{next: dynamicPorts + rand.N(span)}
}

// take returns the next port, false when the range is exhausted.
func (pp *portPlan) take() (int, bool) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.next > 65535 {
		return 0, false
	}
	p := pp.next
	pp.next++
	return p, true
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
	slots  chan struct{}
	prog   *sweepProgress
}

// targetSweep is the state of one target's sweep.
type targetSweep struct {
	input string
	addr  netip.Addr
	ports *portPlan

	mu     sync.Mutex
	paths  []trace.Path
	failed []report.FailedFlow
	rounds int
	reason string
	// permErr is a flow's missing privilege: the run stops with exit 4.
	permErr error
}

func runSweep(ctx context.Context, o *traceOptions, s *streams, d *deps) error {
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
		slots:  make(chan struct{}, sweepInFlight),
	}
	unres, err := unresolvedTargets(run.out, len(addrs), unresolved)
	if err != nil {
		return err
	}
	run.prog = newSweepProgress(s, o.targets)
	// A flow without privilege stops every flow of the run.
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	targets := make([]*targetSweep, len(addrs))
	var g errgroup.Group
	// Targets at once; their flows share the slots. A flow holds its
	// source port (a socket bound to it), so automatic ports come from one
	// plan for the whole run, and with --sport, whose range every target
	// uses, the targets take turns.
	g.SetLimit(o.parallel)
	shared := newPortPlan(0, o.flowCap()*len(addrs))
	if o.sport != 0 {
		g.SetLimit(1)
	}
	for i, a := range addrs {
		ports := shared
		if o.sport != 0 {
			ports = newPortPlan(o.sport, o.flowCap())
		}
		t := &targetSweep{input: o.targets[i], addr: a, ports: ports}
		targets[i] = t
		g.Go(func() error {
			if sctx.Err() != nil {
				t.reason = report.SweepStopInterrupted
				return nil // interrupted before this target started
			}
			run.sweep(sctx, t)
			if t.permErr != nil {
				cancel(t.permErr)
			}
			return nil
		})
	}
	_ = g.Wait() // targets report through their state, never an error
	run.prog.done()
	for _, t := range targets {
		if t.permErr != nil {
			return permissionErr(t.permErr, permissionHint(o.proto, o.mode))
		}
	}

	oc := outcome{failed: unres}
	oc.interrupted = ctx.Err() != nil
	results := make([]report.TraceSweep, 0, len(targets))
	for _, t := range targets {
		if t.rounds == 0 {
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

// sweep traces one target's flows: N at once, or for --flows auto round
// after round until the MDA stopping rule is met or --max-flows reached.
func (r *sweepRun) sweep(ctx context.Context, t *targetSweep) {
	o := r.o
	batch := o.flowsN
	if o.flowsAuto {
		batch = min(autoFirstRound, o.maxFlows)
	}
	used := 0
	var last []catchment.MDAVertex // the hops that wanted flows after the previous round
	for {
		t.rounds++
		before := len(t.paths)
		r.round(ctx, t, batch)
		used += batch
		switch {
		case t.permErr != nil:
			return
		case ctx.Err() != nil:
			t.reason = report.SweepStopInterrupted
			return
		case !o.flowsAuto:
			t.reason = report.SweepStopFlows
			return
		case len(t.paths) == before:
			// Nothing of this round could be traced: more flows would
			// fail the same way.
			t.reason = report.SweepStopFailed
			return
		}
		flows := make([]catchment.Flow, len(t.paths))
		for i, p := range t.paths {
			flows[i] = live.Flow(p, nil)
		}
		uns := catchment.MDAUnsatisfied(flows, report.MDAConfidence)
		switch {
		case len(uns) == 0:
			t.reason = report.SweepStopMDA
			return
		case used >= o.maxFlows:
			t.reason = report.SweepStopMaxFlows
			return
		case t.rounds > 1 && slices.Equal(uns, last):
			// The round's flows brought no reply to the hops that
			// wanted them: those routers have stopped answering (an
			// ICMP rate limit: Linux sends 6 errors at once, then one
			// a second), and more flows now would only be more "*".
			t.reason = report.SweepStopStalled
			return
		}
		last = uns
		batch = mdaNextBatch(uns, len(t.paths), o.maxFlows-used)
	}
}

// mdaNextBatch is how many flows the next round of an auto sweep sends:
// for each hop still short of flows, the flows it lacks divided by the
// share of the flows so far that passed it (new flows spread over the
// branches as the earlier ones did); the largest over all such hops, at
// least 1 and at most room.
func mdaNextBatch(uns []catchment.MDAVertex, traced, room int) int {
	want := 1
	for _, v := range uns {
		if v.Flows <= 0 || traced <= 0 {
			want = room
			break
		}
		lack := float64(v.Needed - v.Flows)
		want = max(want, int(math.Ceil(lack*float64(traced)/float64(v.Flows))))
	}
	return max(1, min(want, room))
}

// round traces n more flows of a target at once.
func (r *sweepRun) round(ctx context.Context, t *targetSweep, n int) {
	var wg sync.WaitGroup
	for range n {
		port, ok := t.ports.take()
		if !ok {
			r.out.problem(report.Problem{Target: t.input, Stage: "trace", Message: fmt.Sprintf("%s: no source port left below 65536 for more flows", t.input)})
			break
		}
		r.prog.add(1, t.rounds)
		wg.Go(func() {
			defer r.prog.finished()
			p, err := r.flow(ctx, t, port)
			t.mu.Lock()
			defer t.mu.Unlock()
			switch {
			case errors.Is(err, trace.ErrPermission):
				if t.permErr == nil {
					t.permErr = err
				}
			case errors.Is(err, errFlowNotStarted):
			case err != nil:
				sport := int(p.Flow.Src.Port())
				t.failed = append(t.failed, report.FailedFlow{Sport: sport, Message: err.Error()})
				r.out.problem(report.Problem{Target: t.input, Stage: "trace", Message: fmt.Sprintf("flow %d: %v", sport, err)})
			case p.Stop == trace.StopInterrupted && len(p.Hops) == 0:
				// Cut before anything came back: nothing to show.
			default:
				t.paths = append(t.paths, p)
				r.out.source(p.Flow.Src.String())
			}
		})
	}
	wg.Wait()
}

// errFlowNotStarted: the run was interrupted before the flow got its turn.
var errFlowNotStarted = errors.New("not started")

// flow traces one flow of a target from port (skipping to further ports
// of an automatic range while the one given is in use), then, on TCP/53,
// asks the identity over a connection from the same port.
func (r *sweepRun) flow(ctx context.Context, t *targetSweep, port int) (trace.Path, error) {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return trace.Path{}, errFlowNotStarted
	}
	defer func() { <-r.slots }()
	for try := 0; ; try++ {
		opts := r.o.libOptions(t.addr, r.src, r.d)
		opts.SrcPort = uint16(port)
		opts.Budget = r.budget
		if !r.o.queriesSet {
			opts.Queries = 1
		}
		if !r.o.windowSet {
			opts.Window = sweepWindow
		}
		opts.MinWait = min(sweepMinWait, opts.Wait)
		sport := port
		opts.OnHop = func(h trace.Hop) {
			r.out.record(r.out.doc.FlowHopRecord(t.input, sport, report.FromHop(h)))
		}
		p, err := trace.Run(ctx, opts)
		if err != nil && errors.Is(err, syscall.EADDRINUSE) && !t.ports.explicit && try < portTries {
			next, ok := t.ports.take()
			if ok {
				port = next
				continue
			}
		}
		if err != nil {
			p.Flow.Src = netip.AddrPortFrom(p.Flow.Src.Addr(), uint16(port))
			return p, err
		}
		tcpIdentity(ctx, &p, r.o, r.d, r.budget)
		return p, nil
	}
}

// result enriches a target's flows in one lookup for all their addresses
// and sums the sweep up.
func (r *sweepRun) result(ctx context.Context, resolver whois.Resolver, t *targetSweep, interrupted bool) report.TraceSweep {
	o := r.o
	paths := slices.Clone(t.paths)
	slices.SortStableFunc(paths, func(a, b trace.Path) int { return cmp.Compare(a.Flow.Src.Port(), b.Flow.Src.Port()) })
	flows := make([]report.TracePath, len(paths))
	for i, p := range paths {
		flows[i] = report.FromPath(t.input, p)
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
	stop := report.SweepStop{Mode: mode, Reason: t.reason, MaxFlows: o.flowCap(), Rounds: t.rounds}
	_, an := live.Sweep(paths, origins, report.MDAConfidence)
	return report.NewTraceSweep(t.input, t.addr.String(), o.proto, dport, o.identityKind(), flows, an, t.failed, stop)
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
