package trace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/icmp"
)

// fakeHop is one router of the fake path.
type fakeHop struct {
	silent      bool
	rtt         time.Duration
	answers     func(seq int) bool // nil = every probe
	mpls        []icmp.MPLSLabel
	unreachable bool // answer "network unreachable" instead of time exceeded
	nat         bool // quote the probe with its source rewritten (a NAT that does not fix quotes)
}

// fakeNet is a path of routers ending at the destination, answering probes
// with real reply bytes (built from the probe itself) after each hop's RTT.
type fakeNet struct {
	v6         bool
	hops       []fakeHop // hops[i] answers TTL i+1; TTLs past the end reach the destination
	destRTT    time.Duration
	destSilent bool
	strays     bool // before every reply, deliver look-alikes that must be ignored
	mode       Mode
	openErr    error
	sendErr    map[int]error // by TTL

	mu    sync.Mutex
	sends []fakeSend
	conn  *fakeConn
}

type fakeSend struct {
	ttl, seq int
	tag      uint16
	at       time.Time
}

func (n *fakeNet) Open(ctx context.Context, f Flow, mode Mode) (Conn, error) {
	if n.openErr != nil {
		return nil, n.openErr
	}
	if !f.Src.Addr().IsValid() {
		s := src4
		if n.v6 {
			s = src6
		}
		f.Src = netip.AddrPortFrom(s, f.Src.Port())
	}
	if f.Src.Port() == 0 {
		f.Src = netip.AddrPortFrom(f.Src.Addr(), 33512)
	}
	m := n.mode
	if m == "" {
		m = ModeRaw
	}
	n.conn = &fakeConn{net: n, flow: f, mode: m, ch: make(chan Packet, 4096), done: make(chan struct{})}
	return n.conn, nil
}

func (n *fakeNet) sent() []fakeSend {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.sends)
}

type fakeConn struct {
	net  *fakeNet
	flow Flow
	mode Mode
	ch   chan Packet
	done chan struct{}
	once sync.Once
}

func (c *fakeConn) Mode() Mode { return c.mode }
func (c *fakeConn) Flow() Flow { return c.flow }
func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *fakeConn) Recv() (Packet, error) {
	select {
	case p := <-c.ch:
		return p, nil
	case <-c.done:
		return Packet{}, net.ErrClosed
	}
}

func (c *fakeConn) Send(p Probe) (time.Time, error) {
	at := time.Now()
	n := c.net
	n.mu.Lock()
	n.sends = append(n.sends, fakeSend{ttl: p.TTL, seq: p.Seq, tag: p.Tag, at: at})
	n.mu.Unlock()
	if err := n.sendErr[p.TTL]; err != nil {
		return at, err
	}
	pkts, delay := c.respond(p)
	if len(pkts) > 0 {
		time.AfterFunc(delay, func() {
			for _, pk := range pkts {
				pk.At = time.Now()
				select {
				case c.ch <- pk:
				case <-c.done:
					return
				}
			}
		})
	}
	return at, nil
}

func (c *fakeConn) routerAddr(ttl int) netip.Addr {
	if c.net.v6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(ttl)})
	}
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(ttl)})
}

// icmpFrom wraps an ICMP message the way the raw socket delivers it.
func (c *fakeConn) icmpFrom(from netip.Addr, msg []byte) Packet {
	if c.net.v6 {
		return Packet{Source: FromICMP, V6: true, Data: msg, From: netip.AddrPortFrom(from, 0), TTL: 60}
	}
	return Packet{Source: FromICMP, Data: ipv4Packet(from, c.flow.Src.Addr(), protoICMP, 60, 1, msg), TTL: -1}
}

