package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/watch"
)

// minWatchInterval keeps a watch from turning into a flood.
const minWatchInterval = watch.MinInterval

type watchOptions struct {
	g         *globalOptions
	cmdIO     // its streams and dependencies
	e         enrichOptions
	targets   []string
	port      int
	sport     int
	flows     int
	count     int
	interval  time.Duration
	duration  time.Duration
	lostAfter int
	strict    bool
	queryFlags
	trace   bool
	mode    string
	maxTTL  int
	rate    float64
	metrics string // --metrics ADDR: serve the watch's state to Prometheus
	// countSet and durationSet: the watch is bounded, so a signal is an
	// interruption; an unbounded watch ends normally on Ctrl-C.
	countSet, durationSet bool
}

func newWatchCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *watchOptions) error) *cobra.Command {
	o := &watchOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "watch TARGET...",
		Short: "Watch which instance answers over time: switches, losses and affinity",
		Long: `Ask each TARGET who it is every --interval, always over the same flow (one
fixed source port, or --flows N of them), and print one line per event:
the first instance (start), an instance switch with the RTT before and
after, a loss (` + fmt.Sprint(catchment.LostAfter) + ` rounds in a row without any reply, --lost-after), the return,
answers that look intercepted (suspect), and send errors. With --trace the
flow is traced at the start and after every switch, and the hops that
changed are shown. The watch runs until Ctrl-C, -c or --duration; then a
summary gives the instances seen, each one's share of the watched time
(affinity), switches, losses, the longest stable run and RTT percentiles.
@roots stands for the root server letters, as for id.
Exit status 3 when there was at least one switch or loss, 0 otherwise.`,
		Example: `  anycheck watch 192.0.2.53
  anycheck watch --interval 1s --duration 10m --trace -o jsonl 2001:db8:53::53
  anycheck watch --flows 4 -c 360 ns.example.net`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.targets = args
			o.countSet = cmd.Flags().Changed("count")
			o.durationSet = cmd.Flags().Changed("duration")
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runWatch(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.port, "port", 53, "destination port")
	f.IntVar(&o.sport, "sport", 0, "source port of the (first) flow; 0 = an ephemeral port, chosen once and kept")
	f.IntVar(&o.flows, "flows", 1, "watch N flows (source ports) at once")
	f.IntVarP(&o.count, "count", "c", 0, "stop after N rounds per flow (default: until Ctrl-C or --duration)")
	durationVarP(f, &o.interval, "interval", "", 10*time.Second, "time between rounds (at least 100ms; a duration, or seconds)")
	durationVarP(f, &o.duration, "duration", "", 0, "stop after this long (default: until Ctrl-C or -c)")
	f.IntVar(&o.lostAfter, "lost-after", catchment.LostAfter, "rounds in a row without any reply that make a loss")
	f.BoolVar(&o.strict, "strict", false, "exit 3 when a target's flows spend most of their time on different instances (a catchment split; needs --flows N)")
	o.queryFlags.register(f)
	f.BoolVar(&o.trace, "trace", false, "trace the flow at the start and after every switch, and show the hops that changed")
	modeVar(f, &o.mode, "socket mode of --trace: auto, raw (CAP_NET_RAW) or socket (unprivileged; udp)")
	f.IntVarP(&o.maxTTL, "max-ttl", "m", trace.DefaultMaxTTL, "maximum TTL of --trace")
	rateVar(f, &o.rate, trace.DefaultRate, "packets per second over the whole watch (queries of every flow, --trace probes)")
	f.StringVar(&o.metrics, "metrics", "", "serve each flow's state (instance, switches, losses, time per instance) to Prometheus at http://ADDR/metrics while watching")
	o.e.register(f)
	addLocationFlag(cmd, o.g)
	outputVar(cmd, g, formatText, streamFormats...)
	addLabelFlag(cmd, o.g)
	return cmd
}

func (o *watchOptions) validate() error {
	if err := flowPorts(o.port, o.sport, o.flows); err != nil {
		return err
	}
	if o.countSet && o.count < 1 {
		return usageErr("--count %d: must be at least 1 (leave it out to watch until Ctrl-C)", o.count)
	}
	if o.interval < minWatchInterval {
		return usageErr("--interval %s: must be at least %s", o.interval, minWatchInterval)
	}
	if o.durationSet && o.duration <= 0 {
		return usageErr("--duration %s: must be positive (leave it out to watch until Ctrl-C)", o.duration)
	}
	if o.metrics != "" {
		if _, _, err := net.SplitHostPort(o.metrics); err != nil {
			return usageErr("--metrics %q: want HOST:PORT or :PORT", o.metrics)
		}
	}
	if o.strict && o.flows < 2 {
		return usageErr("--strict: one flow cannot show a catchment split; add --flows N (N > 1)")
	}
	if o.lostAfter < 1 || o.lostAfter > 1000 {
		return usageErr("--lost-after %d: must be between 1 and 1000", o.lostAfter)
	}
	if err := o.queryFlags.validate(); err != nil {
		return err
	}
	if o.trace && o.tcp && o.mode == "socket" {
		return usageErr("--trace with --tcp needs raw sockets: --mode socket traces udp only")
	}
	if o.maxTTL < 1 || o.maxTTL > 255 {
		return usageErr("-m %d: must be between 1 and 255", o.maxTTL)
	}
	return nil
}

