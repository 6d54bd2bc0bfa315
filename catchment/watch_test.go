package catchment_test

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/catchment"
)

var (
	watchTarget = netip.MustParseAddr("192.0.2.53")
	watchT0     = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
)

// step is one synthetic round, written compactly:
//
//	"A"        instance A answers (NSID "A", hostname.bind "a.site") in 10 ms
//	"A/25"     the same, in 25 ms
//	"a.site"   hostname.bind only, no NSID (an answer whose NSID went missing)
//	"-"        every query timed out
//	"!"        every query failed to send: "network is unreachable"
//	"?"        replies refusing every identity query (no identity)
//	"M"        a middlebox answers: RA set, class IN, TTL > 0, "resolver1"
//	"aa"       instance A with AA clear only (as NSD and Knot answer)
type step string

func roundOf(i int, s step, every time.Duration) catchment.WatchRound {
	r := catchment.WatchRound{Time: watchT0.Add(time.Duration(i) * every)}
	name, rtt := string(s), 10*time.Millisecond
	if n, ms, ok := strings.Cut(name, "/"); ok {
		var v int
		fmt.Sscan(ms, &v)
		name, rtt = n, time.Duration(v)*time.Millisecond
	}
	q := func(status measure.Status, txt string, nsid string, sus ...measure.Suspicion) []measure.Answer {
		var out []measure.Answer
		for _, qn := range []string{"hostname.bind", "id.server"} {
			a := measure.Answer{Name: qn, Status: status, NSID: []byte(nsid), Suspicions: sus}
			if status == measure.StatusAnswered {
				a.TXT, a.RTT = []string{txt}, rtt
			}
			if status == measure.StatusRefused {
				a.RTT = rtt
			}
			if status == measure.StatusError {
				a.Detail = "network is unreachable"
			}
			out = append(out, a)
		}
		return out
	}
	switch name {
	case "-":
		r.Answers = q(measure.StatusTimeout, "", "")
	case "!":
		r.Answers = q(measure.StatusError, "", "")
	case "?":
		r.Answers = q(measure.StatusRefused, "", "")
	case "M":
		r.Answers = q(measure.StatusAnswered, "resolver1", "", measure.SuspectRA, measure.SuspectClassNotCH, measure.SuspectTTLNonZero, measure.SuspectAAClear)
		r.Identity = measure.Identity{Instance: "resolver1", Source: "hostname.bind", HostnameBind: "resolver1"}
	case "aa":
		r.Answers = q(measure.StatusAnswered, "a.site", "A", measure.SuspectAAClear)
		r.Identity = measure.Identity{Instance: "A", Source: "nsid", NSID: "A", HostnameBind: "a.site"}
	case "a.site":
		r.Answers = q(measure.StatusAnswered, "a.site", "")
		r.Identity = measure.Identity{Instance: "a.site", Source: "hostname.bind", HostnameBind: "a.site"}
	default:
		host := strings.ToLower(name) + ".site"
		r.Answers = q(measure.StatusAnswered, host, name)
		r.Identity = measure.Identity{Instance: name, Source: "nsid", NSID: name, HostnameBind: host}
	}
	return r
}

// watch runs the steps one second apart and returns the events (as short
// strings) and the summary of a watch that ran its full last interval.
func watch(t *testing.T, steps ...step) ([]catchment.WatchEvent, catchment.WatchSummary) {
	t.Helper()
	w := catchment.NewWatcher(watchTarget, time.Second, nil, 0)
	var evs []catchment.WatchEvent
	for i, s := range steps {
		evs = append(evs, w.Observe(roundOf(i, s, time.Second))...)
	}
	return evs, w.Summary(time.Time{})
}

