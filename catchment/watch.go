package catchment

import (
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/anycheck/anycheck/measure"
)

// LostAfter is k, the number of consecutive rounds without any DNS reply
// after which a watched flow is declared lost. A round is lost only when
// every query of it went unanswered, so with q queries per round and a
// path that drops a fraction p of packets independently, one round is
// lost with probability p^q and k rounds in a row with p^(q·k): with the
// default two queries and 5 % loss that is 2.5e-3 for one round (a false
// alarm about every hour at the default 10 s interval with k = 1) and
// 1.6e-8 for three (about once in twenty years), while a real outage is
// still reported within k intervals (30 s by default — about the time BGP
// takes to converge after a withdrawal anyway). Fewer missed rounds are
// counted (timeouts, time without an answer) but end no stable run.
const LostAfter = 3

// maxSuspectIdentities bounds the identities a summary keeps of suspect
// answers (an interceptor may answer with a new string every time).
const maxSuspectIdentities = 16

// MaxWatchInstances bounds the instances a flow's summary tells apart: a
// server answering a new identity every round must not grow the watch
// without end. Identities beyond it share one instance named
// OtherInstances for their time; switches between them are still seen
// (against the last identity), and a stable run keeps its own name.
const MaxWatchInstances = 64

// OtherInstances names the instances beyond MaxWatchInstances.
const OtherInstances = "(other instances)"

// WatchRound is one pass of the identity query set over one watched flow.
type WatchRound struct {
	Time     time.Time        // when the queries left
	Identity measure.Identity // what the answers say (zero when none)
	Answers  []measure.Answer
	// Err is a failure to send at all (the flow's port could not be
	// bound); a send error of one query (no route) is an Answer with
	// status "error".
	Err string
}

// WatchEventType names what changed on a watched flow.
type WatchEventType string

// Watch event types.
const (
	// WatchStart: the first instance the flow reached.
	WatchStart WatchEventType = "start"
	// WatchSwitch: another instance answers (From → Instance).
	WatchSwitch WatchEventType = "switch"
	// WatchLost: LostAfter rounds in a row without any reply.
	WatchLost WatchEventType = "lost"
	// WatchBack: a reply again after WatchLost.
	WatchBack WatchEventType = "back"
	// WatchSuspect: an answer with signs of interception (Suspicions);
	// reported when such answers begin or their signs or identity change.
	WatchSuspect WatchEventType = "suspect"
	// WatchError: the queries could not be sent (no route, the port is
	// taken); reported when the failure begins or its reason changes.
	WatchError WatchEventType = "error"
)

// WatchEvent is one change on a watched flow.
type WatchEvent struct {
	Type WatchEventType
	Time time.Time // the round that showed the change
	// Instance is the instance reached: the new one (start, switch, back),
	// the last one known (lost), or the identity a suspect answer gave.
	Instance string
	From     string // switch: the instance before
	// Identity and FromIdentity are what the answers said of Instance and
	// From (Instance alone when the round's answers are not at hand, or
	// when the instance is OtherInstances).
	Identity, FromIdentity measure.Identity
	// RTTBefore is, for a switch, the RTT of the last round on From;
	// RTTAfter the RTT of this round (start, switch, back, suspect). The
	// RTT of a round is the smallest of its answers'. 0 = unknown.
	RTTBefore, RTTAfter time.Duration
	// Since is when the flow stopped answering (lost, back); Misses is how
	// many rounds in a row went unanswered (LostAfter when lost; the
	// whole outage when back).
	Since      time.Time
	Misses     int
	Suspicions []Suspicion // suspect
	Detail     string      // error: why the queries could not be sent
}

// Watcher detects the events of one watched flow from its rounds, in
// order, and sums them up. It is pure: time comes from the rounds.
//
// Time shares: each round stands for the time from its start to the next
// round's start (the last round for one interval, cut at the end of the
// watch), and that time goes to what the round saw — an instance, a
// suspect answer, a reply without identity, or no answer. So an instance
// holds from the round that first saw it to the round that saw something
// else: a switch between two rounds is credited to the old instance, at
// most one interval of error per switch. Shares are fractions of the
// whole watched time and sum to 1 with the suspect, anonymous and
// no-answer parts.
type Watcher struct {
	target    netip.Addr
	sites     *Sites
	interval  time.Duration
	lostAfter int

	rounds, answered, missed int
	queries, timeouts        int
	switches, losses         int
	first                    time.Time
	prev                     *pending // the last round, its time not yet credited

	instances []*instanceStat
	other     *instanceStat    // identities beyond MaxWatchInstances
	rtts      int              // RTT samples kept exactly, over all instances
	cur       int              // index of the current instance; -1 before the first
	curID     measure.Identity // the last identity on cur, as answered (cur may be other)
	curRTT    time.Duration    // RTT of the last round on cur
	misses    int              // rounds in a row without a reply
	missStart time.Time
	lost      bool
	suspect   string // key of the current run of suspect answers ("" none)
	errDetail string // the current send failure ("" none)

	noAnswer, anonymous slot
	suspects            suspectStat

	run     stableRun // the open stable run (inst < 0: none)
	longest stableRun
}

