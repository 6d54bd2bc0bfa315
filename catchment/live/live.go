// Package live turns what anycheck measures itself — a finished trace
// (package trace) with the origins looked up for its addresses (package
// whois), the identity runs of `id` over several flows (package probe) —
// into the catchment model's typed values, so `trace`, sweeps and
// `watch` analyse a path with the same functions `compare` and `atlas` use
// on files (catchment.PathOf, catchment.SweepOf). It is the live source's
// one adapter; the files' are atlas.Result.Observations and the JSON
// contract's reader. Like catchment it is pure: no I/O, no printing.
package live

import (
	"net/netip"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/measure"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// Flow is a finished trace as a catchment flow: per hop the distinct
// responders in order of first reply, each with its smallest RTT, its
// unreachable mark and its origin ASes from origins (nil: not looked up),
// whether it reached the target, and the identity its answers named.
func Flow(p trace.Path, origins map[netip.Addr]whois.Origin) catchment.Flow {
	f := catchment.Flow{Proto: string(p.Flow.Proto), Source: netip.AddrPortFrom(p.Flow.Src.Addr().Unmap(), p.Flow.Src.Port()), Dport: p.Flow.Dst.Port(), Reached: p.Reached}
	if p.Instance != nil {
		f.Identity = *p.Instance
	}
	dst := p.Flow.Dst.Addr().Unmap()
	f.Hops = make([]catchment.Hop, 0, len(p.Hops))
	for _, h := range p.Hops {
		hop := catchment.Hop{TTL: h.TTL, RateLimited: h.RateLimited}
		for _, pr := range h.Probes {
			r := pr.Reply
			if r == nil || !r.From.IsValid() {
				continue
			}
			from := r.From.Unmap()
			i := -1
			for j := range hop.Responders {
				if hop.Responders[j].Addr == from {
					i = j
					break
				}
			}
			if i < 0 {
				resp := catchment.Responder{Addr: from}
				if o, ok := origins[r.From]; ok {
					resp.ASNs = o.ASNs
				}
				hop.Responders = append(hop.Responders, resp)
				i = len(hop.Responders) - 1
			}
			x := &hop.Responders[i]
			if r.RTT > 0 && (x.RTT == 0 || r.RTT < x.RTT) {
				x.RTT = r.RTT
			}
			if r.Kind == trace.ReplyUnreachable && from != dst && x.Unreachable == "" {
				x.Unreachable = measure.UnreachableMark(r.ICMPType, r.ICMPCode)
			}
		}
		f.Hops = append(f.Hops, hop)
	}
	return f
}

// Path is Flow and what it says about the catchment (catchment.PathOf),
// the service's origin ASes being the target's in origins.
func Path(p trace.Path, origins map[netip.Addr]whois.Origin) (catchment.Flow, catchment.PathFacts) {
	f := Flow(p, origins)
	return f, catchment.PathOf(f, p.Flow.Dst.Addr(), targetASNs(p, origins))
}

// Sweep is the flows of a sweep towards one target and their analysis
// (catchment.SweepOf at the MDA confidence given); flows[i] is paths[i].
func Sweep(paths []trace.Path, origins map[netip.Addr]whois.Origin, confidence float64) ([]catchment.Flow, catchment.Sweep) {
	flows := make([]catchment.Flow, len(paths))
	for i, p := range paths {
		flows[i] = Flow(p, origins)
	}
	if len(paths) == 0 {
		return flows, catchment.SweepOf(nil, netip.Addr{}, nil, confidence)
	}
	return flows, catchment.SweepOf(flows, paths[0].Flow.Dst.Addr(), targetASNs(paths[0], origins), confidence)
}

func targetASNs(p trace.Path, origins map[netip.Addr]whois.Origin) []uint32 {
	if o, ok := origins[p.Flow.Dst.Addr()]; ok {
		return o.ASNs
	}
	return nil
}

// IDFlows are the flows of `id` (every run over one source port each, in
// order) as catchment flows: the source and the identity of the last run.
// Flows without a run are left out.
func IDFlows(flows [][]probe.Result) []catchment.Flow {
	out := make([]catchment.Flow, 0, len(flows))
	for _, runs := range flows {
		if len(runs) == 0 {
			continue
		}
		last := runs[len(runs)-1]
		out = append(out, catchment.Flow{Proto: "udp", Source: last.Source, Dport: last.Target.Port(), Identity: last.Identity})
	}
	return out
}
