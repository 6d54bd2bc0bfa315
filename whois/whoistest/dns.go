package whoistest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Zones names the Team Cymru style DNS zones a DNS handler serves.
type Zones struct {
	Origin, Origin6, ASN string // defaults origin.asn.cymru.com. etc.
}

func (z Zones) withDefaults() Zones {
	if z.Origin == "" {
		z.Origin = "origin.asn.cymru.com."
	}
	if z.Origin6 == "" {
		z.Origin6 = "origin6.asn.cymru.com."
	}
	if z.ASN == "" {
		z.ASN = "asn.cymru.com."
	}
	z.Origin, z.Origin6, z.ASN = dns.Fqdn(z.Origin), dns.Fqdn(z.Origin6), dns.Fqdn(z.ASN)
	return z
}

// DNS answers origin, origin6 and AS name TXT queries from rows, and PTR
// queries from Names. It records every query name it receives.
type DNS struct {
	zones  Zones
	routes *routes

	mu      sync.Mutex
	names   map[netip.Addr]string
	queries []string
}

// SetName makes a PTR query for a answer name, given in presentation form
// (bytes other than '.' and '\' stand for themselves).
func (d *DNS) SetName(a netip.Addr, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names[a] = name
}

// NewDNS serves rows under zones.
func NewDNS(rows []Row, zones Zones) *DNS {
	return &DNS{zones: zones.withDefaults(), routes: newRoutes(rows), names: map[netip.Addr]string{}}
}

// Queries returns the query names received so far, lower-cased.
func (d *DNS) Queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.queries...)
}

// ServeDNS implements dns.Handler.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	d.mu.Lock()
	d.queries = append(d.queries, name)
	var ptr string
	if a, ok := addrFromArpa(name); ok && q.Qtype == dns.TypePTR {
		ptr = d.names[a]
	}
	d.mu.Unlock()

	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 300}
	switch {
	case q.Qtype == dns.TypePTR:
		if ptr != "" {
			hdr.Rrtype = dns.TypePTR
			m.Answer = append(m.Answer, &dns.PTR{Hdr: hdr, Ptr: dns.Fqdn(ptr)}) // raw bytes go on the wire as they are
		} else {
			m.Rcode = dns.RcodeNameError
		}
	case q.Qtype == dns.TypeTXT && strings.HasSuffix(name, "."+d.zones.Origin), q.Qtype == dns.TypeTXT && strings.HasSuffix(name, "."+d.zones.Origin6):
		a, ok := addrFromOriginName(name, d.zones)
		row, found := d.routes.lookup(a)
		if !ok || !found {
			m.Rcode = dns.RcodeNameError
			break
		}
		hdr.Rrtype = dns.TypeTXT
		asns := make([]string, len(row.ASNs))
		for i, n := range row.ASNs {
			asns[i] = strconv.FormatUint(uint64(n), 10)
		}
		txt := fmt.Sprintf("%s | %s | %s | %s | %s", strings.Join(asns, " "), row.Prefix, orNA(row.Country), orNA(row.Registry), orNA(row.Allocated))
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: txtStrings(txt)})
	case q.Qtype == dns.TypeTXT && strings.HasPrefix(name, "as") && strings.HasSuffix(name, "."+d.zones.ASN):
		n, err := strconv.ParseUint(strings.TrimSuffix(name[2:], "."+d.zones.ASN), 10, 32)
		row, found := d.routes.byASN(uint32(n))
		if err != nil || !found {
			m.Rcode = dns.RcodeNameError
			break
		}
		hdr.Rrtype = dns.TypeTXT
		txt := fmt.Sprintf("%d | %s | %s | %s | %s", n, orNA(row.Country), orNA(row.Registry), orNA(row.Allocated), orNA(row.ASName))
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: txtStrings(txt)})
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// txtStrings puts text on the wire byte for byte, as the real service does
// with UTF-8 AS names: miekg/dns reads TXT strings in presentation form,
// so a backslash must be escaped, and one character-string holds at most
// 255 bytes.
func txtStrings(text string) []string {
	var out []string
	for len(text) > 0 {
		n := min(len(text), 255)
		out = append(out, strings.ReplaceAll(text[:n], `\`, `\\`))
		text = text[n:]
	}
	return out
}

// addrFromOriginName undoes the reversed octets / nibbles of an origin name.
func addrFromOriginName(name string, z Zones) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, "."+z.Origin6); ok {
		return addrFromNibbles(rest)
	}
	if rest, ok := strings.CutSuffix(name, "."+z.Origin); ok {
		return addrFromOctets(rest)
	}
	return netip.Addr{}, false
}

func addrFromOctets(rest string) (netip.Addr, bool) {
	labels := strings.Split(rest, ".")
	if len(labels) != 4 {
		return netip.Addr{}, false
	}
	for i, j := 0, 3; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	a, err := netip.ParseAddr(strings.Join(labels, "."))
	return a, err == nil && a.Is4()
}

func addrFromNibbles(rest string) (netip.Addr, bool) {
	labels := strings.Split(rest, ".")
	if len(labels) != 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i, l := range labels {
		v, err := strconv.ParseUint(l, 16, 4)
		if err != nil || len(l) != 1 {
			return netip.Addr{}, false
		}
		pos := 31 - i
		if pos%2 == 0 {
			b[pos/2] |= byte(v) << 4
		} else {
			b[pos/2] |= byte(v)
		}
	}
	return netip.AddrFrom16(b), true
}

func addrFromArpa(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		return addrFromNibbles(rest)
	}
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		return addrFromOctets(rest)
	}
	return netip.Addr{}, false
}

// DNSServer is a running UDP+TCP DNS server on one port.
type DNSServer struct {
	Addr     string // HOST:PORT
	udp, tcp *dns.Server
}

// StartDNS serves h over UDP and TCP on listen (default "127.0.0.1:0").
func StartDNS(listen string, h dns.Handler) (*DNSServer, error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	pc, ln, err := listenBoth(listen)
	if err != nil {
		return nil, err
	}
	s := &DNSServer{Addr: pc.LocalAddr().String()}
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: notify}
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	for range 2 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			s.Close()
			return nil, fmt.Errorf("whoistest: dns server on %s did not start", s.Addr)
		}
	}
	return s, nil
}

// Close stops both servers.
func (s *DNSServer) Close() error {
	return errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
}

// listenBoth opens UDP and TCP on the same port. With port 0 the kernel
// picks a free UDP port that TCP may already be using (another test's
// connection): try a few ports before giving up.
func listenBoth(listen string) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", listen)
		if err != nil {
			return nil, nil, fmt.Errorf("whoistest: dns listen udp %s: %w", listen, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = fmt.Errorf("whoistest: dns listen tcp %s: %w", pc.LocalAddr(), err)
		if _, port, _ := net.SplitHostPort(listen); port != "0" {
			break
		}
	}
	return nil, nil, lastErr
}
