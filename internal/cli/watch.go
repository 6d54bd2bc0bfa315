package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/measure"

	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/exporter"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/internal/wait"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// minWatchInterval keeps a watch from turning into a flood.
const minWatchInterval = 100 * time.Millisecond

type watchOptions struct {
	g         *globalOptions
	e         enrichOptions
	targets   []string
	port      int
	sport     int
	flows     int
	count     int
	interval  time.Duration
	duration  time.Duration
	lostAfter int
	tcp       bool
	strict    bool
	version   bool
	names     []string
	trace     bool
	mode      string
	maxTTL    int
	rate      float64
	metrics   string // --metrics ADDR: serve the watch's state to Prometheus
	// countSet and durationSet: the watch is bounded, so a signal is an
	// interruption; an unbounded watch ends normally on Ctrl-C.
	countSet, durationSet bool
}

func newWatchCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *watchOptions) error) *cobra.Command {
	o := &watchOptions{g: g}
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
			return runFailed(runWatch(cmd.Context(), o, s, d))
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
	f.BoolVar(&o.tcp, "tcp", false, "query over TCP (default: UDP, TCP when truncated)")
	f.BoolVar(&o.version, "version", false, "also ask version.bind and version.server")
	f.StringSliceVar(&o.names, "name", nil, "CHAOS TXT names to ask instead of hostname.bind,id.server")
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
	for _, n := range o.names {
		if !isDNSName(n) {
			return usageErr("--name %q: not a valid DNS name", n)
		}
	}
	if o.trace && o.tcp && o.mode == "socket" {
		return usageErr("--trace with --tcp needs raw sockets: --mode socket traces udp only")
	}
	if o.maxTTL < 1 || o.maxTTL > 255 {
		return usageErr("-m %d: must be between 1 and 255", o.maxTTL)
	}
	return nil
}

// watchedFlow is one target watched over one source port. The flow's
// goroutine owns w, port and lastTrace while it runs; the events and their
// count belong to the printing loop.
type watchedFlow struct {
	n         int // the flow's number in the watch, from 0
	id        report.WatchFlowID
	w         *catchment.Watcher
	port      uint16 // the source port, fixed once known
	lastTrace *report.TraceFlow
	lastFlow  catchment.Flow // lastTrace in the catchment model
	// lastAnswers are the last round's answers; current is the identity
	// of the last round that named an instance without signs of
	// interception (the instance the flow is on).
	lastAnswers []measure.Answer
	current     measure.Identity

	events  []report.WatchEvent // the last report.MaxWatchEvents
	omitted int
}

// watchMsg is what a flow's goroutine hands the printing loop after each round.
type watchMsg struct {
	flow   *watchedFlow
	target string // the flow's target as given
	events []timedEvent
	// next is when the flow's next round starts at the earliest (zero:
	// it has no more): none of its later events is older.
	next     time.Time
	problems []report.Problem
	source   string // the flow's local address:port, once known
	port     uint16 // its port
	instance string // the instance the flow is on now ("" none or lost)
	lost     bool   // the flow is lost
	suspect  bool   // its last answer had signs of interception
	replied  bool   // this round got a reply (with or without an identity)
	fatal    error  // the watch cannot go on (no privilege for --trace)
}

// watchEnv is what every flow's goroutine shares (read only).
type watchEnv struct {
	o        *watchOptions
	d        *deps
	names    []string
	resolver whois.Resolver // --trace enrichment
	start    time.Time      // rounds are at start + k × interval
	// budget is the watch's packet budget (--rate), shared by every
	// flow's queries and traces: the rounds of many flows start on the
	// same tick.
	budget *rate.Limiter
	// metrics is --metrics' state of every flow, updated after each round.
	metrics *exporter.WatchMetrics
	sites   *catchment.Sites // places the instances' names in the results
}

