//go:build unix

package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/anycheck/anycheck/internal/netutil"
)

// systemNetwork is the host's real stack, what a nil Options.Net means.
// Its sockets bind the flow's source themselves, so a port that cannot be
// bound is reported as a *BindError, distinct from a target that refuses
// or does not answer. The dial network is plain "udp"/"tcp": the target's
// address picks the family, and localSource gives the source the same one.
type systemNetwork struct{}

func (systemNetwork) ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	return dialBound(ctx, "udp", laddr, raddr)
}

func (systemNetwork) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	c, err := dialBound(ctx, "tcp", laddr, raddr)
	if err != nil {
		return nil, err
	}
	// Close with an RST instead of a FIN: the flow's source port must be
	// free again at once, for the next query's connection and for the next
	// run (`anycheck id -c N` reuses the flow's port), which a socket
	// lingering in TIME_WAIT for a minute would block.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c, nil
}

// dialBound connects a socket from laddr to raddr. It binds the socket
// itself in the dialer's Control hook rather than passing a LocalAddr, so a
// bind failure is told apart from a connect failure (*BindError vs a dial
// *net.OpError), and the port the kernel picked for port 0 is known even
// when the connect then fails (reported as the OpError's Source), which lets
// Run keep one flow across reconnections.
func dialBound(ctx context.Context, network string, laddr, raddr netip.AddrPort) (net.Conn, error) {
	src, err := localSource(laddr, raddr)
	if err != nil {
		return nil, &BindError{Net: network, Addr: laddr, Err: err}
	}
	var bindErr error
	var bound netip.AddrPort
	d := net.Dialer{
		ControlContext: func(_ context.Context, _, _ string, rc syscall.RawConn) error {
			err := rc.Control(func(fd uintptr) {
				if network == "tcp" {
					// A connection from this port that ended gracefully
					// with our side closing first (another program's, or
					// one whose linger was not set) holds the port in
					// TIME_WAIT for a minute; SO_REUSEADDR lets the flow
					// bind it regardless, so `-c N` and reconnects keep
					// their port. UDP sockets do not get it: two UDP
					// sockets on one port would share each other's replies.
					if bindErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); bindErr != nil {
						return
					}
				}
				if network == "udp" {
					// What an ICMP error says (port unreachable, !N,
					// from whom), not only that one came.
					if bindErr = setRecvErr(int(fd), src.Addr().Is6()); bindErr != nil {
						return
					}
				}
				if bindErr = unix.Bind(int(fd), netutil.Sockaddr(src)); bindErr != nil {
					return
				}
				if sa, err := unix.Getsockname(int(fd)); err == nil {
					bound = netutil.AddrPort(sa)
				}
			})
			if err != nil {
				return err
			}
			// Fail the dial: an unbound socket would connect from a
			// port of the kernel's choice, another flow.
			return bindErr
		},
	}
	c, err := d.DialContext(ctx, network, raddr.String())
	if err != nil {
		if bindErr != nil {
			return nil, &BindError{Net: network, Addr: src, Err: bindErr}
		}
		var oe *net.OpError
		if bound.IsValid() && errors.As(err, &oe) && oe.Source == nil {
			if network == "tcp" {
				oe.Source = net.TCPAddrFromAddrPort(bound)
			} else {
				oe.Source = net.UDPAddrFromAddrPort(bound)
			}
		}
		return nil, err
	}
	return c, nil
}
