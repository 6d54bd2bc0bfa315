package lab

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// pingMin is the least RTT of a few pings from node to addr.
func pingMin(t *testing.T, ctx context.Context, l *Lab, node, addr string) time.Duration {
	t.Helper()
	out, _, err := l.Run(ctx, node, "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "3", addr)
	if err != nil {
		t.Fatalf("ping %s from %s: %v\n%s", addr, node, err, out)
	}
	m := regexp.MustCompile(`= ([0-9.]+)/`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("ping %s from %s: no rtt summary in\n%s", addr, node, out)
	}
	ms, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// TestLabLinkDelay: delayed links (two-end and segment) add their delay
// each way, for IPv4 and IPv6, and the lab still routes and answers.
//
//	h1 —10ms— rtr —seg (8ms between members)— h2, h3
func TestLabLinkDelay(t *testing.T) {
	t.Parallel()
	l := Start(t, Topology{
		Nodes: []Node{
			{Name: "h1", Routes: []Route{{Dst: p("203.0.113.0/24"), Via: via("198.51.100.1")}, {Dst: p("2001:db8:2::/48"), Via: via("2001:db8:1::1")}}},
			{Name: "rtr", Router: true},
			{Name: "h2", Routes: []Route{{Dst: p("198.51.100.0/24"), Via: via("203.0.113.1")}, {Dst: p("2001:db8:1::/48"), Via: via("2001:db8:2::1")}}},
			{Name: "h3"},
		},
		Links: []Link{
			{Delay: 10 * time.Millisecond, Ends: []End{{"rtr", ps("198.51.100.1/24", "2001:db8:1::1/64")}, {"h1", ps("198.51.100.2/24", "2001:db8:1::2/64")}}},
			{Name: "seg", Delay: 8 * time.Millisecond, Ends: []End{
				{"rtr", ps("203.0.113.1/24", "2001:db8:2::1/64")},
				{"h2", ps("203.0.113.2/24", "2001:db8:2::2/64")},
				{"h3", ps("203.0.113.3/24", "2001:db8:2::3/64")}}},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The lower bound is the point (the delay is there); the upper one
	// only catches a delay in the wrong unit: a loaded machine (2 cores,
	// several labs) has shown the least of three pings 250 ms late.
	for _, c := range []struct {
		from, to string
		peer     string
		want     time.Duration
	}{
		{"h1", "h2", "seg", 2 * (10 + 8) * time.Millisecond},
		{"h2", "h3", "seg", 2 * 8 * time.Millisecond},
		{"h1", "rtr", "h1", 2 * 10 * time.Millisecond},
	} {
		for _, f := range []Family{IPv4, IPv6} {
			t.Run(fmt.Sprintf("%s-%s-%v", c.from, c.to, f), func(t *testing.T) {
				rtt := pingMin(t, ctx, l, c.from, l.Addr(c.to, c.peer, f).String())
				t.Logf("rtt %v (links: %v)", rtt, c.want)
				if rtt < c.want || rtt > 4*c.want+500*time.Millisecond {
					t.Errorf("rtt %v, want %v (plus scheduling slack)", rtt, c.want)
				}
			})
		}
	}
	if _, err := describe(t, Topology{Nodes: []Node{{Name: "a"}, {Name: "b"}},
		Links: []Link{{Delay: 2 * MaxDelay, Ends: []End{{"a", nil}, {"b", nil}}}}}); err == nil {
		t.Error("a delay beyond MaxDelay was accepted")
	}
}

// TestLabDelayedAnycast: the delayed standard lab converges, each client
// reaches its instance, and the round trips are the links' sums.
func TestLabDelayedAnycast(t *testing.T) {
	t.Parallel()
	ac := StartAnycastDelayed(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct {
		client string
		want   time.Duration
	}{{"c1", 36 * time.Millisecond}, {"c2", 62 * time.Millisecond}} {
		for _, f := range []Family{IPv4, IPv6} {
			rtt := pingMin(t, ctx, ac.Lab, c.client, ac.ServiceAddr(f).String())
			t.Logf("%s → %s: rtt %v", c.client, ac.ServiceAddr(f), rtt)
			if rtt < c.want || rtt > 4*c.want+500*time.Millisecond {
				t.Errorf("%s → %s: rtt %v, want %v (plus scheduling slack)", c.client, ac.ServiceAddr(f), rtt, c.want)
			}
		}
	}
}
