package atlas

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/measure"
)

// Vantage is the catchment vantage of the result's probe. Every result of
// one probe has the same key, so DNS and traceroute results of a probe join
// into one catchment-table line per target.
func (r *Result) Vantage() catchment.Vantage {
	return catchment.Vantage{
		Key:     "atlas:" + strconv.Itoa(r.ProbeID),
		Label:   "probe " + strconv.Itoa(r.ProbeID),
		ProbeID: r.ProbeID,
		Source:  r.Src,
		Public:  r.From,
	}
}

// Observations turns the result into catchment observations: one for a
// traceroute, one per DNS reply (a resultset asks several servers). input
// names the result in messages ("file.json#12").
func (r *Result) Observations(input string) []catchment.Observation {
	v := r.Vantage()
	base := catchment.Observation{Vantage: v, Target: r.Dst, Time: r.Time, Input: input}
	if r.DstName != "" && !isAddr(r.DstName) {
		base.TargetName = r.DstName
	}
	if r.Error != "" {
		base.Errors = append(base.Errors, r.Error)
	}
	switch {
	case r.Trace != nil:
		o := base
		o.Flows = []catchment.Flow{r.flow()}
		o.Errors = append(o.Errors, r.traceErrors()...)
		return []catchment.Observation{o}
	case len(r.DNS) > 0:
		out := make([]catchment.Observation, 0, len(r.DNS))
		for _, d := range r.DNS {
			o := base
			if d.Dst.IsValid() {
				o.Target = d.Dst
			}
			if !d.Time.IsZero() {
				o.Time = d.Time
			}
			a, id := d.Classify()
			o.Answers = []measure.Answer{a}
			o.Identity = id
			if d.Error != "" && !d.Timeout {
				o.Errors = append(slices.Clip(o.Errors), d.Error)
			}
			if o.Target.IsValid() {
				out = append(out, o)
			}
		}
		return out
	}
	return nil
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// flow is the traceroute as one catchment flow: per hop, the distinct
// responders in order of first reply, each with its smallest RTT. The
// responders of all hops share one allocation of the exact size: a file of
// 10,000 traceroutes keeps every probe's latest flow in memory. Time is
// linear in the replies, however many one hop has.
func (r *Result) flow() catchment.Flow {
	f := catchment.Flow{Proto: r.Proto, Source: netip.AddrPortFrom(r.Src, 0), ID: r.Trace.ParisID}
	var d dedup
	total := 0
	for _, h := range r.Trace.Hops {
		d.reset(len(h.Replies))
		for _, rep := range h.Replies {
			if answered(rep) && d.add(rep.From) {
				total++
			}
		}
	}
	slab := make([]catchment.Responder, 0, total)
	f.Hops = make([]catchment.Hop, 0, len(r.Trace.Hops))
	for _, h := range r.Trace.Hops {
		hop := catchment.Hop{TTL: h.TTL}
		start := len(slab)
		d.reset(len(h.Replies))
		for _, rep := range h.Replies {
			if !answered(rep) {
				continue
			}
			if rep.From == r.Dst {
				f.Reached = true
			}
			if d.add(rep.From) {
				slab = append(slab, catchment.Responder{Addr: rep.From, Unreachable: unreachMark(rep.Err)})
			}
			x := &slab[start+d.index(rep.From)]
			if rtt := rep.RTT; rtt > 0 && rep.Late == 0 && (x.RTT == 0 || rtt < x.RTT) {
				x.RTT = rtt
			}
		}
		if len(slab) > start {
			hop.Responders = slab[start:len(slab):len(slab)]
		}
		f.Hops = append(f.Hops, hop)
	}
	return f
}

// dedup numbers the distinct addresses of one hop in order of first
// appearance: a list scanned for the few replies of a usual hop (three,
// from one router), a map beyond that.
type dedup struct {
	list []netip.Addr
	m    map[netip.Addr]int
	big  bool
}

func (d *dedup) reset(replies int) {
	d.list = d.list[:0]
	d.big = replies > 16
	if d.big {
		d.m = make(map[netip.Addr]int, replies)
	}
}

// add reports whether a is new to the hop.
func (d *dedup) add(a netip.Addr) bool {
	if d.big {
		if _, ok := d.m[a]; ok {
			return false
		}
		d.m[a] = len(d.m)
		return true
	}
	if slices.Contains(d.list, a) {
		return false
	}
	d.list = append(d.list, a)
	return true
}

// index is the number of a, which add has seen.
func (d *dedup) index(a netip.Addr) int {
	if d.big {
		return d.m[a]
	}
	return slices.Index(d.list, a)
}

func answered(rep TraceReply) bool { return !rep.Timeout && rep.From.IsValid() }

// unreachMark writes an Atlas "err" the way traceroute prints it.
func unreachMark(err string) string {
	switch err {
	case "":
		return ""
	case "N", "H", "A", "P", "p", "h":
		return "!" + err
	}
	return "!<" + err + ">"
}

// traceErrors lists what kept hops from being measured: hop-level errors,
// per-probe errors, and replies that quote another destination.
func (r *Result) traceErrors() []string {
	var out []string
	for _, h := range r.Trace.Hops {
		if h.Error != "" {
			out = append(out, fmt.Sprintf("hop %d: %s", h.TTL, h.Error))
		}
		for _, rep := range h.Replies {
			msg := ""
			switch {
			case rep.Error != "":
				msg = fmt.Sprintf("hop %d: %s", h.TTL, rep.Error)
			case rep.Edst.IsValid() && rep.Edst != r.Dst:
				msg = fmt.Sprintf("hop %d: %s quotes destination %s, not %s (rewritten on the way)", h.TTL, rep.From, rep.Edst, r.Dst)
			}
			if msg != "" {
				out = append(out, msg) // once per hop
				break
			}
		}
	}
	return out
}
