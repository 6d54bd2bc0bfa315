package trace_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/anycheck/anycheck/trace"
)

// TestPathAddresses: the addresses to look up after a trace are its
// responders by TTL, each once, then the destination and the source.
func TestPathAddresses(t *testing.T) {
	r := func(s string) *trace.Reply { return &trace.Reply{From: netip.MustParseAddr(s)} }
	p := trace.Path{
		Flow: trace.Flow{Src: netip.MustParseAddrPort("192.0.2.10:40000"), Dst: netip.MustParseAddrPort("192.0.2.53:53")},
		Hops: []trace.Hop{
			{TTL: 1, Probes: []trace.ProbeResult{{Reply: r("198.51.100.1")}, {Reply: r("198.51.100.1")}}},
			{TTL: 2, Probes: []trace.ProbeResult{{}, {Reply: r("198.51.100.9")}, {Reply: r("203.0.113.1")}}},
			{TTL: 3, Probes: []trace.ProbeResult{{Reply: r("192.0.2.53")}}},
		},
	}
	if got := fmt.Sprint(p.Addresses()); got != "[198.51.100.1 198.51.100.9 203.0.113.1 192.0.2.53 192.0.2.10]" {
		t.Errorf("addresses %s", got)
	}
}
