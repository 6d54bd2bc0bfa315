package catchment

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// Enrich asks one lookup for every vantage, target and hop without an
// origin over both sides, fills in what it answered, keeps what was known,
// and returns the lookup's error with what it did answer filled in.
func TestEnrich(t *testing.T) {
	a := netip.MustParseAddr
	known := Origin{ASNs: []uint32{64500}, Country: "NL"}
	before := []Observation{{
		Vantage: Vantage{Key: "atlas:1", ProbeID: 1, Source: a("10.0.0.2"), Public: a("198.51.100.2")},
		Target:  a("192.0.2.53"),
		Flows: []Flow{{Hops: []Hop{
			{TTL: 1, Responders: []Responder{{Addr: a("203.0.113.1")}}},
			{TTL: 2, Responders: []Responder{{Addr: a("203.0.113.2"), ASNs: []uint32{64999}}}},
		}}},
	}}
	after := []Observation{
		{Vantage: Vantage{Key: "atlas:2", ProbeID: 2, Source: a("198.51.100.9"), Origin: known}, Target: a("192.0.2.53")},
		{Vantage: Vantage{Key: "host:x"}, Target: a("2001:db8::53")}, // no vantage address
	}
	var asked [][]netip.Addr
	lookup := func(_ context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
		asked = append(asked, addrs)
		return map[netip.Addr]Origin{
			a("198.51.100.2"): {ASNs: []uint32{64501}},
			a("198.51.100.9"): {ASNs: []uint32{64502}},
			a("192.0.2.53"):   {ASNs: []uint32{64510}, ASName: "SERVICE"},
			a("203.0.113.1"):  {ASNs: []uint32{64520}},
		}, errors.New("2001:db8::53: timed out")
	}
	err := Enrich(context.Background(), lookup, before, after)
	want := []netip.Addr{a("198.51.100.2"), a("192.0.2.53"), a("203.0.113.1"), a("198.51.100.9"), a("2001:db8::53")}
	if len(asked) != 1 || !slices.Equal(asked[0], want) {
		t.Fatalf("asked %v, want one lookup of %v (the public address, not the private source; no hop with an AS)", asked, want)
	}
	if err == nil {
		t.Error("the lookup's error was lost")
	}
	b := before[0]
	if b.Vantage.Origin.AS() != 64501 || b.TargetOrigin.ASName != "SERVICE" ||
		!slices.Equal(b.Flows[0].Hops[0].Responders[0].ASNs, []uint32{64520}) ||
		!slices.Equal(b.Flows[0].Hops[1].Responders[0].ASNs, []uint32{64999}) {
		t.Errorf("before: vantage %+v, target %+v, hops %+v", b.Vantage.Origin, b.TargetOrigin, b.Flows[0].Hops)
	}
	if after[0].Vantage.Origin.AS() != 64500 || after[0].TargetOrigin.AS() != 64510 {
		t.Errorf("after: a known origin was replaced (%+v) or the target not filled in (%+v)", after[0].Vantage.Origin, after[0].TargetOrigin)
	}

	// Nothing to ask: no lookup.
	asked = nil
	if err := Enrich(context.Background(), lookup, []Observation{{Vantage: Vantage{Key: "host:y"}}}); err != nil || asked != nil {
		t.Errorf("asked %v (%v) with nothing to look up", asked, err)
	}
}
