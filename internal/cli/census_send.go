package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/anycheck/anycheck/census"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
)

type censusSendOptions struct {
	g          *globalOptions
	cmdIO      // its streams and dependencies
	anycast    string
	site       string
	rate       float64
	hitlist    string
	census     string
	maxTargets int
	yes        bool
	prefix     prefixLen
	targets    []string
}

// Bounds of a census sender.
const (
	defaultMaxTargets = 10_000
	// hardMaxTargets bounds what one run holds (an IPv4 hitlist has about
	// 4 million /24s).
	hardMaxTargets = 16 << 20
)

func newCensusSendCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *censusSendOptions) error) *cobra.Command {
	o := &censusSendOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "send --anycast ADDR --site NAME [--rate N] [--hitlist FILE] [ADDR|PREFIX...]",
		Short: "Send an active census: echo requests from the anycast address to a hitlist",
		Long: `Send one ICMP echo request from the anycast address to every target, each
carrying the census payload (census id, this site's name, the target, the send
time). The reply goes to the site whose catchment the target's network is in,
where 'census listen' records it; 'census report' joins the listeners' files.

Targets are addresses, prefixes (one address per /24 or /48 inside: the
prefix's first address after the network's, e.g. 198.51.100.1) or a hitlist
file (--hitlist: one entry per line, or the ISI hitlist format). Requests leave
at --rate per second (1000; at most 100000). More targets than --max-targets
need --yes (or a yes on the terminal). The anycast address must be one this
host holds. Ctrl-C stops the census; what was sent is recorded (-o jsonl writes
each request as it leaves). Start the listeners first, with the same --census.`,
		Example: `  anycheck census send --anycast 192.0.2.53 --site fra --census 2a --hitlist targets.txt -o jsonl > sent.jsonl
  anycheck census send --anycast 2001:db8:53::53 --site fra --rate 500 2001:db8:100::/40`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.targets = args
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runCensusSend(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.anycast, "anycast", "", "the anycast service address to send from (this host must hold it)")
	f.StringVar(&o.site, "site", "", "this site's name, written in every request's payload")
	f.Float64Var(&o.rate, "rate", census.DefaultRate, fmt.Sprintf("echo requests per second (at most %d)", census.MaxRate))
	f.StringVar(&o.hitlist, "hitlist", "", "FILE of targets: addresses or prefixes, one per line, or the ISI hitlist format")
	f.StringVar(&o.census, "census", "", "census id (hex; default: random, printed): the listeners keep only its replies")
	f.IntVar(&o.maxTargets, "max-targets", defaultMaxTargets, "more targets than this need --yes")
	f.BoolVar(&o.yes, "yes", false, "send to more than --max-targets targets without asking")
	registerPrefixLen(f, &o.prefix)
	outputVar(cmd, g, formatText, censusFormats...)
	return cmd
}

