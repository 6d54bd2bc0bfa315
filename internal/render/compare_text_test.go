package render

import (
	"bytes"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/internal/report"
)

// A group of answers counted apart lists its few vantage points after its
// reasons; a longer reason of another group (one listing none) must not
// push that list a screen to the right (the demo's world map put 200
// spaces before "(probe 6497, …)").
func TestWriteTableRaggedLastCell(t *testing.T) {
	long := strings.Repeat("RA set where the service clears it; ", 6)
	var b bytes.Buffer
	ew := &errWriter{w: &b}
	writeTable(ew, [][]string{
		{"AS64499", "35 vantage points", long},
		{"AS64500", "5 vantage points", "faster than light", "(probe 6497, probe 7601)"},
	}, "    ")
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 2 || lines[1] != "    AS64500  5 vantage points   faster than light  (probe 6497, probe 7601)" {
		t.Errorf("ragged table:\n%s", b.String())
	}
}

// One instance by RTT is what the latency enumeration finds, not proof
// that there is no second one: next to the two sites the names give,
// "prove no second instance" read as a contradiction.
func TestLatencySummaryOneInstance(t *testing.T) {
	var b bytes.Buffer
	latencySummary(&errWriter{w: &b}, &report.LatencyDTO{Used: 3, Named: 2, Instances: []report.LatencyInstance{
		{Vantage: "c3", RTTMs: 26.3, RadiusKm: 2627, Vantages: 3},
	}})
	first, _, _ := strings.Cut(b.String(), "\n")
	if want := "  latency: ≥ 1 instance by RTT from 3 located vantage points (their RTT disks overlap: none proves a second); the names give 2 sites"; first != want {
		t.Errorf("got  %q\nwant %q", first, want)
	}
}

// `id --flows` describes each instance once, with every identity string
// its flows got: a lossy instance whose first flow lost its hostname.bind
// answer was shown without it, though other flows had it.
func TestIDFlowTableIdentityOverFlows(t *testing.T) {
	in := func(host, ids string) report.InstanceDTO {
		return report.InstanceDTO{Name: "i1-nsd", Source: "nsid", NSID: "i1-nsd", NSIDHex: "69312d6e7364", HostnameBind: report.OptString(host), IDServer: report.OptString(ids)}
	}
	tg := report.IDTarget{Target: "192.0.2.53", Port: 53, Transport: "udp", Flows: []report.IDFlow{
		{Flow: report.FlowDTO{Sport: 40000}, Instance: in("", "i1.lab-a")},
		{Flow: report.FlowDTO{Sport: 40001}, Instance: in("i1.lab-a", "")},
	}}
	var b bytes.Buffer
	if err := IDText(&b, []report.IDTarget{tg}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `instance  i1-nsd  (NSID "i1-nsd"; hostname.bind "i1.lab-a"; id.server "i1.lab-a")`) {
		t.Errorf("the instance's identity should gather its flows' strings:\n%s", b.String())
	}
}

// A line split by flow has no one site: its SITE cell says which share of
// its flows the site given stands for (the demo's c3, split 5 to 3, showed
// "lab i1 (FRA)" as if all its flows went there, while the summary counts
// it in no site).
func TestCompareTextSplitRowSite(t *testing.T) {
	rows := []report.CompareRow{{Target: "192.0.2.53", Vantage: report.CompareVantage{Key: "host:c3", Label: "c3"}, Split: true,
		Instance:      report.InstanceDTO{Name: "i1-nsd", Source: "nsid", Site: &report.SiteDTO{Operator: "lab", Site: "i1"}},
		FlowInstances: []report.FlowCount{{Instance: "i1-nsd", Flows: 5}, {Instance: "i2-knot", Flows: 3}}}}
	var b bytes.Buffer
	if err := CompareText(&b, rows, &report.CompareSummary{}, CompareOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "split: i1-nsd 5, i2-knot 3 flows  lab i1 on 5 of 8 flows") {
		t.Errorf("split row:\n%s", b.String())
	}
}
