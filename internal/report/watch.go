package report

import (
	"net/netip"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/measure"
)

// KindWatch is the document kind of `anycheck watch`.
const KindWatch = "watch"

// RecordEvent is the JSONL record of one watch event, written as it happens.
const RecordEvent = "event"

// Watch event types beyond the detector's (catchment.WatchEvent): a path
// event carries a trace of the flow (at the start and after every switch).
const WatchEventPath = "path"

// WatchEvent is one event of a watched flow on the wire.
type WatchEvent struct {
	Time   string  `json:"time" schema:"time"`                                           // when the round (or trace) that showed it started
	Type   string  `json:"type" schema:"enum=start|switch|lost|back|suspect|error|path"` // what happened
	Input  string  `json:"input"`                                                        // the target as the user wrote it
	Target string  `json:"target" schema:"ip"`                                           // the address watched
	Flow   FlowDTO `json:"flow"`                                                         // the watched flow: its bound source address and port
	// Instance: the instance reached (start, switch, back), the last one
	// known (lost, error), the identity a suspect answer gave (suspect),
	// the identity the trace's own answers gave (path); its name is null
	// when there is none.
	Instance    InstanceDTO  `json:"instance"`
	From        *InstanceDTO `json:"from,omitempty"`                              // switch: the instance before
	RTTBeforeMs *float64     `json:"rtt_before_ms,omitempty"`                     // switch: last round on From
	RTTAfterMs  *float64     `json:"rtt_after_ms,omitempty"`                      // this round
	Since       string       `json:"since,omitempty" schema:"time"`               // lost, back: when replies stopped
	Misses      int          `json:"misses,omitempty" schema:"min=1"`             // lost, back: rounds in a row without a reply
	Suspicions  []string     `json:"suspicions,omitempty" schema:"ref=suspicion"` // suspect: the answers' signs
	Detail      string       `json:"detail,omitempty"`                            // error: why the queries could not be sent
	Path        *WatchPath   `json:"path,omitempty"`                              // path: the trace and how it differs from the previous one
}

// WatchPath is a trace of a watched flow and how it differs from the
// flow's previous trace.
type WatchPath struct {
	Trigger string    `json:"trigger" schema:"enum=start|switch"` // "start" or "switch"
	Trace   TraceFlow `json:"trace"`                              // the trace of the watched flow
	// Previous is the flow's previous trace; null for the first.
	Previous *TraceFlow `json:"previous"`
	// PartTTL is the TTL of the last hop both traces share before they
	// differ, Common that hop (its origin is the AS where the new path
	// leaves the old one); 0 and null when they differ from the first hop
	// or do not differ (or there is no previous trace).
	PartTTL int           `json:"part_ttl"`
	Common  *ResponderDTO `json:"common"` // the hop at part_ttl; null when none
	// Changed are the TTLs at which the traces differ (silent hops are no
	// difference).
	Changed []int `json:"changed_ttls"`
}

// WatchTarget is one target of `anycheck watch`: every flow watched
// towards it.
type WatchTarget struct {
	Input     string      `json:"input"`                           // the target as the user wrote it
	Target    string      `json:"target" schema:"ip"`              // the address watched
	Port      int         `json:"port" schema:"min=1,max=65535"`   // the DNS port
	Transport string      `json:"transport" schema:"enum=udp|tcp"` // "udp" (TCP on truncation) or "tcp"
	Flows     []WatchFlow `json:"flows"`                           // one per source port (--flows N)
	// FlowSummary is how several flows spread over instances, each flow
	// counted by the instance it spent most of its time on; absent for one
	// flow.
	FlowSummary *IDFlowSplit `json:"flow_summary,omitempty"`
}

// WatchFlow is the summary of one watched flow (one target, one source port).
type WatchFlow struct {
	Flow FlowDTO `json:"flow"` // the flow: its bound source address and port (0 when no round got as far as a socket)
	// Instance is the instance the flow was on at the end (the last round
	// that named one); its name is null when none did.
	Instance InstanceDTO `json:"instance"`
	// Answers are the last round's answers.
	Answers    []AnswerDTO `json:"answers"`
	Started    string      `json:"started" schema:"time"` // first round
	Ended      string      `json:"ended" schema:"time"`   // end of the watched time
	DurationMs float64     `json:"duration_ms"`           // the watched time
	IntervalMs float64     `json:"interval_ms"`           // the time between rounds (--interval)
	Rounds     int         `json:"rounds"`                // rounds of queries made
	Answered   int         `json:"answered"`              // rounds with a reply
	Missed     int         `json:"missed"`                // rounds without any reply
	Queries    int         `json:"queries"`               // queries sent
	Timeouts   int         `json:"timeouts"`              // queries that timed out
	Switches   int         `json:"switches"`              // times another instance answered
	Losses     int         `json:"losses"`                // times lost_after rounds in a row went unanswered
	LostAfter  int         `json:"lost_after"`            // k: missed rounds in a row that make a loss
	Lost       bool        `json:"lost"`                  // the watch ended during a loss
	// Instances are the instances seen with their share of the watched
	// time (affinity), largest first.
	Instances []WatchInstance `json:"instances"`
	NoAnswer  WatchShare      `json:"no_answer"` // rounds without any reply
	Anonymous WatchShare      `json:"anonymous"` // replies naming no instance
	Suspect   WatchSuspect    `json:"suspect"`   // replies with signs that something other than the service answered
	// LongestStable is the longest time on one instance without a switch
	// or a loss; null when no instance answered.
	LongestStable *WatchRun `json:"longest_stable"`
	// ChangedEveryRound is true when no instance answered two rounds in a
	// row (at least three rounds answered): the flow has no stable run,
	// and longest_stable is one round of one of its identities.
	ChangedEveryRound bool `json:"changed_every_round"`
	// Events are the flow's events, the last MaxWatchEvents of them;
	// EventsOmitted counts earlier ones left out (-o jsonl streams all).
	Events        []WatchEvent `json:"events"`
	EventsOmitted int          `json:"events_omitted"` // earlier events left out of events
}

