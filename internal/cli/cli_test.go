package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/census"
	"github.com/anycheck/anycheck/internal/report/reporttest"
	"github.com/anycheck/anycheck/probe/probetest"
	"github.com/anycheck/anycheck/whois/whoistest"
)

// result is what a user sees from one invocation.
type result struct {
	code           int
	stdout, stderr string
}

func testDeps() *deps {
	d := defaultDeps()
	d.now = func() time.Time { return time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC) }
	d.hostname = func() (string, error) { return "test-vantage", nil }
	d.lookupHost = func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		switch host {
		case "ns.lab.example":
			return []netip.Addr{netip.MustParseAddr("2001:db8:53::53"), netip.MustParseAddr("192.0.2.53")}, nil
		case "loop.lab.example":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
	d.cacheDir = func() (string, error) { return "", errors.New("no cache in tests") }
	// Nothing a unit test runs may leave loopback (guard_test.go).
	d.probeNet, d.traceNet, d.whoisDial, d.dnsServer = loopbackProbeNet{}, loopbackTraceNet{}, loopbackDial, closedDNS
	d.censusConn = func(a netip.Addr, _ bool) (census.Conn, error) {
		return nil, fmt.Errorf("test guard: refusing a raw ICMP socket on %s in unit tests", a)
	}
	return d
}

// pipeDeps sends every query to srv, in memory (probetest.Net), so the
// test can run on a synctest bubble's clock.
func pipeDeps(srv *probetest.Server) *deps {
	d := testDeps()
	d.probeNet = &probetest.Net{Route: func(string, netip.AddrPort, netip.AddrPort) (*probetest.Server, error) { return srv, nil }}
	return d
}

func runCLI(t *testing.T, d *deps, args ...string) result {
	t.Helper()
	return runCLIContext(context.Background(), t, d, args...)
}

func runCLIContext(ctx context.Context, t *testing.T, d *deps, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, &streams{in: strings.NewReader(""), out: &out, err: &errb}, d)
	return result{code, out.String(), errb.String()}
}

func TestBadInputIsUsageError(t *testing.T) {
	d := testDeps()
	for _, tc := range []struct {
		name string
		args []string
		want string // the error names the bad input
	}{
		{"unknown flag", []string{"id", "--bogus", "192.0.2.53"}, "--bogus"},
		{"unknown command", []string{"frobnicate"}, "frobnicate"},
		{"address with a port", []string{"id", "192.0.2.53:53"}, "192.0.2.53:53"},
		{"IPv6 address with a port", []string{"trace", "[2001:db8:53::53]:53"}, "[2001:db8:53::53]:53"},
		{"name with a port", []string{"watch", "ns.lab.example:5353"}, "ns.lab.example:5353"},
		{"not a name", []string{"id", "bad name!"}, "bad name!"},
		{"port 0", []string{"id", "--port", "0", "192.0.2.53"}, "--port 0"},
		{"port 70000", []string{"id", "--port", "70000", "192.0.2.53"}, "--port 70000"},
		{"count 0", []string{"id", "-c", "0", "192.0.2.53"}, "-c 0"},
		{"-4 with IPv6 literal", []string{"id", "-4", "2001:db8:53::53"}, "2001:db8:53::53"},
		{"-6 with IPv4 literal", []string{"id", "-6", "192.0.2.53"}, "192.0.2.53"},
		{"unknown output", []string{"id", "-o", "yaml", "192.0.2.53"}, "yaml"},
		{"no target", []string{"id"}, "arg"},
		{"flows 0", []string{"id", "--flows", "0", "192.0.2.53"}, "--flows 0"},
		{"trace bad protocol", []string{"trace", "-P", "sctp", "192.0.2.53"}, "sctp"},
		{"trace bad mode", []string{"trace", "--mode", "magic", "192.0.2.53"}, "magic"},
		{"trace first ttl above max", []string{"trace", "-f", "9", "-m", "5", "192.0.2.53"}, "-f 9"},
		{"trace window 0", []string{"trace", "-N", "0", "192.0.2.53"}, "-N 0"},
		{"trace tcp in socket mode", []string{"trace", "-P", "tcp", "--mode", "socket", "192.0.2.53"}, "-P tcp --mode socket"},
		{"trace rate 0", []string{"trace", "--rate", "0", "192.0.2.53"}, "--rate 0"},
		{"trace rate NaN", []string{"trace", "--rate", "NaN", "192.0.2.53"}, "--rate NaN"},
		{"trace rate too high", []string{"trace", "--rate", "20000", "192.0.2.53"}, "--rate 20000"},
		{"trace parallel 0", []string{"trace", "--parallel", "0", "192.0.2.53"}, "--parallel 0"},
		{"trace parallel too many", []string{"trace", "--parallel", "1000", "192.0.2.53"}, "--parallel 1000"},
		{"trace unknown asn source", []string{"trace", "--asn", "bogus", "192.0.2.53"}, "bogus"},
		{"whois not an address", []string{"whois", "--asn", "none", "example"}, "example"},
		{"completion unknown shell", []string{"completion", "tcsh"}, "tcsh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, d, tc.args...)
			if r.code != ExitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, ExitUsage, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout must stay empty on bad input, got %q", r.stdout)
			}
			first := strings.SplitN(r.stderr, "\n", 2)[0]
			if !strings.HasPrefix(first, "anycheck: ") || !strings.Contains(first, tc.want) {
				t.Errorf("first stderr line %q should be one error naming %q", first, tc.want)
			}
		})
	}
}

