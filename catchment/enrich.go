package catchment

import (
	"context"
	"net/netip"
)

// Lookup finds the origins of addresses in one bulk request (a
// whois.Resolver's Lookup, its answers as catchment Origins). It may
// answer some and return an error for the rest.
type Lookup func(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error)

// Enrich fills in, from one lookup for all of them, the origin of every
// vantage address that came without one, the origin of every target (the
// service's AS, which tells where a path enters it) and the AS of every
// hop responder that came without one. sides are the observations of one
// report or of both sides of a comparison. Origins already known (from the
// results, from Atlas probe metadata) are kept. What the lookup answered is
// filled in even when it returns an error, which Enrich returns.
func Enrich(ctx context.Context, lookup Lookup, sides ...[]Observation) error {
	seen := map[netip.Addr]bool{}
	var addrs []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	for _, obs := range sides {
		for i := range obs {
			add(obs[i].Vantage.LookupAddr())
			add(obs[i].Target)
			for _, f := range obs[i].Flows {
				for _, h := range f.Hops {
					for _, x := range h.Responders {
						if len(x.ASNs) == 0 {
							add(x.Addr)
						}
					}
				}
			}
		}
	}
	if len(addrs) == 0 {
		return nil
	}
	origins, err := lookup(ctx, addrs)
	for _, obs := range sides {
		for i := range obs {
			ob := &obs[i]
			if og, ok := origins[ob.Vantage.LookupAddr()]; ok && len(ob.Vantage.Origin.ASNs) == 0 {
				ob.Vantage.Origin = og
			}
			if og, ok := origins[ob.Target]; ok && len(ob.TargetOrigin.ASNs) == 0 {
				ob.TargetOrigin = og
			}
			for fi := range ob.Flows {
				for hi := range ob.Flows[fi].Hops {
					rs := ob.Flows[fi].Hops[hi].Responders
					for ri := range rs {
						if og, ok := origins[rs[ri].Addr]; ok && len(rs[ri].ASNs) == 0 {
							rs[ri].ASNs = og.ASNs
						}
					}
				}
			}
		}
	}
	return err
}
