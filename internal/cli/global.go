package cli

import (
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
)

// Output formats.
const (
	formatText  = "text"
	formatJSON  = "json"
	formatJSONL = "jsonl"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	output  string
	v4, v6  bool
	timeout time.Duration
	// timeoutSet is true when --timeout was given: lookups that default to
	// a longer deadline (bulk whois) then honour it.
	timeoutSet bool
	noDNS      bool   // -n: no reverse DNS
	command    string // the command running ("id", "trace", …), for hints
	// location is --location of the measuring commands (id, trace,
	// watch): recorded in the document's vantage.
	location locationValue
	// label is --label of the measuring commands: the vantage's name in
	// the document.
	label labelValue
}

func (g *globalOptions) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.BoolVarP(&g.v4, "ipv4", "4", false, "use IPv4 only")
	f.BoolVarP(&g.v6, "ipv6", "6", false, "use IPv6 only")
	durationVarP(f, &g.timeout, "timeout", "", 2*time.Second, "how long to wait for each reply (a duration, or seconds)")
	f.BoolVarP(&g.noDNS, "numeric", "n", false, "do not look up reverse DNS names")
}

// The output formats of the commands: each lists its own in its help.
var (
	streamFormats = []string{formatText, formatJSON, formatJSONL}
	traceFormats  = []string{formatText, formatJSON, formatJSONL, formatDot}
	// A catchment report (compare, atlas) also writes the table as CSV,
	// the paths as Graphviz dot, the catchment as an SVG world map, and
	// one self-contained HTML page.
	compareFormats = []string{formatText, formatJSON, formatJSONL, formatCSV, formatDot, formatSVG, formatHTML}
	censusFormats  = []string{formatText, formatJSON, formatJSONL, formatCSV}
)

// outputVar gives cmd its -o flag: the formats it writes, def when -o is
// not given (the running command's default is taken when flags are parsed).
func outputVar(cmd *cobra.Command, g *globalOptions, def string, formats ...string) {
	f := cmd.Flags()
	f.VarP(&outputValue{g: g, formats: formats}, "output", "o", "output format: "+orList(formats))
	f.Lookup("output").DefValue = def
}

// outputValue is -o, one of the command's formats.
type outputValue struct {
	g       *globalOptions
	formats []string
}

func (o *outputValue) String() string { return o.g.output }
func (o *outputValue) Type() string   { return "FORMAT" }

func (o *outputValue) Set(s string) error {
	if !slices.Contains(o.formats, s) {
		return fmt.Errorf("must be %s", orList(o.formats))
	}
	o.g.output = s
	return nil
}

func (g *globalOptions) validate() error {
	if g.v4 && g.v6 {
		return usageErr("-4 and -6: choose one family")
	}
	if g.timeout <= 0 {
		return usageErr("--timeout %s: must be positive", g.timeout)
	}
	return nil
}

// network is the resolver network for the chosen family.
func (g *globalOptions) network() string {
	switch {
	case g.v4:
		return "ip4"
	case g.v6:
		return "ip6"
	}
	return "ip"
}

func (g *globalOptions) family() string {
	switch {
	case g.v4:
		return "IPv4"
	case g.v6:
		return "IPv6"
	}
	return ""
}

func portFlag(name string, v int) error {
	if v < 1 || v > 65535 {
		return usageErr("--%s %d: must be between 1 and 65535", name, v)
	}
	return nil
}