func runWatch(ctx context.Context, o *watchOptions, s *streams, d *deps) error {
	var flows []*watchedFlow
	var names []string
	for _, n := range o.names {
		names = append(names, dns.Fqdn(n))
	}
	env := &watchEnv{o: o, d: d, names: names, budget: trace.NewBudget(o.rate), sites: catchment.BuiltinSites()}
	targets, unresolved, err := resolveTargets(ctx, o.g, d, o.targets)
	if err != nil {
		return err
	}
	if o.trace {
		r, err := o.e.resolver(o.g, d)
		if err != nil {
			return err
		}
		env.resolver = r
	}
	out := newRunOutput(s, o.g, d, report.KindWatch)
	unres, err := unresolvedTargets(out, len(targets), unresolved)
	if err != nil {
		return err
	}
	env.start = time.Now()
	for _, tg := range targets {
		for f := range o.flows {
			id := report.WatchFlowID{Input: tg.input, Target: netip.AddrPortFrom(tg.addr, uint16(o.port)), TCP: o.tcp, Interval: o.interval, Started: env.start, Sites: env.sites}
			fl := &watchedFlow{n: len(flows), id: id, w: catchment.NewWatcher(tg.addr, o.interval, catchment.BuiltinSites(), o.lostAfter)}
			if o.sport != 0 {
				fl.port = uint16(o.sport + f)
			}
			flows = append(flows, fl)
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.metrics != "" {
		stop, err := serveWatchMetrics(runCtx, o.metrics, env, s)
		if err != nil {
			return err
		}
		defer stop()
	}
	if o.durationSet {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithDeadline(runCtx, env.start.Add(o.duration))
		defer c2()
	}
	msgs := make(chan watchMsg, len(flows))
	var wg sync.WaitGroup
	for _, fl := range flows {
		wg.Go(func() { fl.watch(runCtx, env, msgs) })
	}
	go func() {
		wg.Wait()
		close(msgs)
	}()

	// Everything the user sees is written here, from one goroutine, in
	// time order over all flows: a flow's events wait until no other flow
	// can still report an older one (each says when its next round starts).
	opts := render.WatchOptions{Loc: time.Local}
	status := &watchStatus{s: s, flows: len(flows)}
	printed := false
	var fatal, writeErr error
	order := newEventOrder(flows, env.start)
	emit := func(te timedEvent) {
		te.flow.keep(te.e)
		status.event(te.e)
		switch out.format {
		case formatJSONL:
			out.record(out.doc.EventRecord(te.e))
			if err := out.streamErr(); err != nil && writeErr == nil {
				writeErr = err
				cancel()
			}
		case formatText:
			if err := render.WatchEventText(s.out, te.e, opts); err != nil && writeErr == nil {
				// stdout is gone (a closed pipe): nobody reads the watch.
				writeErr = err
				cancel()
			}
			printed = true
		}
	}
	for m := range msgs {
		if m.fatal != nil {
			if fatal == nil {
				fatal = m.fatal
				cancel()
			}
			continue
		}
		status.clear()
		for _, p := range m.problems {
			out.problem(p)
		}
		if m.source != "" {
			out.source(m.source)
		}
		for _, te := range order.add(m) {
			emit(te)
		}
		status.round(m)
	}
	status.clear()
	for _, te := range order.rest() {
		emit(te)
	}

	if fatal != nil {
		if errors.Is(fatal, trace.ErrPermission) {
			proto := "udp"
			if o.tcp {
				proto = "tcp"
			}
			return permissionErr(fatal, permissionHint(proto, o.mode))
		}
		return fatal
	}
	if writeErr != nil {
		return writeErr
	}
	// The end of the watched time: a signal ends it now; --duration at its
	// deadline; -c after the last round's interval.
	signalled := ctx.Err() != nil
	var endTime time.Time
	switch {
	case signalled:
		endTime = time.Now()
	case o.durationSet:
		endTime = env.start.Add(o.duration)
	}
	// One result per target: its flows, in the order given, and — for
	// several — how they spread over instances (each flow counted by the
	// instance it spent most time on).
	var results []report.WatchTarget
	changed := 0
	for start := 0; start < len(flows); {
		end := start
		for end < len(flows) && flows[end].id.Input == flows[start].id.Input && flows[end].id.Target == flows[start].id.Target {
			end++
		}
		group := flows[start:end]
		var wfs []report.WatchFlow
		mains := make([]catchment.Flow, 0, len(group))
		for _, fl := range group {
			sum := fl.w.Summary(endTime)
			if sum.Switches > 0 || sum.Losses > 0 {
				changed++
			}
			wfs = append(wfs, report.FromWatchSummary(fl.id, sum, fl.lastAnswers, fl.current, fl.events, fl.omitted))
			mf := catchment.Flow{Source: fl.id.Source}
			if len(sum.Instances) > 0 {
				mf.Identity = sum.Instances[0].Identity
			}
			mains = append(mains, mf)
		}
		var split *catchment.Split
		if len(group) > 1 {
			sp := catchment.SplitOf(mains)
			split = &sp
			if o.strict && sp.Split {
				changed++
				out.warn(fmt.Sprintf("%s: catchment split by flow (--strict): exit %d", render.Escape(group[0].id.Input), ExitPartial))
			}
		}
		t := report.NewWatchTarget(group[0].id, wfs, split)
		results = append(results, t)
		out.result(t.Input, t)
		start = end
	}
	// Ctrl-C is how an open-ended watch ends; it interrupts only a watch
	// that was given a bound (-c, --duration).
	oc := outcome{failed: changed + unres, interrupted: signalled && (o.countSet || o.durationSet)}
	return finish(out, results, oc, func(w io.Writer, rs []report.WatchTarget) error {
		if printed {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		return render.WatchText(w, rs, opts)
	})
}

// keep holds an event for the summary document, the last
// report.MaxWatchEvents of them.
func (fl *watchedFlow) keep(e report.WatchEvent) {
	fl.events = append(fl.events, e)
	if len(fl.events) >= 2*report.MaxWatchEvents {
		drop := len(fl.events) - report.MaxWatchEvents
		fl.omitted += drop
		fl.events = append([]report.WatchEvent(nil), fl.events[drop:]...)
	}
}

// watch runs the rounds of one flow until ctx ends or -c is reached.
// Rounds start at env.start + k × interval; a round that overruns its
// interval (replies waited for up to --timeout, a trace) skips the ticks
// it missed. A round cut short by the end of the watch is dropped: its
// queries did not time out.
func (fl *watchedFlow) watch(ctx context.Context, env *watchEnv, msgs chan<- watchMsg) {
	o := env.o
	for k, rounds := 0, 0; o.count == 0 || rounds < o.count; rounds++ {
		if wait.Sleep(ctx, time.Until(env.start.Add(time.Duration(k)*o.interval))) != nil {
			return
		}
		m, ok := fl.round(ctx, env)
		if !ok {
			return
		}
		k = int(time.Since(env.start)/o.interval) + 1
		if o.count == 0 || rounds+1 < o.count {
			m.next = env.start.Add(time.Duration(k) * o.interval)
		}
		msgs <- m
		if m.fatal != nil {
			return
		}
	}
}

// timedEvent is an event of a flow with the time it happened.
type timedEvent struct {
	at   time.Time
	flow *watchedFlow
	e    report.WatchEvent
}

// eventOrder holds the events of several flows back until they can be
// written in time order: an event is written once every other flow's next
// round starts after it (its events are never older than its round).
type eventOrder struct {
	next    map[*watchedFlow]time.Time // flows with rounds to come
	pending []timedEvent               // by time, flows in order for equal times
}

func newEventOrder(flows []*watchedFlow, start time.Time) *eventOrder {
	o := &eventOrder{next: map[*watchedFlow]time.Time{}}
	for _, fl := range flows {
		o.next[fl] = start
	}
	return o
}

// add takes a flow's round and returns the events now due, oldest first.
func (o *eventOrder) add(m watchMsg) []timedEvent {
	if m.next.IsZero() {
		delete(o.next, m.flow)
	} else {
		o.next[m.flow] = m.next
	}
	for _, te := range m.events {
		i := len(o.pending)
		for i > 0 && o.pending[i-1].at.After(te.at) {
			i--
		}
		o.pending = slices.Insert(o.pending, i, te)
	}
	var low time.Time
	for _, t := range o.next {
		if low.IsZero() || t.Before(low) {
			low = t
		}
	}
	n := 0
	for n < len(o.pending) && (low.IsZero() || !o.pending[n].at.After(low)) {
		n++
	}
	due := slices.Clone(o.pending[:n])
	o.pending = o.pending[n:]
	return due
}

// rest returns the events still held, oldest first (the watch has ended).
func (o *eventOrder) rest() []timedEvent {
	due := o.pending
	o.pending = nil
	return due
}

// round asks the query set once over the flow, detects the events and,
// with --trace, traces the flow after a start or a switch.
func (fl *watchedFlow) round(ctx context.Context, env *watchEnv) (watchMsg, bool) {
	o := env.o
	at := time.Now()
	res, err := probe.Run(ctx, probe.Options{
		Target:  fl.id.Target,
		Source:  netip.AddrPortFrom(netip.Addr{}, fl.port),
		Names:   env.names,
		Version: o.version,
		TCP:     o.tcp,
		Timeout: o.g.timeout,
		Limiter: env.budget,
		Net:     env.d.probeNet,
	})
	if ctx.Err() != nil {
		return watchMsg{}, false
	}
	r := catchment.WatchRound{Time: at}
	if err != nil {
		r.Err = err.Error()
	} else {
		r.Time = res.Started
		r.Identity, r.Answers = res.Identity, res.Answers
		if p := res.Source.Port(); p != 0 {
			fl.port = p
			fl.id.Source = res.Source
		}
	}
	m := watchMsg{flow: fl, target: fl.id.Input, source: sourceString(fl.id.Source), port: fl.port}
	traceAfter := ""
	for _, e := range fl.w.Observe(r) {
		m.events = append(m.events, timedEvent{at: e.Time, flow: fl, e: report.FromWatchEvent(fl.id, e)})
		switch e.Type {
		case catchment.WatchStart, catchment.WatchSwitch:
			traceAfter = string(e.Type)
		}
	}
	m.instance, m.lost = fl.w.Current()
	m.suspect = fl.w.Suspect()
	if err == nil {
		fl.lastAnswers = res.Answers
		if res.Identity.Instance != "" && !m.suspect {
			fl.current = res.Identity
		}
	}
	var rtt time.Duration
	for _, a := range res.Answers {
		m.replied = m.replied || a.Replied()
		if a.Replied() && a.RTT > 0 && (rtt == 0 || a.RTT < rtt) {
			rtt = a.RTT
		}
	}
	if env.metrics != nil {
		// The summary at the round's own time credits every earlier
		// round: counters made from it never go back.
		env.metrics.Update(fl.n, exporter.WatchFlow{Target: fl.id.Target.Addr(), Input: fl.id.Input, Sport: fl.port,
			Summary: fl.w.Summary(r.Time), Current: m.instance, Lost: m.lost, RTT: rtt})
	}
	if o.trace && traceAfter != "" && fl.port != 0 {
		at := time.Now()
		ev, problems, fatal := fl.tracePath(ctx, env, traceAfter, at)
		m.problems = append(m.problems, problems...)
		m.fatal = fatal
		if ev != nil {
			m.events = append(m.events, timedEvent{at: at, flow: fl, e: *ev})
		}
	}
	return m, true
}

func sourceString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// tracePath traces the flow (same source port, same destination) and
// compares the path with the flow's previous trace.
func (fl *watchedFlow) tracePath(ctx context.Context, env *watchEnv, trigger string, at time.Time) (*report.WatchEvent, []report.Problem, error) {
	o := env.o
	qname := measure.NameHostnameBind
	if len(env.names) > 0 {
		qname = env.names[0]
	}
	proto := trace.UDP
	if o.tcp {
		proto = trace.TCP
	}
	p, err := trace.Run(ctx, trace.Options{
		Target:  fl.id.Target.Addr(),
		Proto:   proto,
		Port:    fl.id.Target.Port(),
		SrcPort: fl.port,
		Mode:    trace.Mode(o.mode),
		MaxTTL:  o.maxTTL,
		Wait:    o.g.timeout,
		QName:   qname,
		Budget:  env.budget,
		Net:     env.d.traceNet,
	})
	if err != nil {
		if errors.Is(err, trace.ErrPermission) {
			return nil, nil, err
		}
		return nil, []report.Problem{{Target: fl.id.Input, Stage: "trace", Message: err.Error()}}, nil
	}
	if ctx.Err() != nil {
		return nil, nil, nil
	}
	tp := report.FromPath(p, env.sites)
	var problems []report.Problem
	var origins map[netip.Addr]whois.Origin
	if env.resolver != nil {
		tps := []report.TraceFlow{tp}
		pe := o.e.enrichPaths(ctx, o.g, env.resolver, fl.id.Input, "trace", []trace.Path{p}, tps, false)
		tp, origins, problems = tps[0], pe.origins, pe.problems
	}
	flow, facts := live.Path(p, origins)
	tp.SetPath(facts)
	var prev *catchment.Flow
	if fl.lastTrace != nil {
		prev = &fl.lastFlow
	}
	ev := report.NewWatchPathEvent(fl.id, trigger, at, tp, fl.lastTrace, catchment.ComparePaths(prevFlow(prev, flow), flow), prev != nil)
	fl.lastTrace, fl.lastFlow = &tp, flow
	return &ev, problems, nil
}

// prevFlow is the flow a trace is compared with: the previous one, or
// itself for the first (no change).
func prevFlow(prev *catchment.Flow, cur catchment.Flow) catchment.Flow {
	if prev == nil {
		return cur
	}
	return *prev
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

func (st *watchStatus) round(m watchMsg) {
	if !st.s.errTTY {
		return
	}
	st.rounds++
	var on string
	switch {
	case m.lost:
		on = "lost"
	case !m.replied:
		on = "no answer"
	case m.suspect:
		on = "suspect answers"
	case m.instance == "":
		on = "answering without an identity"
	default:
		on = "on " + render.Escape(m.instance)
	}
	label := render.Escape(m.target)
	if m.port != 0 {
		label += fmt.Sprintf(" :%d", m.port)
	}
	st.s.status("watching %d flow(s): rounds %d, switches %d, losses %d; %s %s", st.flows, st.rounds, st.switches, st.losses, label, on)
}

func (st *watchStatus) clear() { st.s.clearStatus() }
