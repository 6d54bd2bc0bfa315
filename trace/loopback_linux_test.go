package trace

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/probe/probetest"
)

// These tests use real sockets on loopback only (127/8 and ::1), or inside
// a network namespace the test creates with nothing but its loopback.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("raw sockets and port 53 on loopback need root")
	}
}

// random127 is a random 127/8 address, so servers on port 53 of parallel
// test runs do not collide.
func random127() netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(rand.N(250) + 2), byte(rand.N(250) + 2), byte(rand.N(250) + 2)})
}

// startDNS53 serves srv on port 53 (UDP probes carry a DNS query only to
// port 53) of a random 127/8 address, over UDP and TCP when pair is set.
func startDNS53(t *testing.T, srv *probetest.Server, pair bool) netip.AddrPort {
	t.Helper()
	needRoot(t)
	a := random127()
	ap := srv.Start(t, "udp", netip.AddrPortFrom(a, 53).String())
	if pair {
		srv.Start(t, "tcp", ap.String())
	}
	return ap
}

func traceLoopback(t *testing.T, o Options) Path {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if o.Wait == 0 {
		o.Wait = 2 * time.Second
	}
	if o.MinWait == 0 {
		// Loopback answers in microseconds, so the adaptive wait would give
		// a probe up after MinWait: on a loaded machine a reply can be read
		// later than the default 25ms, which is not what these tests check.
		o.MinWait = time.Second
	}
	var streamed []int
	o.OnHop = func(h Hop) { streamed = append(streamed, h.TTL) }
	p, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if o.Mode != ModeAuto && p.Mode != o.Mode {
		t.Errorf("ran in mode %s, asked for %s", p.Mode, o.Mode)
	}
	// Loopback delivers without forwarding: the destination is hop 1.
	if !p.Reached || p.DestTTL != 1 || p.Stop != StopReached || len(p.Hops) != 1 || fmt.Sprint(streamed) != "[1]" {
		t.Fatalf("reached %v at %d, stop %s, %d hops, streamed %v: want reached at ttl 1", p.Reached, p.DestTTL, p.Stop, len(p.Hops), streamed)
	}
	if len(p.Hops[0].Probes) != DefaultQueries {
		t.Fatalf("%d probes at ttl 1", len(p.Hops[0].Probes))
	}
	for _, pr := range p.Hops[0].Probes {
		if pr.Reply == nil || pr.Reply.From != o.Target {
			t.Fatalf("probe %d: reply %+v, want one from %s", pr.Seq, pr.Reply, o.Target)
		}
	}
	return p
}

func TestLoopbackUDP53Identity(t *testing.T) {
	srv := &probetest.Server{Hostname: "lo-inst-1", IDServer: "lo-id", NSID: []byte("nsid-lo-1")}
	dst := startDNS53(t, srv, false)
	for _, mode := range []Mode{ModeRaw, ModeSocket} {
		t.Run(string(mode), func(t *testing.T) {
			p := traceLoopback(t, Options{Target: dst.Addr(), Mode: mode})
			for _, pr := range p.Hops[0].Probes {
				if pr.Reply.Kind != ReplyDNS || pr.Reply.DNS == nil || pr.Reply.DNS.Status != "answered" {
					t.Errorf("probe %d: %+v, want an answered DNS reply", pr.Seq, pr.Reply)
				}
			}
			if p.Instance == nil || p.Instance.NSID != "nsid-lo-1" || p.Instance.HostnameBind != "lo-inst-1" {
				t.Errorf("instance = %+v, want NSID nsid-lo-1 and hostname.bind lo-inst-1", p.Instance)
			}
			// Every probe was a DNS query from the flow's one source port.
			for _, q := range srv.Queries() {
				if q.From.Port() == p.Flow.Src.Port() && (!q.NSID || q.Class != 3 || q.RD) {
					t.Errorf("query %+v: want CHAOS, NSID, RD clear", q)
				}
			}
		})
	}
}

