package whois

import (
	"context"
	"net/netip"
	"testing"
)

// Fixed answers what its table holds, labels special addresses as every
// Resolver does (even one the table names), and leaves the rest out.
func TestFixed(t *testing.T) {
	known, private, unknown := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("203.0.113.9")
	f := Fixed{
		known:   {Addr: known, ASNs: []uint32{64500}, Source: "file"},
		private: {Addr: private, ASNs: []uint32{64999}, Source: "file"},
	}
	got, err := f.Lookup(context.Background(), []netip.Addr{known, private, unknown, known})
	if err != nil {
		t.Fatal(err)
	}
	if og := got[known]; len(og.ASNs) != 1 || og.ASNs[0] != 64500 || og.Source != "file" {
		t.Errorf("%s: %+v", known, og)
	}
	if og := got[private]; og.Source != SourceSpecial || len(og.ASNs) != 0 {
		t.Errorf("%s: %+v, want it labelled special", private, og)
	}
	if _, ok := got[unknown]; ok || len(got) != 2 {
		t.Errorf("answers %v: want the two known addresses only", got)
	}
}
