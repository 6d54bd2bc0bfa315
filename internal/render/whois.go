package render

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/anycheck/anycheck/internal/report"
)

// WhoisTable writes `anycheck whois` results as a table aligned by
// text/tabwriter, with the header line when header is set. A long input
// is written in several calls (batches); each is aligned on its own.
func WhoisTable(w io.Writer, rows []report.WhoisResult, header bool) error {
	var b bytes.Buffer
	tw := newTable(&b)
	if header {
		io.WriteString(tw, "ADDRESS\tAS\tPREFIX\tCC\tREGISTRY\tALLOCATED\tAS NAME\tPTR\n")
	}
	for _, r := range rows {
		o := r.Origin
		// Escape turns tabs and newlines into visible escapes, so no cell
		// can add a column or a line.
		cells := []string{Escape(r.Input), "", "", "", "", "", "", Escape(r.Name)}
		switch {
		case o == nil:
			cells[1] = "unknown"
		case o.Special != "":
			cells[1] = o.Special
		case o.Unannounced:
			cells[1] = "NA"
		default:
			cells[1] = asLabel(o)
		}
		if o != nil {
			cells[2], cells[3], cells[4], cells[5], cells[6] = o.Prefix, Escape(o.Country), Escape(o.Registry), Escape(o.Allocated), Escape(o.ASName)
			if o.Cached {
				cells[6] += " (cached)"
			}
		}
		io.WriteString(tw, strings.Join(cells, "\t")+"\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads every cell but the last: drop the padding that ends a
	// line whose last columns are empty.
	bw := bufio.NewWriter(w)
	for line := range bytes.Lines(b.Bytes()) {
		bw.Write(bytes.TrimRight(line, " \n"))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