func TestFlagParsingFillsOptions(t *testing.T) {
	var got *idOptions
	g := &globalOptions{}
	s := &streams{out: &bytes.Buffer{}, err: &bytes.Buffer{}}
	d := testDeps()
	cmd := newIDCmd(g, s, d, func(_ context.Context, o *idOptions) error { got = o; return nil })
	g.register(cmd)
	cmd.SetArgs([]string{"--sport", "40000", "--flows", "4", "-c", "3", "--interval", "250ms", "--tcp", "--version", "-o", "json", "-6", "2001:db8:53::53", "ns.lab.example"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatal("run function not called")
	}
	if got.sport != 40000 || got.flows != 4 || got.count != 3 || got.interval != 250*time.Millisecond || !got.tcp || !got.version {
		t.Errorf("options not captured: %+v", *got)
	}
	if got.g.output != "json" || !got.g.v6 || len(got.targets) != 2 {
		t.Errorf("global options not captured: %+v targets %v", *got.g, got.targets)
	}
	if got.s != s || got.d != d {
		t.Error("the options do not hold the command's streams and dependencies")
	}
}

func TestIDAgainstLoopbackServer(t *testing.T) {
	srv := &probetest.Server{Hostname: "inst-a.lab", IDServer: "inst-a.lab", NSID: []byte("inst-a-1"), RefuseVersion: true}
	ap := srv.StartPair(t, "127.0.0.1")
	d := testDeps()
	port := fmt.Sprint(ap.Port())

	r := runCLI(t, d, "id", "--port", port, "--version", "127.0.0.1")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{
		`instance  inst-a-1  (NSID "inst-a-1"; hostname.bind "inst-a.lab"; id.server "inst-a.lab")`,
		"hostname.bind   answered",
		"version.bind    refused",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.stderr != "" {
		t.Errorf("stderr should be empty on success, got %q", r.stderr)
	}

	// JSON: valid against the schema, one flow, every query from one port.
	r = runCLI(t, d, "id", "--port", port, "-o", "json", "-c", "2", "--interval", "10ms", "loop.lab.example")
	if r.code != ExitOK {
		t.Fatalf("json exit %d, stderr %q", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Kind    string
		Vantage struct {
			Hostname string
			Sources  []string
		}
		Results []struct {
			Input, Target string
			Flows         []struct {
				Flow     struct{ Src string }
				Instance struct{ Name, Source string }
				Summary  struct{ Runs, Answered int }
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Results) != 1 || len(doc.Results[0].Flows) != 1 {
		t.Fatalf("want one target with one flow: %s", r.stdout)
	}
	f := doc.Results[0].Flows[0]
	if f.Instance.Name != "inst-a-1" || f.Instance.Source != "nsid" || f.Summary.Runs != 2 || f.Summary.Answered != 4 {
		t.Errorf("flow summary wrong: %+v", f)
	}
	if doc.Results[0].Input != "loop.lab.example" || doc.Results[0].Target != "127.0.0.1" || f.Flow.Src != "127.0.0.1" {
		t.Errorf("target not recorded: %+v", doc.Results[0])
	}
	ports := map[netip.AddrPort]bool{}
	for _, q := range srv.Queries() {
		ports[q.From] = true
	}
	// 2 runs of the text call (1 flow) + 2 runs here: each invocation used one
	// source port for all its queries, so at most two distinct ports.
	if len(ports) != 2 {
		t.Errorf("queries came from %d source ports, want 2 (one per invocation): %v", len(ports), ports)
	}
	if len(doc.Vantage.Sources) != 1 || doc.Vantage.Hostname != "test-vantage" {
		t.Errorf("vantage wrong: %+v", doc.Vantage)
	}
}

func TestIDFlowsUseDistinctPorts(t *testing.T) {
	srv := &probetest.Server{Hostname: "inst-b.lab", NSID: []byte("inst-b")}
	ap := srv.Start(t, "udp", "127.0.0.1:0")
	r := runCLI(t, testDeps(), "id", "--port", fmt.Sprint(ap.Port()), "--flows", "3", "-o", "jsonl", "127.0.0.1")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), true)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"type":"end"`) {
		t.Fatalf("want a result line then an end line, got:\n%s", r.stdout)
	}
	ports := map[uint16]bool{}
	for _, q := range srv.Queries() {
		ports[q.From.Port()] = true
	}
	if len(ports) != 3 {
		t.Errorf("3 flows used %d source ports", len(ports))
	}
}

func TestIDUnreachableTimesOutWithExit3(t *testing.T) { synctest.Test(t, testIDUnreachable) }

func testIDUnreachable(t *testing.T) {
	start := time.Now()
	r := runCLI(t, pipeDeps(&probetest.Server{Silent: true}), "id", "--timeout", "300ms", "-o", "json", "192.0.2.53")
	if elapsed := time.Since(start); elapsed != 300*time.Millisecond {
		t.Errorf("two queries with --timeout 300ms took %s: they wait at once, each its timeout", elapsed)
	}
	if r.code != ExitPartial {
		t.Fatalf("exit %d, want %d; stderr %q", r.code, ExitPartial, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	// Twice each: in the flow's answers (its last run's) and in its run.
	if strings.Count(r.stdout, `"status": "timeout"`) != 4 {
		t.Errorf("each query should report timeout:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, `"failed": true`) || !strings.Contains(r.stdout, "no reply from 192.0.2.53:53 within 300ms") {
		t.Errorf("target should be marked failed with an error entry:\n%s", r.stdout)
	}
}

func TestIDEscapesHostileIdentity(t *testing.T) {
	srv := &probetest.Server{Hostname: "evil\x1b]0;owned\x07\x1b[2J", NSID: []byte("n\x1b[31m")}
	ap := srv.Start(t, "udp", "127.0.0.1:0")
	r := runCLI(t, testDeps(), "id", "--port", fmt.Sprint(ap.Port()), "127.0.0.1")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.ContainsAny(r.stdout, "\x1b\x07") {
		t.Errorf("control characters from the server reached the terminal: %q", r.stdout)
	}
	if !strings.Contains(r.stdout, `evil\x1b]0;owned\x07\x1b[2J`) {
		t.Errorf("hostile identity not shown escaped:\n%s", r.stdout)
	}
	r = runCLI(t, testDeps(), "id", "--port", fmt.Sprint(ap.Port()), "-o", "json", "127.0.0.1")
	reporttest.Check(t, []byte(r.stdout), false)
}

// TestIDInterruptedPrintsWhatWasMeasured: Ctrl-C keeps the runs that
// ended and drops the queries it cut short. On a synctest bubble's clock:
// a run is answered after 10 ms and the next starts 20 ms later, so runs
// start at 0, 30 and 60 ms, and Ctrl-C at 65 ms cuts the third run's
// queries.
func TestIDInterruptedPrintsWhatWasMeasured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &probetest.Server{Hostname: "inst-c", NSID: []byte("inst-c"), Delay: 10 * time.Millisecond}
		d := testDeps()
		d.probeNet = &probetest.Net{Route: func(string, netip.AddrPort, netip.AddrPort) (*probetest.Server, error) { return srv, nil }}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(65*time.Millisecond, cancel)
		r := runCLIContext(ctx, t, d, "id", "-c", "100", "--interval", "20ms", "-o", "json", "192.0.2.53")
		testIDInterrupted(t, r.code, r.stdout)
		if n := strings.Count(r.stdout, `"started": "2000-01-01T`); n != 2 {
			t.Errorf("%d runs shown, want the 2 that ended before Ctrl-C:\n%s", n, r.stdout)
		}
	})
}

