package trace

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/internal/lab"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/probe/probetest"
)

// The lab test builds a chain of namespaces with static routes,
//
//	c1 — r1 — r2 (never sends time exceeded) — r3 — d (192.0.2.53, 2001:db8:53::53)
//
// and runs this test binary inside them: as a DNS server in d, and as the
// tracing client in c1 (as root, and as nobody for socket mode). A Go test
// process cannot move one goroutine into a namespace safely, so the code
// under test runs in a child process started with ip netns exec.

var labChild = flag.String("trace-lab-child", "", "internal: run TestLabChild as the lab's serve|trace|unprivileged side")

var labNodes = []string{"c1", "r1", "r2", "r3", "dst"}

var (
	labDst4 = netip.MustParseAddr("192.0.2.53")
	labDst6 = netip.MustParseAddr("2001:db8:53::53")
)

const labNSID = "lab-d-nsid"

// labLinkAddr is node k's address on link i (link i joins labNodes[i] and
// labNodes[i+1]; the node nearer the client has host part 1, the other 2).
func labLinkAddr(i int, upstream bool, v6 bool) netip.Prefix {
	host := 2
	if upstream {
		host = 1
	}
	if v6 {
		return netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8:10:%d::%d", i, host)), 64)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(4*i + host)}), 30)
}

func labTopology() lab.Topology {
	var topo lab.Topology
	last := len(labNodes) - 1
	for k, name := range labNodes {
		n := lab.Node{Name: name, Router: k > 0 && k < last}
		for _, v6 := range []bool{false, true} {
			if k < last { // toward d: the service and every link beyond
				via := labLinkAddr(k, false, v6).Addr()
				dst := netip.MustParsePrefix("192.0.2.0/24")
				if v6 {
					dst = netip.MustParsePrefix("2001:db8:53::/48")
				}
				n.Routes = append(n.Routes, lab.Route{Dst: dst, Via: []netip.Addr{via}})
				for j := k + 1; j < last; j++ {
					n.Routes = append(n.Routes, lab.Route{Dst: labLinkAddr(j, true, v6).Masked(), Via: []netip.Addr{via}})
				}
			}
			if k > 0 { // toward c1: every link before the one to our upstream neighbour
				via := labLinkAddr(k-1, true, v6).Addr()
				for j := 0; j < k-1; j++ {
					n.Routes = append(n.Routes, lab.Route{Dst: labLinkAddr(j, true, v6).Masked(), Via: []netip.Addr{via}})
				}
			}
		}
		switch name {
		case "c1":
			// Ping sockets for the unprivileged run.
			n.Sysctls = map[string]string{"net.ipv4.ping_group_range": "0 2147483647"}
		case "r2":
			n.NFT = `table inet anycheck_silent {
	chain output {
		type filter hook output priority 0; policy accept;
		icmp type time-exceeded drop
		icmpv6 type time-exceeded drop
	}
}
`
		case "dst":
			n.Service = []netip.Prefix{netip.PrefixFrom(labDst4, 32), netip.PrefixFrom(labDst6, 128)}
		}
		topo.Nodes = append(topo.Nodes, n)
	}
	for i := 0; i < last; i++ {
		topo.Links = append(topo.Links, lab.Link{Ends: []lab.End{
			{Node: labNodes[i], Addrs: []netip.Prefix{labLinkAddr(i, true, false), labLinkAddr(i, true, true)}},
			{Node: labNodes[i+1], Addrs: []netip.Prefix{labLinkAddr(i, false, false), labLinkAddr(i, false, true)}},
		}})
	}
	return topo
}

// labExpected is the hop list the routing implies: r1 and r3 answer from
// the interface the probe came in on, r2 is silent, d is the destination.
func labExpected(v6 bool) []string {
	dst := labDst4
	if v6 {
		dst = labDst6
	}
	return []string{labLinkAddr(0, false, v6).Addr().String(), "*", labLinkAddr(2, false, v6).Addr().String(), dst.String()}
}

// publicTestBinary copies this test binary where an unprivileged user can
// run it.
func publicTestBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "anycheck-trace-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "trace.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// labDiamond is c1 — r1 — {r2a | r2b} — r3 — dst: r1 balances traffic to
// the service over two next hops by a header hash of addresses, protocol
// and ports (policy 3, fields 0x37, as the lab notes recommend: a router's
// view, not a socket's random hash). ICMP rate limits are off here: the
// test runs dozens of traces back to back.
func labDiamond() lab.Topology {
	v4 := func(i int) netip.Prefix { return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 30) }
	v6 := func(link, host int) netip.Prefix {
		return netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8:20:%d::%d", link, host)), 64)
	}
	a := func(p netip.Prefix) netip.Addr { return p.Addr() }
	// Links: 0 c1-r1, 1 r1-r2a, 2 r1-r2b, 3 r2a-r3, 4 r2b-r3, 5 r3-dst;
	// link i is 198.51.100.4i/30 and 2001:db8:20:i::/64, hosts 1 (first
	// node) and 2.
	end := func(link, host int) []netip.Prefix { return []netip.Prefix{v4(4*link + host), v6(link, host)} }
	route := func(dst string, via ...netip.Addr) lab.Route {
		return lab.Route{Dst: netip.MustParsePrefix(dst), Via: via}
	}
	svc4, svc6 := "192.0.2.0/24", "2001:db8:53::/48"
	quiet := map[string]string{"net.ipv4.icmp_ratelimit": "0", "net.ipv6.icmp.ratelimit": "0"}
	balance := map[string]string{
		"net.ipv4.icmp_ratelimit": "0", "net.ipv6.icmp.ratelimit": "0",
		"net.ipv4.fib_multipath_hash_policy": "3", "net.ipv4.fib_multipath_hash_fields": "0x37",
		"net.ipv6.fib_multipath_hash_policy": "3", "net.ipv6.fib_multipath_hash_fields": "0x37",
	}
	c1back4, c1back6 := "198.51.100.0/30", "2001:db8:20:0::/64"
	return lab.Topology{
		Nodes: []lab.Node{
			{Name: "c1", Routes: []lab.Route{route(svc4, a(v4(2))), route("198.51.100.0/24", a(v4(2))), route(svc6, a(v6(0, 2))), route("2001:db8:20::/48", a(v6(0, 2)))}},
			{Name: "r1", Router: true, Sysctls: balance, Routes: []lab.Route{
				route(svc4, a(v4(6)), a(v4(10))), route(svc6, a(v6(1, 2)), a(v6(2, 2))),
				route("198.51.100.12/30", a(v4(6))), route("2001:db8:20:3::/64", a(v6(1, 2))),
				route("198.51.100.16/30", a(v4(10))), route("2001:db8:20:4::/64", a(v6(2, 2))),
			}},
			{Name: "r2a", Router: true, Sysctls: quiet, Routes: []lab.Route{route(svc4, a(v4(14))), route(svc6, a(v6(3, 2))), route(c1back4, a(v4(5))), route(c1back6, a(v6(1, 1)))}},
			{Name: "r2b", Router: true, Sysctls: quiet, Routes: []lab.Route{route(svc4, a(v4(18))), route(svc6, a(v6(4, 2))), route(c1back4, a(v4(9))), route(c1back6, a(v6(2, 1)))}},
			{Name: "r3", Router: true, Sysctls: quiet, Routes: []lab.Route{route(svc4, a(v4(22))), route(svc6, a(v6(5, 2))), route(c1back4, a(v4(13))), route(c1back6, a(v6(3, 1)))}},
			{Name: "dst", Service: []netip.Prefix{netip.PrefixFrom(labDst4, 32), netip.PrefixFrom(labDst6, 128)},
				Routes: []lab.Route{route("198.51.100.0/24", a(v4(21))), route("2001:db8:20::/48", a(v6(5, 1)))}},
		},
		Links: []lab.Link{
			{Ends: []lab.End{{Node: "c1", Addrs: end(0, 1)}, {Node: "r1", Addrs: end(0, 2)}}},
			{Ends: []lab.End{{Node: "r1", Addrs: end(1, 1)}, {Node: "r2a", Addrs: end(1, 2)}}},
			{Ends: []lab.End{{Node: "r1", Addrs: end(2, 1)}, {Node: "r2b", Addrs: end(2, 2)}}},
			{Ends: []lab.End{{Node: "r2a", Addrs: end(3, 1)}, {Node: "r3", Addrs: end(3, 2)}}},
			{Ends: []lab.End{{Node: "r2b", Addrs: end(4, 1)}, {Node: "r3", Addrs: end(4, 2)}}},
			{Ends: []lab.End{{Node: "r3", Addrs: end(5, 1)}, {Node: "dst", Addrs: end(5, 2)}}},
		},
	}
}

