package report

import (
	"net/netip"
	"time"

	"github.com/anycheck/anycheck/catchment"
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
	Time    string `json:"time"` // RFC 3339, UTC, with fractions
	Type    string `json:"type"` // start, switch, lost, back, suspect, error, path
	Target  string `json:"target"`
	Address string `json:"address"`
	Flow    string `json:"flow"` // local address:port of the flow
	// Instance: the instance reached (start, switch, back), the last one
	// known (lost, error), the identity a suspect answer gave (suspect),
	// the identity the trace's own answers gave (path).
	Instance    string     `json:"instance,omitempty"`
	From        string     `json:"from,omitempty"`          // switch: the instance before
	RTTBeforeMs *float64   `json:"rtt_before_ms,omitempty"` // switch: last round on From
	RTTAfterMs  *float64   `json:"rtt_after_ms,omitempty"`  // this round
	Since       string     `json:"since,omitempty"`         // lost, back: when replies stopped
	Misses      int        `json:"misses,omitempty"`        // lost, back: rounds in a row without a reply
	Suspicions  []string   `json:"suspicions,omitempty"`    // suspect
	Detail      string     `json:"detail,omitempty"`        // error
	Path        *WatchPath `json:"path,omitempty"`          // path
}

// WatchPath is a trace of a watched flow and how it differs from the
// flow's previous trace.
type WatchPath struct {
	Trigger string    `json:"trigger"` // "start" or "switch"
	Trace   TracePath `json:"trace"`
	// Previous is the flow's previous trace; null for the first.
	Previous *TracePath `json:"previous"`
	// PartTTL is the TTL of the last hop both traces share before they
	// differ, Common that hop (its origin is the AS where the new path
	// leaves the old one); 0 and null when they differ from the first hop
	// or do not differ (or there is no previous trace).
	PartTTL int           `json:"part_ttl"`
	Common  *ResponderDTO `json:"common"`
	// Changed are the TTLs at which the traces differ (silent hops are no
	// difference).
	Changed []int `json:"changed_ttls"`
}

// WatchFlow is the summary of one watched flow (one target, one source port).
type WatchFlow struct {
	Input      string  `json:"input"`
	Address    string  `json:"address"`
	Port       int     `json:"port"`
	Transport  string  `json:"transport"` // "udp" (TCP on truncation) or "tcp"
	Source     string  `json:"source"`    // local address:port ("" when no round got as far as a socket)
	Started    string  `json:"started"`   // first round
	Ended      string  `json:"ended"`     // end of the watched time
	DurationMs float64 `json:"duration_ms"`
	IntervalMs float64 `json:"interval_ms"`
	Rounds     int     `json:"rounds"`
	Answered   int     `json:"answered"` // rounds with a reply
	Missed     int     `json:"missed"`   // rounds without any reply
	Queries    int     `json:"queries"`  // queries sent
	Timeouts   int     `json:"timeouts"` // queries that timed out
	Switches   int     `json:"switches"`
	Losses     int     `json:"losses"`
	LostAfter  int     `json:"lost_after"` // k: missed rounds in a row that make a loss
	Lost       bool    `json:"lost"`       // the watch ended during a loss
	// Instances are the instances seen with their share of the watched
	// time (affinity), largest first.
	Instances []WatchInstance `json:"instances"`
	NoAnswer  WatchShare      `json:"no_answer"`
	Anonymous WatchShare      `json:"anonymous"` // replies naming no instance
	Suspect   WatchSuspect    `json:"suspect"`
	// LongestStable is the longest time on one instance without a switch
	// or a loss; null when no instance answered.
	LongestStable *WatchRun `json:"longest_stable"`
	// Events are the flow's events, the last MaxWatchEvents of them;
	// EventsOmitted counts earlier ones left out (-o jsonl streams all).
	Events        []WatchEvent `json:"events"`
	EventsOmitted int          `json:"events_omitted"`
}

// WatchShare is the rounds and time of one kind of answer.
type WatchShare struct {
	Rounds int     `json:"rounds"`
	TimeMs float64 `json:"time_ms"`
	Share  float64 `json:"share"` // of the watched time, 0..1
}

// WatchInstance is one instance's part of the watched time.
type WatchInstance struct {
	Instance       string `json:"instance"`
	InstanceSource string `json:"instance_source"`
	NSID           string `json:"nsid,omitempty"`
	HostnameBind   string `json:"hostname_bind,omitempty"`
	IDServer       string `json:"id_server,omitempty"`
	WatchShare
	FirstSeen string         `json:"first_seen"`
	LastSeen  string         `json:"last_seen"`
	RTT       *WatchRTTStats `json:"rtt_ms"` // null when no reply carried an RTT
}

