// Package tracetest is a fake network for tests of trace and of its
// callers: a path of routers ending at a destination, answering every probe
// with the bytes a real router or host sends (ICMP errors quoting the
// probe, DNS answers, echo replies, SYN-ACKs), after a per-hop delay. It
// implements trace.Network and, for the identity query that follows a
// TCP/53 trace, probe.Network, so a whole `anycheck trace` runs without
// root and without a packet leaving the process.
//
// It is for tests only. Set a Net's fields before the first Open and do not
// change them afterwards.
package tracetest

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/anycheck/anycheck/measure"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/trace"
)

// Default addresses of a Net, all from documentation ranges.
var (
	// Source4 and Source6 are the source address Open gives a flow that has none.
	Source4 = netip.MustParseAddr("192.0.2.10")
	Source6 = netip.MustParseAddr("2001:db8::10")
)

// DefaultSourcePort is the source port (or ICMP identifier) Open gives a
// flow that asks for port 0.
const DefaultSourcePort = 33512

// RouterAddr is the address of the router answering TTL ttl when its Hop
// has no Addr: 198.51.100.ttl or 2001:db8::ttl.
func RouterAddr(v6 bool, ttl int) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(ttl >> 8), 15: byte(ttl)})
	}
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(ttl)})
}

// StrayAddr is the address strays come from (Net.Strays): no hop of a
// path that the tracer got right ever shows it.
func StrayAddr(v6 bool) netip.Addr { return RouterAddr(v6, 250) }

// Hop is one router of the path.
type Hop struct {
	Addr    netip.Addr          // the router's address; invalid = RouterAddr(family, ttl)
	Silent  bool                // never answers (a router that sends no time exceeded)
	RTT     time.Duration       // delay of its answers
	Answers func(seq int) bool  // which probes of the hop it answers (seq is 0-based); nil = all
	MPLS    []measure.MPLSLabel // RFC 4950 label stack in its time-exceeded messages
	// Unreachable answers "network unreachable" instead of time exceeded:
	// the route ends here.
	Unreachable bool
	// NAT quotes the probe with its source address rewritten, as a NAT
	// that does not fix up the headers inside ICMP errors does.
	NAT bool
}

// Routers returns n answering routers, the one at TTL t answering after t×rtt.
func Routers(n int, rtt time.Duration) []Hop {
	hs := make([]Hop, n)
	for i := range hs {
		hs[i].RTT = rtt * time.Duration(i+1)
	}
	return hs
}

// Dest is the destination at the end of the path. What it answers depends
// on the flow: a DNS answer to UDP/53 probes (and identity queries over
// DialTCP/ListenUDP), port unreachable to UDP probes to other ports, an
// echo reply to ICMP echo, a SYN-ACK to TCP SYNs.
type Dest struct {
	RTT    time.Duration
	Silent bool // answers nothing
	// Answers says which probes it answers (seq is the probe's index
	// within its hop); nil = all.
	Answers func(seq int) bool
	// Lost says which of its answers are lost on the way back (a lossy
	// service or path), by the probe's TTL and its index within that TTL;
	// nil = none. The probe reached it: it counts as sent to the
	// destination.
	Lost func(ttl, seq int) bool
	// Closed: no service on the port. UDP probes get port unreachable,
	// TCP SYNs a RST, identity connections are refused.
	Closed bool
	// Hostname and NSID are the identity the DNS service answers with
	// (hostname.bind and id.server TXT, EDNS NSID); "" leaves it out.
	Hostname, NSID string
	// HalfOpen makes the TCP server keep each answered SYN's half-open
	// connection until the tracer's kernel receives the SYN-ACK and sends
	// its RST (which then reaches the server before any SYN sent later).
	// A SYN sent meanwhile on the same 4-tuple, by another probe or an
	// identity connection, finds it: the first gets a challenge ACK
	// acknowledging the earlier SYN, later ones nothing (Linux sends one
	// such ACK per half-open connection and 500 ms).
	HalfOpen bool
	// RSTLost: the tracer's RSTs never reach the server (something drops
	// them), so the first half-open connection stays.
	RSTLost bool
}

// Send is one probe the network received.
type Send struct {
	TTL, Seq int
	Tag      uint16
	At       time.Time
}

// Dial is one connection opened through the Net as a probe.Network.
type Dial struct {
	Network       string // "udp" or "tcp"
	Local, Remote netip.AddrPort
	At            time.Time
	// InFlight counts the probes sent to the destination whose answers
	// had not arrived yet when the connection was opened.
	InFlight int
	// Collided is set when the TCP server still held a probe's half-open
	// connection on the same 4-tuple (Dest.HalfOpen): a real server answers
	// such a connection attempt with an ACK, not a SYN-ACK, and the
	// client's kernel retries only after a second.
	Collided bool
}

