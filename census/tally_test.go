package census

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/geo"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// at is t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// step is one query: instance name and seconds after t0.
type step struct {
	inst string
	s    float64
}

// every returns queries at inst from s0 to s1 (inclusive) every dt seconds.
func every(inst string, s0, s1, dt float64) []step {
	var out []step
	for s := s0; s <= s1+1e-9; s += dt {
		out = append(out, step{inst, s})
	}
	return out
}

// alternate returns queries alternating between a and b every dt seconds.
func alternate(a, b string, s0, s1, dt float64) []step {
	var out []step
	for i, s := 0, s0; s <= s1+1e-9; i, s = i+1, s+dt {
		out = append(out, step{[]string{a, b}[i%2], s})
	}
	return out
}

func cat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// timeline renders a client's runs as "A[0-30] A+B[30.5-31] B[31.5-60]".
func timeline(c *Census, cl Client) string {
	if cl.Runs == nil {
		return "stable " + c.Instances[cl.Main()].Name
	}
	var parts []string
	for _, r := range cl.Runs {
		var names []string
		for _, i := range r.Instances {
			names = append(names, c.Instances[i].Name)
		}
		parts = append(parts, fmt.Sprintf("%s[%g-%g]", strings.Join(names, "+"),
			r.First.Sub(t0).Seconds(), r.Last.Sub(t0).Seconds()))
	}
	return strings.Join(parts, " ")
}

func TestTallyAffinity(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		want  string
		split bool
		moves int
	}{
		{"stable", every("A", 0, 60, 1), "stable A", false, 0},
		{"one move", cat(every("A", 0, 30, 1), every("B", 31, 60, 1)), "A[0-30] B[31-60]", false, 1},
		{"move and back", cat(every("A", 0, 30, 1), every("B", 31, 60, 1), every("A", 61, 90, 1)), "A[0-30] B[31-60] A[61-90]", false, 2},
		{"split all the time", alternate("A", "B", 0, 60, 0.5), "A+B[0-60]", true, 0},
		{"a flip while moving", cat(every("A", 0, 30, 1), []step{{"B", 30.5}, {"A", 31}}, every("B", 31.5, 60, 1)),
			"A[0-30] A+B[30.5-31] B[31.5-59.5]", true, 2},
		{"split, then one site withdrawn", cat(alternate("A", "B", 0, 29.5, 0.5), every("B", 30, 60, 0.5)),
			"A+B[0-29] B[29.5-60]", true, 1},
		// A client that queries rarely: every change is a move.
		{"sparse", []step{{"A", 0}, {"B", 100}, {"A", 200}}, "A[0-0] B[100-100] A[200-200]", false, 2},
		// A move at the very end of the data is still a move.
		{"move at the end", cat(every("A", 0, 30, 1), []step{{"B", 31}}), "A[0-30] B[31-31]", false, 1},
		// A split client keeping to one instance for a moment (a streak
		// that outlasted the window by time, but not by its queries) is
		// still one split stretch, not two split runs and a move.
		{"split with a pause", cat(alternate("A", "B", 0, 50, 0.5), []step{{"B", 50.5}, {"B", 51}}, alternate("A", "B", 62, 80, 0.5)),
			"A+B[0-80]", true, 0},
		// A stray query elsewhere amid a stable run: split briefly.
		{"stray query", cat(every("A", 0, 30, 1), []step{{"B", 30.5}}, every("A", 31, 60, 1)),
			"A[0-30] A+B[30.5-30.5] A[31-60]", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ty := NewTally(TallyOptions{SplitWindow: 10 * time.Second})
			client := netip.MustParseAddr("198.51.100.10")
			for _, st := range tc.steps {
				ty.Add(ty.Instance(st.inst), at(st.s), client)
			}
			c := ty.Result()
			if len(c.Clients) != 1 {
				t.Fatalf("%d clients, want 1", len(c.Clients))
			}
			cl := c.Clients[0]
			if got := timeline(c, cl); got != tc.want {
				t.Errorf("timeline %s, want %s", got, tc.want)
			}
			if cl.Split() != tc.split {
				t.Errorf("split %v, want %v", cl.Split(), tc.split)
			}
			if n := len(cl.Moves()); n != tc.moves {
				t.Errorf("%d moves, want %d", n, tc.moves)
			}
			var sum uint64
			for _, r := range cl.Runs {
				sum += r.Queries
			}
			if cl.Runs != nil && sum != uint64(len(tc.steps)) {
				t.Errorf("runs hold %d queries, want %d", sum, len(tc.steps))
			}
			if cl.Queries != uint64(len(tc.steps)) {
				t.Errorf("client has %d queries, want %d", cl.Queries, len(tc.steps))
			}
		})
	}
}