func (c *fakeConn) respond(p Probe) ([]Packet, time.Duration) {
	n := c.net
	v6 := n.v6
	if p.TTL <= len(n.hops) {
		h := n.hops[p.TTL-1]
		if h.silent || (h.answers != nil && !h.answers(p.Seq)) {
			return nil, 0
		}
		q := p
		if h.nat {
			q = rewrite(p, func(b []byte) {
				if v6 {
					b[23] ^= 0xff
				} else {
					b[15] ^= 0xff
				}
			})
		}
		typ, code := icmp4TimeExceeded, 0
		if v6 {
			typ = icmp6TimeExceeded
		}
		if h.unreachable {
			typ, code = icmp4Unreachable, 0
			if v6 {
				typ = icmp6Unreachable
			}
		}
		real := c.icmpFrom(c.routerAddr(p.TTL), icmpError(v6, typ, code, quoteOf(q, -1), h.mpls))
		var out []Packet
		if n.strays {
			out = append(out, c.strays(p, typ)...)
		}
		return append(out, real), h.rtt
	}
	if n.destSilent {
		return nil, 0
	}
	dst := c.flow.Dst
	var out []Packet
	if n.strays {
		out = append(out, c.strays(p, icmp4TimeExceeded)...)
	}
	switch c.flow.Proto {
	case UDP:
		if dst.Port() == 53 {
			var q dns.Msg
			if err := q.Unpack(p.SocketPayload()); err != nil {
				panic(err)
			}
			r := new(dns.Msg)
			r.SetReply(&q)
			r.Authoritative = true
			r.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: []string{"fake-inst"}}}
			o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: fmt.Sprintf("%x", "fake-nsid")})
			r.Extra = append(r.Extra, o)
			b, err := r.Pack()
			if err != nil {
				panic(err)
			}
			return append(out, Packet{Source: FromUDP, V6: v6, Data: b, From: dst, TTL: 57}), n.destRTT
		}
		typ, code := icmp4Unreachable, icmp4PortUnreach
		if v6 {
			typ, code = icmp6Unreachable, icmp6PortUnreach
		}
		return append(out, c.icmpFrom(dst.Addr(), icmpError(v6, typ, code, quoteOf(p, -1), nil))), n.destRTT
	case ICMP:
		return append(out, c.icmpFrom(dst.Addr(), echoReply(v6, p))), n.destRTT
	case TCP:
		seg := tcpSegment(dst.Port(), c.flow.Src.Port(), 99, binary.BigEndian.Uint32(p.Transport()[4:])+1, 0x12)
		if v6 {
			return append(out, Packet{Source: FromTCP, V6: true, Data: seg, From: netip.AddrPortFrom(dst.Addr(), 0), TTL: 60}), n.destRTT
		}
		return append(out, Packet{Source: FromTCP, Data: ipv4Packet(dst.Addr(), c.flow.Src.Addr(), protoTCP, 60, 1, seg)}), n.destRTT
	}
	return nil, 0
}

