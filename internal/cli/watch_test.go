package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/internal/report/reporttest"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/probe/probetest"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/trace/tracetest"
	"github.com/anycheck/anycheck/whois"
)

// anycastNet plays an anycast address in a test: every socket the watch
// opens towards the service reaches the instance route names at that
// moment, as a routing change moves a flow between two instances; open
// counts the sockets opened (one per round and flow), from 1. It is in
// memory (probetest.Net), so the watch runs on a synctest bubble's clock:
// rounds, timeouts and durations are exact.
func anycastNet(route func(open int) (*probetest.Server, error)) *probetest.Net {
	var mu sync.Mutex
	opens := 0
	return &probetest.Net{Route: func(string, netip.AddrPort, netip.AddrPort) (*probetest.Server, error) {
		mu.Lock()
		opens++
		k := opens
		mu.Unlock()
		return route(k)
	}}
}

// twoInstances are instance A and B of a service, 2 and 5 ms away.
func twoInstances() (a, b *probetest.Server) {
	a = &probetest.Server{Hostname: "a.lab", IDServer: "a.lab", NSID: []byte("inst-a"), Delay: 2 * time.Millisecond}
	b = &probetest.Server{Hostname: "b.lab", IDServer: "b.lab", NSID: []byte("inst-b"), Delay: 5 * time.Millisecond}
	return a, b
}

// byRound routes rounds to instances by a pattern, one character per
// round: 'a', 'b', '-' (a server that never answers), '!' (no route).
func byRound(pattern string, a, b *probetest.Server) func(int) (*probetest.Server, error) {
	silent := &probetest.Server{Silent: true}
	return func(k int) (*probetest.Server, error) {
		c := pattern[len(pattern)-1]
		if k <= len(pattern) {
			c = pattern[k-1]
		}
		switch c {
		case 'a':
			return a, nil
		case 'b':
			return b, nil
		case '-':
			return silent, nil
		}
		return nil, syscall.ENETUNREACH
	}
}

// always routes every socket to one server.
func always(srv *probetest.Server) func(int) (*probetest.Server, error) {
	return func(int) (*probetest.Server, error) { return srv, nil }
}

// watchTarget is the watched service's address in these tests.
const watchTarget = "192.0.2.53"

func watchDeps(n probe.Network) *deps {
	d := testDeps()
	d.probeNet = n
	return d
}

var watchLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}  192\.0\.2\.53 :(\d+)  (\w+)\s+(.*)$`)

// eventLines are the event lines of a text watch, as "type detail".
func eventLines(t *testing.T, out string) (events []string, ports map[string]bool) {
	t.Helper()
	ports = map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if l == "" {
			break // the summary follows a blank line
		}
		m := watchLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not an event line: %q\n%s", l, out)
		}
		ports[m[1]] = true
		events = append(events, m[2]+" "+m[3])
	}
	return events, ports
}

func TestWatchReportsSwitchesNotRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		nw := anycastNet(byRound("aaaabbaa", a, b))
		r := runCLI(t, watchDeps(nw), "watch", "--interval", "100ms", "-c", "8", watchTarget)
		if r.code != ExitPartial {
			t.Fatalf("exit %d, want %d (a switch happened); stderr %q", r.code, ExitPartial, r.stderr)
		}
		evs, ports := eventLines(t, r.stdout)
		want := []string{`start inst-a  rtt 2.00 ms`, `switch inst-a → inst-b  rtt 2.00 → 5.00 ms`, `switch inst-b → inst-a  rtt 5.00 → 2.00 ms`}
		if len(evs) != len(want) {
			t.Fatalf("want %d event lines (one per event, not per round), got:\n%s", len(want), r.stdout)
		}
		for i, w := range want {
			if !strings.HasPrefix(evs[i], w) {
				t.Errorf("event %d: %q, want %q…", i, evs[i], w)
			}
		}
		if len(ports) != 1 {
			t.Errorf("events name %d source ports, want one kept flow: %v", len(ports), ports)
		}
		// Every query of every round left from one source port.
		from := map[uint16]bool{}
		for _, q := range append(a.Queries(), b.Queries()...) {
			from[q.From.Port()] = true
		}
		if len(from) != 1 || len(a.Queries()) != 12 || len(b.Queries()) != 4 {
			t.Errorf("queries: %d to A, %d to B from ports %v; want 12 and 4 from one port", len(a.Queries()), len(b.Queries()), from)
		}
		for _, w := range []*regexp.Regexp{
			regexp.MustCompile(`8 rounds every 100ms over 800ms`),
			regexp.MustCompile(`\n  inst-a +75\.0% +600ms +6 +2\.00/2\.00/`),
			regexp.MustCompile(`\n  inst-b +25\.0% +200ms +2 +5\.00/5\.00/`),
			regexp.MustCompile(`2 switches, 0 losses, 0 of 16 queries timed out`),
			regexp.MustCompile(`longest stable run: inst-a for 400ms \(4 rounds`),
		} {
			if !w.MatchString(r.stdout) {
				t.Errorf("summary does not match %q:\n%s", w, r.stdout)
			}
		}
		if r.stderr != "" {
			t.Errorf("stderr is not a terminal: no status line, got %q", r.stderr)
		}
	})
}

// The rounds keep to their interval: 8 rounds of 100 ms are 800 ms of
// watched time, and the shares are time shares.
func TestWatchJSONSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		nw := anycastNet(byRound("aaabbbaa", a, b))
		r := runCLI(t, watchDeps(nw), "watch", "--interval", "100ms", "-c", "8", "-o", "json", watchTarget)
		if r.code != ExitPartial {
			t.Fatalf("exit %d; stderr %q", r.code, r.stderr)
		}
		reporttest.Check(t, []byte(r.stdout), false)
		var doc struct {
			Kind        string
			Interrupted bool
			Results     []report.WatchTarget
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Kind != "watch" || len(doc.Results) != 1 || len(doc.Results[0].Flows) != 1 {
			t.Fatalf("want one watched flow: %s", r.stdout)
		}
		f := doc.Results[0].Flows[0]
		if f.Rounds != 8 || f.Switches != 2 || f.Losses != 0 || f.Queries != 16 || f.Answered != 8 || f.LostAfter != 3 {
			t.Errorf("counts: %+v", f)
		}
		if f.DurationMs != 800 {
			t.Errorf("watched %.1f ms, want 8 × 100 ms", f.DurationMs)
		}
		if len(f.Instances) != 2 || f.Instances[0].Instance.Name != "inst-a" || f.Instances[0].Rounds != 5 || f.Instances[1].Rounds != 3 {
			t.Fatalf("instances: %+v", f.Instances)
		}
		if f.Instances[0].Share != 0.625 || f.Instances[1].Share != 0.375 {
			t.Errorf("shares %v and %v: want 5/8 and 3/8", f.Instances[0].Share, f.Instances[1].Share)
		}
		if f.Instances[0].RTT == nil || f.Instances[0].RTT.N != 5 || f.Instances[0].Instance.HostnameBind != "a.lab" || f.Instances[0].Instance.Source != "nsid" {
			t.Errorf("instance A: %+v", f.Instances[0])
		}
		if len(f.Events) != 3 || f.Events[1].Type != "switch" || f.Events[1].From == nil || f.Events[1].From.Name != "inst-a" || f.Events[1].Instance.Name != "inst-b" || f.Events[1].RTTBeforeMs == nil || f.Events[1].RTTAfterMs == nil {
			t.Errorf("events: %+v", f.Events)
		}
		if f.Flow.Sport == 0 || f.Events[0].Flow != f.Flow {
			t.Errorf("flow %+v, event flow %+v", f.Flow, f.Events[0].Flow)
		}
		if doc.Interrupted {
			t.Errorf("a watch that ran its -c is not interrupted")
		}
	})
}

// -o jsonl streams each event as it happens, then one summary per flow
// and the end record.
func TestWatchJSONLStreamsEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		nw := anycastNet(byRound("aab", a, b))
		var errb bytes.Buffer
		done := make(chan int)
		// Bounded, should the switch never come.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w := newSyncWriter()
		go func() {
			done <- run(ctx, []string{"watch", "--interval", "100ms", "-o", "jsonl", watchTarget},
				&streams{in: strings.NewReader(""), out: w, err: &errb}, watchDeps(nw))
		}()
		// The switch at round 3 is on stdout while the watch still runs.
		if !w.waitFor(`"type":"switch"`, `"type":"end"`) {
			t.Fatalf("no switch event streamed while watching; so far:\n%s", w.String())
		}
		if strings.Contains(w.String(), `"type":"result"`) {
			t.Fatalf("the summary came before the end:\n%s", w.String())
		}
		cancel() // Ctrl-C ends an open-ended watch normally
		code := <-done
		if code != ExitPartial {
			t.Errorf("exit %d after Ctrl-C of an open-ended watch with a switch, want %d", code, ExitPartial)
		}
		out := w.String()
		reporttest.Check(t, []byte(out), true)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var types []string
		for _, l := range lines {
			var rec struct{ Type string }
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatal(err)
			}
			types = append(types, rec.Type)
		}
		if got := strings.Join(types, ","); got != "event,event,result,end" {
			t.Errorf("record types %s, want event,event,result,end", got)
		}
		if strings.Contains(out, `"interrupted":true`) {
			t.Errorf("Ctrl-C is the normal end of an open-ended watch:\n%s", out)
		}
	})
}

// syncWriter lets a test read what the watch wrote so far, and wait for
// a line to be written (sync.Cond: in a synctest bubble the watch's
// clock runs on while the test waits).
type syncWriter struct {
	mu   sync.Mutex
	cond *sync.Cond
	w    bytes.Buffer
}

func newSyncWriter() *syncWriter {
	s := &syncWriter{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.cond.Broadcast()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// waitFor waits until want has been written (true) or last has (false).
func (s *syncWriter) waitFor(want, last string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case strings.Contains(s.w.String(), want):
			return true
		case strings.Contains(s.w.String(), last):
			return false
		}
		s.cond.Wait()
	}
}

// No route for a while: each round's send fails. That is an event (once),
// then a loss after three rounds, then the return; the watch goes on.
func TestWatchSendErrorIsAnEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		nw := anycastNet(byRound("aa!!!!aa", a, b))
		r := runCLI(t, watchDeps(nw), "watch", "--interval", "100ms", "-c", "8", watchTarget)
		if r.code != ExitPartial {
			t.Fatalf("exit %d, want %d (a loss); stderr %q", r.code, ExitPartial, r.stderr)
		}
		evs, _ := eventLines(t, r.stdout)
		want := []string{"start ", "error network is unreachable", "lost no reply since ", "back inst-a after "}
		if len(evs) != len(want) {
			t.Fatalf("events:\n%s", r.stdout)
		}
		for i, w := range want {
			if !strings.HasPrefix(evs[i], w) {
				t.Errorf("event %d: %q, want %q…", i, evs[i], w)
			}
		}
		if !strings.Contains(evs[2], "(3 rounds), last on inst-a") || !strings.Contains(evs[3], "(4 rounds)") {
			t.Errorf("lost/back details: %q, %q", evs[2], evs[3])
		}
		if !strings.Contains(r.stdout, "0 switches, 1 loss") || !strings.Contains(r.stdout, "no answer") {
			t.Errorf("summary:\n%s", r.stdout)
		}
	})
}

// A stable watch exits 0; a silent server is a loss (exit 3), its queries
// time out and are counted.
func TestWatchExitStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		nw := anycastNet(byRound("a", a, b))
		r := runCLI(t, watchDeps(nw), "watch", "--interval", "100ms", "-c", "3", watchTarget)
		if r.code != ExitOK || !strings.Contains(r.stdout, "0 switches, 0 losses") {
			t.Errorf("stable watch: exit %d\n%s", r.code, r.stdout)
		}

		silent := &probetest.Server{Silent: true}
		r = runCLI(t, watchDeps(anycastNet(always(silent))), "watch", "--timeout", "100ms", "--interval", "100ms", "-c", "3", "-o", "json", watchTarget)
		if r.code != ExitPartial {
			t.Fatalf("silent server: exit %d, want %d; stderr %q", r.code, ExitPartial, r.stderr)
		}
		reporttest.Check(t, []byte(r.stdout), false)
		var doc struct{ Results []report.WatchTarget }
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		f := doc.Results[0].Flows[0]
		if f.Losses != 1 || !f.Lost || f.Timeouts != 6 || f.Missed != 3 || len(f.Instances) != 0 || f.LongestStable != nil || f.NoAnswer.Share != 1 {
			t.Errorf("silent server summary: %+v", f)
		}
	})
}

// An interceptor answering in the instance's place is a suspect event,
// not a switch.
func TestWatchSuspectAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := twoInstances()
		mbox := &probetest.Server{Hostname: "resolver1", IDServer: "resolver1", Middlebox: true}
		nw := anycastNet(byRound("abba", a, mbox))
		r := runCLI(t, watchDeps(nw), "watch", "--interval", "100ms", "-c", "4", watchTarget)
		if r.code != ExitOK {
			t.Errorf("exit %d: interception is no switch; stderr %q", r.code, r.stderr)
		}
		evs, _ := eventLines(t, r.stdout)
		if len(evs) != 2 || !strings.HasPrefix(evs[1], `suspect "resolver1" with class_not_ch, ra_set, ttl_nonzero`) {
			t.Errorf("events:\n%s", r.stdout)
		}
		if !strings.Contains(r.stdout, "suspect answers") {
			t.Errorf("summary lacks the suspect part:\n%s", r.stdout)
		}

		// The status line says so while it lasts, and names no instance for
		// a reply without identity.
		refusing := &probetest.Server{}
		nw = anycastNet(byRound("ab", a, mbox))
		var out, errb bytes.Buffer
		run(context.Background(), []string{"watch", "--interval", "100ms", "-c", "2", watchTarget},
			&streams{in: strings.NewReader(""), out: &out, err: &errb, errTTY: true}, watchDeps(nw))
		if !strings.Contains(errb.String(), watchTarget+" :") || !strings.Contains(errb.String(), " suspect answers") {
			t.Errorf("status line: %q", errb.String())
		}
		errb.Reset()
		run(context.Background(), []string{"watch", "--interval", "100ms", "-c", "1", watchTarget},
			&streams{in: strings.NewReader(""), out: &out, err: &errb, errTTY: true}, watchDeps(anycastNet(always(refusing))))
		if !strings.Contains(errb.String(), " answering without an identity") {
			t.Errorf("status line: %q", errb.String())
		}
	})
}

// --flows N watches N source ports at once, each its own flow.
func TestWatchFlows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := twoInstances()
		r := runCLI(t, watchDeps(anycastNet(always(a))), "watch", "--interval", "100ms", "-c", "2", "--flows", "3", "-o", "json", watchTarget)
		if r.code != ExitOK {
			t.Fatalf("exit %d; stderr %q", r.code, r.stderr)
		}
		reporttest.Check(t, []byte(r.stdout), false)
		var doc struct {
			Vantage struct{ Sources []string }
			Results []report.WatchTarget
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Results) != 1 || len(doc.Results[0].Flows) != 3 || len(doc.Vantage.Sources) != 1 {
			t.Fatalf("want one target with 3 flows from one source address: %s", r.stdout)
		}
		sports := map[int]bool{}
		for _, f := range doc.Results[0].Flows {
			sports[f.Flow.Sport] = true
		}
		if len(sports) != 3 || doc.Results[0].FlowSummary == nil || doc.Results[0].FlowSummary.Flows != 3 {
			t.Errorf("3 flows on %d ports, flow summary %+v", len(sports), doc.Results[0].FlowSummary)
		}
		from := map[uint16]int{}
		for _, q := range a.Queries() {
			from[q.From.Port()]++
		}
		if len(from) != 3 {
			t.Errorf("queries from %d ports, want 3 flows: %v", len(from), from)
		}
		for p, n := range from {
			if n != 4 {
				t.Errorf("port %d sent %d queries, want 2 rounds × 2", p, n)
			}
		}
	})
}

func TestWatchBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--interval", "0"}, "--interval 0s"},
		{[]string{"--interval", "50ms"}, "--interval 50ms"},
		{[]string{"--interval", "-1s"}, "--interval -1s"},
		{[]string{"--interval", "soon"}, "soon"},
		{[]string{"--duration", "-5s"}, "--duration -5s"},
		{[]string{"--duration", "0"}, "--duration 0s"},
		{[]string{"--duration", "1 hour"}, "1 hour"},
		{[]string{"--count", "0"}, "--count 0"},
		{[]string{"-c", "-2"}, "--count -2"},
		{[]string{"--flows", "0"}, "--flows 0"},
		{[]string{"--sport", "65535", "--flows", "2"}, "65535"},
		{[]string{"--lost-after", "0"}, "--lost-after 0"},
		{[]string{"--mode", "magic"}, "magic"},
		{[]string{"--trace", "--tcp", "--mode", "socket"}, "--mode socket"},
		{[]string{"--asn", "bogus", "--trace"}, "bogus"},
		{[]string{"--rate", "0"}, "--rate 0"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCLI(t, testDeps(), append(append([]string{"watch"}, tc.args...), "127.0.0.1")...)
			if r.code != ExitUsage || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want %d and nothing", r.code, r.stdout, ExitUsage)
			}
			first := strings.SplitN(r.stderr, "\n", 2)[0]
			if !strings.HasPrefix(first, "anycheck: ") || !strings.Contains(first, tc.want) {
				t.Errorf("first stderr line %q should name %q", first, tc.want)
			}
		})
	}
}

func TestWatchFlagParsing(t *testing.T) {
	var got *watchOptions
	g := &globalOptions{}
	s := &streams{out: &bytes.Buffer{}, err: &bytes.Buffer{}}
	cmd := newWatchCmd(g, s, testDeps(), func(_ context.Context, o *watchOptions) error { got = o; return nil })
	g.register(cmd)
	cmd.SetArgs([]string{"--sport", "40000", "--flows", "2", "-c", "5", "--interval", "250ms", "--duration", "1m", "--trace", "--lost-after", "5", "-o", "jsonl", "192.0.2.53"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.sport != 40000 || got.flows != 2 || got.count != 5 || !got.countSet || got.interval != 250*time.Millisecond ||
		got.duration != time.Minute || !got.durationSet || !got.trace || got.lostAfter != 5 || got.g.output != "jsonl" {
		t.Errorf("options not captured: %+v", got)
	}
	// Defaults: every 10 s, until Ctrl-C.
	got = nil
	cmd = newWatchCmd(g, s, testDeps(), func(_ context.Context, o *watchOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"192.0.2.53"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.interval != 10*time.Second || got.countSet || got.durationSet || got.lostAfter != 3 {
		t.Errorf("defaults: %+v", got)
	}
}

// --duration bounds the watch in time; Ctrl-C during a bounded watch is an
// interruption (exit 130) that still prints the summary.
func TestWatchDurationAndInterrupt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := twoInstances()
		d := watchDeps(anycastNet(always(a)))
		start := time.Now()
		r := runCLI(t, d, "watch", "--interval", "100ms", "--duration", "350ms", "-o", "json", watchTarget)
		if took := time.Since(start); r.code != ExitOK || took != 350*time.Millisecond {
			t.Fatalf("exit %d after %v, want 0 after 350ms; stderr %q", r.code, took, r.stderr)
		}
		var doc struct{ Results []report.WatchTarget }
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		if f := doc.Results[0].Flows[0]; f.Rounds != 4 || f.DurationMs != 350 {
			t.Errorf("350ms at 100ms: %d rounds over %.1f ms, want 4 over 350 ms", f.Rounds, f.DurationMs)
		}

		ctx, cancel := context.WithCancel(context.Background())
		var out, errb bytes.Buffer
		done := make(chan int)
		go func() {
			done <- run(ctx, []string{"watch", "--interval", "100ms", "-c", "1000", watchTarget},
				&streams{in: strings.NewReader(""), out: &out, err: &errb}, d)
		}()
		time.AfterFunc(250*time.Millisecond, cancel) // Ctrl-C after 3 rounds
		if code := <-done; code != ExitInterrupted {
			t.Errorf("Ctrl-C of a bounded watch: exit %d, want %d", code, ExitInterrupted)
		}
		if !strings.Contains(out.String(), "start ") || !strings.Contains(out.String(), "longest stable run: inst-a for 250ms (3 rounds") {
			t.Errorf("Ctrl-C must print the summary so far:\n%s", out.String())
		}
	})
}

// Identity strings from the network are escaped in text output.
func TestWatchEscapesIdentity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		evil := &probetest.Server{Hostname: "x\x1b[2J\u202ey"}
		r := runCLI(t, watchDeps(anycastNet(always(evil))), "watch", "--interval", "100ms", "-c", "1", watchTarget)
		if strings.ContainsAny(r.stdout, "\x1b\u202e") {
			t.Errorf("control characters reached the terminal:\n%q", r.stdout)
		}
		if !strings.Contains(r.stdout, `start    x\x1b[2J\u{202e}y  rtt`) {
			t.Errorf("escaped identity missing:\n%s", r.stdout)
		}
	})
}

// --trace traces the flow at the start and after each switch, from the
// watched flow's own source port, and shows the hops that changed and the
// AS where the new path leaves the old one — no root, no packet sent.
func TestWatchTraceShowsChangedHops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &tracetest.Switching{
			Pattern: "aaabba",
			A:       &tracetest.Net{Hops: tracetest.RoutersAt("198.51.100.1", "198.51.100.33", "203.0.113.1"), Dest: tracetest.Dest{RTT: time.Millisecond, Hostname: "a.lab", NSID: "inst-a"}},
			B:       &tracetest.Net{Hops: tracetest.RoutersAt("198.51.100.1", "198.51.100.33", "198.51.100.129", "198.51.100.66", "203.0.113.65"), Dest: tracetest.Dest{RTT: 2 * time.Millisecond, Hostname: "b.lab", NSID: "inst-b"}},
		}
		d := testDeps()
		d.probeNet, d.traceNet = nw, nw
		table := asOrigins(map[string]uint32{"198.51.100.1": 64500, "198.51.100.33": 64500, "203.0.113.1": 64520, "198.51.100.129": 64510, "198.51.100.66": 64501, "203.0.113.65": 64521})
		d.newResolver = func(string, whois.Options) (whois.Resolver, error) { return table, nil }

		r := runCLI(t, d, "watch", "--interval", "100ms", "-c", "6", "--trace", "-n", "192.0.2.53")
		if r.code != ExitPartial {
			t.Fatalf("exit %d; stderr %q", r.code, r.stderr)
		}
		for _, want := range []string{
			"path     to inst-a, 4 hops  (as path 64500 → 64520)  upstream 203.0.113.1\n      1  198.51.100.1 AS64500\n",
			"switch   inst-a → inst-b",
			"path     to inst-b leaves the old path after ttl 2 198.51.100.33 AS64500; 4 hops differ  (as path 64500 → 64510 → 64501 → 64521)  upstream 203.0.113.65\n" +
				"      3  203.0.113.1 AS64520  →  198.51.100.129 AS64510\n" +
				"      4  192.0.2.53           →  198.51.100.66 AS64501\n" +
				"      5  -                    →  203.0.113.65 AS64521\n" +
				"      6  -                    →  192.0.2.53\n",
			"switch   inst-b → inst-a",
			"path     to inst-a leaves the old path after ttl 2 198.51.100.33 AS64500; 4 hops differ",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r.stdout)
			}
		}
		// Every trace probe left from the watched flow's source port.
		var port uint16
		for _, n := range []*tracetest.Net{nw.A, nw.B} {
			for _, dl := range n.Dials() {
				if port == 0 {
					port = dl.Local.Port()
				}
				if dl.Local.Port() != port {
					t.Errorf("an identity round from port %d, the flow is %d", dl.Local.Port(), port)
				}
			}
			if len(n.Sends()) == 0 {
				t.Errorf("no trace went down one of the paths")
			}
		}

		// JSON: the path event carries both hop lists and where they part.
		nw = &tracetest.Switching{Pattern: nw.Pattern, A: nw.A, B: nw.B} // from the first round again
		d.probeNet, d.traceNet = nw, nw
		r = runCLI(t, d, "watch", "--interval", "100ms", "-c", "5", "--trace", "-n", "-o", "json", "192.0.2.53")
		reporttest.Check(t, []byte(r.stdout), false)
		var doc struct{ Results []report.WatchTarget }
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		watched := doc.Results[0].Flows[0]
		var paths []report.WatchEvent
		for _, e := range watched.Events {
			if e.Type == "path" {
				paths = append(paths, e)
			}
		}
		if len(paths) != 2 {
			t.Fatalf("want a path event at the start and after the switch: %+v", watched.Events)
		}
		p := paths[1].Path
		if p.Trigger != "switch" || p.Previous == nil || len(p.Previous.Path.Hops) != 4 || len(p.Trace.Path.Hops) != 6 ||
			p.PartTTL != 2 || p.Common == nil || p.Common.Address != "198.51.100.33" || fmt.Sprint(p.Changed) != "[3 4 5 6]" {
			t.Errorf("path event after the switch: %+v", p)
		}
		if p.Trace.Flow.Sport == 0 || p.Trace.Flow.Sport != watched.Flow.Sport || p.Trace.Flow.Src != watched.Flow.Src {
			t.Errorf("the trace ran on %+v, the watched flow is %+v", p.Trace.Flow, watched.Flow)
		}
	})
}

// On a terminal stderr a status line is kept up to date (and cleared
// before each event line and at the end); stdout carries only results.
func TestWatchStatusLineOnTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		nw := anycastNet(byRound("aab", a, b))
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"watch", "--interval", "100ms", "-c", "3", watchTarget},
			&streams{in: strings.NewReader(""), out: &out, err: &errb, errTTY: true}, watchDeps(nw))
		if code != ExitPartial {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if strings.Contains(out.String(), "\x1b") || strings.Contains(out.String(), "watching") {
			t.Errorf("the status line reached stdout:\n%q", out.String())
		}
		st := errb.String()
		for _, want := range []string{
			"\r\x1b[Kwatching 1 flow(s): rounds 1, switches 0, losses 0; 192.0.2.53 :",
			"watching 1 flow(s): rounds 3, switches 1, losses 0; 192.0.2.53 :",
			" on inst-b",
		} {
			if !strings.Contains(st, want) {
				t.Errorf("status lacks %q:\n%q", want, st)
			}
		}
		if !strings.HasSuffix(st, "\r\x1b[K") {
			t.Errorf("the status line is not cleared at the end: %q", st)
		}
	})
}

// --rate is one packet budget for the whole watch: eight flows starting on
// the same tick do not send their 16 queries at once.
func TestWatchRateIsSharedBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := twoInstances()
		start := time.Now()
		r := runCLI(t, watchDeps(anycastNet(always(a))), "watch", "--flows", "8", "-c", "1", "--rate", "10", "-o", "json", watchTarget)
		took := time.Since(start)
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		// A burst of 2, then 14 queries at 10 a second: the last leaves
		// 1.4 s after the first and is answered a.Delay later.
		if took != 1400*time.Millisecond+a.Delay {
			t.Errorf("16 queries at --rate 10 took %v, want 1.4s: the budget was not shared", took)
		}
	})
}

// TestWatchRootsTargetSet: watch takes @roots like id and trace, one
// watched flow per member address, each named in the output. Every socket
// goes to a loopback instance instead (nothing is sent to a root server).
func TestWatchRootsTargetSet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := twoInstances()
		nw := anycastNet(always(a))
		r := runCLI(t, watchDeps(nw), "watch", "-4", "--interval", "100ms", "-c", "1", "-o", "json", "@roots")
		if r.code != ExitOK {
			t.Fatalf("exit %d; stderr %q", r.code, r.stderr)
		}
		reporttest.Check(t, []byte(r.stdout), false)
		var doc struct{ Results []report.WatchTarget }
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Results) != 13 {
			t.Fatalf("%d watched targets, want the 13 letters' IPv4 addresses:\n%s", len(doc.Results), r.stdout)
		}
		suspect := 0
		for i, tg := range doc.Results {
			want := fmt.Sprintf("%c.root-servers.net", 'a'+i)
			if len(tg.Flows) != 1 {
				t.Fatalf("%s: %d flows, want 1", want, len(tg.Flows))
			}
			f := tg.Flows[0]
			if tg.Input != want || !netip.MustParseAddr(tg.Target).Is4() || f.Answered != 1 {
				t.Errorf("flow %d: input %q address %s answered %d; want %s answered", i, tg.Input, tg.Target, f.Answered, want)
				continue
			}
			// The built-in site hints know every letter's naming, and "inst-a"
			// fits none: a suspect answer, not an instance.
			switch {
			case len(f.Instances) == 1 && f.Instances[0].Instance.Name == "inst-a":
			case len(f.Instances) == 0 && len(f.Events) == 1 && f.Events[0].Type == "suspect":
				suspect++
			default:
				t.Errorf("%s: instances %+v, events %+v; want inst-a, or a suspect answer", want, f.Instances, f.Events)
			}
		}
		if suspect != len(doc.Results) {
			t.Errorf("%d of %d letters' answers were suspect, want all (the site table knows every letter's names)", suspect, len(doc.Results))
		}
		if n := len(a.Queries()); n != 26 {
			t.Errorf("the instance got %d queries, want 13 flows × 2", n)
		}
		r = runCLI(t, watchDeps(nw), "watch", "-c", "1", "@nosuch")
		if r.code != ExitUsage || !strings.Contains(r.stderr, "@nosuch") || !strings.Contains(r.stderr, "@roots") {
			t.Errorf("unknown set: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// slowAnswers delays every reply a flow reads by delay, and routes each
// flow by its source port (route; nil = the address asked for): a service
// whose answers take a while, on two sites.
type slowAnswers struct {
	probe.Network
	delay time.Duration
	route func(port uint16) netip.AddrPort
}

type slowConn struct {
	net.Conn
	delay time.Duration
}

func (c slowConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	time.Sleep(c.delay)
	return n, err
}

func (s slowAnswers) ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	if s.route != nil {
		raddr = s.route(laddr.Port())
	}
	c, err := s.Network.ListenUDP(ctx, laddr, raddr)
	if err != nil {
		return nil, err
	}
	return slowConn{c, s.delay}, nil
}

// TestWatchFlowsEventsInTimeOrder: the events of several flows come out
// in time order, not one flow's round (its start and the trace after it)
// and then the next flow's, in text and in JSONL.
func TestWatchFlowsEventsInTimeOrder(t *testing.T) { synctest.Test(t, testWatchFlowsEventsInTimeOrder) }

func testWatchFlowsEventsInTimeOrder(t *testing.T) {
	fake := &tracetest.Net{Hops: tracetest.RoutersAt("198.51.100.1", "203.0.113.1"), Dest: tracetest.Dest{RTT: time.Millisecond, Hostname: "a.lab", NSID: "inst-a"}}
	d := testDeps()
	d.probeNet = slowAnswers{Network: fake, delay: 60 * time.Millisecond}
	d.traceNet = fake
	r := runCLI(t, d, "watch", "--interval", "1s", "-c", "1", "--flows", "3", "--sport", "41000", "--trace", "-n", "--asn", "none", "-o", "jsonl", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d; stderr %q", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), true)
	var types []string
	var last time.Time
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var rec struct {
			Type  string
			Event *struct {
				Type, Time string
				Flow       struct{ Sport int }
			}
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Type != "event" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, rec.Event.Time)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, rec.Event.Type)
		if at.Before(last) {
			t.Errorf("event %s of flow %d at %s comes after one at %s", rec.Event.Type, rec.Event.Flow.Sport, at.Format(time.StampMicro), last.Format(time.StampMicro))
		}
		last = at
	}
	if got := strings.Join(types, ","); got != "start,start,start,path,path,path" {
		t.Errorf("events %s, want the three starts, then the three paths", got)
	}
}

// TestWatchFlowsOneSummary: several flows of a target get one summary —
// a line per flow, the instances over all flows and, as id --flows, the
// catchment split said first and the instances' shares of the flows last.
func TestWatchFlowsOneSummary(t *testing.T) { synctest.Test(t, testWatchFlowsOneSummary) }

func testWatchFlowsOneSummary(t *testing.T) {
	a, b := twoInstances()
	d := watchDeps(&probetest.Net{Route: func(_ string, local, _ netip.AddrPort) (*probetest.Server, error) {
		if local.Port() == 41001 {
			return b, nil
		}
		return a, nil
	}})
	r := runCLI(t, d, "watch", "--interval", "100ms", "-c", "3", "--flows", "3", "--sport", "41000", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d; stderr %q", r.code, r.stderr)
	}
	_, summary, _ := strings.Cut(r.stdout, "\n\n")
	if n := strings.Count(summary, "watch 192.0.2.53"); n != 1 {
		t.Errorf("%d summaries for one target, want one:\n%s", n, summary)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^watch 192\.0\.2\.53:53 udp, 3 flows from 192\.0\.2\.10 ports 41000-41002: 3 rounds each every 100ms over 300ms `),
		regexp.MustCompile(`(?m)^catchment split by flow: inst-a on 2 of 3 flows, inst-b on 1$`),
		regexp.MustCompile(`(?m)^  41001  inst-b    100\.0%  0         0       0 of 6$`),
		regexp.MustCompile(`(?m)^  inst-a    66\.7%  600ms      2      6 `), // two flows' time of three
		regexp.MustCompile(`(?m)^  0 switches, 0 losses, 0 of 18 queries timed out$`),
		regexp.MustCompile(`(?m)^instances inst-a on 2 of 3 flows, inst-b on 1  — catchment split by flow$`),
	} {
		if !want.MatchString(summary) {
			t.Errorf("summary does not match %s:\n%s", want, summary)
		}
	}
}

