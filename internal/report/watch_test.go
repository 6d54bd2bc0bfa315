package report_test

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/internal/report/reporttest"
	"github.com/anycheck/anycheck/measure"
)

var watchID = report.WatchFlowID{Input: "192.0.2.53", Target: netip.MustParseAddrPort("192.0.2.53:53"), Source: netip.MustParseAddrPort("198.51.100.10:40429"), Interval: time.Second}

func eventLine(t *testing.T, e report.WatchEvent) []byte {
	t.Helper()
	d := report.New(report.KindWatch, report.Tool{Name: "anycheck", Version: "test"}, time.Unix(0, 0), "")
	b, err := json.Marshal(d.WithVantage(d.EventRecord(e)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The schema holds each event type to the fields it needs.
func TestWatchEventSchema(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	good := report.FromWatchEvent(watchID, catchment.WatchEvent{Type: catchment.WatchSwitch, Time: at, From: "a", Instance: "b", RTTBefore: time.Millisecond, RTTAfter: 2 * time.Millisecond})
	if err := reporttest.Validate(eventLine(t, good)); err != nil {
		t.Fatalf("a switch event: %v", err)
	}
	b := report.InstanceDTO{Name: "b"}
	for name, e := range map[string]report.WatchEvent{
		"switch without from": {Time: good.Time, Type: "switch", Input: "x", Target: "192.0.2.53", Flow: good.Flow, Instance: b},
		"lost without since":  {Time: good.Time, Type: "lost", Input: "x", Target: "192.0.2.53", Flow: good.Flow, Misses: 3},
		"unknown type":        {Time: good.Time, Type: "flap", Input: "x", Target: "192.0.2.53", Flow: good.Flow},
		"unknown suspicion":   {Time: good.Time, Type: "suspect", Input: "x", Target: "192.0.2.53", Flow: good.Flow, Suspicions: []string{"weird"}},
		"path without path":   {Time: good.Time, Type: "path", Input: "x", Target: "192.0.2.53", Flow: good.Flow},
	} {
		if err := reporttest.Validate(eventLine(t, e)); err == nil {
			t.Errorf("%s: the schema accepted it", name)
		}
	}
}

// A summary keeps the last MaxWatchEvents events and counts the rest.
func TestWatchSummaryKeepsLastEvents(t *testing.T) {
	var evs []report.WatchEvent
	for i := range report.MaxWatchEvents + 5 {
		evs = append(evs, report.WatchEvent{Type: "switch", Misses: i})
	}
	f := report.FromWatchSummary(watchID, catchment.WatchSummary{}, nil, measure.Identity{}, evs, 7)
	if len(f.Events) != report.MaxWatchEvents || f.EventsOmitted != 12 || f.Events[0].Misses != 5 {
		t.Errorf("kept %d events (first %d), omitted %d", len(f.Events), f.Events[0].Misses, f.EventsOmitted)
	}
	if f.Instances == nil || f.Answers == nil || f.Suspect.Suspicions == nil || f.Suspect.Identities == nil {
		t.Errorf("empty lists must be [] in JSON: %+v", f)
	}
}

// An identity that changes every round is in the JSON summary, not only in
// the text: changed_every_round, true for a flow that never saw one
// instance two rounds in a row, false otherwise.
func TestWatchSummaryChangedEveryRound(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rounds int
		want   bool
	}{{1, true}, {4, false}} {
		s := catchment.WatchSummary{Start: at, End: at.Add(10 * time.Second), Rounds: 10, Answered: 10, Switches: 9,
			Longest: &catchment.StableRun{Instance: "X3", Start: at.Add(3 * time.Second), End: at.Add(time.Duration(3+tc.rounds) * time.Second), Rounds: tc.rounds}}
		f := report.FromWatchSummary(watchID, s, nil, measure.Identity{}, nil, 0)
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if got, ok := m["changed_every_round"].(bool); !ok || got != tc.want {
			t.Errorf("longest run of %d rounds: changed_every_round %v (%v), want %v", tc.rounds, m["changed_every_round"], ok, tc.want)
		}
	}
}
