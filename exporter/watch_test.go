package exporter

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/measure"
	"github.com/anycheck/anycheck/watch"
)

// watchRound is a round of a watch test: "A" (instance A answers in 2 ms),
// "B", or "-" (every query timed out).
func watchRound(at time.Time, s string) (catchment.WatchRound, time.Duration) {
	r := catchment.WatchRound{Time: at}
	for _, q := range []string{measure.NameHostnameBind, measure.NameIDServer} {
		a := measure.Answer{Name: q, Status: measure.StatusTimeout, Rcode: -1}
		if s != "-" {
			a = measure.Answer{Name: q, Status: measure.StatusAnswered, TXT: []string{strings.ToLower(s) + ".lab"}, NSID: []byte(s), RTT: 2 * time.Millisecond, Header: measure.Header{Known: true, Class: 3}}
		}
		r.Answers = append(r.Answers, a)
	}
	r.Identity = measure.Summarise(r.Answers)
	if s == "-" {
		return r, 0
	}
	return r, 2 * time.Millisecond
}

// TestWatchMetrics: a watched flow goes A, A, A, B, B, lost (three
// silent rounds), then back on A. After every round — and between them —
// the counters only grow; the time on each instance is the time of the
// rounds before the last (each round stands until the next); the info
// series names the current instance, and none while lost.
func TestWatchMetrics(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	steps := []string{"A", "A", "A", "B", "B", "-", "-", "-", "A", "A"}
	w := catchment.NewWatcher(target, time.Second, nil, 3)
	m := NewWatchMetrics(nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)

	prev := map[string]float64{}
	var last []byte
	collect := func(when string) map[string]float64 {
		fams, text := gather(t, reg)
		now := map[string]float64{}
		for name, mf := range fams {
			for _, s := range samples(mf) {
				k := name + fmt.Sprint(s.labels)
				now[k] = s.value
				if strings.HasSuffix(name, "_total") && s.value < prev[k] {
					t.Errorf("%s: %s went back from %v to %v", when, k, prev[k], s.value)
				}
			}
		}
		for k, v := range prev {
			if _, ok := now[k]; !ok && strings.Contains(k, "_total") {
				t.Errorf("%s: counter %s (%v) is gone", when, k, v)
			}
		}
		last = text
		prev = now
		return now
	}
	key := func(name string, extra ...string) string {
		l := map[string]string{labelTarget: "192.0.2.53", labelSport: "40000"}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return name + fmt.Sprint(l)
	}
	infoOf := func(got map[string]float64) []string {
		var out []string
		for k := range got {
			if strings.HasPrefix(k, nameInstanceInfo) {
				out = append(out, k)
			}
		}
		return out
	}
	for i, s := range steps {
		r, rtt := watchRound(t0.Add(time.Duration(i)*time.Second), s)
		w.Observe(r)
		cur, lost := w.Current()
		sum := w.Summary(r.Time)
		m.Round(watch.Round{Flow: watch.Flow{Target: watch.Target{Input: "192.0.2.53", Addr: netip.AddrPortFrom(target, 53)}, Port: 40000},
			Time: r.Time, Summary: &sum, Instance: cur, Lost: lost, RTT: rtt})
		got := collect(fmt.Sprintf("after round %d (%s)", i, s))
		collect(fmt.Sprintf("between rounds %d and %d", i, i+1)) // nothing moves without a round

		switch i {
		case 4: // A A A B B: A held 3 rounds, B 1 so far (the last stands until the next)
			if got[key(nameInstanceSeconds, labelInstance, "A")] != 3 || got[key(nameInstanceSeconds, labelInstance, "B")] != 1 || got[key(nameSwitches)] != 1 {
				t.Errorf("after B B: %v", got)
			}
			want := key(nameInstanceInfo, labelInstance, "B", labelSite, "", labelNSID, "B", labelHostnameBind, "b.lab")
			if info := infoOf(got); len(info) != 1 || info[0] != want || got[want] != 1 {
				t.Errorf("info %v, want %s", info, want)
			}
			if got[key(nameDNSRTT)] != 0.002 {
				t.Errorf("rtt %v", got[key(nameDNSRTT)])
			}
		case 7: // three silent rounds: lost
			if got[key(nameLost)] != 1 || got[key(nameLostNow)] != 1 || len(infoOf(got)) != 0 || got[key(nameDNSRTT)] != 0 {
				t.Errorf("lost: %v", got)
			}
			if got[key(nameUnidentified, "reason", "no_answer")] != 2 {
				t.Errorf("no answer for %v s, want 2 (the third stands until the next round)", got[key(nameUnidentified, "reason", "no_answer")])
			}
		}
	}
	checkMetrics(t, last)
	got := prev
	sum := w.Summary(t0.Add(time.Duration(len(steps)-1) * time.Second))
	if got[key(nameSwitches)] != float64(sum.Switches) || got[key(nameLost)] != float64(sum.Losses) || got[key(nameRounds)] != 10 || got[key(nameQueries)] != 20 || got[key(nameTimeouts)] != 6 {
		t.Errorf("end: %v; the watcher says %d switches, %d losses", got, sum.Switches, sum.Losses)
	}
	if got[key(nameLostNow)] != 0 || got[key(nameInstanceSeconds, labelInstance, "A")] != 4 {
		t.Errorf("back on A: %v", got)
	}
}
