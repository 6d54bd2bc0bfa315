package whois

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchLines is the size of the synthetic tables: the target is
// per million lines.
const benchLines = 1_000_000

// writeBenchPfx2as writes n pfx2as lines: /24s (and some /48s) with one to
// three origins.
func writeBenchPfx2as(w *bufio.Writer, n int) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		asn := 1 + r.IntN(60000)
		origins := strconv.Itoa(asn)
		if i%20 == 0 {
			origins += "_" + strconv.Itoa(asn+1)
		}
		if i%7 == 0 {
			fmt.Fprintf(w, "2400:%x:%x::\t48\t%s\n", i>>16, i&0xffff, origins)
			continue
		}
		a := netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 0})
		fmt.Fprintf(w, "%s\t24\t%s\n", a, origins)
	}
}

// writeBenchIPtoASN writes n iptoasn lines: consecutive ranges, 40,000
// distinct ASes with names. Like the real file, most IPv4 ranges are runs
// of /24s (a few prefixes each) and IPv6 ranges runs of /48s; one in
// twenty ranges is unaligned at both ends (up to ~20 prefixes).
func writeBenchIPtoASN(w *bufio.Writer, n int) { writeIPtoASN(w, n, 20) }

// writeBenchIPtoASNUnaligned is the worst case: every range unaligned.
func writeBenchIPtoASNUnaligned(w *bufio.Writer, n int) { writeIPtoASN(w, n, 1) }

func writeIPtoASN(w *bufio.Writer, n, unalignedEvery int) {
	r := rand.New(rand.NewPCG(3, 4))
	countries := []string{"US", "DE", "JP", "BR", "ZZ", "FR", "NL", "None"}
	next := uint32(1 << 24)
	v6 := uint64(0x2400 << 48)
	for i := range n {
		asn := r.IntN(40000)
		name, cc := "Not routed", "None"
		if asn != 0 {
			name, cc = fmt.Sprintf("AS%d-NET Example Networks %d, Inc.", asn, asn%977), countries[asn%len(countries)]
		}
		unaligned := i%unalignedEvery == 0
		if i%7 == 3 {
			size := uint64(1+r.IntN(16)) << 16 // /48s: the low 64 bits stay zero
			if unaligned {
				size = uint64(1 + r.IntN(1<<20))
			}
			var a, b [16]byte
			putU64(a[:], v6)
			putU64(b[:], v6+size-1)
			for j := 8; j < 16; j++ {
				b[j] = 0xff
			}
			v6 += size
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", netip.AddrFrom16(a), netip.AddrFrom16(b), asn, cc, name)
			continue
		}
		size := uint32(1+r.IntN(8)) << 8
		if unaligned {
			size = uint32(1 + r.IntN(3000))
		}
		from, to := next, next+size-1
		next += size
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", u32Addr(from), u32Addr(to), asn, cc, name)
	}
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

func u32Addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func writeBenchTable(b *testing.B, dir, name string, zip bool, gen func(*bufio.Writer, int)) string {
	b.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	var bw *bufio.Writer
	var zw *gzip.Writer
	if zip {
		zw = gzip.NewWriter(f)
		bw = bufio.NewWriter(zw)
	} else {
		bw = bufio.NewWriter(f)
	}
	gen(bw, benchLines)
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if zw != nil {
		zw.Close()
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// cpuSeconds is the CPU time (user and system, every thread) this process
// has used: on a shared machine wall time says more about the neighbours.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSS resets the kernel's high-water mark of this process's resident
// memory and returns a function reading it back (Linux; 0 elsewhere).
func peakRSS() func() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	if os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) != nil {
		return func() float64 { return 0 }
	}
	return func() float64 {
		data, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				return kb / 1024
			}
		}
		return 0
	}
}

// BenchmarkLoadTable loads million-line offline tables (issue 13 item 9:
// at most 2 s and 300 MB per million lines) and, as the peer measured in
// the same run, only reads the same file line by line: the floor any
// loader pays. Run with -benchtime 1x; it reports the peak resident memory
// of the load (peak-MB), the heap the loaded table keeps (table-MB) and
// the CPU time used (cpu-s).
func BenchmarkLoadTable(b *testing.B) {
	dir := b.TempDir()
	tables := []struct {
		name string
		path string
	}{
		{"pfx2as", writeBenchTable(b, dir, "t.pfx2as", false, writeBenchPfx2as)},
		{"iptoasn", writeBenchTable(b, dir, "t.tsv", false, writeBenchIPtoASN)},
		{"iptoasn.gz", writeBenchTable(b, dir, "t.tsv.gz", true, writeBenchIPtoASN)},
		{"iptoasn-unaligned", writeBenchTable(b, dir, "u.tsv", false, writeBenchIPtoASNUnaligned)},
	}
	for _, tt := range tables {
		b.Run("scan-only/"+tt.name, func(b *testing.B) {
			var cpu float64
			defer func() { b.ReportMetric(cpu, "cpu-s") }()
			for b.Loop() {
				cpu0 := cpuSeconds()
				defer func() { cpu = max(cpu, cpuSeconds()-cpu0) }()
				f, err := os.Open(tt.path)
				if err != nil {
					b.Fatal(err)
				}
				var r = bufio.NewReader(f)
				if strings.HasSuffix(tt.path, ".gz") {
					zr, err := gzip.NewReader(r)
					if err != nil {
						b.Fatal(err)
					}
					r = bufio.NewReader(zr)
				}
				sc := bufio.NewScanner(r)
				n := 0
				for sc.Scan() {
					n += bytes.Count(sc.Bytes(), []byte{'\t'})
				}
				f.Close()
			}
		})
		b.Run("load/"+tt.name, func(b *testing.B) {
			var peak, kept, cpu float64
			for b.Loop() {
				rss := peakRSS()
				cpu0 := cpuSeconds()
				t, err := LoadTable(tt.path)
				if err != nil {
					b.Fatal(err)
				}
				cpu = max(cpu, cpuSeconds()-cpu0)
				peak = max(peak, rss())
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				kept = float64(ms.HeapAlloc) / (1 << 20)
				runtime.KeepAlive(t)
			}
			b.ReportMetric(peak, "peak-MB")
			b.ReportMetric(kept, "table-MB")
			b.ReportMetric(cpu, "cpu-s")
		})
	}
}
