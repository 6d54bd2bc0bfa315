package catchment

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/measure"
)

// hops builds a hop list from addresses per TTL starting at 1; "*" is a
// silent hop.
func hops(addrs ...string) []Hop {
	var out []Hop
	for i, a := range addrs {
		h := Hop{TTL: i + 1}
		if a != "*" {
			h.Responders = []Responder{{Addr: netip.MustParseAddr(a)}}
		}
		out = append(out, h)
	}
	return out
}

func flow(instance string, addrs ...string) Flow {
	return Flow{Proto: "udp", Hops: hops(addrs...), Reached: true, Identity: measure.Identity{Instance: instance, Source: "nsid"}}
}

func TestGroupPaths(t *testing.T) {
	flows := []Flow{
		flow("g1", "10.0.0.1", "198.51.100.1", "192.0.2.53"),
		flow("g1", "10.0.0.1", "198.51.100.2", "192.0.2.53"),
		flow("g1", "10.0.0.1", "198.51.100.1", "192.0.2.53"),
		flow("g2", "10.0.0.1", "198.51.100.1", "192.0.2.53"),
		// A silent hop is not assumed to match an answered one.
		flow("g1", "10.0.0.1", "*", "192.0.2.53"),
	}
	paths := GroupPaths(flows)
	if len(paths) != 3 {
		t.Fatalf("want 3 paths, got %d: %+v", len(paths), paths)
	}
	if !slices.Equal(paths[0].Flows, []int{0, 2, 3}) || !slices.Equal(paths[1].Flows, []int{1}) || !slices.Equal(paths[2].Flows, []int{4}) {
		t.Errorf("flows per path: %v %v %v", paths[0].Flows, paths[1].Flows, paths[2].Flows)
	}
	want := []InstanceCount{{"g1", 2}, {"g2", 1}}
	if !slices.Equal(paths[0].Instances, want) {
		t.Errorf("instances of path 0: %v, want %v", paths[0].Instances, want)
	}
}