func runWatch(ctx context.Context, o *watchOptions) error {
	s, d := o.s, o.d
	targets, unresolved, err := resolveTargets(ctx, o.g, d, o.targets)
	if err != nil {
		return err
	}
	sites := catchment.BuiltinSites()
	wo := watch.Options{
		Flows: o.flows, Sport: uint16(o.sport), Interval: o.interval, Count: o.count, LostAfter: o.lostAfter, Sites: sites,
		Version: o.version, TCP: o.tcp, Timeout: o.g.timeout, Budget: trace.NewBudget(o.rate),
		Trace: o.trace, Mode: trace.Mode(o.mode), MaxTTL: o.maxTTL,
		ProbeNet: d.probeNet, TraceNet: d.traceNet,
	}
	if o.durationSet {
		wo.Duration = o.duration
	}
	wo.Names = o.qnames()
	for _, tg := range targets {
		wo.Targets = append(wo.Targets, watch.Target{Input: tg.input, Addr: netip.AddrPortFrom(tg.addr, uint16(o.port))})
	}
	if o.trace {
		r, err := o.e.resolver(o.g, d)
		if err != nil {
			return err
		}
		wo.Resolver, wo.PTR = r, o.e.ptr(o.g)
	}
	out := newRunOutput(s, o.g, d, report.KindWatch)
	unres, err := unresolvedTargets(out, len(targets), unresolved)
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &watchWriter{o: o, s: s, out: out, cancel: cancel, sites: sites, status: &watchStatus{s: s, flows: len(targets) * o.flows}, last: map[int]*report.TraceFlow{}, kept: map[int]*keptEvents{}}
	for i := range len(targets) * o.flows {
		w.kept[i] = &keptEvents{}
	}
	wo.OnEvent, wo.OnRound = w.event, w.round
	if o.metrics != "" {
		m, stop, err := serveWatchMetrics(runCtx, o.metrics, s)
		if err != nil {
			return err
		}
		defer stop()
		wo.RoundSummaries = true
		wo.OnRound = func(r watch.Round) {
			m.Round(r)
			w.round(r)
		}
	}
	res, err := watch.Run(runCtx, wo)
	w.status.clear()
	if errors.Is(err, trace.ErrPermission) {
		proto := "udp"
		if o.tcp {
			proto = "tcp"
		}
		return permissionErr(err, permissionHint(proto, o.mode))
	}
	if err != nil {
		return err
	}
	if w.writeErr != nil {
		return w.writeErr
	}
	// One result per target: its flows, in the order given, and — for
	// several — how they spread over instances.
	var results []report.WatchTarget
	changed := 0
	for _, t := range res.Targets {
		var wfs []report.WatchFlow
		for _, f := range t.Flows {
			if f.Summary.Switches > 0 || f.Summary.Losses > 0 {
				changed++
			}
			k := w.kept[f.Flow.Index]
			wfs = append(wfs, report.FromWatchSummary(w.flowID(f.Flow, res.Start), f.Summary, f.Answers, f.Current, k.events, k.omitted))
		}
		if o.strict && t.Split != nil && t.Split.Split {
			changed++
			out.warn(fmt.Sprintf("%s: catchment split by flow (--strict): exit %d", render.Escape(t.Target.Input), ExitPartial))
		}
		rt := report.NewWatchTarget(w.flowID(t.Flows[0].Flow, res.Start), wfs, t.Split)
		results = append(results, rt)
		out.result(rt.Input, rt)
	}
	// Ctrl-C is how an open-ended watch ends; it interrupts only a watch
	// that was given a bound (-c, --duration).
	oc := outcome{failed: changed + unres, interrupted: res.Interrupted && ctx.Err() != nil && (o.countSet || o.durationSet)}
	return finish(out, results, oc, func(wr io.Writer, rs []report.WatchTarget) error {
		if w.printed {
			if _, err := fmt.Fprintln(wr); err != nil {
				return err
			}
		}
		return render.WatchText(wr, rs, render.WatchOptions{Loc: time.Local})
	})
}

