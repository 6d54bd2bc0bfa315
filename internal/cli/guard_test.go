package cli

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/trace"
)

// The unit tests of this package run in the host's network namespace: a
// default that reaches for the real network (a trace without a fake path,
// the bulk whois service, the system resolver) must fail closed there, not
// send a packet off the machine. testDeps installs these guards; a test
// that injects its own network replaces them.

// closedDNS is a loopback port nothing listens on: a lookup sent there is
// refused at once instead of going to the system's resolver.
const closedDNS = "127.0.0.1:9"

type loopbackProbeNet struct{}

func refuse(what string, dst netip.AddrPort) error {
	return fmt.Errorf("test guard: refusing %s to %s: only loopback is allowed in unit tests", what, dst)
}

func (loopbackProbeNet) ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	if !raddr.Addr().IsLoopback() {
		return nil, refuse("udp", raddr)
	}
	return probe.HostNetwork().ListenUDP(ctx, laddr, raddr)
}

func (loopbackProbeNet) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	if !raddr.Addr().IsLoopback() {
		return nil, refuse("tcp", raddr)
	}
	return probe.HostNetwork().DialTCP(ctx, laddr, raddr)
}

type loopbackTraceNet struct{}

func (loopbackTraceNet) Open(ctx context.Context, f trace.Flow, mode trace.Mode) (trace.Conn, error) {
	if !f.Dst.Addr().IsLoopback() {
		return nil, refuse("a trace", f.Dst)
	}
	return trace.HostNetwork().Open(ctx, f, mode)
}

func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("test guard: refusing to dial %s %s: only loopback is allowed in unit tests", network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

var (
	_ probe.Network = loopbackProbeNet{}
	_ trace.Network = loopbackTraceNet{}
)

// The defaults of a test run (no fake network, the default --asn cymru,
// the system resolver) never leave loopback.
func TestGuardKeepsDefaultsOnLoopback(t *testing.T) {
	d := testDeps()
	for _, args := range [][]string{
		{"id", "192.0.2.53"},
		{"trace", "--asn", "none", "-n", "192.0.2.53"},
		{"whois", "192.0.2.1"},
		{"whois", "--asn", "cymru-dns", "192.0.2.1"},
	} {
		r := runCLI(t, d, args...)
		if r.code == ExitOK || !strings.Contains(r.stderr, "refus") {
			t.Errorf("%v: exit %d, stderr %q: want the guard (or a refused loopback port) to stop it", args, r.code, r.stderr)
		}
	}
}
