package trace

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anycheck/anycheck/internal/netutil"
)

// openRaw opens raw mode: an IPPROTO_RAW socket sends our complete packets
// (header included for both families), a raw ICMP socket receives errors
// and echo replies, a raw TCP socket SYN-ACKs and RSTs, and a UDP or TCP
// socket bound to the source port reserves it (and receives DNS answers).
func openRaw(f Flow) (_ Conn, err error) {
	fam := familyOf(f.Dst.Addr())
	c := newHostConn(ModeRaw, f)
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	tx, err := newSock(fam.domain, unix.SOCK_RAW, unix.IPPROTO_RAW, "raw socket")
	if err != nil {
		return nil, err
	}
	c.socks = append(c.socks, tx)
	if err := c.rawReceiver(fam, fam.icmpProto, FromICMP, "raw icmp socket"); err != nil {
		return nil, err
	}
	switch f.Proto {
	case UDP:
		uc, err := listenUDP(f.Src, fam, false)
		if err != nil {
			return nil, err
		}
		c.closer = append(c.closer, uc.Close)
		ap := uc.LocalAddr().(*net.UDPAddr).AddrPort()
		c.flow.Src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		c.readUDP(uc, fam)
	case TCP:
		if err := c.rawReceiver(fam, unix.IPPROTO_TCP, FromTCP, "raw tcp socket"); err != nil {
			return nil, err
		}
		// A bound, never-listening TCP socket keeps other programs off
		// the port; the kernel still answers the SYN-ACK with a RST.
		res, err := newSock(fam.domain, unix.SOCK_STREAM, unix.IPPROTO_TCP, "tcp socket")
		if err != nil {
			return nil, err
		}
		c.socks = append(c.socks, res)
		bound, err := res.bind(f.Src)
		if err != nil {
			return nil, fmt.Errorf("bind tcp source port %s: %w", f.Src, err)
		}
		c.flow.Src = netip.AddrPortFrom(f.Src.Addr(), bound.Port())
	case ICMP:
		if f.Src.Port() == 0 {
			c.flow.Src = netip.AddrPortFrom(f.Src.Addr(), uint16(rand.N(0xffff))+1)
		}
	}
	dst := netutil.Sockaddr(netip.AddrPortFrom(f.Dst.Addr(), 0))
	c.send = func(p Probe) error {
		if err := tx.sendto(p.Packet, dst); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		return nil
	}
	return c, nil
}

// rawReceiver opens a raw socket for one protocol and reads it into c.
// IPv4 raw sockets deliver the IP header; IPv6 ones do not, so the hop
// limit comes as a control message (asked of both, for one code path).
func (c *hostConn) rawReceiver(fam *family, proto int, src Source, what string) error {
	s, err := newSock(fam.domain, unix.SOCK_RAW, proto, what)
	if err != nil {
		return err
	}
	c.socks = append(c.socks, s)
	if err := s.setInt(fam.level, fam.recvTTL, 1); err != nil {
		return fmt.Errorf("%s: ask the received ttl: %w", what, err)
	}
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	c.readLoop(s, func(fd int) ([]Packet, bool) {
		n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
		if err == unix.EBADF {
			return nil, false
		}
		if err != nil {
			// EAGAIN: wait for readiness; anything else is about one
			// datagram, not the socket.
			return nil, true
		}
		ttl, _ := fam.control(oob[:oobn])
		p := Packet{Source: src, V6: fam.v6, Data: append([]byte(nil), buf[:n]...), TTL: ttl, At: time.Now()}
		if from != nil {
			p.From = netutil.AddrPort(from)
		}
		return []Packet{p}, true
	})
	return nil
}
