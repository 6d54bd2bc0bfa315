// Package probetest runs an in-process DNS server that answers CHAOS
// identity queries the way authoritative servers (and the middleboxes that
// intercept them) do, so tests of probe and of its callers can exercise
// real sockets on loopback without any outside server.
//
// It is for tests only: it listens on the address a test gives it (use
// 127.0.0.1:0 or [::1]:0) and shuts down with the test.
package probetest

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server describes how the test server behaves. Set the fields before
// Start and do not change them afterwards; one Server may be started on
// several sockets (UDP and TCP) and then answers on all of them.
type Server struct {
	Hostname string // hostname.bind answer; "" answers REFUSED (NSD hide-identity)
	IDServer string // id.server answer; "" answers REFUSED
	Version  string // version.bind and version.server answer; "" answers NOERROR without TXT (BIND style)
	NSID     []byte // NSID option payload, sent when the query asks for it; nil sends none

	RefuseVersion bool // version.bind/version.server answer REFUSED (NSD hide-version)
	ForceTC       bool // UDP answers have TC set and no answer records; TCP answers in full
	Silent        bool // receive queries, never answer
	Middlebox     bool // answer like an intercepting resolver: RA set, AA clear, class IN, TTL 7984, no NSID
	// Decoys sends, before each real answer, one copy with a wrong message
	// ID and one with the right ID for another question, as late or
	// spoofed replies on a shared path would look.
	Decoys  bool
	Garbage bool // answer with the query's ID followed by bytes that are not a DNS message
	// CloseAfterAnswer closes each TCP connection after one answer, as
	// some servers and load balancers do with idle or one-shot clients.
	CloseAfterAnswer bool
	// Reflect sends every query back unchanged (QR clear), as a broken
	// middlebox or a reflector does; it never answers.
	Reflect bool
	// OtherQuestion answers every query with its ID but for another
	// question (other.bind.), and never with the real answer.
	OtherQuestion bool
	// Hold keeps every answer back until this many queries have arrived
	// over the same transport, then sends them all: a client that waits
	// for each answer before it sends the next query gets nothing.
	Hold int
	// Lose, when set, loses the answers to the queries it returns true
	// for (they are received and recorded, and never answered): a lossy
	// path or an overloaded server, per client port or at random.
	Lose func(Query) bool
	// Delay holds each answer back this long after its query arrived: the
	// round trip to a distant instance (with Net, on a synctest bubble's
	// clock).
	Delay time.Duration

	mu      sync.Mutex
	queries []Query
	conns   int                  // TCP connections accepted
	held    map[string][]heldMsg // answers kept back by Hold, per transport
}

// heldMsg is an answer kept back by Hold.
type heldMsg struct {
	w dns.ResponseWriter
	m *dns.Msg
}

// Query is one query the server received.
type Query struct {
	Transport string         // "udp" or "tcp"
	From      netip.AddrPort // the client's address and port
	Name      string         // question name as received
	Type      uint16
	Class     uint16
	RD        bool   // recursion desired bit
	NSID      bool   // the query carried an EDNS NSID option
	UDPSize   uint16 // EDNS UDP payload size, 0 without EDNS
}

// Queries returns the queries received so far, in arrival order.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

// TCPConnections returns how many TCP connections the server has accepted,
// so tests can tell one connection carrying several queries from several
// connections made from the same port.
func (s *Server) TCPConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// countingListener counts accepted connections for TCPConnections.
type countingListener struct {
	net.Listener
	s *Server
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		l.s.conns++
		l.s.mu.Unlock()
	}
	return c, err
}

// Start serves s on network ("udp" or "tcp") at addr ("127.0.0.1:0",
// "[::1]:0", or a fixed port) and returns the address it listens on. The
// server is shut down when the test ends.
func (s *Server) Start(t testing.TB, network, addr string) netip.AddrPort {
	t.Helper()
	ap, err := s.start(t, network, addr)
	if err != nil {
		t.Fatalf("probetest: listen %s %s: %v", network, addr, err)
	}
	return ap
}

// StartPair serves s over UDP and TCP on the same port of host ("127.0.0.1"
// or "::1"), as a real server does, so a client can retry a truncated UDP
// answer over TCP at the same address.
func (s *Server) StartPair(t testing.TB, host string) netip.AddrPort {
	t.Helper()
	var lastErr error
	// The kernel picks a free UDP port; the same TCP port is usually free
	// too, but not always, so try a few ports.
	for range 20 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatalf("probetest: listen udp %s: %v", host, err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			pc.Close()
			lastErr = err
			continue
		}
		s.serve(t, &dns.Server{PacketConn: pc}, "udp")
		s.serve(t, &dns.Server{Listener: countingListener{l, s}}, "tcp")
		return pc.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	t.Fatalf("probetest: no port free for both udp and tcp on %s: %v", host, lastErr)
	return netip.AddrPort{}
}

// HasIPv6Loopback reports whether ::1 can be bound here (containers often
// run without IPv6), so tests can skip their IPv6 cases with a reason.
func HasIPv6Loopback() bool {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func (s *Server) start(t testing.TB, network, addr string) (netip.AddrPort, error) {
	switch network {
	case "udp":
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return netip.AddrPort{}, err
		}
		s.serve(t, &dns.Server{PacketConn: pc}, network)
		return pc.LocalAddr().(*net.UDPAddr).AddrPort(), nil
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return netip.AddrPort{}, err
		}
		s.serve(t, &dns.Server{Listener: countingListener{l, s}}, network)
		return l.Addr().(*net.TCPAddr).AddrPort(), nil
	}
	t.Fatalf("probetest: network %q: want udp or tcp", network)
	return netip.AddrPort{}, nil
}

