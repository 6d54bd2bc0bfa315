package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
)

// monitoringFile is a file of docs/monitoring (the example rules and
// dashboard the lab test loads).
func monitoringFile(t *testing.T, name string) string {
	return lab.ModuleFile(t, "docs/monitoring/"+name)
}

// promLab is a real Prometheus (Debian's) in the lab's services namespace,
// scraping anycheck exporters on the clients and a watch --metrics.
type promLab struct {
	ac     *lab.Anycast
	client *http.Client
	base   string
	cmd    *exec.Cmd
}

// exporterConfig is the exporter configuration of the lab tests: module
// path (a trace, then the identity over its flow, upstream ASes from the
// lab's whois) and module flows (the identity over 4 flows, with hints).
func exporterConfig(ac *lab.Anycast, whoisAddr string) string {
	allow := fmt.Sprintf("[%s, %s]", ac.ServiceV4, ac.ServiceV6)
	return fmt.Sprintf(`modules:
  path:
    allowed_targets: %s
    trace: {whois_server: "%s", queries: 1, wait: 500ms}
    id: {}
  flows:
    allowed_targets: %s
    id: {flows: 4, hints: true}
`, allow, whoisAddr, allow)
}

// startExporters runs `anycheck exporter` on each client, listening on
// port 9153 of its addresses; they stop with the lab.
func startExporters(t *testing.T, ac *lab.Anycast, config string, clients ...string) map[string]*exec.Cmd {
	t.Helper()
	out := map[string]*exec.Cmd{}
	for _, c := range clients {
		cmd, err := ac.Spawn(c, lab.Binary(t), "exporter", "--config", config, "--listen", ":9153", "--no-cache", "--log-level", "warn")
		if err != nil {
			t.Fatal(err)
		}
		out[c] = cmd
	}
	return out
}

