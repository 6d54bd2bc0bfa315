package whois

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/errgroup"

	"github.com/anycheck/anycheck/measure"
)

// maxTXTLen bounds the TXT text we look at; real records are under 100 bytes.
const maxTXTLen = 1024

// originTXT is one origin record:
// "64500 | 192.0.2.0/24 | ZZ | arin | 2001-01-01".
type originTXT struct {
	ASNs      []uint32
	Prefix    netip.Prefix
	Country   string
	Registry  string
	Allocated string
}

// parseOriginTXT parses the text of one origin/origin6 TXT record. Several
// space-separated AS numbers mean a multi-origin prefix.
func parseOriginTXT(s string) (originTXT, error) {
	if len(s) > maxTXTLen {
		return originTXT{}, fmt.Errorf("origin TXT longer than %d bytes", maxTXTLen)
	}
	f := splitPipes(s)
	if len(f) < 2 {
		return originTXT{}, fmt.Errorf("origin TXT %q: want at least 2 fields", s)
	}
	asns, ok := parseASNList(f[0])
	if !ok {
		return originTXT{}, fmt.Errorf("origin TXT %q: bad AS number", s)
	}
	p, err := netip.ParsePrefix(f[1])
	if err != nil {
		return originTXT{}, fmt.Errorf("origin TXT %q: bad prefix", s)
	}
	o := originTXT{ASNs: asns, Prefix: p.Masked()}
	if len(f) > 2 {
		o.Country = naEmpty(f[2])
	}
	if len(f) > 3 {
		o.Registry = naEmpty(f[3])
	}
	if len(f) > 4 {
		o.Allocated = naEmpty(f[4])
	}
	return o, nil
}

// asNameTXT is one AS record: "64500 | ZZ | arin | 2001-01-01 | NAME".
type asNameTXT struct {
	ASN       uint32
	Country   string
	Registry  string
	Allocated string
	Name      string
}

// parseASNameTXT parses the text of one AS<n> TXT record. The name is the
// rest of the record and may itself contain '|'; it is kept raw.
func parseASNameTXT(s string) (asNameTXT, error) {
	if len(s) > maxTXTLen {
		return asNameTXT{}, fmt.Errorf("AS TXT longer than %d bytes", maxTXTLen)
	}
	f := strings.SplitN(s, "|", 5)
	if len(f) < 5 {
		return asNameTXT{}, fmt.Errorf("AS TXT %q: want 5 fields", s)
	}
	n, ok := parseASN(strings.TrimSpace(f[0]))
	if !ok {
		return asNameTXT{}, fmt.Errorf("AS TXT %q: bad AS number", s)
	}
	return asNameTXT{
		ASN:       n,
		Country:   naEmpty(strings.TrimSpace(f[1])),
		Registry:  naEmpty(strings.TrimSpace(f[2])),
		Allocated: naEmpty(strings.TrimSpace(f[3])),
		Name:      naEmpty(strings.TrimSpace(f[4])),
	}, nil
}

func splitPipes(s string) []string {
	f := strings.Split(s, "|")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f
}

// originName is the query name for a in the origin zones: its reverse
// name (reversed octets or nibbles, as in in-addr.arpa and ip6.arpa) under
// zone4 or zone6.
func originName(a netip.Addr, zone4, zone6 string) string {
	a = lookupAddr(a)
	arpa, err := dns.ReverseAddr(a.String())
	if err != nil {
		return "" // unreachable: a valid address always has a reverse name
	}
	if a.Is4() {
		return strings.TrimSuffix(arpa, "in-addr.arpa.") + dns.Fqdn(zone4)
	}
	return strings.TrimSuffix(arpa, "ip6.arpa.") + dns.Fqdn(zone6)
}

func dnsClientConfig(path string) (string, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(cfg.Servers) == 0 {
		return "", fmt.Errorf("%s lists no nameserver", path)
	}
	return net.JoinHostPort(cfg.Servers[0], cfg.Port), nil
}

// UDP retry policy of txtClient.
const (
	udpRetryAfter = 1500 * time.Millisecond
	udpAttempts   = 3
)

// txtClient asks one DNS server for TXT/PTR records, over UDP with a TCP
// retry on truncation.
type txtClient struct {
	server  string
	timeout time.Duration
}

// errNXDomain marks a name that does not exist: for the origin zones that
// means the address is not announced.
var errNXDomain = errors.New("no such name")