// WatchShare is the rounds and time of one kind of answer.
type WatchShare struct {
	Rounds int     `json:"rounds"`  // rounds that saw it
	TimeMs float64 `json:"time_ms"` // the time those rounds stand for: each until the next round
	Share  float64 `json:"share"`   // of the watched time, 0..1
}

// WatchInstance is one instance's part of the watched time.
type WatchInstance struct {
	Instance InstanceDTO `json:"instance"` // as first seen
	WatchShare
	FirstSeen string         `json:"first_seen" schema:"time"` // the first round that reached it
	LastSeen  string         `json:"last_seen" schema:"time"`  // the last one
	RTT       *WatchRTTStats `json:"rtt_ms"`                   // null when no reply carried an RTT
}

// WatchRTTStats are nearest-rank RTT percentiles in milliseconds.
type WatchRTTStats struct {
	N   int     `json:"n"`   // RTTs counted
	Min float64 `json:"min"` // the smallest
	P50 float64 `json:"p50"` // the median
	P90 float64 `json:"p90"` // the 90th percentile
	P99 float64 `json:"p99"` // the 99th percentile
	Max float64 `json:"max"` // the largest
}

// WatchSuspect is the time answers with signs of interception were seen.
type WatchSuspect struct {
	WatchShare
	Suspicions []string `json:"suspicions" schema:"ref=suspicion"` // the signs seen
	Identities []string `json:"identities"`                        // what the suspect answers named (at most a few)
}

// WatchRun is a stretch of time on one instance.
type WatchRun struct {
	Instance   string  `json:"instance"`            // the instance's name
	Start      string  `json:"start" schema:"time"` // the first round on it
	End        string  `json:"end" schema:"time"`   // when the stretch ended (a switch, a loss, or the end)
	DurationMs float64 `json:"duration_ms"`         // its length
	Rounds     int     `json:"rounds"`              // its rounds
}

// MaxWatchEvents bounds the events a summary keeps per flow: a watch of
// days that flaps every round must not grow without end.
const MaxWatchEvents = 1000

// WatchFlowID names a watched flow in its events and summary.
type WatchFlowID struct {
	Input    string
	Target   netip.AddrPort
	TCP      bool
	Source   netip.AddrPort // invalid until known
	Interval time.Duration
	Started  time.Time        // when the watch started (for a flow without rounds)
	Sites    *catchment.Sites // places the instances' names; nil: none
}

func stamp(t time.Time) string { return Time(t) }

func (id WatchFlowID) flow() FlowDTO {
	proto := "udp"
	if id.TCP {
		proto = "tcp"
	}
	return flowOf(proto, id.Source, id.Target)
}

// instance is the DTO of an instance the watcher names: its identity, or
// its name alone when the event carries no identity.
func (id WatchFlowID) instance(name string, ident measure.Identity) InstanceDTO {
	if ident.Instance != name {
		ident = measure.Identity{Instance: name}
	}
	return InstanceOf(ident, id.Target.Addr(), id.Sites)
}

// FromWatchEvent converts one detector event.
func FromWatchEvent(id WatchFlowID, e catchment.WatchEvent) WatchEvent {
	d := WatchEvent{
		Time:        stamp(e.Time),
		Type:        string(e.Type),
		Input:       id.Input,
		Target:      id.Target.Addr().String(),
		Flow:        id.flow(),
		Instance:    id.instance(e.Instance, e.Identity),
		RTTBeforeMs: optMs(e.RTTBefore),
		RTTAfterMs:  optMs(e.RTTAfter),
		Since:       stamp(e.Since),
		Misses:      e.Misses,
		Detail:      e.Detail,
	}
	if e.From != "" {
		from := id.instance(e.From, e.FromIdentity)
		d.From = &from
	}
	for _, s := range e.Suspicions {
		d.Suspicions = append(d.Suspicions, string(s))
	}
	return d
}

