package exporter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const monitoringDir = "../docs/monitoring"

var metricRef = regexp.MustCompile(`\banycheck_[a-z0-9_]+`)

// knownMetric reports whether a name in a query is a catalogued metric
// (a histogram's _bucket, _sum and _count series included).
func knownMetric(name string) bool {
	for _, m := range Metrics {
		if name == m.Name {
			return true
		}
		if m.Type == "histogram" && slices.Contains([]string{m.Name + "_bucket", m.Name + "_sum", m.Name + "_count"}, name) {
			return true
		}
	}
	return false
}

// checkNames fails for every anycheck_ name in expr that no metric has.
func checkNames(t *testing.T, where, expr string) int {
	t.Helper()
	names := metricRef.FindAllString(expr, -1)
	for _, n := range names {
		if !knownMetric(n) {
			t.Errorf("%s: %s names no metric of anycheck (exporter.Metrics): %s", where, n, expr)
		}
	}
	return len(names)
}

// TestRules: the example rules are valid (promtool check rules), each
// alert fires on the series it is written for and not on ordinary ones
// (promtool test rules), and every metric they name exists.
func TestRules(t *testing.T) {
	out := runPromtool(t, nil, "check", "rules", filepath.Join(monitoringDir, "anycheck-rules.yml"))
	if !strings.Contains(out, "SUCCESS: 7 rules found") {
		t.Errorf("promtool check rules: %s", out)
	}
	runPromtool(t, nil, "test", "rules", filepath.Join(monitoringDir, "anycheck-rules.test.yml"))

	b, err := os.ReadFile(filepath.Join(monitoringDir, "anycheck-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if checkNames(t, "rule "+r.Alert, r.Expr) == 0 {
				t.Errorf("rule %s names no anycheck metric: %s", r.Alert, r.Expr)
			}
		}
	}
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// DashboardExprs are the queries of the example Grafana dashboard, by
// panel title (the lab test runs them against a real Prometheus).
func dashboardExprs(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoringDir, "anycheck-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("the dashboard is no JSON: %v", err)
	}
	vars := map[string]bool{"__rate_interval": true, "__interval": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	out := map[string][]string{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range regexp.MustCompile(`\$\{?(\w+)`).FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q uses $%s, which the dashboard does not define", p.Title, m[1])
				}
			}
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	return out
}

// TestDashboard: the Grafana dashboard loads as JSON, every panel has
// queries, and they name only metrics that exist; together they show
// every metric a probe or a watch exposes.
func TestDashboard(t *testing.T) {
	shown := map[string]bool{}
	for title, exprs := range dashboardExprs(t) {
		for _, e := range exprs {
			if checkNames(t, "panel "+title, e) == 0 {
				t.Errorf("panel %q: %s names no anycheck metric", title, e)
			}
			for _, n := range metricRef.FindAllString(e, -1) {
				shown[strings.TrimSuffix(n, "_bucket")] = true
			}
		}
	}
	for _, m := range Metrics {
		if !shown[m.Name] {
			t.Errorf("no panel shows %s", m.Name)
		}
	}
}

// metricsTable is the README's table of metrics, made from the catalogue.
func metricsTable() string {
	var b strings.Builder
	b.WriteString("| metric | type | labels | meaning | from |\n|---|---|---|---|---|\n")
	for _, m := range Metrics {
		labels := "—"
		if len(m.Labels) > 0 {
			labels = "`" + strings.Join(m.Labels, "`, `") + "`"
		}
		b.WriteString("| `" + m.Name + "` | " + m.Type + " | " + labels + " | " + m.Help + " | " + m.Where + " |\n")
	}
	return b.String()
}

// TestREADMEMetricsTable: the README documents every metric as the
// catalogue has it.
func TestREADMEMetricsTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := metricsTable(); !strings.Contains(string(b), want) {
		t.Errorf("README.md lacks the metrics table as the catalogue (exporter/metrics.go) has it; it should read:\n%s", want)
	}
}

// TestCatalogue: names follow Prometheus's conventions (the anycheck_
// prefix, counters ending in _total and nothing else, units in the name,
// info metrics as gauges) and are listed once.
func TestCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Metrics {
		if seen[m.Name] {
			t.Errorf("%s listed twice", m.Name)
		}
		seen[m.Name] = true
		switch {
		case !strings.HasPrefix(m.Name, "anycheck_"):
			t.Errorf("%s: not anycheck_", m.Name)
		case (m.Type == "counter") != strings.HasSuffix(m.Name, "_total"):
			t.Errorf("%s: a %s; counters and only counters end in _total", m.Name, m.Type)
		case strings.HasSuffix(m.Name, "_info") && m.Type != "gauge":
			t.Errorf("%s: an info metric is a gauge", m.Name)
		case strings.Contains(m.Name, "rtt") || strings.Contains(m.Name, "duration"):
			if !strings.Contains(m.Name, "_seconds") {
				t.Errorf("%s: a time is in seconds, and says so", m.Name)
			}
		}
		if slices.Contains(m.Labels, "instance") || slices.Contains(m.Labels, "job") {
			t.Errorf("%s: label instance or job clashes with Prometheus's own", m.Name)
		}
		if m.Help == "" || m.Where == "" {
			t.Errorf("%s: no help or no place", m.Name)
		}
	}
}
