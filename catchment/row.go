package catchment

import (
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/measure"
)

// Suspicion names a reason to believe an answer came from something on the
// vantage's path (an interceptor, a resolver, a middlebox), not from the
// service. Answer-level flags are package measure's; the catchment adds
// the ones below.
type Suspicion string

// Reasons beyond the answer flags of package measure.
const (
	// SuspectUnlikeService: the answer differs from what the service
	// answers most vantage points (see Service): TXT where the service
	// answers SERVFAIL, RA set where it clears it, a name unlike its names.
	SuspectUnlikeService Suspicion = "unlike_service"
	// SuspectIdentityMismatch: the target belongs to an operator of the
	// site-hint table, and the identity fits none of its patterns.
	SuspectIdentityMismatch Suspicion = "identity_mismatch"
	// SuspectNoChaosOperator: the operator never answers identity
	// queries, yet an answer came back.
	SuspectNoChaosOperator Suspicion = "no_chaos_operator"
	// SuspectFasterThanPath: the DNS answer came back well before the
	// vantage's own traceroute reached the last hop before the target:
	// something nearer answered.
	SuspectFasterThanPath Suspicion = "faster_than_path"
)

// FasterThanPath decides SuspectFasterThanPath: an answer is faster than
// the path allows when its RTT is below half the RTT to the last hop
// before the target (the smallest over the row's flows), and at least this
// much below it (RTT noise of a few milliseconds is not interception).
const FasterThanPath = 5 * time.Millisecond

// Reason is why a row's answers are counted apart from the service's.
type Reason struct {
	Code Suspicion
	Text string // how the answer differs, for an operator ("TXT where the service answers SERVFAIL")
	// Group is the reason without the row's own numbers, as a summary
	// counts rows by it; "" when Text has none.
	Group string
}

// GroupText is what a summary counts the reason by.
func (x Reason) GroupText() string {
	if x.Group != "" {
		return x.Group
	}
	return x.Text
}

// KeyKind says what a catchment key is made of.
type KeyKind string

// Kinds of catchment key, in the order they are preferred.
const (
	KeySite     KeyKind = "site"     // where the instance is, from its name
	KeyInstance KeyKind = "instance" // what the service says it is
	KeyUpstream KeyKind = "upstream" // inferred from the path: where it enters the service
)

// CatchmentKey is what a vantage point's catchment is counted by: its
// site when the instance's name places it, else its instance, else — for
// traceroute-only data — the upstream hop where its path enters the
// service (labelled as inferred from the path).
type CatchmentKey struct {
	Kind  KeyKind
	Value string     // site code (lower case), instance name, or the upstream hop's address
	Hop   netip.Addr // KeyUpstream: the hop
	AS    uint32     // KeyUpstream: the upstream AS; 0 when unknown
}

// Valid reports whether the key names something.
func (k CatchmentKey) Valid() bool { return k.Kind != "" }

// Row is one line of the catchment table: an observation with what it
// says about the catchment, once judged against the other vantage points
// of its target.
type Row struct {
	// *Observation is the observation the row judges, shared, not copied
	// (Analyse's rows point into the observations it was given: 10,000
	// rows would otherwise hold a second copy of 5 MB).
	*Observation
	// Instance is what the service says it is: the identity (NSID, else
	// hostname.bind, else id.server), or the instance most of a sweep's
	// flows reached; "" when none.
	Instance       string
	InstanceSource string // "nsid", "hostname.bind", "id.server" or ""
	Site           SiteHint
	Upstream       *Upstream
	ASPath         []uint32 // of the first traced flow
	Traced         bool     // at least one flow has hops
	Reached        bool     // the first traced flow reached the target
	DNSRTT         time.Duration
	PathRTT        time.Duration // RTT to the target (to the upstream hop when not reached); 0 when unknown
	Timeouts       int           // identity queries without a reply
	// FlowInstances counts the instances the flows reached (a flow
	// sweep); Split is set when there is more than one: the vantage
	// point's catchment depends on the flow.
	FlowInstances []InstanceCount
	Split         bool

	// Catchment is the key the row counts for in the catchment; invalid
	// when the row is apart, split, or names nothing.
	Catchment CatchmentKey
	// Apart lists why the row's answers are not taken as the service's;
	// such rows are counted apart, never as instances or shares.
	Apart  []Reason
	hopRTT time.Duration // the least RTT to the upstream hop over the row's flows

	// Hints are the answers' own flags (package measure; aa_clear left
	// out) that were not judged: a single answer has no population to
	// compare with.
	Hints []measure.Suspicion
	// Light is the speed-of-light check of the row's answer (LightOf): the
	// distance from the vantage to the place of the site it names, the
	// RTT and the least RTT physics allows; nil when it cannot be made.
	Light *geo.Light
}

// Suspect reports whether the row's answers are counted apart from the
// service's.
func (r *Row) Suspect() bool { return len(r.Apart) > 0 }

// Suspicions lists the codes of the row's reasons, once each, sorted.
func (r *Row) Suspicions() []Suspicion {
	var out []Suspicion
	for _, x := range r.Apart {
		if !slices.Contains(out, x.Code) {
			out = append(out, x.Code)
		}
	}
	slices.Sort(out)
	return out
}

// Identified reports whether the row names an instance by identity and is
// not apart.
func (r *Row) Identified() bool { return r.Instance != "" && !r.Suspect() }

// Resolve derives what one observation says on its own: instance, site,
// path facts (upstream, AS path, RTTs), how its flows spread, and the
// answers' own hints. The judgement against the population (Apart, Key)
// and the catchment key are Analyse's.
func Resolve(o Observation, sites *Sites) Row { return resolve(&o, sites) }

