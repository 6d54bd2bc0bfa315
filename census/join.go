package census

import (
	"net/netip"
	"slices"
	"time"
)

// JoinOptions configure a Join; zero values take the defaults.
type JoinOptions struct {
	PrefixLen4, PrefixLen6 int
}

// Join collects an active census: the replies every site's listener
// recorded, and the targets the sender sent to (for the unresponsive
// ones). Memory grows with the target prefixes.
type Join struct {
	o         TallyOptions
	sites     []string
	bySite    map[string]int
	prefixes  map[netip.Prefix]*joinPrefix
	replies   uint64
	first     time.Time
	last      time.Time
	elsewhere uint64
}

type joinPrefix struct {
	sample netip.Addr
	sent   bool
	sites  []ClientInstance
}

// NewJoin starts an empty join.
func NewJoin(o JoinOptions) *Join {
	to := TallyOptions{PrefixLen4: o.PrefixLen4, PrefixLen6: o.PrefixLen6}.withDefaults()
	return &Join{o: to, bySite: map[string]int{}, prefixes: map[netip.Prefix]*joinPrefix{}}
}

func (j *Join) prefix(a netip.Addr) *joinPrefix {
	bits := j.o.PrefixLen6
	if a.Is4() {
		bits = j.o.PrefixLen4
	}
	p, _ := a.Prefix(bits)
	jp := j.prefixes[p]
	if jp == nil {
		jp = &joinPrefix{sample: a}
		j.prefixes[p] = jp
	}
	return jp
}

// Site returns the index of the named site, adding it on first use (a
// site that received nothing is still one of the census's sites).
func (j *Join) Site(name string) int {
	if i, ok := j.bySite[name]; ok {
		return i
	}
	j.sites = append(j.sites, name)
	j.bySite[name] = len(j.sites) - 1
	return len(j.sites) - 1
}

// AddSent records a target the sender sent to.
func (j *Join) AddSent(target netip.Addr) { j.prefix(target.Unmap()).sent = true }

// AddReply records a reply received at r.Site. The reply counts for the
// prefix of the target the request went to; one from another address
// than the target is counted in Census.Elsewhere too.
func (j *Join) AddReply(r Reply) {
	site := j.Site(r.Site)
	jp := j.prefix(r.Target.Unmap())
	jp.sent = true
	i := slices.IndexFunc(jp.sites, func(c ClientInstance) bool { return c.Instance == site })
	if i < 0 {
		jp.sites = append(jp.sites, ClientInstance{Instance: site, First: r.Received, Last: r.Received})
		i = len(jp.sites) - 1
	}
	ci := &jp.sites[i]
	ci.Queries++
	if r.Received.Before(ci.First) {
		ci.First = r.Received
	}
	if r.Received.After(ci.Last) {
		ci.Last = r.Received
	}
	if j.replies == 0 || r.Received.Before(j.first) {
		j.first = r.Received
	}
	if r.Received.After(j.last) {
		j.last = r.Received
	}
	j.replies++
	if r.From.IsValid() && r.From.Unmap() != r.Target.Unmap() {
		j.elsewhere++
	}
}

// Result is the active census: per target prefix the sites its replies
// reached (several: a split catchment), prefixes sent to without a reply
// (Queries 0), the sites' shares.
func (j *Join) Result() *Census {
	c := &Census{Method: Active, PrefixLen4: j.o.PrefixLen4, PrefixLen6: j.o.PrefixLen6,
		Queries: j.replies, Start: j.first, End: j.last, Elsewhere: j.elsewhere}
	for _, s := range j.sites {
		c.Instances = append(c.Instances, Instance{Name: s})
	}
	for p, jp := range j.prefixes {
		cl := Client{Prefix: p, Sample: jp.sample, Instances: slices.Clone(jp.sites)}
		sortInstances(cl.Instances)
		for _, ci := range cl.Instances {
			cl.Queries += ci.Queries
			c.Instances[ci.Instance].Queries += ci.Queries
		}
		if len(cl.Instances) > 1 {
			r := Run{First: cl.Instances[0].First, Last: cl.Instances[0].Last, Queries: cl.Queries}
			for _, ci := range cl.Instances {
				r.Instances = append(r.Instances, ci.Instance)
				r.First = minTime(r.First, ci.First)
				r.Last = maxTime(r.Last, ci.Last)
			}
			slices.Sort(r.Instances)
			cl.Runs = []Run{r}
		}
		c.Clients = append(c.Clients, cl)
	}
	c.finish()
	return c
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
