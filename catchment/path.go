package catchment

import (
	"net/netip"
	"slices"
	"time"
)

// Upstream is where a traced path hands over to the service: the one
// definition every command prints (trace, sweeps, watch, compare, atlas).
//
// With origin ASes known (the target's and the hops'), AS is the last AS
// before the service's origin AS on the path, and the hop is where the
// path enters the service: the first responding hop inside the origin AS
// before the target, or, when the service's routers stay silent, the last
// responding hop before the target (the upstream's own router). Without
// origin ASes the hop is the last responding hop before the target, and
// AS is unknown.
type Upstream struct {
	TTL int
	Responder
	AS uint32 // the upstream AS; 0 when unknown
	// ByOrigin is set when the service's origin AS told the upstream AS
	// apart; false when the hop is simply the last before the target.
	ByOrigin bool
}

// PathFacts is what one traced flow says about the catchment.
type PathFacts struct {
	Reached  bool
	ASPath   []uint32 // origin ASes along the path, consecutive duplicates collapsed, the target's last
	Upstream *Upstream
	// RTT is the smallest RTT of the target's replies; when the target
	// did not answer, the upstream hop's. 0 when unknown.
	RTT time.Duration
}

// PathOf analyses one traced flow towards target, whose origin ASes are
// origin (nil when unknown; the target's own replies on the flow name it
// too).
func PathOf(f Flow, target netip.Addr, origin []uint32) PathFacts {
	target = target.Unmap()
	if len(origin) == 0 {
		origin = targetASNs(f, target)
	}
	p := PathFacts{Reached: f.Reached}
	if f.Reached {
		p.ASPath = ASPathOf(f, target, origin)
	} else {
		// The path did not get to the service: its AS is no AS of the path.
		p.ASPath = ASPathOf(f, target, nil)
	}
	if up, ok := UpstreamOf(f, target, origin); ok {
		p.Upstream = &up
	}
	p.RTT = destRTT(f, target)
	if p.RTT == 0 && p.Upstream != nil {
		p.RTT = p.Upstream.RTT
	}
	return p
}

// targetASNs are the origin ASes the target's own replies carry.
func targetASNs(f Flow, target netip.Addr) []uint32 {
	for _, h := range f.Hops {
		for _, r := range h.Responders {
			if r.Addr.Unmap() == target && len(r.ASNs) > 0 {
				return r.ASNs
			}
		}
	}
	return nil
}

// hopRef is a responder with its TTL, in path order.
type hopRef struct {
	ttl int
	r   Responder
}

// responders lists the flow's responders before the target in path order:
// the target itself, responders of the other address family and the Atlas
// "hop 255" tail are not hops of the path.
func responders(f Flow, target netip.Addr) []hopRef {
	var out []hopRef
	for _, h := range f.Hops {
		if h.TTL >= 255 {
			continue
		}
		for _, r := range h.Responders {
			if a := r.Addr.Unmap(); a != target && onPath(a, target) {
				out = append(out, hopRef{h.TTL, r})
			}
		}
	}
	return out
}

// onPath reports whether a responder's address can be a hop of a path to
// target: a responder of the other address family (a broken or forged
// result) is none. Any address is, when the target is unknown.
func onPath(a, target netip.Addr) bool {
	return !target.IsValid() || a.Unmap().Is4() == target.Unmap().Is4()
}

// UpstreamOf finds where the flow hands over to the service at target,
// whose origin ASes are origin (see Upstream). It is false when no hop
// before the target answered.
func UpstreamOf(f Flow, target netip.Addr, origin []uint32) (Upstream, bool) {
	target = target.Unmap()
	rs := responders(f, target)
	if len(rs) == 0 {
		return Upstream{}, false
	}
	last := rs[len(rs)-1]
	inOrigin := func(r Responder) bool {
		return slices.ContainsFunc(r.ASNs, func(a uint32) bool { return slices.Contains(origin, a) })
	}
	// The last hop whose AS is known and is not the service's.
	up := -1
	if len(origin) > 0 {
		for i := len(rs) - 1; i >= 0; i-- {
			if len(rs[i].r.ASNs) > 0 && !inOrigin(rs[i].r) {
				up = i
				break
			}
		}
	}
	if up < 0 {
		// No origin told the upstream AS apart: the hop is all there is
		// (its own origins are the responder's).
		return Upstream{TTL: last.ttl, Responder: last.r}, true
	}
	u := Upstream{TTL: last.ttl, Responder: last.r, AS: firstAS(rs[up].r.ASNs), ByOrigin: true}
	for _, h := range rs[up+1:] {
		if inOrigin(h.r) {
			u.TTL, u.Responder = h.ttl, h.r
			break
		}
	}
	return u, true
}

func firstAS(asns []uint32) uint32 {
	if len(asns) == 0 {
		return 0
	}
	return asns[0]
}

// ASPathOf lists the origin ASes along a flow's hops towards target:
// consecutive duplicates collapsed, hops without origin and responders of
// the other address family skipped, the target's origin (when given and
// not already last) at the end. A multi-origin prefix (an anycast service
// announced by every site's AS) continues the path when any of its origins
// does.
func ASPathOf(f Flow, target netip.Addr, origin []uint32) []uint32 {
	var path []uint32
	push := func(asns []uint32) {
		if len(asns) == 0 {
			return
		}
		if len(path) > 0 && slices.Contains(asns, path[len(path)-1]) {
			return
		}
		path = append(path, asns[0])
	}
	for _, h := range f.Hops {
		for _, r := range h.Responders {
			if onPath(r.Addr, target) {
				push(r.ASNs)
			}
		}
	}
	push(origin)
	return path
}

// destRTT is the smallest RTT of the target's replies on a flow.
func destRTT(f Flow, target netip.Addr) time.Duration {
	var best time.Duration
	for _, h := range f.Hops {
		for _, r := range h.Responders {
			if r.Addr.Unmap() == target && r.RTT > 0 && (best == 0 || r.RTT < best) {
				best = r.RTT
			}
		}
	}
	return best
}