type pending struct {
	at   time.Time
	slot *slot
}

// slot accumulates rounds and time of one class of rounds.
type slot struct {
	rounds int
	time   time.Duration
}

type instanceStat struct {
	slot
	id          measure.Identity
	first, last time.Time
	rtt         rttSamples
}

type suspectStat struct {
	slot
	signs      []Suspicion
	identities []string
}

type stableRun struct {
	inst       int    // -1: none
	name       string // the instance as answered (other's are told apart)
	start, end time.Time
	rounds     int
}

// NewWatcher starts the detector for one flow towards target. interval is
// the watch's round interval (the time the last round stands for); sites,
// when not nil, lets identity_mismatch and no_chaos_operator count as
// interception signs for targets of known operators; lostAfter <= 0 means
// LostAfter.
func NewWatcher(target netip.Addr, interval time.Duration, sites *Sites, lostAfter int) *Watcher {
	if lostAfter <= 0 {
		lostAfter = LostAfter
	}
	return &Watcher{
		target: target, interval: interval, sites: sites, lostAfter: lostAfter,
		cur: -1, run: stableRun{inst: -1}, longest: stableRun{inst: -1},
	}
}

// roundRTT is the smallest RTT of the round's replies (0 when none).
func roundRTT(answers []measure.Answer) time.Duration {
	var best time.Duration
	for _, a := range answers {
		if a.Replied() && a.RTT > 0 && (best == 0 || a.RTT < best) {
			best = a.RTT
		}
	}
	return best
}

// sameInstance decides whether two identities name one instance: by the
// first identity string both carry (NSID, hostname.bind, id.server), so a
// round whose NSID went missing is not taken for a switch.
func sameInstance(a, b measure.Identity) bool {
	switch {
	case a.NSID != "" && b.NSID != "":
		return a.NSID == b.NSID
	case a.HostnameBind != "" && b.HostnameBind != "":
		return a.HostnameBind == b.HostnameBind
	case a.IDServer != "" && b.IDServer != "":
		return a.IDServer == b.IDServer
	}
	return a.Instance == b.Instance
}

// lookup finds the instance an identity names (the current one first),
// adding it when new. The instance keeps the name it was first seen by.
func (w *Watcher) lookup(id measure.Identity) int {
	if w.cur >= 0 && sameInstance(w.instances[w.cur].id, id) {
		return w.cur
	}
	for i, s := range w.instances {
		if sameInstance(s.id, id) || s == w.other {
			return i
		}
	}
	s := &instanceStat{id: id}
	if len(w.instances) == MaxWatchInstances-1 {
		s.id = measure.Identity{Instance: OtherInstances}
		w.other = s
	}
	if w.rtts >= exactRTTs {
		s.rtt.fold()
	}
	w.instances = append(w.instances, s)
	return len(w.instances) - 1
}

// addRTT keeps an RTT sample of an instance; past exactRTTs samples of the
// flow every instance's samples are folded into buckets.
func (w *Watcher) addRTT(s *instanceStat, d time.Duration) {
	s.rtt.add(d)
	if w.rtts++; w.rtts == exactRTTs {
		for _, in := range w.instances {
			in.rtt.fold()
		}
	}
}

