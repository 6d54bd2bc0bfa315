package whois

import (
	"context"
	"net/netip"
)

// Enrichment is what one lookup learned of a set of addresses: their
// origins and reverse names.
type Enrichment struct {
	Origins map[netip.Addr]Origin
	Names   map[netip.Addr]string
	// Err is the origin lookup's failure; what it learned before failing
	// is in Origins, and the names do not depend on it.
	Err error
}

// Enrich looks up the origins of addrs (one Lookup of r: one bulk request,
// never one per address) and, when names is not nil, their reverse names,
// both at once. It is the one enrichment after probing: a trace's hops, a
// sweep's flows, a watched flow's trace.
func Enrich(ctx context.Context, r Resolver, addrs []netip.Addr, names *PTROptions) Enrichment {
	var out Enrichment
	done := make(chan struct{})
	if names != nil {
		go func() {
			defer close(done)
			out.Names = ReverseNames(ctx, addrs, *names)
		}()
	} else {
		close(done)
	}
	if r != nil {
		out.Origins, out.Err = r.Lookup(ctx, addrs)
	}
	<-done
	return out
}
