package render

import (
	"math/rand/v2"
	"strings"
	"testing"
	"text/tabwriter"
)

// On ASCII text the table lays out exactly as text/tabwriter does (column
// blocks, the last cell of a line unpadded, lines without tabs), so
// outputs keep their shape; it differs only where a rune is not one column.
func TestTableMatchesTabwriter(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"", "a", "bb", "hop", "192.0.2.1", "AS64500", "*"}
	for n := range 500 {
		var b strings.Builder
		for range 1 + r.IntN(6) {
			for range r.IntN(5) {
				b.WriteString(words[r.IntN(len(words))] + "\t")
			}
			b.WriteString(words[r.IntN(len(words))])
			if r.IntN(8) > 0 {
				b.WriteString("\n")
			}
		}
		in := b.String()
		var want, got strings.Builder
		tw := tabwriter.NewWriter(&want, 0, 0, 2, ' ', 0)
		tw.Write([]byte(in))
		tw.Flush()
		tb := newTable(&got)
		tb.Write([]byte(in))
		if err := tb.Flush(); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Fatalf("case %d %q:\ngot  %q\nwant %q", n, in, got.String(), want.String())
		}
	}
}

// Wide characters (a CJK AS name) take two columns: the cells after them
// stay in line, where a rune count would shift them.
func TestTableDisplayWidth(t *testing.T) {
	var b strings.Builder
	tb := newTable(&b)
	tb.Write([]byte("1\t中国电信\tAS4134\n2\tTELIA\tAS1299\n"))
	tb.Flush()
	lines := strings.Split(b.String(), "\n")
	if i, j := strings.Index(lines[0], "AS4134"), strings.Index(lines[1], "AS1299"); width(lines[0][:i]) != width(lines[1][:j]) {
		t.Errorf("AS columns at %d and %d:\n%s", width(lines[0][:i]), width(lines[1][:j]), b.String())
	}
	if got := escapeFit("中国电信集团公司", 7); got != "中国电…" || width(got) > 7 {
		t.Errorf("escapeFit to 7 columns: %q (%d columns)", got, width(got))
	}
}
