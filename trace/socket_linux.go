package trace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HostNetwork is the host's sockets: raw IP sockets in ModeRaw, a UDP
// socket with IP_RECVERR or a ping socket in ModeSocket.
func HostNetwork() Network { return hostNetwork{} }

type hostNetwork struct{}

func (hostNetwork) Open(ctx context.Context, f Flow, mode Mode) (Conn, error) {
	if !f.Src.Addr().IsValid() {
		src, err := routeSource(ctx, f.Dst)
		if err != nil {
			return nil, err
		}
		f.Src = netip.AddrPortFrom(src, f.Src.Port())
	}
	switch mode {
	case ModeRaw:
		return openRaw(f)
	case ModeSocket:
		return openSocket(f)
	default:
		c, err := openRaw(f)
		if errors.Is(err, ErrPermission) && f.Proto != TCP {
			return openSocket(f)
		}
		return c, err
	}
}

// routeSource asks routing which local address reaches dst (a UDP
// "connect" sends nothing).
func routeSource(ctx context.Context, dst netip.AddrPort) (netip.Addr, error) {
	var d net.Dialer
	port := dst.Port()
	if port == 0 {
		port = 9
	}
	c, err := d.DialContext(ctx, "udp", netip.AddrPortFrom(dst.Addr(), port).String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("choose source address: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func isPerm(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

// sock is one non-blocking socket driven through the runtime poller.
type sock struct {
	f  *os.File
	rc syscall.RawConn
}

func newSock(domain, typ, proto int, what string) (*sock, error) {
	fd, err := unix.Socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		if isPerm(err) {
			return nil, &permError{what: "open " + what, err: err}
		}
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	f := os.NewFile(uintptr(fd), what)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	return &sock{f: f, rc: rc}, nil
}

func (s *sock) setInt(level, opt, v int) error {
	var serr error
	err := s.rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, v) })
	return errors.Join(err, serr)
}

func (s *sock) sendto(b []byte, sa unix.Sockaddr) error {
	var serr error
	err := s.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, sa)
		return serr != unix.EAGAIN
	})
	return errors.Join(err, serr)
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func fromSockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// hostConn fans the packets of all its sockets into one channel.
type hostConn struct {
	mode   Mode
	flow   Flow
	send   func(Probe) error
	socks  []*sock
	closer []func() error
	ch     chan Packet
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

func newHostConn(mode Mode, f Flow) *hostConn {
	return &hostConn{mode: mode, flow: f, ch: make(chan Packet, 256), done: make(chan struct{})}
}

func (c *hostConn) Mode() Mode { return c.mode }
func (c *hostConn) Flow() Flow { return c.flow }

func (c *hostConn) Send(p Probe) (time.Time, error) {
	// Stamp before the syscall: on a fast path the reply can be read
	// before sendto returns.
	at := time.Now()
	return at, c.send(p)
}

func (c *hostConn) Recv() (Packet, error) {
	select {
	case p := <-c.ch:
		return p, nil
	case <-c.done:
		return Packet{}, net.ErrClosed
	}
}

func (c *hostConn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		for _, s := range c.socks {
			err = errors.Join(err, s.f.Close())
		}
		for _, f := range c.closer {
			err = errors.Join(err, f())
		}
		c.wg.Wait()
	})
	return err
}

func (c *hostConn) deliver(p Packet) bool {
	select {
	case c.ch <- p:
		return true
	case <-c.done:
		return false
	}
}

// readLoop reads s until it is closed; read returns the packets of one
// readiness (zero or more) and false when the socket is gone.
func (c *hostConn) readLoop(s *sock, read func(fd int) ([]Packet, bool)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			var pkts []Packet
			alive := true
			err := s.rc.Read(func(fd uintptr) bool {
				pkts, alive = read(int(fd))
				return len(pkts) > 0 || !alive
			})
			if err != nil || !alive {
				return
			}
			for _, p := range pkts {
				if !c.deliver(p) {
					return
				}
			}
		}
	}()
}

