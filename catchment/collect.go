package catchment

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// Collector gathers observations one at a time — a stream of thousands of
// Atlas results, or the results of a periodic measurement, where each
// vantage appears many times — and keeps, per catchment-table line, the
// latest identity part and the latest trace part, and the history of
// instances and upstreams so changes can be counted. Memory grows with the
// number of lines, not with the input: a history keeps the runs of one
// value, at most MaxChanges changes of them (the latest), and counts the
// changes before.
type Collector struct {
	entries map[Key]*entry
	order   []Key
	strs    map[string]string // interned instance and upstream names (a bounded number)
}

type entry struct {
	dns, trace *Observation
	instances  history
	upstreams  history
	seq        int
}

type stamp struct {
	at  time.Time
	seq int // arrival order breaks ties (and orders undated results)
}

func (s stamp) before(t stamp) bool {
	if !s.at.Equal(t.at) {
		return s.at.Before(t.at)
	}
	return s.seq < t.seq
}

// MaxChanges is the most changes of one line's instance (or upstream) a
// Collector keeps: the latest ones; earlier ones are counted.
const MaxChanges = 64

// maxInterned bounds the names a Collector shares between its lines: a
// stream of ever new names is not kept whole.
const maxInterned = 4096

// run is a stretch of results with one value, from its first result to
// its last (the results between are not kept).
type run struct {
	first, last stamp
	v           string
}

// history is a line's runs in time order; adjacent runs differ in value.
// A result out of time order lands in its place: inside a run of another
// value it splits that run (whose value is then known at its first and
// last result only).
type history struct {
	runs    []run
	omitted int // changes before the first run kept
}

func (h *history) add(s stamp, v string) {
	i := sort.Search(len(h.runs), func(i int) bool { return s.before(h.runs[i].first) })
	// runs[i-1] starts at or before s; runs[i] after it.
	switch {
	case i > 0 && !h.runs[i-1].last.before(s):
		// Inside runs[i-1].
		r := &h.runs[i-1]
		if r.v == v {
			return
		}
		right := run{first: r.last, last: r.last, v: r.v}
		r.last = r.first
		h.runs = slices.Insert(h.runs, i, run{first: s, last: s, v: v}, right)
	case i > 0 && h.runs[i-1].v == v:
		h.runs[i-1].last = s
	case i < len(h.runs) && h.runs[i].v == v:
		h.runs[i].first = s
	default:
		h.runs = slices.Insert(h.runs, i, run{first: s, last: s, v: v})
	}
	// Let the oldest go in batches: an add costs O(1) amortised.
	if len(h.runs) > 2*(MaxChanges+1) {
		h.trim()
	}
}

// trim keeps the runs of the latest MaxChanges changes.
func (h *history) trim() {
	if n := len(h.runs) - (MaxChanges + 1); n > 0 {
		h.omitted += n
		h.runs = slices.Delete(h.runs, 0, n)
	}
}

// events are the changes kept, in time order.
func (h *history) events() []Event {
	var out []Event
	for i := 1; i < len(h.runs); i++ {
		out = append(out, Event{Time: h.runs[i].first.at, From: h.runs[i-1].v, To: h.runs[i].v})
	}
	return out
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	return &Collector{entries: map[Key]*entry{}, strs: map[string]string{}}
}

func (c *Collector) intern(s string) string {
	if v, ok := c.strs[s]; ok {
		return v
	}
	if len(c.strs) < maxInterned {
		c.strs[s] = s
	}
	return s
}

