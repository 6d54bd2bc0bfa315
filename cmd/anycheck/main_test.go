package main_test

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/internal/lab"
	"github.com/anycheck/anycheck/probe/probetest"
)

// The built binary, end to end on loopback: results on stdout, the
// documented exit codes, errors on stderr only.
func TestBinaryExitCodes(t *testing.T) {
	bin := lab.Binary(t)
	live := (&probetest.Server{Hostname: "loop-a", NSID: []byte("loop-a")}).Start(t, "udp", "127.0.0.1:0")
	silent := (&probetest.Server{Silent: true}).Start(t, "udp", "127.0.0.1:0")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring; "" = must be empty
		stderr string
	}{
		{"answers", []string{"id", "--port", fmt.Sprint(live.Port()), "127.0.0.1"}, 0, "instance  loop-a", ""},
		{"json", []string{"id", "-o", "json", "--port", fmt.Sprint(live.Port()), "127.0.0.1"}, 0, `"schema": "anycheck/v2"`, ""},
		{"unreachable", []string{"id", "--timeout", "200ms", "--port", fmt.Sprint(silent.Port()), "127.0.0.1"}, 3, "timeout", "no reply from 127.0.0.1"},
		{"bad flag", []string{"id", "--frob", "127.0.0.1"}, 2, "", "--frob"},
		{"bad port", []string{"id", "--port", "70000", "127.0.0.1"}, 2, "", "--port 70000"},
		{"watch stable", []string{"watch", "--interval", "100ms", "-c", "2", "--port", fmt.Sprint(live.Port()), "127.0.0.1"}, 0, "0 switches, 0 losses", ""},
		{"watch lost", []string{"watch", "--timeout", "100ms", "--interval", "100ms", "-c", "3", "--port", fmt.Sprint(silent.Port()), "127.0.0.1"}, 3, "1 loss", ""},
		{"watch bad interval", []string{"watch", "--interval", "0", "127.0.0.1"}, 2, "", "--interval 0s"},
		{"version", []string{"version"}, 0, "anycheck ", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			cmd := exec.Command(bin, tc.args...)
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errOut.String())
			}
			if tc.stdout == "" && out.Len() > 0 {
				t.Errorf("stdout should be empty, got %q", out.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout lacks %q: %q", tc.stdout, out.String())
			}
			if tc.stderr == "" && errOut.Len() > 0 {
				t.Errorf("stderr should be empty, got %q", errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("stderr lacks %q: %q", tc.stderr, errOut.String())
			}
		})
	}
}