// strays are packets a busy host sees alongside our replies: errors for
// another tracer's probes (same address, another source port, same tag),
// for probes to another destination, for a tag we never sent, and a DNS
// answer from a spoofer.
func (c *fakeConn) strays(p Probe, typ int) []Packet {
	v6 := c.net.v6
	var out []Packet
	other := c.flow
	other.Src = netip.AddrPortFrom(c.flow.Src.Addr(), c.flow.Src.Port()+1)
	if op, err := BuildProbe(other, p.TTL, p.Tag, ""); err == nil {
		out = append(out, c.icmpFrom(c.routerAddr(p.TTL), icmpError(v6, typ, 0, quoteOf(op, -1), nil)))
	}
	od := c.flow
	od.Dst = netip.AddrPortFrom(c.routerAddr(200), c.flow.Dst.Port())
	if op, err := BuildProbe(od, p.TTL, p.Tag, ""); err == nil {
		out = append(out, c.icmpFrom(c.routerAddr(p.TTL), icmpError(v6, typ, 0, quoteOf(op, -1), nil)))
	}
	if op, err := BuildProbe(c.flow, p.TTL, p.Tag^0x5a5a, ""); err == nil {
		out = append(out, c.icmpFrom(c.routerAddr(p.TTL), icmpError(v6, typ, 0, quoteOf(op, -1), nil)))
	}
	if c.flow.Proto == UDP && c.flow.Dst.Port() == 53 {
		m := new(dns.Msg)
		m.Id = p.Tag
		m.Response = true
		m.Question = []dns.Question{{Name: "hostname.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "hostname.bind.", Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: []string{"spoofed"}}}
		b, _ := m.Pack()
		out = append(out, Packet{Source: FromUDP, V6: v6, Data: b, From: netip.AddrPortFrom(c.routerAddr(250), 53)})
	}
	return out
}

func routers(n int, rtt time.Duration) []fakeHop {
	hs := make([]fakeHop, n)
	for i := range hs {
		hs[i].rtt = rtt * time.Duration(i+1)
	}
	return hs
}

func target(v6 bool) netip.Addr {
	if v6 {
		return dst6
	}
	return dst4
}

func runFake(t *testing.T, n *fakeNet, o Options) (Path, []int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if !o.Target.IsValid() {
		o.Target = target(n.v6)
	}
	if o.MinWait == 0 {
		// Generous: a loaded test machine can hold a fake reply for tens
		// of milliseconds, which must not turn it into a silent probe.
		o.MinWait = 250 * time.Millisecond
		if o.Wait > 0 {
			o.MinWait = min(o.MinWait, o.Wait)
		}
	}
	o.Net = n
	var streamed []int
	user := o.OnHop
	o.OnHop = func(h Hop) {
		streamed = append(streamed, h.TTL)
		if user != nil {
			user(h)
		}
	}
	p, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	checkPathShape(t, p, o)
	return p, streamed
}

// checkPathShape asserts what every Path must satisfy: hops consecutive
// from FirstTTL, probes in order, replies only on sent probes.
func checkPathShape(t *testing.T, p Path, o Options) {
	t.Helper()
	first := o.FirstTTL
	if first == 0 {
		first = 1
	}
	for i, h := range p.Hops {
		if h.TTL != first+i {
			t.Fatalf("hop %d has ttl %d, want %d", i, h.TTL, first+i)
		}
		for j, pr := range h.Probes {
			if j > 0 && pr.Seq <= h.Probes[j-1].Seq {
				t.Fatalf("ttl %d: probes out of order", h.TTL)
			}
			if pr.Sent.IsZero() {
				t.Fatalf("ttl %d probe %d: no send time", h.TTL, pr.Seq)
			}
		}
	}
	if p.Reached && (p.DestTTL == 0 || p.Hops[len(p.Hops)-1].TTL != p.DestTTL) {
		t.Fatalf("reached at %d but last hop is %d", p.DestTTL, p.Hops[len(p.Hops)-1].TTL)
	}
}

func hopFroms(h Hop) []string {
	var out []string
	for _, pr := range h.Probes {
		if pr.Reply == nil {
			out = append(out, "*")
		} else {
			out = append(out, pr.Reply.From.String())
		}
	}
	return out
}

func TestRunStopsAtDestination(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			n := &fakeNet{v6: v6, hops: routers(3, time.Millisecond), destRTT: 4 * time.Millisecond}
			p, streamed := runFake(t, n, Options{Rate: 1000, Wait: 5 * time.Second})
			if !p.Reached || p.DestTTL != 4 || p.Stop != StopReached || len(p.Hops) != 4 {
				t.Fatalf("reached %v at %d stop %s with %d hops, want reached at 4", p.Reached, p.DestTTL, p.Stop, len(p.Hops))
			}
			if fmt.Sprint(streamed) != "[1 2 3 4]" {
				t.Errorf("streamed %v", streamed)
			}
			for i, h := range p.Hops[:3] {
				want := (&fakeConn{net: n}).routerAddr(i + 1).String()
				if got := hopFroms(h); fmt.Sprint(got) != fmt.Sprint([]string{want, want, want}) {
					t.Errorf("ttl %d answered by %v, want %s", h.TTL, got, want)
				}
			}
			for _, pr := range p.Hops[3].Probes {
				if pr.Reply == nil || pr.Reply.Kind != ReplyDNS || pr.Reply.DNS == nil {
					t.Fatalf("destination probe %d: %+v", pr.Seq, pr.Reply)
				}
			}
			if p.Instance == nil || p.Instance.NSID != "fake-nsid" || p.Instance.HostnameBind != "fake-inst" || len(p.Answers) != 3 {
				t.Errorf("instance %+v from %d answers", p.Instance, len(p.Answers))
			}
			// Past the destination only round 0's early probes went out,
			// and none was waited for.
			beyond := 0
			for _, s := range n.sent() {
				if s.ttl > 4 {
					beyond++
					if s.seq != 0 {
						t.Errorf("ttl %d probe %d sent after the destination answered at 4", s.ttl, s.seq)
					}
				}
			}
			if beyond > 20 {
				t.Errorf("%d probes past the destination", beyond)
			}
			if p.Elapsed > time.Second {
				t.Errorf("took %v: waited for TTLs past the destination (Wait is 5s)", p.Elapsed)
			}
		})
	}
}

