package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/measure"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/probe"
)

type idOptions struct {
	g        *globalOptions
	cmdIO    // its streams and dependencies
	targets  []string
	port     int
	sport    int
	flows    int
	count    int
	interval time.Duration
	queryFlags
	rate   float64
	strict bool
}

func newIDCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *idOptions) error) *cobra.Command {
	o := &idOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "id TARGET...",
		Short: "Ask an anycast DNS service which instance answers (CHAOS TXT + NSID)",
		Long: `Ask each TARGET (an address or a host name) who it is: CHAOS TXT queries for
hostname.bind and id.server (plus version.bind and version.server with
--version), each carrying the EDNS NSID option. Every query of a run leaves
from one source port, so all answers describe one path to one instance.
The queries of a run go out at once, and every target and flow is probed
at the same time, within --rate; results are shown in the order given.
With --flows N, one line per flow (source port, instance, RTT) and the
instances' shares of the flows; flows that reach different instances are a
catchment split (exit 3 with --strict).

@roots stands for the 13 root server letters (their IPv4 and IPv6
addresses, or those of the family -4/-6 chooses).`,
		Example: `  anycheck id 192.0.2.53
  anycheck id --flows 8 -c 3 2001:db8:53::53
  anycheck id --flows 32 --strict 192.0.2.53
  anycheck id --tcp --version -o json ns.example.net
  anycheck id -4 @roots`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.targets = args
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runID(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.port, "port", 53, "destination port")
	f.IntVar(&o.sport, "sport", 0, "source port of the (first) flow; 0 = an ephemeral port")
	f.IntVar(&o.flows, "flows", 1, "repeat over N flows (source ports) to find catchment splits")
	f.IntVarP(&o.count, "count", "c", 1, "runs per flow")
	durationVarP(f, &o.interval, "interval", "", time.Second, "pause between runs with -c (a duration, or seconds)")
	o.queryFlags.register(f)
	rateVar(f, &o.rate, probe.DefaultRate, "queries per second over the whole run (all targets and flows)")
	f.BoolVar(&o.strict, "strict", false, "exit 3 when flows reach more than one instance (a catchment split; needs --flows N)")
	addLocationFlag(cmd, o.g)
	outputVar(cmd, g, formatText, streamFormats...)
	addLabelFlag(cmd, o.g)
	return cmd
}

func (o *idOptions) validate() error {
	if err := flowPorts(o.port, o.sport, o.flows); err != nil {
		return err
	}
	if o.count < 1 {
		return usageErr("-c %d: must be at least 1", o.count)
	}
	if o.interval < 0 {
		return usageErr("--interval %s: must not be negative", o.interval)
	}
	if err := o.queryFlags.validate(); err != nil {
		return err
	}
	if o.strict && o.flows < 2 {
		return usageErr("--strict: one flow cannot show a catchment split; add --flows N (N > 1)")
	}
	return nil
}

// idTarget is one resolved target and, once its flows are done, its runs.
type idTarget struct {
	target
	probe.TargetRuns
}

func runID(ctx context.Context, o *idOptions) error {
	s, d := o.s, o.d
	// Resolve every target first: a bad target is a usage error before any
	// packet is sent; a name that does not resolve fails on its own.
	resolved, unresolved, err := resolveTargets(ctx, o.g, d, o.targets)
	if err != nil {
		return err
	}
	out := newRunOutput(s, o.g, d, report.KindID)
	failed, err := unresolvedTargets(out, len(resolved), unresolved)
	if err != nil {
		return err
	}
	run := &idRun{o: o, out: out, results: make([]report.IDTarget, len(resolved)), failed: failed}
	po := probe.FlowsOptions{
		Flows: o.flows, Sport: uint16(o.sport), Runs: o.count, Interval: o.interval,
		Version: o.version, TCP: o.tcp, Timeout: o.g.timeout, Rate: o.rate, Net: d.probeNet,
		OnRun: func(_, _ int, res probe.Result) { out.source(res.Source.String()) },
		OnTarget: func(i int, tr probe.TargetRuns) {
			run.finishTarget(ctx, i, &idTarget{target: resolved[i], TargetRuns: tr})
		},
	}
	po.Names = o.qnames()
	for _, r := range resolved {
		po.Targets = append(po.Targets, netip.AddrPortFrom(r.addr, uint16(o.port)))
	}
	// Every flow of every target at once, within the budget; each
	// target's result is streamed (-o jsonl) as soon as its last flow is
	// done, and shown in the order given at the end.
	probe.RunFlows(ctx, po)
	return finish(out, run.results, outcome{failed: run.failed, interrupted: ctx.Err() != nil}, render.IDText)
}

// idRun is the state one `anycheck id` shares between its targets.
type idRun struct {
	o   *idOptions
	out *runOutput

	mu      sync.Mutex
	results []report.IDTarget // in the order given
	failed  int
}

