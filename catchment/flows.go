package catchment

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Path is a group of flows that saw the same hop list.
type Path struct {
	Hops      []Hop           // the hop list (of the group's first flow)
	Flows     []int           // indexes of the flows that took it, ascending
	Instances []InstanceCount // instances reached over this path, by flow count
	// HopRTT is, per hop of Hops, the median over the path's flows of each
	// flow's smallest RTT there; 0 when silent. RateLimited counts, per
	// hop, the flows whose probes there were answered and then not.
	HopRTT      []time.Duration
	RateLimited []int
	Reached     int // flows of the path that reached the target
	// Facts are what the path says about the catchment (AS path,
	// upstream): PathOf over its hops (every answer its flows got). Set by
	// SweepOf.
	Facts PathFacts
}

// InstanceCount is how many flows (or vantage points) reached an instance.
type InstanceCount struct {
	Instance string
	Count    int
}

// hopKey is the comparable form of a hop list: responder addresses per TTL,
// "*" for a silent hop. Two flows are on one path when their keys are equal.
func hopKey(hops []Hop) string {
	var b strings.Builder
	for _, h := range hops {
		b.WriteString(strconv.Itoa(h.TTL))
		b.WriteByte(':')
		if h.Silent() {
			b.WriteByte('*')
		}
		for i, r := range h.Responders {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(r.Addr.String())
		}
		b.WriteByte(' ')
	}
	return b.String()
}

// GroupPaths groups flows with identical hop lists (the same responders at
// every TTL, silent hops included) into paths, in the order of each path's
// first flow. A silent hop is part of the list: a flow whose hop 4 did not
// answer is not assumed to match one whose hop 4 did.
func GroupPaths(flows []Flow) []Path {
	var paths []Path
	index := map[string]int{}
	per := []map[string]int{}
	for i, f := range flows {
		k := hopKey(f.Hops)
		p, ok := index[k]
		if !ok {
			p = len(paths)
			index[k] = p
			paths = append(paths, Path{Hops: f.Hops})
			per = append(per, map[string]int{})
		}
		paths[p].Flows = append(paths[p].Flows, i)
		if in := f.Identity.Instance; in != "" {
			per[p][in]++
		}
	}
	for i := range paths {
		paths[i].Instances = sortCounts(per[i])
		paths[i].stats(flows)
	}
	return paths
}

// PlacePaths groups flows into the paths they took without drawing a path
// through hops that did not answer. Flows with identical hop lists form a
// group (GroupPaths); a group whose only difference from one path is hops
// that did not answer — every TTL it answered agrees with that path, and a
// destination reached a few TTLs later behind silent TTLs is the same
// destination, its answers lost on the way — joins that path, which then
// shows the answers of all its flows. Groups are placed most answered
// first. A group that fits several paths (silent where they differ), or
// whose flows got no reply at all, joins none: its flows are returned in
// unplaced. A group that fits no path is a path of its own, so a router
// that never answers stays a "*" of its path, and a flow that did not
// reach the target is not folded into one that did. Paths come in the
// order of their first flow; unplaced is ascending.
func PlacePaths(flows []Flow) (paths []Path, unplaced []int) {
	groups := GroupPaths(flows)
	answered := func(hs []Hop) int {
		n := 0
		for _, h := range hs {
			if !h.Silent() {
				n++
			}
		}
		return n
	}
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return answered(groups[order[a]].Hops) > answered(groups[order[b]].Hops) })
	type placed struct {
		hops    []Hop
		reached bool
		flows   []int
	}
	var out []*placed
	var pending []int // groups that fit several paths so far
	fitting := func(g Path) []*placed {
		var fit []*placed
		for _, p := range out {
			if fitsPath(g.Hops, flows[g.Flows[0]].Reached, p.hops, p.reached) {
				fit = append(fit, p)
			}
		}
		return fit
	}
	for _, gi := range order {
		g := groups[gi]
		if answered(g.Hops) == 0 && !flows[g.Flows[0]].Reached {
			unplaced = append(unplaced, g.Flows...)
			continue
		}
		switch fit := fitting(g); len(fit) {
		case 0:
			out = append(out, &placed{hops: slices.Clone(g.Hops), reached: flows[g.Flows[0]].Reached, flows: slices.Clone(g.Flows)})
		case 1:
			fit[0].hops = unionHops(fit[0].hops, g.Hops)
			fit[0].flows = append(fit[0].flows, g.Flows...)
		default:
			pending = append(pending, gi)
		}
	}
	for _, gi := range pending {
		g := groups[gi]
		if fit := fitting(g); len(fit) == 1 {
			fit[0].hops = unionHops(fit[0].hops, g.Hops)
			fit[0].flows = append(fit[0].flows, g.Flows...)
			continue
		}
		unplaced = append(unplaced, g.Flows...)
	}
	for _, p := range out {
		slices.Sort(p.flows)
		per := map[string]int{}
		for _, i := range p.flows {
			if in := flows[i].Identity.Instance; in != "" {
				per[in]++
			}
		}
		paths = append(paths, Path{Hops: p.hops, Flows: p.flows, Instances: sortCounts(per)})
	}
	sort.SliceStable(paths, func(a, b int) bool { return paths[a].Flows[0] < paths[b].Flows[0] })
	for i := range paths {
		paths[i].stats(flows)
	}
	slices.Sort(unplaced)
	return paths, unplaced
}