func TestDivergenceDiamond(t *testing.T) {
	// The lab's ECMP diamond: both branches part after TTL 1 and join at 3.
	paths := GroupPaths([]Flow{
		flow("i1", "198.51.100.1", "198.51.100.22", "198.51.100.33", "203.0.113.1", "192.0.2.53"),
		flow("i1", "198.51.100.1", "198.51.100.18", "198.51.100.33", "203.0.113.1", "192.0.2.53"),
		flow("i1", "198.51.100.1", "198.51.100.22", "198.51.100.33", "203.0.113.1", "192.0.2.53"),
	})
	d := Divergence(paths)
	if len(d) != 1 {
		t.Fatalf("want one diamond, got %+v", d)
	}
	if d[0].Part != 1 || d[0].Join != 3 || d[0].PartAddr.String() != "198.51.100.1" || d[0].JoinAddr.String() != "198.51.100.33" {
		t.Errorf("diamond parts after %d (%s) and joins at %d (%s), want 1 and 3", d[0].Part, d[0].PartAddr, d[0].Join, d[0].JoinAddr)
	}
	// Each address with the flows that saw it.
	want := []Alternatives{{TTL: 2, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.18"), netip.MustParseAddr("198.51.100.22")}, Flows: []int{1, 2}}}
	if fmt.Sprint(d[0].Alternatives) != fmt.Sprint(want) {
		t.Errorf("alternatives %v, want %v", d[0].Alternatives, want)
	}
}

func TestDivergenceSplitNeverJoins(t *testing.T) {
	// Two equal routes to two sites: the paths part at TTL 2 and end on
	// one anycast address served by two instances — they never join.
	paths := GroupPaths([]Flow{
		flow("g1", "10.0.0.1", "198.51.100.1", "203.0.113.1", "192.0.2.53"),
		flow("g2", "10.0.0.1", "198.51.100.9", "203.0.113.9", "192.0.2.53"),
		flow("g2", "10.0.0.1", "198.51.100.9", "*", "192.0.2.53"),
	})
	d := Divergence(paths)
	if len(d) != 1 || d[0].Part != 1 || d[0].Join != 0 {
		t.Fatalf("want one divergence after TTL 1 that never joins, got %+v", d)
	}
	if len(d[0].Alternatives) != 2 || d[0].Alternatives[1].TTL != 3 {
		t.Errorf("alternatives %+v", d[0].Alternatives)
	}
	// One path: nothing diverges.
	if d := Divergence(paths[:1]); d != nil {
		t.Errorf("one path diverges: %+v", d)
	}
}

func TestSplitOf(t *testing.T) {
	var flows []Flow
	for i := range 32 {
		in := "g2"
		if i < 13 {
			in = "g1"
		}
		flows = append(flows, flow(in, "10.0.0.1"))
	}
	flows = append(flows, Flow{})
	s := SplitOf(flows)
	if !s.Split || s.Unidentified != 1 {
		t.Fatalf("split %+v", s)
	}
	if want := []InstanceCount{{"g2", 19}, {"g1", 13}}; !slices.Equal(s.Instances, want) {
		t.Errorf("instances %v, want %v", s.Instances, want)
	}
	if SplitOf(flows[:1]).Split {
		t.Errorf("one instance is no split")
	}
}

// The published 95 % table (Augustin et al. 2007; Veitch et al. 2009):
// flows needed to rule out a (k+1)-th branch after seeing k.
func TestMDAStoppingPointTable(t *testing.T) {
	want := []int{6, 11, 16, 21, 27, 33, 38, 44, 51, 57, 63, 70, 76, 83, 90, 96}
	for i, w := range want {
		if got := MDAStoppingPoint(i+1, 0.95); got != w {
			t.Errorf("k=%d: %d flows, want %d", i+1, got, w)
		}
	}
	// Stricter confidence needs more flows; k=0 needs one to see anything.
	if a, b := MDAStoppingPoint(1, 0.95), MDAStoppingPoint(1, 0.99); b <= a {
		t.Errorf("99%% (%d) should need more flows than 95%% (%d)", b, a)
	}
	if MDAStoppingPoint(0, 0.95) != 1 {
		t.Errorf("k=0")
	}
	// Large k stays finite and monotone (the recurrence is stable).
	if n := MDAStoppingPoint(100, 0.95); n < 700 || n > 800 {
		t.Errorf("k=100: %d", n)
	}
}

func TestMDAUnsatisfied(t *testing.T) {
	diamond := func(i int) Flow {
		mid := "198.51.100.22"
		if i%2 == 1 {
			mid = "198.51.100.18"
		}
		return flow("i1", "198.51.100.1", mid, "198.51.100.33")
	}
	var flows []Flow
	for i := range 10 {
		flows = append(flows, diamond(i))
	}
	// Ten flows: the vantage and both middle hops have one next hop each
	// (need 6; the middle hops have 5 flows each), the first hop has two
	// (need 11).
	left := MDAUnsatisfied(flows, 0.95)
	byAddr := map[string]MDAVertex{}
	for _, v := range left {
		byAddr[v.Addr.String()] = v
	}
	if v, ok := byAddr["198.51.100.1"]; !ok || v.NextHops != 2 || v.Flows != 10 || v.Needed != 11 {
		t.Errorf("first hop: %+v (all: %+v)", v, left)
	}
	if v, ok := byAddr["198.51.100.22"]; !ok || v.Flows != 5 || v.Needed != 6 {
		t.Errorf("middle hop: %+v", v)
	}
	if _, ok := byAddr["invalid IP"]; ok {
		t.Errorf("the vantage has 10 flows to one next hop: satisfied, got %+v", left)
	}
	for i := 10; i < 12; i++ {
		flows = append(flows, diamond(i))
	}
	if left := MDAUnsatisfied(flows, 0.95); len(left) != 0 {
		t.Errorf("12 flows satisfy every vertex, left %+v", left)
	}
	// A silent hop breaks the chain: nothing is attributed across it.
	if left := MDAUnsatisfied([]Flow{flow("", "*", "198.51.100.22", "198.51.100.33")}, 0.95); len(left) != 1 || left[0].TTL != 2 {
		t.Errorf("silent first hop: %+v", left)
	}
}

// TestPlacePaths: flows whose only difference from a path is hops that did
// not answer are that path's flows (no path is drawn through "*" where
// others answered); a destination reached a TTL later behind silent TTLs
// is the same destination (its answer was lost); flows that fit several
// paths, or got no reply at all, are in none; a path silent on all its
// flows at a TTL (a router that never answers) stays a path.
func TestPlacePaths(t *testing.T) {
	const (
		e1, m1, m2, r1, d = "198.51.100.1", "198.51.100.18", "198.51.100.22", "198.51.100.33", "192.0.2.53"
	)
	notReached := func(f Flow) Flow { f.Reached = false; return f }
	flows := []Flow{
		flow("i1", e1, m1, r1, d),                        // 0: path A
		flow("i1", e1, m2, r1, d),                        // 1: path B
		flow("i1", "*", m1, "*", d),                      // 2: A, holes at 1 and 3
		flow("i1", e1, m2, r1, "*", d),                   // 3: B, its answer at 4 lost
		flow("i1", "*", "*", r1, d),                      // 4: fits A and B
		notReached(flow("", "*", "*", "*", "*", "*")),    // 5: no reply at all
		flow("i2", e1, m1, r1, "198.51.100.99"),          // 6: another destination address: a path of its own
		flow("i1", e1, m2, "*", d),                       // 7: B
		notReached(flow("", e1, m1, "*", "*", "*")),      // 8: not reached: a path of its own
		flow("i1", e1, "198.51.100.26", r1, "*", "*", d), // 9: C, answers at 4 and 5 lost
	}
	paths, unplaced := PlacePaths(flows)
	var got []string
	for _, p := range paths {
		got = append(got, fmt.Sprint(p.Flows, hopString(p.Hops)))
	}
	want := []string{
		fmt.Sprint([]int{0, 2}, "1:"+e1+" 2:"+m1+" 3:"+r1+" 4:"+d),
		fmt.Sprint([]int{1, 3, 7}, "1:"+e1+" 2:"+m2+" 3:"+r1+" 4:"+d),
		fmt.Sprint([]int{6}, "1:"+e1+" 2:"+m1+" 3:"+r1+" 4:198.51.100.99"),
		fmt.Sprint([]int{8}, "1:"+e1+" 2:"+m1+" 3:* 4:* 5:*"),
		fmt.Sprint([]int{9}, "1:"+e1+" 2:198.51.100.26 3:"+r1+" 4:* 5:* 6:"+d),
	}
	if !slices.Equal(got, want) {
		t.Errorf("paths:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !slices.Equal(unplaced, []int{4, 5}) {
		t.Errorf("unplaced %v, want [4 5]", unplaced)
	}
	if in := paths[1].Instances; len(in) != 1 || in[0] != (InstanceCount{"i1", 3}) {
		t.Errorf("instances of path B: %v", in)
	}
	// A router that never answers is a "*" on every flow of its path.
	silent := []Flow{flow("i2", "*", "198.51.100.81", d), flow("i2", "*", "198.51.100.81", d)}
	if paths, unplaced := PlacePaths(silent); len(paths) != 1 || len(unplaced) != 0 || hopString(paths[0].Hops) != "1:* 2:198.51.100.81 3:"+d {
		t.Errorf("silent router: %+v, unplaced %v", paths, unplaced)
	}
}

func hopString(hs []Hop) string {
	var parts []string
	for _, h := range hs {
		s := "*"
		if !h.Silent() {
			var as []string
			for _, r := range h.Responders {
				as = append(as, r.Addr.String())
			}
			s = strings.Join(as, ",")
		}
		parts = append(parts, fmt.Sprintf("%d:%s", h.TTL, s))
	}
	return strings.Join(parts, " ")
}

// Ranked orders a tally most counted first, ties by name, whatever the
// map's order.
func TestRanked(t *testing.T) {
	m := map[string]int{"lhr": 2, "ams": 5, "fra": 2, "sin": 1, "cdg": 5}
	for range 5 {
		if got := Ranked(m); !slices.Equal(got, []string{"ams", "cdg", "fra", "lhr", "sin"}) {
			t.Fatalf("ranked %v", got)
		}
	}
}
