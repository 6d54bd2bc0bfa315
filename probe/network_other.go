//go:build !unix

package probe

import (
	"context"
	"net"
	"net/netip"
)

// systemNetwork on systems without x/sys/unix socket options: the dialer
// binds LocalAddr itself, so bind failures are recognised by errno only and
// TCP sockets do not get SO_REUSEADDR.
type systemNetwork struct{}

func (systemNetwork) ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	src, err := localSource(laddr, raddr)
	if err != nil {
		return nil, &BindError{Net: "udp", Addr: laddr, Err: err}
	}
	d := net.Dialer{LocalAddr: net.UDPAddrFromAddrPort(src)}
	return d.DialContext(ctx, "udp", raddr.String())
}

func (systemNetwork) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	src, err := localSource(laddr, raddr)
	if err != nil {
		return nil, &BindError{Net: "tcp", Addr: laddr, Err: err}
	}
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(src)}
	c, err := d.DialContext(ctx, "tcp", raddr.String())
	if err != nil {
		return nil, err
	}
	// RST on close so the flow's port can be reused at once (see the unix file).
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c, nil
}
