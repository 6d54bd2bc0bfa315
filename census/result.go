package census

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/anycheck/anycheck/geo"
)

// Method says how a census was taken.
type Method string

const (
	// Passive: the instances' own logs of their clients' queries.
	Passive Method = "passive"
	// Active: echo requests from the anycast address, replies captured at
	// every site (Verfploeter).
	Active Method = "active"
)

// Census is the catchment seen from the instances: which clients (by
// prefix) each instance served, and how that changed over the window.
type Census struct {
	Method     Method
	Start, End time.Time // first and last query (reply)
	PrefixLen4 int
	PrefixLen6 int
	// SplitWindow is the affinity window of a passive census.
	SplitWindow time.Duration
	Instances   []Instance
	// Clients are sorted by prefix (IPv4 first).
	Clients []Client
	// Queries counts the queries (passive) or replies (active) tallied.
	Queries uint64
	// Late counts queries that came out of time order by more than the
	// split window (the logs' clocks or order disagree): they are counted
	// in the tables; affinity around them may be off.
	Late uint64
	// Elsewhere counts the replies of an active census that came from
	// another address than the target (a router or NAT answering for it).
	Elsewhere uint64
}

// Instance is one instance (site) of the service and what it served.
type Instance struct {
	Name    string
	Queries uint64 // queries (passive) or replies (active) it received
	// Clients counts the client prefixes seen there at all; Main those
	// whose queries went there most (each client has one main instance,
	// so Main adds up to the clients with any query).
	Clients int
	Main    int
}

// Client is one client prefix and the instances its queries reached.
type Client struct {
	Prefix netip.Prefix
	// Sample is one address seen in the prefix (for origin lookups).
	Sample  netip.Addr
	Queries uint64
	// Instances are the instances it reached, most queries first.
	Instances []ClientInstance
	// Runs is its timeline when it reached more than one instance: runs at
	// one instance, or at several at the same time (split), oldest first.
	// Nil when the client stayed at one instance.
	Runs []Run
	// DroppedRuns counts older runs not kept (a client flapping for long).
	DroppedRuns int
}

// ClientInstance is one client's queries at one instance.
type ClientInstance struct {
	Instance    int // index into Census.Instances
	Queries     uint64
	First, Last time.Time
}

// Run is a stretch of a client's queries at one instance, or at several
// at the same time when len(Instances) > 1.
type Run struct {
	Instances   []int
	First, Last time.Time
	Queries     uint64
}

// Split reports whether the run is at several instances at the same time.
func (r Run) Split() bool { return len(r.Instances) > 1 }

// Main is the instance with the client's most queries (-1 for a client
// with none: an unresponsive target of an active census).
func (c Client) Main() int {
	if len(c.Instances) == 0 {
		return -1
	}
	return c.Instances[0].Instance
}

// Split reports whether the client's queries reached several instances at
// the same time (within the split window) in some run.
func (c Client) Split() bool {
	return slices.ContainsFunc(c.Runs, Run.Split)
}

// SplitTime is how long the client was split (the runs at several
// instances, first to last query).
func (c Client) SplitTime() time.Duration {
	var d time.Duration
	for _, r := range c.Runs {
		if r.Split() {
			d += r.Last.Sub(r.First)
		}
	}
	return d
}

// Move is a client's change of instance: it left From (its last query
// there at Left) and arrived at To (first query at Arrived), having stayed
// at From for Stayed (first to last query of that run; the first run
// starts with the window, so its stay is a lower bound).
type Move struct {
	From, To      []int
	Left, Arrived time.Time
	Stayed        time.Duration
}

// Moves lists the client's changes of instance, oldest first.
func (c Client) Moves() []Move {
	var out []Move
	for i := 1; i < len(c.Runs); i++ {
		a, b := c.Runs[i-1], c.Runs[i]
		out = append(out, Move{From: a.Instances, To: b.Instances, Left: a.Last, Arrived: b.First, Stayed: a.Last.Sub(a.First)})
	}
	return out
}

// Affinity sums up how clients kept to their instances over the window.
type Affinity struct {
	Clients int // clients with queries
	// Stable stayed at one instance; Moved changed instance (never split);
	// Split reached several at the same time in some run.
	Stable, Moved, Split int
	Moves                int // moves of all clients (changes between runs)
	// MovesPerClient[n] counts the clients with n moves (n ≥ 1).
	MovesPerClient map[int]int
}

// Affinity computes the affinity summary.
func (c *Census) Affinity() Affinity {
	a := Affinity{MovesPerClient: map[int]int{}}
	for _, cl := range c.Clients {
		if cl.Queries == 0 {
			continue
		}
		a.Clients++
		n := max(len(cl.Runs)-1, 0)
		switch {
		case cl.Split():
			a.Split++
		case n > 0:
			a.Moved++
		default:
			a.Stable++
		}
		if n > 0 {
			a.Moves += n
			a.MovesPerClient[n]++
		}
	}
	return a
}

