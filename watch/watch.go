// Package watch is the watch engine (`anycheck watch`): every Interval it
// asks each watched flow — a target and a source port kept for the whole
// watch — who answers, finds what changed with a catchment.Watcher (start,
// switch, lost, back, suspect, send errors) and, when asked, traces the
// flow at its start and after every switch. It hands the caller each event
// in time order over all flows, a report after each round of each flow,
// and one summary at the end.
//
// It prints nothing and keeps no globals: sockets come from Options (the
// probe and trace networks), output goes through the callbacks, and what
// a round means is the catchment model's.
package watch

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/internal/wait"
	"github.com/anycheck/anycheck/measure"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// MinInterval keeps a watch from turning into a flood.
const MinInterval = 100 * time.Millisecond

// MaxFlows bounds the flows of one target.
const MaxFlows = 256

// Target is one watched service.
type Target struct {
	Input string         // as the caller named it (a name, an address, a set's member)
	Addr  netip.AddrPort // the service's address and port
}

// Options of a watch.
type Options struct {
	Targets []Target
	// Flows is the number of flows watched per target (0: 1). Flow f of a
	// target leaves from port Sport+f, or, without Sport, from the
	// ephemeral port its first round was given, kept from then on.
	Flows int
	Sport uint16
	// Interval is the time between the starts of a flow's rounds: round k
	// starts at the watch's start + k × Interval. A round that overruns
	// (replies waited for, a trace) skips the ticks it missed. At least
	// MinInterval.
	Interval time.Duration
	// Count ends each flow after that many rounds (0: no bound); Duration
	// ends the watch that long after it started (0: no bound). Without
	// either, the watch runs until ctx ends.
	Count    int
	Duration time.Duration
	// LostAfter is the rounds in a row without any reply that make a loss
	// (0: catchment.LostAfter).
	LostAfter int
	// Sites places the instances' names (nil: catchment.BuiltinSites()).
	Sites *catchment.Sites

	// The identity query of every round (probe.Options).
	Names   []string // query names (fully qualified); nil: hostname.bind and id.server
	Version bool
	TCP     bool
	Timeout time.Duration // per query, and per reply of a trace; 0: the probe's default
	// Budget is the packet budget of the whole watch, shared by every
	// flow's queries and traces: the rounds of many flows start on the
	// same tick. Nil: trace.NewBudget(trace.DefaultRate).
	Budget *rate.Limiter

	// Trace traces a flow (same source port, same destination) after its
	// start and after every switch, over udp (or tcp with TCP), in Mode,
	// up to MaxTTL (0: trace.DefaultMaxTTL). A trace that lacks privilege
	// ends the watch: Run returns its error (trace.ErrPermission).
	Trace  bool
	Mode   trace.Mode
	MaxTTL int
	// Resolver, when set, looks up the origins of each trace's addresses
	// (one bulk lookup per trace): they give the path its AS path and
	// upstream. PTR, when set, looks up their reverse names too.
	Resolver whois.Resolver
	PTR      *whois.PTROptions

	// ProbeNet and TraceNet are the sockets of the queries and traces
	// (nil: the host's).
	ProbeNet probe.Network
	TraceNet trace.Network

	// OnEvent is called with every event, in time order over all flows.
	OnEvent func(Event)
	// OnRound is called after each round of each flow (and its trace),
	// once the round's events that are due have been given to OnEvent.
	OnRound func(Round)
	// RoundSummaries puts the flow's summary at each round's own time in
	// Round.Summary (a monitor's counters: see Round.Summary).
	RoundSummaries bool
}

// Flow names one watched flow.
type Flow struct {
	Index  int // in the watch, from 0: the targets in order, each one's flows in order
	Target Target
	// Port is the flow's source port: Sport+f, or the first round's
	// ephemeral port (0 until that round).
	Port uint16
	// Source is the local address and port the queries left from (invalid
	// until a round was sent).
	Source netip.AddrPort
}

// Event is one change on a watched flow: what its catchment.Watcher saw
// (Change), or a trace of the flow (Path).
type Event struct {
	Flow   Flow // as known when the event happened
	Time   time.Time
	Change *catchment.WatchEvent
	Path   *PathEvent
}

// PathEvent is a trace of a watched flow and how its path differs from the
// flow's previous trace.
type PathEvent struct {
	Trigger catchment.WatchEventType // catchment.WatchStart or WatchSwitch
	Trace   trace.Path
	// Lookup is what Options.Resolver and PTR said of the trace's
	// addresses (empty without them); Lookup.Err is a failed lookup, which
	// leaves the trace whole.
	Lookup whois.Enrichment
	// Flow is the trace in the catchment model and Facts its AS path and
	// upstream.
	Flow  catchment.Flow
	Facts catchment.PathFacts
	// Previous is the flow's trace before this one (nil for its first),
	// and Change how the paths differ (zero without a previous trace).
	Previous *catchment.Flow
	Change   catchment.PathChange
}