// Net is the fake network. The zero value is a path that ends at once: the
// destination is hop 1 and answers without delay.
type Net struct {
	Hops []Hop // Hops[i] answers TTL i+1; a probe with a higher TTL reaches the destination
	Dest Dest
	// Mode is the mode Open reports for ModeAuto; "" = trace.ModeRaw.
	// An explicit ModeRaw or ModeSocket asked of Open is honoured.
	Mode trace.Mode
	// OpenErr, when set, is what Open returns (wrap trace.ErrPermission to
	// stand for missing privilege).
	OpenErr error
	// SendErr fails the send of every probe with the given TTL.
	SendErr map[int]error
	// Strays delivers, before every answer, packets a busy host sees that
	// answer no probe of the flow: errors quoting another tracer's probe
	// (same address, another port), another destination or a tag never
	// sent, and a spoofed DNS answer from another address.
	Strays bool

	mu       sync.Mutex
	sends    []Send
	dials    []Dial
	open     int // Conns not yet closed
	inFlight int // destination answers scheduled but not delivered
	held     halfOpen
}

// halfOpen is the TCP server's state for the flow's 4-tuple. A SYN is
// taken to reach the server when it is sent, and the tracer's RST when the
// SYN-ACK is delivered: a SYN sent before that delivery finds the
// connection.
type halfOpen struct {
	open       bool
	ack        uint32    // what it acknowledges: the SYN's sequence number + 1
	challenged bool      // its one challenge ACK was sent
	closed     time.Time // when the last one ended
}

// Sends returns the probes sent so far, in order.
func (n *Net) Sends() []Send {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.sends)
}

// Dials returns the identity connections opened so far, in order.
func (n *Net) Dials() []Dial {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.dials)
}

// Open implements trace.Network.
func (n *Net) Open(ctx context.Context, f trace.Flow, mode trace.Mode) (trace.Conn, error) {
	if n.OpenErr != nil {
		return nil, n.OpenErr
	}
	v6 := f.Dst.Addr().Is6()
	if !f.Src.Addr().IsValid() {
		f.Src = netip.AddrPortFrom(Source4, f.Src.Port())
		if v6 {
			f.Src = netip.AddrPortFrom(Source6, f.Src.Port())
		}
	}
	if f.Src.Port() == 0 {
		f.Src = netip.AddrPortFrom(f.Src.Addr(), DefaultSourcePort)
	}
	m := mode
	if m == trace.ModeAuto || m == "" {
		m = cmp.Or(n.Mode, trace.ModeRaw)
	}
	n.mu.Lock()
	n.open++
	n.mu.Unlock()
	return &conn{net: n, v6: v6, flow: f, mode: m, ch: make(chan trace.Packet, 4096), done: make(chan struct{})}, nil
}

type conn struct {
	net  *Net
	v6   bool
	flow trace.Flow
	mode trace.Mode
	ch   chan trace.Packet
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	due     []answer // answers on their way, in send order
	sending bool     // a timer's callback is delivering answers
}

// answer is the packets one probe brings back, arriving at at.
type answer struct {
	at     time.Time
	pkts   []trace.Packet
	toDest bool
}

func (c *conn) Mode() trace.Mode { return c.mode }
func (c *conn) Flow() trace.Flow { return c.flow }

func (c *conn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.net.mu.Lock()
		c.net.open--
		c.net.mu.Unlock()
	})
	return nil
}

func (c *conn) Recv() (trace.Packet, error) {
	select {
	case p := <-c.ch:
		return p, nil
	case <-c.done:
		return trace.Packet{}, net.ErrClosed
	}
}

func (c *conn) Send(p trace.Probe) (time.Time, error) {
	at := time.Now()
	n := c.net
	n.mu.Lock()
	n.sends = append(n.sends, Send{TTL: p.TTL, Seq: p.Seq, Tag: p.Tag, At: at})
	n.mu.Unlock()
	if err := n.SendErr[p.TTL]; err != nil {
		return at, err
	}
	pkts, delay, toDest := c.respond(p, at)
	if len(pkts) == 0 {
		return at, nil
	}
	if toDest {
		n.mu.Lock()
		n.inFlight++
		n.mu.Unlock()
	}
	// The answer comes delay after the probe left, however late this
	// goroutine got to build it.
	c.mu.Lock()
	c.due = append(c.due, answer{at: at.Add(delay), pkts: pkts, toDest: toDest})
	c.mu.Unlock()
	time.AfterFunc(max(time.Until(at.Add(delay)), 0), c.deliver)
	return at, nil
}

