package probetest

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestServer checks the behaviours other packages' tests rely on, with a
// plain miekg client (not the probe package, so a bug there cannot hide
// one here).
func TestServer(t *testing.T) {
	hostile := "a\\b\"c\x1b[2J\x00" + string(make([]byte, 300))
	srv := &Server{Hostname: hostile, NSID: []byte("n\x00"), ForceTC: true, RefuseVersion: true}
	addr := srv.StartPair(t, "127.0.0.1")

	ask := func(network, name string) *dns.Msg {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeTXT)
		q.Question[0].Qclass = dns.ClassCHAOS
		q.RecursionDesired = false
		q.SetEdns0(1232, false)
		opt := q.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		c := dns.Client{Net: network, Timeout: 2 * time.Second}
		r, _, err := c.Exchange(q, addr.String())
		if err != nil {
			t.Fatalf("%s %s: %v", network, name, err)
		}
		return r
	}

	r := ask("udp", "hostname.bind.")
	if !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("udp answer: TC %v with %d records, want a truncated empty answer", r.Truncated, len(r.Answer))
	}
	r = ask("tcp", "hostname.bind.")
	if r.Truncated || len(r.Answer) != 1 || !r.Authoritative || r.RecursionAvailable {
		t.Fatalf("tcp answer: %v", r)
	}
	rr := r.Answer[0]
	if rr.Header().Class != dns.ClassCHAOS || rr.Header().Ttl != 0 {
		t.Errorf("answer class %d TTL %d, want CH and 0", rr.Header().Class, rr.Header().Ttl)
	}
	// Reassemble the raw bytes from the wire, past miekg's escaping.
	wire := make([]byte, dns.Len(rr)+10)
	n, err := dns.PackRR(rr, wire, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	rdata := wire[n-int(rr.Header().Rdlength) : n]
	var got []byte
	for len(rdata) > 0 {
		l := int(rdata[0])
		got, rdata = append(got, rdata[1:1+l]...), rdata[1+l:]
	}
	if string(got) != hostile {
		t.Errorf("TXT bytes %q, want %q", got, hostile)
	}
	var nsid string
	for _, o := range r.IsEdns0().Option {
		if n, ok := o.(*dns.EDNS0_NSID); ok {
			nsid = n.Nsid
		}
	}
	if nsid != "6e00" {
		t.Errorf("NSID %q, want hex 6e00", nsid)
	}
	if r := ask("tcp", "version.bind."); r.Rcode != dns.RcodeRefused {
		t.Errorf("version.bind rcode %d, want REFUSED", r.Rcode)
	}
	if r := ask("tcp", "id.server."); r.Rcode != dns.RcodeRefused {
		t.Errorf("unset id.server rcode %d, want REFUSED", r.Rcode)
	}

	qs := srv.Queries()
	if len(qs) != 4 {
		t.Fatalf("%d queries recorded, want 4", len(qs))
	}
	transports := []string{qs[0].Transport, qs[1].Transport}
	if !slices.Equal(transports, []string{"udp", "tcp"}) || qs[0].Name != "hostname.bind." || !qs[0].NSID || qs[0].UDPSize != 1232 || qs[0].Class != dns.ClassCHAOS {
		t.Errorf("recorded %+v", qs[:2])
	}
	if qs[0].From.Addr().String() != "127.0.0.1" || qs[0].From.Port() == 0 {
		t.Errorf("recorded source %v", qs[0].From)
	}
}

func TestServerMiddlebox(t *testing.T) {
	srv := &Server{Hostname: "r", Middlebox: true, NSID: []byte("hidden")}
	addr := srv.Start(t, "udp", "127.0.0.1:0")
	q := new(dns.Msg)
	q.SetQuestion("hostname.bind.", dns.TypeTXT)
	q.Question[0].Qclass = dns.ClassCHAOS
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	r, err := dns.Exchange(q, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if !r.RecursionAvailable || r.Authoritative || len(r.Answer) != 1 || r.Answer[0].Header().Class != dns.ClassINET || r.Answer[0].Header().Ttl != 7984 {
		t.Errorf("middlebox answer: %v", r)
	}
	if len(r.IsEdns0().Option) != 0 {
		t.Errorf("middlebox sent NSID: %v", r.IsEdns0())
	}
}

func TestServerSilentAndGarbage(t *testing.T) {
	silent := (&Server{Silent: true}).Start(t, "udp", "127.0.0.1:0")
	garbage := (&Server{Garbage: true}).Start(t, "udp", "127.0.0.1:0")
	q, _ := (&dns.Msg{MsgHdr: dns.MsgHdr{Id: 0xabcd}, Question: []dns.Question{{Name: "id.server.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}}).Pack()
	read := func(addr string) ([]byte, error) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Write(q); err != nil {
			return nil, err
		}
		b := make([]byte, 512)
		n, err := c.Read(b)
		return b[:n], err
	}
	if b, err := read(silent.String()); err == nil {
		t.Errorf("silent server answered %x", b)
	}
	b, err := read(garbage.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0xab || b[1] != 0xcd {
		t.Fatalf("garbage %x does not carry the query ID", b)
	}
	if err := new(dns.Msg).Unpack(b); err == nil {
		t.Errorf("garbage %x parses as DNS", b)
	}
}

// TestServerReflectHold: Reflect sends the query back with QR clear; Hold
// answers nothing until enough queries have arrived.
func TestServerReflectHold(t *testing.T) {
	q := func(id uint16) *dns.Msg {
		return &dns.Msg{MsgHdr: dns.MsgHdr{Id: id}, Question: []dns.Question{{Name: "hostname.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}}
	}
	reflect := (&Server{Reflect: true, Hostname: "h"}).Start(t, "udp", "127.0.0.1:0")
	c, err := net.Dial("udp", reflect.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	co := &dns.Conn{Conn: c}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if err := co.WriteMsg(q(7)); err != nil {
		t.Fatal(err)
	}
	r, err := co.ReadMsg()
	if err != nil || r.Response || r.Id != 7 || len(r.Answer) != 0 {
		t.Fatalf("reflected %v, %v; want the query back", r, err)
	}

	held := (&Server{Hold: 2, Hostname: "h"}).Start(t, "tcp", "127.0.0.1:0")
	tc, err := net.Dial("tcp", held.String())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tco := &dns.Conn{Conn: tc}
	tc.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if err := tco.WriteMsg(q(1)); err != nil {
		t.Fatal(err)
	}
	if r, err := tco.ReadMsg(); err == nil {
		t.Fatalf("answer %v before the second query arrived", r)
	}
	tc.SetDeadline(time.Now().Add(2 * time.Second))
	if err := tco.WriteMsg(q(2)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint16{1, 2} {
		if r, err := tco.ReadMsg(); err != nil || r.Id != id || len(r.Answer) != 1 {
			t.Fatalf("answer %v, %v; want %d", r, err, id)
		}
	}
}
