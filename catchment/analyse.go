package catchment

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anycheck/anycheck/measure"
)

// Suspicion names a reason to believe an answer came from something on the
// vantage's path (an interceptor, a resolver, a middlebox), not from the
// service: the method of "Who Is Answering My Queries" (USENIX Security
// 2018). The answer-level flags are package probe's.
type Suspicion string

// Row-level suspicions beyond the answer flags of package probe.
const (
	// SuspectIdentityMismatch: the target belongs to an operator of the
	// site-hint table, and the identity fits none of its patterns.
	SuspectIdentityMismatch Suspicion = "identity_mismatch"
	// SuspectNoChaosOperator: the operator never answers identity
	// queries, yet an answer came back.
	SuspectNoChaosOperator Suspicion = "no_chaos_operator"
	// SuspectFasterThanPath: the DNS answer came back well before the
	// vantage's own traceroute reached the last hop before the target.
	SuspectFasterThanPath Suspicion = "faster_than_path"
)

// FasterThanPath decides SuspectFasterThanPath: an answer is faster than
// the path allows when its RTT is below half the RTT to the last hop before
// the target, and at least this much below it (RTT noise of a few
// milliseconds is not interception).
const FasterThanPath = 5 * time.Millisecond

// Instance sources beyond the identity's ("nsid", "hostname.bind", "id.server").
const (
	// SourceUpstream: no identity was measured; the instance is told by
	// the last responding hop before the target.
	SourceUpstream = "upstream"
)

// Upstream is the last responding hop before the target on a traced flow:
// for traceroute-only data, the hop that tells sites apart.
type Upstream struct {
	TTL int
	Responder
}

// Row is one line of the catchment table: an observation with what it
// says about the catchment.
type Row struct {
	Observation
	Instance       string // identity, or the upstream address; "" when unknown
	InstanceSource string // "nsid", "hostname.bind", "id.server", "upstream" or ""
	Site           SiteHint
	Upstream       *Upstream
	ASPath         []uint32 // origin ASes along the first flow, consecutive duplicates collapsed
	Traced         bool     // at least one flow has hops
	Reached        bool     // the first traced flow reached the target
	DNSRTT         time.Duration
	PathRTT        time.Duration // RTT to the target (to the upstream when not reached); 0 when unknown
	Suspicions     []Suspicion
	Timeouts       int // identity queries without a reply
	// FlowInstances counts the instances the flows reached (a flow
	// sweep); Split is set when there is more than one.
	FlowInstances []InstanceCount
	Split         bool
}

// Suspect reports whether the row's answers are counted apart from the
// instances.
func (r *Row) Suspect() bool { return len(r.Suspicions) > 0 }

// Identified reports whether the row names an instance by identity (not by
// its upstream) and is not suspect.
func (r *Row) Identified() bool {
	return r.Instance != "" && r.InstanceSource != SourceUpstream && !r.Suspect()
}

// UpstreamOf finds the last responding hop before the target on a flow;
// the Atlas "hop 255" tail is not a hop of the path.
func UpstreamOf(f Flow, target netip.Addr) (Upstream, bool) {
	target = target.Unmap()
	for i := len(f.Hops) - 1; i >= 0; i-- {
		h := f.Hops[i]
		if h.TTL >= 255 {
			continue
		}
		for _, r := range h.Responders {
			if r.Addr.Unmap() != target {
				return Upstream{TTL: h.TTL, Responder: r}, true
			}
		}
	}
	return Upstream{}, false
}

