package probetest_test

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/measure"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/probe/probetest"
)

// A Net answers probe.Run in process, over UDP and TCP, from the port the
// run asked for, and a silent server times out on the bubble's clock.
func TestNet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		live := &probetest.Server{Hostname: "pipe-a", NSID: []byte("pipe-a")}
		silent := &probetest.Server{Silent: true}
		target := netip.MustParseAddrPort("192.0.2.53:53")
		n := &probetest.Net{Route: func(network string, _, raddr netip.AddrPort) (*probetest.Server, error) {
			if raddr != target {
				return silent, nil
			}
			return live, nil
		}}
		for _, tcp := range []bool{false, true} {
			res, err := probe.Run(context.Background(), probe.Options{Target: target, Source: netip.MustParseAddrPort("0.0.0.0:40000"), TCP: tcp, Net: n})
			if err != nil {
				t.Fatal(err)
			}
			if res.Identity.NSID != "pipe-a" || res.Identity.HostnameBind != "pipe-a" || res.Source != netip.MustParseAddrPort("192.0.2.10:40000") {
				t.Errorf("tcp=%v: identity %+v from %s", tcp, res.Identity, res.Source)
			}
		}
		if qs := live.Queries(); len(qs) != 4 || qs[0].Transport != "udp" || qs[2].Transport != "tcp" || qs[0].From.Port() != 40000 || live.TCPConnections() != 1 {
			t.Errorf("queries %+v, %d tcp connections", qs, live.TCPConnections())
		}

		start := time.Now()
		res, err := probe.Run(context.Background(), probe.Options{Target: netip.MustParseAddrPort("192.0.2.54:53"), Timeout: 300 * time.Millisecond, Net: n})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 300*time.Millisecond || res.Answers[0].Status != measure.StatusTimeout {
			t.Errorf("silent server: %s after %v, want a timeout after exactly 300ms", res.Answers[0].Status, took)
		}
		if p := res.Source.Port(); p != probetest.FirstEphemeralPort {
			t.Errorf("ephemeral port %d", p)
		}
	})
}