// Round is one round of one flow, reported once it is over.
type Round struct {
	Flow    Flow
	Time    time.Time        // when its queries left
	Answers []measure.Answer // one per query (none when Err is set)
	Err     error            // the queries could not be sent at all
	// Instance is the instance the flow is on after the round ("" before
	// the first, or while lost), Lost whether it is lost, Suspect whether
	// the round's answer had signs of interception (catchment.Watcher).
	Instance      string
	Lost, Suspect bool
	Replied       bool          // something came back (with or without an identity)
	RTT           time.Duration // the smallest answer's round trip; 0: no reply
	// Summary, with Options.RoundSummaries, is the flow's summary at the
	// round's own time: every earlier round credited, this one not yet, so
	// counters made from successive summaries never go back.
	Summary *catchment.WatchSummary
	// TraceErr is why the trace after the round could not be made (a
	// missing privilege ends the watch instead).
	TraceErr error
}

// Result is a finished watch.
type Result struct {
	// Start is when the watch started; End the end of the watched time
	// the summaries were cut at: when ctx ended, the start + Duration, or
	// zero (each flow's last round stands for a whole Interval).
	Start, End time.Time
	// Interrupted is set when ctx ended the watch.
	Interrupted bool
	Targets     []TargetResult // in the order given
}

// TargetResult sums up the flows of one target.
type TargetResult struct {
	Target Target
	Flows  []FlowResult
	// Split is how the flows spread over instances (each counted by the
	// instance it spent most time on); nil for a single flow.
	Split *catchment.Split
}

// FlowResult sums up one flow.
type FlowResult struct {
	Flow    Flow
	Summary catchment.WatchSummary
	Answers []measure.Answer // the last round's
	// Current is the identity of the last round that named an instance
	// without signs of interception (the instance the flow was on).
	Current measure.Identity
}

// Run watches until every flow made Count rounds, Duration passed or ctx
// ends, calling OnEvent and OnRound from the calling goroutine, one at a
// time, and returns the summary. Its error is for invalid options and for
// a trace without privilege (wrapping trace.ErrPermission), which stops
// every flow; a flow whose queries cannot be sent reports that as an
// event, round after round, and goes on.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.check(); err != nil {
		return Result{}, err
	}
	if o.Flows == 0 {
		o.Flows = 1
	}
	if o.LostAfter == 0 {
		o.LostAfter = catchment.LostAfter
	}
	if o.Sites == nil {
		o.Sites = catchment.BuiltinSites()
	}
	if o.Budget == nil {
		o.Budget = trace.NewBudget(trace.DefaultRate)
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = trace.DefaultMaxTTL
	}
	e := &engine{o: o, start: time.Now()}
	for _, t := range o.Targets {
		for f := range o.Flows {
			fl := &flow{Flow: Flow{Index: len(e.flows), Target: t}, w: catchment.NewWatcher(t.Addr.Addr(), o.Interval, o.Sites, o.LostAfter)}
			if o.Sport != 0 {
				fl.Port = o.Sport + uint16(f)
			}
			e.flows = append(e.flows, fl)
		}
	}
	fatal := e.run(ctx)
	if fatal != nil {
		return Result{}, fatal
	}
	return e.result(ctx), nil
}

func (o *Options) check() error {
	switch {
	case o.Interval < MinInterval:
		return fmt.Errorf("watch: interval %s: must be at least %s", o.Interval, MinInterval)
	case o.Flows < 0 || o.Flows > MaxFlows:
		return fmt.Errorf("watch: %d flows: must be between 1 and %d", o.Flows, MaxFlows)
	case o.Sport != 0 && int(o.Sport)+max(o.Flows, 1)-1 > 65535:
		return fmt.Errorf("watch: source port %d with %d flows: ports run past 65535", o.Sport, o.Flows)
	case o.Count < 0 || o.Duration < 0 || o.LostAfter < 0:
		return errors.New("watch: a negative count, duration or lost-after")
	case o.MaxTTL < 0 || o.MaxTTL > 255:
		return fmt.Errorf("watch: max TTL %d: must be between 1 and 255", o.MaxTTL)
	}
	for _, t := range o.Targets {
		if !t.Addr.Addr().IsValid() || t.Addr.Port() == 0 {
			return fmt.Errorf("watch target %q: need an address and a non-zero port", t.Input)
		}
	}
	return nil
}

// engine is one running watch.
type engine struct {
	o     Options
	start time.Time
	flows []*flow
}