// stats fills the path's per-hop RTT medians and rate-limited counts, and
// how many of its flows reached the target: each of its flows' hop at the
// TTL of each of the path's hops.
func (p *Path) stats(flows []Flow) {
	p.HopRTT = make([]time.Duration, len(p.Hops))
	p.RateLimited = make([]int, len(p.Hops))
	p.Reached = 0
	for _, fi := range p.Flows {
		if flows[fi].Reached {
			p.Reached++
		}
	}
	for hi, ph := range p.Hops {
		var rtts []time.Duration
		for _, fi := range p.Flows {
			for _, h := range flows[fi].Hops {
				if h.TTL != ph.TTL {
					continue
				}
				if h.RateLimited {
					p.RateLimited[hi]++
				}
				var best time.Duration
				for _, r := range h.Responders {
					if r.RTT > 0 && (best == 0 || r.RTT < best) {
						best = r.RTT
					}
				}
				if best > 0 {
					rtts = append(rtts, best)
				}
				break
			}
		}
		p.HopRTT[hi] = median(rtts)
	}
}

// fitsPath says whether hop list a fits hop list b but for hops that did
// not answer: at every TTL both answered they share a responder, and they
// end alike — at the same TTL, or, both having reached the destination,
// the longer one a few silent TTLs later at the same address as the
// shorter one's last hop (its earlier answers lost).
func fitsPath(a []Hop, aReached bool, b []Hop, bReached bool) bool {
	if aReached != bReached || len(a) == 0 || len(b) == 0 {
		return false
	}
	short, long := a, b
	if len(long) < len(short) {
		short, long = long, short
	}
	last := short[len(short)-1].TTL
	at := map[int]Hop{}
	for _, h := range long {
		at[h.TTL] = h
	}
	for _, h := range short {
		o, ok := at[h.TTL]
		if !ok {
			return false
		}
		if h.Silent() || o.Silent() {
			continue
		}
		if !slices.ContainsFunc(h.Responders, func(r Responder) bool { return hasResponder(o, r.Addr) }) {
			return false
		}
	}
	if long[len(long)-1].TTL == last {
		return true
	}
	if !aReached {
		return false
	}
	end := long[len(long)-1]
	for _, h := range long {
		if h.TTL >= last && h.TTL < end.TTL && !h.Silent() {
			return false
		}
	}
	dest := short[len(short)-1]
	return !dest.Silent() && !end.Silent() && slices.ContainsFunc(dest.Responders, func(r Responder) bool { return hasResponder(end, r.Addr) })
}

func hasResponder(h Hop, a netip.Addr) bool {
	return slices.ContainsFunc(h.Responders, func(r Responder) bool { return r.Addr == a })
}

// unionHops is the hop list of a path p that hop list g fits (fitsPath):
// the shorter of the two (where both end at one destination, the longer
// one's earlier answers were lost), with the responders of the other added
// at each TTL.
func unionHops(p, g []Hop) []Hop {
	out := slices.Clone(p)
	if len(g) < len(p) {
		out = slices.Clone(g) // g reached the destination sooner
		g = p
	}
	at := map[int]Hop{}
	for _, h := range g {
		at[h.TTL] = h
	}
	for i, h := range out {
		o, ok := at[h.TTL]
		if !ok {
			continue
		}
		rs := slices.Clone(h.Responders)
		for _, r := range o.Responders {
			if !hasResponder(Hop{Responders: rs}, r.Addr) {
				rs = append(rs, r)
			}
		}
		out[i].Responders = rs
	}
	return out
}

// sortCounts orders counts by count, then by name, so output is stable.
func sortCounts(m map[string]int) []InstanceCount {
	out := make([]InstanceCount, 0, len(m))
	for _, k := range Ranked(m) {
		out = append(out, InstanceCount{Instance: k, Count: m[k]})
	}
	return out
}

