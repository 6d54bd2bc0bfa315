package whois

import (
	"context"
	"net/netip"
)

// Origin is what is known about the routed origin of one address.
type Origin struct {
	Addr      netip.Addr
	ASNs      []uint32     // origin AS numbers; several for multi-origin prefixes; nil when unannounced or special
	Prefix    netip.Prefix // covering BGP prefix; invalid when unknown
	ASName    string       // AS name / description (untrusted text)
	Country   string
	Registry  string
	Allocated string // allocation date as the source gives it (YYYY-MM-DD usually)
	Source    string // "cymru", "cymru-dns", "file", "special"
	Cached    bool   // answered from the on-disk cache
	// Special labels addresses that are never looked up: "private",
	// "cgnat", "ula", "loopback", "link-local", "unspecified", "multicast".
	Special string
	// Unannounced is set when the source says the address is not routed (NA).
	Unannounced bool
}

// Resolver maps addresses to their origins in bulk. Addresses the resolver
// knows nothing about are absent from the map (or present with Unannounced).
type Resolver interface {
	Lookup(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error)
}

// API of this package (see the declarations for details):
//
//	func Special(a netip.Addr) string   // "" for addresses that may be looked up
//	func New(spec string, opts Options) (Resolver, error)
//	    spec: "cymru", "cymru-dns", "file:PATH", "none"; an unknown spec is an
//	    error naming it and the valid ones. Network sources are wrapped in
//	    Cached when opts.CacheDir is set and opts.NoCache is not.
//	func Cached(r Resolver, opts CacheOptions) Resolver
//	type Fixed map[netip.Addr]Origin   // a Resolver answering from a given table
//	func LoadTable(path string) (*Table, error)   // pfx2as, iptoasn, .mmdb; gzip ok
//	func ReverseNames(ctx context.Context, addrs []netip.Addr, opts PTROptions) map[netip.Addr]string
//
// Every Resolver labels special addresses itself (Source "special") and never
// sends them anywhere. Lookup returns what it learned even when it also
// returns an error (a server error line, a reply cut short, a timeout), so a
// caller can keep partial enrichment and report the error.