func resolve(o *Observation, sites *Sites) Row {
	r := Row{Observation: o}
	target := o.Target.Unmap()
	r.Instance, r.InstanceSource = o.Identity.Instance, o.Identity.Source
	if i := slices.IndexFunc(o.Flows, func(f Flow) bool { return len(f.Hops) > 0 }); i >= 0 {
		r.Traced = true
		p := PathOf(o.Flows[i], target, o.TargetOrigin.ASNs)
		r.Reached, r.ASPath, r.Upstream, r.PathRTT = p.Reached, p.ASPath, p.Upstream, p.RTT
		// A sweep's flows ran at once: the least of their RTTs is the
		// path's, less the queueing of many probes together.
		for _, f := range o.Flows[i+1:] {
			if len(f.Hops) == 0 {
				continue
			}
			q := PathOf(f, target, o.TargetOrigin.ASNs)
			if q.Reached == p.Reached && q.RTT > 0 && q.RTT < r.PathRTT {
				r.PathRTT = q.RTT
			}
			if q.Upstream != nil && (r.hopRTT == 0 || q.Upstream.RTT > 0 && q.Upstream.RTT < r.hopRTT) {
				r.hopRTT = q.Upstream.RTT
			}
		}
		if r.Upstream != nil && r.Upstream.RTT > 0 && (r.hopRTT == 0 || r.Upstream.RTT < r.hopRTT) {
			r.hopRTT = r.Upstream.RTT
		}
	}
	if len(o.Flows) > 0 {
		split := SplitOf(o.Flows)
		if len(split.Instances) > 0 {
			r.FlowInstances = split.Instances
			r.Split = split.Split
			if r.Instance == "" {
				r.Instance = split.Instances[0].Instance
				for _, f := range o.Flows {
					if f.Identity.Instance == r.Instance {
						r.InstanceSource = f.Identity.Source
						break
					}
				}
			}
		}
	}
	for _, a := range o.Answers {
		if a.Status == measure.StatusTimeout {
			r.Timeouts++
		}
		if a.Replied() && a.RTT > 0 && (r.DNSRTT == 0 || a.RTT < r.DNSRTT) {
			r.DNSRTT = a.RTT
		}
		for _, s := range a.Suspicions {
			// NSD and Knot clear AA on CHAOS answers: no hint on its own.
			if s != measure.SuspectAAClear && !slices.Contains(r.Hints, s) {
				r.Hints = append(r.Hints, s)
			}
		}
	}
	slices.Sort(r.Hints)
	if r.Instance != "" {
		r.Site, _ = sites.HintFor(r.Target, r.Instance)
	}
	if l, ok := LightOf(&r); ok {
		r.Light = &l
	}
	r.Apart = ownReasons(&r, sites)
	return r
}

// ownReasons are what a row shows on its own, without the population:
// an answer faster than its own path, and what the site-hint table knows
// about the target's operator.
func ownReasons(r *Row, sites *Sites) []Reason {
	var out []Reason
	if r.Instance != "" {
		if operator, kind, known := sites.OperatorOf(r.Target); known {
			switch {
			case kind == KindNoChaos:
				out = append(out, Reason{Code: SuspectNoChaosOperator, Text: operator + " never answers identity queries"})
			case !sites.fits(operator, r.Instance):
				out = append(out, Reason{Code: SuspectIdentityMismatch, Text: "name unlike " + operator + "'s names"})
			}
		}
	}
	if hop := r.hopRTT; r.DNSRTT > 0 && hop > 0 && r.DNSRTT*2 < hop && hop-r.DNSRTT >= FasterThanPath {
		out = append(out, Reason{Code: SuspectFasterThanPath, Text: "answer in " + fmtMs(r.DNSRTT) + ", the hop before the target takes " + fmtMs(hop),
			Group: "answers faster than the vantage's own path to the target"})
	}
	if x, ok := lightReason(r); ok {
		out = append(out, x)
	}
	return out
}

// lightReason counts a row apart when its answer came faster than light
// from the vantage's position to the site its name places it at.
func lightReason(r *Row) (Reason, bool) {
	l := r.Light
	if l == nil || !l.Impossible {
		return Reason{}, false
	}
	// The numbers are the row's (Light); the reason is the site's, so
	// rows of one AS that claim one far site count together.
	where := r.Site.Place.String()
	if where == "" {
		where = r.Site.Place.Point.String()
	}
	return Reason{Code: SuspectFasterThanLight, Text: "faster than light from the vantage's position to site " + r.Site.Site + " (" + where + ")"}, true
}

// AnswerSigns are the signs of interception one vantage point's answers
// show without a population to compare with (`watch`, `id`): the answer
// flags of package measure (aa_clear alone is not counted, as NSD and
// Knot clear AA on CHAOS answers; RA and TTLs above 0 are normal for an
// operator of kind resolver), and what the site-hint table knows about the
// target's operator.
func AnswerSigns(target netip.Addr, id measure.Identity, answers []measure.Answer, sites *Sites) []Suspicion {
	set := map[Suspicion]bool{}
	operator, kind, known := sites.OperatorOf(target)
	for _, a := range answers {
		for _, s := range a.Suspicions {
			switch s {
			case measure.SuspectAAClear:
				continue
			case measure.SuspectRA, measure.SuspectTTLNonZero:
				if known && kind == KindResolver {
					continue
				}
			}
			set[Suspicion(s)] = true
		}
	}
	if id.Instance != "" && known {
		switch {
		case kind == KindNoChaos:
			set[SuspectNoChaosOperator] = true
		case !sites.fits(operator, id.Instance):
			set[SuspectIdentityMismatch] = true
		}
	}
	out := make([]Suspicion, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func fmtMs(d time.Duration) string {
	ms := float64(d.Round(10*time.Microsecond)) / float64(time.Millisecond)
	return strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
}