func TestRunProtocols(t *testing.T) {
	for _, proto := range []Protocol{UDP, ICMP, TCP} {
		for _, port := range []uint16{53, 33434} {
			if proto == ICMP && port != 53 {
				continue
			}
			for _, v6 := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s-%d-v6=%v", proto, port, v6), func(t *testing.T) {
					n := &fakeNet{v6: v6, hops: routers(2, time.Millisecond), destRTT: 3 * time.Millisecond}
					p, _ := runFake(t, n, Options{Proto: proto, Port: port, Rate: 1000, Wait: 5 * time.Second})
					if !p.Reached || p.DestTTL != 3 || len(p.Hops) != 3 {
						t.Fatalf("reached %v at %d with %d hops (stop %s)", p.Reached, p.DestTTL, len(p.Hops), p.Stop)
					}
					want := map[Protocol]ReplyKind{UDP: ReplyUnreachable, ICMP: ReplyEcho, TCP: ReplySynAck}[proto]
					if proto == UDP && port == 53 {
						want = ReplyDNS
					}
					for _, pr := range p.Hops[2].Probes {
						if pr.Reply == nil || pr.Reply.Kind != want || pr.Reply.From != target(v6) {
							t.Fatalf("destination reply %+v, want %s from %s", pr.Reply, want, target(v6))
						}
					}
					if (p.Instance != nil) != (proto == UDP && port == 53) {
						t.Errorf("instance %+v", p.Instance)
					}
				})
			}
		}
	}
}

func TestRunAdaptiveWait(t *testing.T) {
	hops := routers(4, time.Millisecond)
	hops[1].silent = true
	n := &fakeNet{hops: hops, destRTT: 5 * time.Millisecond}
	p, streamed := runFake(t, n, Options{Rate: 1000, Wait: 10 * time.Second})
	if !p.Reached || p.DestTTL != 5 {
		t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
	}
	if got := hopFroms(p.Hops[1]); fmt.Sprint(got) != "[* * *]" {
		t.Errorf("silent hop shows %v", got)
	}
	if p.Hops[1].RateLimited {
		t.Error("an all-silent hop is not rate limiting")
	}
	if fmt.Sprint(streamed) != "[1 2 3 4 5]" {
		t.Errorf("streamed %v", streamed)
	}
	// Hops 3-5 answered within ~5 ms, so hop 2 is given up after a few
	// times that, far below the 10 s Wait.
	if p.Elapsed > 2*time.Second {
		t.Errorf("took %v with one silent hop: adaptive wait did not apply", p.Elapsed)
	}
}

func TestRunWaitBoundsSilence(t *testing.T) {
	n := &fakeNet{hops: []fakeHop{{silent: true}, {silent: true}, {silent: true}}, destSilent: true}
	p, _ := runFake(t, n, Options{Rate: 1000, Wait: 200 * time.Millisecond, MaxTTL: 3})
	if p.Reached || p.Stop != StopMaxTTL || len(p.Hops) != 3 {
		t.Fatalf("reached %v stop %s hops %d, want max-ttl with 3 silent hops", p.Reached, p.Stop, len(p.Hops))
	}
	if p.Elapsed < 200*time.Millisecond {
		t.Errorf("gave up after %v, before Wait (200ms) with nothing answering", p.Elapsed)
	}
	if p.Elapsed > 3*time.Second {
		t.Errorf("took %v, far beyond Wait", p.Elapsed)
	}
}

func TestRunPacing(t *testing.T) {
	const rate = 50
	interval := time.Second / rate
	n := &fakeNet{hops: routers(2, time.Millisecond), destRTT: 2 * time.Millisecond}
	p, _ := runFake(t, n, Options{Rate: rate, Wait: 5 * time.Second})
	if !p.Reached || p.DestTTL != 3 {
		t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
	}
	sends := n.sent()
	for i := 1; i < len(sends); i++ {
		if gap := sends[i].at.Sub(sends[i-1].at); gap < interval {
			t.Errorf("send %d (ttl %d) %v after the previous: faster than %d/s", i, sends[i].ttl, gap, rate)
		}
	}
	// Probes to one TTL are a round apart, never back to back: at least
	// one probe per TTL up to the destination lies between them.
	last := map[int]fakeSend{}
	for _, s := range sends {
		if prev, ok := last[s.ttl]; ok {
			if gap := s.at.Sub(prev.at); gap < 3*interval {
				t.Errorf("ttl %d probes %d and %d only %v apart", s.ttl, prev.seq, s.seq, gap)
			}
		}
		last[s.ttl] = s
	}
}