// query asks for name's records of type qtype and returns the reply; an
// error for anything but NOERROR.
func (c txtClient) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// A lost datagram is retried after a short wait rather than costing the
	// whole timeout; a refusal is final.
	udp := &dns.Client{Net: "udp", Timeout: min(c.timeout, udpRetryAfter), UDPSize: 1232}
	var (
		resp *dns.Msg
		err  error
	)
	for range udpAttempts {
		resp, _, err = udp.ExchangeContext(ctx, m, c.server)
		if err == nil || ctx.Err() != nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
	}
	if err == nil && resp.Truncated {
		tcp := &dns.Client{Net: "tcp", Timeout: c.timeout}
		resp, _, err = tcp.ExchangeContext(ctx, m, c.server)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s @%s: %w", dns.TypeToString[qtype], name, c.server, err)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, fmt.Errorf("%s %s: %w", dns.TypeToString[qtype], name, errNXDomain)
	default:
		return nil, fmt.Errorf("%s %s @%s: %s", dns.TypeToString[qtype], name, c.server, dns.RcodeToString[resp.Rcode])
	}
	return resp, nil
}

// txtStrings joins each TXT record's character-strings (a long record may
// be split), decoded to the bytes that were on the wire: miekg/dns keeps
// them in presentation form ("Soci\195\169t\195\169 \"q\""), and an AS
// name is text, not zone-file syntax.
func txtStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			var b strings.Builder
			for _, s := range t.Txt {
				b.WriteString(measure.Unescape(s))
			}
			out = append(out, b.String())
		}
	}
	return out
}

// nameText is a domain name (a PTR target) as text: its labels' raw bytes
// joined by dots, without the root's trailing dot. An escaped dot inside a
// label becomes a plain dot: the name is for people, and its owner could
// have chosen those labels anyway.
func nameText(name string) string {
	// miekg/dns always ends a name with the root's unescaped dot.
	return measure.Unescape(strings.TrimSuffix(name, "."))
}

// maxCNAMEs bounds the alias chain followed inside one answer.
const maxCNAMEs = 8

// answerRecords returns the records of type qtype that answer qname in m:
// owned by qname, or by the end of a CNAME chain starting there (RFC 2317
// classless reverse delegation answers a PTR query through a CNAME).
// Records about any other name are not an answer to this question.
func answerRecords(m *dns.Msg, qname string, qtype uint16) []dns.RR {
	name := qname
	for range maxCNAMEs + 1 {
		var out []dns.RR
		var next string
		for _, rr := range m.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			if h.Rrtype == qtype {
				out = append(out, rr)
			} else if c, ok := rr.(*dns.CNAME); ok && next == "" {
				next = c.Target
			}
		}
		if len(out) > 0 || next == "" {
			return out
		}
		name = next
	}
	return nil
}

// ptrName is the reverse name an answer gives for the PTR question arpa,
// or "".
func ptrName(m *dns.Msg, arpa string) string {
	for _, rr := range answerRecords(m, arpa, dns.TypePTR) {
		if p, ok := rr.(*dns.PTR); ok {
			if n := nameText(p.Ptr); n != "" {
				return n
			}
		}
	}
	return ""
}

// dnsResolver is the cymru-dns source.
type dnsResolver struct {
	txtClient
	originZone, origin6Zone, asnZone string
	concurrency                      int
}

func newDNSResolver(opts Options) (*dnsResolver, error) {
	r := &dnsResolver{
		txtClient:   txtClient{server: withPort(opts.DNSServer, "53"), timeout: opts.timeout()},
		originZone:  cmp.Or(opts.OriginZone, DefaultOriginZone),
		origin6Zone: cmp.Or(opts.Origin6Zone, DefaultOrigin6Zone),
		asnZone:     cmp.Or(opts.ASNZone, DefaultASNZone),
		concurrency: opts.Concurrency,
	}
	if r.concurrency <= 0 {
		r.concurrency = DefaultConcurrency
	}
	if r.server == "" {
		s, err := systemDNSServer()
		if err != nil {
			return nil, err
		}
		r.server = s
	}
	return r, nil
}

// parallel runs fn for each index, at most n at once, and stops starting
// new ones when ctx ends (running ones see the cancelled ctx and return
// quickly).
func parallel(ctx context.Context, count, n int, fn func(i int)) {
	var g errgroup.Group
	g.SetLimit(n)
	for i := range count {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { fn(i); return nil })
	}
	g.Wait()
}

// Lookup asks the origin zones for each address, then the AS zone for the
// name of each distinct origin AS, all in parallel.
func (r *dnsResolver) Lookup(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
	out, ask := splitSpecial(addrs)
	if len(ask) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	origins := make([]Origin, len(ask))
	errs := make([]error, len(ask))
	parallel(ctx, len(ask), r.concurrency, func(i int) {
		origins[i], errs[i] = r.origin(ctx, ask[i])
	})

	var asns []uint32
	for i, o := range origins {
		if errs[i] == nil && len(o.ASNs) > 0 && !slices.Contains(asns, o.ASNs[0]) {
			asns = append(asns, o.ASNs[0])
		}
	}
	names := make([]string, len(asns))
	nameErrs := make([]error, len(asns))
	parallel(ctx, len(asns), r.concurrency, func(i int) {
		names[i], nameErrs[i] = r.asName(ctx, asns[i])
	})

	var failed []error
	for i, a := range ask {
		if errs[i] != nil {
			failed = append(failed, errs[i])
			continue
		}
		if !origins[i].Addr.IsValid() {
			continue // never asked: ctx ended first
		}
		o := origins[i]
		if len(o.ASNs) > 0 {
			o.ASName = names[slices.Index(asns, o.ASNs[0])]
		}
		out[a] = o
	}
	for _, err := range nameErrs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if ctx.Err() != nil && len(failed) == 0 {
		failed = append(failed, ctx.Err())
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("cymru-dns @%s: %d lookup(s) failed, first: %w", r.server, len(failed), failed[0])
	}
	return out, nil
}

