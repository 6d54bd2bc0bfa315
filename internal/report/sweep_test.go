package report

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/catchment"
)

// flowPath is a traced flow on the wire: one probe per hop, "*" silent,
// the target's reply last with the instance's identity (none when id is "").
func flowPath(sport int, id string, hops ...string) TraceFlow {
	const target = "192.0.2.53"
	t := TraceFlow{Flow: FlowDTO{Protocol: "udp", Src: "198.51.100.10", Sport: sport, Dst: target, Dport: 53}}
	for i, h := range hops {
		hop := HopDTO{TTL: i + 1, Probes: []ProbeDTO{{}}, Responders: []ResponderDTO{}}
		if h != "*" {
			hop.Probes[0].Reply = &ReplyDTO{From: h, RTTMs: float64(i+1) + float64(sport%10)/10}
			hop.Responders = append(hop.Responders, ResponderDTO{Address: h})
		}
		t.Path.Hops = append(t.Path.Hops, hop)
	}
	if last := hops[len(hops)-1]; last == target {
		t.Path.Reached, t.Path.DestTTL, t.Path.StopReason = true, len(hops), "reached"
		if id != "" {
			t.Instance = InstanceDTO{Name: OptString(id), Source: "nsid", NSID: OptString(id)}
		}
	} else {
		t.Path.StopReason = "max-ttl"
	}
	return t
}

// testSweep is a sweep of flows as the CLI makes it: by source port,
// analysed by the catchment model over the same order.
func testSweep(flows []TraceFlow, failed []FailedFlow, stop SweepStop) TraceSweep {
	flows = slices.Clone(flows)
	slices.SortStableFunc(flows, func(a, b TraceFlow) int { return a.Flow.Sport - b.Flow.Sport })
	target := netip.MustParseAddr(flows[0].Flow.Dst)
	cf := make([]catchment.Flow, len(flows))
	for i, f := range flows {
		cf[i] = f.CatchmentFlow(target)
	}
	an := catchment.SweepOf(cf, target, nil, MDAConfidence)
	return NewTraceSweep(target.String(), target.String(), "udp", 53, SweepIdentityUDP, flows, an, failed, stop)
}

