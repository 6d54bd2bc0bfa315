package probe_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/probe"
)

// failingNetwork is an injected Network whose sockets cannot be opened.
type failingNetwork struct{ udp, tcp error }

func (n failingNetwork) ListenUDP(context.Context, netip.AddrPort, netip.AddrPort) (net.Conn, error) {
	return nil, n.udp
}

func (n failingNetwork) DialTCP(context.Context, netip.AddrPort, netip.AddrPort) (net.Conn, error) {
	return nil, n.tcp
}

// TestRunInjectedNetwork: what an injected Network reports decides between
// a set-up error (the port is taken) and per-query answers (no route), and
// a port the Network reports in a failed connect is kept as the flow's.
func TestRunInjectedNetwork(t *testing.T) {
	target := netip.MustParseAddrPort("192.0.2.53:53") // never contacted: the Network is fake
	noRoute := &net.OpError{
		Op: "dial", Net: "udp4", Source: &net.UDPAddr{IP: net.IPv4zero, Port: 4242},
		Err: os.NewSyscallError("connect", syscall.ENETUNREACH),
	}
	tests := []struct {
		desc     string
		nw       failingNetwork
		tcp      bool
		setupErr string
		detail   string
		port     uint16
	}{
		{desc: "udp port taken (plain errno)", nw: failingNetwork{udp: syscall.EADDRINUSE}, setupErr: "address already in use"},
		{desc: "tcp port taken", tcp: true, nw: failingNetwork{tcp: &probe.BindError{Net: "tcp", Addr: netip.MustParseAddrPort("0.0.0.0:4242"), Err: syscall.EADDRINUSE}},
			setupErr: "probe 192.0.2.53:53: bind tcp source 0.0.0.0:4242: address already in use"},
		{desc: "udp no route", nw: failingNetwork{udp: noRoute}, detail: "network is unreachable", port: 4242},
		{desc: "tcp refused", tcp: true, nw: failingNetwork{tcp: syscall.ECONNREFUSED}, detail: "connection refused (tcp reset)"},
		{desc: "tcp timeout", tcp: true, nw: failingNetwork{tcp: context.DeadlineExceeded}, detail: "no reply within 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			res, err := probe.Run(context.Background(), probe.Options{Target: target, TCP: tt.tcp, Timeout: time.Second, Net: tt.nw})
			if tt.setupErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.setupErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.setupErr)
				}
				if !errors.Is(err, syscall.EADDRINUSE) {
					t.Errorf("error %v does not wrap EADDRINUSE", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(res.Answers) != 2 {
				t.Fatalf("%d answers, want 2", len(res.Answers))
			}
			for _, a := range res.Answers {
				if (a.Status != measure.StatusError && a.Status != measure.StatusTimeout && a.Status != measure.StatusUnreachable) || a.Detail != tt.detail {
					t.Errorf("%s: %s %q, want a failure %q", a.Name, a.Status, a.Detail, tt.detail)
				}
			}
			if res.Source.Port() != tt.port {
				t.Errorf("source %v, want port %d", res.Source, tt.port)
			}
		})
	}
}
