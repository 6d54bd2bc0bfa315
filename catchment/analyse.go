package catchment

import (
	"cmp"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Report is the analysis of a set of observations.
type Report struct {
	Rows      []Row           // by target (IPv4 first), then vantage (probe ids and addresses numerically)
	Targets   []TargetSummary // by target
	DualStack []DualStack
	Partings  []Parting
	// Latency is the enumeration by latency of each target with located
	// vantage points (LatencyOf), in target order.
	Latency []Latency
}

// Analyse resolves every observation, judges each target's answers
// against what that target answers most vantage points (several targets
// in one input are judged apart), gives every row its catchment key and
// sums the catchment up. The rows point into obs: the caller hands them
// over and changes them no more.
func Analyse(obs []Observation, sites *Sites) Report {
	rows := make([]Row, 0, len(obs))
	for i := range obs {
		rows = append(rows, resolve(&obs[i], sites))
	}
	SortRows(rows)
	var targets []TargetSummary
	for start := 0; start < len(rows); {
		end := start
		for end < len(rows) && rows[end].Target == rows[start].Target {
			end++
		}
		group := make([]*Row, 0, end-start)
		for i := start; i < end; i++ {
			group = append(group, &rows[i])
		}
		svc := judge(group)
		placeByCodes(group, sites)
		for _, r := range group {
			r.Catchment = keyOf(r, svc)
		}
		targets = append(targets, summarise(group, svc))
		start = end
	}
	return Report{
		Rows:      rows,
		Targets:   targets,
		DualStack: DualStackDivergence(rows),
		Partings:  PathsPart(rows),
		Latency:   LatencyOf(rows),
	}
}

// keyOf is the row's catchment key: its site, else its instance, else the
// upstream hop of a traced path that reached the target (or of any trace,
// when the target does not answer traceroute). A row counted apart or
// split by flow has none.
func keyOf(r *Row, svc Service) CatchmentKey {
	switch {
	case r.Suspect() || r.Split:
		return CatchmentKey{}
	case r.Site.Site != "":
		return CatchmentKey{Kind: KeySite, Value: r.Site.Site}
	case r.Instance != "":
		return CatchmentKey{Kind: KeyInstance, Value: r.Instance}
	case r.Upstream != nil && (r.Reached || svc.PathInferred && !diedAtHome(r)):
		return CatchmentKey{Kind: KeyUpstream, Value: r.Upstream.Addr.String(), Hop: r.Upstream.Addr, AS: r.Upstream.AS}
	}
	return CatchmentKey{}
}

// diedAtHome reports whether an unreached trace ended before it left the
// vantage's own network: its last hop is a private (or otherwise not
// global) address, or in the vantage's own AS. Where such a trace ended
// says nothing about the service's catchment.
func diedAtHome(r *Row) bool {
	a := r.Upstream.Addr
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return true
	}
	as := r.Vantage.Origin.AS()
	return as != 0 && slices.Contains(r.Upstream.ASNs, as)
}

// SortRows orders rows by target (IPv4 before IPv6), then vantage: Atlas
// probes by id, others by source address, then label and key.
func SortRows(rows []Row) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := &rows[i], &rows[j]
		if c := a.Target.Compare(b.Target); c != 0 {
			return c < 0
		}
		return compareVantages(a.Vantage, b.Vantage) < 0
	})
}

// compareVantages orders vantage points as an operator reads them:
// numbers as numbers (probe 999 before probe 1001), addresses as
// addresses.
func compareVantages(a, b Vantage) int {
	switch {
	case a.ProbeID != 0 && b.ProbeID != 0:
		if c := cmp.Compare(a.ProbeID, b.ProbeID); c != 0 {
			return c
		}
	case a.ProbeID != 0:
		return -1
	case b.ProbeID != 0:
		return 1
	}
	if c := naturalCompare(a.Label, b.Label); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

var numberOrAddr = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`[0-9a-fA-F:.]*[0-9][0-9a-fA-F:.]*`)
})

// naturalCompare compares labels with their numbers and addresses by value:
// "host 198.51.100.9" before "host 198.51.100.10".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		la, lb := numberOrAddr().FindStringIndex(a), numberOrAddr().FindStringIndex(b)
		if la == nil || lb == nil || la[0] != lb[0] || a[:la[0]] != b[:lb[0]] {
			return strings.Compare(a, b)
		}
		x, y := a[la[0]:la[1]], b[lb[0]:lb[1]]
		if c := compareToken(x, y); c != 0 {
			return c
		}
		a, b = a[la[1]:], b[lb[1]:]
	}
	return strings.Compare(a, b)
}