func TestLoopbackUDP53IPv6(t *testing.T) {
	needRoot(t)
	if !probetest.HasIPv6Loopback() {
		t.Skip("no IPv6 loopback here")
	}
	srv := &probetest.Server{Hostname: "lo6", NSID: []byte("nsid-lo6")}
	pc, err := net.ListenPacket("udp6", "[::1]:53")
	if err != nil {
		t.Skipf("[::1]:53 busy: %v", err)
	}
	pc.Close()
	dst := srv.Start(t, "udp", "[::1]:53")
	for _, mode := range []Mode{ModeRaw, ModeSocket} {
		t.Run(string(mode), func(t *testing.T) {
			p := traceLoopback(t, Options{Target: dst.Addr(), Mode: mode})
			if p.Instance == nil || p.Instance.NSID != "nsid-lo6" {
				t.Errorf("instance = %+v", p.Instance)
			}
		})
	}
}

func TestLoopbackProtocols(t *testing.T) {
	needRoot(t)
	type tc struct {
		name string
		o    Options
		kind ReplyKind
	}
	var cases []tc
	for _, fam := range []string{"127.0.0.1", "::1"} {
		if fam == "::1" && !probetest.HasIPv6Loopback() {
			continue
		}
		a := netip.MustParseAddr(fam)
		l, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		open := uint16(l.Addr().(*net.TCPAddr).Port)
		// A port with nothing on it: UDP gets port unreachable, TCP a RST.
		closed := uint16(l.Addr().(*net.TCPAddr).Port) + 1
		cases = append(cases,
			tc{fam + " icmp raw", Options{Target: a, Proto: ICMP, Mode: ModeRaw}, ReplyEcho},
			tc{fam + " tcp raw syn-ack", Options{Target: a, Proto: TCP, Port: open, Mode: ModeRaw}, ReplySynAck},
			tc{fam + " tcp raw rst", Options{Target: a, Proto: TCP, Port: closed, Mode: ModeRaw}, ReplyRST},
			tc{fam + " udp raw port unreachable", Options{Target: a, Proto: UDP, Port: 33434, Mode: ModeRaw}, ReplyUnreachable},
			tc{fam + " udp socket port unreachable", Options{Target: a, Proto: UDP, Port: 33434, Mode: ModeSocket}, ReplyUnreachable},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := traceLoopback(t, c.o)
			for _, pr := range p.Hops[0].Probes {
				if pr.Reply.Kind != c.kind {
					t.Errorf("probe %d: %s, want %s", pr.Seq, pr.Reply.Kind, c.kind)
				}
				if c.kind == ReplyUnreachable && c.o.Mode == ModeRaw && pr.Reply.QuotedTTL != 1 {
					t.Errorf("probe %d: quoted ttl %d, want 1", pr.Seq, pr.Reply.QuotedTTL)
				}
				if pr.Reply.ReplyTTL != 64 {
					t.Errorf("probe %d: reply ttl %d, want 64 (loopback)", pr.Seq, pr.Reply.ReplyTTL)
				}
			}
		})
	}
}

