package cli

import (
	"bufio"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anycheck/anycheck/internal/netutil"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/miekg/dns"
	"go4.org/netipx"
)

// targetSets are the named target sets (@NAME): one tab-separated file
// per set in targets/, a member per line (name, IPv4, IPv6, operator).
//
//go:embed targets/*.tsv
var targetSets embed.FS

// target is one destination of a run: an address and how the user named it.
type target struct {
	input    string // the argument, or the member's name for a target set
	addr     netip.Addr
	operator string // who runs it, for members of a target set
	set      string // the set it came from ("roots" for @roots), else ""
}

// resolveTargets turns the target arguments into destinations, in order:
// a named set (@roots) becomes its members of the chosen family (both
// families without -4/-6), anything else one address. Bad input is a
// usage error naming the argument (err), returned before anything is
// sent; a name whose lookup failed is a failure of the run, not of the
// input: it is returned in unresolved (each error names its target), and
// the other targets are measured (see unresolvedTargets).
func resolveTargets(ctx context.Context, g *globalOptions, d *deps, inputs []string) (out []target, unresolved []*resolveError, err error) {
	for _, in := range inputs {
		if name, ok := strings.CutPrefix(in, "@"); ok {
			members, err := targetSet(name, g)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, members...)
			continue
		}
		a, err := resolveTarget(ctx, g, d, in)
		var re *resolveError
		if errors.As(err, &re) {
			unresolved = append(unresolved, re)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, target{input: in, addr: a})
	}
	return out, unresolved, nil
}

// resolveError is a target name whose lookup failed.
type resolveError struct {
	input string
	err   error
}

func (e *resolveError) Error() string { return fmt.Sprintf("%s: cannot resolve: %v", e.input, e.err) }
func (e *resolveError) Unwrap() error { return e.err }

// unresolvedTargets handles the names that did not resolve: with nothing
// else to measure the run fails (exit 1, each name said); otherwise each
// becomes a problem of the run (stderr and the document's errors) and
// counts as a failed target (exit 3). It returns that count.
func unresolvedTargets(out *runOutput, resolved int, unresolved []*resolveError) (int, error) {
	if len(unresolved) == 0 {
		return 0, nil
	}
	if resolved == 0 {
		errs := make([]error, len(unresolved))
		for i, e := range unresolved {
			errs[i] = e
		}
		return 0, runFailed(errors.Join(errs...))
	}
	for _, e := range unresolved {
		out.problem(report.Problem{Target: e.input, Stage: "resolve", Message: e.Error()})
	}
	return len(unresolved), nil
}

// targetSet reads the named set's members of the chosen family.
func targetSet(name string, g *globalOptions) ([]target, error) {
	f, err := targetSets.Open("targets/" + name + ".tsv")
	if err != nil || !validHostname(name) {
		return nil, usageErr("target @%s: no such target set (known: %s)", name, strings.Join(targetSetNames(), ", "))
	}
	defer f.Close()
	var out []target
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, "\t")
		if len(fields) != 4 {
			return nil, fmt.Errorf("target set @%s line %d: want name, IPv4, IPv6 and operator separated by tabs", name, line)
		}
		for _, s := range fields[1:3] {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("target set @%s line %d: %w", name, line, err)
			}
			if (g.v4 && !a.Is4()) || (g.v6 && !a.Is6()) {
				continue
			}
			out = append(out, target{input: fields[0], addr: a, operator: fields[3], set: name})
		}
	}
	return out, sc.Err()
}

func targetSetNames() []string {
	entries, _ := targetSets.ReadDir("targets")
	var names []string
	for _, e := range entries {
		names = append(names, "@"+strings.TrimSuffix(e.Name(), ".tsv"))
	}
	slices.Sort(names)
	return names
}

