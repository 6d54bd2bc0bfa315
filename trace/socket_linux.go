package trace

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anycheck/anycheck/internal/netutil"
)

// The host's sockets, in four files: this one (the Network, what differs
// between IPv4 and IPv6, the socket and connection plumbing), raw_linux.go
// (raw mode), unprivileged_linux.go (socket mode) and errqueue_linux.go
// (reading ICMP errors from a socket's error queue).

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
	c, err := d.DialContext(ctx, "udp", netip.AddrPortFrom(dst.Addr(), cmp.Or(dst.Port(), 9)).String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("choose source address: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// family is everything that differs between an IPv4 and an IPv6 socket,
// in one place: the socket options and the control messages they make the
// kernel attach to received packets.
type family struct {
	v6        bool
	domain    int // AF_INET, AF_INET6
	icmpProto int // IPPROTO_ICMP, IPPROTO_ICMPV6
	level     int // IPPROTO_IP, IPPROTO_IPV6: of the options and control messages below
	ttl       int // IP_TTL, IPV6_UNICAST_HOPS: TTL of what the socket sends
	tos       int // IP_TOS, IPV6_TCLASS
	recvTTL   int // IP_RECVTTL, IPV6_RECVHOPLIMIT: report each received packet's TTL...
	ttlCmsg   int // IP_TTL, IPV6_HOPLIMIT: ...in this control message
	recvErr   int // IP_RECVERR, IPV6_RECVERR: queue ICMP errors on the socket; also their control message
	udp       string
}

var (
	inet4 = &family{domain: unix.AF_INET, icmpProto: unix.IPPROTO_ICMP, level: unix.IPPROTO_IP,
		ttl: unix.IP_TTL, tos: unix.IP_TOS, recvTTL: unix.IP_RECVTTL, ttlCmsg: unix.IP_TTL, recvErr: unix.IP_RECVERR, udp: "udp4"}
	inet6 = &family{v6: true, domain: unix.AF_INET6, icmpProto: unix.IPPROTO_ICMPV6, level: unix.IPPROTO_IPV6,
		ttl: unix.IPV6_UNICAST_HOPS, tos: unix.IPV6_TCLASS, recvTTL: unix.IPV6_RECVHOPLIMIT, ttlCmsg: unix.IPV6_HOPLIMIT, recvErr: unix.IPV6_RECVERR, udp: "udp6"}
)

func familyOf(a netip.Addr) *family {
	if a.Is4() {
		return inet4
	}
	return inet6
}

// control reads the control messages of one received packet: its TTL (-1
// when absent) and, for an error-queue read, the ICMP error.
func (fam *family) control(oob []byte) (ttl int, se *SockErr) {
	ttl = -1
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return ttl, nil
	}
	for _, m := range msgs {
		if int(m.Header.Level) != fam.level {
			continue
		}
		switch int(m.Header.Type) {
		case fam.ttlCmsg:
			if len(m.Data) >= 4 {
				ttl = int(int32(binary.NativeEndian.Uint32(m.Data)))
			}
		case fam.recvErr:
			if e := parseExtendedErr(m.Data); e != nil {
				se = e
			}
		}
	}
	return ttl, se
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

// setInt sets integer socket options at one level, in order.
func (s *sock) setInt(level int, optVals ...int) error {
	var serr error
	err := s.rc.Control(func(fd uintptr) {
		for i := 0; i+1 < len(optVals) && serr == nil; i += 2 {
			serr = unix.SetsockoptInt(int(fd), level, optVals[i], optVals[i+1])
		}
	})
	return errors.Join(err, serr)
}

// bind binds the socket to ap and returns the address the kernel gave it
// (the port it chose for port 0).
func (s *sock) bind(ap netip.AddrPort) (netip.AddrPort, error) {
	var bound unix.Sockaddr
	var berr error
	err := s.rc.Control(func(fd uintptr) {
		if berr = unix.Bind(int(fd), netutil.Sockaddr(ap)); berr == nil {
			bound, berr = unix.Getsockname(int(fd))
		}
	})
	if err = errors.Join(err, berr); err != nil {
		return netip.AddrPort{}, err
	}
	return netutil.AddrPort(bound), nil
}

func (s *sock) sendto(b []byte, sa unix.Sockaddr) error {
	var serr error
	err := s.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, sa)
		return serr != unix.EAGAIN
	})
	return errors.Join(err, serr)
}

// listenUDP binds the flow's source port with the received TTL reported;
// recvErr also queues ICMP errors on it (socket mode).
func listenUDP(src netip.AddrPort, fam *family, recvErr bool) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
		return (&sock{rc: rc}).setInt(fam.level, fam.recvTTL, 1, fam.recvErr, boolInt(recvErr))
	}}
	pc, err := lc.ListenPacket(context.Background(), fam.udp, src.String())
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

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
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

// readUDP delivers what arrives on a UDP socket bound to the flow's port:
// DNS answers (or other UDP replies) from the destination.
func (c *hostConn) readUDP(uc *net.UDPConn, fam *family) {
	c.wg.Add(1)
	go func() {
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
			ttl, _ := fam.control(oob[:oobn])
			p := Packet{Source: FromUDP, V6: fam.v6, Data: append([]byte(nil), buf[:n]...), TTL: ttl, At: time.Now(),
				From: netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}
			if !c.deliver(p) {
				return
			}
		}
	}()
}
