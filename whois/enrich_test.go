package whois

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fixedResolver answers from a table and then fails, as a lookup cut
// short does.
type fixedResolver struct {
	origins map[netip.Addr]Origin
	err     error
	asked   [][]netip.Addr
}

func (f *fixedResolver) Lookup(_ context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
	f.asked = append(f.asked, addrs)
	return f.origins, f.err
}

// TestEnrich: one Lookup for every address at once, the reverse names
// asked beside it, and a failed lookup keeps what it learned and the names.
func TestEnrich(t *testing.T) {
	hop := netip.MustParseAddr("192.0.2.1")
	srv := &dns.Server{Addr: "127.0.0.1:0", Net: "udp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		if q := req.Question[0]; q.Qtype == dns.TypePTR && q.Name == "1.2.0.192.in-addr.arpa." {
			m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: "r1.example."})
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ListenAndServe()
	<-started
	defer srv.Shutdown()

	r := &fixedResolver{origins: map[netip.Addr]Origin{hop: {Addr: hop, ASNs: []uint32{64500}}}, err: errors.New("reply cut short")}
	addrs := []netip.Addr{hop, netip.MustParseAddr("192.0.2.53")}
	en := Enrich(context.Background(), r, addrs, &PTROptions{Server: srv.PacketConn.LocalAddr().String(), Timeout: 2 * time.Second})
	if len(r.asked) != 1 || len(r.asked[0]) != 2 {
		t.Errorf("lookups %v, want one for both addresses", r.asked)
	}
	if en.Origins[hop].ASNs[0] != 64500 || en.Err == nil || en.Names[hop] != "r1.example" {
		t.Errorf("enrichment %+v: want the origin learned, the error, and the hop's name", en)
	}
	en = Enrich(context.Background(), r, addrs, nil)
	if en.Names != nil {
		t.Errorf("names %v asked without PTR options", en.Names)
	}
}
