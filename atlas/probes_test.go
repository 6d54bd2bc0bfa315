package atlas

import (
	"bytes"
	"fmt"
	"io"
	"os"
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

// The probe archive's daily dump: {"meta": …, "objects": [...]}, plain
// latitude and longitude, tags as slugs. Told from results and read like
// an API page; the real sample in the reference data too, when present.
func TestReadProbeArchive(t *testing.T) {
	dump := `{"meta": {"total_count": 2, "snapshot_datetime": 1544581203, "source_filename": "probes_2018-12-11.txt.gz"},
"objects": [{"prefix_v6": null, "id": 33001, "country_code": "KZ", "asn_v4": 9198, "asn_v6": null, "address_v4": "192.0.2.116",
  "latitude": 43.6375, "longitude": 51.1975, "tags": ["system-v3", "system-ipv4-works"], "is_anchor": false, "status_name": "Connected"},
 {"id": 33002, "country_code": "JP", "asn_v4": 10010, "asn_v6": 10010, "latitude": 95.0, "longitude": 138.2775, "tags": ["system-auto-geoip-country"]}]}`
	if !IsProbes([]byte(dump)) {
		t.Fatal("the archive's dump is not told as probe metadata")
	}
	ps, err := ReadProbes(strings.NewReader(dump))
	if err != nil || len(ps) != 2 {
		t.Fatalf("%d probes, %v", len(ps), err)
	}
	if p := ps[0]; p.ID != 33001 || p.ASNv4 != 9198 || p.Country != "KZ" || !p.HasLocation || p.Latitude != 43.6375 || p.Longitude != 51.1975 || p.AddressV4.String() != "192.0.2.116" {
		t.Errorf("probe 33001: %+v", p)
	}
	// A latitude off the globe is no location; the tag says Atlas placed it.
	if p := ps[1]; p.HasLocation || p.AutoGeo != "country" {
		t.Errorf("probe 33002: %+v", p)
	}
	for _, path := range []string{"../../shared/refdata/atlas/probes_archive_sample_20181211.json", "/work/shared/refdata/atlas/probes_archive_sample_20181211.json"} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		ps, err := ReadProbes(bytes.NewReader(data))
		if !IsProbes(data[:min(len(data), 4096)]) || err != nil || len(ps) != 40 {
			t.Errorf("%s: %d probes, %v", path, len(ps), err)
		}
		located := 0
		for _, p := range ps {
			if p.HasLocation && p.ASNv4 != 0 {
				located++
			}
		}
		if located < 30 {
			t.Errorf("%s: %d of %d probes located with an AS", path, located, len(ps))
		}
		return
	}
}