// NewWatchPathEvent is the event of a trace of a watched flow: the trace,
// the flow's previous trace (nil for the first) and how they differ
// (catchment.ComparePaths; ignored without a previous trace).
func NewWatchPathEvent(id WatchFlowID, trigger string, at time.Time, cur TraceFlow, prev *TraceFlow, c catchment.PathChange, compared bool) WatchEvent {
	p := &WatchPath{Trigger: trigger, Trace: cur, Previous: prev, Changed: []int{}}
	if prev != nil && compared {
		for _, h := range c.Changed {
			p.Changed = append(p.Changed, h.TTL)
		}
		if c.Part > 0 {
			for _, h := range cur.Path.Hops {
				if h.TTL != c.Part {
					continue
				}
				for _, r := range h.Responders {
					if r.Address == c.Common.Addr.String() {
						r := r
						p.PartTTL, p.Common = c.Part, &r
					}
				}
			}
		}
	}
	return WatchEvent{Time: stamp(at), Type: WatchEventPath, Input: id.Input, Target: id.Target.Addr().String(), Flow: id.flow(), Instance: cur.Instance, Path: p}
}

func fromShare(s catchment.TimeShare) WatchShare {
	return WatchShare{Rounds: s.Rounds, TimeMs: Ms(s.Time), Share: roundShare(s.Share)}
}

// roundShare keeps six decimals: a share is not measured finer than that.
func roundShare(v float64) float64 {
	return float64(int64(v*1e6+0.5)) / 1e6
}

// FromWatchSummary converts one flow's summary, its last round's answers
// and the identity of its last round that named an instance, and its
// events (the last MaxWatchEvents are kept; omitted counts those left out
// before).
func FromWatchSummary(id WatchFlowID, s catchment.WatchSummary, last []measure.Answer, current measure.Identity, events []WatchEvent, omitted int) WatchFlow {
	f := WatchFlow{
		Flow:       id.flow(),
		Instance:   InstanceOf(current, id.Target.Addr(), id.Sites),
		Answers:    []AnswerDTO{},
		Started:    stamp(s.Start),
		Ended:      stamp(s.End),
		DurationMs: Ms(s.Duration()),
		IntervalMs: Ms(id.Interval),
		Rounds:     s.Rounds,
		Answered:   s.Answered,
		Missed:     s.Missed,
		Queries:    s.Queries,
		Timeouts:   s.Timeouts,
		Switches:   s.Switches,
		Losses:     s.Losses,
		LostAfter:  s.LostAfter,
		Lost:       s.Lost,
		Instances:  []WatchInstance{},
		NoAnswer:   fromShare(s.NoAnswer),
		Anonymous:  fromShare(s.Anonymous),
		Suspect: WatchSuspect{
			WatchShare: fromShare(s.Suspect.TimeShare),
			Suspicions: []string{},
			Identities: append([]string{}, s.Suspect.Identities...),
		},
		Events: []WatchEvent{},
	}
	for _, a := range last {
		f.Answers = append(f.Answers, FromAnswer(a))
	}
	for _, x := range s.Suspect.Signs {
		f.Suspect.Suspicions = append(f.Suspect.Suspicions, string(x))
	}
	for _, in := range s.Instances {
		w := WatchInstance{
			Instance:   InstanceOf(in.Identity, id.Target.Addr(), id.Sites),
			WatchShare: fromShare(in.TimeShare),
			FirstSeen:  stamp(in.First),
			LastSeen:   stamp(in.Last),
		}
		if p := in.RTT; p.N > 0 {
			w.RTT = &WatchRTTStats{N: p.N, Min: Ms(p.Min), P50: Ms(p.P50), P90: Ms(p.P90), P99: Ms(p.P99), Max: Ms(p.Max)}
		}
		f.Instances = append(f.Instances, w)
	}
	if r := s.Longest; r != nil {
		f.LongestStable = &WatchRun{Instance: r.Instance, Start: stamp(r.Start), End: stamp(r.End), DurationMs: Ms(r.Duration()), Rounds: r.Rounds}
	}
	f.ChangedEveryRound = s.ChangedEveryRound()
	if len(events) > MaxWatchEvents {
		omitted += len(events) - MaxWatchEvents
		events = events[len(events)-MaxWatchEvents:]
	}
	if s.Rounds == 0 {
		f.Started, f.Ended = stamp(id.Started), stamp(id.Started)
	}
	f.Events = append(f.Events, events...)
	f.EventsOmitted = omitted
	return f
}

// NewWatchTarget groups a target's watched flows into its result, with
// how they spread over instances (catchment.SplitOf over each flow's main
// instance, given by the caller) when there are several.
func NewWatchTarget(id WatchFlowID, flows []WatchFlow, split *catchment.Split) WatchTarget {
	t := WatchTarget{Input: id.Input, Target: id.Target.Addr().String(), Port: int(id.Target.Port()), Transport: id.flow().Protocol, Flows: flows}
	if split != nil {
		t.FlowSummary = FromSplit(len(flows), *split)
	}
	return t
}

// EventRecord is the streaming line for one watch event.
func (d *Document) EventRecord(e WatchEvent) Record {
	r := d.record(RecordEvent)
	r.Target, r.Event = e.Target, &e
	return r
}
