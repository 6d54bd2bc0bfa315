package cli

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agnivade/levenshtein"
	"github.com/miekg/dns"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Flag values are typed once, here, and checked where they are parsed: a
// bad value is a usage error naming the flag before anything runs, the
// same words in every command (as hostPort is for HOST:PORT).

// enumValue is a flag that takes one word of a fixed set.
type enumValue struct {
	v       *string
	allowed []string
}

// enumVarP registers an enum flag holding def until set.
func enumVarP(f *pflag.FlagSet, p *string, name, short, def, usage string, allowed ...string) {
	*p = def
	f.VarP(&enumValue{v: p, allowed: allowed}, name, short, usage)
}

func (e *enumValue) String() string { return *e.v }
func (e *enumValue) Type() string   { return strings.Join(e.allowed, "|") }

func (e *enumValue) Set(s string) error {
	if !slices.Contains(e.allowed, s) {
		return fmt.Errorf("must be %s", orList(e.allowed))
	}
	*e.v = s
	return nil
}

// The enums shared by commands.
var (
	protocols   = []string{"udp", "tcp", "icmp"}
	socketModes = []string{"auto", "raw", "socket"}
)

func protocolVar(f *pflag.FlagSet, p *string, usage string) {
	enumVarP(f, p, "protocol", "P", "udp", usage, protocols...)
}

func modeVar(f *pflag.FlagSet, p *string, usage string) {
	enumVarP(f, p, "mode", "", "auto", usage, socketModes...)
}

// orList is "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// Rate bounds: a packet budget slower than minRate would make a trace take
// hours (and 1e-300 forever); faster than maxRate is a flood.
const (
	minRate = 1
	maxRate = 10000
)

// rateValue is a --rate in packets (or queries) per second.
type rateValue float64

func rateVar(f *pflag.FlagSet, p *float64, def float64, usage string) {
	*p = def
	f.Var((*rateValue)(p), "rate", usage)
}

func (r *rateValue) String() string { return strconv.FormatFloat(float64(*r), 'g', -1, 64) }
func (r *rateValue) Type() string   { return "PER_SECOND" }

func (r *rateValue) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < minRate || v > maxRate {
		return fmt.Errorf("must be a number from %d to %d per second", minRate, maxRate)
	}
	*r = rateValue(v)
	return nil
}

// durationValue is a duration flag that also takes a bare number of
// seconds, as traceroute's -w 1 and ping's -i 0.2 do.
type durationValue time.Duration

func durationVarP(f *pflag.FlagSet, p *time.Duration, name, short string, def time.Duration, usage string) {
	*p = def
	f.VarP((*durationValue)(p), name, short, usage)
}

// String is "0" for no duration, so help leaves an unset default out.
func (d *durationValue) String() string {
	if *d == 0 {
		return "0"
	}
	return time.Duration(*d).String()
}
func (d *durationValue) Type() string { return "duration" }

func (d *durationValue) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

// parseDuration reads a Go duration ("1.5s", "250ms", "1m") or a bare
// number of seconds ("1", "0.2").
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(n) || math.Abs(n) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("%s seconds is out of range", s)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 2s, 250ms or 1m, or a number of seconds")
	}
	return d, nil
}

// suggestFlag adds "did you mean --flows?" to an unknown-flag error when a
// flag of cmd is close to the one given (a typo: at most two edits, or
// the start of a longer name), as cobra does for command names.
func suggestFlag(cmd *cobra.Command, err error) string {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "unknown flag: --")
	if !ok {
		return ""
	}
	name, _, _ = strings.Cut(name, "=")
	var close []string
	seen := map[string]bool{}
	visit := func(fl *pflag.Flag) {
		if fl.Hidden || seen[fl.Name] {
			return
		}
		seen[fl.Name] = true
		d := levenshtein.ComputeDistance(name, fl.Name)
		if d <= 2 && d < len(fl.Name) || (len(name) >= 3 && strings.HasPrefix(fl.Name, name)) {
			close = append(close, fl.Name)
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	if len(close) == 0 {
		return ""
	}
	sort.Slice(close, func(i, j int) bool {
		di, dj := levenshtein.ComputeDistance(name, close[i]), levenshtein.ComputeDistance(name, close[j])
		if di != dj {
			return di < dj
		}
		return close[i] < close[j]
	})
	for i := range close {
		close[i] = "--" + close[i]
	}
	return "did you mean " + orList(close[:min(len(close), 3)]) + "?"
}

// pflagInvalid is pflag's message for a value a flag's Set refused.
var pflagInvalid = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^invalid argument ("(?:[^"\\]|\\.)*") for "(?:-(\w), )?--([\w-]+)" flag: (.*)$`)
})

// flagError says a refused flag value as every usage error of anycheck
// does: the flag as written in the help (-P, --rate), the value, why.
func flagError(err error) string {
	m := pflagInvalid().FindStringSubmatch(err.Error())
	if m == nil {
		return err.Error()
	}
	v, uerr := strconv.Unquote(m[1])
	if uerr != nil {
		return err.Error()
	}
	name := "--" + m[3]
	if m[2] != "" {
		name = "-" + m[2]
	}
	if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '"' || r >= 0x7f }) {
		v = strconv.Quote(v)
	}
	return fmt.Sprintf("%s %s: %s", name, v, m[4])
}

// addCompletions lets the shell completion offer values: every enum flag's
// words (-o, -P, --mode, --af), the ASN sources of --asn, and the named
// target sets (@roots) for the commands that take targets.
func addCompletions(root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		cmd.Flags().VisitAll(func(fl *pflag.Flag) {
			var words []string
			switch v := fl.Value.(type) {
			case *enumValue:
				words = v.allowed
			case *outputValue:
				words = v.formats
			default:
				if fl.Name == "asn" {
					words = []string{"cymru", "cymru-dns", "none", "file:"}
				}
			}
			if words != nil {
				_ = cmd.RegisterFlagCompletionFunc(fl.Name, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp))
			}
		})
		switch cmd.Name() {
		case "id", "trace", "watch":
			cmd.ValidArgsFunction = func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				if strings.HasPrefix(toComplete, "@") || toComplete == "" {
					return targetSetNames(), cobra.ShellCompDirectiveNoFileComp
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		}
		for _, c := range cmd.Commands() {
			walk(c)
		}
	}
	walk(root)
}

// queryFlags are the identity query's flags of the commands that ask
// (id, watch): --tcp, --version, --name.
type queryFlags struct {
	tcp     bool
	version bool
	names   []string
}

func (q *queryFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&q.tcp, "tcp", false, "query over TCP (default: UDP, TCP when truncated)")
	f.BoolVar(&q.version, "version", false, "also ask version.bind and version.server")
	f.StringSliceVar(&q.names, "name", nil, "CHAOS TXT names to ask instead of hostname.bind,id.server")
}

func (q *queryFlags) validate() error {
	for _, n := range q.names {
		if !isDNSName(n) {
			return usageErr("--name %q: not a valid DNS name", n)
		}
	}
	return nil
}

// qnames are the --name names as queries ask them (fully qualified); nil
// for the defaults.
func (q *queryFlags) qnames() []string {
	var out []string
	for _, n := range q.names {
		out = append(out, dns.Fqdn(n))
	}
	return out
}
