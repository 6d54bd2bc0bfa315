package render

import (
	"bytes"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/internal/report"
)

// Groups of answers counted apart list their vantage points only when
// there are five or fewer: a first group of six and a second of two made
// rows of 3 and 4 cells, and the table writer indexed past the first
// row's widths (a panic in compare -o text and -o html on the world
// population).
func TestCompareTextApartGroupsOfUnevenLength(t *testing.T) {
	many := []string{"probe 1", "probe 2", "probe 3", "probe 4", "probe 5", "probe 6"}
	s := &report.CompareSummary{Targets: []report.CompareTarget{{
		Target: "192.0.2.53", Vantages: 8, Suspect: 8,
		Apart: []report.ApartDTO{
			{Vantages: many, Identities: []report.FlowCount{{Instance: "ams-1", Flows: 6}}, Reasons: []report.CountDTO{{What: "name unlike", Count: 6}}},
			{Vantages: []string{"probe 7", "probe 8"}, Identities: []report.FlowCount{{Instance: "x", Flows: 2}}, Reasons: []report.CountDTO{{What: "RA set", Count: 2}}},
		},
	}}}
	rows := []report.CompareRow{{Target: "192.0.2.53", Vantage: report.CompareVantage{Key: "a", Label: "probe 1"}}}
	var b bytes.Buffer
	if err := CompareText(&b, rows, s, CompareOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(probe 7, probe 8)") {
		t.Errorf("the short group's vantage points are missing:\n%s", b.String())
	}
}
