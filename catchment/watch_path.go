package catchment

import (
	"net/netip"
	"slices"
)

// PathChange is how a flow's path differs between two traces of it (`watch
// --trace` traces again after every switch).
type PathChange struct {
	// Part is the TTL of the last hop both paths share before their first
	// difference: where the new path leaves the old one. 0 when they differ
	// from the first hop on, or do not differ.
	Part int
	// Common is that shared hop's responder (its origin ASes say in which
	// AS the paths part); zero when Part is 0.
	Common Responder
	// Changed lists every TTL at which the paths differ, in TTL order.
	Changed []HopChange
}

// HopChange is one TTL at which two traces of a flow differ. Old or New is
// nil where that trace has no hop at this TTL (it ended before).
type HopChange struct {
	TTL      int
	Old, New *Hop
}

// ComparePaths lists where the new trace of a flow differs from the old
// one. Two hops differ when both answered and from different addresses, or
// when only one of the traces reached that TTL; a silent hop ("*") is no
// difference, since it says nothing about where the probe went (a
// rate-limited router is silent on one trace and not on the next).
func ComparePaths(old, new Flow) PathChange {
	var c PathChange
	o, n := hopsByTTL(old.Hops), hopsByTTL(new.Hops)
	last := 0
	if len(old.Hops) > 0 {
		last = old.Hops[len(old.Hops)-1].TTL
	}
	if len(new.Hops) > 0 {
		last = max(last, new.Hops[len(new.Hops)-1].TTL)
	}
	for ttl := 1; ttl <= last; ttl++ {
		oh, nh := o[ttl], n[ttl]
		switch {
		case oh == nil && nh == nil:
			continue
		case oh == nil || nh == nil:
			// One trace ended before this TTL: past its end only the other
			// trace has hops.
			if (oh != nil && oh.Silent()) || (nh != nil && nh.Silent()) {
				// A trailing silent hop is no evidence either way.
				continue
			}
		case oh.Silent() || nh.Silent():
			continue
		case sameAddrs(oh.Responders, nh.Responders):
			if len(c.Changed) == 0 {
				c.Part, c.Common = ttl, oh.Responders[0]
			}
			continue
		}
		c.Changed = append(c.Changed, HopChange{TTL: ttl, Old: oh, New: nh})
	}
	if len(c.Changed) == 0 {
		c.Part, c.Common = 0, Responder{}
	}
	return c
}

func hopsByTTL(hops []Hop) map[int]*Hop {
	m := make(map[int]*Hop, len(hops))
	for i := range hops {
		m[hops[i].TTL] = &hops[i]
	}
	return m
}

func sameAddrs(a, b []Responder) bool {
	as := make([]netip.Addr, 0, len(a))
	for _, r := range a {
		as = append(as, r.Addr.Unmap())
	}
	bs := make([]netip.Addr, 0, len(b))
	for _, r := range b {
		bs = append(bs, r.Addr.Unmap())
	}
	slices.SortFunc(as, netip.Addr.Compare)
	slices.SortFunc(bs, netip.Addr.Compare)
	return slices.Equal(slices.Compact(as), slices.Compact(bs))
}
