package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Exit codes, documented in the README and asserted by the end-to-end test.
const (
	ExitOK          = 0
	ExitError       = 1 // the run failed (nothing useful measured)
	ExitUsage       = 2 // bad flag, argument or target
	ExitPartial     = 3 // some targets failed (unreachable, no reply), the rest succeeded
	ExitPermission  = 4 // missing privilege (raw sockets)
	ExitInterrupted = 130
)

// exitError carries an exit code and an optional hint for the user.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

func permissionErr(err error, hint string) error {
	return &exitError{code: ExitPermission, err: err, hint: hint}
}

// errPartial is returned after the results are written when some target
// failed; it carries no message of its own.
var errPartial = &exitError{code: ExitPartial, err: errors.New("some targets failed")}

// errInterrupted is returned after what was measured so far is written.
var errInterrupted = &exitError{code: ExitInterrupted, err: errors.New("interrupted")}

// runFailed marks an error returned by a run function: it is a failure of
// the run (exit 1) unless it already carries a code.
func runFailed(err error) error {
	if err == nil {
		return nil
	}
	var e *exitError
	if errors.As(err, &e) {
		return err
	}
	return &exitError{code: ExitError, err: err}
}

// exitCode maps an error from Execute to the process exit code. Errors that
// did not come from a run function (flag parsing, unknown commands, argument
// counts) carry no code: they are usage errors.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return ExitUsage
}

// hintOf returns the hint attached to err, if any.
func hintOf(err error) string {
	var e *exitError
	if errors.As(err, &e) {
		return e.hint
	}
	return ""
}

// permissionHint says how to get the privilege a trace (trace, trace
// --flows, watch --trace) lacked: raw sockets
// for the binary actually running, or, for ICMP without them, ping sockets
// for the user's group. It never suggests the mode that just failed.
func permissionHint(proto, mode string) string {
	setcap := "grant raw sockets once with: setcap cap_net_raw+ep " + executablePath()
	switch {
	case proto == "tcp":
		return "tcp probes need raw sockets; " + setcap
	case proto == "icmp" && mode != "raw":
		return fmt.Sprintf("icmp without raw sockets needs ping sockets: allow your group (gid %d) with sysctl -w net.ipv4.ping_group_range=\"%d %d\", or %s",
			os.Getgid(), os.Getgid(), os.Getgid(), setcap)
	case mode == "raw":
		return setcap + ", or use --mode socket (no privilege; no NAT or MPLS data)"
	}
	return setcap
}

// executablePath is the running binary's real path, for commands the user
// can paste; "$(command -v anycheck)" when it cannot be found.
func executablePath() string {
	exe, err := os.Executable()
	if err != nil {
		return "$(command -v anycheck)"
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return exe
}
