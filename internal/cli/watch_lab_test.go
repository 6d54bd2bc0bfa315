package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/internal/report/reporttest"
)

// watchProc is an `anycheck watch -o jsonl` running in a lab node, its
// records read as they are streamed.
type watchProc struct {
	cmd  *exec.Cmd
	recs chan report.Record
	mu   sync.Mutex
	raw  []string // every line, for the schema check and failure messages
	done chan struct{}
	// pending are events read but not yet asked for (the two targets'
	// events interleave).
	pending []report.WatchEvent
}

func startWatch(t *testing.T, ctx context.Context, ac *lab.Anycast, node string, args ...string) *watchProc {
	t.Helper()
	cmd := ac.Command(ctx, node, lab.Binary(t), append([]string{"watch", "-o", "jsonl"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &watchProc{cmd: cmd, recs: make(chan report.Record, 1000), done: make(chan struct{})}
	go w.read(t, stdout)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("watch stderr:\n%s", stderr.String())
		}
	})
	return w
}

func (w *watchProc) read(t *testing.T, r io.Reader) {
	defer close(w.done)
	defer close(w.recs)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		w.mu.Lock()
		w.raw = append(w.raw, line)
		w.mu.Unlock()
		var rec report.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("watch wrote a line that is not JSON: %q", line)
			continue
		}
		w.recs <- rec
	}
}

func (w *watchProc) lines() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.raw, "\n")
}

// next waits (bounded) for the first event that match accepts; events
// it passes over stay pending for later calls.
func (w *watchProc) next(t *testing.T, what string, timeout time.Duration, match func(report.WatchEvent) bool) report.WatchEvent {
	t.Helper()
	for i, e := range w.pending {
		if match(e) {
			w.pending = slices.Delete(w.pending, i, i+1)
			return e
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case rec, ok := <-w.recs:
			if !ok {
				t.Fatalf("watch ended before %s; output:\n%s", what, w.lines())
			}
			if rec.Type != report.RecordEvent {
				continue
			}
			if match(*rec.Event) {
				return *rec.Event
			}
			w.pending = append(w.pending, *rec.Event)
		case <-deadline:
			t.Fatalf("no %s within %v; output so far:\n%s", what, timeout, w.lines())
		}
	}
}

func parseStamp(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("event time %q: %v", s, err)
	}
	return at
}

// expectedChange is the TTLs where the lab's routing says two paths differ.
func expectedChange(before, after []lab.Hop) []int {
	var out []int
	for i := range max(len(before), len(after)) {
		switch {
		case i >= len(before) || i >= len(after):
			out = append(out, i+1)
		case !slices.Equal(before[i].Addrs, after[i].Addrs):
			out = append(out, i+1)
		}
	}
	return out
}

// checkPathEvent holds a --trace path event to the lab's routing: the TTLs
// that changed, the hops on each side, and the hop (and AS) where the new
// path leaves the old one.
func checkPathEvent(t *testing.T, name string, e report.WatchEvent, before, after []lab.Hop, partAS uint32) {
	t.Helper()
	p := e.Path
	if p == nil || p.Previous == nil {
		t.Fatalf("%s: the path event carries no previous trace: %+v", name, e)
	}
	want := expectedChange(before, after)
	if !slices.Equal(p.Changed, want) {
		t.Errorf("%s: changed ttls %v, the lab's routing changes %v", name, p.Changed, want)
	}
	for _, ttl := range p.Changed {
		for side, hops := range map[string][]report.HopDTO{"old": p.Previous.Path.Hops, "new": p.Trace.Path.Hops} {
			exp := before
			if side == "new" {
				exp = after
			}
			for _, h := range hops {
				if h.TTL != ttl {
					continue
				}
				for _, r := range h.Responders {
					if ttl > len(exp) || !exp[ttl-1].Has(netip.MustParseAddr(r.Address)) {
						t.Errorf("%s: %s hop %d answered from %s; the lab's routing says %v", name, side, ttl, r.Address, exp)
					}
				}
			}
		}
	}
	if len(want) == 0 || p.PartTTL < 1 || p.PartTTL != want[0]-1 || p.Common == nil || !after[p.PartTTL-1].Has(netip.MustParseAddr(p.Common.Address)) {
		t.Errorf("%s: the paths part after ttl %d at %+v, want the ttl before %v", name, p.PartTTL, p.Common, want)
	} else if p.Common.Origin == nil || !slices.Contains(p.Common.Origin.ASNs, partAS) {
		t.Errorf("%s: the paths part in %+v, want AS%d", name, p.Common.Origin, partAS)
	}
}

