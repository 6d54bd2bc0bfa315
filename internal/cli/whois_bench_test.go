package cli

import (
	"bytes"
	"context"
	"io"
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

// BenchmarkWhoisStdin is issue 13 item 9's "2M addresses on stdin": `whois
// -n --asn file:TABLE -` over two million addresses, in text and jsonl
// (both written batch by batch), next to the peer measured in the same
// run: only reading and parsing the same input. Run with -benchtime 1x;
// peak-MB is the peak resident memory of the run.
func BenchmarkWhoisStdin(b *testing.B) {
	table := filepath.Join(b.TempDir(), "t.pfx2as")
	os.WriteFile(table, []byte("192.0.2.0\t24\t64500\n198.51.100.0\t24\t64510\n2001:db8::\t32\t64520\n"), 0o600)
	var in bytes.Buffer
	for i := range 2_000_000 {
		switch i % 4 {
		case 0:
			in.WriteString(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String())
		case 1:
			in.WriteString(netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 1}).String())
		case 2:
			in.WriteString("2001:db8::" + strconv.FormatUint(uint64(i&0xffff), 16))
		default:
			in.WriteString(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String())
		}
		in.WriteByte('\n')
	}
	input := in.Bytes()
	measure := func(b *testing.B, fn func()) {
		var peak, cpu float64
		for b.Loop() {
			runtime.GC()
			debug.FreeOSMemory()
			os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
			cpu0 := cpuTime()
			fn()
			cpu = max(cpu, cpuTime()-cpu0)
			peak = max(peak, vmHWM())
		}
		b.ReportMetric(peak, "peak-MB")
		b.ReportMetric(cpu, "cpu-s")
	}
	b.Run("read-only", func(b *testing.B) {
		measure(b, func() {
			if _, err := whoisAddrs(&globalOptions{}, []string{"-"}, bytes.NewReader(input)); err != nil {
				b.Fatal(err)
			}
		})
	})
	for _, format := range []string{"text", "jsonl"} {
		b.Run("whois/"+format, func(b *testing.B) {
			measure(b, func() {
				code := run(context.Background(), []string{"whois", "--asn", "file:" + table, "-n", "-o", format, "-"},
					&streams{in: bytes.NewReader(input), out: io.Discard, err: io.Discard}, testDeps())
				if code != ExitOK {
					b.Fatalf("exit %d", code)
				}
			})
		})
	}
}

func cpuTime() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// vmHWM is this process's peak resident memory in MiB (Linux).
func vmHWM() float64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