// TestLoopbackTCP53Identity: a TCP/53 trace ends with SYN-ACKs from the
// server and leaves the flow's source port free, so the caller can ask the
// identity over a real TCP connection from that port (internal/cli does).
func TestLoopbackTCP53Identity(t *testing.T) {
	srv := &probetest.Server{Hostname: "tcp-inst", NSID: []byte("nsid-tcp")}
	dst := startDNS53(t, srv, true)
	p := traceLoopback(t, Options{Target: dst.Addr(), Proto: TCP, Mode: ModeRaw})
	if p.Hops[0].Probes[0].Reply.Kind != ReplySynAck {
		t.Fatalf("reply %s, want syn-ack", p.Hops[0].Probes[0].Reply.Kind)
	}
	if p.Instance != nil {
		t.Errorf("the trace itself asked the identity: %+v", p.Instance)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := probe.Run(ctx, probe.Options{Target: p.Flow.Dst, Source: p.Flow.Src, TCP: true, Names: []string{measure.NameHostnameBind}})
	if err != nil {
		t.Fatalf("identity from the flow's port %s: %v", p.Flow.Src, err)
	}
	if res.Identity.NSID != "nsid-tcp" || res.Identity.HostnameBind != "tcp-inst" {
		t.Fatalf("identity %+v", res.Identity)
	}
	var fromFlow bool
	for _, q := range srv.Queries() {
		if q.Transport == "tcp" && q.From.Port() == p.Flow.Src.Port() {
			fromFlow = true
		}
	}
	if !fromFlow {
		t.Errorf("no TCP query from the flow's source port %d: %+v", p.Flow.Src.Port(), srv.Queries())
	}
}

// TestSocketModeTCPRefused: TCP in socket mode is a combination that does
// not exist, not a missing privilege.
func TestSocketModeTCPRefused(t *testing.T) {
	_, err := HostNetwork().Open(context.Background(), Flow{Proto: TCP, Src: netip.MustParseAddrPort("127.0.0.1:0"), Dst: netip.MustParseAddrPort("127.0.0.1:53")}, ModeSocket)
	if err == nil || errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "tcp probes need raw mode") {
		t.Fatalf("err = %v, want one saying tcp needs raw mode, not a permission error", err)
	}
	_, err = Run(context.Background(), Options{Target: netip.MustParseAddr("127.0.0.1"), Proto: TCP, Mode: ModeSocket, Net: HostNetwork()})
	if err == nil || errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "tcp probes need raw mode") {
		t.Fatalf("Run: err = %v, want one saying tcp needs raw mode", err)
	}
}

// TestPingSocketRangeMessage: when the host's ping_group_range excludes us,
// socket-mode ICMP says exactly that.
func TestPingSocketRangeMessage(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		t.Skip(err)
	}
	var lo, hi int
	fmt.Sscan(string(b), &lo, &hi)
	if gid := os.Getgid(); lo <= gid && gid <= hi {
		t.Skipf("ping_group_range %d-%d includes gid %d here; the unprivileged child test covers ping sockets", lo, hi, gid)
	}
	_, err = HostNetwork().Open(context.Background(), Flow{Proto: ICMP, Src: netip.MustParseAddrPort("127.0.0.1:0"), Dst: netip.MustParseAddrPort("127.0.0.1:0")}, ModeSocket)
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "net.ipv4.ping_group_range is") {
		t.Fatalf("err = %v, want ErrPermission explaining ping_group_range", err)
	}
}

const childEnv = "ANYCHECK_TRACE_UNPRIVILEGED_CHILD"

// TestUnprivileged runs TestUnprivilegedChild as user nobody inside a new
// network namespace (loopback only) whose ping_group_range admits every
// group: what an operator without CAP_NET_RAW gets from auto mode.
func TestUnprivileged(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"unshare", "setpriv", "ip", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// nobody must be able to execute the test binary.
	dir, err := os.MkdirTemp("", "anycheck-trace-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "trace.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `set -e; ip link set lo up; sysctl -qw net.ipv4.ping_group_range="0 2147483647"; ` +
		`exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$0" -test.run='^TestUnprivilegedChild$' -test.v`
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "sh", "-c", script, bin)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child output:\n%s", out)
	if err != nil {
		t.Fatalf("unprivileged child: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestUnprivilegedChild") {
		t.Fatal("child did not run its test")
	}
}

func TestUnprivilegedChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestUnprivileged as user nobody in its own network namespace")
	}
	if os.Geteuid() == 0 {
		t.Fatal("child runs as root")
	}
	lo := netip.MustParseAddr("127.0.0.1")
	t.Run("raw refused", func(t *testing.T) {
		_, err := Run(context.Background(), Options{Target: lo, Mode: ModeRaw, Port: 33434})
		if !errors.Is(err, ErrPermission) {
			t.Fatalf("raw mode as nobody: err = %v, want ErrPermission", err)
		}
	})
	t.Run("udp auto", func(t *testing.T) {
		p := traceLoopback(t, Options{Target: lo, Port: 33434, Mode: ModeAuto})
		if p.Mode != ModeSocket {
			t.Errorf("auto ran %s, want socket", p.Mode)
		}
	})
	t.Run("icmp auto", func(t *testing.T) {
		p := traceLoopback(t, Options{Target: lo, Proto: ICMP, Mode: ModeAuto})
		if p.Mode != ModeSocket || p.Hops[0].Probes[0].Reply.Kind != ReplyEcho {
			t.Errorf("auto ran %s with %s", p.Mode, p.Hops[0].Probes[0].Reply.Kind)
		}
	})
	t.Run("tcp needs raw sockets", func(t *testing.T) {
		_, err := Run(context.Background(), Options{Target: lo, Proto: TCP})
		if !errors.Is(err, ErrPermission) {
			t.Fatalf("err = %v, want ErrPermission (auto mode has no socket mode for tcp)", err)
		}
	})
}