// --trace without privilege: exit 4 and the hint trace gives (the running
// binary's path; never the mode that just failed, nor socket mode for tcp).
func TestWatchTracePermissionHint(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	for _, c := range []struct {
		args          []string
		hint, notHint string
	}{
		{[]string{"--mode", "raw"}, "setcap cap_net_raw+ep " + exe + ", or use --mode socket", ""},
		{[]string{"--tcp"}, "tcp probes need raw sockets; grant raw sockets once with: setcap cap_net_raw+ep " + exe, "--mode socket"},
		{[]string{"--mode", "socket"}, "setcap cap_net_raw+ep " + exe, "--mode socket"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, _ := twoInstances()
				d := watchDeps(anycastNet(always(a)))
				d.traceNet = &tracetest.Net{OpenErr: fmt.Errorf("open raw socket: operation not permitted: %w", trace.ErrPermission)}
				r := runCLI(t, d, append(append([]string{"watch", "--trace", "-c", "1", "-n", "--asn", "none"}, c.args...), watchTarget)...)
				hint := r.stderr[max(0, strings.Index(r.stderr, "hint: ")):]
				if r.code != ExitPermission || !strings.HasPrefix(hint, "hint: ") || !strings.Contains(hint, c.hint) || (c.notHint != "" && strings.Contains(hint, c.notHint)) {
					t.Errorf("exit %d, stderr %q; want exit 4 and a hint with %q", r.code, r.stderr, c.hint)
				}
			})
		})
	}
}

