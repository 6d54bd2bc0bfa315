package census

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"time"
)

// Defaults of the passive census.
const (
	DefaultPrefixLen4 = 24
	DefaultPrefixLen6 = 48
	// DefaultSplitWindow is how long a client must keep to one instance
	// for a change to count as a move: queries that reach another
	// instance and come back within it are one client split across
	// instances (per-flow load balancing), not two moves.
	DefaultSplitWindow = 10 * time.Second
	// maxRuns bounds the runs kept per client (the latest; the count of
	// older ones is kept), so a client flapping for days holds little.
	maxRuns = 64
)

// TallyOptions configure a Tally; zero values take the defaults.
type TallyOptions struct {
	// PrefixLen4 and PrefixLen6 group client addresses (24 and 48; 32 and
	// 128 keep single addresses).
	PrefixLen4, PrefixLen6 int
	// SplitWindow: see DefaultSplitWindow.
	SplitWindow time.Duration
}

func (o TallyOptions) withDefaults() TallyOptions {
	o.PrefixLen4 = cmp.Or(o.PrefixLen4, DefaultPrefixLen4)
	o.PrefixLen6 = cmp.Or(o.PrefixLen6, DefaultPrefixLen6)
	o.SplitWindow = cmp.Or(o.SplitWindow, DefaultSplitWindow)
	return o
}

// Tally counts, per client prefix and instance, the queries of a passive
// census as they stream by, and follows each client's instance over time
// (affinity). Queries must come in time order across all instances (a
// Merge of the instances' logs); memory grows with the clients, not the
// queries. A Tally is not safe for concurrent use.
type Tally struct {
	o         TallyOptions
	window    int64
	instances []string
	byName    map[string]int
	index     map[clientKey]int32
	clients   []clientState
	first     int64
	last      int64
	queries   uint64
	perInst   []uint64
	// late counts queries older than the latest one by more than the
	// split window: out of order beyond what affinity can follow.
	late uint64
}

type clientKey struct{ hi, lo uint64 }

// NewTally starts an empty tally.
func NewTally(o TallyOptions) *Tally {
	o = o.withDefaults()
	return &Tally{o: o, window: int64(o.SplitWindow), byName: map[string]int{}, index: map[clientKey]int32{}}
}

// Instance returns the index of the named instance, adding it on first use.
func (t *Tally) Instance(name string) int {
	if i, ok := t.byName[name]; ok {
		return i
	}
	t.instances = append(t.instances, name)
	t.perInst = append(t.perInst, 0)
	t.byName[name] = len(t.instances) - 1
	return len(t.instances) - 1
}

// instCount is one client's queries at one instance.
type instCount struct {
	inst        int32
	queries     uint64
	first, last int64
}

// run is a stretch of a client's queries: at one instance (inst ≥ 0), or
// at several at the same time (inst < 0, the instances in mixed).
type run struct {
	inst        int32
	mixed       []int32
	first, last int64
	queries     uint64
}

func (r *run) has(i int32) bool {
	if r.inst >= 0 {
		return r.inst == i
	}
	return slices.Contains(r.mixed, i)
}

// clientState follows one client prefix. The open run takes each query
// unless the open run is at one instance and the query is at another:
// such queries form a pending streak, which becomes a run of its own (a
// move) once it has gone unchallenged for the split window, or joins the
// queries around it into a mixed run when the client goes back to an
// instance it had within the window.
type clientState struct {
	sample  netip.Addr
	insts   []instCount
	runs    []run // closed runs, oldest first (at most maxRuns)
	dropped int   // older runs no longer kept
	open    run
	// the latest streak of consecutive queries at one instance
	streakInst   int32
	streakFirst  int64
	streakN      uint64
	streakBefore int64 // the query before the streak
	last         int64
	queries      uint64
}

// Add counts one query from client at instance inst (an index from
// Instance) at time at.
func (t *Tally) Add(inst int, at time.Time, client netip.Addr) {
	t.AddNanos(inst, at.UnixNano(), client)
}

// AddNanos is Add with the time in Unix nanoseconds.
func (t *Tally) AddNanos(inst int, at int64, client netip.Addr) {
	client = client.Unmap()
	key := t.key(client)
	idx, ok := t.index[key]
	if !ok {
		idx = int32(len(t.clients))
		t.index[key] = idx
		t.clients = append(t.clients, clientState{sample: client})
	}
	if t.queries == 0 || at < t.first {
		t.first = at
	}
	if at > t.last {
		t.last = at
	} else if t.last-at > t.window {
		t.late++
	}
	t.queries++
	t.perInst[inst]++
	t.clients[idx].add(int32(inst), at, t.window)
}