// TestLoopbackForgedErrorSocketMode: a socket-mode UDP socket is bound,
// not connected, so the kernel queues on it any ICMP error quoting its
// source port, whatever destination the quote names. The kernel reports
// that quoted destination with the error; an error about another
// destination, even carrying a tag we sent, is not taken for a hop.
func TestLoopbackForgedErrorSocketMode(t *testing.T) {
	needRoot(t)
	for _, fam := range []string{"127.0.0.1", "::1"} {
		if fam == "::1" && !probetest.HasIPv6Loopback() {
			continue
		}
		t.Run(fam, func(t *testing.T) {
			lo := netip.MustParseAddr(fam)
			dst := netip.AddrPortFrom(random127(), 53)
			other := netip.AddrPortFrom(random127(), 53)
			if lo.Is6() {
				dst = netip.AddrPortFrom(lo, 53)
				other = netip.MustParseAddrPort("[2001:db8::99]:53")
			}
			ctx := context.Background()
			c, err := HostNetwork().Open(ctx, Flow{Proto: UDP, Src: netip.AddrPortFrom(lo, 0), Dst: dst}, ModeSocket)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p := mustProbe(t, c.Flow(), 1, 0x4242)
			forged := rewrite(p, func(b []byte) {
				if lo.Is6() {
					a := other.Addr().As16()
					copy(b[24:40], a[:])
				} else {
					a := other.Addr().As4()
					copy(b[16:20], a[:])
				}
			})
			network, typ := "ip4:icmp", 11
			if lo.Is6() {
				network, typ = "ip6:ipv6-icmp", 3
			}
			rc, err := net.ListenPacket(network, fam)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			for _, q := range []Probe{forged, p} {
				if _, err := rc.WriteTo(icmpError(lo.Is6(), typ, 0, quoteOf(q, -1), nil), &net.IPAddr{IP: lo.AsSlice()}); err != nil {
					t.Fatal(err)
				}
			}
			m := newMatcher(c.Flow())
			m.add(p)
			var got []netip.AddrPort
			var matched []bool
			for range 2 {
				pkt, err := recvWithin(c, 2*time.Second)
				if err != nil {
					t.Fatalf("after %d error reports: %v", len(got), err)
				}
				o, err := parseReply(pkt)
				if err != nil {
					t.Fatalf("parse %+v: %v", pkt, err)
				}
				_, _, ok := m.match(o)
				got, matched = append(got, pkt.OrigDst), append(matched, ok)
			}
			if fmt.Sprint(got) != fmt.Sprint([]netip.AddrPort{other, dst}) {
				t.Fatalf("the kernel reported destinations %v, want %v then %v", got, other, dst)
			}
			if matched[0] || !matched[1] {
				t.Errorf("matched %v: want the forged error dropped and the real one taken", matched)
			}
		})
	}
}

// recvWithin is c.Recv bounded in time.
func recvWithin(c Conn, d time.Duration) (Packet, error) {
	type res struct {
		p   Packet
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, err := c.Recv()
		ch <- res{p, err}
	}()
	select {
	case r := <-ch:
		return r.p, r.err
	case <-time.After(d):
		c.Close()
		return Packet{}, errors.New("nothing received")
	}
}