// flow is one watched flow. Its goroutine owns it while the watch runs.
type flow struct {
	Flow
	w         *catchment.Watcher
	lastTrace *catchment.Flow
	answers   []measure.Answer // the last round's
	current   measure.Identity // the last instance named without suspicion
}

// roundReport is what a flow's goroutine hands the engine after each round.
type roundReport struct {
	flow   *flow
	round  Round
	events []Event
	// next is when the flow's next round starts at the earliest (zero: it
	// has no more): none of its later events is older.
	next  time.Time
	fatal error // the watch cannot go on (no privilege for a trace)
}

// run runs every flow's rounds and hands on their events in time order;
// it returns a trace's missing privilege.
func (e *engine) run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if e.o.Duration > 0 {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithDeadline(runCtx, e.start.Add(e.o.Duration))
		defer c2()
	}
	reports := make(chan roundReport, len(e.flows))
	var wg sync.WaitGroup
	for _, fl := range e.flows {
		wg.Go(func() { e.watch(runCtx, fl, reports) })
	}
	go func() {
		wg.Wait()
		close(reports)
	}()
	// A flow's events wait until no other flow can still report an older
	// one (each report says when its flow's next round starts).
	order := newEventOrder(e.flows, e.start)
	var fatal error
	for m := range reports {
		if m.fatal != nil {
			if fatal == nil {
				fatal = m.fatal
				cancel()
			}
			continue
		}
		for _, ev := range order.add(m) {
			e.event(ev)
		}
		if e.o.OnRound != nil {
			e.o.OnRound(m.round)
		}
	}
	for _, ev := range order.rest() {
		e.event(ev)
	}
	return fatal
}

func (e *engine) event(ev Event) {
	if e.o.OnEvent != nil {
		e.o.OnEvent(ev)
	}
}

// watch runs the rounds of one flow until ctx ends or Count is reached. A
// round cut short by the end of the watch is dropped: its queries did not
// time out.
func (e *engine) watch(ctx context.Context, fl *flow, reports chan<- roundReport) {
	o := e.o
	for k, rounds := 0, 0; o.Count == 0 || rounds < o.Count; rounds++ {
		if wait.Sleep(ctx, time.Until(e.start.Add(time.Duration(k)*o.Interval))) != nil {
			return
		}
		m, ok := e.round(ctx, fl)
		if !ok {
			return
		}
		k = int(time.Since(e.start)/o.Interval) + 1
		if o.Count == 0 || rounds+1 < o.Count {
			m.next = e.start.Add(time.Duration(k) * o.Interval)
		}
		reports <- m
		if m.fatal != nil {
			return
		}
	}
}

// round asks the query set once over the flow, finds the events and, with
// Trace, traces the flow after a start or a switch.
func (e *engine) round(ctx context.Context, fl *flow) (roundReport, bool) {
	o := e.o
	at := time.Now()
	res, err := probe.Run(ctx, probe.Options{
		Target:  fl.Target.Addr,
		Source:  netip.AddrPortFrom(netip.Addr{}, fl.Port),
		Names:   o.Names,
		Version: o.Version,
		TCP:     o.TCP,
		Timeout: o.Timeout,
		Limiter: o.Budget,
		Net:     o.ProbeNet,
	})
	if ctx.Err() != nil {
		return roundReport{}, false
	}
	r := catchment.WatchRound{Time: at}
	if err != nil {
		r.Err = err.Error()
	} else {
		r.Time = res.Started
		r.Identity, r.Answers = res.Identity, res.Answers
		if p := res.Source.Port(); p != 0 {
			fl.Port, fl.Source = p, res.Source
		}
	}
	m := roundReport{flow: fl, round: Round{Flow: fl.Flow, Time: r.Time, Err: err}}
	var trigger catchment.WatchEventType
	for _, we := range fl.w.Observe(r) {
		m.events = append(m.events, Event{Flow: fl.Flow, Time: we.Time, Change: &we})
		if we.Type == catchment.WatchStart || we.Type == catchment.WatchSwitch {
			trigger = we.Type
		}
	}
	rd := &m.round
	rd.Instance, rd.Lost = fl.w.Current()
	rd.Suspect = fl.w.Suspect()
	if err == nil {
		rd.Answers = res.Answers
		fl.answers = res.Answers
		if res.Identity.Instance != "" && !rd.Suspect {
			fl.current = res.Identity
		}
	}
	for _, a := range res.Answers {
		rd.Replied = rd.Replied || a.Replied()
		if a.Replied() && a.RTT > 0 && (rd.RTT == 0 || a.RTT < rd.RTT) {
			rd.RTT = a.RTT
		}
	}
	if o.RoundSummaries {
		s := fl.w.Summary(r.Time)
		rd.Summary = &s
	}
	if o.Trace && trigger != "" && fl.Port != 0 {
		at := time.Now()
		pe, err := e.tracePath(ctx, fl, trigger)
		switch {
		case errors.Is(err, trace.ErrPermission):
			m.fatal = err
		case err != nil:
			rd.TraceErr = err
		case pe != nil:
			m.events = append(m.events, Event{Flow: fl.Flow, Time: at, Path: pe})
		}
	}
	return m, true
}

