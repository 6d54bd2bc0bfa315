package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/internal/report/reporttest"
	"github.com/anycheck/anycheck/probe/probetest"
)

// idJSON is the part of `anycheck id -o json` these tests read.
type idJSON struct {
	Results []struct {
		Input, Address, Error, Operator string
		Failed                          bool
		Flows                           []struct {
			Source  string
			Summary struct {
				Answered int
				RTT      *struct{ Min float64 } `json:"rtt_ms"`
			}
			Runs []struct {
				Answers []struct {
					Status string
					RTT    *float64 `json:"rtt_ms"`
				}
			}
		}
	}
	Errors []struct{ Target, Message string }
}

func parseID(t *testing.T, out string) idJSON {
	t.Helper()
	reporttest.Check(t, []byte(out), false)
	var doc idJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	return doc
}

// TestIDNonAnswersFail: a server that sends the query back (QR clear) or
// answers another question has answered nothing: the target failed (exit
// 3), no query counts as answered, and no RTT is shown.
func TestIDNonAnswersFail(t *testing.T) {
	for _, srv := range []*probetest.Server{{Reflect: true}, {OtherQuestion: true, Hostname: "h"}} {
		ap := srv.Start(t, "udp", "127.0.0.1:0")
		r := runCLI(t, testDeps(), "id", "--port", fmt.Sprint(ap.Port()), "--timeout", "200ms", "-o", "json", "127.0.0.1")
		if r.code != ExitPartial {
			t.Errorf("reflect=%v: exit %d, want %d; stderr %q", srv.Reflect, r.code, ExitPartial, r.stderr)
		}
		doc := parseID(t, r.stdout)
		res := doc.Results[0]
		if !res.Failed || !strings.Contains(res.Error, "2 malformed") {
			t.Errorf("reflect=%v: failed %v error %q, want failed with 2 malformed", srv.Reflect, res.Failed, res.Error)
		}
		f := res.Flows[0]
		if f.Summary.Answered != 0 || f.Summary.RTT != nil {
			t.Errorf("reflect=%v: answered %d rtt %v, want 0 and null", srv.Reflect, f.Summary.Answered, f.Summary.RTT)
		}
		for _, a := range f.Runs[0].Answers {
			if a.Status != "malformed" || a.RTT != nil {
				t.Errorf("reflect=%v: answer %s rtt %v, want malformed without RTT", srv.Reflect, a.Status, a.RTT)
			}
		}
		if !strings.Contains(r.stderr, "127.0.0.1") || !strings.Contains(r.stderr, "malformed") {
			t.Errorf("reflect=%v: stderr should say why the target failed: %q", srv.Reflect, r.stderr)
		}
	}
}

// TestIDSourcePortTaken: a --sport that cannot be bound is said as such
// (on stderr and in the output), not as queries that timed out.
func TestIDSourcePortTaken(t *testing.T) {
	srv := &probetest.Server{Hostname: "h"}
	ap := srv.Start(t, "udp", "127.0.0.1:0")
	busy, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.LocalAddr().(*net.UDPAddr).Port
	r := runCLI(t, testDeps(), "id", "--port", fmt.Sprint(ap.Port()), "--sport", fmt.Sprint(port), "127.0.0.1")
	if r.code != ExitPartial {
		t.Errorf("exit %d, want %d", r.code, ExitPartial)
	}
	wantErr := fmt.Sprintf("cannot use source port %d (--sport): address already in use", port)
	if !strings.Contains(r.stderr, wantErr) {
		t.Errorf("stderr %q should say %q", r.stderr, wantErr)
	}
	if !strings.Contains(r.stdout, "failed    no flow could be opened") || strings.Contains(r.stdout+r.stderr, "timed out") || strings.Contains(r.stdout+r.stderr, "no reply") {
		t.Errorf("output should name the bind failure, not a silent target:\n%s%s", r.stdout, r.stderr)
	}
	if n := len(srv.Queries()); n != 0 {
		t.Errorf("server saw %d queries", n)
	}
}