func testIDInterrupted(t *testing.T, code int, out string) {
	if code != ExitInterrupted {
		t.Errorf("exit %d, want %d", code, ExitInterrupted)
	}
	reporttest.Check(t, []byte(out), false)
	if !strings.Contains(out, `"interrupted": true`) || !strings.Contains(out, "inst-c") {
		t.Errorf("interrupted output should hold the runs so far:\n%s", out)
	}
	if strings.Contains(out, `"status": "timeout"`) || strings.Contains(out, `"status": "error"`) {
		t.Errorf("queries cut short by Ctrl-C must not be reported as timeouts:\n%s", out)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	r := runCLI(t, testDeps(), "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "anycheck ") {
		t.Errorf("version: exit %d, out %q", r.code, r.stdout)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := runCLI(t, testDeps(), "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "anycheck") || len(r.stdout) < 200 {
			t.Errorf("completion %s: exit %d, %d bytes", sh, r.code, len(r.stdout))
		}
	}
}

// privateAddr is an RFC 1918 address: whois must label it and never send it.
var privateAddr = netip.AddrFrom4([4]byte{10, 1, 2, 3})

func TestWhoisOneConnectionThenCache(t *testing.T) {
	rows, err := whoistest.ParseTable(strings.NewReader(
		"198.51.100.0/24 | 64500 | ZZ | lab | 2026-01-01 | ISP-ONE\n" +
			"203.0.113.0/24 | 64510 | ZZ | lab | 2026-01-01 | TRANSIT\n" +
			"192.0.2.0/24 | 64520 64521 | ZZ | lab | 2026-01-01 | ANYDNS\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := whoistest.Start(whoistest.Config{Rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	d := testDeps()
	cache := t.TempDir()
	d.cacheDir = func() (string, error) { return cache, nil }

	// Twenty hop addresses, as one trace of 20 hops would have, plus a
	// private one.
	args := []string{"whois", "--whois-server", srv.Addr(), "-n", "-o", "json"}
	for i := range 20 {
		args = append(args, fmt.Sprintf("%s.%d", []string{"198.51.100", "203.0.113", "192.0.2"}[i%3], i+1))
	}
	args = append(args, privateAddr.String())
	r := runCLI(t, d, args...)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	if n := srv.Connections(); n != 1 {
		t.Errorf("20 addresses opened %d whois connections, want 1", n)
	}
	for _, a := range srv.Queried() {
		if a == privateAddr {
			t.Errorf("the private address was sent to the whois server")
		}
	}
	if !strings.Contains(r.stdout, `"special": "private"`) || !strings.Contains(r.stdout, `"asns": [
          64520,
          64521
        ]`) {
		t.Errorf("private label or multi-origin answer missing:\n%s", r.stdout)
	}

	// The same again: every answer from the cache, no connection.
	r = runCLI(t, d, args...)
	if r.code != ExitOK {
		t.Fatalf("second run: exit %d: %s", r.code, r.stderr)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("a cached rerun opened %d more connections", n-1)
	}
	if strings.Count(r.stdout, `"cached": true`) != 20 {
		t.Errorf("want 20 cached answers:\n%s", r.stdout)
	}
	// --no-cache asks again.
	r = runCLI(t, d, append(args, "--no-cache")...)
	if r.code != ExitOK || srv.Connections() != 2 {
		t.Errorf("--no-cache: exit %d, connections %d", r.code, srv.Connections())
	}
}

func TestWhoisHostileServer(t *testing.T) {
	rows, _ := whoistest.ParseTable(strings.NewReader("198.51.100.0/24 | 64500 | ZZ | lab | 2026-01-01 | ISP-ONE\n"))
	for _, tc := range []struct {
		name string
		mode whoistest.Mode
		code int
	}{
		{"ansi names", whoistest.ANSI, ExitOK},
		{"never answers", whoistest.Silent, ExitPartial},
		{"floods", whoistest.Flood, ExitPartial},
		{"closes early", whoistest.CloseEarly, ExitPartial},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := whoistest.Start(whoistest.Config{Rows: rows, Mode: tc.mode})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			start := time.Now()
			r := runCLI(t, testDeps(), "whois", "--whois-server", srv.Addr(), "--no-cache", "-n", "--timeout", "1s", "198.51.100.7", "198.51.100.8", "198.51.100.9")
			if r.code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, tc.code, r.stderr)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %s: a hostile server must not hold the run", time.Since(start))
			}
			if strings.ContainsAny(r.stdout+r.stderr, "\x1b\x07") {
				t.Errorf("terminal escapes from the server reached the output: %q", r.stdout+r.stderr)
			}
			if tc.code == ExitPartial && !strings.Contains(r.stderr, "whois") {
				t.Errorf("the failure should be explained on stderr: %q", r.stderr)
			}
		})
	}
}