// TestLabWatchFailover: watch c1 at a short interval over IPv4 and IPv6
// with --trace; withdraw instance A's route (BIRD disable of ra's session
// to r1), then restore it. Each target reports exactly one switch to B and
// one back, each within one interval of the routing change; the path
// events name the hops the lab's routing predicts; the summary's counts
// and shares agree with the events.
func TestLabWatchFailover(t *testing.T) {
	ac := lab.StartAnycast(t)
	whoisAddr, _, _ := startLabWhois(t, ac)
	const interval = 300 * time.Millisecond
	slack := 700 * time.Millisecond // a loaded machine's scheduling, the trace after a switch
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	targets := map[string]lab.Family{ac.ServiceV4.String(): lab.IPv4, ac.ServiceV6.String(): lab.IPv6}
	beforePath := map[string][]lab.Hop{}
	for tg, f := range targets {
		beforePath[tg] = ac.ExpectedPath("c1", f)
	}
	w := startWatch(t, ctx, ac, "c1", "--interval", interval.String(), "--trace", "-n", "--no-cache",
		"--whois-server", whoisAddr, ac.ServiceV4.String(), ac.ServiceV6.String())

	// The start: instance A on both targets, and a trace of each flow.
	startedAt := map[string]time.Time{}
	for range 2 {
		e := w.next(t, "a start event", 20*time.Second, func(e report.WatchEvent) bool { return e.Type == "start" })
		if string(e.Instance.Name) != ac.A.NSID {
			t.Fatalf("%s starts on %q, want %s (%s)", e.Target, e.Instance.Name, ac.A.Node, ac.A.NSID)
		}
		startedAt[e.Target] = parseStamp(t, e.Time)
	}
	for range 2 {
		e := w.next(t, "the first path event", 20*time.Second, func(e report.WatchEvent) bool { return e.Type == "path" })
		if e.Path.Previous != nil || e.Path.Trigger != "start" || !e.Path.Trace.Path.Reached || len(e.Path.Trace.Path.Hops) != len(beforePath[e.Target]) {
			t.Errorf("%s: first trace %+v, want %d hops to A", e.Target, e.Path.Trace.Path.Hops, len(beforePath[e.Target]))
		}
	}
	time.Sleep(3 * interval)

	// Withdraw A's route towards c1.
	stopAt := time.Now()
	if err := ac.StopBGP(ac.A.Origin, "r1"); err != nil {
		t.Fatal(err)
	}
	if in, err := ac.WaitInstance(ctx, "c1"); err != nil || in.Node != ac.B.Node {
		t.Fatalf("the lab did not move c1 to B: %v", err)
	}
	movedAt := time.Now()
	afterPath := map[string][]lab.Hop{}
	for tg, f := range targets {
		afterPath[tg] = ac.ExpectedPath("c1", f)
	}
	// How late each switch came after the lab's route had moved (beyond
	// one interval and the slack), judged with the summary's unanswered
	// rounds: a query in flight while the routes converge (the reverse
	// path too) can lose its answer, and its round waits out --timeout.
	type lateness struct {
		what            string
		by              time.Duration
		from, to, event time.Time
	}
	late := map[string][]lateness{}
	switchAt := map[string]time.Time{}
	for range 2 {
		e := w.next(t, "the switch to B", 10*time.Second, func(e report.WatchEvent) bool { return e.Type != "path" })
		if e.Type != "switch" || e.From == nil || string(e.From.Name) != ac.A.NSID || string(e.Instance.Name) != ac.B.NSID {
			t.Fatalf("after the withdrawal: %+v, want a switch %s → %s", e, ac.A.NSID, ac.B.NSID)
		}
		at := parseStamp(t, e.Time)
		if at.Before(stopAt.Add(-50 * time.Millisecond)) {
			t.Errorf("%s: switch at %s, before the route changed at %s", e.Target, at.Format("15:04:05.000"), stopAt.Format("15:04:05.000"))
		}
		late[e.Target] = append(late[e.Target], lateness{"switch", at.Sub(movedAt.Add(interval + slack)), stopAt, movedAt, at})
		if e.RTTBeforeMs == nil || e.RTTAfterMs == nil {
			t.Errorf("%s: switch without RTTs: %+v", e.Target, e)
		}
		switchAt[e.Target] = at
	}
	for range 2 {
		e := w.next(t, "the path after the switch", 20*time.Second, func(e report.WatchEvent) bool { return e.Type == "path" })
		checkPathEvent(t, e.Target+" failover", e, beforePath[e.Target], afterPath[e.Target], 64500)
	}
	time.Sleep(3 * interval)

	// Restore it: back to A.
	startAt := time.Now()
	if err := ac.StartBGP(ac.A.Origin, "r1"); err != nil {
		t.Fatal(err)
	}
	if in, err := ac.WaitInstance(ctx, "c1"); err != nil || in.Node != ac.A.Node {
		t.Fatalf("the lab did not move c1 back to A: %v", err)
	}
	backAt := time.Now()
	returnAt := map[string]time.Time{}
	for range 2 {
		e := w.next(t, "the switch back to A", 10*time.Second, func(e report.WatchEvent) bool { return e.Type != "path" })
		if e.Type != "switch" || e.From == nil || string(e.From.Name) != ac.B.NSID || string(e.Instance.Name) != ac.A.NSID {
			t.Fatalf("after the restore: %+v, want a switch %s → %s", e, ac.B.NSID, ac.A.NSID)
		}
		at := parseStamp(t, e.Time)
		if at.Before(startAt.Add(-50 * time.Millisecond)) {
			t.Errorf("%s: switch back at %s, before the route changed at %s", e.Target, at.Format("15:04:05.000"), startAt.Format("15:04:05.000"))
		}
		late[e.Target] = append(late[e.Target], lateness{"switch back", at.Sub(backAt.Add(interval + slack)), startAt, backAt, at})
		returnAt[e.Target] = at
	}
	for range 2 {
		e := w.next(t, "the path after the switch back", 20*time.Second, func(e report.WatchEvent) bool { return e.Type == "path" })
		checkPathEvent(t, e.Target+" restore", e, afterPath[e.Target], beforePath[e.Target], 64500)
	}
	time.Sleep(2 * interval)

	// Ctrl-C ends the open-ended watch: the summary, exit 3 (switches).
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Input string
		report.WatchFlow
	}
	var summaries []summary
	for _, e := range w.pending {
		t.Errorf("an unexpected event: %+v", e)
	}
	for rec := range w.recs {
		switch rec.Type {
		case report.RecordEvent:
			t.Errorf("an event after the restore: %+v", *rec.Event)
		case report.RecordResult:
			b, _ := json.Marshal(rec.Result)
			var tg report.WatchTarget
			if err := json.Unmarshal(b, &tg); err != nil {
				t.Fatal(err)
			}
			for _, f := range tg.Flows {
				summaries = append(summaries, summary{tg.Input, f})
			}
		}
	}
	<-w.done
	err := w.cmd.Wait()
	if code := exitStatus(t, err); code != 3 {
		t.Errorf("exit %d, want 3 (switches seen)", code)
	}
	reporttest.Check(t, []byte(w.lines()+"\n"), true)
	if len(summaries) != 2 {
		t.Fatalf("want a summary per target, got %d:\n%s", len(summaries), w.lines())
	}
	for _, f := range summaries {
		if f.Switches != 2 || f.Losses != 0 || f.Lost {
			t.Errorf("%s: %d switches, %d losses; want 2 and 0", f.Input, f.Switches, f.Losses)
		}
		// B held from the switch to the switch back (time shares are
		// sample-and-hold: each round stands until the next).
		onB := returnAt[f.Input].Sub(switchAt[f.Input])
		var a, b *report.WatchInstance
		for i := range f.Instances {
			switch string(f.Instances[i].Instance.Name) {
			case ac.A.NSID:
				a = &f.Instances[i]
			case ac.B.NSID:
				b = &f.Instances[i]
			}
		}
		if a == nil || b == nil || len(f.Instances) != 2 {
			t.Fatalf("%s: instances %+v, want A and B", f.Input, f.Instances)
		}
		// A switch comes within one interval of the route's change, or
		// later by the rounds that went unanswered (each waits --timeout,
		// 2 s); those rounds count as no answer, not as B's time.
		for _, l := range late[f.Input] {
			if l.by > time.Duration(f.Missed)*2*time.Second {
				t.Errorf("%s: %s at %s, %v late; the route changed between %s and %s (interval %v, %d rounds unanswered)", f.Input, l.what, l.event.Format("15:04:05.000"), l.by, l.from.Format("15:04:05.000"), l.to.Format("15:04:05.000"), interval, f.Missed)
			}
		}
		eventsB := float64(onB.Microseconds()) / 1000
		if got := b.TimeMs; got > eventsB+1 || got < eventsB-f.NoAnswer.TimeMs-1 || (f.Missed == 0 && got < eventsB-1) {
			t.Errorf("%s: B held %.1f ms, the events say %v (%.1f ms without an answer in %d rounds)", f.Input, got, onB, f.NoAnswer.TimeMs, f.Missed)
		}
		if want := b.TimeMs / f.DurationMs; math.Abs(b.Share-want) > 1e-5 {
			t.Errorf("%s: B's share %v, want %v", f.Input, b.Share, want)
		}
		if sum := a.Share + b.Share + f.NoAnswer.Share + f.Anonymous.Share + f.Suspect.Share; math.Abs(sum-1) > 1e-5 {
			t.Errorf("%s: shares sum to %v", f.Input, sum)
		}
		if a.Rounds+b.Rounds+f.Missed != f.Rounds || f.Rounds < 10 {
			t.Errorf("%s: rounds %d = A %d + B %d + missed %d?", f.Input, f.Rounds, a.Rounds, b.Rounds, f.Missed)
		}
		// The runs: A until the switch, B until the return, A to the end.
		runs := []struct {
			in  string
			dur time.Duration
		}{
			{ac.A.NSID, switchAt[f.Input].Sub(startedAt[f.Input])},
			{ac.B.NSID, onB},
			{ac.A.NSID, parseStamp(t, f.Ended).Sub(returnAt[f.Input])},
		}
		longest := slices.MaxFunc(runs, func(a, b struct {
			in  string
			dur time.Duration
		}) int {
			return int(a.dur - b.dur)
		})
		if r := f.LongestStable; r == nil || r.Instance != longest.in || math.Abs(r.DurationMs-float64(longest.dur.Microseconds())/1000) > 1 {
			t.Errorf("%s: longest stable run %+v; the events say %s for %v", f.Input, r, longest.in, longest.dur)
		}
		if len(f.Events) != 6 {
			t.Errorf("%s: the summary keeps %d events, want start, 2 switches and 3 paths", f.Input, len(f.Events))
		}
	}
}