// serve runs srv on its already bound socket until the test ends.
func (s *Server) serve(t testing.TB, srv *dns.Server, network string) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	srv.Handler = dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) { s.answer(w, req, network, nil) })
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("probetest: serve %s: %v", network, err)
	case <-time.After(5 * time.Second):
		t.Fatalf("probetest: serve %s: not started after 5s", network)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.ShutdownContext(ctx)
		<-done
	})
}

// answer answers req on w; a Delay is cut short when gone closes (the
// client's socket closed: nobody reads the answer).
func (s *Server) answer(w dns.ResponseWriter, req *dns.Msg, network string, gone <-chan struct{}) {
	q := Query{Transport: network, RD: req.RecursionDesired}
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		q.From = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if len(req.Question) > 0 {
		q.Name, q.Type, q.Class = req.Question[0].Name, req.Question[0].Qtype, req.Question[0].Qclass
	}
	opt := req.IsEdns0()
	if opt != nil {
		q.UDPSize = opt.UDPSize()
		for _, o := range opt.Option {
			if o.Option() == dns.EDNS0NSID {
				q.NSID = true
			}
		}
	}
	s.mu.Lock()
	s.queries = append(s.queries, q)
	s.mu.Unlock()
	if s.Delay > 0 {
		t := time.NewTimer(s.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-gone:
			return
		}
	}

	if s.Silent || len(req.Question) == 0 || (s.Lose != nil && s.Lose(q)) {
		return
	}
	if s.Reflect {
		b, err := req.Pack()
		if err == nil {
			_, _ = w.Write(b)
		}
		return
	}
	if s.Garbage {
		// Our ID, a header claiming a question, then a cut-off name.
		b := binary.BigEndian.AppendUint16(nil, req.Id)
		b = append(b, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0, 0x3f, 'x')
		_, _ = w.Write(b)
		return
	}

	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = !s.Middlebox
	m.RecursionAvailable = s.Middlebox
	class, ttl := uint16(dns.ClassCHAOS), uint32(0)
	if s.Middlebox {
		class, ttl = dns.ClassINET, 7984
	}
	txt, rcode := s.lookup(q.Name)
	m.Rcode = rcode
	if txt != "" {
		m.Answer = append(m.Answer, txtRR(req.Question[0].Name, class, ttl, txt))
	}
	if opt != nil {
		ropt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		ropt.SetUDPSize(1232)
		if q.NSID && s.NSID != nil && !s.Middlebox {
			ropt.Option = append(ropt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hex.EncodeToString(s.NSID)})
		}
		m.Extra = append(m.Extra, ropt)
	}
	if s.ForceTC && network == "udp" {
		m.Truncated = true
		m.Answer = nil
	}
	if s.Decoys {
		late := m.Copy()
		late.Id = req.Id + 1
		_ = w.WriteMsg(late)
		other := m.Copy()
		other.Question = []dns.Question{{Name: "other.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}
		other.Answer = nil
		_ = w.WriteMsg(other)
	}
	if s.OtherQuestion {
		m.Question = []dns.Question{{Name: "other.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}
		m.Answer = []dns.RR{txtRR("other.bind.", class, ttl, "other")}
	}
	if s.Hold > 0 {
		s.hold(network, w, m)
		return
	}
	_ = w.WriteMsg(m)
	if s.CloseAfterAnswer && network == "tcp" {
		_ = w.Close()
	}
}

// hold keeps m back until Hold answers wait on network, then writes them
// all, in arrival order, from the handler of the last query. miekg's TCP
// server reads a connection's next query only after the handler returns,
// so handlers must not block here.
func (s *Server) hold(network string, w dns.ResponseWriter, m *dns.Msg) {
	s.mu.Lock()
	if s.held == nil {
		s.held = map[string][]heldMsg{}
	}
	s.held[network] = append(s.held[network], heldMsg{w, m})
	var release []heldMsg
	if len(s.held[network]) >= s.Hold {
		release, s.held[network] = s.held[network], nil
	}
	s.mu.Unlock()
	for _, h := range release {
		_ = h.w.WriteMsg(h.m)
	}
}

// lookup returns the TXT string (or none) and RCODE for a query name.
func (s *Server) lookup(name string) (string, int) {
	switch strings.ToLower(name) {
	case "hostname.bind.":
		return s.Hostname, refusedIfEmpty(s.Hostname)
	case "id.server.":
		return s.IDServer, refusedIfEmpty(s.IDServer)
	case "version.bind.", "version.server.":
		if s.RefuseVersion {
			return "", dns.RcodeRefused
		}
		return s.Version, dns.RcodeSuccess
	}
	return "", dns.RcodeRefused
}

// txtRR carries s as raw bytes, split into 255-byte character-strings.
// It goes through RFC 3597 wire data because dns.TXT reads its strings as
// zone-file text (backslash escapes), and tests feed hostile bytes.
func txtRR(name string, class uint16, ttl uint32, s string) dns.RR {
	var rdata []byte
	for len(s) > 0 {
		n := min(len(s), 255)
		rdata = append(rdata, byte(n))
		rdata = append(rdata, s[:n]...)
		s = s[n:]
	}
	return &dns.RFC3597{
		Hdr:   dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: class, Ttl: ttl},
		Rdata: hex.EncodeToString(rdata),
	}
}

func refusedIfEmpty(s string) int {
	if s == "" {
		return dns.RcodeRefused
	}
	return dns.RcodeSuccess
}
