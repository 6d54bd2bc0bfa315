package catchment

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"
)

// A trace whose probes were identity queries is both the identity and the
// trace part of its line: its errors must not be listed twice.
func TestCollectorErrorsOnce(t *testing.T) {
	c := NewCollector()
	c.Add(Observation{
		Vantage: Vantage{Key: "host:a"}, Target: netip.MustParseAddr("192.0.2.53"),
		Answers: []measure.Answer{{Name: "hostname.bind", Status: measure.StatusAnswered}},
		Flows:   []Flow{{Proto: "udp", Hops: hops("198.51.100.1", "*")}},
		Errors:  []string{"flow 50005: bind: address already in use", "not reached: max-ttl"},
	})
	obs := c.Observations()
	if len(obs) != 1 || !slices.Equal(obs[0].Errors, []string{"flow 50005: bind: address already in use", "not reached: max-ttl"}) {
		t.Errorf("errors %q", obs[0].Errors)
	}
}

// Flow sweeps of one vantage and target over time: the instance most flows
// reached is what changes; the upstream of a sweep's first flow is not (the
// next sweep's first flow has another port and may take another branch).
func TestCollectorSweepChanges(t *testing.T) {
	c := NewCollector()
	v := Vantage{Key: "host:c3", Label: "c3"}
	t0 := time.Unix(1_700_000_000, 0).UTC()
	sweep := func(dt int, first string, instances ...string) Observation {
		o := Observation{Vantage: v, Target: svc4, Time: t0.Add(time.Duration(dt) * time.Second)}
		for i, in := range instances {
			up := "203.0.113.65"
			if i == 0 {
				up = first
			}
			o.Flows = append(o.Flows, flow(in, "198.51.100.1", up, "192.0.2.53"))
			o.Answers = append(o.Answers, answered(in, time.Millisecond)...)
		}
		return o
	}
	c.Add(sweep(0, "203.0.113.1", "i1", "i1", "i2"))
	c.Add(sweep(60, "203.0.113.65", "i2", "i1", "i1")) // another first flow, same majority
	c.Add(sweep(120, "203.0.113.1", "i1", "i2", "i2"))
	ch := c.Changes()
	if len(ch) != 1 || ch[0].Kind != "instance" || len(ch[0].Events) != 1 {
		t.Fatalf("changes %+v", ch)
	}
	if e := ch[0].Events[0]; e.From != "i1" || e.To != "i2" || !e.Time.Equal(t0.Add(120*time.Second)) {
		t.Errorf("event %+v", e)
	}
	// A single-flow trace still follows its upstream.
	c = NewCollector()
	for i, up := range []string{"203.0.113.1", "203.0.113.65"} {
		c.Add(Observation{Vantage: v, Target: svc4, Time: t0.Add(time.Duration(i) * time.Minute), Flows: []Flow{flow("", "198.51.100.1", up, "192.0.2.53")}})
	}
	if ch := c.Changes(); len(ch) != 1 || ch[0].Kind != "upstream" {
		t.Errorf("single-flow changes %+v", ch)
	}
}

// A line with an identity part and a trace part from different results is
// merged, and the parts stay apart in the collector: a later identity
// result replaces the identity part only; Observations leaves the
// collector as it was.
func TestCollectorMergesParts(t *testing.T) {
	c := NewCollector()
	t0 := time.Unix(1_700_000_000, 0).UTC()
	v := Vantage{Key: "atlas:1", Label: "probe 1"}
	dns := idObs(v, svc4, "i1", time.Millisecond)
	dns.Time, dns.Input = t0, "dns"
	tr := Observation{Vantage: v, Target: svc4, Time: t0.Add(time.Second), Input: "trace", Flows: []Flow{flow("", "198.51.100.1", "203.0.113.1", "192.0.2.53")}}
	both := Observation{Vantage: v, Target: svc6, Time: t0, Input: "both", Answers: answered("i2", time.Millisecond),
		Flows: []Flow{flow("i2", "2001:db8::1", "2001:db8:1::1", "2001:db8:53::53")}}
	both.Identity = measure.Summarise(both.Answers)
	c.Add(dns)
	c.Add(tr)
	c.Add(both)
	dns2 := idObs(v, svc4, "i2", time.Millisecond)
	dns2.Time, dns2.Input = t0.Add(2*time.Second), "dns2"
	c.Add(dns2)
	obs := c.Observations()
	if len(obs) != 2 {
		t.Fatalf("%d lines", len(obs))
	}
	if o := obs[0]; o.Identity.Instance != "i2" || len(o.Flows) != 1 || o.Input != "dns2, trace" || !o.Time.Equal(t0.Add(2*time.Second)) {
		t.Errorf("merged line: instance %q, %d flows, input %q, time %v", o.Identity.Instance, len(o.Flows), o.Input, o.Time)
	}
	if o := obs[1]; o.Identity.Instance != "i2" || len(o.Flows) != 1 || o.Input != "both" {
		t.Errorf("a result of both parts: instance %q, %d flows, input %q", o.Identity.Instance, len(o.Flows), o.Input)
	}
	// The same again: Observations leaves the collector as it was.
	if again := c.Observations(); again[0].Input != "dns2, trace" || again[1].Input != "both" {
		t.Errorf("a second call: %q, %q", again[0].Input, again[1].Input)
	}
}