// Add takes one observation. An observation with answers (or only errors)
// is an identity part, one with flows a trace part; one with both is both.
// Of each part the latest (by Time, then arrival) is kept.
func (c *Collector) Add(o Observation) {
	k := o.Key()
	e := c.entries[k]
	if e == nil {
		e = &entry{}
		c.entries[k] = e
		c.order = append(c.order, k)
	}
	e.seq++
	hasTrace := len(o.Flows) > 0
	hasDNS := len(o.Answers) > 0 || o.Identity.Instance != "" || !hasTrace
	later := func(cur *Observation) bool {
		return cur == nil || !o.Time.Before(cur.Time)
	}
	// A flow sweep names its instance by its flows (the one most of them
	// reached); its flows' upstreams differ by design (other ports, other
	// ECMP branches), so only a single flow's upstream is a value to
	// follow over time.
	instance := o.Identity.Instance
	if instance == "" && len(o.Flows) > 1 {
		if s := SplitOf(o.Flows); len(s.Instances) > 0 {
			instance = s.Instances[0].Instance
		}
	}
	if instance != "" {
		e.instances.add(stamp{o.Time, e.seq}, c.intern(instance))
	}
	if hasDNS && later(e.dns) {
		dup := o
		e.dns = &dup
	}
	if hasTrace {
		if up, ok := UpstreamOf(o.Flows[0], o.Target, o.TargetOrigin.ASNs); ok && len(o.Flows) == 1 {
			e.upstreams.add(stamp{o.Time, e.seq}, c.intern(up.Addr.String()))
		}
		if later(e.trace) {
			dup := o
			e.trace = &dup
		}
	}
}

// Len is the number of catchment-table lines collected.
func (c *Collector) Len() int { return len(c.order) }

// Observations returns one observation per line, the latest identity part
// merged with the latest trace part, in the order lines were first seen.
func (c *Collector) Observations() []Observation {
	out := make([]Observation, 0, len(c.order))
	for _, k := range c.order {
		e := c.entries[k]
		out = append(out, merge(e.dns, e.trace))
	}
	return out
}

func merge(dns, tr *Observation) Observation {
	switch {
	case dns == nil:
		return *tr
	case tr == nil:
		return *dns
	}
	o := *dns
	o.Flows = tr.Flows
	if tr.Time.After(o.Time) {
		o.Time = tr.Time
	}
	if o.Identity.Instance == "" {
		o.Identity = tr.Identity
		if len(o.Answers) == 0 {
			o.Answers = tr.Answers
		}
	}
	// One observation can be both parts (a trace whose probes were
	// identity queries): its errors are said once.
	o.Errors = slices.Clip(o.Errors)
	for _, e := range tr.Errors {
		if !slices.Contains(o.Errors, e) {
			o.Errors = append(o.Errors, e)
		}
	}
	if tr.Input != "" && tr.Input != o.Input {
		o.Input = strings.TrimPrefix(o.Input+", "+tr.Input, ", ")
	}
	if o.TargetName == "" {
		o.TargetName = tr.TargetName
	}
	v := &o.Vantage
	if !v.Source.IsValid() {
		v.Source = tr.Vantage.Source
	}
	if !v.Public.IsValid() {
		v.Public = tr.Vantage.Public
	}
	return o
}

// Change is a catchment-table line whose instance (or upstream) changed
// over the collected results.
type Change struct {
	Key
	Vantage string // label
	Kind    string // "instance" or "upstream"
	Events  []Event
	// EventsOmitted counts earlier changes not kept (beyond MaxChanges).
	EventsOmitted int
}

// Event is one switch: at Time the value went From → To.
type Event struct {
	Time     time.Time
	From, To string
}