// recvRaw reads one datagram from a raw socket. IPv4 raw sockets deliver
// the IP header; IPv6 ones do not, so the hop limit comes from ancillary
// data (IPV6_RECVHOPLIMIT).
func recvRaw(src Source, v6 bool) func(fd int) ([]Packet, bool) {
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	return func(fd int) ([]Packet, bool) {
		n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
		if err == unix.EBADF {
			return nil, false
		}
		if err != nil {
			// EAGAIN: wait for readiness; anything else is about one
			// datagram, not the socket.
			return nil, true
		}
		p := Packet{Source: src, V6: v6, Data: append([]byte(nil), buf[:n]...), TTL: -1, At: time.Now()}
		if from != nil {
			p.From = fromSockaddr(from)
		}
		if ttl, ok := cmsgTTL(oob[:oobn]); ok {
			p.TTL = ttl
		}
		return []Packet{p}, true
	}
}

// cmsgTTL finds IP_TTL / IPV6_HOPLIMIT in ancillary data.
func cmsgTTL(oob []byte) (int, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL) ||
			(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT) {
			if len(m.Data) >= 4 {
				return int(int32(binary.NativeEndian.Uint32(m.Data))), true
			}
			if len(m.Data) >= 1 {
				return int(m.Data[0]), true
			}
		}
	}
	return 0, false
}

func family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// openRaw opens raw mode: an IPPROTO_RAW socket sends our complete packets
// (header included for both families), a raw ICMP socket receives errors
// and echo replies, a raw TCP socket SYN-ACKs and RSTs, and a UDP or TCP
// socket bound to the source port reserves it (and receives DNS answers).
func openRaw(f Flow) (_ Conn, err error) {
	v6 := f.Dst.Addr().Is6()
	fam := family(f.Dst.Addr())
	c := newHostConn(ModeRaw, f)
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	tx, err := newSock(fam, unix.SOCK_RAW, unix.IPPROTO_RAW, "raw socket")
	if err != nil {
		return nil, err
	}
	c.socks = append(c.socks, tx)
	icmpProto := unix.IPPROTO_ICMP
	if v6 {
		icmpProto = unix.IPPROTO_ICMPV6
	}
	rxICMP, err := newSock(fam, unix.SOCK_RAW, icmpProto, "raw icmp socket")
	if err != nil {
		return nil, err
	}
	c.socks = append(c.socks, rxICMP)
	if v6 {
		if err := rxICMP.setInt(unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1); err != nil {
			return nil, fmt.Errorf("raw icmp socket: IPV6_RECVHOPLIMIT: %w", err)
		}
	}
	c.readLoop(rxICMP, recvRaw(FromICMP, v6))

	switch f.Proto {
	case UDP:
		uc, err := listenUDP(f.Src, v6, false)
		if err != nil {
			return nil, err
		}
		c.closer = append(c.closer, uc.Close)
		c.flow.Src = uc.LocalAddr().(*net.UDPAddr).AddrPort()
		c.flow.Src = netip.AddrPortFrom(c.flow.Src.Addr().Unmap(), c.flow.Src.Port())
		c.wg.Add(1)
		go c.readUDP(uc, v6)
	case TCP:
		rxTCP, err := newSock(fam, unix.SOCK_RAW, unix.IPPROTO_TCP, "raw tcp socket")
		if err != nil {
			return nil, err
		}
		c.socks = append(c.socks, rxTCP)
		if v6 {
			if err := rxTCP.setInt(unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1); err != nil {
				return nil, fmt.Errorf("raw tcp socket: IPV6_RECVHOPLIMIT: %w", err)
			}
		}
		c.readLoop(rxTCP, recvRaw(FromTCP, v6))
		// A bound, never-listening TCP socket keeps other programs off
		// the port; the kernel still answers the SYN-ACK with a RST.
		res, err := newSock(fam, unix.SOCK_STREAM, unix.IPPROTO_TCP, "tcp socket")
		if err != nil {
			return nil, err
		}
		c.socks = append(c.socks, res)
		var berr error
		var bound unix.Sockaddr
		if err := res.rc.Control(func(fd uintptr) {
			if berr = unix.Bind(int(fd), sockaddr(f.Src)); berr == nil {
				bound, berr = unix.Getsockname(int(fd))
			}
		}); err != nil || berr != nil {
			return nil, fmt.Errorf("bind tcp source port %s: %w", f.Src, errors.Join(err, berr))
		}
		c.flow.Src = netip.AddrPortFrom(f.Src.Addr(), fromSockaddr(bound).Port())
	case ICMP:
		if f.Src.Port() == 0 {
			c.flow.Src = netip.AddrPortFrom(f.Src.Addr(), uint16(rand.N(0xffff))+1)
		}
	}
	dst := sockaddr(netip.AddrPortFrom(f.Dst.Addr(), 0))
	c.send = func(p Probe) error {
		if err := tx.sendto(p.Packet, dst); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		return nil
	}
	return c, nil
}

