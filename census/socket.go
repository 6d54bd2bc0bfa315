package census

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ListenICMP opens the host's raw ICMP (ICMPv6) socket bound to the
// anycast address: it reads the ICMP messages addressed to that address
// (the kernel filters by the bound address) and sends from it. It needs
// CAP_NET_RAW. The address must be one this host holds (on an interface or
// lo); ErrNotLocal otherwise. Echo requests from others are the kernel's
// to answer and are filtered out where the system allows it.
func ListenICMP(anycast netip.Addr, replies bool) (Conn, error) {
	network := "ip4:icmp"
	if anycast.Is6() {
		network = "ip6:ipv6-icmp"
	}
	c, err := icmp.ListenPacket(network, anycast.String())
	if err != nil {
		if isAddrNotAvail(err) {
			return nil, fmt.Errorf("%w: %s", ErrNotLocal, anycast)
		}
		return nil, fmt.Errorf("open raw ICMP socket on %s: %w", anycast, err)
	}
	h := &hostConn{c: c}
	if anycast.Is4() {
		h.p4 = c.IPv4PacketConn()
		if err := h.p4.SetControlMessage(ipv4.FlagTTL, true); err != nil {
			c.Close()
			return nil, fmt.Errorf("raw ICMP socket on %s: %w", anycast, err)
		}
		var f ipv4.ICMPFilter
		f.SetAll(true)
		if replies {
			f.Accept(ipv4.ICMPTypeEchoReply)
		}
		h.p4.SetICMPFilter(&f) // best effort: Linux only
	} else {
		h.p6 = c.IPv6PacketConn()
		if err := h.p6.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
			c.Close()
			return nil, fmt.Errorf("raw ICMPv6 socket on %s: %w", anycast, err)
		}
		var f ipv6.ICMPFilter
		f.SetAll(true)
		if replies {
			f.Accept(ipv6.ICMPTypeEchoReply)
		}
		h.p6.SetICMPFilter(&f)
	}
	return h, nil
}

// ErrNotLocal: the anycast address is not one this host holds, so nothing
// may be sent from it.
var ErrNotLocal = errors.New("address not held by this host")

type hostConn struct {
	c  *icmp.PacketConn
	p4 *ipv4.PacketConn
	p6 *ipv6.PacketConn
}

func (h *hostConn) WriteTo(msg []byte, dst netip.Addr) error {
	_, err := h.c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()})
	return err
}

func (h *hostConn) ReadFrom(buf []byte) (int, netip.Addr, int, error) {
	var n, ttl int
	var src net.Addr
	var err error
	if h.p4 != nil {
		var cm *ipv4.ControlMessage
		n, cm, src, err = h.p4.ReadFrom(buf)
		ttl = -1
		if cm != nil {
			ttl = cm.TTL
		}
	} else {
		var cm *ipv6.ControlMessage
		n, cm, src, err = h.p6.ReadFrom(buf)
		ttl = -1
		if cm != nil {
			ttl = cm.HopLimit
		}
	}
	if err != nil {
		return 0, netip.Addr{}, -1, err
	}
	var from netip.Addr
	if ip, ok := src.(*net.IPAddr); ok {
		from, _ = netip.AddrFromSlice(ip.IP)
		from = from.Unmap()
	}
	return n, from, ttl, nil
}

func (h *hostConn) SetReadDeadline(t time.Time) error { return h.c.SetReadDeadline(t) }
func (h *hostConn) Close() error                      { return h.c.Close() }
