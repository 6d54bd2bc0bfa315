package main_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
)

// TestSignalAlwaysEnds is issue 13 item 8: a signal ends the process even
// when something it waits on does not heed cancellation (here: reading a
// FIFO as the offline table, which blocks until its writer writes). The
// first SIGINT ends it after a short grace with exit 130; a second signal,
// once the first was taken, ends it at once.
//
// Nothing sleeps to synchronise: opening the FIFO for writing returns when
// the process has opened it (it is then blocked reading), and the process
// says on stderr when it is waiting after the first signal.
func TestSignalAlwaysEnds(t *testing.T) {
	bin := lab.Binary(t)
	for _, tc := range []struct {
		name    string
		signals []os.Signal
		code    int // -1: killed by the signal
		stderr  []string
	}{
		{"one SIGINT", []os.Signal{os.Interrupt}, 130, []string{"stopping; interrupt again to quit at once", "did not stop within 3s"}},
		{"SIGTERM twice", []os.Signal{syscall.SIGTERM, syscall.SIGTERM}, -1, []string{"stopping; interrupt again"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "table.pfx2as")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			cmd := exec.Command(bin, "whois", "-n", "--asn", "file:"+fifo, "192.0.2.1")
			errPipe, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := make(chan string, 16)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(errPipe)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			// Blocks until the process opens the FIFO to read the table.
			opened := make(chan *os.File, 1)
			go func() {
				w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err != nil {
					t.Error(err)
				}
				opened <- w
			}()
			select {
			case w := <-opened:
				if w != nil {
					defer w.Close() // held open: the process stays blocked reading
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the process never opened the table")
			}
			var stderr []string
			for i, sig := range tc.signals {
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				if i == len(tc.signals)-1 {
					break
				}
				// The next signal only once the first was taken.
				if !waitLine(lines, &stderr, "interrupt again", 10*time.Second) {
					t.Fatalf("no notice after the first signal; stderr %q", stderr)
				}
			}
			if !drain(lines, &stderr, 15*time.Second) {
				t.Fatalf("still running 15s after the signals; stderr %q", stderr)
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Errorf("ended with %v, want exit code %d; stderr %q", err, tc.code, stderr)
			}
			all := strings.Join(stderr, "\n")
			for _, want := range tc.stderr {
				if !strings.Contains(all, want) {
					t.Errorf("stderr %q lacks %q", all, want)
				}
			}
		})
	}
}

// drain reads lines into seen until the stream ends (true: the process
// has closed its stderr, so it is ending) or within passes (false).
func drain(lines <-chan string, seen *[]string, within time.Duration) bool {
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return true
			}
			*seen = append(*seen, l)
		case <-deadline:
			return false
		}
	}
}

// waitLine reads lines into seen until one contains want, the stream ends,
// or within passes.
func waitLine(lines <-chan string, seen *[]string, want string, within time.Duration) bool {
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return false
			}
			*seen = append(*seen, l)
			if strings.Contains(l, want) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}
