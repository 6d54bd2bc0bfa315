package atlas

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// oneHopResult is a traceroute whose one hop has n replies, each from
// another address (and each address twice when dup), the last one the target.
func oneHopResult(n int) *Result {
	dst := netip.MustParseAddr("192.0.2.53")
	reps := make([]TraceReply, n)
	for i := range reps {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		reps[i] = TraceReply{From: a, RTT: time.Duration(i%50+1) * time.Millisecond, TTL: -1}
	}
	reps[n-1].From = dst
	return &Result{Type: TypeTraceroute, ProbeID: 1, Dst: dst, AF: 4, Trace: &Traceroute{Hops: []TraceHop{{TTL: 1, Replies: reps}}}}
}

// A hop of many replies is read in time linear in them: 200,000 replies
// from distinct addresses, each checked against the ones before it, took
// minutes (40,000: 10.6 s). make bench prints the ratio of the two sizes:
// about 10 for linear time, 100 for quadratic.
func BenchmarkFlowOneHop(b *testing.B) {
	for _, n := range []int{20_000, 200_000} {
		r := oneHopResult(n)
		b.Run(fmt.Sprintf("replies=%d", n), func(b *testing.B) {
			for b.Loop() {
				r.Observations("bench")
			}
		})
	}
}

// Every distinct responder of a large hop is kept once, with its smallest
// RTT, in order of first reply.
func TestFlowLargeHop(t *testing.T) {
	r := oneHopResult(50_000)
	// Every address answers a second time, faster.
	reps := r.Trace.Hops[0].Replies
	for i := range 50_000 {
		again := reps[i]
		again.RTT = 100 * time.Microsecond
		reps = append(reps, again)
	}
	r.Trace.Hops[0].Replies = reps
	f := r.flow()
	rs := f.Hops[0].Responders
	if len(rs) != 50_000 || !f.Reached {
		t.Fatalf("%d responders, reached %v", len(rs), f.Reached)
	}
	for i, x := range rs {
		if x.Addr != reps[i].From || x.RTT != 100*time.Microsecond {
			t.Fatalf("responder %d: %+v, want %s with the smaller RTT", i, x, reps[i].From)
		}
	}
}