// --strict, as for id and trace --flows: flows of a target on different
// instances (a catchment split) exit 3; flows on one instance exit 0.
func TestWatchStrict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := twoInstances()
		split := watchDeps(&probetest.Net{Route: func(_ string, local, _ netip.AddrPort) (*probetest.Server, error) {
			if local.Port() == 41001 {
				return b, nil
			}
			return a, nil
		}})
		args := []string{"watch", "--interval", "100ms", "-c", "2", "--flows", "3", "--sport", "41000"}
		r := runCLI(t, split, append(args, watchTarget)...)
		if r.code != ExitOK {
			t.Errorf("without --strict a split is reported, exit 0: exit %d", r.code)
		}
		r = runCLI(t, split, append(append(args, "--strict"), watchTarget)...)
		if r.code != ExitPartial || !strings.Contains(r.stderr, "catchment split by flow (--strict)") {
			t.Errorf("--strict with a split: exit %d, stderr %q; want 3", r.code, r.stderr)
		}
		r = runCLI(t, watchDeps(anycastNet(always(a))), append(append(args, "--strict"), watchTarget)...)
		if r.code != ExitOK {
			t.Errorf("--strict without a split: exit %d, stderr %q", r.code, r.stderr)
		}
		if r := runCLI(t, split, "watch", "--strict", watchTarget); r.code != ExitUsage || !strings.Contains(r.stderr, "--strict") {
			t.Errorf("--strict with one flow: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// asOrigins is a fixed ASN source: each address's origin AS.
func asOrigins(table map[string]uint32) whois.Fixed {
	out := whois.Fixed{}
	for s, as := range table {
		a := netip.MustParseAddr(s)
		out[a] = whois.Origin{Addr: a, ASNs: []uint32{as}, Source: "test"}
	}
	return out
}