// ASPathOf lists the origin ASes along a flow's hops: consecutive
// duplicates collapsed, hops without origin skipped; a multi-origin prefix
// (an anycast service announced by every site's AS) continues the path
// when any of its origins does.
func ASPathOf(f Flow) []uint32 {
	var path []uint32
	for _, h := range f.Hops {
		for _, r := range h.Responders {
			if len(r.ASNs) == 0 {
				continue
			}
			if len(path) > 0 && slices.Contains(r.ASNs, path[len(path)-1]) {
				continue
			}
			path = append(path, r.ASNs[0])
		}
	}
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

// Resolve derives one catchment-table row from an observation: which
// instance it reached (identity, else the upstream of its trace), by which
// path, and whether its answers look intercepted.
func Resolve(o Observation, sites *Sites) Row {
	r := Row{Observation: o}
	target := o.Target.Unmap()
	r.Instance, r.InstanceSource = o.Identity.Instance, o.Identity.Source
	if i := slices.IndexFunc(o.Flows, func(f Flow) bool { return len(f.Hops) > 0 }); i >= 0 {
		r.Traced = true
		first := o.Flows[i]
		r.Reached = first.Reached
		r.ASPath = ASPathOf(first)
		if up, ok := UpstreamOf(first, target); ok {
			r.Upstream = &up
		}
		r.PathRTT = destRTT(first, target)
		if r.PathRTT == 0 && r.Upstream != nil {
			r.PathRTT = r.Upstream.RTT
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
	// Without an identity, the hop before the target tells sites apart —
	// when the trace got there: where an unreached trace died names no
	// instance (the row counts as without one, its upstream still shown).
	if r.Instance == "" && r.Upstream != nil && r.Reached {
		r.Instance, r.InstanceSource = r.Upstream.Addr.String(), SourceUpstream
	}
	for _, a := range o.Answers {
		if a.Status == measure.StatusTimeout {
			r.Timeouts++
		}
		if a.Replied() && a.RTT > 0 && (r.DNSRTT == 0 || a.RTT < r.DNSRTT) {
			r.DNSRTT = a.RTT
		}
	}
	if r.InstanceSource != SourceUpstream {
		if h, ok := sites.Hint(r.Instance); ok {
			r.Site = h
		}
	}
	r.Suspicions = suspicions(&r, sites)
	return r
}

// suspicions collects the row's reasons to doubt its answers.
func suspicions(r *Row, sites *Sites) []Suspicion {
	set := map[Suspicion]bool{}
	operator, kind, known := sites.OperatorOf(r.Target)
	for _, a := range r.Answers {
		flags := map[measure.Suspicion]bool{}
		for _, s := range a.Suspicions {
			flags[s] = true
		}
		for _, s := range a.Suspicions {
			switch s {
			case measure.SuspectAAClear:
				// NSD and Knot leave AA clear on CHAOS answers: not a
				// sign on its own.
				continue
			case measure.SuspectRA, measure.SuspectTTLNonZero:
				if known && kind == KindResolver {
					continue // a resolver sets RA and caches its own answer
				}
			}
			set[Suspicion(s)] = true
		}
	}
	if r.Instance != "" && r.InstanceSource != SourceUpstream && known {
		switch {
		case kind == KindNoChaos:
			set[SuspectNoChaosOperator] = true
		case !sites.fits(operator, r.Instance):
			set[SuspectIdentityMismatch] = true
		}
	}
	if r.DNSRTT > 0 && r.Upstream != nil && r.Upstream.RTT > 0 {
		hop := r.Upstream.RTT
		if r.DNSRTT*2 < hop && hop-r.DNSRTT >= FasterThanPath {
			set[SuspectFasterThanPath] = true
		}
	}
	out := make([]Suspicion, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Report is the analysis of a set of observations.
type Report struct {
	Rows      []Row           // by target (IPv4 first), then vantage label
	Targets   []TargetSummary // by target
	DualStack []DualStack
	Partings  []Parting
}

// Analyse resolves every observation and sums the catchment up.
func Analyse(obs []Observation, sites *Sites) Report {
	rows := make([]Row, 0, len(obs))
	for _, o := range obs {
		rows = append(rows, Resolve(o, sites))
	}
	SortRows(rows)
	return Report{
		Rows:      rows,
		Targets:   Shares(rows),
		DualStack: DualStackDivergence(rows),
		Partings:  PathsPart(rows),
	}
}

// SortRows orders rows by target (IPv4 before IPv6), then vantage label and key.
func SortRows(rows []Row) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := &rows[i], &rows[j]
		if c := a.Target.Compare(b.Target); c != 0 {
			return c < 0
		}
		if a.Vantage.Label != b.Vantage.Label {
			return a.Vantage.Label < b.Vantage.Label
		}
		return a.Vantage.Key < b.Vantage.Key
	})
}

// TargetSummary is the catchment of one target address.
type TargetSummary struct {
	Target   netip.Addr
	Names    []string // target names measured at this address
	Vantages int      // rows (vantage points) for this target
	// Instances are the instances reached, by vantage count; suspect rows
	// are not among them.
	Instances []Share
	Suspect   int // rows whose answers look intercepted
	Unknown   int // rows that name no instance (no answer, no trace)
	Errors    int // rows with errors or timeouts
}

// Share is one instance's part of a target's catchment.
type Share struct {
	Instance  string
	Source    string // "identity" or "upstream"
	Site      SiteHint
	Vantages  int
	Share     float64  // of the rows that name a (non-suspect) instance
	ASNs      []uint32 // the vantages' origin ASes, most frequent first
	Countries []string // the vantages' countries, most frequent first
	MedianRTT time.Duration
}

// Shares sums the rows up per target and instance.
func Shares(rows []Row) []TargetSummary {
	type acc struct {
		share     Share
		asns      map[uint32]int
		countries map[string]int
		rtts      []time.Duration
	}
	byTarget := map[netip.Addr]*TargetSummary{}
	inst := map[netip.Addr]map[string]*acc{}
	var order []netip.Addr
	for i := range rows {
		r := &rows[i]
		t := byTarget[r.Target]
		if t == nil {
			t = &TargetSummary{Target: r.Target}
			byTarget[r.Target] = t
			inst[r.Target] = map[string]*acc{}
			order = append(order, r.Target)
		}
		t.Vantages++
		if r.TargetName != "" && !slices.Contains(t.Names, r.TargetName) {
			t.Names = append(t.Names, r.TargetName)
		}
		if len(r.Errors) > 0 || r.Timeouts > 0 {
			t.Errors++
		}
		switch {
		case r.Suspect():
			t.Suspect++
			continue
		case r.Instance == "":
			t.Unknown++
			continue
		}
		source := "identity"
		if r.InstanceSource == SourceUpstream {
			source = SourceUpstream
		}
		key := source + "\x00" + r.Instance
		a := inst[r.Target][key]
		if a == nil {
			a = &acc{share: Share{Instance: r.Instance, Source: source, Site: r.Site}, asns: map[uint32]int{}, countries: map[string]int{}}
			inst[r.Target][key] = a
		}
		a.share.Vantages++
		if as := r.Vantage.Origin.AS(); as != 0 {
			a.asns[as]++
		}
		if c := r.Vantage.Origin.Country; c != "" {
			a.countries[c]++
		}
		rtt := r.DNSRTT
		if rtt == 0 {
			rtt = r.PathRTT
		}
		if rtt > 0 {
			a.rtts = append(a.rtts, rtt)
		}
	}
	slices.SortFunc(order, func(a, b netip.Addr) int { return a.Compare(b) })
	out := make([]TargetSummary, 0, len(order))
	for _, tgt := range order {
		t := byTarget[tgt]
		named := 0
		for _, a := range inst[tgt] {
			named += a.share.Vantages
		}
		for _, a := range inst[tgt] {
			s := a.share
			s.Share = float64(s.Vantages) / float64(named)
			s.ASNs = byFrequency(a.asns, func(x, y uint32) bool { return x < y })
			s.Countries = byFrequency(a.countries, func(x, y string) bool { return x < y })
			s.MedianRTT = median(a.rtts)
			t.Instances = append(t.Instances, s)
		}
		sort.Slice(t.Instances, func(i, j int) bool {
			a, b := t.Instances[i], t.Instances[j]
			if a.Vantages != b.Vantages {
				return a.Vantages > b.Vantages
			}
			if a.Source != b.Source {
				return a.Source < b.Source // identity before upstream
			}
			return a.Instance < b.Instance
		})
		out = append(out, *t)
	}
	return out
}

func byFrequency[K comparable](m map[K]int, less func(a, b K) bool) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if m[out[i]] != m[out[j]] {
			return m[out[i]] > m[out[j]]
		}
		return less(out[i], out[j])
	})
	return out
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// DualStack is a vantage point whose IPv4 and IPv6 reach different instances
// of one service.
type DualStack struct {
	Vantage    Vantage
	IPv4, IPv6 *Row
	// SameSite is set when both identities carry the same site hint: two
	// servers of one site, not two sites.
	SameSite bool
}