// deliver hands the tracer every answer that has arrived by now. Answers
// due at the same moment arrive in the order their probes were sent, as
// packets of one path do, whichever timer fires first: one callback at a
// time takes them all.
func (c *conn) deliver() {
	n := c.net
	c.mu.Lock()
	if c.sending {
		c.mu.Unlock()
		return // the callback delivering now takes this answer too
	}
	c.sending = true
	for {
		now := time.Now()
		i := slices.IndexFunc(c.due, func(a answer) bool { return !a.at.After(now) })
		// The earliest due answer first; of those due at one time, the
		// first sent.
		for j, a := range c.due {
			if i >= 0 && a.at.Before(c.due[i].at) {
				i = j
			}
		}
		if i < 0 {
			c.sending = false
			c.mu.Unlock()
			return
		}
		a := c.due[i]
		c.due = slices.Delete(c.due, i, i+1)
		c.mu.Unlock()
		// The answer has arrived (no longer in flight) before the tracer
		// can read it.
		if a.toDest {
			n.mu.Lock()
			n.inFlight--
			n.mu.Unlock()
		}
		for _, pk := range a.pkts {
			pk.At = now
			if a.toDest && c.flow.Proto == trace.TCP && n.Dest.HalfOpen {
				n.rst(pk.At)
			}
			select {
			case c.ch <- pk:
			case <-c.done:
			}
		}
		c.mu.Lock()
	}
}

func (c *conn) routerAddr(ttl int) netip.Addr {
	if ttl <= len(c.net.Hops) && c.net.Hops[ttl-1].Addr.IsValid() {
		return c.net.Hops[ttl-1].Addr
	}
	return RouterAddr(c.v6, ttl)
}

// icmpFrom wraps an ICMP message the way a raw socket delivers it: IPv4
// with its IP header, IPv6 without (the sender and hop limit come as
// socket address and ancillary data).
func (c *conn) icmpFrom(from netip.Addr, msg []byte) trace.Packet {
	if c.v6 {
		return trace.Packet{Source: trace.FromICMP, V6: true, Data: msg, From: netip.AddrPortFrom(from, 0), TTL: 60}
	}
	return trace.Packet{Source: trace.FromICMP, Data: ipv4Packet(from, c.flow.Src.Addr(), protoICMP, 60, 1, msg), TTL: -1}
}

// errorFrom is an ICMP error from `from` quoting q, as this conn's mode
// receives it: the whole message on a raw socket, the error-queue report
// (offender, type, code, our payload) in socket mode.
func (c *conn) errorFrom(from netip.Addr, typ, code int, q trace.Probe, mpls []measure.MPLSLabel) trace.Packet {
	if c.mode == trace.ModeSocket {
		return trace.Packet{Source: trace.FromErrQueue, V6: c.v6, Proto: c.flow.Proto, Data: q.SocketPayload(), TTL: -1,
			OrigDst: c.flow.Dst,
			Err:     &trace.SockErr{Type: uint8(typ), Code: uint8(code), Offender: from}}
	}
	return c.icmpFrom(from, icmpError(c.v6, typ, code, quote(q), mpls))
}