// Changes lists every line whose instance or upstream changed, with when.
// Results without an instance (a timeout) or upstream are no change: a
// lost answer is not a switch. Labels come from the latest parts.
func (c *Collector) Changes() []Change {
	var out []Change
	for _, k := range c.order {
		e := c.entries[k]
		label := ""
		if e.dns != nil {
			label = e.dns.Vantage.Label
		} else if e.trace != nil {
			label = e.trace.Vantage.Label
		}
		for _, s := range []struct {
			kind string
			h    *history
		}{{"instance", &e.instances}, {"upstream", &e.upstreams}} {
			s.h.trim()
			if ev := s.h.events(); len(ev) > 0 {
				out = append(out, Change{Key: k, Vantage: label, Kind: s.kind, Events: ev, EventsOmitted: s.h.omitted})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if c := out[i].Target.Compare(out[j].Target); c != 0 {
			return c < 0
		}
		return out[i].Vantage < out[j].Vantage
	})
	return out
}

// Move is a catchment-table line that differs between two runs.
type Move struct {
	Key
	Vantage Vantage
	Kind    string // MoveInstance, MoveFlows, MoveUpstream, MoveLost, MoveFound, MoveGone or MoveNew
	// Before and After are the rows of each run (nil where the line is
	// absent from that run).
	Before, After *Row
	// InstanceChanged: both runs name an instance (by site, else by
	// instance), and they differ on every flow. UpstreamChanged: both
	// runs traced an upstream, and they differ.
	InstanceChanged, UpstreamChanged bool
	// SameSite is set for a move between two instances of one site.
	SameSite bool
}

// Move kinds, in the order Diff lists them.
const (
	// MoveInstance: another instance on every flow, or another site. A
	// move is what exit status 3 reports.
	MoveInstance = "moved"
	// MoveFlows: the instances differ on some flows only, and either run
	// is split by flow: the catchment depends on the flow (an ECMP hash
	// of another source port), which is no move.
	MoveFlows    = "flows"
	MoveUpstream = "upstream" // same instance (or none known), another upstream
	MoveLost     = "lost"     // an instance before, none after
	MoveFound    = "found"    // none before, an instance after
	MoveGone     = "gone"     // the line is only in the before run
	MoveNew      = "new"      // the line is only in the after run
)

// Diff compares two runs line by line (vantage × target) and lists the
// lines that changed: a BGP change (prepend, new site, withdrawal) shows as
// vantages that moved, or whose upstream changed. Instances compare by
// site when both runs place them, else by name; a vantage point split by
// flow in either run moved only when no instance is common to both runs.
func Diff(before, after []Row) []Move {
	idx := func(rows []Row) map[Key]*Row {
		m := make(map[Key]*Row, len(rows))
		for i := range rows {
			k := rows[i].Key()
			if _, ok := m[k]; !ok {
				m[k] = &rows[i]
			}
		}
		return m
	}
	b, a := idx(before), idx(after)
	var out []Move
	for k, rb := range b {
		ra := a[k]
		if ra == nil {
			out = append(out, Move{Key: k, Vantage: rb.Vantage, Kind: MoveGone, Before: rb})
			continue
		}
		m := Move{Key: k, Vantage: ra.Vantage, Before: rb, After: ra}
		ib, ia := instancesOf(rb), instancesOf(ra)
		if rb.Upstream != nil && ra.Upstream != nil && rb.Upstream.Addr != ra.Upstream.Addr {
			m.UpstreamChanged = true
		}
		switch {
		case len(ib) > 0 && len(ia) > 0:
			bySite := rb.Site.Site != "" && ra.Site.Site != "" && !rb.Split && !ra.Split
			switch {
			case slices.Equal(ib, ia):
			case disjoint(ib, ia):
				m.Kind, m.InstanceChanged = MoveInstance, true
				m.SameSite = bySite && rb.Site == ra.Site
			default:
				m.Kind = MoveFlows
			}
		case len(ib) > 0:
			m.Kind = MoveLost
		case len(ia) > 0:
			m.Kind = MoveFound
		}
		if m.Kind == "" && m.UpstreamChanged {
			m.Kind = MoveUpstream
		}
		if m.Kind != "" {
			out = append(out, m)
		}
	}
	for k, ra := range a {
		if b[k] == nil {
			out = append(out, Move{Key: k, Vantage: ra.Vantage, Kind: MoveNew, After: ra})
		}
	}
	rank := map[string]int{MoveInstance: 0, MoveFlows: 1, MoveUpstream: 2, MoveLost: 3, MoveFound: 4, MoveGone: 5, MoveNew: 6}
	sort.Slice(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if rank[x.Kind] != rank[y.Kind] {
			return rank[x.Kind] < rank[y.Kind]
		}
		if c := x.Target.Compare(y.Target); c != 0 {
			return c < 0
		}
		return compareVantages(x.Vantage, y.Vantage) < 0
	})
	return out
}

// instancesOf is the set of instances a row's flows reached, sorted: its
// identity, or every instance of a sweep's flows. A row counted apart
// names none.
func instancesOf(r *Row) []string {
	if r.Suspect() {
		return nil
	}
	var out []string
	for _, f := range r.FlowInstances {
		out = append(out, f.Instance)
	}
	if len(out) == 0 && r.Instance != "" {
		out = append(out, r.Instance)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func disjoint(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// Moved reports whether any line moved to another instance or site.
func Moved(moves []Move) bool {
	return slices.ContainsFunc(moves, func(m Move) bool { return m.Kind == MoveInstance })
}