// TestIDConcurrent: every flow of every target is probed at once. The
// server answers nothing until all their queries have arrived, so flows or
// targets probed one after another would only time out.
func TestIDConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		hold int
	}{
		{"flows", []string{"--flows", "4", "127.0.0.1"}, 8},
		{"targets", []string{"127.0.0.1", "loop.lab.example", "127.0.0.1"}, 6},
		{"tcp flows", []string{"--tcp", "--flows", "3", "127.0.0.1"}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &probetest.Server{Hostname: "h1", NSID: []byte("n1"), Hold: tc.hold}
			ap := srv.StartPair(t, "127.0.0.1")
			args := append([]string{"id", "--port", fmt.Sprint(ap.Port()), "--timeout", "3s", "-o", "json"}, tc.args...)
			r := runCLI(t, testDeps(), args...)
			if r.code != ExitOK {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			doc := parseID(t, r.stdout)
			var inputs []string
			for _, res := range doc.Results {
				inputs = append(inputs, res.Input)
				for _, f := range res.Flows {
					if f.Summary.Answered != 2 {
						t.Errorf("%s flow %s: %d answered, want 2", res.Input, f.Source, f.Summary.Answered)
					}
				}
			}
			if tc.name == "targets" && !slices.Equal(inputs, []string{"127.0.0.1", "loop.lab.example", "127.0.0.1"}) {
				t.Errorf("results in order %v, want the order given", inputs)
			}
		})
	}
}

// TestIDJSONLStreamsEachTarget: -o jsonl writes one result line per
// target, then the end line.
func TestIDJSONLStreamsEachTarget(t *testing.T) {
	srv := &probetest.Server{Hostname: "h1"}
	ap := srv.Start(t, "udp", "127.0.0.1:0")
	r := runCLI(t, testDeps(), "id", "--port", fmt.Sprint(ap.Port()), "-o", "jsonl", "127.0.0.1", "loop.lab.example")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), true)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], `"type":"end"`) {
		t.Fatalf("want two result lines and the end line:\n%s", r.stdout)
	}
	for _, in := range []string{`"input":"127.0.0.1"`, `"input":"loop.lab.example"`} {
		if !strings.Contains(lines[0]+lines[1], in) {
			t.Errorf("no result line with %s:\n%s", in, r.stdout)
		}
	}
}

// TestIDRateBudget: --rate paces every query of the run.
func TestIDRateBudget(t *testing.T) { synctest.Test(t, testIDRateBudget) }

func testIDRateBudget(t *testing.T) {
	start := time.Now()
	// 3 flows × 2 queries at 10/s: a burst of one run's 2, then 4 more
	// 100 ms apart, answered at once.
	r := runCLI(t, pipeDeps(&probetest.Server{Hostname: "h1"}), "id", "--rate", "10", "--flows", "3", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if d := time.Since(start); d != 400*time.Millisecond {
		t.Errorf("6 queries at --rate 10 took %v, want 400ms", d)
	}
}

// TestTargetsNotUnicast: multicast, broadcast and unspecified targets are
// bad input for every command that sends (exit 2, nothing on stdout).
func TestTargetsNotUnicast(t *testing.T) {
	d := testDeps()
	d.interfacePrefixes = func() ([]netip.Prefix, error) {
		return []netip.Prefix{netip.MustParsePrefix("198.51.100.10/24"), netip.MustParsePrefix("2001:db8::1/64")}, nil
	}
	base := d.lookupHost
	d.lookupHost = func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		if host == "mcast.lab.example" {
			return []netip.Addr{netip.MustParseAddr("ff05::1:3"), netip.MustParseAddr("239.1.2.3")}, nil
		}
		return base(ctx, network, host)
	}
	for _, cmd := range []string{"id", "trace"} {
		for _, tc := range []struct{ target, want string }{
			{"224.0.0.1", "multicast"},
			{"ff02::1", "multicast"},
			{"255.255.255.255", "broadcast"},
			{"198.51.100.255", "broadcast address of 198.51.100.0/24"},
			{"0.0.0.0", "unspecified"},
			{"::", "unspecified"},
			{"0.1.2.3", "this network"},
			{"::ffff:224.0.0.1", "multicast"},
			{"mcast.lab.example", "no unicast address"},
		} {
			r := runCLI(t, d, cmd, tc.target)
			if r.code != ExitUsage || r.stdout != "" {
				t.Errorf("%s %s: exit %d stdout %q, want %d and nothing", cmd, tc.target, r.code, r.stdout, ExitUsage)
			}
			if first := strings.SplitN(r.stderr, "\n", 2)[0]; !strings.Contains(first, tc.target) || !strings.Contains(first, tc.want) {
				t.Errorf("%s %s: error %q should name the target and say %q", cmd, tc.target, first, tc.want)
			}
		}
	}
}

