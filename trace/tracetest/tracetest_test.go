package tracetest

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/trace"
)

// TestIdentityService: the destination's DNS service answers identity
// queries over TCP with the configured identity, and only once no trace
// holds the flow's port.
func TestIdentityService(t *testing.T) {
	n := &Net{Dest: Dest{Hostname: "inst.lab", NSID: "n-1"}}
	ctx := context.Background()
	dst := netip.MustParseAddrPort("192.0.2.53:53")
	c, err := n.Open(ctx, trace.Flow{Proto: trace.TCP, Dst: dst}, trace.ModeAuto)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode() != trace.ModeRaw || c.Flow().Src != netip.AddrPortFrom(Source4, DefaultSourcePort) {
		t.Fatalf("mode %s flow %+v", c.Mode(), c.Flow())
	}
	if _, err := n.DialTCP(ctx, c.Flow().Src, dst); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("dial while the trace holds the port: %v, want EADDRINUSE", err)
	}
	c.Close()
	conn, err := n.DialTCP(ctx, c.Flow().Src, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	q := new(dns.Msg)
	q.SetQuestion("hostname.bind.", dns.TypeTXT)
	q.Question[0].Qclass = dns.ClassCHAOS
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	dc := &dns.Conn{Conn: conn}
	if err := dc.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	r, err := dc.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "inst.lab" || r.Id != q.Id {
		t.Fatalf("answer %v", r)
	}
	if nsid := r.IsEdns0().Option[0].(*dns.EDNS0_NSID).Nsid; nsid != "6e2d31" {
		t.Errorf("nsid %q, want hex of n-1", nsid)
	}
	if d := n.Dials(); len(d) != 2 || d[1].Local != c.Flow().Src || d[1].Remote != dst {
		t.Errorf("dials %+v", d)
	}
}
