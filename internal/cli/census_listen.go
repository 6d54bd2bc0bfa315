package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/census"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
)

type censusListenOptions struct {
	g        *globalOptions
	cmdIO    // its streams and dependencies
	anycast  string
	site     string
	duration time.Duration
	census   string
}

func newCensusListenCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *censusListenOptions) error) *cobra.Command {
	o := &censusListenOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "listen --anycast ADDR --site NAME [--duration D]",
		Short: "Record a census's echo replies at this site (JSONL until Ctrl-C or --duration)",
		Long: `Capture the ICMP echo replies addressed to the anycast address that carry a
census payload, and write one JSONL record per reply (-o jsonl is the default
here; -o csv, text and json too) until Ctrl-C or --duration. Replies without
the payload (other programs' pings) and, with --census, those of another
census are counted and ignored. Run it at every site before 'census send', and
give the files to 'census report'. Needs raw ICMP sockets (root or
cap_net_raw) and the anycast address on this host.`,
		Example: `  anycheck census listen --anycast 192.0.2.53 --site ams --census 2a --duration 5m > ams.jsonl`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runCensusListen(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.anycast, "anycast", "", "the anycast service address the replies come to (this host holds it)")
	f.StringVar(&o.site, "site", "", "this site's name, written in every reply record")
	durationVarP(f, &o.duration, "duration", "", 0, "stop after this long (default: at Ctrl-C)")
	f.StringVar(&o.census, "census", "", "keep only this census's replies (hex id, as given to census send); default: any census")
	outputVar(cmd, g, formatJSONL, censusFormats...)
	return cmd
}

func runCensusListen(ctx context.Context, o *censusListenOptions) error {
	s, d := o.s, o.d
	anycast, err := censusAnycast(o.anycast)
	if err != nil {
		return err
	}
	if err := censusSite(o.site); err != nil {
		return err
	}
	if o.duration < 0 {
		return usageErr("--duration %s: must be positive", o.duration)
	}
	id, err := censusIDFlag(o.census)
	if err != nil {
		return err
	}
	held, err := holdsAddr(d, anycast)
	if err != nil {
		return err
	}
	if !held {
		return usageErr("--anycast %s: this host does not hold that address, so no reply comes here", anycast)
	}
	conn, err := censusConn(d, anycast, true)
	if err != nil {
		return err
	}
	defer conn.Close()

	out := newRunOutput(s, o.g, d, report.KindCensusListen)
	out.source(anycast.String())
	lctx := ctx
	if o.duration > 0 {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	var cw *csv.Writer
	if o.g.output == formatCSV {
		cw = csv.NewWriter(s.out)
		cw.Write(render.CensusReplyHeader)
		cw.Flush()
	}
	idText := "any census"
	if id != 0 {
		idText = "census " + report.CensusID(id)
	}
	until := "until Ctrl-C"
	if o.duration > 0 {
		until = "for " + o.duration.String()
	}
	warn(s, "listening at %s on %s for the echo replies of %s, %s", render.Escape(o.site), anycast, idText, until)
	var all []report.CensusReply
	var mu sync.Mutex
	var werr error
	st, err := census.Listen(lctx, conn, census.ListenOptions{Site: o.site, Census: id, Now: d.now, OnReply: func(r census.Reply) {
		mu.Lock()
		defer mu.Unlock()
		rec := report.FromReply(r)
		switch o.g.output {
		case formatJSONL:
			out.record(report.Record{Schema: report.Schema, Kind: report.KindCensusListen, Type: report.RecordReply, Reply: &rec})
		case formatJSON:
			all = append(all, rec)
		case formatCSV:
			cw.Write(render.CensusReplyRecord(rec))
			cw.Flush() // a listener's file is read while it runs (tail -f)
			if werr == nil {
				werr = cw.Error()
			}
		default:
			if werr == nil {
				_, werr = fmt.Fprintln(s.out, render.CensusReplyLine(rec))
			}
		}
	}})
	if err != nil {
		out.problem(report.Problem{Stage: "listen", Message: fmt.Sprintf("listen on %s: %v", anycast, err)})
	}
	if werr != nil {
		return werr
	}
	ls := report.FromListenStats(st, o.site, anycast.String(), id)
	out.doc.CensusListen = &ls
	// Ctrl-C is how an open-ended listener ends; one bounded by
	// --duration that is cut short was interrupted.
	interrupted := o.duration > 0 && ctx.Err() != nil
	failed := 0
	if err != nil {
		failed = 1
	}
	return finish(out, all, outcome{interrupted: interrupted, failed: failed}, func(w io.Writer, _ []report.CensusReply) error {
		if o.g.output == formatCSV {
			return nil
		}
		return render.CensusListenText(w, &ls)
	})
}
