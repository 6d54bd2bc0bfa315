package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/atlas"
	"github.com/anycheck/anycheck/internal/report"
)

// FuzzRead: any bytes, plain or gzipped, are read without a panic into
// what the sink is told — Results the results and documents' results it
// was handed, Skipped its Skip calls — and gzip changes nothing of it.
func FuzzRead(f *testing.F) {
	var probes bytes.Buffer
	if err := atlas.WriteProbes(&probes, []atlas.Probe{{ID: 6001, Country: "NL"}}); err != nil {
		f.Fatal(err)
	}
	for _, s := range [][]byte{
		read(f, "../../atlas/testdata/traceroute.jsonl"),
		read(f, "../../testdata/golden/id.json"),
		read(f, "../../testdata/golden/sweep.jsonl"),
		probes.Bytes(),
		[]byte(`[{"type":"dns","prb_id":1,"result":{"answers":[]}}]`),
		[]byte(`{"schema":"anycheck/v2"`),
		{0x1f, 0x8b, 0x08},
		nil,
	} {
		f.Add(s)
	}
	// One gzip writer for every input (a new one allocates about 800 KB):
	// a fuzzing process runs its inputs one at a time.
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	f.Fuzz(func(t *testing.T, b []byte) {
		plain := readCounted(t, b)
		if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
			return // read as gzip already
		}
		zw.Reset(&zbuf)
		zw.Write(b)
		zw.Close()
		zipped := readCounted(t, zbuf.Bytes())
		zbuf.Reset()
		if plain.in != zipped.in || !slices.Equal(plain.got, zipped.got) {
			t.Errorf("gzip changed what was read: %+v %q\nvs %+v %q", plain.in, plain.got, zipped.in, zipped.got)
		}
	})
}

type counted struct {
	in  Input
	got []string
}

// bounded is a recorder that panics past max calls: every result, document
// or skip takes some of the input's bytes, so more calls than bytes is a
// reader that does not move on.
type bounded struct {
	recorder
	max int
}

func (r *bounded) check() {
	if len(r.got) > r.max {
		panic(fmt.Sprintf("more than %d calls for %d bytes: the reader does not move on; the last: %q", r.max, r.max, r.got[len(r.got)-3:]))
	}
}
func (r *bounded) Document(name string, doc report.ReadDoc) {
	r.recorder.Document(name, doc)
	r.check()
}
func (r *bounded) Probes(name string, ps []atlas.Probe) { r.recorder.Probes(name, ps); r.check() }
func (r *bounded) Result(name string, i int, res *atlas.Result) {
	r.recorder.Result(name, i, res)
	r.check()
}
func (r *bounded) Skip(name string, err error) { r.recorder.Skip(name, err); r.check() }

func readCounted(t *testing.T, b []byte) counted {
	rec := &bounded{max: len(b) + 16}
	in := Read(context.Background(), "in", bytes.NewReader(b), rec)
	results, skips := 0, 0
	for _, g := range rec.got {
		switch {
		case strings.HasPrefix(g, "result "):
			results++
		case strings.HasPrefix(g, "skip "):
			skips++
		}
	}
	if in.Skipped != skips {
		t.Errorf("Skipped %d, the sink was told of %d", in.Skipped, skips)
	}
	if in.Format != "anycheck" && in.Results != results {
		t.Errorf("%s: Results %d, the sink was handed %d", in.Format, in.Results, results)
	}
	if len(b) > 0 && in.Skipped == 0 && in.Format == "" {
		t.Errorf("%d bytes read as no format and nothing skipped", len(b))
	}
	return counted{in, rec.got}
}
