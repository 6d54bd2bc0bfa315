package cli

import (
	"slices"
	"strings"
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
}

func (g *globalOptions) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVarP(&g.output, "output", "o", formatText, "output format: text, json or jsonl")
	f.BoolVarP(&g.v4, "ipv4", "4", false, "use IPv4 only")
	f.BoolVarP(&g.v6, "ipv6", "6", false, "use IPv6 only")
	f.DurationVar(&g.timeout, "timeout", 2*time.Second, "how long to wait for each reply")
	f.BoolVarP(&g.noDNS, "numeric", "n", false, "do not look up reverse DNS names")
}

// formatsAnnotation is the cobra annotation a command sets to accept
// output formats beyond text, json and jsonl (compare: "csv,dot").
const formatsAnnotation = "anycheck/formats"

// commandFormats lists a command's extra output formats.
func commandFormats(cmd *cobra.Command) []string {
	if v := cmd.Annotations[formatsAnnotation]; v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

func (g *globalOptions) validate(extra ...string) error {
	switch {
	case g.output == formatText, g.output == formatJSON, g.output == formatJSONL, slices.Contains(extra, g.output):
	default:
		return usageErr("output format %q: must be %s", g.output, strings.Join(append([]string{formatText, formatJSON, formatJSONL}, extra...), ", "))
	}
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