func kinds(evs []catchment.WatchEvent) string {
	var out []string
	for _, e := range evs {
		s := string(e.Type)
		switch e.Type {
		case catchment.WatchStart, catchment.WatchBack:
			s += " " + e.Instance
		case catchment.WatchSwitch:
			s += " " + e.From + ">" + e.Instance
		case catchment.WatchSuspect:
			s += " " + e.Instance
		}
		out = append(out, fmt.Sprintf("%s@%d", s, int(e.Time.Sub(watchT0)/time.Second)))
	}
	return strings.Join(out, ", ")
}

func share(s catchment.WatchSummary, instance string) catchment.InstanceTime {
	for _, in := range s.Instances {
		if in.Identity.Instance == instance {
			return in
		}
	}
	return catchment.InstanceTime{}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestWatchStableFlow(t *testing.T) {
	evs, s := watch(t, "A", "A", "A", "A", "A", "A", "A", "A", "A", "A")
	if got := kinds(evs); got != "start A@0" {
		t.Errorf("events %q, want only the start", got)
	}
	if s.Rounds != 10 || s.Answered != 10 || s.Switches != 0 || s.Losses != 0 || s.Timeouts != 0 {
		t.Errorf("counts wrong: %+v", s)
	}
	if s.Duration() != 10*time.Second {
		t.Errorf("watched %v, want 10 rounds × 1s", s.Duration())
	}
	a := share(s, "A")
	if len(s.Instances) != 1 || a.Rounds != 10 || a.Time != 10*time.Second || !near(a.Share, 1) {
		t.Errorf("instance A: %+v", a)
	}
	if s.Longest == nil || s.Longest.Instance != "A" || s.Longest.Duration() != 10*time.Second || s.Longest.Rounds != 10 {
		t.Errorf("longest run %+v, want A for all 10 s", s.Longest)
	}
	if a.RTT.N != 10 || a.RTT.P50 != 10*time.Millisecond || a.RTT.Max != 10*time.Millisecond {
		t.Errorf("rtt %+v", a.RTT)
	}
}

func TestWatchFlapping(t *testing.T) {
	evs, s := watch(t, "A/10", "B/30", "A/11", "A/12", "B/31", "A/13")
	if got, want := kinds(evs), "start A@0, switch A>B@1, switch B>A@2, switch A>B@4, switch B>A@5"; got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	if s.Switches != 4 {
		t.Errorf("switches %d, want 4", s.Switches)
	}
	// RTT before/after: the last round on the old instance, the first on the new.
	sw := evs[3]
	if sw.RTTBefore != 12*time.Millisecond || sw.RTTAfter != 31*time.Millisecond {
		t.Errorf("switch at 4: rtt %v → %v, want 12ms → 31ms", sw.RTTBefore, sw.RTTAfter)
	}
	a, b := share(s, "A"), share(s, "B")
	if a.Rounds != 4 || b.Rounds != 2 || !near(a.Share, 4.0/6) || !near(b.Share, 2.0/6) {
		t.Errorf("shares: A %+v, B %+v", a.TimeShare, b.TimeShare)
	}
	if s.Instances[0].Identity.Instance != "A" {
		t.Errorf("instances are not ordered by share: %+v", s.Instances)
	}
	// The longest run is A at rounds 2–3 (2 s).
	if s.Longest == nil || s.Longest.Instance != "A" || s.Longest.Start != watchT0.Add(2*time.Second) || s.Longest.Duration() != 2*time.Second || s.Longest.Rounds != 2 {
		t.Errorf("longest run %+v", s.Longest)
	}
	if b.RTT.Min != 30*time.Millisecond || b.RTT.Max != 31*time.Millisecond || a.RTT.P50 != 11*time.Millisecond {
		t.Errorf("rtt percentiles A %+v, B %+v", a.RTT, b.RTT)
	}
}

// Fewer than LostAfter missed rounds are timeouts, not a loss, and do not
// end the stable run; the time they stand for is "no answer".
func TestWatchTimeoutsBelowK(t *testing.T) {
	evs, s := watch(t, "A", "-", "-", "A", "A")
	if got := kinds(evs); got != "start A@0" {
		t.Errorf("events %q, want only the start", got)
	}
	if s.Losses != 0 || s.Missed != 2 || s.Timeouts != 4 || s.Answered != 3 {
		t.Errorf("counts: %+v", s)
	}
	if !near(s.NoAnswer.Share, 2.0/5) || !near(share(s, "A").Share, 3.0/5) {
		t.Errorf("shares: no answer %v, A %v", s.NoAnswer.Share, share(s, "A").Share)
	}
	if s.Longest == nil || s.Longest.Duration() != 5*time.Second || s.Longest.Rounds != 5 {
		t.Errorf("longest run %+v, want all 5 s (isolated timeouts do not end it)", s.Longest)
	}
}

func TestWatchLostAndBack(t *testing.T) {
	evs, s := watch(t, "A", "A", "-", "-", "-", "-", "A", "A")
	if got, want := kinds(evs), "start A@0, lost@4, back A@6"; got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	lost, back := evs[1], evs[2]
	if lost.Since != watchT0.Add(2*time.Second) || lost.Misses != catchment.LostAfter || lost.Instance != "A" {
		t.Errorf("lost event %+v: want since round 2, %d misses, last instance A", lost, catchment.LostAfter)
	}
	if back.Since != lost.Since || back.Misses != 4 {
		t.Errorf("back event %+v: want since round 2 and 4 misses", back)
	}
	if s.Losses != 1 || s.Switches != 0 || s.Lost {
		t.Errorf("counts: %+v", s)
	}
	// Runs: A for rounds 0–1 (2 s, ended when replies stopped), A again 6–7.
	if s.Longest == nil || s.Longest.Duration() != 2*time.Second || s.Longest.Start != watchT0 || s.Longest.Rounds != 2 {
		t.Errorf("longest %+v", s.Longest)
	}

	// A watch that ends while lost says so.
	_, s = watch(t, "A", "-", "-", "-")
	if !s.Lost || s.Losses != 1 {
		t.Errorf("watch ending in a loss: %+v", s)
	}
	if cur, lost := catchment.NewWatcher(watchTarget, time.Second, nil, 0).Current(); cur != "" || lost {
		t.Errorf("a new watcher is on %q, lost %v", cur, lost)
	}
}

// Coming back on another instance is a loss, a return and a switch.
func TestWatchBackOnAnotherInstance(t *testing.T) {
	evs, s := watch(t, "A/10", "-", "-", "-", "B/40")
	if got, want := kinds(evs), "start A@0, lost@3, back B@4, switch A>B@4"; got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	if sw := evs[3]; sw.RTTBefore != 10*time.Millisecond || sw.RTTAfter != 40*time.Millisecond {
		t.Errorf("switch rtt %v → %v", sw.RTTBefore, sw.RTTAfter)
	}
	if s.Switches != 1 || s.Losses != 1 {
		t.Errorf("counts %+v", s)
	}
}

// Send errors are events, reported once per failure, and count as missed
// rounds; a different reason is a new event.
func TestWatchSendErrors(t *testing.T) {
	w := catchment.NewWatcher(watchTarget, time.Second, nil, 0)
	var evs []catchment.WatchEvent
	for i, s := range []step{"A", "!", "!", "!", "!", "A"} {
		evs = append(evs, w.Observe(roundOf(i, s, time.Second))...)
	}
	evs = append(evs, w.Observe(catchment.WatchRound{Time: watchT0.Add(6 * time.Second), Err: "bind 0.0.0.0:40000: address already in use"})...)
	if got, want := kinds(evs), "start A@0, error@1, lost@3, back A@5, error@6"; got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	if evs[1].Detail != "network is unreachable" || !strings.Contains(evs[4].Detail, "address already in use") {
		t.Errorf("error details: %q, %q", evs[1].Detail, evs[4].Detail)
	}
	s := w.Summary(time.Time{})
	if s.Missed != 5 || s.Timeouts != 0 || s.Rounds != 7 {
		t.Errorf("counts %+v", s)
	}
}

// An intercepting middlebox answers for a while: that is a suspect answer
// (one event while it lasts), not an instance switch, and its time is
// counted apart from the instances.
func TestWatchInterception(t *testing.T) {
	evs, s := watch(t, "A", "M", "M", "M", "A", "aa")
	if got, want := kinds(evs), "start A@0, suspect resolver1@1"; got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	sus := evs[1].Suspicions
	want := []catchment.Suspicion{"class_not_ch", "ra_set", "ttl_nonzero"}
	if !slices.Equal(sus, want) {
		t.Errorf("suspicions %v, want %v (aa_clear alone is no sign)", sus, want)
	}
	if s.Switches != 0 {
		t.Errorf("interception counted as %d switches", s.Switches)
	}
	if s.Suspect.Rounds != 3 || !near(s.Suspect.Share, 3.0/6) || !slices.Equal(s.Suspect.Signs, want) || !slices.Equal(s.Suspect.Identities, []string{"resolver1"}) {
		t.Errorf("suspect part %+v", s.Suspect)
	}
	if a := share(s, "A"); a.Rounds != 3 || len(s.Instances) != 1 {
		t.Errorf("instances %+v: the middlebox must not be one", s.Instances)
	}

	// Interception that starts again after clean answers is a new event.
	evs, _ = watch(t, "M", "A", "M")
	if got, want := kinds(evs), "suspect resolver1@0, start A@1, suspect resolver1@2"; got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
}

// An identity that does not fit the operator of a known target is suspect
// even without flags (a transparent interceptor answering as itself).
func TestWatchIdentityMismatch(t *testing.T) {
	kroot := netip.MustParseAddr("193.0.14.129")
	w := catchment.NewWatcher(kroot, time.Second, catchment.BuiltinSites(), 0)
	r := roundOf(0, "A", time.Second)
	r.Identity = measure.Identity{Instance: "ns1.fi-hel.k.ripe.net", Source: "hostname.bind", HostnameBind: "ns1.fi-hel.k.ripe.net"}
	if evs := w.Observe(r); kinds(evs) != "start ns1.fi-hel.k.ripe.net@0" {
		t.Errorf("a fitting identity: %s", kinds(evs))
	}
	r = roundOf(1, "a.site", time.Second)
	evs := w.Observe(r)
	if len(evs) != 1 || evs[0].Type != catchment.WatchSuspect || !slices.Contains(evs[0].Suspicions, catchment.SuspectIdentityMismatch) {
		t.Errorf("an identity that does not fit k-root: %+v", evs)
	}
}

// A round whose NSID went missing names the instance by hostname.bind:
// still the same instance, not a switch; rounds refusing every identity
// query name nothing.
func TestWatchPartialIdentity(t *testing.T) {
	evs, s := watch(t, "A", "a.site", "A", "?", "A")
	if got := kinds(evs); got != "start A@0" {
		t.Errorf("events %q, want only the start", got)
	}
	if a := share(s, "A"); a.Rounds != 4 || len(s.Instances) != 1 {
		t.Errorf("instances %+v", s.Instances)
	}
	if s.Anonymous.Rounds != 1 || s.Longest.Rounds != 5 {
		t.Errorf("anonymous %+v, longest %+v", s.Anonymous, s.Longest)
	}
}

// Ctrl-C in the middle of an interval: the last round stands for the time
// until the end, not a whole interval; shares still sum to one.
func TestWatchSummaryCutAtEnd(t *testing.T) {
	w := catchment.NewWatcher(watchTarget, 10*time.Second, nil, 0)
	for i, s := range []step{"A", "A", "B"} {
		w.Observe(roundOf(i, s, 10*time.Second))
	}
	end := watchT0.Add(23 * time.Second)
	s := w.Summary(end)
	if s.End != end || s.Duration() != 23*time.Second {
		t.Errorf("watched %v until %v", s.Duration(), s.End)
	}
	a, b := share(s, "A"), share(s, "B")
	if a.Time != 20*time.Second || b.Time != 3*time.Second {
		t.Errorf("A %v, B %v; want 20s and 3s", a.Time, b.Time)
	}
	sum := s.NoAnswer.Share + s.Anonymous.Share + s.Suspect.Share
	for _, in := range s.Instances {
		sum += in.Share
	}
	if !near(sum, 1) {
		t.Errorf("shares sum to %v", sum)
	}
	// Summary does not change the watcher: a later round is credited as usual.
	w.Observe(roundOf(3, "B", 10*time.Second))
	if b := share(w.Summary(time.Time{}), "B"); b.Time != 20*time.Second || b.Rounds != 2 {
		t.Errorf("after another round B has %v in %d rounds", b.Time, b.Rounds)
	}
	if s := catchment.NewWatcher(watchTarget, time.Second, nil, 0).Summary(end); s.Rounds != 0 || s.Longest != nil || s.Duration() != 0 {
		t.Errorf("empty summary %+v", s)
	}
}

// Percentiles are nearest-rank, exact for a day of rounds and within 1 %
// after that, with bounded memory.
func TestWatchRTTPercentiles(t *testing.T) {
	for _, n := range []int{100, 20000} {
		w := catchment.NewWatcher(watchTarget, time.Second, nil, 0)
		for i := range n {
			// RTTs 1..100 ms, each equally often.
			r := roundOf(i, step(fmt.Sprintf("A/%d", i%100+1)), time.Second)
			w.Observe(r)
		}
		p := share(w.Summary(time.Time{}), "A").RTT
		if p.N != n || p.Min != time.Millisecond || p.Max != 100*time.Millisecond {
			t.Errorf("n=%d: %+v", n, p)
		}
		for _, c := range []struct {
			got  time.Duration
			want float64
		}{{p.P50, 50}, {p.P90, 90}, {p.P99, 99}} {
			ms := float64(c.got) / float64(time.Millisecond)
			tol := 0.0
			if n > 8640 {
				tol = c.want * 0.01
			}
			if math.Abs(ms-c.want) > tol+1e-9 {
				t.Errorf("n=%d: percentile %v ms, want %v ms (±%v)", n, ms, c.want, tol)
			}
		}
	}
}

func hops(addrs ...string) []catchment.Hop {
	var out []catchment.Hop
	for i, a := range addrs {
		h := catchment.Hop{TTL: i + 1}
		if a != "*" {
			for j, x := range strings.Split(a, "|") {
				h.Responders = append(h.Responders, catchment.Responder{Addr: netip.MustParseAddr(x), ASNs: []uint32{uint32(64500 + i*10 + j)}})
			}
		}
		out = append(out, h)
	}
	return out
}

func TestComparePaths(t *testing.T) {
	before := catchment.Flow{Hops: hops("198.51.100.1", "198.51.100.2", "198.51.100.33", "203.0.113.1", "192.0.2.53")}
	after := catchment.Flow{Hops: hops("198.51.100.1", "198.51.100.2", "198.51.100.33", "198.51.100.129", "198.51.100.66", "203.0.113.65", "192.0.2.53")}
	c := catchment.ComparePaths(before, after)
	if c.Part != 3 || c.Common.Addr != netip.MustParseAddr("198.51.100.33") || c.Common.ASNs[0] != 64520 {
		t.Errorf("the paths part after ttl %d at %v, want ttl 3 198.51.100.33", c.Part, c.Common)
	}
	var ttls []int
	for _, h := range c.Changed {
		ttls = append(ttls, h.TTL)
	}
	if !slices.Equal(ttls, []int{4, 5, 6, 7}) {
		t.Fatalf("changed ttls %v, want 4–7", ttls)
	}
	if c.Changed[2].Old != nil || c.Changed[2].New == nil || c.Changed[0].Old.Responders[0].Addr.String() != "203.0.113.1" {
		t.Errorf("changed hops %+v", c.Changed)
	}

	// And back: the same TTLs, the other way round.
	back := catchment.ComparePaths(after, before)
	if back.Part != 3 || len(back.Changed) != 4 || back.Changed[3].New != nil {
		t.Errorf("back: %+v", back)
	}

	// Silent hops are no difference; an unchanged path has no changes.
	quiet := catchment.Flow{Hops: hops("198.51.100.1", "*", "198.51.100.33", "203.0.113.1", "192.0.2.53", "*")}
	if c := catchment.ComparePaths(before, quiet); len(c.Changed) != 0 || c.Part != 0 {
		t.Errorf("silent hops taken for a change: %+v", c)
	}
	// A diamond's other branch is a change at that TTL only.
	other := catchment.Flow{Hops: hops("198.51.100.1", "198.51.100.3", "198.51.100.33", "203.0.113.1", "192.0.2.53")}
	if c := catchment.ComparePaths(before, other); c.Part != 1 || len(c.Changed) != 1 || c.Changed[0].TTL != 2 {
		t.Errorf("one changed hop: %+v", c)
	}
	// Changes from the first hop: no common hop.
	if c := catchment.ComparePaths(before, catchment.Flow{Hops: hops("198.51.100.9")}); c.Part != 0 || c.Common.Addr.IsValid() || len(c.Changed) != 5 {
		t.Errorf("from the first hop: %+v", c)
	}
}

// A server that answers a new identity every round cannot grow a watch
// without end: past MaxWatchInstances the rest count as one for their
// time, but their switches are still seen and no stable run is made of
// them (it was "(other instances)" for 37 rounds).
func TestWatchBoundsInstances(t *testing.T) {
	w := catchment.NewWatcher(watchTarget, time.Second, nil, 0)
	for i := range 100 {
		w.Observe(roundOf(i, step(fmt.Sprintf("X%03d", i)), time.Second))
	}
	s := w.Summary(time.Time{})
	if len(s.Instances) != catchment.MaxWatchInstances {
		t.Fatalf("%d instances kept, want %d", len(s.Instances), catchment.MaxWatchInstances)
	}
	other := share(s, catchment.OtherInstances)
	if other.Rounds != 100-(catchment.MaxWatchInstances-1) || s.Switches != 99 {
		t.Errorf("other instances: %d rounds, %d switches; want 37 rounds, 99 switches", other.Rounds, s.Switches)
	}
	if s.Longest == nil || s.Longest.Rounds != 1 || s.Longest.Instance == catchment.OtherInstances {
		t.Errorf("longest stable run %+v: want one round, on a named instance", s.Longest)
	}
	if !s.ChangedEveryRound() {
		t.Errorf("a new identity on each of 100 rounds: not 'changed every round'")
	}

	// Beyond the cap a run keeps the name its instance answers with.
	w = catchment.NewWatcher(watchTarget, time.Second, nil, 0)
	i := 0
	for n := range 70 {
		for range 3 + 2*(n/69) {
			w.Observe(roundOf(i, step(fmt.Sprintf("Y%03d", n)), time.Second))
			i++
		}
	}
	s = w.Summary(time.Time{})
	if s.Longest == nil || s.Longest.Instance != "Y069" || s.Longest.Rounds != 5 || s.Switches != 69 {
		t.Errorf("longest %+v, %d switches; want Y069 for 5 rounds, 69 switches", s.Longest, s.Switches)
	}
	if s.ChangedEveryRound() {
		t.Errorf("runs of three rounds: 'changed every round'")
	}
	// One or two answered rounds are too few to say the instance changes.
	w = catchment.NewWatcher(watchTarget, time.Second, nil, 0)
	w.Observe(roundOf(0, step("Z0"), time.Second))
	w.Observe(roundOf(1, step("Z1"), time.Second))
	if s := w.Summary(time.Time{}); s.ChangedEveryRound() {
		t.Errorf("two rounds, two identities: 'changed every round'")
	}
}