// TestNewTraceSweep groups synthetic flows: identical hop lists are one
// path with its flows' ports, the diamond's TTLs and alternatives with
// their flow counts, instances by flow count, the split, and the hops the
// MDA rule still wants flows for.
func TestNewTraceSweep(t *testing.T) {
	var flows []TraceFlow
	mids := map[int]string{}
	for sport := 40011; sport >= 40000; sport-- { // out of order on purpose
		mid := "198.51.100.18"
		if sport%4 == 0 {
			mid = "198.51.100.22"
		}
		mids[sport] = mid
		id := "i1-nsd"
		if sport == 40009 {
			id = "i2-knot" // behind the same hops: a split the hop list cannot show
		}
		flows = append(flows, flowPath(sport, id, "198.51.100.1", mid, "198.51.100.33", "192.0.2.53"))
	}
	flows = append(flows, flowPath(40020, "", "198.51.100.1", "*", "*", "*")) // not reached
	s := testSweep(flows, []FailedFlow{{Sport: 40030, Message: "bind: address already in use"}},
		SweepStop{Mode: "fixed", Reason: SweepStopFlows, MaxFlows: 14, Rounds: 1})

	for i := 1; i < len(s.Flows); i++ {
		if s.Flows[i-1].Flow.Sport >= s.Flows[i].Flow.Sport {
			t.Fatalf("flows not by port: %d before %d", s.Flows[i-1].Flow.Sport, s.Flows[i].Flow.Sport)
		}
	}
	if len(s.Paths) != 3 {
		t.Fatalf("%d paths, want 3 (two branches, one unreached)", len(s.Paths))
	}
	want18 := []int{40001, 40002, 40003, 40005, 40006, 40007, 40009, 40010, 40011}
	// Paths come in the order of their first flow by port.
	if !slices.Equal(s.Paths[1].Sports, want18) || !slices.Equal(s.Paths[0].Sports, []int{40000, 40004, 40008}) || !slices.Equal(s.Paths[2].Sports, []int{40020}) {
		t.Errorf("paths' flows: %v / %v / %v", s.Paths[0].Sports, s.Paths[1].Sports, s.Paths[2].Sports)
	}
	if got := fmt.Sprint(s.Paths[1].Instances); got != "[{i1-nsd 8} {i2-knot 1}]" || s.Paths[1].Reached != 9 || s.Paths[2].Reached != 0 {
		t.Errorf("path 2 instances %s reached %d; path 3 reached %d", got, s.Paths[1].Reached, s.Paths[2].Reached)
	}
	// RTT: the median of the path's flows' RTTs at the hop.
	if h := s.Paths[0].Hops[0]; h.RTTMs == nil || *h.RTTMs != 1.4 || len(h.Responders) != 1 || h.Responders[0].Address != "198.51.100.1" {
		t.Errorf("path 1 hop 1: %+v, want the median 1.4 of 1.0, 1.4, 1.8", h)
	}
	if h := s.Paths[2].Hops[1]; h.RTTMs != nil || len(h.Responders) != 0 {
		t.Errorf("silent hop: %+v", h)
	}

	sum := s.Summary
	if sum.Flows != 13 || sum.Reached != 12 || sum.Failed != 1 || sum.Paths != 3 || sum.Unidentified != 1 || !sum.Split {
		t.Errorf("summary %+v", sum)
	}
	if got := fmt.Sprint(sum.Instances); got != "[{i1-nsd 11} {i2-knot 1}]" {
		t.Errorf("instances %s", got)
	}
	if len(sum.Diamonds) != 1 {
		t.Fatalf("diamonds %+v", sum.Diamonds)
	}
	d := sum.Diamonds[0]
	if d.PartTTL != 1 || *d.PartAddress != "198.51.100.1" || d.JoinTTL == nil || *d.JoinTTL != 3 || *d.JoinAddress != "198.51.100.33" {
		t.Errorf("diamond part %d join %v", d.PartTTL, d.JoinTTL)
	}
	if got := fmt.Sprint(d.Alternatives); got != "[{2 [{198.51.100.18 9} {198.51.100.22 3}]}]" {
		t.Errorf("alternatives %s", got)
	}
	// 12 flows passed e1 and answered at TTL 2, showing 2 next hops (11
	// needed: met); the branch through .22 had 3 flows for its one next hop
	// (6 needed); .18 had 9, r1 12.
	uns := sum.Stop.Unsatisfied
	if len(uns) != 1 || uns[0].TTL != 2 || *uns[0].Address != "198.51.100.22" || uns[0].Flows != 3 || uns[0].Needed != 6 || uns[0].NextHops != 1 {
		t.Errorf("unsatisfied %+v", uns)
	}
	if sum.Stop.Confidence != MDAConfidence || sum.Stop.Reason != SweepStopFlows {
		t.Errorf("stop %+v", sum.Stop)
	}
}

// TestSweepDocumentIsCatchment: `compare` reads a sweep document as one
// catchment-table line per target with every flow, and sees the split.
func TestSweepDocumentIsCatchment(t *testing.T) {
	for _, name := range []string{"sweep.json", "sweep.jsonl"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", name))
		if err != nil {
			t.Fatal(err)
		}
		docs, bad, err := ReadDocuments(strings.NewReader(string(data)))
		if err != nil || len(bad) != 0 || len(docs) != 1 || docs[0].Kind != KindSweep {
			t.Fatalf("%s: docs %+v, bad %v, err %v", name, docs, bad, err)
		}
		v := VantageKeys(docs, []string{name})
		obs := docs[0].Observations(v[0], name)
		if name == "sweep.json" && len(obs) != 2 {
			t.Fatalf("%s: %d observations, want one per target", name, len(obs))
		}
		split := obs[len(obs)-1]
		if len(split.Flows) != 7 || len(split.Errors) != 1 || !strings.Contains(split.Errors[0], "flow 50005") || split.Vantage.Source != netip.MustParseAddr("198.51.100.10") {
			t.Errorf("%s: split target: %d flows, errors %q, source %v", name, len(split.Flows), split.Errors, split.Vantage.Source)
		}
		row := catchment.Resolve(split, nil)
		if !row.Split || len(row.FlowInstances) != 2 || row.Instance != "i1-nsd" {
			t.Errorf("%s: row split %v instances %+v instance %q", name, row.Split, row.FlowInstances, row.Instance)
		}
	}
}
