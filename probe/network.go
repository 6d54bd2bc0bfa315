package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// BindError reports that the flow's source address and port could not be
// bound. Run returns it (wrapped) as a set-up failure: it is about this
// machine, not about the target.
type BindError struct {
	Net  string         // "udp" or "tcp"
	Addr netip.AddrPort // the local address that could not be bound
	Err  error
}

func (e *BindError) Error() string {
	return fmt.Sprintf("bind %s source %s: %v", e.Net, e.Addr, e.Err)
}

func (e *BindError) Unwrap() error { return e.Err }

// isBindError also recognises the errno of a failed bind, for injected
// Networks that return plain socket errors.
func isBindError(err error) bool {
	var be *BindError
	return errors.As(err, &be) || errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// localSource returns the address to bind for a flow from laddr to raddr:
// an invalid laddr means the unspecified address of raddr's family.
func localSource(laddr, raddr netip.AddrPort) (netip.AddrPort, error) {
	ip := laddr.Addr().Unmap()
	remote := raddr.Addr().Unmap()
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
		if remote.Is6() {
			ip = netip.IPv6Unspecified()
		}
	}
	if ip.Is4() != remote.Is4() {
		return netip.AddrPort{}, fmt.Errorf("source %s and target %s are different address families", ip, remote)
	}
	return netip.AddrPortFrom(ip, laddr.Port()), nil
}

// addrPortOf converts a net.Addr of a UDP or TCP socket.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// HostNetwork is the host's real stack, what a nil Options.Net means; a
// wrapper (a test's guard that only lets loopback through) delegates to it.
func HostNetwork() Network { return systemNetwork{} }