// listenUDP binds the flow's source port; recvErr turns on the error queue
// (socket mode).
func listenUDP(src netip.AddrPort, v6, recvErr bool) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if v6 {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
				if serr == nil && recvErr {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
				}
				return
			}
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTTL, 1)
			if serr == nil && recvErr {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
			}
		})
		return errors.Join(err, serr)
	}}
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	pc, err := lc.ListenPacket(context.Background(), network, src.String())
	if err != nil {
		// The OpError repeats the address; the errno says what is wrong.
		var errno syscall.Errno
		if errors.As(err, &errno) {
			err = errno
		}
		return nil, fmt.Errorf("bind udp source port %s: %w", src, err)
	}
	return pc.(*net.UDPConn), nil
}

// readUDP delivers what arrives on the raw mode's UDP socket: DNS answers
// (or other UDP replies) from the destination.
func (c *hostConn) readUDP(uc *net.UDPConn, v6 bool) {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		n, oobn, _, from, err := uc.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p := Packet{Source: FromUDP, V6: v6, Data: append([]byte(nil), buf[:n]...), TTL: -1, At: time.Now(),
			From: netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}
		if ttl, ok := cmsgTTL(oob[:oobn]); ok {
			p.TTL = ttl
		}
		if !c.deliver(p) {
			return
		}
	}
}

