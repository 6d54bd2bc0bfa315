package report

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"
	"github.com/anycheck/anycheck/probe"
)

// lossyRuns are three runs over one flow to a lossy instance: the first
// two answered by i1-nsd, the last one lost both its answers.
func lossyRuns() []probe.Result {
	t0 := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	target := netip.MustParseAddrPort("192.0.2.53:53")
	src := netip.MustParseAddrPort("198.51.100.10:43159")
	answered := func(name string) measure.Answer {
		return measure.Answer{Name: name, Transport: measure.UDP, Status: measure.StatusAnswered, TXT: []string{"i1.lab-a"},
			NSID: []byte("i1-nsd"), RTT: 300 * time.Microsecond, Header: measure.Header{TTL: -1}}
	}
	lost := func(name string) measure.Answer {
		return measure.Answer{Name: name, Transport: measure.UDP, Status: measure.StatusTimeout, Rcode: -1, Header: measure.Header{TTL: -1}}
	}
	id := measure.Identity{Instance: "i1-nsd", Source: measure.SourceNSID, NSID: "i1-nsd", NSIDHex: "69312d6e7364", HostnameBind: "i1.lab-a", IDServer: "i1.lab-a"}
	var runs []probe.Result
	for i := range 3 {
		r := probe.Result{Target: target, Source: src, Started: t0.Add(time.Duration(i) * 200 * time.Millisecond)}
		if i < 2 {
			r.Answers, r.Identity = []measure.Answer{answered(measure.NameHostnameBind), answered(measure.NameIDServer)}, id
		} else {
			r.Answers = []measure.Answer{lost(measure.NameHostnameBind), lost(measure.NameIDServer)}
		}
		runs = append(runs, r)
	}
	return runs
}

// A flow whose last run lost its answers still reached the instance its
// earlier runs named: the flow names it (its answers stay the last run's),
// and compare reading the document places the vantage in its catchment
// rather than among those without an instance.
func TestIDFlowLastRunLost(t *testing.T) {
	runs := lossyRuns()
	tg := FromIDRuns("192.0.2.53", runs[0].Target, false, [][]probe.Result{runs}, nil)
	f := tg.Flows[0]
	if f.Instance.Name != "i1-nsd" || f.Answers[0].Status != "timeout" {
		t.Errorf("flow instance %q, answers %+v; want i1-nsd named by the runs before, the last run's timeouts", f.Instance.Name, f.Answers)
	}
	d := New(KindID, Tool{Name: "anycheck", Version: "test"}, runs[0].Started, "c1")
	d.AddSource(runs[0].Source.String())
	d.Results = []IDTarget{tg}
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	obs := rd.Observations(VantageKeys([]ReadDoc{rd}, []string{"c1.json"})[0], "c1.json")
	if len(obs) != 1 || obs[0].Identity.Instance != "i1-nsd" {
		t.Fatalf("compare's observation: %+v; want the vantage reaching i1-nsd", obs)
	}
	if len(obs[0].Answers) != 2 || obs[0].Answers[0].Status != measure.StatusAnswered {
		t.Errorf("the answers judged should be those that named the instance: %+v", obs[0].Answers)
	}
}
