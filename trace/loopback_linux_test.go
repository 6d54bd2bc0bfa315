package trace

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/anycheck/anycheck/probe/probetest"
)

// startDNS53 serves the probetest server on port 53 of a random 127/8
// address (UDP probes carry a DNS query only to port 53), so parallel runs
// do not collide. It needs root to bind port 53.
func startDNS53(t *testing.T, srv *probetest.Server, network string) netip.AddrPort {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("binding port 53 on loopback needs root")
	}
	for range 10 {
		a := netip.AddrFrom4([4]byte{127, byte(rand.N(250) + 2), byte(rand.N(250) + 2), byte(rand.N(250) + 2)})
		ap := srv.Start(t, network, netip.AddrPortFrom(a, 53).String())
		return ap
	}
	return netip.AddrPort{}
}

func TestLoopbackUDP53(t *testing.T) {
	srv := &probetest.Server{Hostname: "lo-inst-1", IDServer: "lo-id", NSID: []byte("nsid-lo-1")}
	dst := startDNS53(t, srv, "udp")
	for _, mode := range []Mode{ModeRaw, ModeSocket} {
		t.Run(string(mode), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var streamed []int
			p, err := Run(ctx, Options{Target: dst.Addr(), Mode: mode, Wait: time.Second, OnHop: func(h Hop) { streamed = append(streamed, h.TTL) }})
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != mode || !p.Reached || p.DestTTL != 1 || p.Stop != StopReached || len(p.Hops) != 1 {
				t.Fatalf("path = mode %s reached %v destTTL %d stop %s hops %d, want %s reached at ttl 1", p.Mode, p.Reached, p.DestTTL, p.Stop, len(p.Hops), mode)
			}
			if fmt.Sprint(streamed) != "[1]" {
				t.Errorf("OnHop streamed %v, want [1]", streamed)
			}
			for _, pr := range p.Hops[0].Probes {
				if pr.Reply == nil || pr.Reply.Kind != ReplyDNS || pr.Reply.From != dst.Addr() {
					t.Errorf("probe %d: reply %+v, want a DNS answer from %s", pr.Seq, pr.Reply, dst.Addr())
				}
			}
			if p.Instance == nil || p.Instance.NSID != "nsid-lo-1" || p.Instance.HostnameBind != "lo-inst-1" {
				t.Errorf("instance = %+v, want NSID nsid-lo-1 and hostname.bind lo-inst-1", p.Instance)
			}
			if len(p.Hops[0].Probes) != 3 {
				t.Errorf("%d probes at ttl 1, want 3", len(p.Hops[0].Probes))
			}
			t.Logf("elapsed %v", p.Elapsed)
			_ = errors.New
		})
	}
}
