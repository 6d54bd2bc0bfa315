package catchment

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/anycheck/anycheck/probe"
)

// A trace whose probes were identity queries is both the identity and the
// trace part of its line: its errors must not be listed twice.
func TestCollectorErrorsOnce(t *testing.T) {
	c := NewCollector()
	c.Add(Observation{
		Vantage: Vantage{Key: "host:a"}, Target: netip.MustParseAddr("192.0.2.53"),
		Answers: []Answer{{Name: "hostname.bind", Status: probe.StatusAnswered}},
		Flows:   []Flow{{Proto: "udp", Hops: hops("198.51.100.1", "*")}},
		Errors:  []string{"flow 50005: bind: address already in use", "not reached: max-ttl"},
	})
	obs := c.Observations()
	if len(obs) != 1 || !slices.Equal(obs[0].Errors, []string{"flow 50005: bind: address already in use", "not reached: max-ttl"}) {
		t.Errorf("errors %q", obs[0].Errors)
	}
}
