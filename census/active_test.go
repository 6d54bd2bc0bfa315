package census

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// fakeConn records what is sent and hands out the packets given to it.
type fakeConn struct {
	mu       sync.Mutex
	sent     []sentPacket
	in       chan inPacket
	deadline chan struct{}
	once     sync.Once
	failTo   netip.Addr // sends to it fail
}

type sentPacket struct {
	msg []byte
	dst netip.Addr
	at  time.Time
}

type inPacket struct {
	msg []byte
	src netip.Addr
	ttl int
}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan inPacket, 100), deadline: make(chan struct{})}
}

func (c *fakeConn) WriteTo(msg []byte, dst netip.Addr) error {
	if dst == c.failTo {
		return errors.New("sendto: network is unreachable")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, sentPacket{append([]byte(nil), msg...), dst, time.Now()})
	return nil
}

func (c *fakeConn) ReadFrom(buf []byte) (int, netip.Addr, int, error) {
	select {
	case p := <-c.in:
		return copy(buf, p.msg), p.src, p.ttl, nil
	case <-c.deadline:
		return 0, netip.Addr{}, -1, os.ErrDeadlineExceeded
	}
}

func (c *fakeConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && !t.After(time.Now()) {
		c.once.Do(func() { close(c.deadline) })
	}
	return nil
}

func (c *fakeConn) Close() error { return nil }

func targets(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	base := netip.MustParseAddr("2001:db8:100::1").As16()
	for i := range out {
		b := base
		b[12], b[13] = byte(i>>8), byte(i)
		out[i] = netip.AddrFrom16(b)
	}
	return out
}

var anycast6 = netip.MustParseAddr("2001:db8:53::53")

// Send paces requests at the rate, each carrying the census payload.
func TestSendPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		var seen []Sent
		s, err := Send(context.Background(), conn, targets(1000), SendOptions{
			Anycast: anycast6, Site: "a", Census: 42, Rate: 250,
			OnSent: func(x Sent) { seen = append(seen, x) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if s.Sent != 1000 || len(conn.sent) != 1000 || len(seen) != 1000 || s.Interrupted {
			t.Fatalf("summary %+v, %d packets, %d callbacks", s, len(conn.sent), len(seen))
		}
		// 1000 requests at 250/s: the last leaves 999/250 s after the first.
		if d := conn.sent[999].at.Sub(conn.sent[0].at); d != 3996*time.Millisecond {
			t.Errorf("first to last %v, want 3.996s", d)
		}
		if r := s.Rate(); r < 249.99 || r > 250.01 {
			t.Errorf("rate %g, want 250", r)
		}
		// Every packet is an echo request carrying our payload.
		for i, p := range conn.sent[:3] {
			m, err := icmp.ParseMessage(58, p.msg)
			if err != nil {
				t.Fatal(err)
			}
			echo := m.Body.(*icmp.Echo)
			pl, err := ParsePayload(echo.Data)
			if err != nil || pl.Census != 42 || pl.Site != "a" || pl.Target != p.dst || echo.Seq != i || echo.ID != 42 {
				t.Errorf("packet %d: %+v %+v %v", i, echo, pl, err)
			}
		}
	})
}

// Ctrl-C stops the census and says what was sent.
func TestSendInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second+time.Millisecond, cancel)
		s, err := Send(ctx, conn, targets(1000), SendOptions{Anycast: anycast6, Site: "a", Census: 1, Rate: 100})
		if err != nil {
			t.Fatal(err)
		}
		if !s.Interrupted || s.Sent != 101 || len(conn.sent) != 101 {
			t.Errorf("summary %+v, %d sent; want 101 sent in the first second, interrupted", s, len(conn.sent))
		}
	})
}

func TestSendRefuses(t *testing.T) {
	conn := newFakeConn()
	for name, o := range map[string]SendOptions{
		"rate 0":        {Anycast: anycast6, Site: "a", Census: 1, Rate: 0},
		"rate too high": {Anycast: anycast6, Site: "a", Census: 1, Rate: MaxRate + 1},
		"rate NaN":      {Anycast: anycast6, Site: "a", Census: 1, Rate: math.NaN()},
		"no site":       {Anycast: anycast6, Census: 1, Rate: 10},
		"census 0":      {Anycast: anycast6, Site: "a", Rate: 10},
	} {
		if _, err := Send(context.Background(), conn, targets(1), o); err == nil {
			t.Errorf("%s: sent", name)
		}
	}
	if _, err := Send(context.Background(), conn, []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		SendOptions{Anycast: anycast6, Site: "a", Census: 1, Rate: 10}); err == nil {
		t.Error("an IPv4 target from an IPv6 anycast address was sent")
	}
	if len(conn.sent) != 0 {
		t.Errorf("%d packets sent by refused censuses", len(conn.sent))
	}
	// A failed send is counted and the census goes on.
	conn.failTo = targets(2)[0]
	s, err := Send(context.Background(), conn, targets(2), SendOptions{Anycast: anycast6, Site: "a", Census: 1, Rate: 1000})
	if err != nil || s.Sent != 1 || s.Failed != 1 {
		t.Errorf("summary %+v %v, want 1 sent and 1 failed", s, err)
	}
}

