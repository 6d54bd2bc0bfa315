package render

import (
	"bytes"
	"io"
	"strings"

	"github.com/mattn/go-runewidth"
)

// width is the number of terminal columns s takes: East Asian wide
// characters take two, combining marks none. Every table and padded field
// of the text output is laid out by it (a rune count would push every
// column after a CJK AS name or instance name out of line).
func width(s string) int { return runewidth.StringWidth(s) }

// pad fills s with spaces to w columns.
func pad(s string, w int) string {
	if n := width(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// table is text/tabwriter's elastic tabstops (NewWriter(w, 0, 0, 2, ' ',
// 0): a cell ends at a tab, consecutive lines with a cell in a column form
// a block padded to its widest cell plus two spaces, a line's last cell is
// not padded) measured in display columns rather than runes. Write
// collects text; Flush lays it out.
type table struct {
	w   io.Writer
	buf bytes.Buffer
}

func newTable(w io.Writer) *table { return &table{w: w} }

func (t *table) Write(p []byte) (int, error) { return t.buf.Write(p) }

// Flush writes the collected lines, aligned.
func (t *table) Flush() error {
	text := t.buf.String()
	t.buf.Reset()
	if text == "" {
		return nil
	}
	trailing := strings.HasSuffix(text, "\n")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	cells := make([][]string, len(lines))
	for i, l := range lines {
		cells[i] = strings.Split(l, "\t")
	}
	// An unfinished last line ends with its last tab (as in tabwriter).
	if last := cells[len(cells)-1]; !trailing && len(last) > 1 && last[len(last)-1] == "" {
		cells[len(cells)-1] = last[:len(last)-1]
	}
	var out strings.Builder
	layout(&out, cells, nil)
	s := out.String()
	if !trailing {
		s = strings.TrimSuffix(s, "\n")
	}
	_, err := io.WriteString(t.w, s)
	return err
}

// layout writes lines whose first len(widths) cells have the widths given,
// finding the blocks of the next column among them (as tabwriter's format
// does): a run of lines that have a cell there (a tab-terminated one: the
// last cell of a line is in no column) is laid out with that column's
// width added.
func layout(out *strings.Builder, lines [][]string, widths []int) {
	col := len(widths)
	start := 0
	for i := 0; i < len(lines); {
		if len(lines[i])-1 <= col {
			i++
			continue
		}
		writeLines(out, lines[start:i], widths)
		j, w := i, 0
		for ; j < len(lines) && len(lines[j])-1 > col; j++ {
			w = max(w, width(lines[j][col])+2)
		}
		layout(out, lines[i:j], append(widths, w))
		start, i = j, j
	}
	writeLines(out, lines[start:], widths)
}

func writeLines(out *strings.Builder, lines [][]string, widths []int) {
	for _, l := range lines {
		for k, c := range l {
			if k < len(widths) && k < len(l)-1 {
				out.WriteString(pad(c, widths[k]))
			} else {
				out.WriteString(c)
			}
		}
		out.WriteByte('\n')
	}
}
