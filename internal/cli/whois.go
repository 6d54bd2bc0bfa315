package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
)

type whoisOptions struct {
	g      *globalOptions
	cmdIO  // its streams and dependencies
	e      enrichOptions
	inputs []string
}

func newWhoisCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *whoisOptions) error) *cobra.Command {
	o := &whoisOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "whois ADDR... | -",
		Short: "Look up the origin AS, prefix and AS name of addresses (in bulk)",
		Long: `Look up the origin AS, BGP prefix and AS name of each address in one bulk
request (Team Cymru bulk whois by default), plus reverse DNS names unless -n.
"-" reads addresses from standard input, separated by white space; text and
jsonl results are written in batches of 50,000 as they are looked up (-o json
holds the whole document: prefer jsonl for millions of addresses). Private,
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
			return runFailed(runWhois(cmd.Context(), o))
		},
	}
	o.e.register(cmd.Flags())
	outputVar(cmd, g, formatText, streamFormats...)
	return cmd
}

// Input limits of `whois -`: a word longer than maxInputWord cannot be an
// address; maxInputs bounds what is held (24 bytes per address).
const (
	maxInputWord = 256
	maxInputs    = 10_000_000
	// whoisBatch is how many addresses are looked up (and their rows
	// written, in text and jsonl) at a time, so memory stays bounded
	// however long the input.
	whoisBatch = 50_000
)

// whoisInputs are the parsed addresses of a run, compact: the input text
// is kept only where it differs from the address's own form.
type whoisInputs struct {
	addrs []netip.Addr
	text  map[int]string // index → input as written ("[2001:db8::1]", "::ffff:192.0.2.1")
}

func (in *whoisInputs) input(i int) string {
	if t, ok := in.text[i]; ok {
		return t
	}
	return in.addrs[i].String()
}

// add parses one word; a bad word is a usage error naming it.
func (in *whoisInputs) add(g *globalOptions, w string) error {
	a, err := parseAddrWord(w)
	if err != nil {
		return usageErr("%v", err)
	}
	if g.v4 && !a.Is4() {
		return usageErr("address %s: -4 given but this is an IPv6 address", w)
	}
	if g.v6 && !a.Is6() {
		return usageErr("address %s: -6 given but this is an IPv4 address", w)
	}
	if len(in.addrs) >= maxInputs {
		return usageErr("more than %d addresses: split the input", maxInputs)
	}
	if a.String() != w {
		if in.text == nil {
			in.text = map[int]string{}
		}
		in.text[len(in.addrs)] = w
	}
	in.addrs = append(in.addrs, a)
	return nil
}

// parseAddrWord parses one address as written on the command line or
// standard input ("192.0.2.1", "[2001:db8::1]", IPv4-mapped forms).
func parseAddrWord(w string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(w, "["), "]"))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address %q: not an IP address", w)
	}
	return a.Unmap(), nil
}

// readAddrWords calls fn for every white-space separated word of r, in
// order, streaming (nothing but the current word is held). A word longer
// than maxInputWord is an error naming its position.
func readAddrWords(r io.Reader, fn func(w string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxInputWord), maxInputWord)
	sc.Split(bufio.ScanWords)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(sc.Text()); err != nil {
			return err
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return fmt.Errorf("word %d is longer than %d bytes: not an address", n+1, maxInputWord)
	}
	return sc.Err()
}

// whoisAddrs parses the arguments, reading "-" from in. Every input is
// checked before anything is looked up, so bad input leaves stdout empty.
func whoisAddrs(g *globalOptions, args []string, in io.Reader) (*whoisInputs, error) {
	inputs := &whoisInputs{}
	for _, arg := range args {
		if arg != "-" {
			if err := inputs.add(g, arg); err != nil {
				return nil, err
			}
			continue
		}
		err := readAddrWords(in, func(w string) error { return inputs.add(g, w) })
		var ue *exitError
		if errors.As(err, &ue) {
			return nil, err
		}
		if err != nil {
			return nil, usageErr("read addresses from standard input: %v", err)
		}
	}
	if len(inputs.addrs) == 0 {
		return nil, usageErr("no addresses given")
	}
	return inputs, nil
}

func runWhois(ctx context.Context, o *whoisOptions) error {
	s, d := o.s, o.d
	inputs, err := whoisAddrs(o.g, o.inputs, s.in)
	if err != nil {
		return err
	}
	r, err := o.e.resolver(o.g, d)
	if err != nil {
		return err
	}
	out := newRunOutput(s, o.g, d, report.KindWhois)
	// Rows are written batch by batch in text and jsonl; only a JSON
	// document holds them all (use -o jsonl for very long inputs).
	var all []report.WhoisResult
	failed := 0
	for start := 0; start < len(inputs.addrs); start += whoisBatch {
		if ctx.Err() != nil {
			break
		}
		batch := inputs.addrs[start:min(len(inputs.addrs), start+whoisBatch)]
		en := o.e.lookup(ctx, o.g, r, batch)
		if en.Err != nil {
			out.problem(report.Problem{Stage: "whois", Message: en.Err.Error()})
			failed++
		}
		for _, w := range o.e.takeWarnings() {
			warn(s, "%s", oneLine(w))
		}
		rows := make([]report.WhoisResult, len(batch))
		for i, a := range batch {
			rows[i] = report.WhoisResult{Input: inputs.input(start + i), Target: a.String(), Name: en.Names[a]}
			if og, ok := en.Origins[a]; ok {
				dto := report.FromOrigin(og)
				rows[i].Origin = &dto
			}
			out.result(rows[i].Input, rows[i])
		}
		switch o.g.output {
		case formatJSON:
			all = append(all, rows...)
		case formatText:
			if err := render.WhoisTable(s.out, rows, start == 0); err != nil {
				return err
			}
		}
	}
	// A failed lookup fails the whois run (exit 3); the rows still show
	// what the cache or the source could say.
	return finish(out, all, outcome{failed: failed, interrupted: ctx.Err() != nil}, func(io.Writer, []report.WhoisResult) error {
		return nil // written batch by batch above
	})
}