func compareToken(x, y string) int {
	if ax, err := netip.ParseAddr(x); err == nil {
		if ay, err := netip.ParseAddr(y); err == nil {
			return ax.Compare(ay)
		}
	}
	if nx, err := strconv.ParseUint(x, 10, 64); err == nil {
		if ny, err := strconv.ParseUint(y, 10, 64); err == nil {
			return cmp.Compare(nx, ny)
		}
	}
	return strings.Compare(x, y)
}

// TargetSummary is the catchment of one target address.
type TargetSummary struct {
	Target   netip.Addr
	Names    []string // target names measured at this address
	Vantages int      // rows (vantage points) for this target
	Service  Service  // what the target answers most vantage points
	// Keys are the catchment by key (site, instance or upstream), by
	// vantage count; shares are of the vantage points with a key.
	Keys []KeyShare
	// Split are the vantage points whose flows reach several instances.
	Split []SplitGroup
	// Apart are the answers not from the service, by the vantage's AS.
	Apart []ApartGroup
	// Unknown counts rows that name nothing (no identity, no path to
	// infer from), by why.
	Unknown []Count
	// Errors are the rows' errors and timeouts, by reason.
	Errors     []Count
	ErrorLines int // rows with an error or a timeout
}

// Count is how many rows share one reason.
type Count struct {
	What string
	N    int
}

// KeyShare is one catchment key's part of a target's catchment.
type KeyShare struct {
	Key       CatchmentKey
	Site      SiteHint        // KeySite: the hint that placed it
	Instances []InstanceCount // the instances counted under the key, by vantage count
	Vantages  int
	Share     float64  // of the vantage points with a key
	ASNs      []uint32 // the vantages' origin ASes, most frequent first
	Countries []string // the vantages' countries, most frequent first
	MedianRTT time.Duration
}

// SplitGroup is the vantage points of one AS whose flows reach several
// instances.
type SplitGroup struct {
	AS        uint32 // 0 when unknown
	Vantages  []string
	Instances []InstanceCount // over their flows
}

// ApartGroup is the answers counted apart from the service's, from the
// vantage points of one AS.
type ApartGroup struct {
	AS         uint32 // the vantages' origin AS; 0 when unknown
	Vantages   []string
	Identities []InstanceCount // what the answers named, by vantage count
	Reasons    []Count         // how they differ from the service
}

