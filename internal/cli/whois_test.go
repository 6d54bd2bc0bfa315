package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycheck/anycheck/whois/whoistest"
)

func startLabWhois(t *testing.T, table string, mode whoistest.Mode) *whoistest.Server {
	t.Helper()
	rows, err := whoistest.ParseTable(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := whoistest.Start(whoistest.Config{Rows: rows, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

const oneRow = "198.51.100.0/24 | 64500 | ZZ | lab | 2026-01-01 | ISP-ONE\n"

// TestWhoisCacheProblemIsAWarning is issue 13 items 8 and 13: a cache
// directory that cannot be written, or a FIFO where the cache file should
// be, leaves a successful lookup successful (exit 0), says so once on
// stderr, and never blocks.
func TestWhoisCacheProblemIsAWarning(t *testing.T) {
	srv := startLabWhois(t, oneRow, whoistest.Normal)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fifoDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(fifoDir, "anycheck"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"unwritable": blocker, "fifo": fifoDir} {
		t.Run(name, func(t *testing.T) {
			d := testDeps()
			d.cacheDir = func() (string, error) { return dir, nil }
			if name == "fifo" {
				// Every cache file name a whois run could use is a FIFO.
				for _, f := range []string{"whois-cymru_" + strings.NewReplacer(":", "_").Replace(srv.Addr()) + ".cache"} {
					if err := syscall.Mkfifo(filepath.Join(dir, "anycheck", f), 0o600); err != nil {
						t.Skipf("mkfifo: %v", err)
					}
				}
			}
			start := time.Now()
			r := runCLI(t, d, "whois", "--whois-server", srv.Addr(), "-n", "198.51.100.7", "198.51.100.8")
			if r.code != ExitOK {
				t.Errorf("exit %d, want 0; stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, "AS64500") {
				t.Errorf("stdout lacks the answer:\n%s", r.stdout)
			}
			if c := strings.Count(r.stderr, "whois cache"); c != 1 {
				t.Errorf("stderr says the cache problem %d times, want once: %q", c, r.stderr)
			}
			t.Logf("stderr: %s", r.stderr)
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %v", el)
			}
		})
	}
}