// openSocket opens socket mode: no privilege, the kernel builds headers, and
// ICMP errors come back through the socket's error queue.
func openSocket(f Flow) (_ Conn, err error) {
	v6 := f.Dst.Addr().Is6()
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
		uc, err := listenUDP(f.Src, v6, true)
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
		proto := unix.IPPROTO_ICMP
		if v6 {
			proto = unix.IPPROTO_ICMPV6
		}
		s, err = newSock(family(f.Dst.Addr()), unix.SOCK_DGRAM, proto, "icmp ping socket")
		if err != nil {
			if errors.Is(err, ErrPermission) {
				return nil, &permError{what: "open icmp ping socket", err: pingRangeError()}
			}
			return nil, err
		}
		c.socks = append(c.socks, s)
		var berr error
		var bound unix.Sockaddr
		if err := s.rc.Control(func(fd uintptr) {
			if v6 {
				berr = errors.Join(unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1),
					unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1))
			} else {
				berr = errors.Join(unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1),
					unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTTL, 1))
			}
			if berr == nil {
				// A ping socket's "port" is its echo identifier.
				berr = unix.Bind(int(fd), sockaddr(f.Src))
			}
			if berr == nil {
				bound, berr = unix.Getsockname(int(fd))
			}
		}); err != nil || berr != nil {
			return nil, fmt.Errorf("set up icmp ping socket: %w", errors.Join(err, berr))
		}
		c.flow.Src = netip.AddrPortFrom(f.Src.Addr(), fromSockaddr(bound).Port())
	}
	if f.TOS != 0 {
		lvl, opt := unix.IPPROTO_IP, unix.IP_TOS
		if v6 {
			lvl, opt = unix.IPPROTO_IPV6, unix.IPV6_TCLASS
		}
		if err := s.setInt(lvl, opt, int(f.TOS)); err != nil {
			return nil, fmt.Errorf("set tos %d: %w", f.TOS, err)
		}
	}
	lvl, opt := unix.IPPROTO_IP, unix.IP_TTL
	if v6 {
		lvl, opt = unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS
	}
	dst := sockaddr(f.Dst)
	c.send = func(p Probe) error {
		if err := s.setInt(lvl, opt, p.TTL); err != nil {
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
	c.readLoop(s, recvErrQueue(f.Proto, v6))
	return c, nil
}

func isQueuedICMPError(err error) bool {
	for _, e := range []error{unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EPROTO, unix.EACCES, unix.EHOSTDOWN, unix.ENONET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// recvErrQueue drains a socket-mode socket: the error queue first (ICMP
// errors with offender and original payload), then ordinary datagrams
// (DNS answers, echo replies).
func recvErrQueue(proto Protocol, v6 bool) func(fd int) ([]Packet, bool) {
	buf := make([]byte, 65536)
	oob := make([]byte, 512)
	normal := FromUDP
	if proto == ICMP {
		normal = FromPing
	}
	return func(fd int) ([]Packet, bool) {
		var out []Packet
		for range 64 {
			n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				break
			}
			p := Packet{Source: FromErrQueue, V6: v6, Proto: proto, Data: append([]byte(nil), buf[:n]...), TTL: -1, At: time.Now()}
			if from != nil {
				// An error-queue read's address is the original
				// destination from the quoted header, not the sender.
				p.OrigDst = fromSockaddr(from)
			}
			se, ttl := parseErrCmsgs(oob[:oobn])
			if se == nil {
				continue // a local error (e.g. EMSGSIZE), not an ICMP reply
			}
			p.Err, p.TTL = se, ttl
			out = append(out, p)
		}
		for range 64 {
			n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
			if err == unix.EAGAIN {
				break
			}
			if err != nil {
				if errors.Is(err, unix.EBADF) {
					return out, false
				}
				// The pending ICMP error is reported once as errno on an
				// ordinary read; the error queue holds the details.
				continue
			}
			p := Packet{Source: normal, V6: v6, Data: append([]byte(nil), buf[:n]...), TTL: -1, At: time.Now()}
			if from != nil {
				p.From = fromSockaddr(from)
			}
			if ttl, ok := cmsgTTL(oob[:oobn]); ok {
				p.TTL = ttl
			}
			out = append(out, p)
		}
		return out, true
	}
}

// parseErrCmsgs reads the sock_extended_err of an ICMP error and the
// offender address that follows it, plus the error packet's TTL.
func parseErrCmsgs(oob []byte) (*SockErr, int) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, -1
	}
	var se *SockErr
	ttl := -1
	for _, m := range msgs {
		isErr := (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) ||
			(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR)
		if isErr {
			const eeLen = int(unsafe.Sizeof(unix.SockExtendedErr{}))
			if len(m.Data) < eeLen {
				continue
			}
			origin := m.Data[4]
			if origin != unix.SO_EE_ORIGIN_ICMP && origin != unix.SO_EE_ORIGIN_ICMP6 {
				continue
			}
			s := &SockErr{Type: m.Data[5], Code: m.Data[6]}
			// SO_EE_OFFENDER: the sockaddr right after the struct.
			off := m.Data[eeLen:]
			if len(off) >= 2 {
				switch binary.NativeEndian.Uint16(off) {
				case unix.AF_INET:
					if len(off) >= 8 {
						s.Offender = netip.AddrFrom4([4]byte(off[4:8]))
					}
				case unix.AF_INET6:
					if len(off) >= 24 {
						s.Offender = netip.AddrFrom16([16]byte(off[8:24])).Unmap()
					}
				}
			}
			se = s
			continue
		}
		if (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL) ||
			(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT) {
			if len(m.Data) >= 4 {
				ttl = int(int32(binary.NativeEndian.Uint32(m.Data)))
			}
		}
	}
	return se, ttl
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
