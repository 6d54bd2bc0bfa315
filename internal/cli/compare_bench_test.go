package cli

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
)

// BenchmarkCompareAtlasTraceroutes is `make bench`'s compare of 10,000
// RIPE Atlas traceroutes (bench/genatlas, about 40 MB) in process, so that
// `go test -memprofile` shows where its memory goes; peak-MB is the peak
// resident memory of a run (bench/compare.sh measures the binary against
// jq). Run with -benchtime 1x.
func BenchmarkCompareAtlasTraceroutes(b *testing.B) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Skip("go is needed to generate the input:", err)
	}
	file := filepath.Join(b.TempDir(), "atlas.json")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	gen := exec.Command(goBin, "run", "../../bench/genatlas", "-n", "10000")
	gen.Stdout, gen.Stderr = f, os.Stderr
	if err := gen.Run(); err != nil {
		b.Fatal("genatlas:", err)
	}
	f.Close()
	for _, format := range []string{"text", "json"} {
		b.Run(format, func(b *testing.B) {
			var peak float64
			for b.Loop() {
				runtime.GC()
				debug.FreeOSMemory()
				os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
				code := run(context.Background(), []string{"compare", "--asn", "none", "-o", format, file},
					&streams{in: nil, out: io.Discard, err: io.Discard}, testDeps())
				if code != ExitOK {
					b.Fatalf("exit %d", code)
				}
				peak = max(peak, vmHWM())
			}
			b.ReportMetric(peak, "peak-MB")
		})
	}
}