func runCensusSend(ctx context.Context, o *censusSendOptions) error {
	s, d := o.s, o.d
	anycast, err := censusAnycast(o.anycast)
	if err != nil {
		return err
	}
	if err := censusSite(o.site); err != nil {
		return err
	}
	if !(o.rate >= 1 && o.rate <= census.MaxRate) { // NaN too
		return usageErr("--rate %g: must be 1 to %d per second", o.rate, census.MaxRate)
	}
	if o.maxTargets < 1 {
		return usageErr("--max-targets %d: must be at least 1", o.maxTargets)
	}
	id, err := censusIDFlag(o.census)
	if err != nil {
		return err
	}
	if id == 0 {
		id = census.NewCensusID()
	}
	// Never send from an address this host does not hold.
	held, err := holdsAddr(d, anycast)
	if err != nil {
		return err
	}
	if !held {
		return usageErr("--anycast %s: this host does not hold that address; a census is sent only from an address the host holds (the anycast address on lo, e.g.)", anycast)
	}
	targets, other, err := o.readTargets(s, anycast)
	if err != nil {
		return err
	}
	if other > 0 {
		warn(s, "%d targets of the other address family than --anycast %s left out", other, anycast)
	}
	if len(targets) == 0 {
		return usageErr("no targets of %s's family: give ADDR, PREFIX or --hitlist FILE", anycast)
	}
	if len(targets) > o.maxTargets && !o.yes {
		if err := confirmSend(s, len(targets), o.maxTargets, anycast, o.rate); err != nil {
			return err
		}
	}
	conn, err := censusConn(d, anycast, false)
	if err != nil {
		return err
	}
	defer conn.Close()

	out := newRunOutput(s, o.g, d, report.KindCensusSend)
	out.source(anycast.String())
	warn(s, "census %s: %d echo requests from %s at %g/s (about %s)", report.CensusID(id), len(targets), anycast, o.rate,
		shortDur(time.Duration(float64(len(targets))/o.rate*float64(time.Second))))
	var cw *csv.Writer
	if o.g.output == formatCSV {
		cw = csv.NewWriter(s.out)
		cw.Write(render.CensusSentHeader)
	}
	var all []report.CensusSent
	var mu sync.Mutex
	prog := &censusProgress{s: s, start: time.Now(), what: fmt.Sprintf("of %d requests sent", len(targets))}
	failed := 0
	sum, err := census.Send(ctx, conn, targets, census.SendOptions{
		Anycast: anycast, Site: o.site, Census: id, Rate: o.rate, Now: d.now,
		OnSent: func(x census.Sent) {
			mu.Lock()
			defer mu.Unlock()
			prog.tick()
			if x.Err != nil {
				failed++
				if failed <= 10 {
					out.warn(fmt.Sprintf("send to %s: %v", x.Target, x.Err))
				}
			}
			if o.g.output == formatText {
				return
			}
			rec := report.FromSent(id, o.site, x)
			switch o.g.output {
			case formatJSONL:
				out.record(report.Record{Schema: report.Schema, Kind: report.KindCensusSend, Type: report.RecordSent, Sent: &rec})
			case formatJSON:
				all = append(all, rec)
			case formatCSV:
				cw.Write(render.CensusSentRecord(rec))
			}
		},
	})
	prog.done()
	if err != nil {
		return err
	}
	if cw != nil {
		cw.Flush()
	}
	if failed > 10 {
		warn(s, "%d sends failed in all", failed)
	}
	ss := report.FromSendSummary(sum, o.site, anycast.String(), len(targets))
	out.doc.CensusSend = &ss
	return finish(out, all, outcome{interrupted: sum.Interrupted, failed: min(failed, 1)}, func(w io.Writer, _ []report.CensusSent) error {
		if o.g.output == formatCSV {
			return cw.Error()
		}
		return render.CensusSendText(w, &ss)
	})
}

// readTargets reads the arguments and the hitlist; targets of the other
// family are counted, not kept.
func (o *censusSendOptions) readTargets(s *streams, anycast netip.Addr) ([]netip.Addr, int, error) {
	var out []netip.Addr
	other := 0
	limit := hardMaxTargets
	add := func(a netip.Addr) error {
		if a.Is4() != anycast.Is4() {
			other++
			return nil
		}
		if len(out) >= limit {
			return census.ErrTooMany
		}
		out = append(out, a)
		return nil
	}
	for _, t := range o.targets {
		err := census.Target(t, o.prefix.v4, o.prefix.v6, add)
		if errors.Is(err, census.ErrTooMany) {
			return nil, 0, usageErr("more than %d targets: split the census", hardMaxTargets)
		}
		if err != nil {
			return nil, 0, usageErr("target %v", err)
		}
	}
	if o.hitlist != "" {
		var r io.Reader = s.in
		if o.hitlist != "-" {
			f, err := os.Open(o.hitlist)
			if err != nil {
				return nil, 0, usageErr("--hitlist: %v", err)
			}
			defer f.Close()
			r = f
		}
		var addErr error
		_, err := census.ReadHitlist(r, o.prefix.v4, o.prefix.v6, 0, func(a netip.Addr) {
			if addErr == nil {
				addErr = add(a)
			}
		})
		if err == nil {
			err = addErr
		}
		if errors.Is(err, census.ErrTooMany) {
			return nil, 0, usageErr("--hitlist %s: more than %d targets: split the census", o.hitlist, hardMaxTargets)
		}
		if err != nil {
			return nil, 0, usageErr("--hitlist %s: %v", o.hitlist, err)
		}
	}
	return out, other, nil
}

// confirmSend asks on a terminal before a census larger than --max-targets;
// elsewhere (a script, a pipe) it refuses without --yes.
func confirmSend(s *streams, n, max int, anycast netip.Addr, rate float64) error {
	if !isTerminal(s.err) || !isTerminalReader(s.in) {
		return usageErr("%d targets is more than --max-targets %d: confirm with --yes (or raise --max-targets)", n, max)
	}
	fmt.Fprintf(s.err, "anycheck: send %d echo requests from %s at %g/s (more than --max-targets %d)? [y/N] ", n, anycast, rate, max)
	line, _ := bufio.NewReader(s.in).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return usageErr("census not sent: not confirmed")
	}
	return nil
}

func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func shortDur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