func reply(t *testing.T, typ icmp.Type, data []byte, seq int) []byte {
	m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: 7, Seq: seq, Data: data}}
	b, err := m.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The listener keeps the replies of its census and counts the rest.
func TestListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		target := netip.MustParseAddr("198.51.100.10")
		mine, _ := Payload{Census: 42, Site: "b", Target: target, Sent: time.Now().Add(-time.Second)}.Marshal()
		other, _ := Payload{Census: 43, Site: "b", Target: target, Sent: time.Now()}.Marshal()
		conn.in <- inPacket{reply(t, ipv4.ICMPTypeEchoReply, mine, 5), target, 61}
		conn.in <- inPacket{reply(t, ipv4.ICMPTypeEchoReply, []byte("abcdefghijklmnopqrstuvw"), 1), target, 61}
		conn.in <- inPacket{reply(t, ipv4.ICMPTypeEchoReply, other, 1), target, 61}
		conn.in <- inPacket{reply(t, ipv4.ICMPTypeEchoReply, mine[:30], 1), target, 61}
		conn.in <- inPacket{reply(t, ipv4.ICMPTypeEcho, mine, 1), target, 61}
		conn.in <- inPacket{[]byte{0, 0}, target, 61}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var got []Reply
		st, err := Listen(ctx, conn, ListenOptions{Site: "a", Census: 42, OnReply: func(r Reply) { got = append(got, r) }})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || st != (ListenStats{Replies: 1, OtherICMP: 1, NoPayload: 1, OtherCensus: 1, Malformed: 2}) {
			t.Fatalf("replies %+v, stats %+v", got, st)
		}
		r := got[0]
		if r.Site != "a" || r.Sender != "b" || r.Target != target || r.From != target || r.TTL != 61 || r.Seq != 5 || r.Received.Sub(r.Sent) != time.Second {
			t.Errorf("reply %+v", r)
		}
	})
}

func TestJoin(t *testing.T) {
	j := NewJoin(JoinOptions{})
	j.Site("c") // a site that received nothing
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	rep := func(site, target string, s int) Reply {
		a := netip.MustParseAddr(target)
		return Reply{Site: site, Census: 1, Sender: "a", Target: a, From: a, Received: at(s)}
	}
	j.AddReply(rep("a", "198.51.100.10", 1))
	j.AddReply(rep("a", "198.51.100.10", 2)) // a duplicate reply
	j.AddReply(rep("b", "203.0.113.9", 1))
	j.AddReply(rep("a", "198.51.100.202", 3))
	j.AddReply(rep("b", "198.51.100.203", 4)) // another address of the same /24, at another site
	r := rep("b", "2001:db8:101:1::10", 5)
	r.From = netip.MustParseAddr("2001:db8:101:1::1")
	j.AddReply(r)
	j.AddSent(netip.MustParseAddr("192.0.2.1"))
	c := j.Result()
	if c.Method != Active || c.Queries != 6 || c.Elsewhere != 1 || len(c.Instances) != 3 || len(c.Clients) != 4 {
		t.Fatalf("census %+v", c)
	}
	byPrefix := map[string]Client{}
	for _, cl := range c.Clients {
		byPrefix[cl.Prefix.String()] = cl
	}
	if cl := byPrefix["192.0.2.0/24"]; cl.Queries != 0 || cl.Main() != -1 {
		t.Errorf("unresponsive prefix %+v", cl)
	}
	if cl := byPrefix["198.51.100.0/24"]; !cl.Split() || cl.Queries != 4 || c.Instances[cl.Main()].Name != "a" {
		t.Errorf("split prefix %+v", cl)
	}
	if c.Instances[1].Name != "a" || c.Instances[1].Main != 1 || c.Instances[2].Main != 2 || c.Instances[2].Clients != 3 || c.Instances[0].Clients != 0 {
		t.Errorf("sites %+v", c.Instances)
	}
}

func FuzzParseEchoReply(f *testing.F) {
	data, _ := Payload{Census: 9, Site: "a", Target: netip.MustParseAddr("192.0.2.1"), Sent: t0}.Marshal()
	m := icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 9, Seq: 1, Data: data}}
	b, _ := m.Marshal(nil)
	f.Add(b)
	f.Add([]byte{129, 0, 0, 0, 0, 1, 0, 2})
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := ParseEchoReply(msg)
		if err != nil {
			return
		}
		if !r.Target.IsValid() || CheckSite(r.Sender) != nil || r.TTL != -1 {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// At a high rate the sender wakes once a millisecond, not once a request
// (every wake-up is late on a loaded host), and the rate still holds.
func TestSendHighRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newFakeConn()
		s, err := Send(context.Background(), conn, targets(10000), SendOptions{Anycast: anycast6, Site: "a", Census: 1, Rate: 20000})
		if err != nil {
			t.Fatal(err)
		}
		wakeups := map[time.Time]bool{}
		for _, p := range conn.sent {
			wakeups[p.at] = true
		}
		if len(wakeups) > 501 {
			t.Errorf("%d distinct send times for 10,000 requests over 0.5 s: want a wake-up per millisecond at most", len(wakeups))
		}
		if r := s.Rate(); r < 19950 || r > 20050 {
			t.Errorf("rate %g, want 20000", r)
		}
	})
}
