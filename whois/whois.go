package whois

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Source names as they appear in Origin.Source.
const (
	SourceCymru    = "cymru"
	SourceCymruDNS = "cymru-dns"
	SourceFile     = "file"
	SourceSpecial  = "special"
)

// Defaults. The public endpoints appear here only: tests always inject
// their own servers.
const (
	DefaultWhoisServer = "whois.cymru.com:43"
	DefaultOriginZone  = "origin.asn.cymru.com."
	DefaultOrigin6Zone = "origin6.asn.cymru.com."
	DefaultASNZone     = "asn.cymru.com."
	DefaultTimeout     = 10 * time.Second
	DefaultCacheTTL    = 24 * time.Hour
	DefaultNegativeTTL = time.Hour
	// DefaultConcurrency bounds parallel DNS queries so a long trace does not
	// become a burst of hundreds of packets towards one resolver.
	DefaultConcurrency = 8
)

// Specs lists the valid source specs for New, for error messages and help.
var specs = []string{"cymru", "cymru-dns", "file:PATH", "none"}

// Options configures a Resolver made by New. The zero value asks the public
// Team Cymru services with default timeouts and no cache.
type Options struct {
	// WhoisServer is HOST:PORT of a bulk whois server (cymru), or a bare
	// host for port 43; default DefaultWhoisServer.
	WhoisServer string
	// DNSServer is HOST:PORT (or a bare host for port 53) of the resolver
	// asked for cymru-dns TXT records; default: the first nameserver in
	// /etc/resolv.conf.
	DNSServer string
	// OriginZone, Origin6Zone and ASNZone are the DNS zones of cymru-dns, so a
	// lab or mirror can serve them under other names. Defaults
	// DefaultOriginZone, DefaultOrigin6Zone, DefaultASNZone.
	OriginZone, Origin6Zone, ASNZone string
	// Timeout bounds one Lookup: the whole bulk exchange, or all the DNS
	// queries of a batch; default DefaultTimeout. The Lookup context can
	// only shorten it.
	Timeout time.Duration
	// Concurrency bounds parallel DNS queries (cymru-dns); default
	// DefaultConcurrency.
	Concurrency int
	// CacheDir enables the on-disk cache (cymru and cymru-dns only; offline
	// tables need none). Empty means no cache.
	CacheDir string
	// CacheTTL is how long an answer stays fresh; default
	// DefaultCacheTTL. NegativeTTL is the same for unannounced addresses;
	// default DefaultNegativeTTL. Answers are cached per address (see
	// Cached).
	CacheTTL, NegativeTTL time.Duration
	// NoCache bypasses the cache entirely (neither read nor written).
	NoCache bool
	// OnCacheError, when set, is told about cache problems (a cache path
	// that is not a regular file, a directory that cannot be written):
	// they are warnings, never lookup failures. See CacheOptions.OnError.
	OnCacheError func(error)
	// Dial opens the whois TCP connection; default a net.Dialer. Tests inject
	// one to count or refuse connections.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

// New returns the Resolver named by spec: "cymru", "cymru-dns",
// "file:PATH" or "none". An offline table is loaded here, once. When
// opts.CacheDir is set (and NoCache is not), network sources are wrapped in
// Cached, with one cache file per source and endpoint so answers from a lab
// or mirror never mix with the public service's.
func New(spec string, opts Options) (Resolver, error) {
	var (
		r        Resolver
		endpoint string
	)
	switch {
	case spec == "cymru":
		c := newBulkResolver(opts)
		r, endpoint = c, c.server
	case spec == "cymru-dns":
		d, err := newDNSResolver(opts)
		if err != nil {
			return nil, fmt.Errorf("asn source %s: %w", spec, err)
		}
		r, endpoint = d, d.server+"_"+d.originZone
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if path == "" {
			return nil, fmt.Errorf("asn source %q: want file:PATH with a path", spec)
		}
		t, err := LoadTable(path) // its errors name the path
		if err != nil {
			return nil, err
		}
		return t, nil
	case spec == "none":
		return noneResolver{}, nil
	default:
		return nil, fmt.Errorf("unknown asn source %q (valid: %s)", spec, strings.Join(specs, ", "))
	}
	if opts.CacheDir == "" || opts.NoCache {
		return r, nil
	}
	return Cached(r, CacheOptions{
		Path:        filepath.Join(opts.CacheDir, cacheFileName(spec, endpoint)),
		TTL:         opts.CacheTTL,
		NegativeTTL: opts.NegativeTTL,
		OnError:     opts.OnCacheError,
	}), nil
}

// cacheFileName makes a file name from a source and its endpoint, keeping
// only characters that are safe in a file name on every OS.
func cacheFileName(spec, endpoint string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, spec+"_"+strings.TrimSuffix(endpoint, "."))
	if len(clean) > 120 {
		clean = clean[:120]
	}
	return "whois-" + clean + ".cache"
}

// noneResolver is the "none" source: it still labels special addresses so
// the output says why a private hop has no AS, but it asks nobody.
type noneResolver struct{}

func (noneResolver) Lookup(_ context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
	out, _ := splitSpecial(addrs)
	return out, nil
}

// Fixed is a Resolver that answers from a table it was given (the origins
// a census file carried, a test's), asking nobody; like every Resolver it
// labels special addresses itself.
type Fixed map[netip.Addr]Origin

// Lookup answers the addresses the table holds.
func (f Fixed) Lookup(_ context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
	out, ask := splitSpecial(addrs)
	for _, a := range ask {
		if og, ok := f[a]; ok {
			out[a] = og
		}
	}
	return out, nil
}

// splitSpecial labels the special addresses and returns the rest,
// deduplicated and in input order, for asking a source.
func splitSpecial(addrs []netip.Addr) (map[netip.Addr]Origin, []netip.Addr) {
	out := make(map[netip.Addr]Origin, len(addrs))
	seen := make(map[netip.Addr]bool, len(addrs))
	var rest []netip.Addr
	for _, a := range addrs {
		if seen[a] {
			continue
		}
		seen[a] = true
		if label := Special(a); label != "" {
			out[a] = Origin{Addr: a, Source: SourceSpecial, Special: label}
			continue
		}
		rest = append(rest, a)
	}
	return out, rest
}

// withPort adds port to a server given without one ("192.0.2.43",
// "2001:db8::43", "whois.example"), so --whois-server and --asn-dns-server
// accept a bare host.
func withPort(server, port string) string {
	if server == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server
	}
	return net.JoinHostPort(server, port)
}

// lookupAddr is the form an address is sent in: no zone, IPv4-mapped
// addresses as plain IPv4.
func lookupAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// systemDNSServer returns HOST:PORT of the first resolver in resolv.conf.
func systemDNSServer() (string, error) {
	const path = "/etc/resolv.conf"
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("no DNS server given and %w", err)
	}
	cfg, err := dnsClientConfig(path)
	if err != nil {
		return "", err
	}
	return cfg, nil
}
