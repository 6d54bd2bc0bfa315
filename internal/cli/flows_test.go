package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/internal/report/reporttest"
	"github.com/anycheck/anycheck/sweep"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/trace/tracetest"
)

// ecmpNet is a fake network behind a per-flow load balancer: the source
// port picks the branch, as a router hashing the 5-tuple does. Each flow
// gets a path of its own (a tracetest.Net built by its branch), which also
// serves the identity connection from the same port (TCP/53).
type ecmpNet struct {
	branches []func() *tracetest.Net
	pick     func(port uint16) int
	busy     map[uint16]bool // ports another program holds

	mu   sync.Mutex
	nets map[uint16]*tracetest.Net
	held map[uint16]int // open traces per source port: a trace holds its port, as a bound socket does
}

// heldConn gives its port back when the trace closes it.
type heldConn struct {
	trace.Conn
	e    *ecmpNet
	port uint16
	once sync.Once
}

func (c *heldConn) Close() error {
	c.once.Do(func() {
		c.e.mu.Lock()
		c.e.held[c.port]--
		c.e.mu.Unlock()
	})
	return c.Conn.Close()
}

func (e *ecmpNet) flowNet(port uint16) *tracetest.Net {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.nets == nil {
		e.nets = map[uint16]*tracetest.Net{}
	}
	n := e.nets[port]
	if n == nil {
		n = e.branches[e.pick(port)]()
		e.nets[port] = n
	}
	return n
}

func (e *ecmpNet) Open(ctx context.Context, f trace.Flow, mode trace.Mode) (trace.Conn, error) {
	port := f.Src.Port()
	e.mu.Lock()
	if e.held == nil {
		e.held = map[uint16]int{}
	}
	inUse := e.busy[port] || e.held[port] > 0
	if !inUse {
		e.held[port]++
	}
	e.mu.Unlock()
	if inUse {
		return nil, fmt.Errorf("bind udp source port %d: %w", port, &net.OpError{Op: "listen", Net: "udp", Err: syscall.EADDRINUSE})
	}
	c, err := e.flowNet(port).Open(ctx, f, mode)
	if err != nil {
		return nil, err
	}
	return &heldConn{Conn: c, e: e, port: port}, nil
}

func (e *ecmpNet) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	return e.flowNet(laddr.Port()).DialTCP(ctx, laddr, raddr)
}

func (e *ecmpNet) ListenUDP(ctx context.Context, laddr, raddr netip.AddrPort) (net.Conn, error) {
	return e.flowNet(laddr.Port()).ListenUDP(ctx, laddr, raddr)
}

// sends are every probe sent on every flow, by time.
func (e *ecmpNet) sends() []tracetest.Send {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []tracetest.Send
	for _, n := range e.nets {
		out = append(out, n.Sends()...)
	}
	slices.SortFunc(out, func(a, b tracetest.Send) int { return a.At.Compare(b.At) })
	return out
}

// branchHash spreads ports over two branches like a router's hash: not
// by parity, so consecutive ports do not simply alternate.
func branchHash(port uint16) int {
	h := uint32(port) * 2654435761
	return int(h>>16) & 1
}

var (
	hopE1 = netip.MustParseAddr("198.51.100.1")
	hopM1 = netip.MustParseAddr("198.51.100.18")
	hopM2 = netip.MustParseAddr("198.51.100.22")
	hopR1 = netip.MustParseAddr("198.51.100.33")
)

// fakeRTT is the round trip to the first hop of the fake paths; hop t
// answers after t × fakeRTT. Go timers on a loaded test machine (and under
// the race detector) fire late and out of order by a hundred milliseconds
// and more; the engine gives up a silent hop 2 × the largest RTT beyond
// it after sending, so RTTs of this size keep a late timer from passing
// for a silent router.
const fakeRTT = 40 * time.Millisecond

// diamondNet: every flow crosses e1, then m1 or m2 by its port, then r1,
// to one instance.
func diamondNet() *ecmpNet {
	branch := func(mid netip.Addr) func() *tracetest.Net {
		return func() *tracetest.Net {
			return &tracetest.Net{
				Hops: []tracetest.Hop{{Addr: hopE1, RTT: fakeRTT}, {Addr: mid, RTT: 2 * fakeRTT}, {Addr: hopR1, RTT: 3 * fakeRTT}},
				Dest: tracetest.Dest{RTT: 4 * fakeRTT, Hostname: "i1.lab-a", NSID: "i1-nsd"},
			}
		}
	}
	return &ecmpNet{branches: []func() *tracetest.Net{branch(hopM1), branch(hopM2)}, pick: branchHash}
}

// splitNet: the access router has equal routes to two sites of the
// service: the port decides which instance answers.
func splitNet() *ecmpNet {
	site := func(edge netip.Addr, host, nsid string) func() *tracetest.Net {
		return func() *tracetest.Net {
			return &tracetest.Net{
				Hops: []tracetest.Hop{{Addr: hopE1, RTT: fakeRTT}, {Addr: edge, RTT: 2 * fakeRTT}},
				Dest: tracetest.Dest{RTT: 3 * fakeRTT, Hostname: host, NSID: nsid},
			}
		}
	}
	return &ecmpNet{branches: []func() *tracetest.Net{
		site(netip.MustParseAddr("203.0.113.5"), "i1.lab-a", "i1-nsd"),
		site(netip.MustParseAddr("203.0.113.69"), "i2.lab-b", "i2-knot"),
	}, pick: branchHash}
}

func ecmpDeps(n *ecmpNet) *deps {
	d := testDeps()
	d.traceNet = n
	d.probeNet = n
	return d
}

