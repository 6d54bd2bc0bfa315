//go:build unix

package probe

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/probe/probetest"
)

func freeTCPPort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// TestRunTCPPortInTimeWait: a connection of the flow that ended with a
// graceful close leaves the port in TIME_WAIT for a minute; the next run
// from that port (to another server here, so the connection 4-tuple is new)
// must still bind it.
func TestRunTCPPortInTimeWait(t *testing.T) {
	first := (&probetest.Server{Hostname: "h", NSID: []byte("n")}).Start(t, "tcp", "127.0.0.1:0")
	second := (&probetest.Server{Hostname: "h", NSID: []byte("n")}).Start(t, "tcp", "127.0.0.1:0")
	src := netip.AddrPortFrom(first.Addr(), freeTCPPort(t))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := systemNetwork{}.DialTCP(ctx, src, first)
	if err != nil {
		t.Fatal(err)
	}
	// Undo the RST-on-close so that this close is graceful and ours is
	// the side that waits.
	if err := c.(*net.TCPConn).SetLinger(-1); err != nil {
		t.Fatal(err)
	}
	c.Close()
	time.Sleep(50 * time.Millisecond) // let the server's FIN arrive

	res, err := Run(ctx, Options{Target: second, Source: src, TCP: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("Run from a port in TIME_WAIT: %v", err)
	}
	if res.Source != src || res.Answers[0].Status != measure.StatusAnswered {
		t.Errorf("source %v status %s (%s), want %v answered", res.Source, res.Answers[0].Status, res.Answers[0].Detail, src)
	}
}
