package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLabAnycastCatchments(t *testing.T) {
	t.Parallel()
	ac := StartAnycast(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	seen := map[string]string{}
	for _, client := range ac.Clients() {
		want, ok := ac.InstanceOf(client)
		if !ok {
			t.Fatalf("InstanceOf(%s): unreachable in a fresh lab", client)
		}
		for _, f := range []Family{IPv4, IPv6} {
			id, err := ac.IdentifyFrom(ctx, client, f)
			if err != nil {
				t.Fatalf("%s %v: %v", client, f, err)
			}
			if id.Hostname != want.Identity || id.NSID != want.NSID {
				t.Errorf("%s %v: dig says hostname.bind %q NSID %q, want instance %s (%q, %q)",
					client, f, id.Hostname, id.NSID, want.Name, want.Identity, want.NSID)
			}
			seen[client] = id.Hostname
		}
	}
	if seen["c1"] == seen["c2"] {
		t.Errorf("both clients reach %q: catchments are not split", seen["c1"])
	}

	// NSD hides its version (REFUSED); Knot answers it.
	for _, tc := range []struct {
		client, status string
	}{{"c1", "REFUSED"}, {"c2", "NOERROR"}} {
		out, _, err := ac.Run(ctx, tc.client, "dig", "@"+ac.ServiceV4.String(), "+time=1", "+tries=2",
			"CH", "TXT", "version.bind")
		if err != nil {
			t.Fatalf("version.bind from %s: %v", tc.client, err)
		}
		if !bytes.Contains(out, []byte("status: "+tc.status)) {
			t.Errorf("version.bind from %s: want status %s, got:\n%s", tc.client, tc.status, out)
		}
	}
}

// The lab must never have a way out: no default route in any namespace.
func TestLabNoRouteOut(t *testing.T) {
	t.Parallel()
	ac := StartAnycast(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range AnycastTopology().Nodes {
		for _, fam := range []string{"-4", "-6"} {
			out, _, err := ac.Run(ctx, n.Name, "ip", fam, "route", "show", "default")
			if err != nil {
				t.Fatalf("%s: %v", n.Name, err)
			}
			if len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("%s has a default route (%s): %s", n.Name, fam, out)
			}
		}
	}
	// And the services host is reachable from both clients, both families.
	for _, c := range ac.Clients() {
		for _, f := range []Family{IPv4, IPv6} {
			if _, _, err := ac.Run(ctx, c, "ping", "-c", "1", "-W", "2", ac.ServicesAddr(f).String()); err != nil {
				t.Errorf("%s cannot reach the services host over %v: %v", c, f, err)
			}
		}
	}
}

func TestLabTracerouteMatchesExpectedPath(t *testing.T) {
	t.Parallel()
	Require(t, "traceroute")
	ac := StartAnycast(t)
	for _, client := range ac.Clients() {
		for _, f := range []Family{IPv4, IPv6} {
			t.Run(client+"/"+f.String(), func(t *testing.T) {
				checkTraceroute(t, ac, client, f, 40000)
			})
		}
	}
}

func TestLabFailoverMovesClient(t *testing.T) {
	t.Parallel()
	Require(t, "traceroute")
	ac := StartAnycast(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if in, _ := ac.InstanceOf("c1"); in != ac.A {
		t.Fatalf("c1 starts at instance %s, want A", in.Name)
	}
	if err := ac.StopBGP("ra", "r1"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	in, err := ac.WaitInstance(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("c1 moved to instance %s in %v", in.Name, time.Since(start).Round(time.Millisecond))
	if in != ac.B {
		t.Fatalf("after stopping ra-r1, InstanceOf(c1) = %s, want B", in.Name)
	}
	if got, _ := ac.InstanceOf("c2"); got != ac.B {
		t.Errorf("c2 should stay at B, InstanceOf says %s", got.Name)
	}
	checkTraceroute(t, ac, "c1", IPv4, 40100)
	checkTraceroute(t, ac, "c1", IPv6, 40101)

	if err := ac.StartBGP("ra", "r1"); err != nil {
		t.Fatal(err)
	}
	if in, err := ac.WaitInstance(ctx, "c1"); err != nil || in != ac.A {
		t.Fatalf("after re-enabling ra-r1: instance %s, %v; want A", in.Name, err)
	}
}

// The diamond is real: the middle hop depends on the flow (source port)
// and only on it.
func TestLabECMPDiamond(t *testing.T) {
	t.Parallel()
	Require(t, "traceroute")
	ac := StartAnycast(t)
	// 16+20 probes per family at TTL 2 within a second would hit the
	// default ICMP rate limit (burst 6 per destination) of m1/m2.
	for _, m := range []string{"m1", "m2"} {
		if err := ac.DisableICMPRateLimit(m); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, f := range []Family{IPv4, IPv6} {
		middle := ac.ExpectedPath("c1", f)[1]
		hop2 := func(sport int) netip.Addr {
			hops := traceroute(t, ctx, ac, "c1", f, sport, 2, 2)
			if len(hops) != 1 || len(hops[0]) != 1 {
				t.Fatalf("%v sport %d: want one reply at TTL 2, got %v", f, sport, hops)
			}
			if !middle.Has(hops[0][0]) {
				t.Fatalf("%v sport %d: TTL 2 answered by %v (%s), want one of %v", f, sport, hops[0][0], ac.NodeOf(hops[0][0]), middle)
			}
			return hops[0][0]
		}
		seen := map[netip.Addr]int{}
		for sport := 41000; sport < 41016; sport++ {
			seen[hop2(sport)]++
		}
		if len(seen) != 2 {
			t.Errorf("%v: 16 source ports all crossed one branch %v; the diamond does not balance flows", f, seen)
		}
		first := hop2(42000)
		for range 19 {
			if got := hop2(42000); got != first {
				t.Fatalf("%v: one flow (sport 42000) crossed %s and %s: not per-flow hashing",
					f, ac.NodeOf(first), ac.NodeOf(got))
			}
		}
	}
}

func TestLabRunAsNobody(t *testing.T) {
	t.Parallel()
	ac := StartAnycast(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _, err := ac.RunAs(ctx, "c1", Nobody, "id", "-u")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "65534" {
		t.Errorf("RunAs(Nobody) runs as uid %s", got)
	}
	// An unprivileged process in the namespace still reaches its instance.
	out, _, err = ac.RunAs(ctx, "c2", Nobody, "dig", "@"+ac.ServiceV6.String(), "+time=1", "+tries=2",
		"+nsid", "CH", "TXT", "hostname.bind")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := parseDig(out); err != nil || id.NSID != ac.B.NSID {
		t.Errorf("dig as nobody from c2: %+v, %v; want NSID %q", id, err, ac.B.NSID)
	}
}

// A small generic topology: two hosts behind one router, static routes.
func TestLabStartGeneric(t *testing.T) {
	t.Parallel()
	l := Start(t, Topology{
		Nodes: []Node{
			{Name: "h1", Routes: []Route{{Dst: p("203.0.113.0/24"), Via: via("198.51.100.1")}}},
			{Name: "rtr", Router: true},
			{Name: "h2", Routes: []Route{{Dst: p("198.51.100.0/24"), Via: via("203.0.113.1")}}},
		},
		Links: []Link{
			{Ends: []End{{"rtr", ps("198.51.100.1/24")}, {"h1", ps("198.51.100.2/24")}}},
			{Ends: []End{{"rtr", ps("203.0.113.1/24")}, {"h2", ps("203.0.113.2/24")}}},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := l.Run(ctx, "h1", "ping", "-c", "1", "-W", "2", l.Addr("h2", "rtr", IPv4).String()); err != nil {
		t.Fatalf("h1 cannot reach h2 through rtr: %v", err)
	}
	if out, _, err := l.Run(ctx, "rtr", "sysctl", "-n", "net.ipv4.icmp_errors_use_inbound_ifaddr"); err != nil ||
		strings.TrimSpace(string(out)) != "1" {
		t.Errorf("router sysctl icmp_errors_use_inbound_ifaddr = %q, %v", out, err)
	}
	if out, _, err := l.Run(ctx, "rtr", "ethtool", "-k", "h1"); err != nil ||
		!bytes.Contains(out, []byte("tx-checksumming: off")) {
		t.Errorf("veth h1 on rtr: checksum offload not off: %v\n%s", err, out)
	}
}

// checkTraceroute runs a fixed-flow traceroute from client to the service
// and compares it hop by hop with ExpectedPath.
func checkTraceroute(t *testing.T, ac *Anycast, client string, f Family, sport int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := ac.ExpectedPath(client, f)
	got := traceroute(t, ctx, ac, client, f, sport, 1, 10)
	if len(got) != len(want) {
		t.Fatalf("traceroute from %s over %v: %d hops %v, want %d %v", client, f, len(got), got, len(want), want)
	}
	for i, w := range want {
		g := got[i]
		switch {
		case w.Silent() && len(g) != 0:
			t.Errorf("hop %d: want * (silent %v), got %v", i+1, w.Nodes, g)
		case !w.Silent() && (len(g) != 1 || !w.Has(g[0])):
			t.Errorf("hop %d: want one of %v, got %v", i+1, w, g)
		}
	}
}

// traceroute runs Debian's traceroute inside client with one probe per TTL
// on one flow (UDP to the closed port 33434 from sport, so both instances
// end the trace with port unreachable) and returns, per TTL, the addresses
// that answered (empty for "*").
func traceroute(t *testing.T, ctx context.Context, ac *Anycast, client string, f Family, sport, first, max int) [][]netip.Addr {
	t.Helper()
	out, stderr, err := ac.Run(ctx, client, "traceroute", "-"+strconv.Itoa(int(f)), "-n", "-q", "1", "-w", "1",
		"-f", strconv.Itoa(first), "-m", strconv.Itoa(max), "-U", "-p", "33434",
		"--sport="+strconv.Itoa(sport), ac.ServiceAddr(f).String())
	if err != nil {
		t.Fatalf("traceroute from %s: %v\n%s%s", client, err, out, stderr)
	}
	hops, err := parseTraceroute(out)
	if err != nil {
		t.Fatalf("traceroute from %s: %v\n%s", client, err, out)
	}
	return hops
}

func parseTraceroute(out []byte) ([][]netip.Addr, error) {
	var hops [][]netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] == "traceroute" {
			continue
		}
		if _, err := strconv.Atoi(f[0]); err != nil {
			return nil, fmt.Errorf("unexpected line %q", sc.Text())
		}
		var addrs []netip.Addr
		for _, tok := range f[1:] {
			if a, err := netip.ParseAddr(tok); err == nil {
				addrs = append(addrs, a)
			}
		}
		hops = append(hops, addrs)
	}
	return hops, sc.Err()
}

// A lab left behind by a killed test process (no t.Cleanup ran) is removed,
// daemons included, by the next lab start; a live process's lab is not.
func TestLabSweepsStaleLabs(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale, err := describe(t, Topology{Nodes: []Node{{Name: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	ns := stale.Namespace("x")
	if err := host(ctx, "ip", "netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host(context.Background(), "ip", "netns", "del", ns) })
	sleeper := exec.Command("ip", "netns", "exec", ns, "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()
	t.Cleanup(func() { _ = sleeper.Process.Kill() })
	// `ip netns exec` enters the namespace after it starts: sweep only once
	// the sleeper is inside, or there is nothing there to kill yet.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if out, _ := cmdOutput(ctx, "ip", "netns", "pids", ns); strings.TrimSpace(out) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sleeper never appeared in the stale namespace")
		}
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale.stateFile(), []byte(fmt.Sprintf("%d\n%s\n", dead.Process.Pid, ns)), 0o644); err != nil {
		t.Fatal(err)
	}
	live, err := describe(t, Topology{Nodes: []Node{{Name: "y"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := live.record(); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(live.stateFile())

	swept := sweepStale(ctx)
	if !slices.Contains(swept, stale.id) || slices.Contains(swept, live.id) {
		t.Errorf("swept %v, want %s and not %s", swept, stale.id, live.id)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Error("the process inside the stale namespace still runs")
	}
	if out, _ := cmdOutput(ctx, "ip", "netns", "list"); strings.Contains(out, ns) {
		t.Errorf("stale namespace %s still exists", ns)
	}
	if _, err := os.Stat(stale.stateFile()); !os.IsNotExist(err) {
		t.Errorf("stale state file remains: %v", err)
	}
}

// Binary yields a program an unprivileged user can run inside a namespace.
func TestLabBinaryRunsAsNobody(t *testing.T) {
	t.Parallel()
	l := Start(t, Topology{Nodes: []Node{{Name: "h"}}})
	bin := Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, stderr, err := l.RunAs(ctx, "h", Nobody, bin, "version")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !bytes.Contains(out, []byte("anycheck")) {
		t.Errorf("anycheck version printed %q", out)
	}
}
