//go:build !linux

package probe

import (
	"net"
	"net/netip"
)

// setRecvErr: only Linux queues ICMP errors for a UDP socket to read.
func setRecvErr(int, bool) error { return nil }

// queuedICMP: without an error queue only the socket error is known.
func queuedICMP(net.Conn) (from netip.Addr, typ, code int, v6, ok bool) {
	return netip.Addr{}, 0, 0, false, false
}
