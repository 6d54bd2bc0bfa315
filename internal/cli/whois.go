package cli

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
)

type whoisOptions struct {
	g      *globalOptions
	e      enrichOptions
	inputs []string
}

func newWhoisCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *whoisOptions) error) *cobra.Command {
	o := &whoisOptions{g: g}
	cmd := &cobra.Command{
		Use:   "whois ADDR... | -",
		Short: "Look up the origin AS, prefix and AS name of addresses (in bulk)",
		Long: `Look up the origin AS, BGP prefix and AS name of each address in one bulk
request (Team Cymru bulk whois by default), plus reverse DNS names unless -n.
"-" reads addresses from standard input, separated by white space. Private,
CGNAT, loopback and link-local addresses are labelled and never sent out.
Answers are cached under the user cache directory (--no-cache to bypass).`,
		Example: `  anycheck whois 192.0.2.1 2001:db8::1
  anycheck whois --asn file:routeviews-rv2-pfx2as.txt - < hops.txt`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.inputs = args
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runWhois(cmd.Context(), o, s, d))
		},
	}
	o.e.register(cmd.Flags())
	return cmd
}

// whoisAddrs parses the arguments, reading "-" from in.
func whoisAddrs(inputs []string, in io.Reader) ([]string, []netip.Addr, error) {
	var words []string
	for _, a := range inputs {
		if a != "-" {
			words = append(words, a)
			continue
		}
		sc := bufio.NewScanner(io.LimitReader(in, 64<<20))
		sc.Split(bufio.ScanWords)
		for sc.Scan() {
			words = append(words, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return nil, nil, usageErr("read addresses from standard input: %v", err)
		}
	}
	if len(words) == 0 {
		return nil, nil, usageErr("no addresses given")
	}
	addrs := make([]netip.Addr, 0, len(words))
	for _, w := range words {
		a, err := netip.ParseAddr(strings.Trim(w, "[]"))
		if err != nil {
			return nil, nil, usageErr("address %q: not an IP address", w)
		}
		addrs = append(addrs, a.Unmap())
	}
	return words, addrs, nil
}

func runWhois(ctx context.Context, o *whoisOptions, s *streams, d *deps) error {
	words, addrs, err := whoisAddrs(o.inputs, s.in)
	if err != nil {
		return err
	}
	r, err := o.e.resolver(o.g, d)
	if err != nil {
		return err
	}
	out := newRunOutput(s, o.g, d, report.KindWhois)
	en := o.e.lookup(ctx, o.g, r, addrs)
	for _, p := range en.problems {
		out.problem(p)
	}
	for _, w := range en.warnings {
		warn(s, "%s", oneLine(w))
	}
	rows := make([]report.WhoisResult, 0, len(addrs))
	for i, a := range addrs {
		row := report.WhoisResult{Input: words[i], Name: en.names[a]}
		if og, ok := en.origins[a]; ok {
			dto := report.FromOrigin(og)
			row.Origin = &dto
		}
		rows = append(rows, row)
		out.result(row.Input, row)
	}
	// A failed lookup fails the whois run (exit 3); the rows still show
	// what the cache or the source could say.
	return finish(out, rows, outcome{failed: len(en.problems), interrupted: ctx.Err() != nil}, render.WhoisText)
}
