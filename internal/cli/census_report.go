package cli

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/census"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/whois"
)

type censusReportOptions struct {
	g      *globalOptions
	cmdIO  // its streams and dependencies
	e      enrichOptions
	places censusPlaces
	prefix prefixLen
	census string
	files  []string
}

func newCensusReportCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *censusReportOptions) error) *cobra.Command {
	o := &censusReportOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "report [--prefix-len N] FILE...",
		Short: "Join the listeners' files of an active census into its catchment",
		Long: `Read what 'census listen' recorded at every site (JSONL, JSON or CSV; the
CSV of Verfploeter and MAnycastR too) and, optionally, what 'census send'
sent, and report the catchment: for every target prefix (/24, /48) the site
that received its reply, prefixes whose replies reached several sites, the
prefixes sent to without a reply (with the sender's file), and each site's
share, origin ASes and countries (with --asn; Verfploeter files carry them).
Files holding several censuses need --census to pick one.`,
		Example: `  anycheck census report fra.jsonl ams.jsonl sin.jsonl sent.jsonl
  anycheck census report --asn file:pfx2as.txt -o csv */census-2a.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.files = args
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runCensusReport(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	registerPrefixLen(f, &o.prefix)
	f.StringVar(&o.census, "census", "", "the census to report (hex id) when the files hold several")
	registerCensusEnrich(f, &o.e)
	o.places.register(f)
	outputVar(cmd, g, formatText, censusFormats...)
	return cmd
}

func runCensusReport(ctx context.Context, o *censusReportOptions) error {
	s, d := o.s, o.d
	want, err := censusIDFlag(o.census)
	if err != nil {
		return err
	}
	resolver, err := censusResolver(&o.e, o.g, d)
	if err != nil {
		return err
	}
	var (
		recs    census.Records
		origins = whois.Fixed{} // what the files carry
		anycast []netip.Addr
		inputs  []report.CensusInput
	)
	for _, file := range o.files {
		f, err := os.Open(file)
		if err != nil {
			return usageErr("%v", err)
		}
		var in report.CensusInput
		format, err := report.ReadCensusFile(f, func(r report.CensusRecord) error {
			if r.Anycast.IsValid() {
				if !slices.Contains(anycast, r.Anycast) {
					anycast = append(anycast, r.Anycast)
				}
				return nil
			}
			in.Records++
			switch {
			case r.Reply != nil:
				in.Queries++
				recs.AddReply(*r.Reply)
				if r.Origin != nil {
					origins[r.Reply.Target] = *r.Origin
				}
			case r.Sent != nil:
				recs.AddSent(r.SentCensus, r.SentSite, *r.Sent)
			}
			return ctx.Err()
		})
		f.Close()
		if err != nil && ctx.Err() == nil {
			return usageErr("%s: %v", file, err)
		}
		in.File, in.Format, in.Skipped, in.Identities = file, format, map[string]uint64{}, []string{}
		inputs = append(inputs, in)
		if ctx.Err() != nil {
			break
		}
	}
	// One census per report.
	ids := recs.Censuses()
	if want == 0 {
		if len(ids) > 1 {
			var list []string
			for _, id := range ids {
				list = append(list, report.CensusID(id))
			}
			sort.Strings(list)
			return usageErr("the files hold %d censuses (%s): pick one with --census", len(ids), strings.Join(list, ", "))
		}
		if len(ids) == 1 {
			want = ids[0]
		}
	} else if !slices.Contains(ids, want) {
		return usageErr("--census %s: not in the files", report.CensusID(want))
	}
	joined := recs.Report(want, census.JoinOptions{PrefixLen4: o.prefix.v4, PrefixLen6: o.prefix.v6})
	out := newRunOutput(s, o.g, d, report.KindCensus)
	if joined.Unsent {
		out.warn("no sender's file (census send -o jsonl): the targets without a reply are not known")
	}
	id := report.CensusID(want)
	var sender *string
	if len(joined.Senders) > 0 {
		names := make([]string, len(joined.Senders))
		for i, n := range joined.Senders {
			names[i] = render.Escape(n)
		}
		sn := strings.Join(names, ",")
		sender = &sn
	}
	// Origins the files carry (Verfploeter's AS and country) stand in for
	// a lookup when no --asn source is given.
	if resolver == nil && len(origins) > 0 {
		resolver = origins
	}
	slices.SortFunc(anycast, netip.Addr.Compare)
	return writeCensus(ctx, joined.Census, censusOutput{out: out, resolver: resolver, places: &o.places, inputs: inputs, id: &id, sender: sender, services: anycast,
		interrupted: ctx.Err() != nil})
}
