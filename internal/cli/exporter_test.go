package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/probe/probetest"
)

func TestExporterFlagParsing(t *testing.T) {
	var got *exporterOptions
	capture := func(_ context.Context, o *exporterOptions) error { got = o; return nil }
	cmdRun := func(args ...string) (int, string) {
		t.Helper()
		got = nil
		s := &streams{in: strings.NewReader(""), out: io.Discard, err: &strings.Builder{}}
		root := newRootCmd(s, testDeps())
		for i, c := range root.Commands() {
			if c.Name() == "exporter" {
				root.RemoveCommand(root.Commands()[i])
				break
			}
		}
		g := &globalOptions{}
		root.AddCommand(newExporterCmd(g, s, testDeps(), capture))
		root.SetArgs(args)
		err := root.Execute()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		return exitCode(err), msg
	}
	if code, msg := cmdRun("exporter", "--allow", "192.0.2.0/24,2001:db8::53"); code != 0 || got == nil {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if got.listen != ":9153" || got.rate != 1000 || got.maxConcurrent != 8 || got.timeoutOffset != 500*time.Millisecond || got.logLevel != "info" {
		t.Errorf("defaults: %+v", got)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::53/128")}; len(got.allow) != 2 || got.allow[0] != want[0] || got.allow[1] != want[1] {
		t.Errorf("--allow %v, want %v", got.allow, want)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"exporter"}, "nothing may be probed: give --allow PREFIX,…"},
		{[]string{"exporter", "--allow", "192.0.2.1/24"}, "host bits set; did you mean 192.0.2.0/24?"},
		{[]string{"exporter", "--allow", "example.net"}, `"example.net": not a prefix or an address`},
		{[]string{"exporter", "--allow", "192.0.2.0/24", "--listen", "9153"}, `--listen "9153": want HOST:PORT or :PORT`},
		{[]string{"exporter", "--allow", "192.0.2.0/24", "--max-concurrent", "0"}, "--max-concurrent 0"},
		{[]string{"exporter", "--allow", "192.0.2.0/24", "--log-level", "loud"}, "must be debug, info, warn or error"},
		{[]string{"exporter", "--allow", "192.0.2.0/24", "--rate", "0"}, "must be a number from 1 to 10000"},
		{[]string{"exporter", "192.0.2.53"}, "unknown command"},
	} {
		code, msg := cmdRun(tc.args...)
		if code != ExitUsage || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: exit %d %q, want 2 saying %q", tc.args, code, msg, tc.want)
		}
	}
}

// startCLI runs anycheck in the background until the test ends; stderr is
// watched for lines as they come.
func startCLI(t *testing.T, d *deps, args ...string) (errOut *syncWriter, stop func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errOut = newSyncWriter()
	var out strings.Builder
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &streams{in: strings.NewReader(""), out: &out, err: errOut}, d) }()
	var r *result
	stop = func() result {
		if r == nil {
			cancel()
			select {
			case code := <-done:
				r = &result{code: code, stdout: out.String(), stderr: errOut.String()}
			case <-time.After(10 * time.Second):
				t.Fatalf("anycheck %v did not stop within 10s of its signal", args)
			}
		}
		return *r
	}
	t.Cleanup(func() { stop() })
	return errOut, stop
}

var listeningRE = regexp.MustCompile(`msg=listening address=(\S+)`)

