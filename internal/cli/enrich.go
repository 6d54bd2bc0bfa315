package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// enrichOptions are the ASN and reverse-DNS flags shared by trace and whois.
type enrichOptions struct {
	asn          string
	whoisServer  string
	asnDNSServer string
	dnsServer    string
	noCache      bool

	// Cache problems of this run, each said once (the resolver reports
	// them from any lookup, in any goroutine).
	mu       sync.Mutex
	warned   map[string]bool
	warnings []string
}

// cacheProblem records a cache problem once: it is a warning, never a
// failed lookup (the answers are good; only the next run is slower).
func (e *enrichOptions) cacheProblem(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	msg := err.Error()
	if e.warned[msg] {
		return
	}
	if e.warned == nil {
		e.warned = map[string]bool{}
	}
	e.warned[msg] = true
	e.warnings = append(e.warnings, msg)
}

// takeWarnings returns the warnings not yet taken.
func (e *enrichOptions) takeWarnings() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.warnings
	e.warnings = nil
	return w
}

func (e *enrichOptions) register(f *pflag.FlagSet) {
	f.StringVar(&e.asn, "asn", "cymru", "origin AS source: cymru (bulk whois), cymru-dns, file:PATH (pfx2as, iptoasn TSV or .mmdb) or none")
	f.Var((*hostPort)(&e.whoisServer), "whois-server", "bulk whois server HOST:PORT for --asn cymru (default "+whois.DefaultWhoisServer+")")
	f.Var((*hostPort)(&e.asnDNSServer), "asn-dns-server", "DNS server HOST:PORT for --asn cymru-dns (default: the system resolver)")
	f.Var((*hostPort)(&e.dnsServer), "dns-server", "DNS server HOST:PORT for reverse names (default: the system resolver)")
	f.BoolVar(&e.noCache, "no-cache", false, "neither read nor write the on-disk ASN cache")
}

// hostPort is a HOST:PORT flag, checked when the flag is parsed so a bad
// value is a usage error (exit 2) before anything runs. An IP address is
// kept in its canonical form (netip.AddrPort).
type hostPort string

func (h *hostPort) String() string { return string(*h) }
func (h *hostPort) Type() string   { return "HOST:PORT" }

func (h *hostPort) Set(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return errors.New("want HOST:PORT, e.g. 192.0.2.43:43, [2001:db8::53]:53 or whois.example:43")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("port %q: must be a number from 1 to 65535", port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		*h = hostPort(netip.AddrPortFrom(a, uint16(n)).String())
		return nil
	}
	if !validHostname(host) {
		return fmt.Errorf("host %q: not an IP address or a host name", host)
	}
	*h = hostPort(net.JoinHostPort(host, strconv.FormatUint(n, 10)))
	return nil
}

// resolver builds the ASN source; a bad --asn is a usage error.
func (e *enrichOptions) resolver(g *globalOptions, d *deps) (whois.Resolver, error) {
	// Without --asn-dns-server / --dns-server the resolvers are the
	// system's, unless deps name another (tests: a closed loopback port).
	e.asnDNSServer = cmp.Or(e.asnDNSServer, d.dnsServer)
	e.dnsServer = cmp.Or(e.dnsServer, d.dnsServer)
	o := whois.Options{
		WhoisServer:  e.whoisServer,
		DNSServer:    e.asnDNSServer,
		NoCache:      e.noCache,
		Dial:         d.whoisDial,
		Timeout:      lookupTimeout(g),
		OnCacheError: e.cacheProblem,
	}
	if !e.noCache && d.cacheDir != nil {
		if dir, err := d.cacheDir(); err == nil && dir != "" {
			o.CacheDir = filepath.Join(dir, "anycheck")
		}
	}
	newR := whois.New
	if d.newResolver != nil {
		newR = d.newResolver
	}
	r, err := newR(e.asn, o)
	if err != nil {
		// The error names the source (and a table's path) once.
		return nil, usageErr("--asn: %v", err)
	}
	return r, nil
}

// lookupTimeout bounds one ASN lookup: a bulk whois answer for a whole
// trace may take longer than one probe's reply, so at least 5s unless the
// user set --timeout.
func lookupTimeout(g *globalOptions) time.Duration {
	if g.timeoutSet {
		return g.timeout
	}
	return max(g.timeout, 5*time.Second)
}

// ptr is how reverse names are looked up; nil with -n.
func (e *enrichOptions) ptr(g *globalOptions) *whois.PTROptions {
	if g.noDNS {
		return nil
	}
	return &whois.PTROptions{Server: e.dnsServer, Timeout: max(g.timeout, 2*time.Second)}
}

// lookup runs the ASN source and reverse DNS for all addresses at once
// (whois.Enrich: one bulk request, never one per hop).
func (e *enrichOptions) lookup(ctx context.Context, g *globalOptions, r whois.Resolver, addrs []netip.Addr) whois.Enrichment {
	return whois.Enrich(ctx, r, addrs, e.ptr(g))
}

// lookupProblem is a failed lookup after probing: a problem of the target
// that leaves the measurement (what) intact.
func lookupProblem(input, what string, err error) report.Problem {
	return report.Problem{Target: input, Stage: "whois", Message: fmt.Sprintf("%s whois: %s (the %s itself is complete)", input, err, what)}
}

// pathEnrichment is what enrichPaths found and what went wrong.
type pathEnrichment struct {
	origins  map[netip.Addr]whois.Origin
	problems []report.Problem // the lookup failed: said as the target's problem
	warnings []string         // cache trouble, for stderr only
}

// enrichPaths is the one post-trace enrichment (trace, each target of a
// sweep, watch --trace): one lookup, after probing, for the origins and
// reverse names of every address of a target's paths (ps, and their
// report form tps, filled in place, with the AS path and upstream). A
// failed lookup is a problem of the target that leaves the measurement
// intact ("the <what> itself is complete"); after Ctrl-C (interrupted)
// it takes only what the cache or an offline table answers at once.
func (e *enrichOptions) enrichPaths(ctx context.Context, g *globalOptions, r whois.Resolver, input, what string, ps []trace.Path, tps []report.TraceFlow, interrupted bool) pathEnrichment {
	if interrupted {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
		defer cancel()
	}
	seen := map[netip.Addr]bool{}
	var addrs []netip.Addr
	for _, p := range ps {
		for _, a := range p.Addresses() {
			if !seen[a] {
				seen[a] = true
				addrs = append(addrs, a)
			}
		}
	}
	en := e.lookup(ctx, g, r, addrs)
	for i := range tps {
		tps[i].Enrich(en.Origins, en.Names)
		_, facts := live.Path(ps[i], en.Origins)
		tps[i].SetPath(facts)
	}
	out := pathEnrichment{origins: en.Origins, warnings: e.takeWarnings()}
	if en.Err != nil {
		out.problems = append(out.problems, lookupProblem(input, what, en.Err))
	}
	return out
}

// report says a path enrichment's problems and warnings on out.
func (pe pathEnrichment) report(out *runOutput) {
	for _, pr := range pe.problems {
		out.problem(pr)
	}
	for _, w := range pe.warnings {
		out.warn(w)
	}
}
