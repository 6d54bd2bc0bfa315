package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/internal/report/reporttest"
	"github.com/anycheck/anycheck/probe/probetest"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/trace/tracetest"
	"github.com/anycheck/anycheck/whois"
	"github.com/anycheck/anycheck/whois/whoistest"
)

// traceJSON is the part of `anycheck trace -o json` these tests read, one
// result per traced flow with its path's fields at the top (decodeTrace
// reads the document's v2 shape into it).
type traceJSON struct {
	Results []traceFlowJSON
	Errors  []struct{ Target, Stage, Message string }
}

type traceFlowJSON struct {
	Input      string
	Target     string
	Flow       report.FlowDTO
	Reached    bool
	StopReason string
	DestTTL    int
	Hops       []report.HopDTO
	Instance   *struct{ Instance, NSID, HostnameBind string } // nil when the answers named none
	Answers    []report.AnswerDTO
	Notes      []string
}

func decodeTrace(t *testing.T, out string) traceJSON {
	t.Helper()
	reporttest.Check(t, []byte(out), false)
	var doc struct {
		Results []report.TraceResult
		Errors  []struct{ Target, Stage, Message string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	flat := traceJSON{Errors: doc.Errors}
	for _, r := range doc.Results {
		if len(r.Flows) != 1 {
			t.Fatalf("%s: %d flows in a trace result, want 1", r.Input, len(r.Flows))
		}
		f := r.Flows[0]
		x := traceFlowJSON{Input: r.Input, Target: r.Target, Flow: f.Flow, Reached: f.Path.Reached, StopReason: f.Path.StopReason,
			DestTTL: f.Path.DestTTL, Hops: f.Path.Hops, Answers: f.Answers, Notes: f.Path.Notes}
		if f.Instance.Name != "" {
			x.Instance = &struct{ Instance, NSID, HostnameBind string }{string(f.Instance.Name), string(f.Instance.NSID), string(f.Instance.HostnameBind)}
		}
		flat.Results = append(flat.Results, x)
	}
	return flat
}

// fakePath is a three-router path to an instance of a DNS service.
func fakePath() *tracetest.Net {
	return &tracetest.Net{
		Hops: tracetest.Routers(3, time.Millisecond),
		Dest: tracetest.Dest{RTT: 4 * time.Millisecond, Hostname: "inst-7.lab", NSID: "inst-7"},
	}
}

// fakeDeps wires a fake network into both the trace and the identity
// query that follows a TCP/53 trace, and turns off lookups.
func fakeDeps(n *tracetest.Net) *deps {
	d := testDeps()
	d.traceNet = n
	d.probeNet = n
	return d
}

// TestTraceIdentity: a UDP/53 trace names the instance from its probes'
// own answers; a TCP/53 trace asks it over a real connection from the
// flow's source port once the trace is over. Both show it.
func TestTraceIdentity(t *testing.T) {
	for _, proto := range []string{"udp", "tcp"} {
		for _, target := range []string{"192.0.2.53", "2001:db8:53::53"} {
			t.Run(proto+" "+target, func(t *testing.T) {
				n := fakePath()
				// The TCP server keeps each SYN's half-open connection
				// until the tracer's RST reaches it.
				n.Dest.HalfOpen = true
				r := runCLI(t, fakeDeps(n), "trace", "-P", proto, "--asn", "none", "-n", "-o", "json", target)
				if r.code != ExitOK {
					t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
				}
				doc := decodeTrace(t, r.stdout)
				p := doc.Results[0]
				if !p.Reached || p.DestTTL != 4 {
					t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
				}
				if p.Instance == nil || p.Instance.NSID != "inst-7" || p.Instance.HostnameBind != "inst-7.lab" || p.Instance.Instance != "inst-7" {
					t.Fatalf("instance %+v (notes %q), want inst-7 / inst-7.lab", p.Instance, p.Notes)
				}
				dials := n.Dials()
				if proto == "udp" {
					if len(dials) != 0 {
						t.Errorf("a udp/53 trace opened identity connections: %+v", dials)
					}
					return
				}
				if len(dials) != 1 || dials[0].Network != "tcp" || dials[0].Local.Port() != uint16(p.Flow.Sport) || dials[0].Remote.String() != fmt.Sprintf("%s:53", bracket(target)) {
					t.Fatalf("identity connections %+v, want one over tcp from the flow's port %d", dials, p.Flow.Sport)
				}
				// After the destination's probes are answered: no probe
				// in flight, no half-open connection on the 4-tuple.
				if dials[0].InFlight != 0 || dials[0].Collided {
					t.Errorf("identity connection %+v opened while the trace's SYNs held the destination", dials[0])
				}
				for _, pr := range p.Hops[3].Probes {
					if pr.Reply == nil || pr.Reply.Kind != "syn-ack" {
						t.Errorf("destination probe: %+v, want a syn-ack", pr.Reply)
					}
				}
				if len(p.Answers) != 1 || p.Answers[0].Transport != "tcp" || p.Answers[0].Status != "answered" {
					t.Errorf("answers %+v", p.Answers)
				}

				r = runCLI(t, fakeDeps(fakePath()), "trace", "-P", proto, "--asn", "none", "-n", target)
				if r.code != ExitOK || !strings.Contains(r.stdout, `instance  inst-7  (NSID "inst-7"; hostname.bind "inst-7.lab")  4 hops`) {
					t.Errorf("text output (exit %d) lacks the instance line:\n%s", r.code, r.stdout)
				}
			})
		}
	}
}

func bracket(a string) string {
	if strings.Contains(a, ":") {
		return "[" + a + "]"
	}
	return a
}

// TestTraceWaitIsTimeout: on trace, -w (traceroute's name) and --timeout
// (every other command's) are one setting.
func TestTraceWaitIsTimeout(t *testing.T) {
	capture := func(args ...string) (*traceOptions, error) {
		var got *traceOptions
		g := &globalOptions{}
		s := &streams{out: &bytes.Buffer{}, err: &bytes.Buffer{}}
		root := &cobra.Command{Use: "anycheck", PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.timeoutSet = cmd.Flags().Changed("timeout")
			return nil
		}}
		g.register(root)
		root.AddCommand(newTraceCmd(g, s, testDeps(), func(_ context.Context, o *traceOptions) error { got = o; return nil }))
		root.SetArgs(append([]string{"trace"}, args...))
		err := root.Execute()
		return got, err
	}
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"192.0.2.53"}, 2 * time.Second},
		{[]string{"--timeout", "300ms", "192.0.2.53"}, 300 * time.Millisecond},
		{[]string{"-w", "700ms", "192.0.2.53"}, 700 * time.Millisecond},
		{[]string{"-w", "1s", "--timeout", "1s", "192.0.2.53"}, time.Second},
	} {
		o, err := capture(c.args...)
		if err != nil || o == nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if o.wait != c.want || o.g.timeout != c.want {
			t.Errorf("%v: -w %v, --timeout %v; want both %v", c.args, o.wait, o.g.timeout, c.want)
		}
	}
	r := runCLI(t, testDeps(), "trace", "-w", "1s", "--timeout", "3s", "192.0.2.53")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "-w 1s and --timeout 3s") || r.stdout != "" {
		t.Errorf("-w 1s --timeout 3s: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestTraceJSONLStreams: -o jsonl writes each hop as it becomes final, in
// TTL order, then the target's result, then the end record.
func TestTraceJSONLStreams(t *testing.T) {
	r := runCLI(t, fakeDeps(fakePath()), "trace", "--asn", "none", "-n", "-o", "jsonl", "192.0.2.53", "2001:db8:53::53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), true)
	var seq []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var rec struct {
			Type, Target string
			Hop          struct{ TTL int }
			Result       struct{ Input string }
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		switch rec.Type {
		case "hop":
			seq = append(seq, fmt.Sprintf("hop %s %d", rec.Target, rec.Hop.TTL))
		case "result":
			seq = append(seq, "result "+rec.Target)
		default:
			seq = append(seq, rec.Type)
		}
	}
	// The targets are traced at once, so their records interleave; each
	// target's hops come in TTL order before its result, and the end record
	// closes the stream.
	for _, target := range []string{"192.0.2.53", "2001:db8:53::53"} {
		var got []string
		for _, r := range seq {
			if strings.Contains(r, " "+target) {
				got = append(got, r)
			}
		}
		want := []string{"hop " + target + " 1", "hop " + target + " 2", "hop " + target + " 3", "hop " + target + " 4", "result " + target}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("records of %s\n%v\nwant\n%v", target, got, want)
		}
	}
	if len(seq) != 11 || seq[len(seq)-1] != "end" {
		t.Errorf("records %v: want 10 and the end record last", seq)
	}
}

// netByTarget routes each flow to the fake path of its destination, so
// the targets of one run can differ.
type netByTarget map[netip.Addr]*tracetest.Net

func (m netByTarget) Open(ctx context.Context, f trace.Flow, mode trace.Mode) (trace.Conn, error) {
	n, ok := m[f.Dst.Addr()]
	if !ok {
		return nil, fmt.Errorf("no fake path to %s", f.Dst.Addr())
	}
	return n.Open(ctx, f, mode)
}

// TestTraceTargetsAtOnce: several targets are traced at the same time
// (up to --parallel), their results stream as each ends (-o jsonl), and
// every output lists them in the order given.
func TestTraceTargetsAtOnce(t *testing.T) {
	slow, fast := netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("198.51.100.53")
	paths := func() netByTarget {
		s, f := fakePath(), fakePath()
		s.Dest.RTT = 300 * time.Millisecond
		f.Dest.RTT = 5 * time.Millisecond
		return netByTarget{slow: s, fast: f}
	}
	deps := func(n netByTarget) *deps {
		d := testDeps()
		d.traceNet = n
		return d
	}
	type span struct{ start, end time.Time }
	spans := func(t *testing.T, out string) []span {
		t.Helper()
		var doc struct {
			Results []struct {
				Input string
				Flows []struct {
					Path struct {
						Started   time.Time
						ElapsedMs float64 `json:"elapsed_ms"`
					}
				}
			}
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var ss []span
		for i, r := range doc.Results {
			if want := []string{slow.String(), fast.String()}[i]; r.Input != want {
				t.Errorf("result %d is %s, want %s: not in the order given", i, r.Input, want)
			}
			p := r.Flows[0].Path
			ss = append(ss, span{p.Started, p.Started.Add(time.Duration(p.ElapsedMs * float64(time.Millisecond)))})
		}
		if len(ss) != 2 {
			t.Fatalf("%d results, want 2", len(ss))
		}
		return ss
	}

	r := runCLI(t, deps(paths()), "trace", "--asn", "none", "-n", "-o", "json", slow.String(), fast.String())
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if ss := spans(t, r.stdout); !ss[1].start.Before(ss[0].end) {
		t.Errorf("the second target started %v after the first ended: traced one after the other", ss[1].start.Sub(ss[0].end))
	}

	r = runCLI(t, deps(paths()), "trace", "--asn", "none", "-n", "-o", "json", "--parallel", "1", slow.String(), fast.String())
	if r.code != ExitOK {
		t.Fatalf("--parallel 1: exit %d, stderr %q", r.code, r.stderr)
	}
	// Times are written to the millisecond: a start may read up to 1 ms
	// early.
	if ss := spans(t, r.stdout); ss[1].start.Add(time.Millisecond).Before(ss[0].end) {
		t.Errorf("--parallel 1: the second target started %v before the first ended", ss[0].end.Sub(ss[1].start))
	}

	// JSONL: the fast target's result is written first, as soon as it ends.
	r = runCLI(t, deps(paths()), "trace", "--asn", "none", "-n", "-o", "jsonl", slow.String(), fast.String())
	if r.code != ExitOK {
		t.Fatalf("jsonl: exit %d, stderr %q", r.code, r.stderr)
	}
	var results []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var rec struct{ Type, Target string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if rec.Type == "result" {
			results = append(results, rec.Target)
		}
	}
	if fmt.Sprint(results) != fmt.Sprint([]string{fast.String(), slow.String()}) {
		t.Errorf("jsonl results in the order %v, want the fast target's first", results)
	}

	// Text: in the order given.
	r = runCLI(t, deps(paths()), "trace", "--asn", "none", "-n", slow.String(), fast.String())
	if i, j := strings.Index(r.stdout, "trace to "+slow.String()), strings.Index(r.stdout, "trace to "+fast.String()); r.code != ExitOK || i < 0 || j < i {
		t.Errorf("text: exit %d, the slow target at %d, the fast one at %d:\n%s", r.code, i, j, r.stdout)
	}
}

// TestTraceSharedBudget: --rate caps the packets of all targets together,
// not of each. It runs on a synctest bubble's clock, so every probe's time
// is exact: a budget per target would send about twice the burst at once.
func TestTraceSharedBudget(t *testing.T) { synctest.Test(t, testTraceSharedBudget) }

func testTraceSharedBudget(t *testing.T) {
	const pps = 100
	a, b := fakePath(), fakePath()
	d := testDeps()
	d.traceNet = netByTarget{netip.MustParseAddr("192.0.2.53"): a, netip.MustParseAddr("198.51.100.53"): b}
	r := runCLI(t, d, "trace", "--asn", "none", "-n", "-o", "json", "--rate", fmt.Sprint(pps), "192.0.2.53", "198.51.100.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	sends := append(a.Sends(), b.Sends()...)
	slices.SortFunc(sends, func(x, y tracetest.Send) int { return x.At.Compare(y.At) })
	burst := trace.NewBudget(pps).Burst()
	if len(sends) <= burst {
		t.Fatalf("%d probes: the test needs more than the budget's burst (%d)", len(sends), burst)
	}
	for i, s := range sends {
		// 1e-6 packets absorbs the limiter's float arithmetic.
		if allowed := float64(burst) + pps*s.At.Sub(sends[0].At).Seconds() + 1e-6; float64(i+1) > allowed {
			t.Fatalf("probe %d of the run sent %v after the first: more than %d + %d/s over both targets", i+1, s.At.Sub(sends[0].At), burst, pps)
		}
	}
}

// lookupFunc is a whois.Resolver made of a function.
type lookupFunc func(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]whois.Origin, error)

func (f lookupFunc) Lookup(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]whois.Origin, error) {
	return f(ctx, addrs)
}

// TestTraceEnrichment: one lookup per trace for all its addresses fills
// the hops' origins and the AS path; a lookup that fails is a warning on
// stderr and in "errors", and the trace is still shown, exit 0.
func TestTraceEnrichment(t *testing.T) {
	d := fakeDeps(fakePath())
	var batches [][]netip.Addr
	d.newResolver = func(spec string, o whois.Options) (whois.Resolver, error) {
		return lookupFunc(func(_ context.Context, addrs []netip.Addr) (map[netip.Addr]whois.Origin, error) {
			batches = append(batches, addrs)
			out := map[netip.Addr]whois.Origin{}
			for _, a := range addrs {
				switch {
				case a == tracetest.Source4:
					out[a] = whois.Origin{Addr: a, ASNs: []uint32{64500}, ASName: "VANTAGE"}
				case a.Is4() && a.As4()[0] == 198:
					out[a] = whois.Origin{Addr: a, ASNs: []uint32{64510}, ASName: "TRANSIT"}
				case a.String() == "192.0.2.53":
					out[a] = whois.Origin{Addr: a, ASNs: []uint32{64520}, ASName: "ANYDNS"}
				}
			}
			return out, nil
		}), nil
	}
	r := runCLI(t, d, "trace", "-n", "192.0.2.53")
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if len(batches) != 1 || len(batches[0]) != 5 {
		t.Errorf("lookups %v, want one batch of the 3 routers, the target and the source", batches)
	}
	for _, want := range []string{"from AS64500", " 1  198.51.100.1  AS64510  TRANSIT", "as path   64510 → 64520", "upstream  198.51.100.3 from AS64510  TRANSIT  (hop 3)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}

	// The bulk whois server cannot be reached.
	d = fakeDeps(fakePath())
	d.whoisDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, fmt.Errorf("dial %s %s: connection refused", network, addr)
	}
	for _, format := range []string{"text", "json"} {
		r = runCLI(t, d, "trace", "-n", "--no-cache", "--whois-server", "198.51.100.130:43", "-o", format, "192.0.2.53")
		if r.code != ExitOK {
			t.Fatalf("%s: exit %d with a failed lookup, want 0 (a warning); stderr %q", format, r.code, r.stderr)
		}
		if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "192.0.2.53 whois") || !strings.Contains(lines[0], "the trace itself is complete") {
			t.Errorf("%s: stderr %q, want one warning naming the target and the lookup", format, r.stderr)
		}
		if format == "text" && !strings.Contains(r.stdout, `instance  inst-7`) {
			t.Errorf("the trace is not shown:\n%s", r.stdout)
		}
		if format == "json" {
			doc := decodeTrace(t, r.stdout)
			if len(doc.Results) != 1 || !doc.Results[0].Reached || len(doc.Errors) != 1 || doc.Errors[0].Stage != "whois" || doc.Errors[0].Target != "192.0.2.53" {
				t.Errorf("results %d, errors %+v", len(doc.Results), doc.Errors)
			}
		}
	}
}

// TestTraceExitCodes: 3 when a target is not reached or its trace cannot
// start (one line on stderr per failed target, JSON results [] when none
// was traced), 4 with a hint naming this binary when privilege is missing.
func TestTraceExitCodes(t *testing.T) {
	silent := fakePath()
	silent.Dest.Silent = true
	r := runCLI(t, fakeDeps(silent), "trace", "--asn", "none", "-n", "-m", "5", "-w", "200ms", "192.0.2.53")
	if r.code != ExitPartial || !strings.Contains(r.stdout, "not reached: max ttl") {
		t.Errorf("silent destination: exit %d, stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	noRoute := &tracetest.Net{OpenErr: errors.New("choose source address: dial udp 192.0.2.53:53: connect: network is unreachable")}
	r = runCLI(t, fakeDeps(noRoute), "trace", "--asn", "none", "-n", "192.0.2.53", "2001:db8:53::53")
	// The targets are traced at once: their lines come as each fails.
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	slices.Sort(lines)
	if r.code != ExitPartial || r.stdout != "" || len(lines) != 2 ||
		!strings.Contains(lines[0], "trace 192.0.2.53 udp/53: choose source address") || !strings.Contains(lines[1], "trace 2001:db8:53::53 udp/53") {
		t.Errorf("no route: exit %d, stdout %q, stderr %q; want exit 3 and one line per target", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, fakeDeps(noRoute), "trace", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitPartial || !strings.Contains(r.stdout, `"results": [],`) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("no route, json: exit %d, stdout %s, stderr %q", r.code, r.stdout, r.stderr)
	}
	if doc := decodeTrace(t, r.stdout); len(doc.Errors) != 1 || doc.Errors[0].Stage != "trace" {
		t.Errorf("errors %+v", doc.Errors)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	perm := &tracetest.Net{OpenErr: fmt.Errorf("open raw socket: operation not permitted: %w", trace.ErrPermission)}
	for _, c := range []struct {
		args    []string
		hint    string
		notHint string
	}{
		{[]string{"--mode", "raw"}, "setcap cap_net_raw+ep " + exe + ", or use --mode socket", ""},
		{[]string{"-P", "tcp"}, "tcp probes need raw sockets; grant raw sockets once with: setcap cap_net_raw+ep " + exe, "--mode socket"},
		{[]string{"-P", "icmp", "--mode", "socket"}, "net.ipv4.ping_group_range", "--mode socket"},
	} {
		r = runCLI(t, fakeDeps(perm), append(append([]string{"trace", "--asn", "none", "-n"}, c.args...), "192.0.2.53")...)
		if r.code != ExitPermission || r.stdout != "" || !strings.Contains(r.stderr, "hint: ") || !strings.Contains(r.stderr, c.hint) ||
			(c.notHint != "" && strings.Contains(r.stderr[strings.Index(r.stderr, "hint: "):], c.notHint)) {
			t.Errorf("%v: exit %d, stderr %q; want exit 4 and a hint with %q", c.args, r.code, r.stderr, c.hint)
		}
	}
	// Several targets at once: one permission error and one hint.
	r = runCLI(t, fakeDeps(perm), "trace", "--asn", "none", "-n", "192.0.2.53", "2001:db8:53::53", "198.51.100.53")
	if r.code != ExitPermission || r.stdout != "" || strings.Count(r.stderr, "hint: ") != 1 {
		t.Errorf("three targets without privilege: exit %d, stdout %q, stderr %q; want exit 4 and one hint", r.code, r.stdout, r.stderr)
	}
}

// TestTraceCannotStart: real sockets that cannot be set up (a --source not
// on this host, a --sport in use) fail the target with one line on stderr,
// before any probe is sent.
func TestTraceCannotStart(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	busy := pc.LocalAddr().(*net.UDPAddr).Port
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--source", "192.0.2.99"}, "192.0.2.99"},
		{[]string{"--sport", fmt.Sprint(busy)}, fmt.Sprintf("127.0.0.1:%d", busy)},
	} {
		r := runCLI(t, testDeps(), append(append([]string{"trace", "--asn", "none", "-n"}, c.args...), "127.0.0.1")...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != ExitPartial || r.stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "anycheck: trace 127.0.0.1 udp/53: ") || !strings.Contains(lines[0], c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 3 and one line naming %s", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
}

// TestTraceInterrupted: Ctrl-C during a trace prints the hops measured so
// far, keeps JSON valid with "interrupted": true, and exits 130.
func TestTraceInterrupted(t *testing.T) { synctest.Test(t, testTraceInterrupted) }

func testTraceInterrupted(t *testing.T) {
	n := fakePath()
	n.Hops = append(n.Hops, tracetest.Hop{Silent: true}, tracetest.Hop{Silent: true})
	n.Dest.Silent = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the third hop has been streamed.
	out := &cancelAfter{cancel: cancel, marker: `"ttl":3`}
	var errb bytes.Buffer
	code := run(ctx, []string{"trace", "--asn", "none", "-n", "-q", "1", "-o", "jsonl", "-w", "10s", "192.0.2.53"}, &streams{in: strings.NewReader(""), out: out, err: &errb}, fakeDeps(n))
	if code != ExitInterrupted {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if took := time.Since(out.cancelled); took != 0 {
		t.Errorf("ended %v after Ctrl-C: it did not stop the wait for the silent hops (-w 10s)", took)
	}
	reporttest.Check(t, out.Bytes(), true)
	if !strings.Contains(out.String(), `"interrupted":true`) || !strings.Contains(out.String(), `"type":"result"`) || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("stdout %s\nstderr %q", out.String(), errb.String())
	}
}

// cancelAfter is an output that cancels the run once it has seen marker.
type cancelAfter struct {
	bytes.Buffer
	cancel    func()
	marker    string
	cancelled time.Time
}

func (w *cancelAfter) Write(b []byte) (int, error) {
	if strings.Contains(string(b), w.marker) && w.cancelled.IsZero() {
		w.cancelled = time.Now()
		defer w.cancel()
	}
	return w.Buffer.Write(b)
}

// TestTracePTRNamesEscapedOnce: a reverse name holding a control byte and
// a backslash is shown escaped once in the hop table, and kept raw in JSON.
func TestTracePTRNamesEscapedOnce(t *testing.T) {
	names := whoistest.NewDNS(nil, whoistest.Zones{})
	names.SetName(tracetest.RouterAddr(false, 1), `r1\027[31m\\x.lab.example`)
	srv, err := whoistest.StartDNS("127.0.0.1:0", names)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := runCLI(t, fakeDeps(fakePath()), "trace", "--asn", "none", "--dns-server", srv.Addr, "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, ` 1  198.51.100.1  r1\x1b[31m\\x.lab.example  `) {
		t.Errorf("the name is not shown escaped once:\n%s", r.stdout)
	}
	r = runCLI(t, fakeDeps(fakePath()), "trace", "--asn", "none", "--dns-server", srv.Addr, "-o", "json", "192.0.2.53")
	if !strings.Contains(r.stdout, `"name": "r1\u001b[31m\\x.lab.example"`) {
		t.Errorf("JSON does not keep the raw name:\n%s", r.stdout)
	}
}

// TestTraceWideASNames: an AS name longer than the hop table's column is
// cut with "…" and the output says how to see it whole; --wide shows it
// whole; JSON always holds the whole name.
func TestTraceWideASNames(t *testing.T) {
	const long = "EXAMPLE-TRANSIT-BACKBONE-NETWORKS-EUROPE-LTD"
	deps := func() *deps {
		d := fakeDeps(fakePath())
		d.newResolver = func(spec string, o whois.Options) (whois.Resolver, error) {
			return lookupFunc(func(_ context.Context, addrs []netip.Addr) (map[netip.Addr]whois.Origin, error) {
				out := map[netip.Addr]whois.Origin{}
				for _, a := range addrs {
					out[a] = whois.Origin{Addr: a, ASNs: []uint32{64510}, ASName: long}
				}
				return out, nil
			}), nil
		}
		return d
	}
	r := runCLI(t, deps(), "trace", "-n", "192.0.2.53")
	if strings.Contains(r.stdout, long) || !strings.Contains(r.stdout, "EXAMPLE-TRANSIT-BACKBON…") || !strings.Contains(r.stdout, "--wide") {
		t.Errorf("default: the name should be cut, and --wide named:\n%s", r.stdout)
	}
	for _, args := range [][]string{{"--wide"}, {"-o", "json"}, {"--flows", "2", "--wide"}, {"--flows", "2", "-o", "json"}} {
		r := runCLI(t, deps(), append([]string{"trace", "-n"}, append(args, "192.0.2.53")...)...)
		if !strings.Contains(r.stdout, long) || strings.Contains(r.stdout, "…") {
			t.Errorf("%v: the whole name should be shown:\n%s", args, r.stdout)
		}
	}
}

// TestNSIDNoteNotOnEveryRun: an NSID set apart from hostname.bind (as many
// operators do on purpose) is no note on every id or trace run: the
// identity line already shows both.
func TestNSIDNoteNotOnEveryRun(t *testing.T) {
	r := runCLI(t, pipeDeps(&probetest.Server{Hostname: "i1.lab-a", NSID: []byte("i1-nsd")}), "id", "192.0.2.53")
	if r.code != ExitOK || strings.Contains(r.stdout, "note") || !strings.Contains(r.stdout, `(NSID "i1-nsd"; hostname.bind "i1.lab-a"`) {
		t.Errorf("id: exit %d:\n%s", r.code, r.stdout)
	}
	r = runCLI(t, pipeDeps(&probetest.Server{Hostname: "i1.lab-a", NSID: []byte("i1-nsd")}), "id", "--flows", "3", "192.0.2.53")
	if strings.Contains(r.stdout, "note") {
		t.Errorf("id --flows:\n%s", r.stdout)
	}
	d := fakeDeps(fakePath())
	r = runCLI(t, d, "trace", "-n", "--asn", "none", "192.0.2.53")
	if strings.Contains(r.stdout, "differ") {
		t.Errorf("trace:\n%s", r.stdout)
	}
}

// TestCompareNSIDNoteOncePerInstance: compare says once per instance
// that its NSID and hostname.bind differ, however many vantage points and
// targets reached it.
func TestCompareNSIDNoteOncePerInstance(t *testing.T) {
	dir := t.TempDir()
	for _, label := range []string{"c1", "c2", "c3"} {
		r := runCLI(t, pipeDeps(&probetest.Server{Hostname: "i1.lab-a", NSID: []byte("i1-nsd")}), "id", "--label", label, "-o", "json", "192.0.2.53", "2001:db8:53::53")
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if err := os.WriteFile(filepath.Join(dir, label+".json"), []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := runCLI(t, testDeps(), "compare", "--asn", "none", dir)
	if n := strings.Count(r.stdout, `i1-nsd: NSID "i1-nsd" and hostname.bind "i1.lab-a" differ`); n != 1 {
		t.Errorf("the note is said %d times, want once:\n%s", n, r.stdout)
	}
}
