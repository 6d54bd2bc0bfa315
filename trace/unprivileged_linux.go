package trace

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/anycheck/anycheck/internal/netutil"
)

// openSocket opens socket mode: no privilege, the kernel builds headers, and
// ICMP errors come back through the socket's error queue.
func openSocket(f Flow) (_ Conn, err error) {
	fam := familyOf(f.Dst.Addr())
	c := newHostConn(ModeSocket, f)
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	var s *sock
	switch f.Proto {
	case TCP:
		return nil, errTCPSocket
	case UDP:
		uc, err := listenUDP(f.Src, fam, true)
		if err != nil {
			return nil, err
		}
		rc, err := uc.SyscallConn()
		if err != nil {
			uc.Close()
			return nil, fmt.Errorf("udp socket: %w", err)
		}
		// Closing the UDP socket (in closer) ends the read loop; the sock
		// wrapper only borrows its descriptor.
		c.closer = append(c.closer, uc.Close)
		ap := uc.LocalAddr().(*net.UDPAddr).AddrPort()
		c.flow.Src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		s = &sock{rc: rc}
	case ICMP:
		s, err = newSock(fam.domain, unix.SOCK_DGRAM, fam.icmpProto, "icmp ping socket")
		if err != nil {
			if errors.Is(err, ErrPermission) {
				return nil, &permError{what: "open icmp ping socket", err: pingRangeError()}
			}
			return nil, err
		}
		c.socks = append(c.socks, s)
		if err := s.setInt(fam.level, fam.recvErr, 1, fam.recvTTL, 1); err != nil {
			return nil, fmt.Errorf("set up icmp ping socket: %w", err)
		}
		// A ping socket's "port" is its echo identifier.
		bound, err := s.bind(f.Src)
		if err != nil {
			return nil, fmt.Errorf("set up icmp ping socket: bind %s: %w", f.Src, err)
		}
		c.flow.Src = netip.AddrPortFrom(f.Src.Addr(), bound.Port())
	}
	if f.TOS != 0 {
		if err := s.setInt(fam.level, fam.tos, int(f.TOS)); err != nil {
			return nil, fmt.Errorf("set tos %d: %w", f.TOS, err)
		}
	}
	dst := netutil.Sockaddr(f.Dst)
	c.send = func(p Probe) error {
		if err := s.setInt(fam.level, fam.ttl, p.TTL); err != nil {
			return fmt.Errorf("set ttl %d: %w", p.TTL, err)
		}
		for attempt := 0; ; attempt++ {
			err := s.sendto(p.SocketPayload(), dst)
			if err == nil {
				return nil
			}
			// With IP_RECVERR every ICMP error also sets the socket's
			// pending error, and the next send fails with it (unsent)
			// while clearing it. The error itself is already in the
			// error queue: send again.
			if !isQueuedICMPError(err) || attempt == 3 {
				return fmt.Errorf("send: %w", err)
			}
		}
	}
	c.readLoop(s, recvErrQueue(f.Proto, fam))
	return c, nil
}

// pingRangeError says why the kernel refused a ping socket.
func pingRangeError() error {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		return fmt.Errorf("ping sockets refused and net.ipv4.ping_group_range unreadable: %w", err)
	}
	r := strings.Join(strings.Fields(string(b)), " ")
	groups, _ := os.Getgroups()
	return fmt.Errorf("net.ipv4.ping_group_range is %q, which excludes this user's groups (gid %d, groups %v)", r, os.Getgid(), groups)
}