// Result is the census so far: the client table, each client's runs, the
// instances' counts. It can be called again after more queries.
func (t *Tally) Result() *Census {
	c := &Census{
		Method:      Passive,
		PrefixLen4:  t.o.PrefixLen4,
		PrefixLen6:  t.o.PrefixLen6,
		SplitWindow: t.o.SplitWindow,
		Queries:     t.queries,
		Late:        t.late,
	}
	if t.queries > 0 {
		c.Start, c.End = time.Unix(0, t.first).UTC(), time.Unix(0, t.last).UTC()
	}
	for i, name := range t.instances {
		c.Instances = append(c.Instances, Instance{Name: name, Queries: t.perInst[i]})
	}
	c.Clients = make([]Client, 0, len(t.clients))
	for i := range t.clients {
		cs := t.clients[i] // a copy: finishing must not change the live state
		cs.runs = slices.Clone(cs.runs)
		cl := Client{Sample: cs.sample, Queries: cs.queries, DroppedRuns: cs.dropped}
		bits := t.o.PrefixLen6
		if cs.sample.Is4() {
			bits = t.o.PrefixLen4
		}
		cl.Prefix, _ = cs.sample.Prefix(bits)
		for _, ic := range cs.insts {
			cl.Instances = append(cl.Instances, ClientInstance{Instance: int(ic.inst), Queries: ic.queries,
				First: time.Unix(0, ic.first).UTC(), Last: time.Unix(0, ic.last).UTC()})
		}
		sortInstances(cl.Instances)
		if runs := cs.finish(t.window); len(runs) > 1 || (len(runs) == 1 && runs[0].inst < 0) {
			for _, r := range runs {
				out := Run{First: time.Unix(0, r.first).UTC(), Last: time.Unix(0, r.last).UTC(), Queries: r.queries}
				if r.inst >= 0 {
					out.Instances = []int{int(r.inst)}
				} else {
					for _, m := range r.mixed {
						out.Instances = append(out.Instances, int(m))
					}
				}
				cl.Runs = append(cl.Runs, out)
			}
		}
		c.Clients = append(c.Clients, cl)
	}
	c.finish()
	return c
}

// sortInstances orders a client's instances by queries, then index.
func sortInstances(in []ClientInstance) {
	slices.SortFunc(in, func(a, b ClientInstance) int {
		return cmp.Or(cmp.Compare(b.Queries, a.Queries), cmp.Compare(a.Instance, b.Instance))
	})
}

// finish sorts the clients and counts each instance's clients.
func (c *Census) finish() {
	slices.SortFunc(c.Clients, func(a, b Client) int { return comparePrefix(a.Prefix, b.Prefix) })
	for i := range c.Instances {
		c.Instances[i].Clients, c.Instances[i].Main = 0, 0
	}
	for _, cl := range c.Clients {
		for _, ci := range cl.Instances {
			c.Instances[ci.Instance].Clients++
		}
		if m := cl.Main(); m >= 0 {
			c.Instances[m].Main++
		}
	}
}

func comparePrefix(a, b netip.Prefix) int {
	if a.Addr().Is4() != b.Addr().Is4() {
		if a.Addr().Is4() {
			return -1
		}
		return 1
	}
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// Distance is a client's distance to the instance its queries went to
// most, and to the nearest instance whose place is known.
type Distance struct {
	InstanceKm float64
	NearestKm  float64
	Nearest    int
}

// Distances answers the study's question "are clients served by the
// nearest instance?": for every client whose place is known (locate) and
// whose main instance's place is known (instances, by index), the distance
// to that instance and to the nearest known instance. Keyed by index into
// c.Clients.
func (c *Census) Distances(instances map[int]geo.Point, locate func(netip.Addr) (geo.Point, bool)) map[int]Distance {
	out := map[int]Distance{}
	if len(instances) == 0 || locate == nil {
		return out
	}
	for i, cl := range c.Clients {
		m := cl.Main()
		ip, ok := instances[m]
		if m < 0 || !ok {
			continue
		}
		at, ok := locate(cl.Sample)
		if !ok {
			continue
		}
		d := Distance{InstanceKm: geo.Distance(at, ip), NearestKm: math.Inf(1), Nearest: -1}
		for k, p := range instances {
			if km := geo.Distance(at, p); km < d.NearestKm || (km == d.NearestKm && k < d.Nearest) {
				d.NearestKm, d.Nearest = km, k
			}
		}
		out[i] = d
	}
	return out
}
