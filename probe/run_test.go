package probe_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"

	"golang.org/x/time/rate"

	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/probe/probetest"
)

// hosts are the loopback addresses the server matrix runs on.
func hosts(t *testing.T) []string {
	h := []string{"127.0.0.1"}
	if probetest.HasIPv6Loopback() {
		h = append(h, "::1")
	} else {
		t.Log("no IPv6 loopback here: IPv6 cases skipped")
	}
	return h
}

// freePort returns a port that is free for both UDP and TCP on host right
// now, for tests that choose the flow's source port.
func freePort(t *testing.T, host string) uint16 {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(host, itoa(port)))
		pc.Close()
		if err == nil {
			l.Close()
			return uint16(port)
		}
	}
	t.Fatal("no port free for both udp and tcp")
	return 0
}

func itoa(n int) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(n)).String()[len("0.0.0.0:"):]
}

const hostile = "evil\\x\"\x1b]0;owned\x07\x1b[2J\x00\xff é"

func identityServer() *probetest.Server {
	return &probetest.Server{Hostname: "g1.fra", IDServer: "g1.fra.example", Version: "NSD 4.8.0", NSID: []byte("g1-fra-1")}
}

// TestRunMatrix runs the identity probe against in-process servers over
// UDP and TCP, IPv4 and IPv6 loopback, in the situations an operator meets.
func TestRunMatrix(t *testing.T) {
	type want struct {
		status    []measure.Status // per query, in order
		transport measure.Transport
		truncated bool
		instance  string
		source    string // InstanceSource
		sus       []measure.Suspicion
		detail    string // substring of every Answer's Detail
		conns     int    // TCP connections the server accepts
	}
	// oneOverTCP: all queries share one TCP connection, or none is made.
	oneOverTCP := func(tcp bool) int {
		if tcp {
			return 1
		}
		return 0
	}
	scenarios := []struct {
		desc    string
		server  func() *probetest.Server
		version bool
		timeout time.Duration
		udpOnly bool // the server behaviour only exists over UDP
		want    func(tcp bool) want
	}{
		{
			desc: "identity with NSID", server: identityServer, version: true,
			want: func(tcp bool) want {
				return want{
					status:   []measure.Status{measure.StatusAnswered, measure.StatusAnswered, measure.StatusAnswered, measure.StatusAnswered},
					instance: "g1-fra-1", source: "nsid", conns: oneOverTCP(tcp),
				}
			},
		},
		{
			desc:   "hidden identity and version",
			server: func() *probetest.Server { return &probetest.Server{RefuseVersion: true, NSID: []byte("n2")} }, version: true,
			want: func(tcp bool) want {
				return want{
					status:   []measure.Status{measure.StatusRefused, measure.StatusRefused, measure.StatusRefused, measure.StatusRefused},
					instance: "n2", source: "nsid", conns: oneOverTCP(tcp),
				}
			},
		},
		{
			desc:   "empty version, no NSID",
			server: func() *probetest.Server { return &probetest.Server{Hostname: "h1"} }, version: true,
			want: func(tcp bool) want {
				return want{
					status:   []measure.Status{measure.StatusAnswered, measure.StatusRefused, measure.StatusEmpty, measure.StatusEmpty},
					instance: "h1", source: "hostname.bind", conns: oneOverTCP(tcp),
				}
			},
		},
		{
			// Identity strings are attacker-controlled: Run hands them
			// over byte for byte, escaping is the renderer's job.
			desc: "hostile identity bytes kept raw", server: func() *probetest.Server { return &probetest.Server{Hostname: hostile, IDServer: "i"} },
			want: func(tcp bool) want {
				return want{
					status:   []measure.Status{measure.StatusAnswered, measure.StatusAnswered},
					instance: hostile, source: "hostname.bind", conns: oneOverTCP(tcp),
				}
			},
		},
		{
			desc: "middlebox answers", server: func() *probetest.Server {
				return &probetest.Server{Hostname: "resolver", IDServer: "resolver", Middlebox: true, NSID: []byte("x")}
			},
			want: func(tcp bool) want {
				return want{
					status:   []measure.Status{measure.StatusAnswered, measure.StatusAnswered},
					instance: "resolver", source: "hostname.bind", conns: oneOverTCP(tcp),
					sus: []measure.Suspicion{measure.SuspectRA, measure.SuspectAAClear, measure.SuspectClassNotCH, measure.SuspectTTLNonZero},
				}
			},
		},
		{
			desc: "truncated over measure.UDP, retried over measure.TCP", udpOnly: true,
			server: func() *probetest.Server {
				return &probetest.Server{Hostname: "big", IDServer: "big", NSID: []byte("n3"), ForceTC: true}
			},
			want: func(tcp bool) want {
				return want{
					status:    []measure.Status{measure.StatusAnswered, measure.StatusAnswered},
					transport: measure.TCP, truncated: true, instance: "n3", source: "nsid",
					conns: 1, // both retries on one connection
				}
			},
		},
		{
			desc: "decoys before the answer", server: func() *probetest.Server { return &probetest.Server{Hostname: "real", Decoys: true} },
			want: func(tcp bool) want {
				return want{
					status:   []measure.Status{measure.StatusAnswered, measure.StatusRefused},
					instance: "real", source: "hostname.bind", conns: oneOverTCP(tcp),
				}
			},
		},
		{
			desc: "silent server", server: func() *probetest.Server { return &probetest.Server{Silent: true} },
			version: true, timeout: 100 * time.Millisecond,
			want: func(tcp bool) want {
				return want{
					status: []measure.Status{measure.StatusTimeout, measure.StatusTimeout, measure.StatusTimeout, measure.StatusTimeout},
					detail: "no reply within 100ms",
					conns:  oneOverTCP(tcp),
				}
			},
		},
		{
			// A reflected query and an answer to another question carry
			// the query's ID but answer nothing: no RCODE, no RTT, and
			// never "answered".
			desc: "query reflected back", server: func() *probetest.Server { return &probetest.Server{Reflect: true} },
			timeout: 300 * time.Millisecond,
			want: func(tcp bool) want {
				return want{status: []measure.Status{measure.StatusMalformed, measure.StatusMalformed}, detail: "QR bit clear", conns: oneOverTCP(tcp)}
			},
		},
		{
			desc: "answers another question", server: func() *probetest.Server { return &probetest.Server{OtherQuestion: true, Hostname: "h"} },
			timeout: 300 * time.Millisecond,
			want: func(tcp bool) want {
				return want{status: []measure.Status{measure.StatusMalformed, measure.StatusMalformed}, detail: `reply is for "other.bind."`, conns: oneOverTCP(tcp)}
			},
		},
		{
			// The server answers only once every query has arrived: a
			// run that waited for each answer before the next query
			// would get one timeout after another.
			desc: "queries in flight at once", server: func() *probetest.Server {
				s := identityServer()
				s.Hold = 4
				return s
			},
			version: true, timeout: time.Second,
			want: func(tcp bool) want {
				return want{
					status:   []measure.Status{measure.StatusAnswered, measure.StatusAnswered, measure.StatusAnswered, measure.StatusAnswered},
					instance: "g1-fra-1", source: "nsid", conns: oneOverTCP(tcp),
				}
			},
		},
		{
			desc: "garbage answers", server: func() *probetest.Server { return &probetest.Server{Garbage: true} },
			want: func(tcp bool) want {
				return want{status: []measure.Status{measure.StatusMalformed, measure.StatusMalformed}, detail: "unpack reply", conns: oneOverTCP(tcp)}
			},
		},
	}
	for _, host := range hosts(t) {
		for _, tcp := range []bool{false, true} {
			transport := measure.UDP
			if tcp {
				transport = measure.TCP
			}
			for _, sc := range scenarios {
				if sc.udpOnly && tcp {
					continue
				}
				t.Run(host+"/"+string(transport)+"/"+sc.desc, func(t *testing.T) {
					t.Parallel()
					w := sc.want(tcp)
					if w.transport == "" {
						w.transport = transport
					}
					srv := sc.server()
					target := srv.StartPair(t, host)
					timeout := sc.timeout
					if timeout == 0 {
						timeout = 2 * time.Second
					}
					start := time.Now()
					res, err := probe.Run(context.Background(), probe.Options{
						Target: target, TCP: tcp, Version: sc.version, Timeout: timeout,
					})
					elapsed := time.Since(start)
					if err != nil {
						t.Fatalf("Run: %v", err)
					}
					// The queries wait at once, each at most its Timeout.
					// The slack is wide because this machine may be busy;
					// a run that used the 2s default would still exceed it.
					if limit := timeout + 5*time.Second; elapsed > limit {
						t.Errorf("run took %v, want at most %v", elapsed, limit)
					}
					if w.status[0] == measure.StatusTimeout && elapsed < timeout {
						t.Errorf("run took %v: timeouts of %v cannot be that fast", elapsed, timeout)
					}
					if res.Target != target {
						t.Errorf("result target %v, want %v", res.Target, target)
					}
					var got []measure.Status
					for _, a := range res.Answers {
						got = append(got, a.Status)
						if a.Transport != w.transport || a.Truncated != w.truncated {
							t.Errorf("%s: transport %s truncated %v, want %s %v", a.Name, a.Transport, a.Truncated, w.transport, w.truncated)
						}
						if !slices.Equal(a.Suspicions, w.sus) {
							t.Errorf("%s: suspicions %v, want %v", a.Name, a.Suspicions, w.sus)
						}
						if !strings.Contains(a.Detail, w.detail) {
							t.Errorf("%s: detail %q, want it to mention %q", a.Name, a.Detail, w.detail)
						}
						if (a.Status == measure.StatusTimeout || a.Rcode < 0 && a.Size == 0) && a.RTT != 0 {
							t.Errorf("%s: %s with RTT %v", a.Name, a.Status, a.RTT)
						}
						if a.Status == measure.StatusMalformed && a.Rcode < 0 && strings.Contains(a.Detail, "not its answer") && a.RTT != 0 {
							t.Errorf("%s: a message that was not the answer gave an RTT %v", a.Name, a.RTT)
						}
						if a.Rcode >= 0 && (a.RTT <= 0 || a.RTT > timeout) {
							t.Errorf("%s: RTT %v outside (0, %v]", a.Name, a.RTT, timeout)
						}
					}
					if !slices.Equal(got, w.status) {
						t.Errorf("statuses %v, want %v", got, w.status)
					}
					if res.Identity.Instance != w.instance || res.Identity.Source != w.source {
						t.Errorf("instance %q from %q, want %q from %q", res.Identity.Instance, res.Identity.Source, w.instance, w.source)
					}
					checkOneFlow(t, res, srv.Queries(), host)
					if got := srv.TCPConnections(); got != w.conns {
						t.Errorf("server accepted %d measure.TCP connections, want %d", got, w.conns)
					}
				})
			}
		}
	}
}