func TestRunIgnoresStrays(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, proto := range []Protocol{UDP, ICMP, TCP} {
			t.Run(fmt.Sprintf("%s-v6=%v", proto, v6), func(t *testing.T) {
				n := &fakeNet{v6: v6, hops: routers(3, time.Millisecond), destRTT: 4 * time.Millisecond, strays: true}
				p, _ := runFake(t, n, Options{Proto: proto, Rate: 1000, Wait: 5 * time.Second})
				if !p.Reached || p.DestTTL != 4 {
					t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
				}
				for i, h := range p.Hops[:3] {
					want := (&fakeConn{net: n}).routerAddr(i + 1)
					for _, pr := range h.Probes {
						if pr.Reply == nil || pr.Reply.From != want || pr.Reply.NAT {
							t.Errorf("ttl %d: reply %+v, want a clean one from %s (sent %v, elapsed %v)", h.TTL, pr.Reply, want, pr.Sent.Sub(p.Started), p.Elapsed)
						}
					}
				}
				if p.Instance != nil && p.Instance.HostnameBind != "fake-inst" {
					t.Errorf("instance %+v: a spoofed answer was taken", p.Instance)
				}
			})
		}
	}
}

func TestRunInterrupted(t *testing.T) {
	hops := routers(2, time.Millisecond)
	hops = append(hops, fakeHop{silent: true}, fakeHop{silent: true})
	n := &fakeNet{hops: hops, destSilent: true}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	p, err := Run(ctx, Options{Target: dst4, Net: n, Rate: 1000, Wait: 10 * time.Second, MaxTTL: 6, OnHop: func(h Hop) {
		if h.TTL == 2 {
			cancel()
		}
	}})
	if err != nil {
		t.Fatalf("interrupted run returned error %v, want a partial path", err)
	}
	if p.Stop != StopInterrupted || p.Reached {
		t.Fatalf("stop %s reached %v, want interrupted", p.Stop, p.Reached)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("cancel took %v to stop the run", time.Since(start))
	}
	checkPathShape(t, p, Options{})
	if len(p.Hops) < 2 {
		t.Fatalf("%d hops kept, want at least the 2 that answered", len(p.Hops))
	}
	for _, h := range p.Hops[:2] {
		if fmt.Sprint(hopFroms(h)) == "[* * *]" {
			t.Errorf("answered hop %d lost its replies", h.TTL)
		}
	}
}

func TestRunStreamsInTTLOrder(t *testing.T) {
	hops := []fakeHop{{rtt: 25 * time.Millisecond}, {rtt: time.Millisecond}, {rtt: 2 * time.Millisecond}}
	n := &fakeNet{hops: hops, destRTT: 3 * time.Millisecond}
	var got []int
	p, _ := runFake(t, n, Options{Rate: 1000, Wait: 5 * time.Second, OnHop: func(h Hop) {
		got = append(got, h.TTL)
		if fmt.Sprint(hopFroms(h)) == "[* * *]" {
			t.Errorf("hop %d streamed before its slow replies arrived", h.TTL)
		}
	}})
	if fmt.Sprint(got) != "[1 2 3 4]" || !p.Reached {
		t.Fatalf("streamed %v (reached %v)", got, p.Reached)
	}
}

func TestRunRateLimitedHop(t *testing.T) {
	hops := routers(3, time.Millisecond)
	hops[1].answers = func(seq int) bool { return seq == 0 }
	n := &fakeNet{hops: hops, destRTT: 4 * time.Millisecond}
	p, _ := runFake(t, n, Options{Rate: 1000, Wait: 5 * time.Second})
	for _, h := range p.Hops {
		if h.RateLimited != (h.TTL == 2) {
			t.Errorf("ttl %d rate limited = %v (%v)", h.TTL, h.RateLimited, hopFroms(h))
		}
	}
}

