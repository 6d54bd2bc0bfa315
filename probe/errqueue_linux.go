package probe

import (
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// setRecvErr asks the kernel to queue every ICMP error for a UDP socket
// (IP_RECVERR, IPV6_RECVERR): a connected socket then reports network and
// host unreachables too, not only the "hard" ones, and the queue says
// which message came and from whom.
func setRecvErr(fd int, v6 bool) error {
	if v6 {
		return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
}

// queuedICMP reads the ICMP errors waiting in c's error queue, without
// blocking, and returns the last one; ok is false when c is no socket of
// this host or holds none.
func queuedICMP(c net.Conn) (from netip.Addr, typ, code int, v6, ok bool) {
	sc, isSock := c.(syscall.Conn)
	if !isSock {
		return netip.Addr{}, 0, 0, false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return netip.Addr{}, 0, 0, false, false
	}
	buf := make([]byte, 512)
	oob := make([]byte, 512)
	_ = rc.Control(func(fd uintptr) {
		for range 16 {
			_, oobn, _, _, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				return
			}
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				continue
			}
			for _, m := range msgs {
				if (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) ||
					(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
					if f, t, cd, six, good := parseExtendedErr(m.Data); good {
						from, typ, code, v6, ok = f, t, cd, six, true
					}
				}
			}
		}
	})
	return from, typ, code, v6, ok
}
