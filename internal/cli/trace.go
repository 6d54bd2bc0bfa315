package cli

import (
	"context"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

type traceOptions struct {
	g        *globalOptions
	cmdIO    // its streams and dependencies
	e        enrichOptions
	targets  []string
	proto    string
	port     int
	sport    int
	mode     string
	firstTTL int
	maxTTL   int
	queries  int
	window   int
	rate     float64
	parallel int
	wait     time.Duration
	qname    string
	source   string
	// Flow sweep (flows.go): --flows N|auto, --max-flows, --strict.
	flows      string
	flowsN     int
	flowsAuto  bool
	maxFlows   int
	strict     bool
	queriesSet bool // -q given: a sweep otherwise sends one probe per hop per flow
	windowSet  bool // -N given: a sweep otherwise keeps sweep.Window TTLs in flight
	wide       bool // --wide: names whole in the hop table
}

func newTraceCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *traceOptions) error) *cobra.Command {
	o := &traceOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "trace TARGET...",
		Short: "Paris traceroute to an anycast service, ending at the instance that answers",
		Long: `Trace the path to each TARGET over one fixed flow (Paris traceroute: the
5-tuple never changes, so every probe follows the same ECMP branch). Over
UDP to port 53 every probe is a DNS identity query (CHAOS TXT hostname.bind
with NSID), so the instance that answers is the one at the end of the path
shown. Hops carry their origin AS (--asn) and reverse names (unless -n).

--flows N traces N flows at once that differ only in the source port (ICMP:
the echo identifier), under one packet budget (--rate), and shows each
distinct path once with the flows that took it and the instance they
reached, where the paths part and join, and a catchment split when flows
reach different instances. --flows auto adds flows until no hop shows a new
next hop (the MDA stopping rule at 95 %), at most --max-flows. -o dot writes
a Graphviz graph of the flows.`,
		Example: `  anycheck trace 192.0.2.53
  anycheck trace --flows auto --strict 192.0.2.53
  anycheck trace --flows 16 -o dot 192.0.2.53 | dot -Tsvg > paths.svg
  anycheck trace -P icmp -q 1 2001:db8:53::53
  anycheck trace -P tcp --port 443 --asn none -o json 192.0.2.80`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.targets = args
			if err := o.mergeWait(cmd.Flags().Changed("wait")); err != nil {
				return err
			}
			if err := o.validate(); err != nil {
				return err
			}
			if err := o.validateSweep(cmd.Flags().Changed("max-flows")); err != nil {
				return err
			}
			o.queriesSet = cmd.Flags().Changed("queries")
			o.windowSet = cmd.Flags().Changed("window")
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			if o.sweeping() {
				return runFailed(runSweep(cmd.Context(), o))
			}
			return runFailed(runTrace(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	protocolVar(f, &o.proto, "probe protocol: udp, tcp or icmp")
	f.IntVar(&o.port, "port", trace.DefaultPort, "destination port (udp, tcp)")
	f.IntVar(&o.sport, "sport", 0, "source port (udp, tcp) or echo identifier (icmp); 0 = pick one")
	modeVar(f, &o.mode, "socket mode: auto, raw (CAP_NET_RAW) or socket (unprivileged; udp and icmp)")
	f.IntVarP(&o.firstTTL, "first-ttl", "f", trace.DefaultFirstTTL, "first TTL to probe")
	f.IntVarP(&o.maxTTL, "max-ttl", "m", trace.DefaultMaxTTL, "maximum TTL (hops)")
	f.IntVarP(&o.queries, "queries", "q", trace.DefaultQueries, "probes per hop")
	f.IntVarP(&o.window, "window", "N", trace.DefaultWindow, "TTLs in flight beyond the last one answered (bounds probes, and DNS queries, past the destination)")
	rateVar(f, &o.rate, trace.DefaultRate, "packets per second over the whole run, all targets together (a cap, not a pace: probes to different routers leave back to back)")
	f.IntVar(&o.parallel, "parallel", traceParallel, "targets traced at once")
	durationVarP(f, &o.wait, "wait", "w", trace.DefaultWait, "how long to wait for each reply (a duration, or seconds as traceroute's -w 1): traceroute's name for --timeout, the same setting")
	f.StringVar(&o.qname, "qname", "hostname.bind", "CHAOS TXT name asked by udp/53 probes")
	f.StringVar(&o.source, "source", "", "source address (default: chosen by routing)")
	f.StringVar(&o.flows, "flows", "1", "trace N flows (source ports; icmp: echo identifiers) at once, or auto: add flows until the MDA stopping rule (95 %) finds no new next hop")
	f.IntVar(&o.maxFlows, "max-flows", defaultMaxFlows, "most flows --flows auto may use")
	f.BoolVar(&o.strict, "strict", false, "exit 3 when flows reach more than one instance (a catchment split)")
	f.BoolVar(&o.wide, "wide", false, "show reverse names and AS names whole in the hop table (cut to fit otherwise)")
	o.e.register(f)
	addLocationFlag(cmd, o.g)
	outputVar(cmd, g, formatText, traceFormats...)
	addLabelFlag(cmd, o.g)
	return cmd
}

// mergeWait makes -w (traceroute's name) and --timeout (every other
// command's) one setting: the wait for each reply, which also bounds the
// identity query and the lookups. Both given with different values is a
// usage error.
func (o *traceOptions) mergeWait(waitSet bool) error {
	switch {
	case waitSet && o.g.timeoutSet && o.wait != o.g.timeout:
		return usageErr("-w %s and --timeout %s: both set the wait for each reply; give one", o.wait, o.g.timeout)
	case waitSet:
		// The trace's own copy of the shared options, with -w as its
		// --timeout: nothing shared is written.
		g := *o.g
		g.timeout, g.timeoutSet = o.wait, true
		o.g = &g
	default:
		o.wait = o.g.timeout
	}
	return nil
}

func (o *traceOptions) validate() error {
	if o.proto == "tcp" && o.mode == "socket" {
		return usageErr("-P tcp --mode socket: tcp probes need raw sockets, socket mode cannot send them (use --mode raw or auto)")
	}
	if err := portFlag("port", o.port); err != nil {
		return err
	}
	if o.sport != 0 {
		if err := portFlag("sport", o.sport); err != nil {
			return err
		}
	}
	if o.maxTTL < 1 || o.maxTTL > 255 {
		return usageErr("-m %d: must be between 1 and 255", o.maxTTL)
	}
	if o.firstTTL < 1 || o.firstTTL > o.maxTTL {
		return usageErr("-f %d: must be between 1 and -m (%d)", o.firstTTL, o.maxTTL)
	}
	if o.queries < 1 || o.queries > 10 {
		return usageErr("-q %d: must be between 1 and 10", o.queries)
	}
	if o.window < 1 || o.window > 255 {
		return usageErr("-N %d: must be between 1 and 255", o.window)
	}
	if o.parallel < 1 || o.parallel > maxTraceParallel {
		return usageErr("--parallel %d: must be between 1 and %d targets at once", o.parallel, maxTraceParallel)
	}
	if o.wait <= 0 || o.wait > time.Minute {
		return usageErr("-w/--timeout %s: must be above 0 and at most 1m", o.wait)
	}
	if !isDNSName(o.qname) {
		return usageErr("--qname %q: not a valid DNS name", o.qname)
	}
	if o.source != "" {
		if _, err := netip.ParseAddr(o.source); err != nil {
			return usageErr("--source %q: not an IP address", o.source)
		}
	}
	return nil
}

// traceParallel is --parallel's default: targets traced at once. Each
// holds a few sockets; --rate bounds the packets of all of them together.
const (
	traceParallel    = trace.DefaultParallel
	maxTraceParallel = 256
)

func runTrace(ctx context.Context, o *traceOptions) error {
	s, d := o.s, o.d
	src, addrs, unresolved, err := o.resolveTargets(ctx, d)
	if err != nil {
		return err
	}
	resolver, err := o.e.resolver(o.g, d)
	if err != nil {
		return err
	}
	out := newRunOutput(s, o.g, d, report.KindTrace)
	unres, err := unresolvedTargets(out, len(addrs), unresolved)
	if err != nil {
		return err
	}
	// One packet budget for the whole run: every target's probes take
	// their tokens from it, so --rate caps what the host sends however
	// many targets are traced at once.
	budget := trace.NewBudget(o.rate)
	prog := newProgress(s, len(addrs))
	defer prog.done()
	to := trace.TargetsOptions{
		Parallel: o.parallel,
		Identity: &trace.IdentityOptions{QName: o.qname, Timeout: o.wait, Limiter: budget, Net: d.probeNet},
		OnHop: func(i int, h trace.Hop) {
			out.record(out.doc.HopRecord(o.targets[i], report.FromHop(h)))
			prog.hop(o.targets[i], h)
		},
	}
	for _, a := range addrs {
		opts := o.libOptions(a, src, d)
		opts.Budget = budget
		to.Traces = append(to.Traces, opts)
	}
	var (
		mu       sync.Mutex // guards oc; serialises lookups (one bulk request at a time)
		oc       outcome
		measured = make([]*report.TraceResult, len(addrs))
	)
	to.OnDone = func(i int, p trace.Path, err error) {
		prog.targetDone()
		input := o.targets[i]
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			out.problem(report.Problem{Target: input, Stage: "trace", Message: err.Error()})
			oc.failed++
			return
		}
		tp := report.FromPath(p, catchment.BuiltinSites())
		interrupted := p.Stop == trace.StopInterrupted
		if interrupted {
			oc.interrupted = true
		} else if !p.Reached {
			oc.failed++
		}
		if !interrupted || len(tp.Path.Hops) > 0 {
			o.enrich(ctx, out, resolver, input, p, &tp, interrupted)
		}
		out.source(p.Flow.Src.String())
		res := report.NewTraceResult(input, tp)
		measured[i] = &res
		out.result(input, res)
	}
	if err := trace.RunTargets(ctx, to); err != nil {
		// The engine's error already names the target and flow.
		return permissionErr(err, permissionHint(o.proto, o.mode))
	}
	oc.failed += unres
	// In the order given; targets never started (Ctrl-C) are left out.
	var paths []report.TraceResult
	for _, tp := range measured {
		if tp != nil {
			paths = append(paths, *tp)
		}
	}
	return finish(out, paths, oc, func(w io.Writer, paths []report.TraceResult) error {
		if o.g.output == formatDot {
			return render.TraceDot(w, paths)
		}
		return render.TraceText(w, paths, render.TraceOptions{MaxTTL: o.maxTTL, Rate: o.rate, Wide: o.wide})
	})
}

// resolveTargets returns the --source address (invalid when not given) and
// every target's address, in order; a bad target is a usage error, a name
// that did not resolve is in unresolved (see unresolvedTargets).
func (o *traceOptions) resolveTargets(ctx context.Context, d *deps) (netip.Addr, []netip.Addr, []*resolveError, error) {
	var src netip.Addr
	if o.source != "" {
		src, _ = netip.ParseAddr(o.source)
		src = src.Unmap()
	}
	targets, unresolved, err := resolveTargets(ctx, o.g, d, o.targets)
	if err != nil {
		return src, nil, nil, err
	}
	// A named set (@roots) stands for its members: o.targets becomes
	// their names, one per address, in order.
	o.targets = o.targets[:0:0]
	addrs := make([]netip.Addr, 0, len(targets))
	for _, t := range targets {
		if src.IsValid() && src.Is4() != t.addr.Is4() && t.set != "" {
			continue // a set's members of the --source family only
		}
		if src.IsValid() && src.Is4() != t.addr.Is4() {
			return src, nil, nil, usageErr("--source %s and target %s: different address families", src, t.input)
		}
		o.targets = append(o.targets, t.input)
		addrs = append(addrs, t.addr)
	}
	return src, addrs, unresolved, nil
}

// libOptions are the trace package's options for one target.
func (o *traceOptions) libOptions(target, src netip.Addr, d *deps) trace.Options {
	opts := trace.Options{
		Target:   target,
		Source:   src,
		Proto:    trace.Protocol(o.proto),
		Port:     uint16(o.port),
		SrcPort:  uint16(o.sport),
		Mode:     trace.Mode(o.mode),
		FirstTTL: o.firstTTL,
		MaxTTL:   o.maxTTL,
		Queries:  o.queries,
		Window:   o.window,
		Rate:     o.rate,
		Wait:     o.wait,
		QName:    dns.Fqdn(o.qname),
		Net:      d.traceNet,
	}
	if o.proto == "icmp" {
		opts.Port = 0
	}
	return opts
}

// enrich looks up the origins and reverse names of a finished path, in one
// batch, after probing; a failed or slow lookup is a warning and leaves the
// trace intact. After Ctrl-C it takes only what the cache or an offline
// table can say at once.
func (o *traceOptions) enrich(ctx context.Context, out *runOutput, resolver whois.Resolver, input string, p trace.Path, tp *report.TraceFlow, interrupted bool) {
	tps := []report.TraceFlow{*tp}
	o.e.enrichPaths(ctx, o.g, resolver, input, "trace", []trace.Path{p}, tps, interrupted).report(out)
	*tp = tps[0]
}

// progress shows a one-line live status on stderr when it is a terminal:
// the hops of one target, or how many of several targets are done. Traces
// report to it from their own goroutines.
type progress struct {
	s       *streams
	targets int

	mu    sync.Mutex
	hops  int // hops final so far, over all targets
	ended int // targets finished
}

func newProgress(s *streams, targets int) *progress {
	return &progress{s: s, targets: targets}
}

func (p *progress) hop(target string, h trace.Hop) {
	if !p.s.errTTY {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hops++
	if p.targets == 1 {
		p.s.status("tracing %s: %d hops done (ttl %d)", render.Escape(target), p.hops, h.TTL)
		return
	}
	p.s.status("tracing %d targets: %d done, %d hops", p.targets, p.ended, p.hops)
}

func (p *progress) targetDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ended++
}

func (p *progress) done() { p.s.clearStatus() }