func TestTallyMoveTimes(t *testing.T) {
	ty := NewTally(TallyOptions{})
	client := netip.MustParseAddr("2001:db8:100:1::10")
	for _, st := range cat(every("A", 0, 30, 1), every("B", 30.25, 60, 1)) {
		ty.Add(ty.Instance(st.inst), at(st.s), client)
	}
	c := ty.Result()
	moves := c.Clients[0].Moves()
	if len(moves) != 1 {
		t.Fatalf("moves %+v, want one", moves)
	}
	m := moves[0]
	if !m.Left.Equal(at(30)) || !m.Arrived.Equal(at(30.25)) || m.Stayed != 30*time.Second {
		t.Errorf("move left %v arrived %v stayed %v; want 30s, 30.25s, 30s after t0", m.Left.Sub(t0), m.Arrived.Sub(t0), m.Stayed)
	}
	if c.Clients[0].Prefix.String() != "2001:db8:100::/48" {
		t.Errorf("prefix %s, want the client's /48", c.Clients[0].Prefix)
	}
}

func TestTallyTable(t *testing.T) {
	ty := NewTally(TallyOptions{PrefixLen4: 24})
	a, b := ty.Instance("a"), ty.Instance("b")
	// Two clients of one /24, one of another, one IPv6 client.
	for i := range 10 {
		ty.Add(a, at(float64(i)), netip.MustParseAddr("198.51.100.10"))
		ty.Add(a, at(float64(i)), netip.MustParseAddr("198.51.100.74"))
		ty.Add(b, at(float64(i)), netip.MustParseAddr("203.0.113.9"))
	}
	ty.Add(b, at(3), netip.MustParseAddr("2001:db8::1"))
	c := ty.Result()
	var got []string
	for _, cl := range c.Clients {
		got = append(got, fmt.Sprintf("%s %s %d", cl.Prefix, c.Instances[cl.Main()].Name, cl.Queries))
	}
	want := "198.51.100.0/24 a 20, 203.0.113.0/24 b 10, 2001:db8::/48 b 1"
	if strings.Join(got, ", ") != want {
		t.Errorf("clients %s, want %s", strings.Join(got, ", "), want)
	}
	if c.Instances[a].Queries != 20 || c.Instances[a].Main != 1 || c.Instances[b].Main != 2 {
		t.Errorf("instances %+v", c.Instances)
	}
	if !c.Start.Equal(t0) || !c.End.Equal(at(9)) || c.Queries != 31 {
		t.Errorf("window %v – %v, %d queries", c.Start, c.End, c.Queries)
	}
	if aff := c.Affinity(); aff.Clients != 3 || aff.Stable != 3 {
		t.Errorf("affinity %+v, want 3 stable clients", aff)
	}
	// --prefix-len 32 keeps single addresses.
	ty = NewTally(TallyOptions{PrefixLen4: 32})
	ty.Add(ty.Instance("a"), t0, netip.MustParseAddr("198.51.100.10"))
	ty.Add(ty.Instance("a"), t0, netip.MustParseAddr("198.51.100.74"))
	if n := len(ty.Result().Clients); n != 2 {
		t.Errorf("/32: %d clients, want 2", n)
	}
}

// Memory and work per query must not depend on how long the client
// flaps: runs beyond maxRuns are counted, not kept.
func TestTallyBoundedRuns(t *testing.T) {
	ty := NewTally(TallyOptions{SplitWindow: time.Second})
	client := netip.MustParseAddr("198.51.100.10")
	n := 0
	for i := range 1000 {
		inst := []string{"A", "B"}[i%2]
		for j := range 3 {
			ty.Add(ty.Instance(inst), at(float64(i*10+j)), client)
			n++
		}
	}
	cl := ty.Result().Clients[0]
	if len(cl.Runs) > maxRuns+1 || cl.DroppedRuns == 0 {
		t.Errorf("%d runs kept, %d dropped; want at most %d kept", len(cl.Runs), cl.DroppedRuns, maxRuns+1)
	}
	if cl.Queries != uint64(n) {
		t.Errorf("%d queries, want %d", cl.Queries, n)
	}
}

// "Are clients served by the nearest instance?": distances to the
// instance a client used and to the nearest one.
func TestDistances(t *testing.T) {
	ty := NewTally(TallyOptions{PrefixLen4: 32})
	ams, sin := ty.Instance("ams"), ty.Instance("sin")
	near, far := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	ty.Add(ams, t0, near)
	ty.Add(sin, t0, far)
	ty.Add(ams, t0, netip.MustParseAddr("198.51.100.3")) // no known place
	c := ty.Result()
	places := map[netip.Addr]geo.Point{near: {Lat: 52.0, Lon: 5.0}, far: {Lat: 50.1, Lon: 8.7}} // both in Europe
	d := c.Distances(map[int]geo.Point{ams: {Lat: 52.31, Lon: 4.76}, sin: {Lat: 1.36, Lon: 103.99}},
		func(a netip.Addr) (geo.Point, bool) { p, ok := places[a]; return p, ok })
	if len(d) != 2 {
		t.Fatalf("distances %+v, want two clients", d)
	}
	if x := d[0]; x.Nearest != ams || x.InstanceKm > 50 {
		t.Errorf("near client %+v", x)
	}
	if x := d[1]; x.Nearest != ams || x.InstanceKm < 10000 || x.NearestKm > 500 {
		t.Errorf("the client served from Singapore %+v: Amsterdam is nearer", x)
	}
}