// resolveTarget turns one target argument into one unicast address of the
// chosen family: a literal is checked against -4/-6, a name is resolved
// (the resolver's first address of the family).
func resolveTarget(ctx context.Context, g *globalOptions, d *deps, input string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(input, "[]")); err == nil {
		a = a.Unmap()
		if g.v4 && !a.Is4() {
			return netip.Addr{}, usageErr("target %s: -4 given but this is an IPv6 address", input)
		}
		if g.v6 && !a.Is6() {
			return netip.Addr{}, usageErr("target %s: -6 given but this is an IPv4 address", input)
		}
		if a.Zone() != "" && !a.IsLinkLocalUnicast() {
			return netip.Addr{}, usageErr("target %s: a zone is only meaningful on a link-local address", input)
		}
		if why := notUnicast(a, d); why != "" {
			return netip.Addr{}, usageErr("target %s: %s; give the unicast address of one server", input, why)
		}
		return a, nil
	}
	if host, port, ok := withPort(input); ok {
		return netip.Addr{}, &exitError{code: ExitUsage,
			err:  fmt.Errorf("target %q: an address with a port, where a target is an address or a host name", input),
			hint: fmt.Sprintf("give the port with --port: anycheck %s --port %s %s", cmp.Or(g.command, "id"), port, host)}
	}
	if !validHostname(input) {
		return netip.Addr{}, usageErr("target %q: not an IP address or a valid host name", input)
	}
	lctx, cancel := context.WithTimeout(ctx, max(g.timeout, 5*time.Second))
	defer cancel()
	addrs, err := d.lookupHost(lctx, g.network(), input)
	if err != nil {
		if ctx.Err() != nil {
			return netip.Addr{}, ctx.Err()
		}
		return netip.Addr{}, &resolveError{input: input, err: err}
	}
	var skipped []string
	for _, a := range addrs {
		a = a.Unmap()
		if !((g.v4 && a.Is4()) || (g.v6 && a.Is6()) || (!g.v4 && !g.v6)) {
			continue
		}
		if why := notUnicast(a, d); why != "" {
			skipped = append(skipped, fmt.Sprintf("%s (%s)", a, why))
			continue
		}
		return a, nil
	}
	if len(skipped) > 0 {
		return netip.Addr{}, usageErr("target %s: resolves to no unicast address: %s", input, strings.Join(skipped, ", "))
	}
	fam := g.family()
	if fam == "" {
		fam = "any"
	}
	return netip.Addr{}, usageErr("target %s: has no %s address", input, fam)
}

// withPort splits an ADDRESS:PORT or NAME:PORT target (an IPv6 address
// in brackets) into host and port.
func withPort(input string) (host, port string, ok bool) {
	h, p, err := net.SplitHostPort(input)
	if err != nil {
		return "", "", false
	}
	if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		return "", "", false
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), p, true
	}
	return h, p, validHostname(h)
}

// notUnicast says why a is no single server to probe ("" when it is one):
// a query to a multicast or broadcast address would go to many hosts, and
// the unspecified address and 0.0.0.0/8 name no destination (RFC 1122
// 3.2.1.3).
func notUnicast(a netip.Addr, d *deps) string {
	switch {
	case a.IsUnspecified():
		return "the unspecified address is no destination"
	case a.IsMulticast():
		return "a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the limited broadcast address"
	case a.Is4() && a.As4()[0] == 0:
		return `an address of "this network" (0.0.0.0/8), which is no destination`
	}
	// The broadcast address of a network of at most /30 has its last two
	// bits set: only such a target needs the host's addresses (a netlink
	// dump, kept off the start-up path of every other target).
	if a.Is4() && a.As4()[3]&3 == 3 && d.interfacePrefixes != nil {
		prefixes, _ := d.interfacePrefixes()
		for _, p := range prefixes {
			if p.Addr().Is4() && p.Bits() < 31 && p.Contains(a) && a == netipx.PrefixLastIP(p) {
				return "the broadcast address of " + p.Masked().String() + ", a network of this host"
			}
		}
	}
	return ""
}

// validHostname checks host-name syntax (netutil.ValidHostname) so typos
// fail before a DNS lookup.
func validHostname(s string) bool { return netutil.ValidHostname(s) }

// isDNSName reports whether s is a name that can be asked (--name,
// --qname): any DNS name in presentation form (miekg/dns's rules), which
// is looser than a host name.
func isDNSName(s string) bool {
	_, ok := dns.IsDomainName(s)
	return ok && s != ""
}