// checkOneFlow asserts what the server saw: every query from the flow's
// source port, and each one a proper identity query.
func checkOneFlow(t *testing.T, res probe.Result, seen []probetest.Query, host string) {
	t.Helper()
	if res.Source.Port() == 0 || res.Source.Addr() != netip.MustParseAddr(host) {
		t.Errorf("result source %v, want %s and a port", res.Source, host)
	}
	// Every query that something came back for was seen; a timed-out
	// one may still sit unread when the run closes its socket.
	came := 0
	for _, a := range res.Answers {
		if a.Replied() || a.Status == measure.StatusMalformed {
			came++
		}
	}
	if len(seen) < came {
		t.Errorf("server saw %d queries for %d answers", len(seen), came)
	}
	for _, q := range seen {
		if q.From != res.Source {
			t.Errorf("server saw a %s query for %s from %v, want the flow %v", q.Transport, q.Name, q.From, res.Source)
		}
		if q.Class != 3 || q.Type != 16 || q.RD || !q.NSID || q.UDPSize != 1232 {
			t.Errorf("server saw %+v, want CH TXT, RD clear, NSID option, measure.UDP size 1232", q)
		}
	}
}

// TestRunFixedSourcePort checks that Options.Source is the flow, over UDP,
// over TCP, and over UDP with the TCP retry, and that the same port can be
// used again at once by the next run (`anycheck id -c N`).
func TestRunFixedSourcePort(t *testing.T) {
	for _, host := range hosts(t) {
		for _, mode := range []string{"udp", "tcp", "udp+tc"} {
			t.Run(host+"/"+mode, func(t *testing.T) {
				srv := identityServer()
				srv.ForceTC = mode == "udp+tc"
				target := srv.StartPair(t, host)
				src := netip.AddrPortFrom(netip.MustParseAddr(host), freePort(t, host))
				for run := range 3 {
					res, err := probe.Run(context.Background(), probe.Options{
						Target: target, Source: src, TCP: mode == "tcp", Timeout: 2 * time.Second,
					})
					if err != nil {
						t.Fatalf("run %d: %v", run, err)
					}
					if res.Source != src {
						t.Errorf("run %d: source %v, want %v", run, res.Source, src)
					}
					for _, a := range res.Answers {
						if a.Status != measure.StatusAnswered {
							t.Errorf("run %d: %s %s: %s", run, a.Name, a.Status, a.Detail)
						}
					}
				}
				seen := srv.Queries()
				if len(seen) == 0 {
					t.Fatal("server saw no queries")
				}
				for _, q := range seen {
					if q.From != src {
						t.Errorf("query %s over %s from %v, want %v", q.Name, q.Transport, q.From, src)
					}
				}
			})
		}
	}
}

