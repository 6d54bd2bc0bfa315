package cli

import (
	"context"
	"net/netip"
	"strings"
	"time"
)

// resolveTarget turns a target argument into one address of the chosen
// family: a literal is checked against -4/-6, a name is resolved (first
// address of the family, IPv6 first when no family is forced... the
// resolver's order otherwise).
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
		return a, nil
	}
	if !validHostname(input) {
		return netip.Addr{}, usageErr("target %q: not an IP address or a valid host name", input)
	}
	lctx, cancel := context.WithTimeout(ctx, max(g.timeout, 5*time.Second))
	defer cancel()
	addrs, err := d.lookupHost(lctx, g.network(), input)
	if err != nil {
		return netip.Addr{}, usageErr("target %s: cannot resolve: %v", input, err)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if (g.v4 && a.Is4()) || (g.v6 && a.Is6()) || (!g.v4 && !g.v6) {
			return a, nil
		}
	}
	fam := g.family()
	if fam == "" {
		fam = "any"
	}
	return netip.Addr{}, usageErr("target %s: has no %s address", input, fam)
}

// validHostname checks RFC 1123 syntax loosely (underscores allowed, as
// some service names use them) so typos fail before a DNS lookup.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
