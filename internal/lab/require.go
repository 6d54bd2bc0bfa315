package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvRequire is the environment variable that turns a skipped lab test into
// a failure: CI sets ANYCHECK_LAB=1 so a missing prerequisite cannot pass silently.
const EnvRequire = "ANYCHECK_LAB"

// EnvBinary points Binary at a prebuilt anycheck (the Makefile sets bin/anycheck).
const EnvBinary = "ANYCHECK_BIN"

// labTools are the programs every lab needs.
var labTools = []string{"ip", "sysctl", "ethtool", "nft", "setpriv", "bird", "birdc", "nsd", "knotd", "dig"}

// Require skips the test with a clear reason when lab tests cannot run here
// (not root, no `ip netns`, missing daemons or tools, including any extra
// programs named), and fails it instead when ANYCHECK_LAB=1.
func Require(t testing.TB, extra ...string) {
	t.Helper()
	if reason := missing(extra); reason != "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("lab test cannot run (%s=1 makes this a failure): %s", EnvRequire, reason)
		}
		t.Skipf("lab test skipped: %s (set %s=1 to make this a failure)", reason, EnvRequire)
	}
}

func missing(extra []string) string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces, daemons on port 53)"
	}
	var absent []string
	for _, tool := range append(append([]string{}, labTools...), extra...) {
		if _, err := exec.LookPath(tool); err != nil {
			absent = append(absent, tool)
		}
	}
	if len(absent) > 0 {
		return "missing programs: " + strings.Join(absent, ", ") + " (make lab-deps installs them)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "list").CombinedOutput(); err != nil {
		return fmt.Sprintf("`ip netns list` fails: %v: %s", err, bytes.TrimSpace(out))
	}
	return ""
}

var build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the anycheck binary for lab tests: $ANYCHECK_BIN
// when set (relative paths are taken from the module root), else
// `go build ./cmd/anycheck`, once per test process. The binary is readable
// and executable by unprivileged users (tests run it as Nobody).
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() { build.path, build.err = buildBinary() })
	if build.err != nil {
		t.Fatalf("anycheck binary: %v", build.err)
	}
	return build.path
}

func buildBinary() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	if p := os.Getenv(EnvBinary); p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
	}
	// One fixed directory per user, the binary replaced atomically: no temp
	// directory leaks per test process, and concurrent processes don't clash.
	// A prebuilt binary is copied there too: its own directory (a checkout
	// under /root, say) may not be searchable by the unprivileged user some
	// tests run it as.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("anycheck-lab-bin-%d", os.Geteuid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build dir: %w", err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("build dir %s: not a directory only we can write", dir)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("build dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "anycheck-*")
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	tmp.Close()
	if p := os.Getenv(EnvBinary); p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if err := copyFile(tmp.Name(), p); err != nil {
			os.Remove(tmp.Name())
			return "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
		return install(tmp.Name(), dir)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp.Name(), "./cmd/anycheck")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("go build ./cmd/anycheck: %w\n%s", err, out)
	}
	return install(tmp.Name(), dir)
}

// install makes the binary executable by everyone and moves it into place,
// in a subdirectory named by its content: test processes of several
// checkouts (other branches, other builds) share the directory, and one
// must never run another's binary.
func install(tmp, dir string) (string, error) {
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("install binary: %w", err)
	}
	data, err := os.ReadFile(tmp)
	if err != nil {
		return "", fmt.Errorf("install binary: %w", err)
	}
	sum := sha256.Sum256(data)
	sub := filepath.Join(dir, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return "", fmt.Errorf("install binary: %w", err)
	}
	if err := os.Chmod(sub, 0o755); err != nil {
		return "", fmt.Errorf("install binary: %w", err)
	}
	final := filepath.Join(sub, "anycheck")
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("install binary: %w", err)
	}
	return final, nil
}

func copyFile(dst, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("module root: no go.mod above %s", dir)
		}
	}
}

// ModuleFile is the path of rel (slash-separated) in the module's source
// tree, found from the working directory up: a test binary run from the
// module root (make demo) finds the same files as `go test` in its package.
func ModuleFile(t testing.TB, rel string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, filepath.FromSlash(rel))
}