// TestLabParisDiamond: a flow (fixed 5-tuple) keeps its branch of the
// diamond across runs although every probe's checksum and IP ID differ,
// while other source ports reach the other branch.
func TestLabParisDiamond(t *testing.T) {
	l := lab.Start(t, labDiamond())
	bin := publicTestBinary(t)
	if _, err := l.Spawn("dst", bin, "-test.run=^TestLabChild$", "-trace-lab-child=serve"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := l.Command(ctx, "c1", bin, "-test.run=^TestLabChild$", "-test.v", "-trace-lab-child=diamond").CombinedOutput()
	t.Logf("diamond child:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLabChild") {
		t.Fatalf("diamond child failed: %v", err)
	}
}

func TestLabTraceChain(t *testing.T) {
	l := lab.Start(t, labTopology())
	bin := publicTestBinary(t)
	if _, err := l.Spawn("dst", bin, "-test.run=^TestLabChild$", "-trace-lab-child=serve"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(t *testing.T, side string, as *lab.User) {
		args := []string{"-test.run=^TestLabChild$", "-test.v", "-trace-lab-child=" + side}
		cmd := l.Command(ctx, "c1", bin, args...)
		if as != nil {
			cmd = l.CommandAs(ctx, "c1", *as, bin, args...)
		}
		out, err := cmd.CombinedOutput()
		t.Logf("%s child:\n%s", side, out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestLabChild") {
			t.Fatalf("%s child failed: %v", side, err)
		}
	}
	t.Run("root", func(t *testing.T) { run(t, "trace", nil) })
	t.Run("nobody", func(t *testing.T) { run(t, "unprivileged", &lab.Nobody) })
}

// TestLabChild is the in-namespace side of TestLabTraceChain.
func TestLabChild(t *testing.T) {
	switch *labChild {
	case "":
		t.Skip("run inside the lab by TestLabTraceChain")
	case "serve":
		srv := &probetest.Server{Hostname: "lab-d", IDServer: "lab-d-id", NSID: []byte(labNSID)}
		for _, a := range []netip.Addr{labDst4, labDst6} {
			ap := netip.AddrPortFrom(a, 53).String()
			srv.Start(t, "udp", ap)
			srv.Start(t, "tcp", ap)
		}
		// Bounded: the parent kills this process at its end anyway.
		time.Sleep(3 * time.Minute)
	case "trace":
		waitLabServer(t)
		for _, v6 := range []bool{false, true} {
			for _, c := range []struct {
				proto Protocol
				mode  Mode
			}{{UDP, ModeRaw}, {UDP, ModeSocket}, {ICMP, ModeRaw}, {TCP, ModeRaw}} {
				t.Run(fmt.Sprintf("%s-%s-v6=%v", c.proto, c.mode, v6), func(t *testing.T) {
					checkLabPath(t, Options{Target: labTarget(v6), Proto: c.proto, Mode: c.mode})
				})
			}
		}
		t.Run("two traces at once", func(t *testing.T) {
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					checkLabPath(t, Options{Target: labDst4, Mode: ModeRaw, Proto: []Protocol{UDP, ICMP}[i]})
				}()
			}
			wg.Wait()
		})
	case "diamond":
		waitLabServer(t)
		diamondChild(t)
	case "unprivileged":
		if os.Geteuid() == 0 {
			t.Fatal("unprivileged side runs as root")
		}
		waitLabServer(t)
		// The root side just spent the routers' budget toward c1.
		for _, v6 := range []bool{false, true} {
			labBudget.tokens[v6], labBudget.at[v6] = 0, time.Now()
		}
		for _, v6 := range []bool{false, true} {
			for _, proto := range []Protocol{UDP, ICMP} {
				t.Run(fmt.Sprintf("%s-auto-v6=%v", proto, v6), func(t *testing.T) {
					p := checkLabPath(t, Options{Target: labTarget(v6), Proto: proto, Mode: ModeAuto})
					if p.Mode != ModeSocket {
						t.Errorf("auto mode as nobody ran %s", p.Mode)
					}
				})
			}
		}
	default:
		t.Fatalf("unknown -trace-lab-child %q", *labChild)
	}
}

