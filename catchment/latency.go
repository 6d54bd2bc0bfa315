package catchment

import (
	"net/netip"
	"time"

	"github.com/anycheck/anycheck/geo"
)

// SuspectFasterThanLight: the site the answer names lies farther from the
// vantage point than light in fibre travels in half the answer's RTT — the
// answer is not from that site, or the vantage is not where it says.
const SuspectFasterThanLight Suspicion = "faster_than_light"

// LightOf is the speed-of-light check of a row: the distance from the
// vantage point to the place of the site its identity names, against the
// DNS answer's RTT. ok is false when nothing can be said: no place for the
// vantage or the site, an approximate vantage position (it may be a
// country away), or no usable RTT.
func LightOf(r *Row) (geo.Light, bool) {
	v := r.Vantage
	if !r.Site.Placed() || !v.Location.Valid() || v.LocationApproximate {
		return geo.Light{}, false
	}
	return geo.CheckLight(v.Location, r.Site.Place.Point, r.DNSRTT)
}

// LatencyRTT is the lowest RTT a row measured to its target, for the
// geometry: the DNS answer's when it is the service's (not suspect), the
// path's when the trace reached the target. Zero when neither.
func LatencyRTT(r *Row) time.Duration {
	var best time.Duration
	if r.DNSRTT != 0 && !r.Suspect() {
		best = r.DNSRTT
	}
	if r.Reached && r.PathRTT != 0 && (best == 0 || r.PathRTT < best) {
		best = r.PathRTT
	}
	return best
}

// Latency is one target's enumeration and geolocation by latency
// (geo.Enumerate over its rows), next to what the names say.
type Latency struct {
	Target netip.Addr
	geo.Enumeration
	// Rows maps the enumeration's samples to rows: Instances[i].Sample and
	// Vantages index Rows, whose values index the rows given to LatencyOf.
	Rows []int
	// Named counts the sites the identities name among the target's rows
	// (instances where a name has no site); 0 when the service gives no
	// identity (a public resolver's interceptors, a traceroute-only prefix).
	Named int
	// Approximate counts the instances whose disk belongs to a vantage point
	// with an approximate position: they may not be instances of their own.
	Approximate int
}

// LatencyOf enumerates the instances the RTTs prove, per target in the
// order the rows have them. Rows without an RTT of the service are no
// samples; rows with one but without a location count as NoPlace, with an
// RTT above geo.MaxRTT as BadRTT. Targets with no located sample are left
// out.
func LatencyOf(rows []Row) []Latency {
	type acc struct {
		samples []geo.Sample
		rows    []int
		named   map[string]bool
	}
	by := map[netip.Addr]*acc{}
	var order []netip.Addr
	for i := range rows {
		r := &rows[i]
		a := by[r.Target]
		if a == nil {
			a = &acc{named: map[string]bool{}}
			by[r.Target] = a
			order = append(order, r.Target)
		}
		if r.Identified() {
			if r.Site.Site != "" {
				a.named["site:"+r.Site.Site] = true
			} else {
				a.named["instance:"+r.Instance] = true
			}
		}
		rtt := LatencyRTT(r)
		if rtt == 0 {
			continue // nothing measured, or only a suspect answer or an unreached path: no bound on the service
		}
		a.samples = append(a.samples, geo.Sample{Vantage: r.Vantage.Location, RTT: rtt, Approximate: r.Vantage.LocationApproximate})
		a.rows = append(a.rows, i)
	}
	var out []Latency
	for _, t := range order {
		a := by[t]
		e := geo.Enumerate(a.samples)
		if e.Used == 0 {
			continue
		}
		l := Latency{Target: t, Enumeration: e, Rows: a.rows, Named: len(a.named)}
		for _, in := range e.Instances {
			if in.Approximate {
				l.Approximate++
			}
		}
		out = append(out, l)
	}
	return out
}
