package tracetest

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/anycheck/anycheck/trace"
)

// RoutersAt returns answering routers at the given addresses, the one at
// TTL t answering after t×100µs.
func RoutersAt(addrs ...string) []Hop {
	hs := Routers(len(addrs), 100*time.Microsecond)
	for i, a := range addrs {
		hs[i].Addr = netip.MustParseAddr(a)
	}
	return hs
}

// Switching is an anycast service behind two fake paths, A and B, as a BGP
// change moves a flow from one instance to the other: each round's
// identity queries (a ListenUDP or DialTCP is a round) go down the path
// the round's letter in Pattern names ('b' B, any other letter A; the
// last letter holds after the pattern), and the traces after them (Open)
// follow the same path. It implements probe.Network and trace.Network.
// Set its fields before the first round.
type Switching struct {
	Pattern string
	A, B    *Net

	mu     sync.Mutex
	rounds int
	cur    *Net
}

func (n *Switching) round() *Net {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rounds++
	n.cur = n.A
	if n.Pattern[min(n.rounds, len(n.Pattern))-1] == 'b' {
		n.cur = n.B
	}
	return n.cur
}

// ListenUDP starts a round: its query goes down that round's path.
func (n *Switching) ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	return n.round().ListenUDP(ctx, laddr, raddr)
}

// DialTCP starts a round: its query goes down that round's path.
func (n *Switching) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	return n.round().DialTCP(ctx, laddr, raddr)
}

// Open traces down the path of the latest round (A before the first).
func (n *Switching) Open(ctx context.Context, f trace.Flow, m trace.Mode) (trace.Conn, error) {
	n.mu.Lock()
	cur := n.cur
	n.mu.Unlock()
	if cur == nil {
		cur = n.A
	}
	return cur.Open(ctx, f, m)
}
