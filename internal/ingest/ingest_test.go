package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/atlas"
	"github.com/anycheck/anycheck/internal/report"
)

// recorder is a Sink that notes what it was given, in order.
type recorder struct{ got []string }

func (r *recorder) Document(name string, doc report.ReadDoc) {
	r.got = append(r.got, fmt.Sprintf("doc %s %s", filepath.Base(name), doc.Kind))
}
func (r *recorder) Probes(name string, ps []atlas.Probe) {
	r.got = append(r.got, fmt.Sprintf("probes %s %d", filepath.Base(name), len(ps)))
}
func (r *recorder) Result(name string, i int, res *atlas.Result) {
	r.got = append(r.got, fmt.Sprintf("result %s #%d %s", filepath.Base(name), i, res.Type))
}
func (r *recorder) Skip(name string, err error) {
	r.got = append(r.got, fmt.Sprintf("skip %s: %v", filepath.Base(name), err))
}

func read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// Read tells every input from its content, gzip or not, and hands the
// sink each document, result and probe list, or says why not.
func TestRead(t *testing.T) {
	trace := read(t, "../../atlas/testdata/traceroute.jsonl")
	doc := read(t, "../../testdata/golden/id.json")
	var probes bytes.Buffer
	if err := atlas.WriteProbes(&probes, []atlas.Probe{{ID: 6001, Country: "NL"}, {ID: 6002}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		data   []byte
		format string
		first  string
		counts [2]int // results, skipped
	}{
		{"trace.jsonl", trace, "atlas json lines", "result trace.jsonl #0 traceroute", [2]int{5, 2}}, // two bad results in the fixture
		{"trace.jsonl.gz", gz(trace), "atlas json lines", "result trace.jsonl.gz #0 traceroute", [2]int{5, 2}},
		{"id.json.gz", gz(doc), "anycheck", "doc id.json.gz id", [2]int{-1, 0}},
		{"probes.json", probes.Bytes(), "atlas probes", "probes probes.json 2", [2]int{0, 0}},
		{"empty", nil, "", "skip empty: empty file", [2]int{0, 1}},
		{"bad.gz", []byte{0x1f, 0x8b, 0}, "gzip", "skip bad.gz: gzip: unexpected EOF", [2]int{0, 1}},
		{"notes.txt", []byte("hello\n"), "", "skip notes.txt: " + ErrUnknownFormat.Error(), [2]int{0, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r recorder
			in := Read(context.Background(), c.name, bytes.NewReader(c.data), &r)
			if len(r.got) == 0 || r.got[0] != c.first {
				t.Fatalf("sink got %q, want %q first", r.got, c.first)
			}
			if !strings.HasPrefix(in.Format, c.format) || (c.counts[0] >= 0 && in.Results != c.counts[0]) || in.Skipped != c.counts[1] {
				t.Errorf("input %+v, want format %q, %d results, %d skipped", in, c.format, c.counts[0], c.counts[1])
			}
		})
	}
	// A bad result among good ones is skipped, and the rest read on.
	lines := strings.SplitAfter(string(trace), "\n")
	broken := lines[0] + "{\"type\": \"traceroute\", \"prb_id\": \"x\"}\n" + lines[1]
	var r recorder
	in := Read(context.Background(), "mixed", strings.NewReader(broken), &r)
	if in.Results != 2 || in.Skipped != 1 || len(r.got) != 3 || !strings.HasPrefix(r.got[1], "skip mixed: ") || r.got[2] != "result mixed #2 traceroute" {
		t.Errorf("input %+v, sink %q: want the bad result skipped between two read", in, r.got)
	}
	// Ctrl-C stops a long input.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if in := Read(ctx, "trace", bytes.NewReader(trace), &recorder{}); in.Results != 0 {
		t.Errorf("cancelled: %d results read", in.Results)
	}
}

// ReadAll reads files, directories (their regular files, sorted, hidden
// ones left out) and stdin in order; what cannot be opened is a Skip.
func TestReadAll(t *testing.T) {
	dir := t.TempDir()
	trace := read(t, "../../atlas/testdata/traceroute.jsonl")
	os.WriteFile(filepath.Join(dir, "b.jsonl"), trace, 0o644)
	os.WriteFile(filepath.Join(dir, "a.json"), read(t, "../../testdata/golden/id.json"), 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, ".git"), 0o755)
	os.WriteFile(filepath.Join(dir, ".git", "c.json"), trace, 0o644)
	empty := t.TempDir()
	var r recorder
	var inputs []string
	ReadAll(context.Background(), []string{dir, filepath.Join(dir, "missing"), empty, "-"}, bytes.NewReader(gz(trace)), &r, func(in Input) {
		inputs = append(inputs, fmt.Sprintf("%s %s", filepath.Base(in.Name), in.Format))
	})
	if fmt.Sprint(inputs) != "[a.json anycheck b.jsonl atlas json lines - atlas json lines]" {
		t.Errorf("inputs %q", inputs)
	}
	var skips []string
	for _, g := range r.got {
		if strings.HasPrefix(g, "skip ") && !strings.Contains(g, ": result ") {
			skips = append(skips, g)
		}
	}
	if len(skips) != 2 || !strings.Contains(skips[0], "missing") || !strings.HasSuffix(skips[1], "directory holds no files") {
		t.Errorf("skips %q", skips)
	}
	if _, _, err := Files(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Files of a missing path: %v", err)
	}
}