// sweepJSON is the part of a sweep document these tests read.
type sweepJSON struct {
	Kind        string
	Interrupted bool
	Results     []struct {
		Input, Target, Protocol string
		Identity                string `json:"identity_from"`
		Flows                   []struct {
			Flow struct {
				Sport int
				Src   string
			}
			Path struct {
				Reached bool
				Hops    []struct {
					TTL        int
					Responders []struct{ Address string }
				}
			}
			Instance struct{ Name string }
			Answers  []struct{ Transport string }
		}
		FailedFlows []struct {
			Sport   int
			Message string
		} `json:"failed_flows"`
		Paths []struct {
			Sports []int
			Hops   []struct {
				TTL        int
				Responders []struct{ Address string }
			}
			Instances []struct {
				Instance string
				Flows    int
			}
		}
		Summary struct {
			Flows, Reached, Failed, Paths int
			Diamonds                      []struct {
				PartTTL      int  `json:"part_ttl"`
				JoinTTL      *int `json:"join_ttl"`
				Alternatives []struct {
					TTL       int
					Addresses []struct {
						Address string
						Flows   int
					}
				}
			}
			Instances []struct {
				Instance string
				Flows    int
			}
			Split bool
			Stop  struct {
				Mode, Reason string
				MaxFlows     int `json:"max_flows"`
				Rounds       int
				Unsatisfied  []struct {
					TTL, Needed, Flows int
				}
			}
		}
	}
	Errors []struct{ Target, Stage, Message string }
}

func decodeSweep(t *testing.T, out string) sweepJSON {
	t.Helper()
	reporttest.Check(t, []byte(out), false)
	var doc sweepJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.Kind != "sweep" || len(doc.Results) == 0 {
		t.Fatalf("kind %q with %d results, want a sweep", doc.Kind, len(doc.Results))
	}
	return doc
}

