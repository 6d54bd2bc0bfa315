package main_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
)

// TestSignalAlwaysEnds is issue 13 item 8: a signal ends the process even
// when something it waits on does not heed cancellation (here: opening a
// FIFO as the offline table, which blocks until a writer comes). The first
// SIGINT ends it after a short grace with exit 130; a second signal ends
// it at once.
func TestSignalAlwaysEnds(t *testing.T) {
	bin := lab.Binary(t)
	fifo := filepath.Join(t.TempDir(), "table.pfx2as")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, tc := range []struct {
		name    string
		signals []os.Signal
		within  time.Duration
		code    int // -1: killed by the signal
	}{
		{"one SIGINT", []os.Signal{os.Interrupt}, 8 * time.Second, 130},
		{"SIGTERM twice", []os.Signal{syscall.SIGTERM, syscall.SIGTERM}, 2 * time.Second, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(bin, "whois", "-n", "--asn", "file:"+fifo, "192.0.2.1")
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			time.Sleep(500 * time.Millisecond) // blocked in the open by now
			for _, sig := range tc.signals {
				cmd.Process.Signal(sig)
				time.Sleep(200 * time.Millisecond)
			}
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
					t.Errorf("ended with %v, want exit code %d; stderr %q", err, tc.code, stderr.String())
				}
			case <-time.After(tc.within):
				cmd.Process.Kill()
				<-done
				t.Fatalf("still running %v after the signals; stderr %q", tc.within, stderr.String())
			}
		})
	}
}