// tracePath traces the flow (same source port, same destination) and
// compares its path with the flow's previous trace; nil when the watch
// ended during the trace.
func (e *engine) tracePath(ctx context.Context, fl *flow, trigger catchment.WatchEventType) (*PathEvent, error) {
	o := e.o
	qname := measure.NameHostnameBind
	if len(o.Names) > 0 {
		qname = o.Names[0]
	}
	proto := trace.UDP
	if o.TCP {
		proto = trace.TCP
	}
	p, err := trace.Run(ctx, trace.Options{
		Target:  fl.Target.Addr.Addr(),
		Proto:   proto,
		Port:    fl.Target.Addr.Port(),
		SrcPort: fl.Port,
		Mode:    o.Mode,
		MaxTTL:  o.MaxTTL,
		Wait:    o.Timeout,
		QName:   qname,
		Budget:  o.Budget,
		Net:     o.TraceNet,
	})
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	pe := &PathEvent{Trigger: trigger, Trace: p, Previous: fl.lastTrace}
	if o.Resolver != nil || o.PTR != nil {
		pe.Lookup = whois.Enrich(ctx, o.Resolver, p.Addresses(), o.PTR)
	}
	pe.Flow, pe.Facts = live.Path(p, pe.Lookup.Origins)
	if pe.Previous != nil {
		pe.Change = catchment.ComparePaths(*pe.Previous, pe.Flow)
	}
	cur := pe.Flow
	fl.lastTrace = &cur
	return pe, nil
}

// result sums the watch up: each flow's summary cut at the end of the
// watched time, and each target's flows with how they spread.
func (e *engine) result(ctx context.Context) Result {
	res := Result{Start: e.start, Interrupted: ctx.Err() != nil}
	// A signal ends the watched time now; Duration at its deadline; Count
	// after the last round's interval.
	switch {
	case res.Interrupted:
		res.End = time.Now()
	case e.o.Duration > 0:
		res.End = e.start.Add(e.o.Duration)
	}
	for start := 0; start < len(e.flows); start += e.o.Flows {
		group := e.flows[start : start+e.o.Flows]
		t := TargetResult{Target: group[0].Target}
		mains := make([]catchment.Flow, 0, len(group))
		for _, fl := range group {
			sum := fl.w.Summary(res.End)
			t.Flows = append(t.Flows, FlowResult{Flow: fl.Flow, Summary: sum, Answers: fl.answers, Current: fl.current})
			mf := catchment.Flow{Source: fl.Source}
			if len(sum.Instances) > 0 {
				mf.Identity = sum.Instances[0].Identity
			}
			mains = append(mains, mf)
		}
		if len(group) > 1 {
			sp := catchment.SplitOf(mains)
			t.Split = &sp
		}
		res.Targets = append(res.Targets, t)
	}
	return res
}

// eventOrder holds the events of several flows back until they can be
// handed on in time order: an event is due once every other flow's next
// round starts after it (its events are never older than its round).
type eventOrder struct {
	next    map[*flow]time.Time // flows with rounds to come
	pending []Event             // by time, flows in order for equal times
}

func newEventOrder(flows []*flow, start time.Time) *eventOrder {
	o := &eventOrder{next: map[*flow]time.Time{}}
	for _, fl := range flows {
		o.next[fl] = start
	}
	return o
}

// add takes a flow's round and returns the events now due, oldest first.
func (o *eventOrder) add(m roundReport) []Event {
	if m.next.IsZero() {
		delete(o.next, m.flow)
	} else {
		o.next[m.flow] = m.next
	}
	for _, ev := range m.events {
		i := len(o.pending)
		for i > 0 && o.pending[i-1].Time.After(ev.Time) {
			i--
		}
		o.pending = slices.Insert(o.pending, i, ev)
	}
	var low time.Time
	for _, t := range o.next {
		if low.IsZero() || t.Before(low) {
			low = t
		}
	}
	n := 0
	for n < len(o.pending) && (low.IsZero() || !o.pending[n].Time.After(low)) {
		n++
	}
	due := slices.Clone(o.pending[:n])
	o.pending = o.pending[n:]
	return due
}

// rest returns the events still held, oldest first (the watch has ended).
func (o *eventOrder) rest() []Event {
	due := o.pending
	o.pending = nil
	return due
}
