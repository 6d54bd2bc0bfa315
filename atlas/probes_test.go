package atlas

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// liveHeap runs f and returns the largest live heap seen while r was read
// (sampled after a collection every 256 KB read) or after f returned.
type liveHeap struct {
	r    io.Reader
	n    int
	peak uint64
}

func (l *liveHeap) sample() {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	l.peak = max(l.peak, m.HeapAlloc)
}

func (l *liveHeap) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if l.n += n; l.n >= 256<<10 {
		l.n = 0
		l.sample()
	}
	return n, err
}

// A probes file is streamed: its live heap is the probes kept (one per
// distinct id), never the file nor every object at once. 2,000,000 tiny
// objects naming 2,000 probes once held the whole file and two million
// decoded probes (a 100 MB file took 5.2 GB).
func TestReadProbesStreams(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("[")
	for i := range 2_000_000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d}`, 1+i%2000)
	}
	b.WriteString("]")
	size := b.Len()
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	l := &liveHeap{r: &b}
	probes, err := ReadProbes(l)
	l.sample()
	if err != nil || len(probes) != 2000 {
		t.Fatalf("%d probes, %v; want the 2000 distinct ones", len(probes), err)
	}
	grew := l.peak - min(l.peak, base.HeapAlloc)
	t.Logf("%d MB file, live heap grew by %d KB at most", size>>20, grew>>10)
	if grew > 8<<20 {
		t.Errorf("reading a %d MB probes file grew the live heap by %d MB", size>>20, grew>>20)
	}
}

// One probe object larger than any real one is refused while it is read.
func TestReadProbesRefusesAHugeObject(t *testing.T) {
	src := io.MultiReader(strings.NewReader(`[{"id":1,"country_code":"`), io.LimitReader(repeat('a'), 64<<20), strings.NewReader(`"}]`))
	l := &liveHeap{r: src}
	_, err := ReadProbes(l)
	if err == nil || !strings.Contains(err.Error(), "probe 0: larger than") {
		t.Errorf("%v, want probe 0 refused by its size", err)
	}
	if l.peak > 16<<20 {
		t.Errorf("live heap reached %d MB", l.peak>>20)
	}
}