// Observe takes the next round of the flow and returns the events it
// shows, in order. Rounds must come in time order.
func (w *Watcher) Observe(r WatchRound) []WatchEvent {
	var evs []WatchEvent
	w.credit(r.Time)
	w.rounds++
	w.queries += len(r.Answers)
	if w.first.IsZero() {
		w.first = r.Time
	}
	replied := false
	errDetail := r.Err
	for _, a := range r.Answers {
		switch {
		case a.Replied():
			replied = true
		case a.Status == measure.StatusTimeout:
			w.timeouts++
		case a.Status == measure.StatusError && errDetail == "":
			errDetail = a.Detail
			if errDetail == "" {
				errDetail = "send failed"
			}
		}
	}
	if !replied {
		w.missed++
		w.prev = &pending{at: r.Time, slot: &w.noAnswer}
		if errDetail != "" && errDetail != w.errDetail {
			evs = append(evs, WatchEvent{Type: WatchError, Time: r.Time, Instance: w.curName(), Identity: w.curID, Detail: errDetail})
		}
		w.errDetail = errDetail
		if w.misses == 0 {
			w.missStart = r.Time
		}
		w.misses++
		w.run.rounds++
		if w.misses == w.lostAfter && !w.lost {
			w.lost = true
			w.losses++
			evs = append(evs, WatchEvent{Type: WatchLost, Time: r.Time, Instance: w.curName(), Identity: w.curID, Since: w.missStart, Misses: w.misses})
			// The run ended when the replies stopped.
			w.run.rounds -= w.misses
			w.closeRun(w.missStart)
		}
		return evs
	}

	w.answered++
	w.errDetail = ""
	rtt := roundRTT(r.Answers)
	signs := AnswerSigns(w.target, r.Identity, r.Answers, w.sites)
	inst, name := -1, r.Identity.Instance
	if len(signs) == 0 && name != "" {
		inst = w.lookup(r.Identity)
		name = w.instances[inst].id.Instance
	}
	id := r.Identity
	if name != id.Instance {
		id = measure.Identity{Instance: name}
	}
	if w.lost {
		w.lost = false
		evs = append(evs, WatchEvent{Type: WatchBack, Time: r.Time, Instance: name, Identity: id, RTTAfter: rtt, Since: w.missStart, Misses: w.misses})
	}
	w.misses = 0

	switch {
	case len(signs) > 0:
		w.prev = &pending{at: r.Time, slot: &w.suspects.slot}
		w.suspects.note(signs, name)
		key := name + "\x00" + joinSuspicions(signs)
		if key != w.suspect {
			evs = append(evs, WatchEvent{Type: WatchSuspect, Time: r.Time, Instance: name, Identity: id, RTTAfter: rtt, Suspicions: signs})
		}
		w.suspect = key
		w.run.rounds++
		return evs
	case inst < 0:
		// A reply that names nothing (every identity query refused):
		// nothing to switch to, nothing lost.
		w.suspect = ""
		w.prev = &pending{at: r.Time, slot: &w.anonymous}
		w.run.rounds++
		return evs
	}
	w.suspect = ""
	s := w.instances[inst]
	if s.first.IsZero() {
		s.first = r.Time
	}
	s.last = r.Time
	if rtt > 0 {
		w.addRTT(s, rtt)
	}
	w.prev = &pending{at: r.Time, slot: &s.slot}
	// Identities beyond MaxWatchInstances share one instance: one of them
	// is the current one only when it names what the last round named.
	same := inst == w.cur && (s != w.other || sameInstance(w.curID, r.Identity))
	if s == w.other {
		name, id = r.Identity.Instance, r.Identity
	}
	switch {
	case w.cur < 0:
		evs = append(evs, WatchEvent{Type: WatchStart, Time: r.Time, Instance: name, Identity: id, RTTAfter: rtt})
	case !same:
		w.switches++
		evs = append(evs, WatchEvent{Type: WatchSwitch, Time: r.Time, Instance: name, Identity: id, From: w.curName(), FromIdentity: w.curID, RTTBefore: w.curRTT, RTTAfter: rtt})
	}
	if same && w.run.inst == inst {
		w.run.rounds++
	} else {
		w.closeRun(r.Time)
		w.run = stableRun{inst: inst, name: name, start: r.Time, rounds: 1}
	}
	w.cur, w.curRTT = inst, rtt
	if !same || s == w.other {
		w.curID = r.Identity
	}
	return evs
}

// credit gives the time since the previous round to what it saw.
func (w *Watcher) credit(now time.Time) {
	if w.prev == nil {
		return
	}
	d := max(now.Sub(w.prev.at), 0)
	w.prev.slot.rounds++
	w.prev.slot.time += d
	w.prev = nil
}

func (w *Watcher) closeRun(end time.Time) {
	if w.run.inst < 0 {
		return
	}
	w.run.end = end
	if w.longest.inst < 0 || w.run.end.Sub(w.run.start) > w.longest.end.Sub(w.longest.start) {
		w.longest = w.run
	}
	w.run = stableRun{inst: -1}
}

func (w *Watcher) curName() string {
	if w.cur < 0 {
		return ""
	}
	if w.instances[w.cur] == w.other {
		return w.curID.Instance
	}
	return w.instances[w.cur].id.Instance
}

func (s *suspectStat) note(signs []Suspicion, identity string) {
	for _, x := range signs {
		if !slices.Contains(s.signs, x) {
			s.signs = append(s.signs, x)
		}
	}
	slices.Sort(s.signs)
	if identity != "" && !slices.Contains(s.identities, identity) && len(s.identities) < maxSuspectIdentities {
		s.identities = append(s.identities, identity)
	}
}

func joinSuspicions(s []Suspicion) string {
	out := ""
	for _, x := range s {
		out += string(x) + ","
	}
	return out
}

// Current is the instance the flow is on now ("" before the first, or
// while lost) and whether it is lost.
func (w *Watcher) Current() (instance string, lost bool) {
	if w.lost {
		return "", true
	}
	return w.curName(), false
}

