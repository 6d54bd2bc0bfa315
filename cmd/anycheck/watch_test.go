package main_test

import (
	"bufio"
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
			cmd.Stderr = &errOut
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			// Signal once the watch has printed its first event; the rest
			// of stdout is read until the process closes it.
			started, ended := make(chan bool, 1), make(chan struct{})
			go func() {
				defer close(ended)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					out.WriteString(sc.Text() + "\n")
					if strings.Contains(sc.Text(), "start ") {
						select {
						case started <- true:
						default:
						}
					}
				}
			}()
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatalf("no start event; stderr %q", errOut.String())
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the watch did not end after the signal")
			}
			err = cmd.Wait()
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