// watchWriter shows a watch as it goes: each event as a line (text) or a
// record (-o jsonl), problems on stderr, the status line on a terminal.
// The engine calls it from one goroutine.
type watchWriter struct {
	o        *watchOptions
	s        *streams
	out      *runOutput
	cancel   context.CancelFunc // stdout is gone: nobody reads the watch
	sites    *catchment.Sites
	status   *watchStatus
	last     map[int]*report.TraceFlow // each flow's last trace
	kept     map[int]*keptEvents       // each flow's events for the summary
	printed  bool
	writeErr error
}

// keptEvents are a flow's events for the summary document, the last
// report.MaxWatchEvents of them.
type keptEvents struct {
	events  []report.WatchEvent
	omitted int
}

func (k *keptEvents) keep(e report.WatchEvent) {
	k.events = append(k.events, e)
	if len(k.events) >= 2*report.MaxWatchEvents {
		drop := len(k.events) - report.MaxWatchEvents
		k.omitted += drop
		k.events = append([]report.WatchEvent(nil), k.events[drop:]...)
	}
}

// flowID is a flow's identity in the report.
func (w *watchWriter) flowID(f watch.Flow, start time.Time) report.WatchFlowID {
	return report.WatchFlowID{Input: f.Target.Input, Target: f.Target.Addr, TCP: w.o.tcp, Source: f.Source, Interval: w.o.interval, Started: start, Sites: w.sites}
}

func (w *watchWriter) event(ev watch.Event) {
	id := w.flowID(ev.Flow, time.Time{})
	var e report.WatchEvent
	switch {
	case ev.Change != nil:
		e = report.FromWatchEvent(id, *ev.Change)
	case ev.Path != nil:
		e = w.pathEvent(id, ev)
	default:
		return
	}
	w.kept[ev.Flow.Index].keep(e)
	w.status.clear()
	w.status.event(e)
	switch w.out.format {
	case formatJSONL:
		w.out.record(w.out.doc.EventRecord(e))
		if err := w.out.streamErr(); err != nil && w.writeErr == nil {
			w.writeErr = err
			w.cancel()
		}
	case formatText:
		if err := render.WatchEventText(w.s.out, e, render.WatchOptions{Loc: time.Local}); err != nil && w.writeErr == nil {
			w.writeErr = err
			w.cancel()
		}
		w.printed = true
	}
}

// pathEvent is a trace event in the report: the trace with its origins
// and names, and the hops that changed since the flow's last trace. A
// failed lookup is the target's problem; the trace is whole.
func (w *watchWriter) pathEvent(id report.WatchFlowID, ev watch.Event) report.WatchEvent {
	pe := ev.Path
	input := ev.Flow.Target.Input
	if pe.Lookup.Err != nil {
		w.out.problem(lookupProblem(input, "trace", pe.Lookup.Err))
	}
	for _, msg := range w.o.e.takeWarnings() {
		w.out.warn(msg)
	}
	tp := report.FromPath(pe.Trace, w.sites)
	tp.Enrich(pe.Lookup.Origins, pe.Lookup.Names)
	tp.SetPath(pe.Facts)
	e := report.NewWatchPathEvent(id, string(pe.Trigger), ev.Time, tp, w.last[ev.Flow.Index], pe.Change, pe.Previous != nil)
	w.last[ev.Flow.Index] = &tp
	return e
}

func (w *watchWriter) round(r watch.Round) {
	if r.TraceErr != nil {
		w.out.problem(report.Problem{Target: r.Flow.Target.Input, Stage: "trace", Message: r.TraceErr.Error()})
	}
	if r.Flow.Source.IsValid() {
		w.out.source(r.Flow.Source.String())
	}
	w.status.round(r)
}

// streamErr is the first failed write of a streamed record, if any.
func (r *runOutput) streamErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// watchStatus is the quiet status line of a watch on a terminal stderr.
type watchStatus struct {
	s                *streams
	flows            int
	rounds           int
	switches, losses int
}

func (st *watchStatus) event(e report.WatchEvent) {
	switch e.Type {
	case string(catchment.WatchSwitch):
		st.switches++
	case string(catchment.WatchLost):
		st.losses++
	}
}

func (st *watchStatus) round(r watch.Round) {
	if !st.s.errTTY {
		return
	}
	st.rounds++
	var on string
	switch {
	case r.Lost:
		on = "lost"
	case !r.Replied:
		on = "no answer"
	case r.Suspect:
		on = "suspect answers"
	case r.Instance == "":
		on = "answering without an identity"
	default:
		on = "on " + render.Escape(r.Instance)
	}
	label := render.Escape(r.Flow.Target.Input)
	if r.Flow.Port != 0 {
		label += fmt.Sprintf(" :%d", r.Flow.Port)
	}
	st.s.status("watching %d flow(s): rounds %d, switches %d, losses %d; %s %s", st.flows, st.rounds, st.switches, st.losses, label, on)
}

func (st *watchStatus) clear() { st.s.clearStatus() }