// TestSweepDiamond: 16 flows through a diamond find both middle hops at
// its TTL, each flow shows exactly one, the paths are grouped (each once,
// with its flows) and the summary names the TTLs where they part and join.
func TestSweepDiamond(t *testing.T) {
	n := diamondNet()
	r := runCLI(t, ecmpDeps(n), "trace", "--flows", "16", "--sport", "40000", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	doc := decodeSweep(t, r.stdout)
	s := doc.Results[0]
	if len(s.Flows) != 16 || s.Summary.Flows != 16 || s.Summary.Reached != 16 {
		t.Fatalf("%d flows, summary %+v", len(s.Flows), s.Summary)
	}
	mids := map[string][]int{}
	for i, f := range s.Flows {
		if f.Flow.Sport != 40000+i {
			t.Errorf("flow %d has port %d, want %d", i, f.Flow.Sport, 40000+i)
		}
		if len(f.Path.Hops) != 4 || len(f.Path.Hops[1].Responders) != 1 {
			t.Fatalf("flow %d: hops %+v, want 4 with one responder at ttl 2", f.Flow.Sport, f.Path.Hops)
		}
		mid := f.Path.Hops[1].Responders[0].Address
		want := []netip.Addr{hopM1, hopM2}[branchHash(uint16(f.Flow.Sport))]
		if mid != want.String() {
			t.Errorf("flow %d: ttl 2 is %s, the network sent it through %s", f.Flow.Sport, mid, want)
		}
		mids[mid] = append(mids[mid], f.Flow.Sport)
		if f.Instance.Name != "i1-nsd" {
			t.Errorf("flow %d: instance %+v", f.Flow.Sport, f.Instance)
		}
	}
	if len(mids) != 2 {
		t.Fatalf("middle hops %v: want both branches", mids)
	}
	if s.Summary.Paths != 2 || len(s.Paths) != 2 {
		t.Fatalf("%d paths, want 2", s.Summary.Paths)
	}
	for _, p := range s.Paths {
		if len(p.Instances) != 1 || p.Instances[0].Instance != "i1-nsd" || p.Instances[0].Flows != len(p.Sports) {
			t.Errorf("path %v: instances %+v", p.Sports, p.Instances)
		}
		if !slices.Equal(p.Sports, mids[hopM1.String()]) && !slices.Equal(p.Sports, mids[hopM2.String()]) {
			t.Errorf("path with ports %v is neither branch's flows %v", p.Sports, mids)
		}
	}
	ds := s.Summary.Diamonds
	if len(ds) != 1 || ds[0].PartTTL != 1 || ds[0].JoinTTL == nil || *ds[0].JoinTTL != 3 || len(ds[0].Alternatives) != 1 || ds[0].Alternatives[0].TTL != 2 {
		t.Fatalf("diamonds %+v, want one parting after ttl 1 and joining at 3", ds)
	}
	for _, a := range ds[0].Alternatives[0].Addresses {
		if a.Flows != len(mids[a.Address]) {
			t.Errorf("ttl 2 %s: %d flows, want %d", a.Address, a.Flows, len(mids[a.Address]))
		}
	}
	if s.Summary.Split || len(s.Summary.Instances) != 1 || s.Summary.Instances[0].Flows != 16 {
		t.Errorf("instances %+v split %v", s.Summary.Instances, s.Summary.Split)
	}
	if s.Summary.Stop.Mode != "fixed" || s.Summary.Stop.Reason != "flows" || s.Summary.Stop.MaxFlows != 16 {
		t.Errorf("stop %+v", s.Summary.Stop)
	}

	// The text shows each path once, then the summary.
	r = runCLI(t, ecmpDeps(diamondNet()), "trace", "--flows", "16", "--sport", "40000", "--asn", "none", "-n", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("text: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{
		"sweep to 192.0.2.53, udp/53, 16 paris flows from 192.0.2.10 ports 40000-40015 → 192.0.2.53:53, raw mode",
		"path 1 of 2", "path 2 of 2", "→ i1-nsd",
		"paths     2 distinct paths over 16 flows; 16 reached the target",
		"diamond   paths part after ttl 1 (198.51.100.1) and join at ttl 3 (198.51.100.33)",
		fmt.Sprintf("          ttl 2: 198.51.100.18 on %s, 198.51.100.22 on %s", flowCount(len(mids[hopM1.String()])), flowCount(len(mids[hopM2.String()]))),
		"instances i1-nsd on 16 of 16 flows",
		"flows     16 traced (--flows 16)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Count(r.stdout, " 2  198.51.100.18") != 1 || strings.Count(r.stdout, " 2  198.51.100.22") != 1 {
		t.Errorf("each path's hops should be printed once:\n%s", r.stdout)
	}
}

func flowCount(n int) string {
	if n == 1 {
		return "1 flow"
	}
	return fmt.Sprintf("%d flows", n)
}

// TestSweepCatchmentSplit: flows that reach two instances are a catchment
// split, said before the paths; exit 0, or 3 with --strict (same output).
func TestSweepCatchmentSplit(t *testing.T) {
	var outs []string
	for _, strict := range []bool{false, true} {
		args := []string{"trace", "--flows", "16", "--sport", "40000", "--asn", "none", "-n"}
		if strict {
			args = append(args, "--strict")
		}
		r := runCLI(t, ecmpDeps(splitNet()), append(args, "192.0.2.53")...)
		want := ExitOK
		if strict {
			want = ExitPartial
		}
		if r.code != want {
			t.Fatalf("strict %v: exit %d, want %d; stderr %q", strict, r.code, want, r.stderr)
		}
		if strict != strings.Contains(r.stderr, "catchment split by flow (--strict)") {
			t.Errorf("strict %v: stderr %q", strict, r.stderr)
		}
		outs = append(outs, r.stdout)
	}
	// --strict changes the exit status only (timings aside).
	summary := regexp.MustCompile(`(?m)^(catchment split|instances) .*$`)
	if a, b := summary.FindAllString(outs[0], -1), summary.FindAllString(outs[1], -1); len(a) != 2 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("--strict changed the output:\n%s\n---\n%s", outs[0], outs[1])
	}
	n1 := 0
	for p := 40000; p < 40016; p++ {
		if branchHash(uint16(p)) == 0 {
			n1++
		}
	}
	first, second := fmt.Sprintf("i1-nsd on %d", n1), fmt.Sprintf("i2-knot on %d", 16-n1)
	if n1 < 8 {
		first, second = fmt.Sprintf("i2-knot on %d", 16-n1), fmt.Sprintf("i1-nsd on %d", n1)
	}
	lines := strings.Split(outs[0], "\n")
	if want := "catchment split by flow: " + first + " of 16 flows, " + second; lines[1] != want {
		t.Errorf("second line %q, want %q:\n%s", lines[1], want, outs[0])
	}
	if !strings.Contains(outs[0], "diamond   paths part after ttl 1 (198.51.100.1) and do not join again") {
		t.Errorf("the paths never join (one anycast address, two instances):\n%s", outs[0])
	}

	r := runCLI(t, ecmpDeps(splitNet()), "trace", "--flows", "16", "--sport", "40000", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	doc := decodeSweep(t, r.stdout)
	s := doc.Results[0]
	if !s.Summary.Split || len(s.Summary.Instances) != 2 {
		t.Fatalf("summary %+v", s.Summary)
	}
	for _, f := range s.Flows {
		want := []string{"i1-nsd", "i2-knot"}[branchHash(uint16(f.Flow.Sport))]
		if f.Instance.Name != want {
			t.Errorf("flow %d: instance %+v, its branch ends at %s", f.Flow.Sport, f.Instance, want)
		}
	}
}

// TestSweepTCPIdentity: on TCP/53 each flow's instance is asked over a
// connection from that flow's own source port once its trace is over.
func TestSweepTCPIdentity(t *testing.T) {
	n := splitNet()
	r := runCLI(t, ecmpDeps(n), "trace", "-P", "tcp", "--flows", "8", "--sport", "41000", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	s := decodeSweep(t, r.stdout).Results[0]
	if s.Identity != "tcp53" || len(s.Flows) != 8 {
		t.Fatalf("identity %q, %d flows", s.Identity, len(s.Flows))
	}
	for _, f := range s.Flows {
		want := []string{"i1-nsd", "i2-knot"}[branchHash(uint16(f.Flow.Sport))]
		if f.Instance.Name != want || len(f.Answers) != 1 || f.Answers[0].Transport != "tcp" {
			t.Errorf("flow %d: instance %+v answers %+v, want %s over tcp", f.Flow.Sport, f.Instance, f.Answers, want)
		}
		dials := n.flowNet(uint16(f.Flow.Sport)).Dials()
		if len(dials) != 1 || dials[0].Local.Port() != uint16(f.Flow.Sport) {
			t.Errorf("flow %d: identity connections %+v", f.Flow.Sport, dials)
		}
	}
}

// TestSweepNoIdentity: ICMP flows and other ports carry no identity; the
// output says so rather than naming an instance.
func TestSweepNoIdentity(t *testing.T) {
	for _, args := range [][]string{{"-P", "icmp"}, {"--port", "33434"}} {
		r := runCLI(t, ecmpDeps(splitNet()), append(append([]string{"trace", "--flows", "4", "--asn", "none", "-n"}, args...), "192.0.2.53")...)
		if r.code != ExitOK {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		want := "instances unknown: icmp probes carry no identity query"
		if args[0] != "-P" {
			want = "instances unknown: udp probes to port 33434 carry no identity query"
		}
		if !strings.Contains(r.stdout, want) || strings.Contains(r.stdout, "i1-nsd") || strings.Contains(r.stdout, "catchment split") {
			t.Errorf("%v:\n%s", args, r.stdout)
		}
		r = runCLI(t, ecmpDeps(splitNet()), append(append([]string{"trace", "--flows", "4", "--asn", "none", "-n", "-o", "json"}, args...), "192.0.2.53")...)
		if s := decodeSweep(t, r.stdout).Results[0]; s.Identity != "none" || s.Summary.Split {
			t.Errorf("%v: identity %q split %v", args, s.Identity, s.Summary.Split)
		}
	}
}

// TestSweepAuto: --flows auto adds flows until no hop wants more (MDA at
// 95 %), capped by --max-flows; the output says how many and why.
func TestSweepAuto(t *testing.T) {
	// One path: the first round settles it.
	single := &ecmpNet{branches: []func() *tracetest.Net{func() *tracetest.Net {
		return &tracetest.Net{Hops: tracetest.Routers(3, fakeRTT), Dest: tracetest.Dest{RTT: 4 * fakeRTT, Hostname: "i1.lab-a", NSID: "i1-nsd"}}
	}}, pick: func(uint16) int { return 0 }}
	r := runCLI(t, ecmpDeps(single), "trace", "--flows", "auto", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	s := decodeSweep(t, r.stdout).Results[0]
	if st := s.Summary.Stop; st.Mode != "auto" || st.Reason != "mda" || st.Rounds != 1 || st.MaxFlows != 64 || len(st.Unsatisfied) != 0 || len(s.Flows) != sweep.FirstRound {
		t.Errorf("single path: %d flows, stop %+v", len(s.Flows), st)
	}

	// The diamond: enough flows through each branch's hop for the rule.
	r = runCLI(t, ecmpDeps(diamondNet()), "trace", "--flows", "auto", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	s = decodeSweep(t, r.stdout).Results[0]
	st := s.Summary.Stop
	if st.Reason != "mda" || len(st.Unsatisfied) != 0 || s.Summary.Paths != 2 {
		t.Fatalf("diamond: %d flows in %d paths, stop %+v", len(s.Flows), s.Summary.Paths, st)
	}
	flows := map[string]int{}
	for _, f := range s.Flows {
		flows[f.Path.Hops[1].Responders[0].Address]++
	}
	need2, need1 := catchment.MDAStoppingPoint(2, 0.95), catchment.MDAStoppingPoint(1, 0.95)
	if len(s.Flows) < need2 || flows[hopM1.String()] < need1 || flows[hopM2.String()] < need1 {
		t.Errorf("stopped with %d flows, %v per branch: e1 needs %d, each branch %d", len(s.Flows), flows, need2, need1)
	}
	ports := map[int]bool{}
	for _, f := range s.Flows {
		if ports[f.Flow.Sport] || f.Flow.Sport < 49152 /* the IANA dynamic range */ {
			t.Errorf("port %d reused or outside the dynamic range", f.Flow.Sport)
		}
		ports[f.Flow.Sport] = true
	}

	// A cap below what the rule wants stops at the cap, and says which
	// hops still wanted flows.
	r = runCLI(t, ecmpDeps(diamondNet()), "trace", "--flows", "auto", "--max-flows", "8", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	s = decodeSweep(t, r.stdout).Results[0]
	if st := s.Summary.Stop; st.Reason != "max_flows" || len(s.Flows) != 8 || len(st.Unsatisfied) == 0 || st.Unsatisfied[0].TTL != 1 || st.Unsatisfied[0].Needed != need2 {
		t.Errorf("capped at 8: %d flows, stop %+v", len(s.Flows), st)
	}
	r = runCLI(t, ecmpDeps(diamondNet()), "trace", "--flows", "auto", "--max-flows", "8", "--asn", "none", "-n", "192.0.2.53")
	if want := fmt.Sprintf("flows     8 of at most 8 (--flows auto, 1 round): stopped at --max-flows; still short of the MDA stopping rule (95 %%): ttl 1 198.51.100.1 (2 next hops over 8 flows, %d needed)", need2); !strings.Contains(r.stdout, want) {
		t.Errorf("text lacks %q:\n%s", want, r.stdout)
	}
}

// TestSweepBadInput: bad --flows, --max-flows and port ranges are one-line
// usage errors naming the flag, with nothing on stdout.
func TestSweepBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--flows", "0"}, `--flows "0"`},
		{[]string{"--flows", "1000"}, `--flows "1000"`},
		{[]string{"--flows", "257"}, `--flows "257"`},
		{[]string{"--flows", "many"}, `--flows "many"`},
		{[]string{"--flows", "-3"}, `--flows "-3"`},
		{[]string{"--flows", "auto", "--max-flows", "0"}, "--max-flows 0"},
		{[]string{"--flows", "auto", "--max-flows", "300"}, "--max-flows 300"},
		{[]string{"--flows", "8", "--max-flows", "16"}, "--max-flows 16"},
		{[]string{"--flows", "16", "--sport", "65530"}, "--sport 65530 with 16 flows: ports run past 65535"},
		{[]string{"--flows", "auto", "--sport", "65500"}, "--sport 65500 with 64 flows"},
		{[]string{"-P", "icmp", "--flows", "4", "--sport", "65535"}, "--sport (echo identifier) 65535 with 4 flows"},
		{[]string{"--strict"}, "--strict"},
	} {
		r := runCLI(t, ecmpDeps(diamondNet()), append(append([]string{"trace"}, c.args...), "192.0.2.53")...)
		if r.code != ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 naming %q", c.args, r.code, r.stdout, r.stderr, c.want)
		}
		if first, _, _ := strings.Cut(r.stderr, "\n"); !strings.HasPrefix(first, "anycheck: ") {
			t.Errorf("%v: stderr %q", c.args, r.stderr)
		}
	}
	// The last port may be 65535 exactly.
	if r := runCLI(t, ecmpDeps(diamondNet()), "trace", "--flows", "16", "--sport", "65520", "--asn", "none", "-n", "192.0.2.53"); r.code != ExitOK {
		t.Errorf("--sport 65520 --flows 16: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestSweepFailedFlow: a flow that cannot be traced is reported on its
// own, the others complete; a port of an automatic range that is in use
// is skipped instead.
func TestSweepFailedFlow(t *testing.T) {
	n := diamondNet()
	n.busy = map[uint16]bool{40003: true}
	r := runCLI(t, ecmpDeps(n), "trace", "--flows", "8", "--sport", "40000", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitPartial {
		t.Errorf("exit %d, want %d (a flow failed)", r.code, ExitPartial)
	}
	s := decodeSweep(t, r.stdout).Results[0]
	if len(s.Flows) != 7 || len(s.FailedFlows) != 1 || s.FailedFlows[0].Sport != 40003 || !strings.Contains(s.FailedFlows[0].Message, "address already in use") || s.Summary.Failed != 1 {
		t.Fatalf("%d flows, failed %+v", len(s.Flows), s.FailedFlows)
	}
	if !strings.Contains(r.stderr, "flow 40003") {
		t.Errorf("stderr does not name the failed flow: %q", r.stderr)
	}
	r = runCLI(t, ecmpDeps(n), "trace", "--flows", "8", "--sport", "40000", "--asn", "none", "-n", "192.0.2.53")
	if !strings.Contains(r.stdout, "failed    flow 40003: ") || !strings.Contains(r.stdout, "8 paris flows") {
		t.Errorf("text does not report the failed flow:\n%s", r.stdout)
	}

	// Automatic ports: a port in use is skipped for the next free one.
	n = diamondNet()
	n.busy = map[uint16]bool{}
	for p := 49152; p <= 65535; p++ {
		if p%3 == 0 {
			n.busy[uint16(p)] = true
		}
	}
	r = runCLI(t, ecmpDeps(n), "trace", "--flows", "12", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("automatic ports with busy ones: exit %d, stderr %q", r.code, r.stderr)
	}
	s = decodeSweep(t, r.stdout).Results[0]
	if len(s.Flows) != 12 || len(s.FailedFlows) != 0 {
		t.Fatalf("%d flows, failed %+v", len(s.Flows), s.FailedFlows)
	}
	seen := map[int]bool{}
	for _, f := range s.Flows {
		if n.busy[uint16(f.Flow.Sport)] || seen[f.Flow.Sport] {
			t.Errorf("flow on port %d: busy or used twice", f.Flow.Sport)
		}
		seen[f.Flow.Sport] = true
	}
}

// TestSweepSharesOneBudget: every flow of a run takes its packets from one
// budget (--rate is for the run): 16 flows × 4 probes at 200/s cannot all
// leave in the budget's first burst.
func TestSweepSharesOneBudget(t *testing.T) { synctest.Test(t, testSweepSharesOneBudget) }

func testSweepSharesOneBudget(t *testing.T) {
	n := diamondNet()
	const rate = 200.0
	r := runCLI(t, ecmpDeps(n), "trace", "--flows", "16", "-m", "4", "--rate", fmt.Sprint(rate), "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	sends := n.sends()
	if len(sends) != 16*4 {
		t.Fatalf("%d probes sent, want 64 (one per hop per flow)", len(sends))
	}
	// A token bucket lets burst packets go at once, then one per 1/rate:
	// exactly, on the bubble's clock (1e-6 absorbs the float arithmetic).
	burst := trace.NewBudget(rate).Burst()
	for i, s := range sends {
		if allowed := float64(burst) + rate*s.At.Sub(sends[0].At).Seconds() + 1e-6; float64(i+1) > allowed {
			t.Fatalf("probe %d left %v after the first: more than one budget of %v/s (burst %d) allows", i+1, s.At.Sub(sends[0].At), rate, burst)
		}
	}
}

// TestSweepInterrupted: Ctrl-C prints the flows measured so far as a
// valid document, exit 130.
func TestSweepInterrupted(t *testing.T) { synctest.Test(t, testSweepInterrupted) }

func testSweepInterrupted(t *testing.T) {
	n := diamondNet()
	// Odd branches' destination is slow: those flows are cut short.
	slow := n.branches[1]
	n.branches[1] = func() *tracetest.Net {
		x := slow()
		x.Dest.RTT = 5 * time.Second
		return x
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	var out, errb bytes.Buffer
	code := run(ctx, []string{"trace", "--flows", "8", "--sport", "40000", "-w", "10s", "--asn", "none", "-n", "-o", "json", "192.0.2.53"},
		&streams{in: strings.NewReader(""), out: &out, err: &errb}, ecmpDeps(n))
	if code != ExitInterrupted {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	doc := decodeSweep(t, out.String())
	s := doc.Results[0]
	if !doc.Interrupted || s.Summary.Stop.Reason != "interrupted" {
		t.Fatalf("interrupted %v, stop %+v", doc.Interrupted, s.Summary.Stop)
	}
	reached := 0
	for _, f := range s.Flows {
		if f.Path.Reached {
			reached++
			if branchHash(uint16(f.Flow.Sport)) != 0 {
				t.Errorf("flow %d reached a destination that answers after 5s", f.Flow.Sport)
			}
		}
	}
	if reached == 0 || len(s.Flows) != 8 {
		t.Errorf("%d flows kept, %d reached; want all 8 (the cut ones with their hops so far)", len(s.Flows), reached)
	}
}

// TestSweepJSONL: every flow's hops stream as they become final, tagged
// with the flow's port, then each target's sweep, then the end record.
func TestSweepJSONL(t *testing.T) {
	r := runCLI(t, ecmpDeps(diamondNet()), "trace", "--flows", "4", "--sport", "40000", "--asn", "none", "-n", "-o", "jsonl", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), true)
	hops := map[int][]int{}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var rec struct {
			Kind, Type string
			Flow       struct{ Sport int }
			Hop        struct{ TTL int }
			Result     struct{ Flows []any }
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Kind != "sweep" {
			t.Errorf("record kind %q", rec.Kind)
		}
		if rec.Type == "hop" {
			hops[rec.Flow.Sport] = append(hops[rec.Flow.Sport], rec.Hop.TTL)
			continue
		}
		types = append(types, rec.Type)
		if rec.Type == "result" && len(rec.Result.Flows) != 4 {
			t.Errorf("result with %d flows", len(rec.Result.Flows))
		}
	}
	if fmt.Sprint(types) != "[result end]" || len(hops) != 4 {
		t.Fatalf("records %v, hops per flow %v", types, hops)
	}
	for p, ttls := range hops {
		if !slices.Equal(ttls, []int{1, 2, 3, 4}) {
			t.Errorf("flow %d: hops %v", p, ttls)
		}
	}
}

// TestSweepReadByCompare: `anycheck compare` reads a sweep document (JSON
// and JSONL) as one line per target, with the split across its flows.
func TestSweepReadByCompare(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{"json", "jsonl"} {
		r := runCLI(t, ecmpDeps(splitNet()), "trace", "--flows", "16", "--sport", "40000", "--asn", "none", "-n", "-o", format, "192.0.2.53")
		if r.code != ExitOK {
			t.Fatalf("%s: exit %d, stderr %q", format, r.code, r.stderr)
		}
		file := filepath.Join(dir, "sweep."+format)
		if err := os.WriteFile(file, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		r = runCLI(t, testDeps(), "compare", "--asn", "none", "-o", "json", file)
		if r.code != ExitOK {
			t.Fatalf("compare %s: exit %d, stderr %q", format, r.code, r.stderr)
		}
		var doc struct {
			Results []struct {
				Instance      struct{ Name *string }
				Split         bool
				FlowInstances []struct {
					Instance string
					Flows    int
				} `json:"flow_instances"`
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Results) != 1 || !doc.Results[0].Split || len(doc.Results[0].FlowInstances) != 2 ||
			doc.Results[0].FlowInstances[0].Flows+doc.Results[0].FlowInstances[1].Flows != 16 {
			t.Errorf("compare %s: %+v", format, doc.Results)
		}
	}
}

// TestTraceDot: -o dot, for one flow or a sweep, is a Graphviz digraph
// that dot renders as it is.
func TestTraceDot(t *testing.T) {
	for _, args := range [][]string{{}, {"--flows", "8"}, {"--flows", "8", "-P", "icmp"}} {
		r := runCLI(t, ecmpDeps(splitNet()), append(append([]string{"trace", "--asn", "none", "-n", "-o", "dot"}, args...), "192.0.2.53")...)
		if r.code != ExitOK || !strings.HasPrefix(r.stdout, `digraph "paths" {`) {
			t.Fatalf("%v: exit %d, stderr %q\n%s", args, r.code, r.stderr, r.stdout)
		}
		if len(args) > 0 && args[len(args)-1] != "icmp" && (!strings.Contains(r.stdout, `"instance:192.0.2.53/i1-nsd"`) || !strings.Contains(r.stdout, `"instance:192.0.2.53/i2-knot"`)) {
			t.Errorf("%v: the split's two instances are not both drawn:\n%s", args, r.stdout)
		}
		dot, err := exec.LookPath("dot")
		if err != nil {
			if os.Getenv("ANYCHECK_LAB") != "" {
				t.Fatal("graphviz dot is needed (make lab-deps)")
			}
			t.Skip("graphviz dot not installed")
		}
		cmd := exec.Command(dot, "-Tsvg")
		cmd.Stdin = strings.NewReader(r.stdout)
		svg, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(svg), "<svg") {
			t.Fatalf("%v: dot -Tsvg: %v\n%s", args, err, svg)
		}
	}
	if r := runCLI(t, testDeps(), "id", "-o", "dot", "192.0.2.53"); r.code != ExitUsage {
		t.Errorf("id -o dot: exit %d", r.code)
	}
}

// TestIDFlows: `id --flows N` prints one line per flow (port, instance,
// RTT) and the instances' shares, the split first; JSON carries the
// summary; --strict exits 3 on a split and needs several flows.
func TestIDFlows(t *testing.T) {
	r := runCLI(t, ecmpDeps(splitNet()), "id", "--flows", "16", "--sport", "40000", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	n1 := 0
	for p := uint16(40000); p < 40016; p++ {
		if branchHash(p) == 0 {
			n1++
		}
	}
	lines := strings.Split(r.stdout, "\n")
	first, second := fmt.Sprintf("i1-nsd on %d", n1), fmt.Sprintf("i2-knot on %d", 16-n1)
	if n1 < 8 {
		first, second = fmt.Sprintf("i2-knot on %d", 16-n1), fmt.Sprintf("i1-nsd on %d", n1)
	}
	if want := "catchment split by flow: " + first + " of 16 flows, " + second; len(lines) < 3 || lines[1] != want {
		t.Fatalf("second line is not %q:\n%s", want, r.stdout)
	}
	if !regexp.MustCompile(`(?m)^  PORT +INSTANCE +RTT$`).MatchString(r.stdout) {
		t.Errorf("no table header:\n%s", r.stdout)
	}
	for p := 40000; p < 40016; p++ {
		want := []string{"i1-nsd", "i2-knot"}[branchHash(uint16(p))]
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^  %d +%s +[0-9.]+ ms$`, p, want)).MatchString(r.stdout) {
			t.Errorf("no line for port %d reaching %s:\n%s", p, want, r.stdout)
		}
	}
	for _, want := range []string{
		`instance  i1-nsd  (NSID "i1-nsd"; hostname.bind "i1.lab-a"; id.server "i1.lab-a")`,
		`instance  i2-knot  (NSID "i2-knot"; hostname.bind "i2.lab-b"; id.server "i2.lab-b")`,
		"instances " + first + " of 16 flows, " + second + "  — catchment split by flow",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, r.stdout)
		}
	}
	if len(regexp.MustCompile(`(?m)^instance  `).FindAllString(r.stdout, -1)) != 2 {
		t.Errorf("each instance's identity should be shown once, not per flow:\n%s", r.stdout)
	}

	r = runCLI(t, ecmpDeps(splitNet()), "id", "--flows", "16", "--sport", "40000", "-o", "json", "192.0.2.53")
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Results []struct {
			FlowSummary *struct {
				Flows     int
				Split     bool
				Instances []struct {
					Instance string
					Flows    int
				}
			} `json:"flow_summary"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if fs := doc.Results[0].FlowSummary; fs == nil || fs.Flows != 16 || !fs.Split || len(fs.Instances) != 2 || fs.Instances[0].Flows+fs.Instances[1].Flows != 16 {
		t.Errorf("flow summary %+v", fs)
	}

	r = runCLI(t, ecmpDeps(splitNet()), "id", "--flows", "16", "--sport", "40000", "--strict", "192.0.2.53")
	if r.code != ExitPartial || !strings.Contains(r.stderr, "catchment split by flow (--strict)") || !strings.Contains(r.stdout, "catchment split by flow: ") {
		t.Errorf("--strict: exit %d, stderr %q", r.code, r.stderr)
	}
	// No split: exit 0 even with --strict, and no split line.
	r = runCLI(t, ecmpDeps(diamondNet()), "id", "--flows", "8", "--sport", "40000", "--strict", "192.0.2.53")
	if r.code != ExitOK || strings.Contains(r.stdout, "split") || !strings.Contains(r.stdout, "instances i1-nsd on 8 of 8 flows") {
		t.Errorf("no split with --strict: exit %d, stderr %q\n%s", r.code, r.stderr, r.stdout)
	}
	if r := runCLI(t, testDeps(), "id", "--strict", "192.0.2.53"); r.code != ExitUsage || !strings.Contains(r.stderr, "--strict") {
		t.Errorf("id --strict with one flow: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestSweepAutoStallsOnRateLimits: behind a router that answers 6 probes
// and then nothing (Linux's ICMP rate limit for one source), --flows auto
// stops once a round brings no reply to the hops that want flows, instead
// of adding flows up to --max-flows that only show "*"; the output says
// why and suggests a rate the routers can answer.
func TestSweepAutoStallsOnRateLimits(t *testing.T) {
	n := diamondNet()
	var answered atomic.Int32
	for i, b := range n.branches {
		n.branches[i] = func() *tracetest.Net {
			x := b()
			x.Hops[0].Answers = func(int) bool { return answered.Add(1) <= 6 }
			return x
		}
	}
	r := runCLI(t, ecmpDeps(n), "trace", "--flows", "auto", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	s := decodeSweep(t, r.stdout).Results[0]
	st := s.Summary.Stop
	if st.Reason != "stalled" || st.Rounds != 2 || len(s.Flows) >= 64 || len(st.Unsatisfied) == 0 {
		t.Errorf("%d flows, stop %+v: want a stop after the second round", len(s.Flows), st)
	}
	r = runCLI(t, ecmpDeps(diamondNet()), "trace", "--flows", "auto", "--asn", "none", "-n", "192.0.2.53")
	if strings.Contains(r.stdout, "stalled") || strings.Contains(r.stdout, "rate-limit") {
		t.Errorf("a path whose routers all answer is not rate-limited:\n%s", r.stdout)
	}
	n = diamondNet()
	answered.Store(0)
	for i, b := range n.branches {
		n.branches[i] = func() *tracetest.Net {
			x := b()
			x.Hops[0].Answers = func(int) bool { return answered.Add(1) <= 6 }
			return x
		}
	}
	r = runCLI(t, ecmpDeps(n), "trace", "--flows", "auto", "--asn", "none", "-n", "192.0.2.53")
	for _, want := range []string{
		"stopped, the last round brought no reply to the hops that wanted flows (ICMP rate limits?)",
		"note      routers did not answer every flow: ttl 1 on ",
		"--rate 5",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestSweepTargetsShareNoPort: a flow holds its source port while it is
// traced, so several targets' sweeps never ask for one port at once: with
// --sport (every target's range) they take turns, automatic ports come
// from one plan for the run.
func TestSweepTargetsShareNoPort(t *testing.T) {
	for _, args := range [][]string{{"--sport", "40000"}, nil} {
		n := diamondNet()
		r := runCLI(t, ecmpDeps(n), append(append([]string{"trace", "--flows", "8", "--asn", "none", "-n", "-o", "json"}, args...), "192.0.2.53", "2001:db8:53::53")...)
		if r.code != ExitOK {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		doc := decodeSweep(t, r.stdout)
		ports := map[int]int{}
		for _, s := range doc.Results {
			if len(s.Flows) != 8 || len(s.FailedFlows) != 0 {
				t.Errorf("%v %s: %d flows, failed %+v", args, s.Target, len(s.Flows), s.FailedFlows)
			}
			for _, f := range s.Flows {
				ports[f.Flow.Sport]++
			}
		}
		if args != nil && (len(ports) != 8 || ports[40000] != 2) {
			t.Errorf("--sport: ports %v, want 40000-40007 for each target", ports)
		}
		if args == nil && len(ports) != 16 {
			t.Errorf("automatic ports %v, want 16 different ones", ports)
		}
	}
}

// TestTraceSportSeveralTargets: single traces of several targets with one
// --sport take turns instead of failing to bind the port all but once.
func TestTraceSportSeveralTargets(t *testing.T) {
	r := runCLI(t, ecmpDeps(diamondNet()), "trace", "--sport", "40000", "--asn", "none", "-n", "-o", "json", "192.0.2.53", "2001:db8:53::53", "ns.lab.example")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	doc := decodeTrace(t, r.stdout)
	if len(doc.Results) != 3 {
		t.Fatalf("%d results", len(doc.Results))
	}
	for _, p := range doc.Results {
		if p.Flow.Sport != 40000 || !p.Reached {
			t.Errorf("%s: port %d, reached %v", p.Input, p.Flow.Sport, p.Reached)
		}
	}
}

// TestSweepProgressOnTerminal: a sweep that runs more than a second shows
// how far it got on a terminal stderr while its flows still wait (here on
// a silent destination), and clears the line at the end; one that ends
// sooner shows nothing, and stdout never carries it.
// It runs on a synctest bubble's clock: "less than a second" is exact,
// not a hope on a loaded machine (under -race the quick sweep once took
// more than a second and showed progress).
func TestSweepProgressOnTerminal(t *testing.T) { synctest.Test(t, testSweepProgressOnTerminal) }

func testSweepProgressOnTerminal(t *testing.T) {
	silent := func() *ecmpNet {
		n := diamondNet()
		for i, b := range n.branches {
			n.branches[i] = func() *tracetest.Net {
				fn := b()
				fn.Dest.Silent = true
				return fn
			}
		}
		return n
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"trace", "--flows", "4", "--sport", "40000", "-m", "4", "-w", "1500ms", "--asn", "none", "-n", "192.0.2.53"},
		&streams{in: strings.NewReader(""), out: &out, err: &errb, errTTY: true}, ecmpDeps(silent()))
	if code != ExitPartial {
		t.Errorf("exit %d, want %d (no flow reached the target)", code, ExitPartial)
	}
	st := errb.String()
	if !strings.Contains(st, "\r\x1b[Ksweeping 192.0.2.53: 0 of 4 flows traced, 1.") {
		t.Errorf("no progress while the flows waited:\n%q", st)
	}
	if !strings.HasSuffix(st, "\r\x1b[K") {
		t.Errorf("the progress line is not cleared at the end: %q", st)
	}
	if strings.Contains(out.String(), "\x1b") || strings.Contains(out.String(), "sweeping") {
		t.Errorf("progress reached stdout:\n%q", out.String())
	}

	errb.Reset()
	code = run(context.Background(), []string{"trace", "--flows", "4", "--sport", "40100", "--asn", "none", "-n", "192.0.2.53"},
		&streams{in: strings.NewReader(""), out: &out, err: &errb, errTTY: true}, ecmpDeps(diamondNet()))
	if code != ExitOK || errb.Len() != 0 {
		t.Errorf("a sweep of less than a second: exit %d, stderr %q; want 0 and nothing", code, errb.String())
	}
}

// lossyDiamondNet is diamondNet behind a service that loses the answer
// to the first query of every flow at its own TTL (a lossy path or a busy
// server), with e1 silent on every fourth port (a router out of ICMP
// tokens).
func lossyDiamondNet() *ecmpNet {
	branch := func(mid netip.Addr, e1Silent bool) func() *tracetest.Net {
		return func() *tracetest.Net {
			return &tracetest.Net{
				Hops: []tracetest.Hop{{Addr: hopE1, RTT: fakeRTT, Silent: e1Silent}, {Addr: mid, RTT: 2 * fakeRTT}, {Addr: hopR1, RTT: 3 * fakeRTT}},
				Dest: tracetest.Dest{RTT: 4 * fakeRTT, Hostname: "i1.lab-a", NSID: "i1-nsd", Lost: func(ttl, seq int) bool { return ttl == 4 && seq == 0 }},
			}
		}
	}
	return &ecmpNet{
		branches: []func() *tracetest.Net{branch(hopM1, false), branch(hopM2, false), branch(hopM1, true), branch(hopM2, true)},
		pick: func(port uint16) int {
			if port%4 == 0 {
				return 2 + branchHash(port)
			}
			return branchHash(port)
		},
	}
}

// TestSweepLossyService: a service that loses answers is not blamed on
// routers' rate limits: every flow is placed at the destination's own TTL
// (the lost query is asked again), the note says answers were lost, the
// flows silent at a router are on the path their other hops fit (no path
// is drawn through hops that did not answer), and the advice never names
// the --rate the run already had.
func TestSweepLossyService(t *testing.T) {
	r := runCLI(t, ecmpDeps(lossyDiamondNet()), "trace", "--flows", "16", "--sport", "40000", "--asn", "none", "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	s := decodeSweep(t, r.stdout).Results[0]
	if s.Summary.Reached != 16 || s.Summary.Paths != 2 || len(s.Paths) != 2 {
		t.Errorf("reached %d, %d paths; want 16 flows on the diamond's 2 paths", s.Summary.Reached, s.Summary.Paths)
	}
	for _, f := range s.Flows {
		if len(f.Path.Hops) != 4 || f.Instance.Name == "" {
			t.Errorf("flow %d: %d hops, instance %+v; want the destination at ttl 4", f.Flow.Sport, len(f.Path.Hops), f.Instance)
		}
	}
	for _, p := range s.Paths {
		for _, h := range p.Hops {
			if len(h.Responders) == 0 {
				t.Errorf("path %v is drawn through a silent ttl %d", p.Sports, h.TTL)
			}
		}
	}

	r = runCLI(t, ecmpDeps(lossyDiamondNet()), "trace", "--flows", "16", "--sport", "40000", "--asn", "none", "-n", "192.0.2.53")
	for _, want := range []string{
		"paths     2 distinct paths over 16 flows; 16 reached the target",
		"note      the service did not answer 16 of 32 probes that reached it (on 16 flows): answers lost on the way",
		"note      routers did not answer every flow: ttl 1 on 4 of 16 flows, where other flows got a reply",
		"--rate 5 (about one probe a second for each router)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, " 4  *") {
		t.Errorf("a lost answer is drawn as a silent hop:\n%s", r.stdout)
	}

	// --rate 5 given: not advised again.
	r = runCLI(t, ecmpDeps(lossyDiamondNet()), "trace", "--flows", "4", "--sport", "40000", "--rate", "5", "--asn", "none", "-n", "192.0.2.53")
	if !strings.Contains(r.stdout, "routers did not answer every flow: ttl 1 on 1 of 4 flows") || strings.Contains(r.stdout, "--rate 5 (") {
		t.Errorf("--rate 5 given: the note should not advise it again:\n%s", r.stdout)
	}
}