// Ranked is the keys of counts, most counted first, then by name: the one
// stable order of every tally in a report.
func Ranked(counts map[string]int) []string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// Diamond is a stretch of TTLs where paths differ: they part after TTL
// Part and meet again at TTL Join.
type Diamond struct {
	// Part is the TTL of the last hop every path shares before they part;
	// 0 when they differ from the first hop on.
	Part int
	// Join is the TTL where every path is back on one address; 0 when they
	// never join (they end at different addresses, or at one anycast
	// address served by different instances).
	Join int
	// PartAddr and JoinAddr are the addresses at Part and Join (invalid
	// when the TTL is 0).
	PartAddr, JoinAddr netip.Addr
	// Alternatives are the distinct addresses at each TTL in between
	// (TTLs where every path was silent are left out).
	Alternatives []Alternatives
}

// Alternatives are the addresses seen at one TTL across paths, each with
// the number of flows that saw it.
type Alternatives struct {
	TTL   int
	Addrs []netip.Addr
	Flows []int // parallel to Addrs
}

// Divergence finds the diamonds of a set of paths: each maximal run of TTLs
// at which the paths show more than one address, with the TTL they part
// after and the TTL they join at. Silent hops are no alternative: a "*"
// inside a diamond continues it.
func Divergence(paths []Path) []Diamond {
	if len(paths) < 2 {
		return nil
	}
	type atTTL struct {
		addrs []netip.Addr
		flows map[netip.Addr]int // flows that saw each address
		// ends holds, for paths whose last hop is at this TTL, the
		// instances they reached there.
		ends map[string]bool
		last int // paths that end here
	}
	by := map[int]*atTTL{}
	minTTL, maxTTL := 0, 0
	for _, p := range paths {
		for i, h := range p.Hops {
			a := by[h.TTL]
			if a == nil {
				a = &atTTL{ends: map[string]bool{}, flows: map[netip.Addr]int{}}
				by[h.TTL] = a
			}
			if minTTL == 0 || h.TTL < minTTL {
				minTTL = h.TTL
			}
			maxTTL = max(maxTTL, h.TTL)
			for _, r := range h.Responders {
				if !slices.Contains(a.addrs, r.Addr) {
					a.addrs = append(a.addrs, r.Addr)
				}
				a.flows[r.Addr] += max(len(p.Flows), 1)
			}
			if i == len(p.Hops)-1 {
				a.last++
				for _, in := range p.Instances {
					a.ends[in.Instance] = true
				}
			}
		}
	}
	var out []Diamond
	var cur *Diamond
	lastSingle := 0 // TTL of the last hop with exactly one address
	for t := minTTL; t <= maxTTL; t++ {
		a := by[t]
		n := 0
		if a != nil {
			n = len(a.addrs)
		}
		switch {
		case n > 1:
			if cur == nil {
				cur = &Diamond{Part: lastSingle}
				if lastSingle > 0 {
					cur.PartAddr = by[lastSingle].addrs[0]
				}
			}
			addrs := append([]netip.Addr{}, a.addrs...)
			slices.SortFunc(addrs, func(x, y netip.Addr) int { return x.Compare(y) })
			alt := Alternatives{TTL: t, Addrs: addrs}
			for _, ad := range addrs {
				alt.Flows = append(alt.Flows, a.flows[ad])
			}
			cur.Alternatives = append(cur.Alternatives, alt)
		case n == 1:
			// One address for every path that reached this TTL; where
			// paths end here on different instances of one anycast
			// address, they have not joined.
			if cur != nil {
				if len(a.ends) <= 1 {
					cur.Join, cur.JoinAddr = t, a.addrs[0]
				}
				out = append(out, *cur)
				cur = nil
			}
			lastSingle = t
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// Sweep is what a flow sweep towards one target found: the distinct paths
// (each with its AS path and upstream), where they part and join, how the
// flows spread over instances, and the hops whose next hops want more
// flows under the MDA stopping rule.
type Sweep struct {
	Paths       []Path
	Unplaced    []int // flows on no path (PlacePaths), ascending
	Diamonds    []Diamond
	Split       Split
	Reached     int // flows that reached the target
	Unsatisfied []MDAVertex
}

// SweepOf analyses the flows of a sweep towards target, whose origin ASes
// are origin (nil when unknown), at the MDA confidence given.
func SweepOf(flows []Flow, target netip.Addr, origin []uint32, confidence float64) Sweep {
	s := Sweep{Split: SplitOf(flows), Unsatisfied: MDAUnsatisfied(flows, confidence)}
	s.Paths, s.Unplaced = PlacePaths(flows)
	s.Diamonds = Divergence(s.Paths)
	for _, f := range flows {
		if f.Reached {
			s.Reached++
		}
	}
	for i := range s.Paths {
		p := &s.Paths[i]
		p.Facts = PathOf(Flow{Hops: p.Hops, Reached: p.Reached > 0}, target, origin)
	}
	return s
}

// Split is how the flows of one target spread over instances.
type Split struct {
	Instances    []InstanceCount // instances by flow count
	Unidentified int             // flows that reached no identified instance
	// Split is set when flows reached more than one instance: the
	// catchment depends on the flow (source port).
	Split bool
}

// SplitOf counts the instances the flows reached.
func SplitOf(flows []Flow) Split {
	m := map[string]int{}
	var s Split
	for _, f := range flows {
		if f.Identity.Instance == "" {
			s.Unidentified++
			continue
		}
		m[f.Identity.Instance]++
	}
	s.Instances = sortCounts(m)
	s.Split = len(s.Instances) > 1
	return s
}

// MDAStoppingPoint is the number of flows that must have passed a vertex,
// all of them showing only k distinct next hops, to rule out a (k+1)-th
// next hop with the given confidence (0.95 in the MDA papers: 6, 11, 16,
// 21, 27, 33, 38, 44, 51, 57, … flows for k = 1, 2, 3, …). It assumes
// flows are spread uniformly over the next hops (per-flow load
// balancing) and computes the probability exactly (the chance that n
// uniform flows over k+1 branches miss one), as in Veitch et al.,
// "Failure Control in Multipath Route Tracing" (INFOCOM 2009), which
// corrects the first MDA paper's union bound.
func MDAStoppingPoint(k int, confidence float64) int {
	if k < 1 {
		return 1
	}
	if confidence <= 0 {
		return 0
	}
	if confidence >= 1 {
		confidence = 1 - 1e-12
	}
	branches := k + 1
	// p[j] is the probability that n flows have seen exactly j of the
	// branches; the recurrence is numerically stable where the
	// inclusion–exclusion sum is not.
	p := make([]float64, branches+1)
	p[0] = 1
	next := make([]float64, branches+1)
	for n := 0; ; n++ {
		if 1-p[branches] <= 1-confidence {
			return n
		}
		clear(next)
		for j := 0; j <= branches; j++ {
			if p[j] == 0 {
				continue
			}
			next[j] += p[j] * float64(j) / float64(branches)
			if j < branches {
				next[j+1] += p[j] * float64(branches-j) / float64(branches)
			}
		}
		p, next = next, p
	}
}

// MDAVertex is a hop (or the vantage itself, TTL 0) whose next hops have
// not yet been probed by enough flows to stop.
type MDAVertex struct {
	TTL      int
	Addr     netip.Addr // invalid for the vantage (TTL 0)
	NextHops int        // distinct next hops seen
	Flows    int        // flows that passed the vertex and answered at the next TTL
	Needed   int        // MDAStoppingPoint(NextHops)
}

// MDAUnsatisfied applies the MDA stopping rule to a set of flows, per
// vertex: for every responding hop (and the vantage), the flows through it
// must number at least MDAStoppingPoint(k) for the k next hops they showed.
// It returns the vertices that still need flows, by TTL; none means the
// sweep may stop. A silent hop breaks the chain: flows through it are not
// attributed to any vertex until the next responding hop.
func MDAUnsatisfied(flows []Flow, confidence float64) []MDAVertex {
	type vertex struct {
		ttl  int
		addr netip.Addr
	}
	type stat struct {
		next  []netip.Addr
		flows int
	}
	stats := map[vertex]*stat{}
	var order []vertex
	for _, f := range flows {
		prev, known := vertex{}, true
		for _, h := range f.Hops {
			if h.Silent() {
				known = false
				continue
			}
			cur := vertex{ttl: h.TTL, addr: h.Responders[0].Addr}
			if known && cur.ttl == prev.ttl+1 {
				s := stats[prev]
				if s == nil {
					s = &stat{}
					stats[prev] = s
					order = append(order, prev)
				}
				s.flows++
				if !slices.Contains(s.next, cur.addr) {
					s.next = append(s.next, cur.addr)
				}
			}
			prev, known = cur, true
		}
	}
	var out []MDAVertex
	for _, v := range order {
		s := stats[v]
		need := MDAStoppingPoint(len(s.next), confidence)
		if s.flows < need {
			out = append(out, MDAVertex{TTL: v.ttl, Addr: v.addr, NextHops: len(s.next), Flows: s.flows, Needed: need})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].TTL < out[j].TTL })
	return out
}