// httpGet fetches url (bounded) and returns the status and body.
func httpGet(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestExporterServes: `anycheck exporter --allow` with the built-in
// modules answers /probe with the probe's metrics and refuses what it may
// not probe; Ctrl-C stops it with exit 0.
func TestExporterServes(t *testing.T) {
	srv := &probetest.Server{Hostname: "i1.lab-a", IDServer: "i1.lab-a", NSID: []byte("i1-nsd")}
	errOut, stop := startCLI(t, pipeDeps(srv), "exporter", "--listen", "127.0.0.1:0", "--allow", "192.0.2.0/24")
	if !errOut.waitFor("msg=listening", "level=ERROR") {
		t.Fatalf("no listening line: %s", errOut.String())
	}
	base := "http://" + listeningRE.FindStringSubmatch(errOut.String())[1]
	code, body := httpGet(t, base+"/probe?module=id&target=192.0.2.53", "X-Prometheus-Scrape-Timeout-Seconds", "5")
	if code != 200 || !strings.Contains(body, "anycheck_probe_success 1") || !strings.Contains(body, `anycheck_instance_info{anycast_instance="i1-nsd",hostname_bind="i1.lab-a",nsid="i1-nsd",site=""} 1`) {
		t.Errorf("probe: %d\n%s", code, body)
	}
	code, body = httpGet(t, base+"/probe?module=id&target=198.51.100.1")
	if code != 400 || body != "target \"198.51.100.1\": not allowed by module \"id\" (it allows 192.0.2.0/24); add it to the module's allowed_targets or to --allow\n" {
		t.Errorf("a target outside --allow: %d %q", code, body)
	}
	code, body = httpGet(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, `anycheck_exporter_probes_total{module="id",result="success"} 1`) || !strings.Contains(body, `anycheck_exporter_rejected_requests_total{reason="not_allowed"} 1`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	r := stop()
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "msg=stopped") {
		t.Errorf("after the signal: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestExporterStartErrors: a bad configuration or a port in use stops the
// exporter before it serves, naming the problem.
func TestExporterStartErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("modules:\n  id: {id: {flows: 1000}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, testDeps(), "exporter", "--config", bad)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "config "+bad+`: module "id": id: flows 1000: must be between 1 and 64`) {
		t.Errorf("bad config: exit %d: %s", r.code, r.stderr)
	}
	r = runCLI(t, testDeps(), "exporter", "--config", filepath.Join(dir, "absent.yml"))
	if r.code != ExitUsage || !strings.Contains(r.stderr, "absent.yml: no such file") {
		t.Errorf("missing config: exit %d: %s", r.code, r.stderr)
	}
	r = runCLI(t, testDeps(), "exporter", "--allow", "192.0.2.0/24", "--web-config", bad)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--web-config "+bad) {
		t.Errorf("bad web config: exit %d: %s", r.code, r.stderr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r = runCLI(t, testDeps(), "exporter", "--allow", "192.0.2.0/24", "--listen", ln.Addr().String())
	if r.code != ExitError || !strings.Contains(r.stderr, fmt.Sprintf("listen %s: ", ln.Addr())) || !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("port in use: exit %d: %s", r.code, r.stderr)
	}
}

// TestWatchMetricsServes: watch --metrics serves the flow's state while it
// watches: the switch from A to B is counted and the info names B.
func TestWatchMetricsServes(t *testing.T) {
	a, b := twoInstances()
	errOut, stop := startCLI(t, watchDeps(anycastNet(byRound("aab", a, b))), "watch", "--interval", "100ms", "--sport", "40000", "--metrics", "127.0.0.1:0", watchTarget)
	if !errOut.waitFor("metrics at http://", "anycheck:") {
		t.Fatalf("no metrics line: %s", errOut.String())
	}
	url := regexp.MustCompile(`metrics at (http://\S+)`).FindStringSubmatch(errOut.String())[1]
	deadline := time.Now().Add(10 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		_, body = httpGet(t, url)
		if strings.Contains(body, `anycheck_watch_rounds_total{sport="40000",target="192.0.2.53"} 5`) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{
		`anycheck_instance_switches_total{sport="40000",target="192.0.2.53"} 1`,
		`anycheck_instance_info{anycast_instance="inst-b",hostname_bind="b.lab",nsid="inst-b",site="",sport="40000",target="192.0.2.53"} 1`,
		`anycheck_instance_seconds_total{anycast_instance="inst-a",sport="40000",target="192.0.2.53"} 0.`, // two rounds of 100ms (on the wall clock)
		`anycheck_build_info{goversion=`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	if r := stop(); r.code != ExitPartial || !strings.Contains(r.stdout, "switch   inst-a → inst-b") {
		t.Errorf("the watch itself: exit %d\n%s", r.code, r.stdout)
	}
}