// demoWatch is the `watch` part of `make demo`: c1 watched with --trace
// while instance A's route is withdrawn and restored.
func demoWatch(t *testing.T, ac *lab.Anycast, whoisAddr string, say func(string, ...any)) {
	if !ac.SessionUp(ac.A.Origin, "r1") {
		if err := ac.StartBGP(ac.A.Origin, "r1"); err != nil {
			t.Fatal(err)
		}
		if _, err := ac.WaitInstance(t.Context(), "c1"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	args := []string{"watch", "--interval", "1s", "--trace", "-n", "--whois-server", whoisAddr, "--no-cache", ac.ServiceV4.String()}
	say("\n# instance A's route back; watch c1 while it is withdrawn (birdc disable on %s) and restored,", ac.A.Origin)
	say("# then Ctrl-C: the summary of what was seen, and exit 3 because the instance switched:")
	say("\n[c1]$ anycheck %s", strings.Join(args, " "))
	cmd := ac.Command(ctx, "c1", lab.Binary(t), args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	step := func(up bool) {
		time.Sleep(3500 * time.Millisecond)
		set := ac.StopBGP
		if up {
			set = ac.StartBGP
		}
		if err := set(ac.A.Origin, "r1"); err != nil {
			t.Fatal(err)
		}
		if _, err := ac.WaitInstance(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
	}
	step(false)
	step(true)
	time.Sleep(2500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code := exitStatus(t, cmd.Wait())
	fmt.Print(out.String(), errOut.String())
	say("(exit status %d)", code)
}