// finishTarget reports one target whose flows are all done.
func (r *idRun) finishTarget(ctx context.Context, i int, t *idTarget) {
	// A flow that could not be opened is this host's problem, said as
	// such, not a silent target.
	for _, err := range t.Setup {
		if err == nil {
			continue
		}
		msg := err.Error()
		var be *probe.BindError
		if errors.As(err, &be) && r.o.sport != 0 {
			msg = fmt.Sprintf("cannot use source port %d (--sport): %v", be.Addr.Port(), be.Err)
		}
		r.out.problem(report.Problem{Target: t.input, Stage: "probe", Message: msg})
	}
	res := report.FromIDRuns(t.input, t.Target, r.o.tcp, t.Flows, catchment.BuiltinSites())
	res.Operator = t.operator
	if r.o.flows > 1 {
		flows := live.IDFlows(t.Flows)
		res.FlowSummary = report.FromSplit(len(flows), catchment.SplitOf(flows))
	}
	if res.Failed && ctx.Err() == nil {
		res.Error = t.failure(r.o.g.timeout)
		if t.opened() {
			// A flow that could not be opened was reported already.
			r.out.problem(report.Problem{Target: t.input, Stage: "probe", Message: res.Error})
		}
	}
	// Some flows without an answer while others had one: the target is
	// no failure, but the run is partial (exit 3), as a sweep whose flows
	// did not all reach the target.
	silent := !res.Failed && ctx.Err() == nil && r.o.flows > 1 && t.silentFlows(r.o.g.timeout, r.out)
	r.mu.Lock()
	r.results[i] = res
	if (res.Failed || silent) && ctx.Err() == nil {
		r.failed++
	}
	if r.o.strict && res.FlowSummary != nil && res.FlowSummary.Split {
		r.failed++
		r.out.warn(fmt.Sprintf("%s: catchment split by flow (--strict): exit %d", render.Escape(t.input), ExitPartial))
	}
	r.mu.Unlock()
	r.out.result(res.Input, res)
}

// silentFlows reports the flows of t that got no DNS answer to any query
// (or could not be opened, said already) as one problem naming their
// ports, and whether there were any.
func (t *idTarget) silentFlows(timeout time.Duration, out *runOutput) bool {
	var ports []int
	unopened := 0
	for f, runs := range t.Flows {
		if len(runs) == 0 {
			if t.Setup[f] != nil {
				unopened++
			}
			continue
		}
		answered := false
		for _, res := range runs {
			for _, a := range res.Answers {
				answered = answered || a.Replied()
			}
		}
		if !answered {
			ports = append(ports, int(runs[0].Source.Port()))
		}
	}
	if len(ports) > 0 {
		slices.Sort(ports)
		what := "ports"
		if len(ports) == 1 {
			what = "port"
		}
		out.problem(report.Problem{Target: t.input, Stage: "probe", Message: fmt.Sprintf("%s: %d of %d flows got no DNS answer within %s (%s %s); the others did",
			t.input, len(ports), len(t.Flows), timeout, what, render.PortRanges(ports))})
	}
	return len(ports)+unopened > 0
}

// opened reports whether some flow of t made a run.
func (t *idTarget) opened() bool {
	for _, runs := range t.Flows {
		if len(runs) > 0 {
			return true
		}
	}
	return false
}

// failure says why no query to t got an answer: its flows could not be
// opened, or what each query met instead (timeouts, errors, messages that
// were not answers).
func (t *idTarget) failure(timeout time.Duration) string {
	if !t.opened() {
		for _, err := range t.Setup {
			if err != nil {
				return "no flow could be opened: " + err.Error()
			}
		}
	}
	type seen struct {
		n      int
		detail string
	}
	var order []measure.Status
	by := map[measure.Status]*seen{}
	for _, runs := range t.Flows {
		for _, res := range runs {
			for _, a := range res.Answers {
				if by[a.Status] == nil {
					by[a.Status] = &seen{detail: a.Detail}
					order = append(order, a.Status)
				}
				by[a.Status].n++
			}
		}
	}
	if len(order) == 1 && order[0] == measure.StatusTimeout {
		return fmt.Sprintf("no reply from %s within %s", t.Target, timeout)
	}
	parts := make([]string, len(order))
	for i, st := range order {
		parts[i] = fmt.Sprintf("%d %s", by[st].n, st)
		if st != measure.StatusTimeout && by[st].detail != "" {
			parts[i] += " (" + by[st].detail + ")"
		}
	}
	return fmt.Sprintf("no DNS answer from %s: %s", t.Target, strings.Join(parts, ", "))
}

func hostname(d *deps) string {
	h, err := d.hostname()
	if err != nil {
		return ""
	}
	return h
}

// flowPorts checks the flags that place a run's flows (id, watch): the
// service --port, the first --sport (0: ephemeral) and --flows, whose
// ports run from --sport up.
func flowPorts(port, sport, flows int) error {
	if err := portFlag("port", port); err != nil {
		return err
	}
	if sport != 0 {
		if err := portFlag("sport", sport); err != nil {
			return err
		}
	}
	if flows < 1 || flows > 256 {
		return usageErr("--flows %d: must be between 1 and 256", flows)
	}
	if sport != 0 && sport+flows-1 > 65535 {
		return usageErr("--sport %d with --flows %d: ports run past 65535", sport, flows)
	}
	return nil
}