func TestWhoisReadsStdin(t *testing.T) {
	rows, _ := whoistest.ParseTable(strings.NewReader("198.51.100.0/24 | 64500 | ZZ | lab | 2026-01-01 | ISP-ONE\n"))
	srv, err := whoistest.Start(whoistest.Config{Rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"whois", "--whois-server", srv.Addr(), "--no-cache", "-n", "-"},
		&streams{in: strings.NewReader("198.51.100.1\n 198.51.100.2\t[2001:db8::1]\n"), out: &out, err: &errb}, testDeps())
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"198.51.100.1 ", "198.51.100.2 ", "[2001:db8::1]", "AS64500"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("%d connections for one stdin batch", n)
	}
	// Junk on stdin is bad input, named.
	code = run(context.Background(), []string{"whois", "--asn", "none", "-"},
		&streams{in: strings.NewReader("198.51.100.1 not-an-ip\n"), out: &out, err: &errb}, testDeps())
	if code != ExitUsage || !strings.Contains(errb.String(), "not-an-ip") {
		t.Errorf("junk on stdin: exit %d, stderr %q", code, errb.String())
	}
}

// TestTargetWithPortHintsAtPortFlag: ADDR:PORT is bad input, and the
// error says how to give the port.
func TestTargetWithPortHintsAtPortFlag(t *testing.T) {
	for _, tc := range []struct{ cmd, target, hint string }{
		{"id", "192.0.2.53:53", "hint: give the port with --port: anycheck id --port 53 192.0.2.53"},
		{"trace", "[2001:db8:53::53]:5353", "hint: give the port with --port: anycheck trace --port 5353 2001:db8:53::53"},
		{"watch", "ns.lab.example:53", "hint: give the port with --port: anycheck watch --port 53 ns.lab.example"},
	} {
		r := runCLI(t, testDeps(), tc.cmd, tc.target)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.hint+"\n") {
			t.Errorf("%s %s: exit %d, stderr %q; want %d and %q", tc.cmd, tc.target, r.code, r.stderr, ExitUsage, tc.hint)
		}
	}
}

