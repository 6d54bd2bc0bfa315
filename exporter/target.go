package exporter

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/anycheck/anycheck/internal/netutil"
)

// Reasons a /probe request is refused (anycheck_exporter_rejected_requests_total).
const (
	RejectBadModule  = "bad_module"
	RejectBadTarget  = "bad_target"
	RejectNotAllowed = "not_allowed"
	RejectBadTimeout = "bad_timeout"
	RejectBusy       = "busy"
)

// RequestError is a /probe request that cannot be probed: Reason is one
// of the Reject constants, the message one line naming the input and what
// to do.
type RequestError struct {
	Reason string
	msg    string
}

func (e *RequestError) Error() string { return e.msg }

func reject(reason, format string, args ...any) error {
	return &RequestError{Reason: reason, msg: fmt.Sprintf(format, args...)}
}

// maxTargetLen bounds a target as given (a host name is at most 253).
const maxTargetLen = 256

// CheckTarget checks a target as given in a /probe request against the
// module: an address within its allowed targets, or a host name listed
// there (only listed names are ever resolved: the exporter asks no
// resolver about names a stranger sends). It returns the address for an
// address, or the name to resolve. Errors are *RequestError.
func (m *Module) CheckTarget(input string) (netip.Addr, string, error) {
	shown := quote(input)
	switch {
	case input == "":
		return netip.Addr{}, "", reject(RejectBadTarget, "target missing: give target=ADDRESS (or a host name listed in the module's allowed_targets)")
	case len(input) > maxTargetLen:
		return netip.Addr{}, "", reject(RejectBadTarget, "target %s…: longer than %d characters", quote(input[:32]), maxTargetLen)
	}
	if a, err := netip.ParseAddr(input); err == nil {
		a = a.Unmap()
		if a.Zone() != "" {
			return netip.Addr{}, "", reject(RejectBadTarget, "target %s: an address with a zone cannot be probed", shown)
		}
		if why := notUnicast(a); why != "" {
			return netip.Addr{}, "", reject(RejectBadTarget, "target %s: %s, not one server", shown, why)
		}
		if !m.allows(a) {
			return netip.Addr{}, "", reject(RejectNotAllowed, "target %s: not allowed by module %q (%s); add it to the module's allowed_targets or to --allow", shown, m.name, m.allowedText())
		}
		return a, "", nil
	}
	if ap, err := netip.ParseAddrPort(input); err == nil {
		return netip.Addr{}, "", reject(RejectBadTarget, "target %s: give the address alone (%s); the port is the module's", shown, ap.Addr())
	}
	if i := strings.LastIndexByte(input, ':'); i > 0 && netutil.ValidHostname(input[:i]) {
		return netip.Addr{}, "", reject(RejectBadTarget, "target %s: give the host name alone (%s); the port is the module's", shown, input[:i])
	}
	if !netutil.ValidHostname(input) {
		return netip.Addr{}, "", reject(RejectBadTarget, "target %s: not an IP address or a host name", shown)
	}
	name := canonicalName(input)
	for _, n := range m.names {
		if n == name {
			return netip.Addr{}, name, nil
		}
	}
	return netip.Addr{}, "", reject(RejectNotAllowed, "target %s: host name not listed in module %q's allowed_targets (%s); only names listed there are resolved", shown, m.name, m.allowedText())
}

// Resolve is the address a listed host name is probed at: the first of
// the module's family (ip_protocol), else the first the resolver gives.
func (m *Module) Resolve(ctx context.Context, name string, lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)) (netip.Addr, error) {
	network := "ip"
	if m.IPProtocol != "" {
		network = m.IPProtocol
	}
	addrs, err := lookup(ctx, network, name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", name, err)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if notUnicast(a) == "" && a.Zone() == "" {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("resolve %s: %w", name, errNoAddress)
}

var errNoAddress = errors.New("no unicast address of the module's family")

func (m *Module) allows(a netip.Addr) bool {
	for _, p := range m.allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowedText says what the module allows, shortly, for an error.
func (m *Module) allowedText() string {
	var parts []string
	for _, p := range m.allowed {
		parts = append(parts, p.String())
	}
	parts = append(parts, m.names...)
	switch {
	case len(parts) == 0:
		return "it allows no target"
	case len(parts) > 4:
		return "it allows " + strings.Join(parts[:4], ", ") + fmt.Sprintf(" and %d more", len(parts)-4)
	}
	return "it allows " + strings.Join(parts, ", ")
}

// notUnicast says why an address is not one server ("" when it is).
func notUnicast(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "no address"
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsMulticast():
		return "a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	}
	return ""
}

// quote shows untrusted input in an error: quoted, escaped, valid UTF-8.
func quote(s string) string {
	return fmt.Sprintf("%q", strings.ToValidUTF8(s, "\uFFFD"))
}