func (t *Tally) key(a netip.Addr) clientKey {
	bits := t.o.PrefixLen6
	if a.Is4() {
		bits = t.o.PrefixLen4
	}
	p, _ := a.Prefix(bits)
	b := p.Addr().As16()
	k := clientKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	if a.Is4() {
		k.hi |= 1 << 63 // IPv4 and IPv6 keys never meet (no client is ::ffff:0:0/96 after Unmap)
	}
	return k
}

func (c *clientState) add(inst int32, at int64, window int64) {
	i := slices.IndexFunc(c.insts, func(x instCount) bool { return x.inst == inst })
	if i < 0 {
		c.insts = append(c.insts, instCount{inst: inst, first: at, last: at})
		i = len(c.insts) - 1
	}
	ic := &c.insts[i]
	ic.queries++
	ic.first, ic.last = min(ic.first, at), max(ic.last, at)
	c.queries++
	if c.queries == 1 {
		c.open = run{inst: inst, first: at, last: at, queries: 1}
		c.streakInst, c.streakFirst, c.streakN, c.last = inst, at, 1, at
		return
	}
	c.confirm(at, window)
	if inst == c.streakInst {
		c.streakN++
		if c.open.has(inst) {
			c.open.last, c.open.queries = max(c.open.last, at), c.open.queries+1
		}
	} else {
		if c.open.inst >= 0 && c.open.inst != c.streakInst {
			// Back (or on) to another instance within the window of a
			// pending streak: the client is split. The stretch from the
			// streak's start is one mixed run; a run at one instance that
			// lasted less than the window before it is part of it too
			// (nothing showed the client kept to that instance).
			mixed := []int32{c.streakInst, inst}
			if c.streakInst > inst {
				mixed[0], mixed[1] = inst, c.streakInst
			}
			next := run{inst: -1, mixed: mixed, first: c.streakFirst, last: at, queries: c.streakN + 1}
			if c.open.last-c.open.first < window {
				next.first, next.queries = c.open.first, next.queries+c.open.queries
				next.mixed = union(next.mixed, []int32{c.open.inst})
				// A split run just before the short one: all one split
				// stretch (the short run showed no client keeping to an
				// instance).
				if n := len(c.runs); n > 0 && c.runs[n-1].inst < 0 {
					prev := c.runs[n-1]
					c.runs = c.runs[:n-1]
					next.first, next.queries = prev.first, next.queries+prev.queries
					next.mixed = union(next.mixed, prev.mixed)
				}
				c.open = next
			} else {
				c.close()
				c.open = next
			}
		} else if c.open.inst < 0 {
			if !c.open.has(inst) {
				c.open.mixed = append(c.open.mixed, inst)
				slices.Sort(c.open.mixed)
			}
			c.open.last, c.open.queries = max(c.open.last, at), c.open.queries+1
		}
		// else: the open run's instance was left: a new pending streak
		c.streakInst, c.streakFirst, c.streakN, c.streakBefore = inst, at, 1, c.last
	}
	c.last = max(c.last, at)
}

// confirm turns a streak that has gone unchallenged for the window (by
// time at, with no other instance in between) into the open run: a move
// from a run at another instance, or the end of a mixed run.
func (c *clientState) confirm(at int64, window int64) {
	switch {
	case c.open.inst >= 0 && c.open.inst != c.streakInst:
		if at-c.streakFirst < window {
			return
		}
		c.close()
		c.open = run{inst: c.streakInst, first: c.streakFirst, last: c.last, queries: c.streakN}
	case c.open.inst < 0 && c.streakFirst > c.open.first:
		if at-c.streakFirst < window {
			return
		}
		c.open.last = c.streakBefore
		c.open.queries -= c.streakN
		c.close()
		c.open = run{inst: c.streakInst, first: c.streakFirst, last: c.last, queries: c.streakN}
	}
}

// close moves the open run into the closed runs.
func (c *clientState) close() {
	if len(c.runs) == maxRuns {
		copy(c.runs, c.runs[1:])
		c.runs = c.runs[:maxRuns-1]
		c.dropped++
	}
	c.runs = append(c.runs, c.open)
	c.open = run{}
}

// finish ends the client's timeline: a pending streak is a move (nothing
// after it said otherwise); a streak that ends a mixed run ends it if it
// lasted the window.
func (c *clientState) finish(window int64) []run {
	if c.queries == 0 {
		return nil
	}
	if c.open.inst >= 0 && c.open.inst != c.streakInst {
		c.confirm(c.streakFirst+window, window)
	} else {
		c.confirm(c.last, window)
	}
	return append(slices.Clip(c.runs), c.open)
}

// union is the sorted set union of two instance lists.
func union(a, b []int32) []int32 {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
