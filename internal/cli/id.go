package cli

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/probe"
)

type idOptions struct {
	g        *globalOptions
	targets  []string
	port     int
	sport    int
	flows    int
	count    int
	interval time.Duration
	tcp      bool
	version  bool
	names    []string
}

func newIDCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *idOptions) error) *cobra.Command {
	o := &idOptions{g: g}
	cmd := &cobra.Command{
		Use:   "id TARGET...",
		Short: "Ask an anycast DNS service which instance answers (CHAOS TXT + NSID)",
		Long: `Ask each TARGET (an address or a host name) who it is: CHAOS TXT queries for
hostname.bind and id.server (plus version.bind and version.server with
--version), each carrying the EDNS NSID option. Every query of a run leaves
from one source port, so all answers describe one path to one instance.`,
		Example: `  anycheck id 192.0.2.53
  anycheck id --flows 8 -c 3 2001:db8:53::53
  anycheck id --tcp --version -o json ns.example.net`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.targets = args
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runID(cmd.Context(), o, s, d))
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.port, "port", 53, "destination port")
	f.IntVar(&o.sport, "sport", 0, "source port of the (first) flow; 0 = an ephemeral port")
	f.IntVar(&o.flows, "flows", 1, "repeat over N flows (source ports) to find catchment splits")
	f.IntVarP(&o.count, "count", "c", 1, "runs per flow")
	f.DurationVar(&o.interval, "interval", time.Second, "pause between runs with -c")
	f.BoolVar(&o.tcp, "tcp", false, "query over TCP (default: UDP, TCP when truncated)")
	f.BoolVar(&o.version, "version", false, "also ask version.bind and version.server")
	f.StringSliceVar(&o.names, "name", nil, "CHAOS TXT names to ask instead of hostname.bind,id.server")
	return cmd
}

func (o *idOptions) validate() error {
	if err := portFlag("port", o.port); err != nil {
		return err
	}
	if o.sport != 0 {
		if err := portFlag("sport", o.sport); err != nil {
			return err
		}
	}
	if o.flows < 1 || o.flows > 256 {
		return usageErr("--flows %d: must be between 1 and 256", o.flows)
	}
	if o.sport != 0 && o.sport+o.flows-1 > 65535 {
		return usageErr("--sport %d with --flows %d: ports run past 65535", o.sport, o.flows)
	}
	if o.count < 1 {
		return usageErr("-c %d: must be at least 1", o.count)
	}
	if o.interval < 0 {
		return usageErr("--interval %s: must not be negative", o.interval)
	}
	for _, n := range o.names {
		if !validHostname(n) {
			return usageErr("--name %q: not a valid DNS name", n)
		}
	}
	return nil
}

// idTarget is one resolved target and the runs made so far, per flow.
type idTarget struct {
	input string
	addr  netip.AddrPort
	flows [][]probe.Result
}

func runID(ctx context.Context, o *idOptions, s *streams, d *deps) error {
	// Resolve every target first: a bad target is a usage error before any
	// packet is sent.
	targets := make([]*idTarget, 0, len(o.targets))
	for _, in := range o.targets {
		a, err := resolveTarget(ctx, o.g, d, in)
		if err != nil {
			return err
		}
		targets = append(targets, &idTarget{input: in, addr: netip.AddrPortFrom(a, uint16(o.port)), flows: make([][]probe.Result, o.flows)})
	}
	out := newRunOutput(s, o.g, d, report.KindID)
	var names []string
	for _, n := range o.names {
		names = append(names, dnsFQDN(n))
	}

	interrupted := false
rounds:
	for c := 0; c < o.count; c++ {
		if c > 0 && !sleepCtx(ctx, o.interval) {
			interrupted = true
			break
		}
		for _, t := range targets {
			for f := range o.flows {
				src := netip.AddrPortFrom(netip.Addr{}, 0)
				if prev := t.flows[f]; len(prev) > 0 {
					src = netip.AddrPortFrom(netip.Addr{}, prev[0].Source.Port())
				} else if o.sport != 0 {
					src = netip.AddrPortFrom(netip.Addr{}, uint16(o.sport+f))
				}
				res, err := probe.Run(ctx, probe.Options{
					Target:  t.addr,
					Source:  src,
					Names:   names,
					Version: o.version,
					TCP:     o.tcp,
					Timeout: o.g.timeout,
					Net:     d.probeNet,
				})
				if ctx.Err() != nil {
					// Keep what answered before the interruption; the
					// queries cut short did not time out.
					res.Answers = repliedOnly(res.Answers)
					if len(res.Answers) > 0 {
						res.Identity = probe.Summarise(res.Answers)
						t.flows[f] = append(t.flows[f], res)
					}
					interrupted = true
					break rounds
				}
				if err != nil {
					out.problem(report.Problem{Target: t.input, Stage: "probe", Message: err.Error()})
					continue
				}
				t.flows[f] = append(t.flows[f], res)
				out.source(res.Source.String())
			}
		}
	}

	results := make([]report.IDTarget, 0, len(targets))
	failed := 0
	for _, t := range targets {
		r := report.FromIDRuns(t.input, t.addr, o.tcp, t.flows)
		if r.Failed && !interrupted {
			failed++
			out.problem(report.Problem{Target: t.input, Stage: "probe",
				Message: fmt.Sprintf("no reply from %s within %s", t.addr, o.g.timeout)})
		}
		results = append(results, r)
		out.result(r.Input, r)
	}
	return finish(out, results, outcome{failed: failed, interrupted: interrupted}, render.IDText)
}

func repliedOnly(as []probe.Answer) []probe.Answer {
	var out []probe.Answer
	for _, a := range as {
		if a.Status != probe.StatusTimeout && a.Status != probe.StatusError {
			out = append(out, a)
		}
	}
	return out
}

// sleepCtx waits d or until ctx ends; it reports whether the full wait passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func dnsFQDN(n string) string {
	if n == "" || n[len(n)-1] == '.' {
		return n
	}
	return n + "."
}

func hostname(d *deps) string {
	h, err := d.hostname()
	if err != nil {
		return ""
	}
	return h
}