// TestUnresolvableTargetIsRuntimeFailure: a name that does not resolve is
// a failure of the run (exit 1 when nothing else was measured, 3 when
// other targets were), named on stderr and in the document's errors, not
// a usage error with "run 'anycheck --help'".
func TestUnresolvableTargetIsRuntimeFailure(t *testing.T) {
	srv := &probetest.Server{Hostname: "h1"}
	ap := srv.Start(t, "udp", "127.0.0.1:0")
	port := fmt.Sprint(ap.Port())
	for _, args := range [][]string{
		{"id", "--port", port},
		{"trace", "--asn", "none", "-n"},
		{"trace", "--flows", "2", "--asn", "none", "-n"},
		{"watch", "-c", "1", "--port", port},
	} {
		name := strings.Join(args, " ")
		r := runCLI(t, testDeps(), append(args, "nonexistent.invalid")...)
		if r.code != ExitError || r.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want %d and nothing", name, r.code, r.stdout, ExitError)
		}
		if !strings.Contains(r.stderr, "nonexistent.invalid") || !strings.Contains(r.stderr, "cannot resolve") || strings.Contains(r.stderr, "--help") {
			t.Errorf("%s: stderr %q should name the target and say it did not resolve, without usage help", name, r.stderr)
		}
	}
	// With another target that answers: that one is measured, exit 3.
	r := runCLI(t, testDeps(), "id", "--port", port, "-o", "json", "nonexistent.invalid", "loop.lab.example")
	if r.code != ExitPartial {
		t.Errorf("id with one good target: exit %d, want %d; stderr %q", r.code, ExitPartial, r.stderr)
	}
	doc := parseID(t, r.stdout)
	if len(doc.Results) != 1 || doc.Results[0].Input != "loop.lab.example" || len(doc.Errors) != 1 ||
		doc.Errors[0].Target != "nonexistent.invalid" || !strings.Contains(doc.Errors[0].Message, "cannot resolve") {
		t.Errorf("results %+v errors %+v: want the good target measured and the other in errors", doc.Results, doc.Errors)
	}
	if !strings.Contains(r.stderr, "nonexistent.invalid: cannot resolve") || strings.Contains(r.stderr, "--help") {
		t.Errorf("stderr %q", r.stderr)
	}
}

// A character device that is no terminal (/dev/null) gets no status lines.
func TestDevNullIsNoTerminal(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if newStreams(strings.NewReader(""), f, f).errTTY {
		t.Error("stderr on /dev/null is taken for a terminal")
	}
}

// One status line for every command: shown only on a terminal, cleared
// before a warning so the warning starts a line of its own.
func TestStatusLine(t *testing.T) {
	var b bytes.Buffer
	s := &streams{err: &b, errTTY: true}
	s.status("tracing %d", 3)
	warn(s, "lookup failed")
	s.status("tracing %d", 4)
	s.clearStatus()
	if want := "\r\x1b[Ktracing 3\r\x1b[Kanycheck: lookup failed\n\r\x1b[Ktracing 4\r\x1b[K"; b.String() != want {
		t.Errorf("stderr %q, want %q", b.String(), want)
	}
	b.Reset()
	s = &streams{err: &b}
	s.status("tracing")
	s.clearStatus()
	warn(s, "x")
	if b.String() != "anycheck: x\n" {
		t.Errorf("no terminal: stderr %q", b.String())
	}
}
