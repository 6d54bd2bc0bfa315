package lab

import (
	"bytes"
	"context"
	"html"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// ChromiumDump loads file in headless chromium inside a network namespace
// of its own (unshare --net: no interface but a loopback that is down), so
// the browser can send nothing anywhere, with a fresh profile in dir; it
// lets the page's scripts run for budget of virtual time and returns what
// the page wrote into its <pre id="harness"> (unescaped) and chromium's
// stderr. Tests that call it need Require(t, "chromium") first.
func ChromiumDump(t testing.TB, ctx context.Context, dir, file string, budget time.Duration) (string, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--",
		"chromium", "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--host-resolver-rules=MAP * ~NOTFOUND", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--enable-logging=stderr", "--v=0", "--virtual-time-budget="+strconv.FormatInt(budget.Milliseconds(), 10), "--dump-dom", "file://"+file)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	m := harnessOutput.FindSubmatch(stdout.Bytes())
	if m == nil {
		t.Fatalf("no harness output in the DOM (%d bytes)\nchromium stderr:\n%s", stdout.Len(), stderr.String())
	}
	return html.UnescapeString(string(m[1])), stderr.String()
}

var harnessOutput = regexp.MustCompile(`(?s)<pre id="harness">(.*?)</pre>`)