// The host's addresses are listed (a netlink dump on Linux) only for a
// target that can be the broadcast address of an IPv4 network (its last two
// bits set): an IPv6 target or any other IPv4 one starts probing without
// it (start-up time), and a broadcast address is still told.
func TestNotUnicastListsAddressesOnlyWhenItCan(t *testing.T) {
	d := testDeps()
	listed := 0
	d.interfacePrefixes = func() ([]netip.Prefix, error) {
		listed++
		return []netip.Prefix{netip.MustParsePrefix("198.51.100.10/24"), netip.MustParsePrefix("203.0.113.9/30")}, nil
	}
	for _, tc := range []struct {
		addr   string
		listed bool
		why    string
	}{
		{"198.51.100.53", false, ""},
		{"198.51.100.254", false, ""},
		{"2001:db8::ff", false, ""},
		{"127.0.0.1", false, ""},
		{"198.51.100.255", true, "the broadcast address of 198.51.100.0/24, a network of this host"},
		{"203.0.113.11", true, "the broadcast address of 203.0.113.8/30, a network of this host"},
		{"192.0.2.7", true, ""},
	} {
		listed = 0
		why := notUnicast(netip.MustParseAddr(tc.addr), d)
		if why != tc.why || (listed > 0) != tc.listed {
			t.Errorf("%s: %q with %d listings, want %q, listed %v", tc.addr, why, listed, tc.why, tc.listed)
		}
	}
}