// origin looks up one address. A missing name means unannounced space.
func (r *dnsResolver) origin(ctx context.Context, a netip.Addr) (Origin, error) {
	if ctx.Err() != nil {
		return Origin{}, nil
	}
	qname := originName(a, r.originZone, r.origin6Zone)
	m, err := r.query(ctx, qname, dns.TypeTXT)
	if errors.Is(err, errNXDomain) {
		return Origin{Addr: a, Source: SourceCymruDNS, Unannounced: true}, nil
	}
	if err != nil {
		return Origin{}, err
	}
	return originFromTXT(a, txtStrings(answerRecords(m, qname, dns.TypeTXT)))
}

// originFromTXT combines the origin records of one address: the most
// specific prefix wins, and records for the same prefix add origins.
func originFromTXT(a netip.Addr, txts []string) (Origin, error) {
	var recs []originTXT
	var firstErr error
	for _, s := range txts {
		rec, err := parseOriginTXT(s)
		if err == nil && !rec.Prefix.Contains(lookupAddr(a)) {
			// An answer about some other space is no answer.
			err = fmt.Errorf("origin TXT names %s, which does not contain the address", rec.Prefix)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		if firstErr != nil {
			return Origin{}, fmt.Errorf("origin %s: %w", a, firstErr)
		}
		return Origin{Addr: a, Source: SourceCymruDNS, Unannounced: true}, nil
	}
	best := recs[0]
	for _, rec := range recs[1:] {
		if rec.Prefix.Bits() > best.Prefix.Bits() {
			best = rec
		}
	}
	o := Origin{Addr: a, Source: SourceCymruDNS, Prefix: best.Prefix, Country: best.Country,
		Registry: best.Registry, Allocated: best.Allocated}
	for _, rec := range recs {
		if rec.Prefix == best.Prefix {
			for _, n := range rec.ASNs {
				o.ASNs = appendASN(o.ASNs, n)
			}
		}
	}
	return o, nil
}

// asName looks up the name of one AS; no record is no name, not an error.
func (r *dnsResolver) asName(ctx context.Context, asn uint32) (string, error) {
	if ctx.Err() != nil {
		return "", nil
	}
	name := "AS" + strconv.FormatUint(uint64(asn), 10) + "." + dns.Fqdn(r.asnZone)
	m, err := r.query(ctx, name, dns.TypeTXT)
	if errors.Is(err, errNXDomain) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, s := range txtStrings(answerRecords(m, name, dns.TypeTXT)) {
		if rec, err := parseASNameTXT(s); err == nil && rec.ASN == asn {
			return rec.Name, nil
		}
	}
	return "", nil
}

// PTROptions configures ReverseNames.
type PTROptions struct {
	// Server is HOST:PORT of the resolver; default the first nameserver in
	// /etc/resolv.conf.
	Server string
	// Timeout bounds the whole batch; default 2s, because names are a
	// nicety that must not hold up a trace's output.
	Timeout time.Duration
	// Concurrency bounds parallel queries; default 16.
	Concurrency int
}

// ReverseNames returns the PTR name (without the trailing dot) of each
// address that has one, asking in parallel under one short deadline.
// Special addresses are never asked about; failures just leave an address
// out, since a missing name is normal.
func ReverseNames(ctx context.Context, addrs []netip.Addr, opts PTROptions) map[netip.Addr]string {
	out := make(map[netip.Addr]string)
	_, ask := splitSpecial(addrs)
	if len(ask) == 0 {
		return out
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	opts.Server = withPort(opts.Server, "53")
	if opts.Server == "" {
		s, err := systemDNSServer()
		if err != nil {
			return out
		}
		opts.Server = s
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	c := txtClient{server: opts.Server, timeout: opts.Timeout}
	names := make([]string, len(ask))
	parallel(ctx, len(ask), opts.Concurrency, func(i int) {
		arpa, err := dns.ReverseAddr(lookupAddr(ask[i]).String())
		if err != nil {
			return
		}
		m, err := c.query(ctx, arpa, dns.TypePTR)
		if err != nil {
			return
		}
		names[i] = ptrName(m, arpa)
	})
	for i, a := range ask {
		if names[i] != "" {
			out[a] = names[i]
		}
	}
	return out
}
