package probe

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/anycheck/anycheck/measure"

	"golang.org/x/time/rate"
)

// Result is one run of the query set over one flow (one source port).
type Result struct {
	Target   netip.AddrPort // server
	Source   netip.AddrPort // local address and port actually used (the flow)
	Started  time.Time
	Answers  []measure.Answer
	Identity measure.Identity
}

// Options configures Run.
type Options struct {
	Target netip.AddrPort // server address and port (port 53 usually)
	// Source is the local address/port of the flow. An invalid address means
	// "any"; port 0 means an ephemeral port chosen once for the whole run.
	Source  netip.AddrPort
	Names   []string      // query names; nil = hostname.bind and id.server
	Version bool          // also ask version.bind and version.server
	TCP     bool          // every query over one TCP connection
	Timeout time.Duration // per query; 0 = 2s
	// Limiter is the packet budget shared by every run of the caller
	// (one token per query sent); nil sends at once. Time a query waits
	// for a token does not count against its Timeout.
	Limiter *rate.Limiter
	// Net lets tests and callers inject sockets; nil = the real network.
	Net Network
}

// Network opens the sockets a run uses. Tests inject their own; nil in
// Options means the host's real network stack.
type Network interface {
	// ListenUDP opens a UDP socket bound to laddr (port 0 = ephemeral) and
	// connected to raddr, so every query of the run leaves from one port.
	ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error)
	// DialTCP connects from laddr (port 0 = ephemeral) to raddr.
	DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error)
}