// startPrometheus writes a Prometheus configuration scraping module path
// and module flows for ac's IPv4 service from each exporter (labelled
// with its vantage point), the exporters' own /metrics, and the watches
// given (vantage → HOST:PORT), with the example rules; it starts
// Prometheus in the services namespace with 1 s scrape and evaluation
// intervals and a temporary storage directory, and waits until it is
// ready. It stops with the test (by PID; its directory goes with
// t.TempDir).
func startPrometheus(t *testing.T, ac *lab.Anycast, clients []string, watches map[string]string) *promLab {
	t.Helper()
	dir := t.TempDir()
	rules := monitoringFile(t, "anycheck-rules.yml")
	var probes, own strings.Builder
	for _, c := range clients {
		addr := fmt.Sprintf("%s:9153", ac.ClientAddr(c, lab.IPv4))
		fmt.Fprintf(&probes, "      - targets: [%s]\n        labels: {vantage: %s, __exporter: \"%s\"}\n", ac.ServiceV4, c, addr)
		fmt.Fprintf(&own, "      - targets: [\"%s\"]\n        labels: {vantage: %s}\n", addr, c)
	}
	var watch strings.Builder
	for _, c := range slices.Sorted(mapKeys(watches)) {
		fmt.Fprintf(&watch, "      - targets: [\"%s\"]\n        labels: {vantage: %s}\n", watches[c], c)
	}
	relabel := `    relabel_configs:
      - {source_labels: [__address__], target_label: __param_target}
      - {source_labels: [__param_target], target_label: instance}
      - {source_labels: [__exporter], target_label: __address__}
`
	conf := fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: anycheck
    metrics_path: /probe
    params: {module: [path]}
    static_configs:
%s%s  - job_name: anycheck-flows
    metrics_path: /probe
    params: {module: [flows]}
    static_configs:
%s%s  - job_name: anycheck-exporter
    static_configs:
%s  - job_name: watch
    static_configs:
%s`, rules, probes.String(), relabel, probes.String(), relabel, own.String(), watch.String())
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("promtool", "check", "config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s\n%s", err, out, conf)
	}
	cmd, err := ac.Spawn("svc", "prometheus", "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:9090", "--log.level=warn")
	if err != nil {
		t.Fatal(err)
	}
	client, err := ac.HTTPClient("svc")
	if err != nil {
		t.Fatal(err)
	}
	p := &promLab{ac: ac, client: client, base: "http://127.0.0.1:9090", cmd: cmd}
	t.Cleanup(func() { _ = ac.StopProcess(cmd) })
	eventually(t, "Prometheus ready", 30*time.Second, func() (bool, string) {
		resp, err := client.Get(p.base + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return p
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// eventually polls cond every 250ms until it holds or timeout passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no %s within %v; last: %s", what, timeout, last)
}

// promSeries is one series of a Prometheus API answer.
type promSeries struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
	Values [][2]any          `json:"values"`
}

func (s promSeries) value() float64 {
	v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
	return v
}

// api asks Prometheus's HTTP API and decodes data.
func (p *promLab) api(t *testing.T, path string, q url.Values, data any) error {
	t.Helper()
	resp, err := p.client.Get(p.base + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %v: %s", path, err, b)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s %s: %s", path, q.Encode(), r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

// query is an instant query's series.
func (p *promLab) query(t *testing.T, expr string) ([]promSeries, error) {
	t.Helper()
	var d struct {
		Result []promSeries `json:"result"`
	}
	err := p.api(t, "/api/v1/query", url.Values{"query": {expr}}, &d)
	return d.Result, err
}

// firing lists the firing alerts as "name{label=value,…}".
func (p *promLab) firing(t *testing.T) ([]string, error) {
	var d struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := p.api(t, "/api/v1/alerts", url.Values{}, &d); err != nil {
		return nil, err
	}
	var out []string
	for _, a := range d.Alerts {
		if a.State != "firing" {
			continue
		}
		out = append(out, fmt.Sprintf("%s{job=%s,vantage=%s}", a.Labels["alertname"], a.Labels["job"], a.Labels["vantage"]))
	}
	sort.Strings(out)
	return out, nil
}

// infoOf is the anycast_instance of each series of anycheck_instance_info
// matched by sel, "vantage→instance".
func infoOf(t *testing.T, p *promLab, sel string) (map[string]string, error) {
	s, err := p.query(t, "anycheck_instance_info"+sel)
	out := map[string]string{}
	for _, x := range s {
		out[x.Metric["vantage"]] = x.Metric["anycast_instance"]
	}
	return out, err
}

// TestLabExporterPrometheus: a real Prometheus scrapes `anycheck exporter`
// on c1 and c2 (a trace then the identity over its flow; the identity over
// four flows with hints) and `anycheck watch --metrics` on c1. Then the lab
// withdraws instance A's route towards c1: Prometheus's API shows c1's
// anycheck_instance_info change from A to B (c2 stays on B),
// anycheck_instance_switches_total increase, the upstream AS change, and
// the example alerts fire for c1 and not for c2. Every query of the example
// dashboard runs on the result.
func TestLabExporterPrometheus(t *testing.T) {
	lab.Require(t, "prometheus", "promtool")
	ac := lab.StartAnycast(t)
	whoisAddr, _, _ := startLabWhois(t, ac)
	for _, r := range []string{"e1", "m1", "m2", "r1", "ra", "rb", "rt", "r2"} {
		// A trace every second from each client: more than Linux's
		// default ICMP rate limit lets a router answer.
		if err := ac.DisableICMPRateLimit(r); err != nil {
			t.Fatal(err)
		}
	}
	config := filepath.Join(t.TempDir(), "anycheck.yml")
	if err := os.WriteFile(config, []byte(exporterConfig(ac, whoisAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	clients := []string{"c1", "c2"}
	exporters := startExporters(t, ac, config, clients...)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watch := ac.Command(ctx, "c1", lab.Binary(t), "watch", "--interval", "500ms", "--metrics", ":9154", ac.ServiceV4.String())
	var watchOut, watchErr bytes.Buffer
	watch.Stdout, watch.Stderr = &watchOut, &watchErr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if watch.ProcessState == nil {
			_ = watch.Process.Kill()
			_ = watch.Wait()
		}
	})
	p := startPrometheus(t, ac, clients, map[string]string{"c1": fmt.Sprintf("%s:9154", ac.ClientAddr("c1", lab.IPv4))})
	start := time.Now()

	// Before: c1 on A, c2 on B, the watch on A without a switch, each
	// path entering the service from the client's own AS.
	wantPath := map[string]string{}
	for _, c := range clients {
		wantPath[c] = asPathLabel(ac.ExpectedASPath(c))
	}
	eventually(t, "the first scrapes", 20*time.Second, func() (bool, string) {
		info, err := infoOf(t, p, `{job="anycheck"}`)
		if err != nil {
			return false, err.Error()
		}
		w, err := p.query(t, `anycheck_instance_switches_total{job="watch"}`)
		if err != nil {
			return false, err.Error()
		}
		paths, err := p.query(t, `anycheck_path_info{job="anycheck"}`)
		if err != nil {
			return false, err.Error()
		}
		got := map[string]string{}
		for _, s := range paths {
			got[s.Metric["vantage"]] = s.Metric["as_path"] + " upstream " + s.Metric["upstream_asn"]
		}
		ok := info["c1"] == ac.A.NSID && info["c2"] == ac.B.NSID && len(w) == 1 && w[0].value() == 0 &&
			got["c1"] == wantPath["c1"]+" upstream 64500" && got["c2"] == wantPath["c2"]+" upstream 64501"
		return ok, fmt.Sprintf("instances %v, watch switches %v, paths %v (want %v)", info, w, got, wantPath)
	})
	if f, err := p.firing(t); err != nil || len(f) > 0 {
		t.Errorf("alerts before the withdrawal: %v %v", f, err)
	}
	time.Sleep(3 * time.Second) // a few samples of the catchment before

	// Withdraw A's route towards c1.
	withdrawn := time.Now()
	if err := ac.StopBGP(ac.A.Origin, "r1"); err != nil {
		t.Fatal(err)
	}
	if in, err := ac.WaitInstance(ctx, "c1"); err != nil || in.Node != ac.B.Node {
		t.Fatalf("the lab did not move c1 to B: %v", err)
	}
	wantAlerts := []string{
		"AnycastInstanceChanged{job=anycheck,vantage=c1}",
		"AnycastInstanceSwitched{job=watch,vantage=c1}",
		"AnycastUpstreamChanged{job=anycheck,vantage=c1}",
	}
	var alerts []string
	eventually(t, "the switch in Prometheus", 30*time.Second, func() (bool, string) {
		info, err := infoOf(t, p, `{job="anycheck"}`)
		if err != nil {
			return false, err.Error()
		}
		winfo, err := infoOf(t, p, `{job="watch"}`)
		if err != nil {
			return false, err.Error()
		}
		w, err := p.query(t, `anycheck_instance_switches_total{job="watch"}`)
		if err != nil {
			return false, err.Error()
		}
		alerts, err = p.firing(t)
		if err != nil {
			return false, err.Error()
		}
		var have []string
		for _, a := range alerts {
			if slices.Contains(wantAlerts, a) {
				have = append(have, a)
			}
		}
		ok := info["c1"] == ac.B.NSID && info["c2"] == ac.B.NSID && winfo["c1"] == ac.B.NSID && len(w) == 1 && w[0].value() == 1 && len(have) == len(wantAlerts)
		return ok, fmt.Sprintf("instances %v, watch on %v, switches %v, firing %v", info, winfo, w, alerts)
	})
	t.Logf("c1 moved to B %v after the withdrawal; firing: %v", time.Since(withdrawn).Round(time.Millisecond), alerts)
	for _, a := range alerts {
		if strings.Contains(a, "vantage=c2") {
			t.Errorf("an alert for c2, whose catchment did not change: %s", a)
		}
	}

	// The series over the whole run: c1's instance_info is A, then B.
	var rng struct {
		Result []promSeries `json:"result"`
	}
	q := url.Values{"query": {`anycheck_instance_info{job="anycheck",vantage="c1"}`}, "start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(time.Now().Unix() + 1)}, "step": {"1"}}
	if err := p.api(t, "/api/v1/query_range", q, &rng); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, s := range rng.Result {
		seen = append(seen, fmt.Sprintf("%s (%d samples)", s.Metric["anycast_instance"], len(s.Values)))
	}
	if len(rng.Result) != 2 {
		t.Errorf("c1's anycheck_instance_info over the run: %v, want A then B", seen)
	}
	t.Logf("c1's anycheck_instance_info over the run: %v", seen)

	// Every query of the example dashboard runs; those of metrics the lab
	// exposes have series.
	checkDashboard(t, p)

	// What the README shows: one scrape of each exporter, and the watch's.
	for _, c := range clients {
		body := httpBody(t, p.client, fmt.Sprintf("http://%s:9153/probe?module=path&target=%s", ac.ClientAddr(c, lab.IPv4), ac.ServiceV4))
		t.Logf("[%s] /probe?module=path:\n%s", c, anycheckLines(body))
	}
	t.Logf("[c1] watch --metrics:\n%s", anycheckLines(httpBody(t, p.client, fmt.Sprintf("http://%s:9154/metrics", ac.ClientAddr("c1", lab.IPv4)))))

	// Stop: the watch saw a switch (exit 3 on Ctrl-C); the exporters and
	// Prometheus by PID.
	if err := watch.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitStatus(t, watch.Wait()); code != 3 {
		t.Errorf("watch exit %d, want 3 (a switch)\nstdout:\n%s\nstderr:\n%s", code, watchOut.String(), watchErr.String())
	}
	if err := ac.StopProcess(p.cmd); err != nil {
		t.Error(err)
	}
	for _, c := range clients {
		if err := ac.StopProcess(exporters[c]); err != nil {
			t.Error(err)
		}
	}
}

func asPathLabel(p []uint32) string {
	parts := make([]string, len(p))
	for i, a := range p {
		parts[i] = strconv.FormatUint(uint64(a), 10)
	}
	return strings.Join(parts, " ")
}

// httpBody GETs url with the lab client (bounded).
func httpBody(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s: %s", u, resp.Status, b)
	}
	return string(b)
}

// anycheckLines keeps the anycheck_ samples of an exposition.
func anycheckLines(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "anycheck_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// checkDashboard runs every query of the example dashboard against the
// lab's Prometheus, the dashboard's variables standing for everything.
func checkDashboard(t *testing.T, p *promLab) {
	t.Helper()
	b, err := os.ReadFile(monitoringFile(t, "anycheck-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	vars := regexp.MustCompile(`\$\{?(job|target)\}?`)
	// Metrics the lab's run does not make: no answer unlike the service.
	absent := regexp.MustCompile(`anycheck_answer_sign_info`)
	queries := 0
	for _, pn := range d.Panels {
		for _, tg := range pn.Targets {
			expr := vars.ReplaceAllString(tg.Expr, ".*")
			s, err := p.query(t, expr)
			queries++
			switch {
			case err != nil:
				t.Errorf("dashboard panel %q: %v", pn.Title, err)
			case len(s) == 0 && !absent.MatchString(expr):
				t.Errorf("dashboard panel %q: %s has no series in the lab", pn.Title, expr)
			}
		}
	}
	t.Logf("the dashboard's %d queries ran", queries)
}

// demoExporter is the monitoring part of `make demo`: anycheck exporter on
// c1 and c2, a real Prometheus scraping them, one scrape and one query.
func demoExporter(t *testing.T, ac *lab.Anycast, whoisAddr string, say func(string, ...any)) {
	config := filepath.Join(t.TempDir(), "anycheck.yml")
	conf := exporterConfig(ac, whoisAddr)
	if err := os.WriteFile(config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	clients := []string{"c1", "c2"}
	say("\n# monitoring: anycheck exporter on c1 and c2 with this configuration (anycheck.yml),")
	say("# scraped every second by a Prometheus in the services namespace:\n")
	fmt.Print(conf)
	exporters := startExporters(t, ac, config, clients...)
	say("\n[c1]$ anycheck exporter --config anycheck.yml --listen :9153 --no-cache")
	say("[c2]$ anycheck exporter --config anycheck.yml --listen :9153 --no-cache")
	p := startPrometheus(t, ac, clients, nil)
	u := fmt.Sprintf("http://%s:9153/probe?module=path&target=%s", ac.ClientAddr("c1", lab.IPv4), ac.ServiceV4)
	say("\n[svc]$ curl '%s'   (the anycheck_ lines)", u)
	fmt.Println(anycheckLines(httpBody(t, p.client, u)))
	bad := fmt.Sprintf("http://%s:9153/probe?module=path&target=203.0.113.99", ac.ClientAddr("c1", lab.IPv4))
	say("\n[svc]$ curl '%s'", bad)
	resp, err := p.client.Get(bad)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	say("HTTP %s: %s", resp.Status, strings.TrimSuffix(string(b), "\n"))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a target not allowed: %s", resp.Status)
	}
	eventually(t, "both vantage points in Prometheus", 20*time.Second, func() (bool, string) {
		info, err := infoOf(t, p, `{job="anycheck"}`)
		if err != nil {
			return false, err.Error()
		}
		return len(info) == 2, fmt.Sprint(info)
	})
	const q = `anycheck_instance_info{job="anycheck"} * on (vantage) group_left (upstream_asn) anycheck_path_info{job="anycheck"}`
	say("\n# Prometheus, query %s:", q)
	s, err := p.query(t, q)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(s, func(i, j int) bool { return s[i].Metric["vantage"] < s[j].Metric["vantage"] })
	for _, x := range s {
		say("  vantage %s: instance %s, upstream AS%s", x.Metric["vantage"], x.Metric["anycast_instance"], x.Metric["upstream_asn"])
	}
	if err := ac.StopProcess(p.cmd); err != nil {
		t.Error(err)
	}
	for _, c := range clients {
		if err := ac.StopProcess(exporters[c]); err != nil {
			t.Error(err)
		}
	}
}