// respond builds the answers to p and their delay; toDest says whether p
// reached the destination.
func (c *conn) respond(p trace.Probe, sent time.Time) (_ []trace.Packet, _ time.Duration, toDest bool) {
	n := c.net
	v6 := c.v6
	if p.TTL <= len(n.Hops) {
		h := n.Hops[p.TTL-1]
		if h.Silent || (h.Answers != nil && !h.Answers(p.Seq)) {
			return nil, 0, false
		}
		q := p
		if h.NAT {
			q = rewriteSource(p, v6)
		}
		typ, code := icmp4TimeExceeded, 0
		if v6 {
			typ = icmp6TimeExceeded
		}
		if h.Unreachable {
			typ, code = icmp4Unreachable, 0
			if v6 {
				typ = icmp6Unreachable
			}
		}
		var out []trace.Packet
		if n.Strays {
			out = append(out, c.strays(p, typ)...)
		}
		return append(out, c.errorFrom(c.routerAddr(p.TTL), typ, code, q, h.MPLS)), h.RTT, false
	}
	d := n.Dest
	if d.Silent || (d.Answers != nil && !d.Answers(p.Seq)) || (d.Lost != nil && d.Lost(p.TTL, p.Seq)) {
		return nil, 0, false
	}
	dst := c.flow.Dst
	var out []trace.Packet
	if n.Strays {
		typ := icmp4TimeExceeded
		if v6 {
			typ = icmp6TimeExceeded
		}
		out = append(out, c.strays(p, typ)...)
	}
	switch c.flow.Proto {
	case trace.UDP:
		if dst.Port() == 53 && !d.Closed {
			var q dns.Msg
			if err := q.Unpack(p.SocketPayload()); err != nil {
				panic(fmt.Sprintf("tracetest: udp/53 probe is not a DNS query: %v", err))
			}
			b, err := d.answer(&q).Pack()
			if err != nil {
				panic(err)
			}
			return append(out, trace.Packet{Source: trace.FromUDP, V6: v6, Data: b, From: dst, TTL: 57}), d.RTT, true
		}
		typ, code := icmp4Unreachable, icmp4PortUnreach
		if v6 {
			typ, code = icmp6Unreachable, icmp6PortUnreach
		}
		return append(out, c.errorFrom(dst.Addr(), typ, code, p, nil)), d.RTT, true
	case trace.ICMP:
		if c.mode == trace.ModeSocket {
			return append(out, trace.Packet{Source: trace.FromPing, V6: v6, Data: echoReply(v6, p), From: netip.AddrPortFrom(dst.Addr(), 0), TTL: 60}), d.RTT, true
		}
		return append(out, c.icmpFrom(dst.Addr(), echoReply(v6, p))), d.RTT, true
	case trace.TCP:
		flags, ack := byte(tcpSYN|tcpACK), binary.BigEndian.Uint32(p.Transport()[4:])+1
		if d.Closed {
			flags = tcpRST | tcpACK
		} else if d.HalfOpen {
			var answer bool
			flags, ack, answer = n.synArrives(sent, ack)
			if !answer {
				return nil, 0, false
			}
		}
		seg := tcpSegment(dst.Port(), c.flow.Src.Port(), 99, ack, flags)
		if v6 {
			return append(out, trace.Packet{Source: trace.FromTCP, V6: true, Data: seg, From: netip.AddrPortFrom(dst.Addr(), 0), TTL: 60}), d.RTT, true
		}
		return append(out, trace.Packet{Source: trace.FromTCP, Data: ipv4Packet(dst.Addr(), c.flow.Src.Addr(), protoTCP, 60, 1, seg)}), d.RTT, true
	}
	return nil, 0, false
}

// synArrives is the TCP server's answer to a SYN sent at sent and
// acknowledged by ack: a SYN-ACK opening a half-open connection, or, while
// one is held, a single challenge ACK for it and then silence.
func (n *Net) synArrives(sent time.Time, ack uint32) (flags byte, acks uint32, answer bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held.open || sent.Before(n.held.closed) {
		if n.held.challenged {
			return 0, 0, false
		}
		n.held.challenged = true
		return tcpACK, n.held.ack, true
	}
	n.held = halfOpen{open: true, ack: ack, closed: n.held.closed}
	return tcpSYN | tcpACK, ack, true
}

// rst is the tracer's kernel answering a SYN-ACK or challenge ACK,
// delivered at at, with a RST that ends the half-open connection.
func (n *Net) rst(at time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held.open && !n.Dest.RSTLost {
		n.held.open, n.held.closed = false, at
	}
}