func labTarget(v6 bool) netip.Addr {
	if v6 {
		return labDst6
	}
	return labDst4
}

// waitLabServer waits (bounded) until d's DNS server answers.
func waitLabServer(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err := probe.Run(ctx, probe.Options{Target: netip.AddrPortFrom(labDst4, 53), Timeout: 500 * time.Millisecond})
		cancel()
		if err == nil && res.Identity.NSID == labNSID {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab DNS server never answered: %v %+v", err, res.Identity)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// icmpBudget models the routers' default ICMP error rate limit toward c1
// (Linux: a bucket of 6 per destination address, refilled at 1/s; IPv6
// refills faster, 1/s is the safe bound), so back-to-back test traces do
// not starve each other. One trace uses 3 errors per router.
type icmpBudget struct {
	mu     sync.Mutex
	tokens map[bool]float64
	at     map[bool]time.Time
}

var labBudget = &icmpBudget{tokens: map[bool]float64{false: 6, true: 6}, at: map[bool]time.Time{}}

func (b *icmpBudget) take(v6 bool, n float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	refill := func() {
		if !b.at[v6].IsZero() {
			// 0.8/s: a margin for a loaded machine.
			b.tokens[v6] = min(6, b.tokens[v6]+0.8*time.Since(b.at[v6]).Seconds())
		}
		b.at[v6] = time.Now()
	}
	refill()
	if short := n - b.tokens[v6]; short > 0 {
		time.Sleep(time.Duration((short/0.8 + 0.2) * float64(time.Second)))
		refill()
	}
	b.tokens[v6] -= n
}

// checkLabPath traces and compares the hop list with what the lab's
// routing implies.
func checkLabPath(t *testing.T, o Options) Path {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o.Wait = 2 * time.Second
	labBudget.take(o.Target.Is6(), DefaultQueries)
	p, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	v6 := o.Target.Is6()
	var got []string
	for _, h := range p.Hops {
		var from string
		for _, pr := range h.Probes {
			if pr.Reply != nil {
				if from != "" && from != pr.Reply.From.String() {
					t.Errorf("ttl %d answered by %s and %s", h.TTL, from, pr.Reply.From)
				}
				from = pr.Reply.From.String()
				if pr.Reply.Kind == ReplyTimeExceeded && pr.Reply.ReplyTTL != 64-(h.TTL-1) && pr.Reply.ReplyTTL != 255-(h.TTL-1) {
					t.Errorf("ttl %d: reply ttl %d", h.TTL, pr.Reply.ReplyTTL)
				}
				if p.Mode == ModeRaw && pr.Reply.Kind == ReplyTimeExceeded && (pr.Reply.QuotedTTL != 1 || pr.Reply.NAT) {
					t.Errorf("ttl %d: quoted ttl %d nat %v", h.TTL, pr.Reply.QuotedTTL, pr.Reply.NAT)
				}
			} else if from == "" {
				from = "*"
			}
		}
		got = append(got, from)
	}
	want := labExpected(v6)
	if fmt.Sprint(got) != fmt.Sprint(want) || !p.Reached || p.DestTTL != 4 {
		t.Fatalf("%s %s: hops %v reached %v at %d, want %v reached at 4", o.Proto, p.Mode, got, p.Reached, p.DestTTL, want)
	}
	// r2's silence is given up after a few times the RTT of r3 and d,
	// not after Wait.
	if p.Elapsed > time.Second {
		t.Errorf("%s %s: took %v with one silent hop (Wait 2s)", o.Proto, p.Mode, p.Elapsed)
		for _, h := range p.Hops {
			for _, pr := range h.Probes {
				t.Logf("ttl %d seq %d sent +%v reply %+v", h.TTL, pr.Seq, pr.Sent.Sub(p.Started), pr.Reply)
			}
		}
	}
	if o.Proto == UDP && (p.Instance == nil || p.Instance.NSID != labNSID) {
		t.Errorf("%s: instance %+v, want NSID %s (notes %v)", o.Proto, p.Instance, labNSID, p.Notes)
	}
	if o.Proto == TCP {
		// The caller's identity query over TCP from the flow's port, once
		// the trace has freed it.
		res, err := probe.Run(ctx, probe.Options{Target: p.Flow.Dst, Source: p.Flow.Src, TCP: true, Names: []string{measure.NameHostnameBind}})
		if err != nil || res.Identity.NSID != labNSID {
			t.Errorf("tcp identity from %s: %+v, %v; want NSID %s", p.Flow.Src, res.Identity, err, labNSID)
		}
	}
	t.Logf("%s %s v6=%v: %v in %v", o.Proto, p.Mode, v6, got, p.Elapsed)
	return p
}

// diamondPath traces one flow through the diamond and returns its middle
// hop (r2a or r2b), checking the rest of the path.
func diamondPath(t *testing.T, o Options) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o.Wait = 2 * time.Second
	p, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	v6 := o.Target.Is6()
	r2a, r2b := "198.51.100.6", "198.51.100.10"
	r3a, r3b := "198.51.100.14", "198.51.100.18"
	first := "198.51.100.2"
	if v6 {
		r2a, r2b, r3a, r3b, first = "2001:db8:20:1::2", "2001:db8:20:2::2", "2001:db8:20:3::2", "2001:db8:20:4::2", "2001:db8:20::2"
	}
	var got []string
	for _, h := range p.Hops {
		from := ""
		for _, pr := range h.Probes {
			a := "*"
			if pr.Reply != nil {
				a = pr.Reply.From.String()
			}
			if from != "" && a != from {
				t.Fatalf("%s flow %s: ttl %d answered by %s and %s: the flow changed path between probes", o.Proto, p.Flow.Src, h.TTL, from, a)
			}
			from = a
		}
		got = append(got, from)
	}
	if !p.Reached || len(got) != 4 || got[0] != first || got[3] != o.Target.String() ||
		!(got[1] == r2a && got[2] == r3a || got[1] == r2b && got[2] == r3b) {
		t.Fatalf("%s flow %s: hops %v reached %v: not a path through the diamond", o.Proto, p.Flow.Src, got, p.Reached)
	}
	return got[1]
}

func diamondChild(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, c := range []struct {
			proto Protocol
			mode  Mode
			vary  bool // whether the source port is hashed (ICMP's identifier is not a port)
		}{{UDP, ModeRaw, true}, {UDP, ModeSocket, true}, {TCP, ModeRaw, true}, {ICMP, ModeRaw, false}} {
			t.Run(fmt.Sprintf("%s-%s-v6=%v", c.proto, c.mode, v6), func(t *testing.T) {
				base := uint16(40000 + rand.N(10000))
				o := Options{Target: labTarget(v6), Proto: c.proto, Mode: c.mode, SrcPort: base}
				first := diamondPath(t, o)
				for range 19 {
					if mid := diamondPath(t, o); mid != first {
						t.Fatalf("same flow, middle hop %s then %s", first, mid)
					}
				}
				if !c.vary {
					return
				}
				seen := map[string]bool{}
				for i := range 16 {
					o.SrcPort = base + 1 + uint16(i)
					seen[diamondPath(t, o)] = true
				}
				if len(seen) != 2 {
					t.Errorf("16 flows all took %v: the diamond does not balance by port", seen)
				}
			})
		}
	}
}
