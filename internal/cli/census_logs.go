package cli

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/census"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
)

type censusLogsOptions struct {
	g           *globalOptions
	cmdIO       // its streams and dependencies
	e           enrichOptions
	places      censusPlaces
	instances   []string // NAME=FILE
	files       []string // FILE: the instance named in the log
	prefix      prefixLen
	splitWindow time.Duration
	services    []string
}

func newCensusLogsCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *censusLogsOptions) error) *cobra.Command {
	o := &censusLogsOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "logs --instance NAME=FILE... | FILE...",
		Short: "Clients per instance and their affinity, from the instances' dnstap logs or captures",
		Long: `Read what the instances recorded — dnstap (NSD, Knot, BIND, Unbound; Frame
Streams files) or pcap/pcapng captures of port 53 (Ethernet, Linux cooked
capture from tcpdump -i any, raw IP; gzip is fine) — one or more files per
instance, and report per instance the clients (by /24 and /48, --prefix-len)
with their share of the queries and, with --asn, their origin AS and
country; affinity over the window: the clients seen at more than one
instance, when they moved and how long they had stayed; and clients whose
queries reach several instances at the same time (split, e.g. per-flow ECMP).

--instance NAME=FILE names the instance of a file; a bare FILE is named by
the log: each dnstap message's identity (one file may hold several
instances), or a capture's answer to CH TXT hostname.bind or id.server.
A FILE of "-" is standard input (one input at most: --instance fra=- reads
fra's log from a pipe, e.g. ssh fra cat /var/log/nsd.dnstap).
Logs are streamed and merged by time: memory grows with the clients, not
the queries. Records that are not client queries or do not parse are
counted (in the JSON inputs) and skipped; a file cut short is a warning.`,
		Example: `  anycheck census logs --instance fra=fra.dnstap --instance ams=ams.dnstap
  anycheck census logs --asn file:pfx2as.txt -o csv *.dnstap.gz
  anycheck census logs --prefix-len 32 --instance a=a.pcap --instance b=b.pcapng
  zcat fra.dnstap.gz | anycheck census logs --instance fra=- --instance ams=ams.dnstap`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.files = args
			if len(o.files)+len(o.instances) == 0 {
				return usageErr("no logs: give --instance NAME=FILE (or FILE, named by its log) for every instance")
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runCensusLogs(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.instances, "instance", nil, "NAME=FILE: a log of instance NAME (dnstap, pcap, pcapng; gzip ok; - is standard input); repeat per instance and file")
	registerPrefixLen(f, &o.prefix)
	durationVarP(f, &o.splitWindow, "split-window", "", census.DefaultSplitWindow, "a client that comes back to an instance within this time is split, not moving; a move counts once it kept to the new instance this long")
	f.StringArrayVar(&o.services, "service", nil, "count only queries to this address (the anycast service's; repeatable): captures and resolvers' logs hold other traffic")
	registerCensusEnrich(f, &o.e)
	o.places.register(f)
	outputVar(cmd, g, formatText, censusFormats...)
	return cmd
}

// censusLog is one input of `census logs`.
type censusLog struct {
	file     string // "-" is standard input
	instance string // "" = the identity the log names
	f        *os.File
	log      *census.LogReader
}

// stdinFile is the FILE that stands for standard input.
const stdinFile = "-"

// name is the input as messages name it.
func (l censusLog) name() string {
	if l.file == stdinFile {
		return "standard input"
	}
	return l.file
}

// arg is the input as the command line gave it.
func (l censusLog) arg() string {
	if l.instance != "" {
		return "--instance " + l.instance + "=" + l.file
	}
	return l.file
}

func (o *censusLogsOptions) logs() ([]censusLog, error) {
	var out []censusLog
	for _, spec := range o.instances {
		name, file, ok := strings.Cut(spec, "=")
		if !ok || name == "" || file == "" {
			return nil, usageErr("--instance %q: want NAME=FILE", spec)
		}
		if strings.ContainsAny(name, "\n\r\t") {
			return nil, usageErr("--instance %q: the name has control characters", spec)
		}
		out = append(out, censusLog{file: file, instance: name})
	}
	for _, file := range o.files {
		out = append(out, censusLog{file: file})
	}
	// Standard input is one stream: a second reader would see nothing.
	first := -1
	for i, l := range out {
		if l.file != stdinFile {
			continue
		}
		if first >= 0 {
			return nil, usageErr("standard input (-) can be read once: %s and %s", render.Escape(out[first].arg()), render.Escape(l.arg()))
		}
		first = i
	}
	return out, nil
}

func runCensusLogs(ctx context.Context, o *censusLogsOptions) error {
	s, d := o.s, o.d
	if o.splitWindow <= 0 {
		return usageErr("--split-window %s: must be positive", o.splitWindow)
	}
	var services []netip.Addr
	for _, sv := range o.services {
		a, err := netip.ParseAddr(sv)
		if err != nil {
			return usageErr("--service %q: not an IP address", sv)
		}
		services = append(services, a.Unmap())
	}
	logs, err := o.logs()
	if err != nil {
		return err
	}
	resolver, err := censusResolver(&o.e, o.g, d)
	if err != nil {
		return err
	}
	// Every file is opened before anything is read: a missing file or
	// one of another format is a usage error, with nothing on stdout.
	for i := range logs {
		var r io.Reader = s.in
		if logs[i].file != stdinFile {
			f, err := os.Open(logs[i].file)
			if err != nil {
				closeLogs(logs)
				return usageErr("%v", err)
			}
			logs[i].f, r = f, f
		}
		l, err := census.OpenLog(r, census.LogOptions{Services: services})
		if err != nil {
			closeLogs(logs)
			return usageErr("%s: %v", render.Escape(logs[i].name()), err)
		}
		logs[i].log = l
	}
	defer closeLogs(logs)

	out := newRunOutput(s, o.g, d, report.KindCensus)
	sources := make([]census.Log, len(logs))
	for i, l := range logs {
		sources[i] = census.Log{Source: l.log, Instance: l.instance}
	}
	prog := &censusProgress{s: s, start: time.Now()}
	tallied := census.TallyLogs(ctx, sources, census.TallyOptions{PrefixLen4: o.prefix.v4, PrefixLen6: o.prefix.v6, SplitWindow: o.splitWindow}, prog.tick)
	prog.done()
	errs, unnamed := tallied.Errs, tallied.Unnamed
	failed := 0
	var inputs []report.CensusInput
	for i, l := range logs {
		st := l.log.Stats()
		inputs = append(inputs, report.FromLogStats(l.file, l.instance, st))
		if errs[i] != nil {
			failed++
			out.problem(report.Problem{Target: l.file, Stage: "read", Message: fmt.Sprintf("%s: read: %v", l.name(), errs[i])})
		}
		if st.Truncated {
			failed++
			out.problem(report.Problem{Target: l.file, Stage: "read", Message: fmt.Sprintf("%s: the %s log ends in the middle of a record (cut short?): %d records read", l.name(), st.Format, st.Records)})
		}
		if unnamed[i] > 0 {
			failed++
			out.problem(report.Problem{Target: l.file, Stage: "read", Message: fmt.Sprintf("%s: %d queries without a server identity in the log were left out: name its instance with --instance NAME=%s", l.name(), unnamed[i], l.file)})
		}
		if st.Queries+st.Responses == 0 && ctx.Err() == nil {
			out.warn(fmt.Sprintf("%s: no client queries in %d records (%s)", render.Escape(l.name()), st.Records, skippedSummary(st.Skipped)))
		}
	}
	var servers []netip.Addr
	for _, l := range logs {
		for _, a := range l.log.Stats().Servers {
			if !slices.Contains(servers, a) {
				servers = append(servers, a)
			}
		}
	}
	slices.SortFunc(servers, netip.Addr.Compare)
	c := tallied.Census
	if c.Late > 0 {
		out.warn(fmt.Sprintf("%d queries came more than --split-window out of time order (are the logs' clocks in step?): counted, but affinity around them may be off", c.Late))
	}
	return writeCensus(ctx, c, censusOutput{out: out, resolver: resolver, places: &o.places, inputs: inputs, services: servers,
		failed: failed, interrupted: ctx.Err() != nil})
}

func closeLogs(logs []censusLog) {
	for _, l := range logs {
		if l.f != nil {
			l.f.Close()
		}
	}
}

func skippedSummary(m map[string]uint64) string {
	if len(m) == 0 {
		return "nothing skipped"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	return strings.Join(parts, ", ")
}

// censusProgress is a live count on a terminal stderr.
type censusProgress struct {
	s     *streams
	start time.Time
	n     uint64
	what  string
}

func (p *censusProgress) tick() {
	p.n++
	if !p.s.errTTY || p.n%500_000 != 0 {
		return
	}
	what := p.what
	if what == "" {
		what = "queries read"
	}
	p.s.status("%s %s (%s)", render.Escape(fmt.Sprint(p.n)), what, sinceStart(p.start))
}

func (p *censusProgress) done() { p.s.clearStatus() }
