package probetest

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/miekg/dns"
)

// Default addresses of a Net's sockets, from documentation ranges.
var (
	NetSource4 = netip.MustParseAddr("192.0.2.10")
	NetSource6 = netip.MustParseAddr("2001:db8::10")
)

// FirstEphemeralPort is the source port a Net gives the first socket that
// asks for port 0; later ones get the next free ports.
const FirstEphemeralPort = 49152

// Net is an in-memory probe.Network: every socket opened through it is a
// pipe to the Server that Route names, answered in process by the same
// code as Start's. No packet leaves the process and nothing waits on the
// kernel, so a test can run the code under test in a testing/synctest
// bubble, whose fake clock then drives the timeouts and intervals.
type Net struct {
	// Route names the server a new socket from local to remote reaches
	// (network is "udp" or "tcp"); it is called once per socket, so a test
	// can move a flow between servers as a routing change does, or send
	// flows by their source port as ECMP does. An error fails the open,
	// as a missing route does.
	Route func(network string, local, remote netip.AddrPort) (*Server, error)

	mu   sync.Mutex
	next uint16                  // next ephemeral port to try
	used map[netip.AddrPort]bool // local endpoints of open sockets ("udp"/"tcp" share ports here)
}

// ListenUDP implements probe.Network.
func (n *Net) ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	return n.open(ctx, "udp", laddr, raddr)
}

// DialTCP implements probe.Network.
func (n *Net) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	return n.open(ctx, "tcp", laddr, raddr)
}

func (n *Net) open(ctx context.Context, network string, laddr, raddr netip.AddrPort) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	local, err := n.bind(network, laddr, raddr)
	if err != nil {
		return nil, err
	}
	srv, err := n.Route(network, local, raddr)
	if err == nil && srv == nil {
		err = syscall.ENETUNREACH
	}
	if err != nil {
		n.release(network, local)
		return nil, &net.OpError{Op: "dial", Net: network, Addr: addrOf(network, raddr), Err: err}
	}
	client, server := net.Pipe()
	c := &pipeConn{Conn: client, network: network, local: local, remote: raddr, release: func() { n.release(network, local) }}
	go srv.servePipe(network, server, raddr, local)
	return c, nil
}

// bind picks the socket's local endpoint: the address given or the
// family's default, the port given (EADDRINUSE while another socket of the
// Net holds it) or the next free ephemeral one.
func (n *Net) bind(network string, laddr, raddr netip.AddrPort) (netip.AddrPort, error) {
	addr := laddr.Addr()
	if !addr.IsValid() || addr.IsUnspecified() {
		addr = NetSource4
		if raddr.Addr().Is6() {
			addr = NetSource6
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.used == nil {
		n.used = map[netip.AddrPort]bool{}
		n.next = FirstEphemeralPort
	}
	key := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(addr, p) }
	if p := laddr.Port(); p != 0 {
		if n.used[key(p)] {
			return netip.AddrPort{}, &net.OpError{Op: "bind", Net: network, Addr: addrOf(network, key(p)), Err: syscall.EADDRINUSE}
		}
		n.used[key(p)] = true
		return key(p), nil
	}
	for range 1 << 16 {
		p := n.next
		n.next++
		if n.next == 0 {
			n.next = FirstEphemeralPort
		}
		if p != 0 && !n.used[key(p)] {
			n.used[key(p)] = true
			return key(p), nil
		}
	}
	return netip.AddrPort{}, &net.OpError{Op: "bind", Net: network, Err: syscall.EADDRNOTAVAIL}
}

func (n *Net) release(network string, local netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.used, local)
}

func addrOf(network string, ap netip.AddrPort) net.Addr {
	if network == "tcp" {
		return net.TCPAddrFromAddrPort(ap)
	}
	return net.UDPAddrFromAddrPort(ap)
}

// pipeConn is the client's end: it reports the socket's addresses and
// frees its port when closed.
type pipeConn struct {
	net.Conn
	network       string
	local, remote netip.AddrPort
	once          sync.Once
	release       func()
}

func (c *pipeConn) LocalAddr() net.Addr  { return addrOf(c.network, c.local) }
func (c *pipeConn) RemoteAddr() net.Addr { return addrOf(c.network, c.remote) }

func (c *pipeConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// servePipe answers the queries arriving on one pipe until it closes: a
// datagram per write over "udp", length-prefixed messages over "tcp".
func (s *Server) servePipe(network string, c net.Conn, local, client netip.AddrPort) {
	defer c.Close()
	if network == "tcp" {
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
	}
	w := &pipeWriter{c: c, dc: &dns.Conn{Conn: c}, network: network, local: addrOf(network, local), remote: addrOf(network, client)}
	gone := make(chan struct{})
	defer close(gone)
	buf := make([]byte, 65535)
	for !w.closed {
		var q *dns.Msg
		var err error
		if network == "tcp" {
			q, err = w.dc.ReadMsg()
		} else {
			var k int
			if k, err = c.Read(buf); err == nil {
				q = new(dns.Msg)
				if q.Unpack(buf[:k]) != nil {
					continue // not DNS: a real server drops it
				}
			}
		}
		if err != nil {
			return
		}
		if network == "udp" {
			// Datagrams are answered as they come: the next query is
			// read while this one's answer waits out Delay.
			go s.answer(w, q, network, gone)
			continue
		}
		s.answer(w, q, network, gone)
	}
}

// pipeWriter is the dns.ResponseWriter of a pipe.
type pipeWriter struct {
	c             net.Conn
	dc            *dns.Conn
	network       string
	local, remote net.Addr
	mu            sync.Mutex // writes come from the pipe's handler and from Hold's releases
	closed        bool
}

func (w *pipeWriter) LocalAddr() net.Addr  { return w.local }
func (w *pipeWriter) RemoteAddr() net.Addr { return w.remote }

func (w *pipeWriter) WriteMsg(m *dns.Msg) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.network == "tcp" {
		return w.dc.WriteMsg(m)
	}
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.c.Write(b)
	return err
}

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.network == "tcp" {
		return w.dc.Write(b)
	}
	return w.c.Write(b)
}

func (w *pipeWriter) Close() error {
	w.closed = true
	return w.c.Close()
}

func (w *pipeWriter) TsigStatus() error   { return nil }
func (w *pipeWriter) TsigTimersOnly(bool) {}
func (w *pipeWriter) Hijack()             {}