// WatchRTTStats are nearest-rank RTT percentiles in milliseconds.
type WatchRTTStats struct {
	N   int     `json:"n"`
	Min float64 `json:"min"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// WatchSuspect is the time answers with signs of interception were seen.
type WatchSuspect struct {
	WatchShare
	Suspicions []string `json:"suspicions"`
	Identities []string `json:"identities"`
}

// WatchRun is a stretch of time on one instance.
type WatchRun struct {
	Instance   string  `json:"instance"`
	Start      string  `json:"start"`
	End        string  `json:"end"`
	DurationMs float64 `json:"duration_ms"`
	Rounds     int     `json:"rounds"`
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
	Started  time.Time // when the watch started (for a flow without rounds)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (id WatchFlowID) source() string {
	if !id.Source.IsValid() {
		return ""
	}
	return id.Source.String()
}

// FromWatchEvent converts one detector event.
func FromWatchEvent(id WatchFlowID, e catchment.WatchEvent) WatchEvent {
	d := WatchEvent{
		Time:        stamp(e.Time),
		Type:        string(e.Type),
		Target:      id.Input,
		Address:     id.Target.Addr().String(),
		Flow:        id.source(),
		Instance:    e.Instance,
		From:        e.From,
		RTTBeforeMs: optMs(e.RTTBefore),
		RTTAfterMs:  optMs(e.RTTAfter),
		Since:       stamp(e.Since),
		Misses:      e.Misses,
		Detail:      e.Detail,
	}
	for _, s := range e.Suspicions {
		d.Suspicions = append(d.Suspicions, string(s))
	}
	return d
}

// NewWatchPathEvent is the event of a trace of a watched flow: the trace,
// the flow's previous trace (nil for the first) and how they differ
// (catchment.ComparePaths; ignored without a previous trace).
func NewWatchPathEvent(id WatchFlowID, trigger string, at time.Time, cur TracePath, prev *TracePath, c catchment.PathChange, compared bool) WatchEvent {
	p := &WatchPath{Trigger: trigger, Trace: cur, Previous: prev, Changed: []int{}}
	if prev != nil && compared {
		for _, h := range c.Changed {
			p.Changed = append(p.Changed, h.TTL)
		}
		if c.Part > 0 {
			for _, h := range cur.Hops {
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
	d := WatchEvent{Time: stamp(at), Type: WatchEventPath, Target: id.Input, Address: id.Target.Addr().String(), Flow: id.source(), Path: p}
	if cur.Instance != nil {
		d.Instance = cur.Instance.Instance
	}
	return d
}

func fromShare(s catchment.TimeShare) WatchShare {
	return WatchShare{Rounds: s.Rounds, TimeMs: Ms(s.Time), Share: roundShare(s.Share)}
}

// roundShare keeps six decimals: a share is not measured finer than that.
func roundShare(v float64) float64 {
	return float64(int64(v*1e6+0.5)) / 1e6
}

// FromWatchSummary converts one flow's summary and its events (the last
// MaxWatchEvents are kept; omitted counts those left out before).
func FromWatchSummary(id WatchFlowID, s catchment.WatchSummary, events []WatchEvent, omitted int) WatchFlow {
	f := WatchFlow{
		Input:      id.Input,
		Address:    id.Target.Addr().String(),
		Port:       int(id.Target.Port()),
		Transport:  "udp",
		Source:     id.source(),
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
	if id.TCP {
		f.Transport = "tcp"
	}
	for _, x := range s.Suspect.Signs {
		f.Suspect.Suspicions = append(f.Suspect.Suspicions, string(x))
	}
	for _, in := range s.Instances {
		w := WatchInstance{
			Instance:       in.Identity.Instance,
			InstanceSource: in.Identity.Source,
			NSID:           in.Identity.NSID,
			HostnameBind:   in.Identity.HostnameBind,
			IDServer:       in.Identity.IDServer,
			WatchShare:     fromShare(in.TimeShare),
			FirstSeen:      stamp(in.First),
			LastSeen:       stamp(in.Last),
		}
		if p := in.RTT; p.N > 0 {
			w.RTT = &WatchRTTStats{N: p.N, Min: Ms(p.Min), P50: Ms(p.P50), P90: Ms(p.P90), P99: Ms(p.P99), Max: Ms(p.Max)}
		}
		f.Instances = append(f.Instances, w)
	}
	if r := s.Longest; r != nil {
		f.LongestStable = &WatchRun{Instance: r.Instance, Start: stamp(r.Start), End: stamp(r.End), DurationMs: Ms(r.Duration()), Rounds: r.Rounds}
	}
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

// EventRecord is the streaming line for one watch event.
func (d *Document) EventRecord(e WatchEvent) Record {
	return Record{Schema: d.Schema, Kind: d.Kind, Type: RecordEvent, Target: e.Target, Event: &e}
}

// FlowInstances counts the flows of one target by the instance each spent
// most of its watched time on (unidentified: flows with none); more than
// one instance is a catchment split by flow.
func FlowInstances(flows []WatchFlow) (main map[string]int, unidentified int) {
	main = map[string]int{}
	for _, f := range flows {
		if len(f.Instances) == 0 {
			unidentified++
			continue
		}
		main[f.Instances[0].Instance]++
	}
	return main, unidentified
}