// TestRootsTargetSet: @roots expands to the 13 letters, IPv4 and IPv6,
// from the data file; -4/-6 keep one family. Only the expansion is
// tested: nothing is ever sent to a public address.
func TestRootsTargetSet(t *testing.T) {
	for _, tc := range []struct {
		v4, v6 bool
		n      int
	}{{false, false, 26}, {true, false, 13}, {false, true, 13}} {
		g := &globalOptions{v4: tc.v4, v6: tc.v6, timeout: time.Second}
		targets, _, err := resolveTargets(context.Background(), g, testDeps(), []string{"@roots"})
		if err != nil {
			t.Fatal(err)
		}
		if len(targets) != tc.n {
			t.Fatalf("-4=%v -6=%v: %d targets, want %d", tc.v4, tc.v6, len(targets), tc.n)
		}
		letters := map[string]int{}
		for _, tg := range targets {
			letters[tg.input]++
			if !tg.addr.IsGlobalUnicast() || tg.addr.IsPrivate() || tg.operator == "" {
				t.Errorf("%s %s (%q): want a public unicast address and an operator", tg.input, tg.addr, tg.operator)
			}
			if (tc.v4 && !tg.addr.Is4()) || (tc.v6 && !tg.addr.Is6()) {
				t.Errorf("%s %s: wrong family", tg.input, tg.addr)
			}
		}
		for c := 'a'; c <= 'm'; c++ {
			if want := tc.n / 13; letters[string(c)+".root-servers.net"] != want {
				t.Errorf("%c: %d addresses, want %d", c, letters[string(c)+".root-servers.net"], want)
			}
		}
	}
	g := &globalOptions{v4: true}
	targets, _, _ := resolveTargets(context.Background(), g, testDeps(), []string{"192.0.2.53", "@roots", "192.0.2.54"})
	if len(targets) != 15 || targets[0].input != "192.0.2.53" || targets[1].input != "a.root-servers.net" ||
		targets[1].addr != netip.MustParseAddr("198.41.0.4") || targets[14].input != "192.0.2.54" {
		t.Errorf("expansion in place, in order: %v", targets)
	}
	r := runCLI(t, testDeps(), "id", "@nosuch")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "@nosuch") || !strings.Contains(r.stderr, "@roots") {
		t.Errorf("unknown set: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestIDBadRate(t *testing.T) {
	for _, v := range []string{"0", "-5", "20000", "NaN"} {
		r := runCLI(t, testDeps(), "id", "--rate", v, "192.0.2.53")
		if r.code != ExitUsage || !strings.Contains(r.stderr, "--rate") {
			t.Errorf("--rate %s: exit %d, stderr %q", v, r.code, r.stderr)
		}
	}
}

// TestTraceRootsExpansion: trace takes @roots too, each member named in
// the output; --source keeps the members of its family. Nothing is sent.
func TestTraceRootsExpansion(t *testing.T) {
	for _, tc := range []struct {
		source string
		v6     bool
		n      int
	}{{"", false, 26}, {"", true, 13}, {"192.0.2.10", false, 13}, {"2001:db8::10", false, 13}} {
		o := &traceOptions{g: &globalOptions{v6: tc.v6, timeout: time.Second}, source: tc.source, targets: []string{"@roots"}}
		_, addrs, _, err := o.resolveTargets(context.Background(), testDeps())
		if err != nil {
			t.Fatal(err)
		}
		if len(addrs) != tc.n || len(o.targets) != tc.n || o.targets[0] != "a.root-servers.net" {
			t.Errorf("source %q -6=%v: %d addresses, targets %v; want %d named members", tc.source, tc.v6, len(addrs), o.targets, tc.n)
		}
		for _, a := range addrs {
			if tc.source != "" && a.Is4() != netip.MustParseAddr(tc.source).Is4() {
				t.Errorf("source %s: member %s of the other family", tc.source, a)
			}
		}
	}
}

// TestIDFlowsWithoutAnswerExit3: id --flows exits 3 when some flows got no
// DNS answer (as trace --flows does when flows do not reach the target),
// names them on stderr and in the document's errors, and still shows the
// instance the others reached.
func TestIDFlowsWithoutAnswerExit3(t *testing.T) {
	srv := &probetest.Server{Hostname: "h1", NSID: []byte("n1"), Lose: func(q probetest.Query) bool {
		return q.From.Port() == 41001 || q.From.Port() == 41003
	}}
	ap := srv.Start(t, "udp", "127.0.0.1:0")
	args := []string{"id", "--port", fmt.Sprint(ap.Port()), "--timeout", "300ms", "--flows", "4", "--sport", "41000"}
	r := runCLI(t, testDeps(), append(args, "127.0.0.1")...)
	if r.code != ExitPartial {
		t.Errorf("exit %d, want %d; stderr %q", r.code, ExitPartial, r.stderr)
	}
	if !strings.Contains(r.stdout, "instances n1 on 2 of 4 flows; 2 flows without an identity") {
		t.Errorf("text should show the instance of the flows that answered:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "127.0.0.1") || !strings.Contains(r.stderr, "2 of 4 flows got no DNS answer") || !strings.Contains(r.stderr, "41001 41003") {
		t.Errorf("stderr should name the target and its flows without an answer: %q", r.stderr)
	}
	r = runCLI(t, testDeps(), append(args, "-o", "json", "127.0.0.1")...)
	if r.code != ExitPartial {
		t.Errorf("json: exit %d, want %d", r.code, ExitPartial)
	}
	doc := parseID(t, r.stdout)
	if len(doc.Errors) != 1 || !strings.Contains(doc.Errors[0].Message, "2 of 4 flows") || doc.Results[0].Failed {
		t.Errorf("errors %+v, failed %v: want one error for the silent flows, the target not failed", doc.Errors, doc.Results[0].Failed)
	}
	// Every flow answering is exit 0, as before.
	ok := &probetest.Server{Hostname: "h1"}
	ap = ok.Start(t, "udp", "127.0.0.1:0")
	if r := runCLI(t, testDeps(), "id", "--port", fmt.Sprint(ap.Port()), "--flows", "4", "127.0.0.1"); r.code != ExitOK {
		t.Errorf("all flows answered: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestIDShowsUnreachable: an ICMP port unreachable (UDP) or a refused
// connection (TCP) is said as what came back — per query and in the
// failure line — not as a timeout, an unknown instance or an "error".
func TestIDShowsUnreachable(t *testing.T) {
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.LocalAddr().(*net.UDPAddr).Port)
	l.Close() // nothing listens there now
	r := runCLI(t, testDeps(), "id", "--port", port, "--timeout", "3s", "127.0.0.1")
	if r.code != ExitPartial {
		t.Errorf("exit %d, want %d", r.code, ExitPartial)
	}
	for _, want := range []string{
		"instance  none: no DNS answer came back",
		"hostname.bind  unreachable  port unreachable from 127.0.0.1",
		"failed    no DNS answer from 127.0.0.1:" + port + ": 2 unreachable (port unreachable from 127.0.0.1)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "timeout") || strings.Contains(r.stdout, " error") || strings.Contains(r.stdout, "unknown") {
		t.Errorf("text calls it something else:\n%s", r.stdout)
	}
	r = runCLI(t, testDeps(), "id", "--tcp", "--port", port, "-o", "json", "127.0.0.1")
	doc := parseID(t, r.stdout)
	for _, a := range doc.Results[0].Flows[0].Runs[0].Answers {
		if a.Status != "unreachable" {
			t.Errorf("tcp: status %s, want unreachable", a.Status)
		}
	}
	if !strings.Contains(doc.Results[0].Error, "connection refused (tcp reset)") {
		t.Errorf("tcp: error %q", doc.Results[0].Error)
	}
}