// DualStackDivergence pairs each vantage's IPv4 and IPv6 rows of one
// service and lists those that name different instances. Rows pair when
// they measured the same target name, or — for targets given as addresses
// — when the input holds exactly one IPv4 and one IPv6 target address.
// Only identities count (an upstream differs between families by nature),
// and suspect rows are left out.
func DualStackDivergence(rows []Row) []DualStack {
	addrTargets := map[Family]map[netip.Addr]bool{IPv4: {}, IPv6: {}}
	for i := range rows {
		if rows[i].TargetName == "" {
			if m := addrTargets[rows[i].Family()]; m != nil {
				m[rows[i].Target] = true
			}
		}
	}
	pairAddrs := len(addrTargets[IPv4]) == 1 && len(addrTargets[IPv6]) == 1
	type side struct{ v4, v6 *Row }
	pairs := map[[2]string]*side{}
	var order [][2]string
	for i := range rows {
		r := &rows[i]
		if !r.Identified() {
			continue
		}
		service := "name:" + strings.ToLower(r.TargetName)
		if r.TargetName == "" {
			if !pairAddrs {
				continue
			}
			service = "addr"
		}
		k := [2]string{r.Vantage.Key, service}
		s := pairs[k]
		if s == nil {
			s = &side{}
			pairs[k] = s
			order = append(order, k)
		}
		switch r.Family() {
		case IPv4:
			if s.v4 == nil {
				s.v4 = r
			}
		case IPv6:
			if s.v6 == nil {
				s.v6 = r
			}
		}
	}
	var out []DualStack
	for _, k := range order {
		s := pairs[k]
		if s.v4 == nil || s.v6 == nil || s.v4.Instance == s.v6.Instance {
			continue
		}
		out = append(out, DualStack{
			Vantage: s.v4.Vantage, IPv4: s.v4, IPv6: s.v6,
			SameSite: s.v4.Site.Site != "" && s.v4.Site == s.v6.Site,
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Vantage.Label < out[j].Vantage.Label })
	return out
}

// Parting is where the paths of vantage points in one origin AS part when
// they reach different instances of one target.
type Parting struct {
	Target   netip.Addr
	OriginAS uint32
	Common   []uint32 // the AS path both sides share from the vantage's AS on
	A, B     PartSide
}

// PartSide is one instance's side of a parting.
type PartSide struct {
	Instance string
	Vantages []string // labels of the vantages in the origin AS that reach it
	ASPath   []uint32 // the most common AS path among them
	AS       uint32   // the first AS after the common part; 0 when the path ends there
	Hop      *Upstream
}

// PathsPart finds, for each target and origin AS, the vantages that reach
// different instances and the first AS (and the first hop in it) where
// their paths differ. Each instance is represented by the most common AS
// path among its vantages in that AS (ties: the smallest path).
func PathsPart(rows []Row) []Parting {
	type groupKey struct {
		target netip.Addr
		as     uint32
	}
	type member struct {
		rows []*Row
	}
	groups := map[groupKey]map[string]*member{}
	var order []groupKey
	for i := range rows {
		r := &rows[i]
		as := r.Vantage.Origin.AS()
		if as == 0 || r.Instance == "" || r.Suspect() || len(r.ASPath) == 0 {
			continue
		}
		k := groupKey{r.Target, as}
		g := groups[k]
		if g == nil {
			g = map[string]*member{}
			groups[k] = g
			order = append(order, k)
		}
		m := g[r.Instance]
		if m == nil {
			m = &member{}
			g[r.Instance] = m
		}
		m.rows = append(m.rows, r)
	}
	var out []Parting
	for _, k := range order {
		g := groups[k]
		if len(g) < 2 {
			continue
		}
		names := make([]string, 0, len(g))
		for n := range g {
			names = append(names, n)
		}
		slices.Sort(names)
		for i := 0; i < len(names); i++ {
			for j := i + 1; j < len(names); j++ {
				a, b := side(names[i], g[names[i]].rows), side(names[j], g[names[j]].rows)
				p := Parting{Target: k.target, OriginAS: k.as}
				n := 0
				for n < len(a.path) && n < len(b.path) && a.path[n] == b.path[n] {
					n++
				}
				p.Common = append([]uint32{}, a.path[:n]...)
				a.part(n)
				b.part(n)
				p.A, p.B = a.PartSide, b.PartSide
				out = append(out, p)
			}
		}
	}
	return out
}

type partSide struct {
	PartSide
	path []uint32
	rep  *Row
}

// side picks the representative path of an instance's vantages.
func side(instance string, rows []*Row) *partSide {
	count := map[string]int{}
	for _, r := range rows {
		count[pathString(r.ASPath)]++
	}
	var rep *Row
	for _, r := range rows {
		if rep == nil {
			rep = r
			continue
		}
		c, cr := count[pathString(r.ASPath)], count[pathString(rep.ASPath)]
		if c > cr || (c == cr && pathString(r.ASPath) < pathString(rep.ASPath)) {
			rep = r
		}
	}
	s := &partSide{rep: rep, path: rep.ASPath}
	s.Instance = instance
	s.ASPath = rep.ASPath
	for _, r := range rows {
		s.Vantages = append(s.Vantages, r.Vantage.Label)
	}
	slices.Sort(s.Vantages)
	return s
}

// part fills the first AS after n common ones and the first hop in it.
func (s *partSide) part(n int) {
	if n >= len(s.path) {
		return
	}
	s.AS = s.path[n]
	if len(s.rep.Flows) == 0 {
		return
	}
	for _, h := range s.rep.Flows[0].Hops {
		for _, r := range h.Responders {
			if slices.Contains(r.ASNs, s.AS) {
				s.Hop = &Upstream{TTL: h.TTL, Responder: r}
				return
			}
		}
	}
}

func pathString(p []uint32) string {
	var b strings.Builder
	for _, as := range p {
		b.WriteString(strconv.FormatUint(uint64(as), 10))
		b.WriteByte(' ')
	}
	return b.String()
}
