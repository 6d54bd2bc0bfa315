package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/atlas"
	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/internal/ingest"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/whois"
)

const (
	formatCSV  = "csv"
	formatDot  = "dot"
	formatSVG  = "svg"
	formatHTML = "html"
)

type compareOptions struct {
	g      *globalOptions
	cmdIO  // its streams and dependencies
	e      enrichOptions
	inputs []string
	before []string
	after  []string
	sites  string
	all    bool
	lines  bool
}

func newCompareCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *compareOptions) error) *cobra.Command {
	o := &compareOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "compare FILE|DIR|- ...",
		Short: "Compare vantage points: anycheck runs and RIPE Atlas results in one catchment report",
		Long: `Read the JSON output of anycheck id and trace (-o json or jsonl) from many
hosts, and RIPE Atlas traceroute and DNS results (a JSON array or one result
per line, optionally gzip-compressed), and report the catchment: which instance
each vantage point reaches and by which upstream, how many land on each
instance, where IPv4 and IPv6 disagree, where the paths of vantage points in
one AS part, and which answers are not from the service. Answers are judged
against what the service answers most vantage points (at least 10): TXT where
it answers SERVFAIL, RA set where it clears it, a name unlike its names.
Vantage points count by site when the instance's name places it, else by
instance, else (traceroute-only data) by where their path enters the service.
The summary comes first; the per-vantage table follows up to 50 lines, or with
--all. A DIR is read file by file; "-" is standard input. --before A --after B
lists the vantage points that moved between two runs and exits 3 when any did.`,
		Example: `  anycheck compare fra1.json ams1.json nyc1.json
  anycheck compare --asn none -o csv atlas-results.json.gz
  anycheck compare --before monday/ --after tuesday/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.inputs = args
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runCompare(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.before, "before", nil, "FILE|DIR of the run before a change (with --after)")
	f.StringArrayVar(&o.after, "after", nil, "FILE|DIR of the run after a change (with --before)")
	f.StringVar(&o.sites, "sites", "", "site-hint FILE: extra naming patterns (operator kind targets pattern), checked before the built-in ones")
	f.BoolVar(&o.all, "all", false, "list every line of the catchment table in text output (by default only up to 50)")
	f.BoolVar(&o.lines, "lines", false, "-o svg|html: draw a line from each vantage point to its site")
	o.e.register(f)
	outputVar(cmd, g, formatText, compareFormats...)
	return cmd
}

func (o *compareOptions) validate() error {
	switch {
	case len(o.before) > 0 != (len(o.after) > 0):
		return usageErr("--before and --after go together")
	case len(o.before) > 0 && len(o.inputs) > 0:
		return usageErr("give files either as arguments or with --before and --after, not both")
	case len(o.before) == 0 && len(o.inputs) == 0:
		return usageErr("no input: give FILE, DIR or - (anycheck JSON or RIPE Atlas results)")
	}
	stdin := 0
	for _, in := range slices.Concat(o.inputs, o.before, o.after) {
		if in == "-" {
			stdin++
		}
	}
	if stdin > 1 {
		return usageErr("standard input (-) can be read once")
	}
	return nil
}

// compareSide is everything read for one run: the catchment lines and
// what was read.
type compareSide struct {
	name      string // "", "before" or "after"
	collector *catchment.Collector
	inputs    []report.CompareInput
	skipped   int
	read      int
	docs      []report.ReadDoc
	docNames  []string // file of each doc
	// probes is RIPE Atlas probe metadata read alongside the results
	// (atlas run --save keeps it as probes.json): the probes' AS and country.
	probes map[int]atlas.Probe
	// notAfter is the latest time a result can have (the clock and a day):
	// a later one is read undated, so it cannot be a line's latest.
	notAfter time.Time
	// warnings groups the warnings about results, per input and kind.
	warnings resultWarnings
}

// add collects one observation; one dated after notAfter is undated first,
// with a warning naming it.
func (side *compareSide) add(out *runOutput, ob catchment.Observation) {
	if !side.notAfter.IsZero() && ob.Time.After(side.notAfter) {
		input, _, _ := cutResultIndex(ob.Input)
		side.warnings.add(out, input, "dated after this host's clock: read as undated", report.Problem{Target: ob.Input, Stage: "read",
			Message: fmt.Sprintf("%s: dated %s, after this host's clock: read as undated", ob.Input, ob.Time.Format(time.RFC3339))})
		ob.Time = time.Time{}
	}
	side.collector.Add(ob)
}

// clockSlack is how far past this host's clock a result may be dated.
const clockSlack = 24 * time.Hour

func runCompare(ctx context.Context, o *compareOptions) error {
	s, d := o.s, o.d
	sites, resolver, err := catchmentSources(o.sites, &o.e, o.g, d)
	if err != nil {
		return err
	}
	out := newRunOutput(s, o.g, d, report.KindCompare)
	prog := newReadProgress(s)
	defer prog.done()

	var sides []*compareSide
	notAfter := d.now().Add(clockSlack)
	if len(o.before) > 0 {
		sides = []*compareSide{{name: "before", notAfter: notAfter}, {name: "after", notAfter: notAfter}}
		readInputs(ctx, o.before, sides[0], s, out, prog)
		readInputs(ctx, o.after, sides[1], s, out, prog)
	} else {
		sides = []*compareSide{{notAfter: notAfter}}
		readInputs(ctx, o.inputs, sides[0], s, out, prog)
	}
	prog.done()
	interrupted := ctx.Err() != nil
	skipped, read := 0, 0
	for _, side := range sides {
		skipped += side.skipped
		read += side.read
		if side.read == 0 && !interrupted && len(sides) == 2 {
			return usageErr("--%s: no results could be read", side.name)
		}
	}
	if read == 0 && !interrupted {
		return usageErr("no results could be read from the input (anycheck v1 JSON or RIPE Atlas results)")
	}

	return writeCatchment(ctx, o.g, resolver, sites, sides, out, skipped, interrupted, render.CompareOptions{All: o.all, Lines: o.lines})
}

// catchmentSources are the site hints (built in, plus --sites FILE) and
// the ASN source (nil with --asn none) of a catchment report.
func catchmentSources(sitesFile string, e *enrichOptions, g *globalOptions, d *deps) (*catchment.Sites, whois.Resolver, error) {
	sites := catchment.BuiltinSites()
	if sitesFile != "" {
		f, err := os.Open(sitesFile)
		if err != nil {
			return nil, nil, usageErr("--sites %s: %v", sitesFile, err)
		}
		extra, err := catchment.ParseSites(f, sitesFile)
		f.Close()
		if err != nil {
			return nil, nil, usageErr("--sites: %v", err)
		}
		sites = sites.With(extra)
	}
	if e.asn == "none" {
		return sites, nil, nil
	}
	r, err := e.resolver(g, d)
	if err != nil {
		return nil, nil, err
	}
	return sites, r, nil
}

// writeCatchment enriches the sides' observations in one bulk lookup,
// analyses them and writes the catchment report (compare, atlas run and
// atlas fetch). skipped counts what could not be read; it and a move
// between two sides exit 3.
func writeCatchment(ctx context.Context, g *globalOptions, resolver whois.Resolver, sites *catchment.Sites, sides []*compareSide, out *runOutput, skipped int, interrupted bool, opts render.CompareOptions) error {
	// Every side's observations, enriched in one bulk lookup for the whole
	// input. The collectors' copies of the lines go once their changes
	// over time are taken: 10,000 lines are 5 MB of copies.
	obs := make([][]catchment.Observation, len(sides))
	var changes []catchment.Change
	for i, side := range sides {
		obs[i] = side.observations(out)
		changes = append(changes, side.collector.Changes()...)
		side.collector = nil
	}
	if resolver != nil {
		ectx := ctx
		if interrupted {
			var cancel context.CancelFunc
			ectx, cancel = context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout(g))
			defer cancel()
		}
		if err := catchment.Enrich(ectx, originLookup(resolver), obs...); err != nil {
			out.problem(report.Problem{Stage: "whois", Message: err.Error() + " (the comparison goes on without those origins)"})
		}
	}

	var inputs []report.CompareInput
	var reports []catchment.Report
	for i, side := range sides {
		inputs = append(inputs, side.inputs...)
		reports = append(reports, catchment.Analyse(obs[i], sites))
		obs[i] = nil // the rows have them now
	}
	last := reports[len(reports)-1]
	lines, summary := report.FromCatchment(last, changes, inputs)
	failed := skipped
	if len(sides) == 2 {
		moves := catchment.Diff(reports[0].Rows, reports[1].Rows)
		summary.Diff = report.FromMoves(moves)
		if catchment.Moved(moves) {
			failed++
		}
	}
	out.doc.Catchment = summary
	if out.streaming() {
		for _, l := range lines {
			out.result(l.Label(), l)
		}
	}
	// Lines become JSON (with hops) one at a time as the document is
	// written; the renderings below need no hops.
	return finish(out, lines, outcome{failed: failed, interrupted: interrupted}, func(w io.Writer, lines []report.CompareLine) error {
		rows := report.CompareRows(lines)
		switch g.output {
		case formatCSV:
			return render.CompareCSV(w, rows, summary)
		case formatDot:
			return render.CompareDot(w, rows, summary)
		case formatSVG:
			return render.CompareSVG(w, rows, summary, opts.Lines)
		case formatHTML:
			return render.CompareHTML(w, rows, summary, pathGraph(ctx, rows, summary, out), opts.Lines)
		}
		return render.CompareText(w, rows, summary, opts)
	})
}

// readInputs reads every file named by args (directories file by file)
// into side, warning once per file or result it skips.
func readInputs(ctx context.Context, args []string, side *compareSide, s *streams, out *runOutput, prog *readProgress) {
	side.collector = catchment.NewCollector()
	ingest.ReadAll(ctx, args, s.in, side.sink(out, prog), side.done)
}

// readInput reads one input (an Atlas download) into side.
func readInput(ctx context.Context, name string, r io.Reader, side *compareSide, out *runOutput, prog *readProgress) {
	side.done(ingest.Read(ctx, name, r, side.sink(out, prog)))
}

func (side *compareSide) skip(out *runOutput, name, msg string) {
	side.skipped++
	out.problem(report.Problem{Target: name, Stage: "read", Message: name + ": " + msg})
}

// done records what one input held, and says how many more of its
// results had each kind of warning said for its first results.
func (side *compareSide) done(in ingest.Input) {
	side.inputs = append(side.inputs, report.CompareInput{Name: in.Name, Side: side.name, Format: in.Format, Results: in.Results, Skipped: in.Skipped})
	side.warnings.flush(in.Name)
}

// sink is the side as ingest's Sink: anycheck documents wait for their
// vantages (observations joins them), Atlas results become catchment
// lines as they are read, probe metadata is kept, and what could not be
// read is said (and counted: exit 3).
func (side *compareSide) sink(out *runOutput, prog *readProgress) ingest.Sink {
	return &sideSink{side: side, out: out, prog: prog}
}

type sideSink struct {
	side *compareSide
	out  *runOutput
	prog *readProgress
	name string // the input whose results are counted in n
	n    int
}

func (k *sideSink) Document(name string, dc report.ReadDoc) {
	for _, w := range dc.Warnings {
		k.out.problem(report.Problem{Target: name, Stage: "read", Message: name + ": " + w})
	}
	k.side.docs = append(k.side.docs, dc)
	k.side.docNames = append(k.side.docNames, name)
	k.side.read += len(dc.IDs) + len(dc.Traces) + len(dc.Sweeps) + len(dc.Census)
}

func (k *sideSink) Probes(_ string, probes []atlas.Probe) { k.side.addProbes(probes) }

func (k *sideSink) Result(name string, index int, res *atlas.Result) {
	k.side.warnings.result()
	for _, w := range res.Warnings {
		k.side.warnings.add(k.out, name, warningKind(w), report.Problem{Target: name, Stage: "read", Message: fmt.Sprintf("%s: result %d: %s", name, index, w)})
	}
	for _, ob := range res.Observations(name + "#" + strconv.Itoa(index)) {
		k.side.add(k.out, ob)
	}
	k.side.read++
	if name != k.name {
		k.name, k.n = name, 0
	}
	k.n++
	k.prog.tick(name, k.n)
}

func (k *sideSink) Skip(name string, err error) {
	var re *atlas.ResultError
	if errors.As(err, &re) {
		k.side.warnings.result()
		k.side.skipped++
		k.side.warnings.add(k.out, name, warningKind(re.Err.Error()), report.Problem{Target: name, Stage: "read", Message: name + ": " + err.Error()})
		return
	}
	k.side.skip(k.out, name, err.Error())
}

// observations are the side's catchment lines: Atlas results were
// collected as read; anycheck documents join now, when every document's
// vantage is known.
func (side *compareSide) observations(out *runOutput) []catchment.Observation {
	if len(side.docs) > 0 {
		vantages := report.VantageKeys(side.docs, side.docNames)
		for i, dc := range side.docs {
			for _, ob := range dc.Observations(vantages[i], side.docNames[i]) {
				side.warnings.result()
				side.add(out, ob)
			}
		}
		side.docs = nil
		side.warnings.flush("")
	}
	obs := side.collector.Observations()
	atlas.Describe(obs, side.probes)
	return obs
}

// addProbes keeps Atlas probes' metadata for the observations of their results.
func (side *compareSide) addProbes(probes []atlas.Probe) {
	if side.probes == nil {
		side.probes = make(map[int]atlas.Probe, len(probes))
	}
	for _, p := range probes {
		side.probes[p.ID] = p
	}
}

// originLookup is the resolver as catchment.Enrich's Lookup.
func originLookup(r whois.Resolver) catchment.Lookup {
	return func(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]catchment.Origin, error) {
		got, err := r.Lookup(ctx, addrs)
		out := make(map[netip.Addr]catchment.Origin, len(got))
		for a, og := range got {
			out[a] = catchment.Origin{ASNs: og.ASNs, ASName: og.ASName, Country: og.Country}
		}
		return out, err
	}
}

// readProgress shows how far reading has got, on a terminal stderr only.
type readProgress struct {
	s *streams
}

func newReadProgress(s *streams) *readProgress { return &readProgress{s: s} }

func (p *readProgress) tick(name string, n int) {
	if !p.s.errTTY || n%5000 != 0 {
		return
	}
	p.s.status("reading %s: %d results", render.Escape(name), n)
}

func (p *readProgress) done() { p.s.clearStatus() }

// pathGraph is the dot graph of paths as SVG, drawn by Graphviz when it is
// installed (for the HTML report); nil without it. A failed drawing is a
// warning, and the page goes on without the graph.
func pathGraph(ctx context.Context, rows []report.CompareRow, s *report.CompareSummary, out *runOutput) []byte {
	dot, err := exec.LookPath("dot")
	if err != nil {
		return nil
	}
	var src bytes.Buffer
	if err := render.CompareDot(&src, rows, s); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dot, "-Tsvg")
	cmd.Stdin = &src
	var svg, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limitedBuffer{b: &svg, max: 16 << 20}, &limitedBuffer{b: &stderr, max: 4 << 10}
	if err := cmd.Run(); err != nil {
		out.problem(report.Problem{Stage: "render", Message: fmt.Sprintf("graphviz dot: %v: %s (the page goes on without the graph of paths)", err, strings.TrimSpace(stderr.String()))})
		return nil
	}
	return svg.Bytes()
}

// limitedBuffer keeps at most max bytes and fails the write past them.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		return 0, fmt.Errorf("more than %d bytes", l.max)
	}
	return l.b.Write(p)
}
