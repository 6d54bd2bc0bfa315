package render

import (
	"io"
	"strings"

	"github.com/anycheck/anycheck/internal/report"
)

// WhoisText writes `anycheck whois` results as a table.
func WhoisText(w io.Writer, rows []report.WhoisResult) error {
	ew := &errWriter{w: w}
	head := []string{"ADDRESS", "AS", "PREFIX", "CC", "REGISTRY", "ALLOCATED", "AS NAME", "PTR"}
	table := [][]string{head}
	for _, r := range rows {
		o := r.Origin
		row := []string{Escape(r.Input), "", "", "", "", "", "", Escape(r.Name)}
		switch {
		case o == nil:
			row[1] = "unknown"
		case o.Special != "":
			row[1] = o.Special
		case o.Unannounced:
			row[1] = "NA"
		default:
			row[1] = asLabel(o)
		}
		if o != nil {
			row[2], row[3], row[4], row[5], row[6] = o.Prefix, Escape(o.Country), Escape(o.Registry), Escape(o.Allocated), Escape(o.ASName)
			if o.Cached {
				row[6] += " (cached)"
			}
		}
		table = append(table, row)
	}
	widths := make([]int, len(head))
	for _, row := range table {
		for i, c := range row {
			widths[i] = max(widths[i], width(c))
		}
	}
	for _, row := range table {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = pad(c, widths[i])
		}
		ew.printf("%s\n", strings.TrimRight(strings.Join(cells, "  "), " "))
	}
	return ew.err
}