// Suspect reports whether the flow's last answer was suspect (its
// interception signs are in the WatchSuspect event that began the run).
func (w *Watcher) Suspect() bool { return w.suspect != "" }

// WatchSummary sums up a watched flow.
type WatchSummary struct {
	Start, End time.Time // the watched time: first round to the end of the last round's share
	Rounds     int
	Answered   int // rounds with at least one reply
	Missed     int // rounds without any reply
	Queries    int // queries sent
	Timeouts   int // queries that timed out
	Switches   int
	Losses     int
	LostAfter  int  // k
	Lost       bool // the watch ended while the flow was lost
	// Instances are ordered by time share, largest first.
	Instances []InstanceTime
	NoAnswer  TimeShare // rounds without any reply
	Anonymous TimeShare // replies that named no instance
	Suspect   SuspectTime
	// Longest is the longest stable run: the longest time on one instance
	// without a switch or a loss (missed rounds fewer than LostAfter do not
	// end it); nil when no instance answered.
	Longest *StableRun
}

// Duration is the watched time.
func (s WatchSummary) Duration() time.Duration { return s.End.Sub(s.Start) }

// ChangedEveryRound reports whether no instance answered two rounds in a
// row: the longest stable run is one round, over at least three answered
// rounds (one or two rounds are too few to say the instance changes). A
// server that answers a new identity every round (a per-query name, a
// load balancer spreading queries) has no stable run to speak of.
func (s WatchSummary) ChangedEveryRound() bool {
	return s.Longest != nil && s.Longest.Rounds <= 1 && s.Answered >= 3
}

// TimeShare is the rounds and time of one kind of answer.
type TimeShare struct {
	Rounds int
	Time   time.Duration
	Share  float64 // of the watched time, 0..1
}

// InstanceTime is one instance's part of the watched time (its affinity).
type InstanceTime struct {
	TimeShare
	Identity    measure.Identity // as first seen
	First, Last time.Time
	RTT         RTTPercentiles
}

// SuspectTime is the time suspect answers were seen, with their signs
// (sorted) and the first identities they gave.
type SuspectTime struct {
	TimeShare
	Signs      []Suspicion
	Identities []string
}

// StableRun is a stretch of time on one instance.
type StableRun struct {
	Instance   string
	Start, End time.Time
	Rounds     int
}

// Duration is the run's length.
func (r StableRun) Duration() time.Duration { return r.End.Sub(r.Start) }

// Summary sums up the rounds observed so far. end is when the watch
// stopped: the last round stands for one interval, cut at end when that
// comes first (zero end: the full interval). It may be called at any time;
// it does not change the Watcher.
func (w *Watcher) Summary(end time.Time) WatchSummary {
	s := WatchSummary{
		Start: w.first, Rounds: w.rounds, Answered: w.answered, Missed: w.missed, Queries: w.queries, Timeouts: w.timeouts,
		Switches: w.switches, Losses: w.losses, LostAfter: w.lostAfter, Lost: w.lost,
	}
	if w.rounds == 0 {
		s.End = s.Start
		return s
	}
	// The last round's share, without touching the Watcher.
	var lastSlot *slot
	var lastDur time.Duration
	if w.prev != nil {
		stop := w.prev.at.Add(w.interval)
		if !end.IsZero() && end.Before(stop) {
			stop = end
		}
		if stop.Before(w.prev.at) {
			stop = w.prev.at
		}
		s.End = stop
		lastSlot, lastDur = w.prev.slot, stop.Sub(w.prev.at)
	}
	share := func(sl *slot) TimeShare {
		t := TimeShare{Rounds: sl.rounds, Time: sl.time}
		if sl == lastSlot {
			t.Rounds++
			t.Time += lastDur
		}
		if total := s.Duration(); total > 0 {
			t.Share = float64(t.Time) / float64(total)
		}
		return t
	}
	for _, in := range w.instances {
		s.Instances = append(s.Instances, InstanceTime{
			TimeShare: share(&in.slot), Identity: in.id, First: in.first, Last: in.last, RTT: in.rtt.percentiles(),
		})
	}
	sort.SliceStable(s.Instances, func(i, j int) bool { return s.Instances[i].Time > s.Instances[j].Time })
	s.NoAnswer = share(&w.noAnswer)
	s.Anonymous = share(&w.anonymous)
	s.Suspect = SuspectTime{TimeShare: share(&w.suspects.slot), Signs: slices.Clone(w.suspects.signs), Identities: slices.Clone(w.suspects.identities)}

	longest := w.longest
	if open := w.run; open.inst >= 0 {
		open.end = s.End
		if longest.inst < 0 || open.end.Sub(open.start) > longest.end.Sub(longest.start) {
			longest = open
		}
	}
	if longest.inst >= 0 {
		s.Longest = &StableRun{Instance: longest.name, Start: longest.start, End: longest.end, Rounds: longest.rounds}
	}
	return s
}
