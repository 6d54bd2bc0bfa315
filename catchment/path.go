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

// pathHop reports whether responder a at ttl is a hop of the path to
// target: the target itself, responders of the other address family and
// the Atlas "hop 255" tail are not.
func pathHop(ttl int, a, target netip.Addr) bool {
	if ttl >= 255 {
		return false
	}
	a = a.Unmap()
	return a != target && onPath(a, target)
}

// onPath reports whether a responder's address can be a hop of a path to
// target: a responder of the other address family (a broken or forged
// result) is none. Any address is, when the target is unknown.
func onPath(a, target netip.Addr) bool {
	return !target.IsValid() || a.Unmap().Is4() == target.Unmap().Is4()
}

// UpstreamOf finds where the flow hands over to the service at target,
// whose origin ASes are origin (see Upstream). It is false when no hop
// before the target answered. It walks the hops in place: it runs for
// every row of a catchment and every trace collected, and makes no
// garbage.
func UpstreamOf(f Flow, target netip.Addr, origin []uint32) (Upstream, bool) {
	target = target.Unmap()
	inOrigin := func(r *Responder) bool {
		for _, a := range r.ASNs {
			if slices.Contains(origin, a) {
				return true
			}
		}
		return false
	}
	// The last hop before the target, and the last whose AS is known and
	// is not the service's (by its place among the path's responders).
	var last, up *Responder
	lastTTL, upAt, n := 0, 0, 0
	for hi := range f.Hops {
		h := &f.Hops[hi]
		for ri := range h.Responders {
			r := &h.Responders[ri]
			if !pathHop(h.TTL, r.Addr, target) {
				continue
			}
			n++
			last, lastTTL = r, h.TTL
			if len(origin) > 0 && len(r.ASNs) > 0 && !inOrigin(r) {
				up, upAt = r, n
			}
		}
	}
	if last == nil {
		return Upstream{}, false
	}
	if up == nil {
		// No origin told the upstream AS apart: the hop is all there is
		// (its own origins are the responder's).
		return Upstream{TTL: lastTTL, Responder: *last}, true
	}
	u := Upstream{TTL: lastTTL, Responder: *last, AS: firstAS(up.ASNs), ByOrigin: true}
	// The hop where the path enters the service: the first in its origin
	// AS after the upstream's last.
	n = 0
	for hi := range f.Hops {
		h := &f.Hops[hi]
		for ri := range h.Responders {
			r := &h.Responders[ri]
			if !pathHop(h.TTL, r.Addr, target) {
				continue
			}
			if n++; n > upAt && inOrigin(r) {
				u.TTL, u.Responder = h.TTL, *r
				return u, true
			}
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