// TestRunTCPReconnects: a server that closes each TCP connection after one
// answer gets the next query on a new connection from the same port.
func TestRunTCPReconnects(t *testing.T) {
	srv := identityServer()
	srv.CloseAfterAnswer = true
	target := srv.Start(t, "tcp", "127.0.0.1:0")
	res, err := probe.Run(context.Background(), probe.Options{Target: target, TCP: true, Version: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reasked := 0
	for _, a := range res.Answers {
		if a.Status != measure.StatusAnswered {
			t.Errorf("%s: %s %s", a.Name, a.Status, a.Detail)
		}
		if strings.Contains(a.Detail, "new connection: the server closed") {
			reasked++
		}
	}
	if reasked != len(res.Answers)-1 {
		t.Errorf("%d answers say they needed a new connection, want all but the first", reasked)
	}
	checkOneFlow(t, res, srv.Queries(), "127.0.0.1")
	if got := srv.TCPConnections(); got != len(res.Answers) {
		t.Errorf("server accepted %d measure.TCP connections for %d queries, want one each", got, len(res.Answers))
	}
}

// TestRunNothingListening: ICMP port unreachable (UDP) and RST (TCP) are
// answers of their own, reported at once as what came back (unreachable,
// with the ICMP message and its sender, or the refused connection), not
// timeouts or local errors.
func TestRunNothingListening(t *testing.T) {
	for _, host := range hosts(t) {
		port := freePort(t, host)
		target := netip.AddrPortFrom(netip.MustParseAddr(host), port)
		for _, tcp := range []bool{false, true} {
			start := time.Now()
			res, err := probe.Run(context.Background(), probe.Options{Target: target, TCP: tcp, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatalf("%v tcp=%v: %v", target, tcp, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%v tcp=%v: took %v, want an immediate error", target, tcp, d)
			}
			if len(res.Answers) != 2 {
				t.Fatalf("%d answers, want 2", len(res.Answers))
			}
			want := "port unreachable from " + host
			if tcp {
				want = "connection refused (tcp reset)"
			} else if runtime.GOOS != "linux" {
				want = "port unreachable (connection refused)"
			}
			for _, a := range res.Answers {
				if a.Status != measure.StatusUnreachable || a.Detail != want || a.Rcode != -1 {
					t.Errorf("%v tcp=%v %s: %s %q rcode %d, want unreachable %q", target, tcp, a.Name, a.Status, a.Detail, a.Rcode, want)
				}
			}
			if res.Source.Port() == 0 {
				t.Errorf("%v tcp=%v: source %v has no port", target, tcp, res.Source)
			}
		}
	}
}

func TestRunSetupErrors(t *testing.T) {
	srv := identityServer()
	target := srv.StartPair(t, "127.0.0.1")

	busyUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyUDP.Close()
	busyTCP, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyTCP.Close()

	tests := []struct {
		desc string
		opts probe.Options
		want string
		bind bool
	}{
		{"no target", probe.Options{}, "need an address and a non-zero port", false},
		{"port 0", probe.Options{Target: netip.AddrPortFrom(target.Addr(), 0)}, "need an address and a non-zero port", false},
		{"family mismatch", probe.Options{Target: target, Source: netip.MustParseAddrPort("[::1]:0")}, "different address families", false},
		{
			"udp port taken", probe.Options{Target: target, Source: busyUDP.LocalAddr().(*net.UDPAddr).AddrPort()},
			"bind udp source " + busyUDP.LocalAddr().String() + ": address already in use", true,
		},
		{
			"tcp port taken", probe.Options{Target: target, TCP: true, Source: busyTCP.Addr().(*net.TCPAddr).AddrPort()},
			"bind tcp source " + busyTCP.Addr().String() + ": address already in use", true,
		},
		{
			"address not local", probe.Options{Target: target, Source: netip.MustParseAddrPort("192.0.2.1:0")},
			"bind udp source 192.0.2.1:0: cannot assign requested address", true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tt.opts.Timeout = time.Second
			_, err := probe.Run(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run error %v, want it to mention %q", err, tt.want)
			}
			var be *probe.BindError
			if errors.As(err, &be) != tt.bind {
				t.Errorf("errors.As(*BindError) = %v, want %v (%v)", !tt.bind, tt.bind, err)
			}
		})
	}
	if got := len(srv.Queries()); got != 0 {
		t.Errorf("server saw %d queries from runs that failed to set up", got)
	}
}

// TestRunContext: ctx bounds the wait as well as Timeout.
func TestRunContext(t *testing.T) {
	srv := &probetest.Server{Silent: true}
	target := srv.StartPair(t, "127.0.0.1")
	for _, tcp := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		res, err := probe.Run(ctx, probe.Options{Target: target, TCP: tcp, Timeout: 10 * time.Second})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("tcp=%v: run took %v with a 100ms context and a 10s timeout per query", tcp, d)
		}
		for _, a := range res.Answers {
			if a.Status != measure.StatusTimeout || a.Detail != "context deadline exceeded" {
				t.Errorf("tcp=%v %s: %s %q, want timeout \"context deadline exceeded\"", tcp, a.Name, a.Status, a.Detail)
			}
		}

		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		res, err = probe.Run(ctx, probe.Options{Target: target, TCP: tcp})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range res.Answers {
			if a.Status != measure.StatusError || a.Detail != "context canceled" {
				t.Errorf("tcp=%v canceled %s: %s %q, want error \"context canceled\"", tcp, a.Name, a.Status, a.Detail)
			}
		}
	}
}

// TestRunSharedLimiter: the packet budget in Options paces every query of
// every run that shares it, and a run still gets all its answers.
func TestRunSharedLimiter(t *testing.T) {
	srv := identityServer()
	target := srv.StartPair(t, "127.0.0.1")
	lim := rate.NewLimiter(rate.Every(100*time.Millisecond), 1)
	start := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			res, err := probe.Run(context.Background(), probe.Options{Target: target, Version: true, Timeout: 5 * time.Second, Limiter: lim})
			if err != nil {
				t.Error(err)
				return
			}
			for _, a := range res.Answers {
				if a.Status != measure.StatusAnswered {
					t.Errorf("%s: %s %s", a.Name, a.Status, a.Detail)
				}
			}
		})
	}
	wg.Wait()
	// 8 queries, one token every 100ms after the first.
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("8 queries under a budget of 10/s took %v", d)
	}
	if n := len(srv.Queries()); n != 8 {
		t.Errorf("server saw %d queries, want 8", n)
	}

	// A query held back by the budget longer than its Timeout still gets
	// its whole Timeout for the answer, over UDP and over TCP.
	for _, tcp := range []bool{false, true} {
		slow := rate.NewLimiter(rate.Every(300*time.Millisecond), 1)
		res, err := probe.Run(context.Background(), probe.Options{Target: target, TCP: tcp, Version: true, Timeout: 500 * time.Millisecond, Limiter: slow})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range res.Answers {
			if a.Status != measure.StatusAnswered {
				t.Errorf("tcp=%v %s: %s %s after waiting for the budget", tcp, a.Name, a.Status, a.Detail)
			}
		}
	}
}