func TestRunMPLSNATAndUnreachable(t *testing.T) {
	hops := routers(4, time.Millisecond)
	hops[1].mpls = []icmp.MPLSLabel{{Label: 24001, TC: 1, S: true, TTL: 1}}
	hops[2].nat = true
	hops[3].unreachable = true
	n := &fakeNet{hops: hops, destRTT: 4 * time.Millisecond}
	p, _ := runFake(t, n, Options{Rate: 1000, Wait: 5 * time.Second})
	if p.Reached || p.Stop != StopUnreachable || len(p.Hops) != 4 {
		t.Fatalf("reached %v stop %s hops %d, want unreachable at 4", p.Reached, p.Stop, len(p.Hops))
	}
	for _, pr := range p.Hops[1].Probes {
		if pr.Reply == nil || fmt.Sprint(pr.Reply.MPLS) != fmt.Sprint([]MPLSLabel{{Label: 24001, TC: 1, S: true, TTL: 1}}) {
			t.Errorf("ttl 2 reply %+v, want MPLS label 24001", pr.Reply)
		}
	}
	for _, pr := range p.Hops[2].Probes {
		if pr.Reply == nil || !pr.Reply.NAT {
			t.Errorf("ttl 3 reply %+v, want NAT flagged", pr.Reply)
		}
	}
	for _, pr := range p.Hops[0].Probes {
		if pr.Reply == nil || pr.Reply.NAT || pr.Reply.QuotedTTL != 1 {
			t.Errorf("ttl 1 reply %+v, want clean with quoted ttl 1", pr.Reply)
		}
	}
}

func TestRunSocketModeUnobserved(t *testing.T) {
	n := &fakeNet{hops: routers(1, time.Millisecond), destRTT: time.Millisecond, mode: ModeSocket}
	p, _ := runFake(t, n, Options{Rate: 1000, Mode: ModeSocket})
	if p.Mode != ModeSocket || !slices.Contains(p.Unobserved, "nat") || !slices.Contains(p.Unobserved, "mpls") {
		t.Fatalf("mode %s unobserved %v", p.Mode, p.Unobserved)
	}
	n = &fakeNet{hops: routers(1, time.Millisecond), destRTT: time.Millisecond}
	p, _ = runFake(t, n, Options{Rate: 1000})
	if p.Mode != ModeRaw || len(p.Unobserved) != 0 {
		t.Fatalf("raw: mode %s unobserved %v", p.Mode, p.Unobserved)
	}
}

func TestRunFirstTTL(t *testing.T) {
	n := &fakeNet{hops: routers(3, time.Millisecond), destRTT: time.Millisecond}
	p, streamed := runFake(t, n, Options{Rate: 1000, FirstTTL: 3})
	if fmt.Sprint(streamed) != "[3 4]" || p.Hops[0].TTL != 3 || p.DestTTL != 4 {
		t.Fatalf("streamed %v, first hop %d, dest %d", streamed, p.Hops[0].TTL, p.DestTTL)
	}
	for _, s := range n.sent() {
		if s.ttl < 3 {
			t.Fatalf("sent ttl %d below FirstTTL 3", s.ttl)
		}
	}
}

func TestRunErrors(t *testing.T) {
	permErr := &permError{what: "open raw socket", err: errors.New("operation not permitted")}
	cases := []struct {
		name string
		o    Options
		want string
		perm bool
	}{
		{"no target", Options{}, "no target", false},
		{"bad protocol", Options{Target: dst4, Proto: "sctp"}, "sctp", false},
		{"bad mode", Options{Target: dst4, Mode: "magic"}, "magic", false},
		{"ttl range", Options{Target: dst4, FirstTTL: 10, MaxTTL: 5}, "ttl range 10-5", false},
		{"max ttl", Options{Target: dst4, MaxTTL: 300}, "ttl range", false},
		{"queries", Options{Target: dst4, Queries: 11}, "11 queries", false},
		{"rate", Options{Target: dst4, Rate: -1}, "rate", false},
		{"wait", Options{Target: dst4, Wait: -time.Second}, "wait", false},
		{"min wait above wait", Options{Target: dst4, Wait: time.Second, MinWait: 2 * time.Second}, "min wait 2s", false},
		{"window", Options{Target: dst4, Window: -1}, "window -1", false},
		{"family", Options{Target: dst4, Source: src6}, "family", false},
		{"permission", Options{Target: dst4, Net: &fakeNet{openErr: permErr}}, "trace 192.0.2.53 udp/53: open raw socket: operation not permitted", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.o.Net == nil {
				c.o.Net = &fakeNet{}
			}
			_, err := Run(context.Background(), c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if errors.Is(err, ErrPermission) != c.perm {
				t.Errorf("errors.Is(err, ErrPermission) = %v", !c.perm)
			}
		})
	}
}

