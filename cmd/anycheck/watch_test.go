package main_test

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
	"github.com/anycheck/anycheck/probe/probetest"
)

// Ctrl-C is how an open-ended watch ends: the binary prints the summary
// of what it watched and exits 0 (no switch), not 130.
func TestBinaryWatchEndsOnSignal(t *testing.T) {
	bin := lab.Binary(t)
	live := (&probetest.Server{Hostname: "loop-a", NSID: []byte("loop-a")}).Start(t, "udp", "127.0.0.1:0")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			var out, errOut strings.Builder
			cmd := exec.Command(bin, "watch", "--interval", "100ms", "--port", fmt.Sprint(live.Port()), "127.0.0.1")
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("the watch did not end after the signal")
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Errorf("exit %d, want 0; stderr %q", ee.ExitCode(), errOut.String())
			} else if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "start    loop-a") || !strings.Contains(out.String(), "0 switches, 0 losses") {
				t.Errorf("the summary is missing:\n%s", out.String())
			}
		})
	}
}
