package exporter

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/anycheck/anycheck/probe/probetest"
)

// promtool finds promtool (Debian package prometheus, in LAB_PKGS): the
// test skips without it, and fails instead with ANYCHECK_LAB=1.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("ANYCHECK_LAB") == "1" {
			t.Fatalf("promtool is missing (ANYCHECK_LAB=1 makes this a failure; make lab-deps installs package prometheus)")
		}
		t.Skip("promtool is missing (make lab-deps installs package prometheus; ANYCHECK_LAB=1 makes this a failure)")
	}
	return p
}

// runPromtool runs promtool with args and stdin; it fails the test on a
// non-zero exit, showing what promtool said.
func runPromtool(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool(t), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s\ninput:\n%s", strings.Join(args, " "), err, out, stdin)
	}
	return string(out)
}

// checkMetrics lints exposition text with `promtool check metrics`.
func checkMetrics(t *testing.T, text []byte) {
	t.Helper()
	runPromtool(t, text, "check", "metrics")
}

// gather collects reg and returns its families by name and their text.
func gather(t *testing.T, reg prometheus.Gatherer) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	by := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		by[mf.GetName()] = mf
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	return by, buf.Bytes()
}

// series is one sample of a family: its labels and value.
type series struct {
	labels map[string]string
	value  float64
}

func samples(mf *dto.MetricFamily) []series {
	if mf == nil {
		return nil
	}
	var out []series
	for _, m := range mf.GetMetric() {
		s := series{labels: map[string]string{}}
		for _, l := range m.GetLabel() {
			s.labels[l.GetName()] = l.GetValue()
		}
		switch {
		case m.Gauge != nil:
			s.value = m.GetGauge().GetValue()
		case m.Counter != nil:
			s.value = m.GetCounter().GetValue()
		case m.Histogram != nil:
			s.value = float64(m.GetHistogram().GetSampleCount())
		}
		out = append(out, s)
	}
	return out
}

// value is the value of the family's only series; it fails the test when
// there is not exactly one.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	s := samples(fams[name])
	if len(s) != 1 {
		t.Fatalf("%s: %d series, want 1: %v", name, len(s), s)
	}
	return s[0].value
}

// testLog is a logger into the test's log.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// oneServer routes every socket of a probetest.Net to srv.
func oneServer(srv *probetest.Server) *probetest.Net {
	return &probetest.Net{Route: func(string, netip.AddrPort, netip.AddrPort) (*probetest.Server, error) { return srv, nil }}
}

// allow192 lets a module probe the documentation prefix the tests use.
var allow192 = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}

var target = netip.MustParseAddr("192.0.2.53")

// mustConfig parses a configuration for a test.
func mustConfig(t *testing.T, yml string) *Config {
	t.Helper()
	c, err := ParseConfig(strings.NewReader(yml), "test.yml", allow192)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