// TestRunDoesNotSpin: while a low hop waits longer than a silent hop above
// it (its own sibling answered slowly), the scheduler sleeps instead of
// waking for the higher hop's deadline again and again.
func TestRunDoesNotSpin(t *testing.T) {
	// Hop 2's probes are given up 5×20ms after sending (hop 3 and the
	// destination answer in 20ms); hop 1's first probe answers in 50ms, so
	// its other two are waited for 5×50ms: for 150ms hop 2 is final but
	// cannot be shown before hop 1.
	hops := routers(3, 20*time.Millisecond)
	hops[0].rtt = 50 * time.Millisecond
	hops[0].answers = func(seq int) bool { return seq == 0 }
	hops[1].silent = true
	hops[2].rtt = 20 * time.Millisecond
	n := &fakeNet{hops: hops, destRTT: 20 * time.Millisecond}
	o, err := withDefaults(Options{Target: dst4, Rate: 1000, Wait: 5 * time.Second, MinWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := n.Open(context.Background(), Flow{Proto: UDP, Dst: netip.AddrPortFrom(dst4, 53)}, ModeRaw)
	e := newEngine(o, conn)
	p := e.run(context.Background())
	conn.Close()
	e.wg.Wait()
	if !p.Reached || !p.Hops[0].RateLimited {
		t.Fatalf("reached %v, hop 1 %v", p.Reached, hopFroms(p.Hops[0]))
	}
	// Sends, replies and a handful of deadlines: a few dozen iterations.
	if e.loops > 500 {
		t.Errorf("%d scheduler iterations for a %v trace: busy waiting", e.loops, p.Elapsed)
	}
}

// TestRunSendErrors: a probe the kernel refuses (a local firewall, a full
// buffer) is a silent probe and a note, not the end of the trace; a
// permission error mid-run ends it with ErrPermission.
func TestRunSendErrors(t *testing.T) {
	n := &fakeNet{hops: routers(3, time.Millisecond), destRTT: time.Millisecond,
		sendErr: map[int]error{2: errors.New("send: operation not permitted")}}
	p, _ := runFake(t, n, Options{Rate: 1000, Wait: 5 * time.Second})
	if !p.Reached || p.DestTTL != 4 || fmt.Sprint(hopFroms(p.Hops[1])) != "[* * *]" {
		t.Fatalf("reached %v at %d, hop 2 %v", p.Reached, p.DestTTL, hopFroms(p.Hops[1]))
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "send ttl 2: send: operation not permitted") {
		t.Errorf("notes %q", p.Notes)
	}
	if p.Elapsed > time.Second {
		t.Errorf("waited %v for probes that were never sent", p.Elapsed)
	}

	n = &fakeNet{hops: routers(3, time.Millisecond), destRTT: time.Millisecond,
		sendErr: map[int]error{3: &permError{what: "send", err: errors.New("operation not permitted")}}}
	p, err := Run(context.Background(), Options{Target: dst4, Net: n, Rate: 1000})
	if !errors.Is(err, ErrPermission) || p.Stop != StopError {
		t.Fatalf("err %v stop %s, want ErrPermission and stop error", err, p.Stop)
	}

	// The very first probe cannot leave: no path to trace at all.
	n = &fakeNet{hops: routers(3, time.Millisecond), sendErr: map[int]error{1: errors.New("send: network is unreachable")}}
	p, err = Run(context.Background(), Options{Target: dst4, Net: n, Rate: 1000})
	if err == nil || !strings.Contains(err.Error(), "trace 192.0.2.53 udp/53: send: network is unreachable") || p.Stop != StopError {
		t.Fatalf("err %v stop %s, want the send error", err, p.Stop)
	}
	if len(n.sent()) != 1 {
		t.Errorf("%d probes tried after the first failed", len(n.sent()))
	}
}
