package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// stateDir records, per running lab, the test process's PID and its
// namespaces. A test binary killed by `go test -timeout` (a panic) or a
// signal runs no t.Cleanup; the next lab start removes what it left.
const stateDir = "/run/anycheck-lab"

func (l *Lab) stateFile() string { return filepath.Join(stateDir, l.id) }

// record notes this lab's namespaces before any is created.
func (l *Lab) record() error {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	content := strconv.Itoa(os.Getpid()) + "\n" + strings.Join(l.allNamespaces(), "\n") + "\n"
	if err := os.WriteFile(l.stateFile(), []byte(content), 0o644); err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	return nil
}

// sweepStale removes labs whose test process is gone: it kills the
// processes still inside their namespaces (by PID, from `ip netns pids`) and
// deletes the namespaces. Labs of live processes are left alone.
func sweepStale(ctx context.Context) []string {
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		return nil
	}
	var swept []string
	for _, e := range entries {
		path := filepath.Join(stateDir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := strings.Fields(string(data))
		if len(lines) == 0 {
			continue
		}
		pid, err := strconv.Atoi(lines[0])
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		for _, ns := range lines[1:] {
			if !strings.HasPrefix(ns, e.Name()+"-") {
				continue // only namespaces this lab named
			}
			if out, err := cmdOutput(ctx, "ip", "netns", "pids", ns); err == nil {
				for _, f := range strings.Fields(out) {
					if p, err := strconv.Atoi(f); err == nil && p > 0 {
						_ = syscall.Kill(p, syscall.SIGKILL)
					}
				}
			}
			_ = host(ctx, "ip", "netns", "del", ns)
		}
		_ = os.Remove(path)
		swept = append(swept, e.Name())
	}
	return swept
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