// summarise sums one target's judged rows up.
func summarise(rows []*Row, svc Service) TargetSummary {
	t := TargetSummary{Target: svc.Target, Vantages: len(rows), Service: svc}
	if len(rows) > 0 {
		t.Target = rows[0].Target
	}
	type acc struct {
		share     KeyShare
		instances map[string]int
		asns      map[uint32]int
		countries map[string]int
		rtts      []time.Duration
	}
	keys := map[CatchmentKey]*acc{}
	splits := map[uint32]*SplitGroup{}
	splitInst := map[uint32]map[string]int{}
	apart := map[uint32]*ApartGroup{}
	apartIDs := map[uint32]map[string]int{}
	apartWhy := map[uint32]map[string]int{}
	unknown := map[string]int{}
	errs := map[string]int{}
	named := 0
	for _, r := range rows {
		if r.TargetName != "" && !slices.Contains(t.Names, r.TargetName) {
			t.Names = append(t.Names, r.TargetName)
		}
		if len(r.Errors) > 0 || r.Timeouts > 0 {
			t.ErrorLines++
			seen := map[string]bool{}
			if r.Timeouts > 0 {
				seen["identity query timed out"] = true
			}
			for _, e := range r.Errors {
				why := errorReason(e)
				if r.Timeouts > 0 && strings.HasPrefix(why, "timeout") {
					continue // the timed-out query, said by the result too
				}
				seen[why] = true
			}
			for why := range seen {
				errs[why]++
			}
		}
		as := r.Vantage.Origin.AS()
		switch {
		case r.Suspect():
			g := apart[as]
			if g == nil {
				g = &ApartGroup{AS: as}
				apart[as] = g
				apartIDs[as] = map[string]int{}
				apartWhy[as] = map[string]int{}
			}
			g.Vantages = append(g.Vantages, r.Vantage.Label)
			id := r.Instance
			if id == "" {
				id = "(no name)"
			}
			apartIDs[as][id]++
			for _, x := range r.Apart {
				apartWhy[as][x.GroupText()]++
			}
			continue
		case r.Split:
			g := splits[as]
			if g == nil {
				g = &SplitGroup{AS: as}
				splits[as] = g
				splitInst[as] = map[string]int{}
			}
			g.Vantages = append(g.Vantages, r.Vantage.Label)
			for _, f := range r.FlowInstances {
				splitInst[as][f.Instance] += f.Count
			}
			continue
		case !r.Catchment.Valid():
			unknown[unknownReason(r, svc)]++
			continue
		}
		named++
		a := keys[r.Catchment]
		if a == nil {
			a = &acc{share: KeyShare{Key: r.Catchment, Site: r.Site}, instances: map[string]int{}, asns: map[uint32]int{}, countries: map[string]int{}}
			keys[r.Catchment] = a
		}
		a.share.Vantages++
		if r.Instance != "" {
			a.instances[r.Instance]++
		}
		if as != 0 {
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
	for _, a := range keys {
		s := a.share
		s.Share = float64(s.Vantages) / float64(named)
		s.Instances = sortCounts(a.instances)
		s.ASNs = byFrequency(a.asns, func(x, y uint32) bool { return x < y })
		s.Countries = byFrequency(a.countries, func(x, y string) bool { return x < y })
		s.MedianRTT = median(a.rtts)
		t.Keys = append(t.Keys, s)
	}
	slices.SortFunc(t.Keys, func(a, b KeyShare) int {
		if a.Vantages != b.Vantages {
			return b.Vantages - a.Vantages
		}
		if a.Key.Kind != b.Key.Kind {
			return keyRank(a.Key.Kind) - keyRank(b.Key.Kind)
		}
		return naturalCompare(a.Key.Value, b.Key.Value)
	})
	for as, g := range splits {
		g.Instances = sortCounts(splitInst[as])
		slices.SortFunc(g.Vantages, naturalCompare)
		t.Split = append(t.Split, *g)
	}
	slices.SortFunc(t.Split, func(a, b SplitGroup) int {
		if len(a.Vantages) != len(b.Vantages) {
			return len(b.Vantages) - len(a.Vantages)
		}
		return cmp.Compare(a.AS, b.AS)
	})
	for as, g := range apart {
		g.Identities = sortCounts(apartIDs[as])
		g.Reasons = sortedCounts(apartWhy[as])
		slices.SortFunc(g.Vantages, naturalCompare)
		t.Apart = append(t.Apart, *g)
	}
	slices.SortFunc(t.Apart, func(a, b ApartGroup) int {
		if len(a.Vantages) != len(b.Vantages) {
			return len(b.Vantages) - len(a.Vantages)
		}
		return cmp.Compare(a.AS, b.AS)
	})
	t.Unknown = sortedCounts(unknown)
	t.Errors = sortedCounts(errs)
	return t
}

func keyRank(k KeyKind) int {
	switch k {
	case KeySite:
		return 0
	case KeyInstance:
		return 1
	}
	return 2
}

// unknownReason says why a row names nothing.
func unknownReason(r *Row, svc Service) string {
	replied := false
	for _, a := range r.Answers {
		if a.Replied() {
			replied = true
			break
		}
	}
	switch {
	case r.Traced && !r.Reached && svc.PathInferred && r.Upstream != nil && diedAtHome(r):
		return "the trace ended in the vantage's own network"
	case replied && r.Traced && !r.Reached && !svc.PathInferred:
		return "no identity; the trace did not reach the target"
	case replied:
		return "no identity in the answers"
	case len(r.Answers) > 0 && !r.Traced:
		return "no DNS reply"
	case r.Traced && r.Upstream == nil:
		return "no hop answered the trace"
	case r.Traced && !r.Reached:
		return "the trace did not reach the target"
	}
	return "nothing measured"
}

var hopPrefix = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:hop \d+|flow \d+): `)
})

// errorReason groups error texts: the hop or flow they name is dropped.
func errorReason(e string) string {
	for {
		s := hopPrefix().ReplaceAllString(e, "")
		if s == e {
			return e
		}
		e = s
	}
}

func sortedCounts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if a.N != b.N {
			return b.N - a.N
		}
		return strings.Compare(a.What, b.What)
	})
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
// and rows counted apart are left out.
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
	sort.SliceStable(out, func(i, j int) bool { return compareVantages(out[i].Vantage, out[j].Vantage) < 0 })
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
	Instance string   // the key's label: site code, instance name, or "via" the upstream hop
	Vantages []string // labels of the vantages in the origin AS that reach it (a split vantage point on both sides)
	ASPath   []uint32 // the most common AS path among them
	AS       uint32   // the first AS after the common part; 0 when the path ends there
	Hop      *Upstream
}

// partMember is one path of a vantage point towards one instance: a row's
// first traced flow, or one flow of a split vantage point.
type partMember struct {
	label string
	path  []uint32
	flow  *Flow
}

// PathsPart finds, for each target and origin AS, the vantages that reach
// different instances and the first AS (and the first hop in it) where
// their paths differ. Each instance is represented by the most common AS
// path among its vantages in that AS (ties: the smallest path). A vantage
// point split by flow stands on every side its flows reach, so its AS is
// listed with where its own flows part.
func PathsPart(rows []Row) []Parting {
	type groupKey struct {
		target netip.Addr
		as     uint32
	}
	groups := map[groupKey]map[string][]partMember{}
	var order []groupKey
	add := func(k groupKey, name string, m partMember) {
		g := groups[k]
		if g == nil {
			g = map[string][]partMember{}
			groups[k] = g
			order = append(order, k)
		}
		g[name] = append(g[name], m)
	}
	for i := range rows {
		r := &rows[i]
		as := r.Vantage.Origin.AS()
		if as == 0 || r.Suspect() {
			continue
		}
		k := groupKey{r.Target, as}
		if r.Split {
			origin := r.TargetOrigin.ASNs
			seen := map[string]bool{}
			for fi := range r.Flows {
				f := &r.Flows[fi]
				if f.Identity.Instance == "" || len(f.Hops) == 0 || seen[f.Identity.Instance] {
					continue
				}
				seen[f.Identity.Instance] = true
				if len(origin) == 0 {
					origin = targetASNs(*f, r.Target)
				}
				path := ASPathOf(*f, r.Target, origin)
				if len(path) > 0 {
					add(k, f.Identity.Instance, partMember{r.Vantage.Label, path, f})
				}
			}
			continue
		}
		if !r.Catchment.Valid() || len(r.ASPath) == 0 {
			continue
		}
		m := partMember{label: r.Vantage.Label, path: r.ASPath}
		if fi := slices.IndexFunc(r.Flows, func(f Flow) bool { return len(f.Hops) > 0 }); fi >= 0 {
			m.flow = &r.Flows[fi]
		}
		add(k, keyLabel(r.Catchment), m)
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
				a, b := side(names[i], g[names[i]]), side(names[j], g[names[j]])
				p := Parting{Target: k.target, OriginAS: k.as}
				n := 0
				for n < len(a.path) && n < len(b.path) && a.path[n] == b.path[n] {
					n++
				}
				p.Common = append([]uint32{}, a.path[:n]...)
				a.part(n, k.target)
				b.part(n, k.target)
				p.A, p.B = a.PartSide, b.PartSide
				out = append(out, p)
			}
		}
	}
	return out
}

// keyLabel names a key on a side of a parting.
func keyLabel(k CatchmentKey) string {
	if k.Kind == KeyUpstream {
		return "via " + k.Value
	}
	return k.Value
}

type partSide struct {
	PartSide
	path []uint32
	rep  partMember
}

// side picks the representative path of an instance's members.
func side(instance string, members []partMember) *partSide {
	count := map[string]int{}
	for _, m := range members {
		count[pathString(m.path)]++
	}
	rep := members[0]
	for _, m := range members[1:] {
		c, cr := count[pathString(m.path)], count[pathString(rep.path)]
		if c > cr || (c == cr && pathString(m.path) < pathString(rep.path)) {
			rep = m
		}
	}
	s := &partSide{rep: rep, path: rep.path}
	s.Instance = instance
	s.ASPath = rep.path
	for _, m := range members {
		if !slices.Contains(s.Vantages, m.label) {
			s.Vantages = append(s.Vantages, m.label)
		}
	}
	slices.SortFunc(s.Vantages, naturalCompare)
	return s
}

// part fills the first AS after n common ones and the first hop in it.
func (s *partSide) part(n int, target netip.Addr) {
	if n >= len(s.path) {
		return
	}
	s.AS = s.path[n]
	if s.rep.flow == nil {
		return
	}
	for _, h := range s.rep.flow.Hops {
		for _, r := range h.Responders {
			if onPath(r.Addr, target) && slices.Contains(r.ASNs, s.AS) {
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