// strays are packets that answer no probe of this flow, from a forger
// (StrayAddr). In socket mode only those the kernel would queue on the
// flow's socket are sent: errors naming its source port.
func (c *conn) strays(p trace.Probe, typ int) []trace.Packet {
	forger := StrayAddr(c.v6)
	var out []trace.Packet
	other := c.flow
	other.Src = netip.AddrPortFrom(c.flow.Src.Addr(), c.flow.Src.Port()+1)
	if op, err := trace.BuildProbe(other, p.TTL, p.Tag, ""); err == nil && c.mode != trace.ModeSocket {
		out = append(out, c.errorFrom(forger, typ, 0, op, nil))
	}
	od := c.flow
	od.Dst = netip.AddrPortFrom(RouterAddr(c.v6, 200), c.flow.Dst.Port())
	if op, err := trace.BuildProbe(od, p.TTL, p.Tag, ""); err == nil {
		pk := c.errorFrom(forger, typ, 0, op, nil)
		pk.OrigDst = od.Dst
		out = append(out, pk)
	}
	if op, err := trace.BuildProbe(c.flow, p.TTL, p.Tag^0x5a5a, ""); err == nil {
		out = append(out, c.errorFrom(forger, typ, 0, op, nil))
	}
	if c.flow.Proto == trace.UDP && c.flow.Dst.Port() == 53 {
		m := new(dns.Msg)
		m.Id = p.Tag
		m.Response = true
		m.Question = []dns.Question{{Name: "hostname.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "hostname.bind.", Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: []string{"spoofed"}}}
		b, _ := m.Pack()
		out = append(out, trace.Packet{Source: trace.FromUDP, V6: c.v6, Data: b, From: netip.AddrPortFrom(forger, 53)})
	}
	return out
}

// answer is the DNS service's answer to an identity query.
func (d Dest) answer(q *dns.Msg) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = true
	if len(q.Question) == 0 {
		r.Rcode = dns.RcodeFormatError
		return r
	}
	switch name := dns.CanonicalName(q.Question[0].Name); {
	case (name == "hostname.bind." || name == "id.server.") && d.Hostname != "":
		r.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: []string{d.Hostname}}}
	default:
		r.Rcode = dns.RcodeRefused
	}
	if opt := q.IsEdns0(); opt != nil {
		ro := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		ro.SetUDPSize(1232)
		if d.NSID != "" {
			ro.Option = append(ro.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: fmt.Sprintf("%x", d.NSID)})
		}
		r.Extra = append(r.Extra, ro)
	}
	return r
}

// DialTCP implements probe.Network: a connection to the destination's DNS
// service over TCP, served in process. The flow's source port must be free:
// while a trace of the Net is open (its raw mode holds the port), the dial
// fails with EADDRINUSE, as on a real host.
func (n *Net) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	return n.dial(ctx, "tcp", laddr, raddr)
}

// ListenUDP implements probe.Network over the same in-process service.
func (n *Net) ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	return n.dial(ctx, "udp", laddr, raddr)
}

func (n *Net) dial(ctx context.Context, network string, laddr, raddr netip.AddrPort) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	local := laddr
	if !local.Addr().IsValid() || local.Addr().IsUnspecified() {
		local = netip.AddrPortFrom(Source4, local.Port())
		if raddr.Addr().Is6() {
			local = netip.AddrPortFrom(Source6, local.Port())
		}
	}
	if local.Port() == 0 {
		local = netip.AddrPortFrom(local.Addr(), DefaultSourcePort+1000)
	}
	n.mu.Lock()
	now := time.Now()
	n.dials = append(n.dials, Dial{Network: network, Local: local, Remote: raddr, At: now, InFlight: n.inFlight,
		Collided: network == "tcp" && n.held.open})
	busy := n.open > 0
	n.mu.Unlock()
	if busy && network == "tcp" {
		return nil, &net.OpError{Op: "bind", Net: network, Addr: net.TCPAddrFromAddrPort(local), Err: syscall.EADDRINUSE}
	}
	if n.Dest.Closed || n.Dest.Silent {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(raddr), Err: syscall.ECONNREFUSED}
	}
	client, server := net.Pipe()
	go n.serve(network, server)
	return &pipeConn{Conn: client, network: network, local: local, remote: raddr}, nil
}

// serve answers identity queries on one connection until it is closed.
func (n *Net) serve(network string, c net.Conn) {
	defer c.Close()
	dc := &dns.Conn{Conn: c}
	for {
		var q *dns.Msg
		var err error
		if network == "tcp" {
			q, err = dc.ReadMsg()
		} else {
			buf := make([]byte, 65535)
			var k int
			k, err = c.Read(buf)
			if err == nil {
				q = new(dns.Msg)
				err = q.Unpack(buf[:k])
			}
		}
		if err != nil {
			return
		}
		r := n.Dest.answer(q)
		if network == "tcp" {
			err = dc.WriteMsg(r)
		} else {
			var b []byte
			if b, err = r.Pack(); err == nil {
				_, err = c.Write(b)
			}
		}
		if err != nil {
			return
		}
	}
}

// pipeConn is an in-process connection that reports the flow's addresses.
type pipeConn struct {
	net.Conn
	network       string
	local, remote netip.AddrPort
}

func (c *pipeConn) LocalAddr() net.Addr {
	if c.network == "udp" {
		return net.UDPAddrFromAddrPort(c.local)
	}
	return net.TCPAddrFromAddrPort(c.local)
}

func (c *pipeConn) RemoteAddr() net.Addr {
	if c.network == "udp" {
		return net.UDPAddrFromAddrPort(c.remote)
	}
	return net.TCPAddrFromAddrPort(c.remote)
}
