package exporter

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	dto "github.com/prometheus/client_model/go"

	"github.com/anycheck/anycheck/probe/probetest"
)

// newTestExporter is an exporter whose probes reach srv in memory.
func newTestExporter(t *testing.T, c *Config, srv *probetest.Server, maxConcurrent int) *Exporter {
	t.Helper()
	e, err := New(Options{
		Config:        c,
		Prober:        &Prober{ProbeNet: oneServer(srv)},
		MaxConcurrent: maxConcurrent,
		Version:       "v-test",
		Logger:        testLog(t),
		LookupHost: func(_ context.Context, network, host string) ([]netip.Addr, error) {
			if host == "ns1.example.net" && network == "ip" {
				return []netip.Addr{netip.MustParseAddr("192.0.2.53")}, nil
			}
			return nil, errors.New("no such host")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// get serves one request; scrapeTimeout is the header's value ("" none).
func get(e *Exporter, url, scrapeTimeout string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, url, nil)
	if scrapeTimeout != "" {
		req.Header.Set(ScrapeTimeoutHeader, scrapeTimeout)
	}
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, req)
	return rec
}

func parseText(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	return fams
}

var lab = &probetest.Server{Hostname: "i1.lab-a", IDServer: "i1.lab-a", NSID: []byte("i1-nsd"), Delay: 2 * time.Millisecond}

// TestExporterProbe: a scrape of /probe returns the probe's metrics; the
// exporter's /metrics counts it and carries its build and Go runtime.
func TestExporterProbe(t *testing.T) {
	var probeText, ownText string
	synctest.Test(t, func(t *testing.T) {
		c := mustConfig(t, "modules:\n  id:\n    allowed_targets: [ns1.example.net]\n    id: {}\n")
		e := newTestExporter(t, c, lab, 0)
		rec := get(e, "/probe?module=id&target=192.0.2.53", "1")
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		probeText = rec.Body.String()
		fams := parseText(t, probeText)
		if value(t, fams, nameProbeSuccess) != 1 || samples(fams[nameInstanceInfo])[0].labels[labelInstance] != "i1-nsd" {
			t.Errorf("probe:\n%s", probeText)
		}
		// A host name listed in allowed_targets is resolved and probed;
		// one that does not resolve is a failed probe, not a bad request.
		rec = get(e, "/probe?module=id&target=ns1.example.net", "1")
		if fams := parseText(t, rec.Body.String()); rec.Code != 200 || value(t, fams, nameProbeSuccess) != 1 {
			t.Errorf("listed name: %d %s", rec.Code, rec.Body)
		}
		c2 := mustConfig(t, "modules:\n  id:\n    allowed_targets: [ns1.example.net]\n    ip_protocol: ip6\n    id: {}\n")
		if err := e.SetConfig(c2); err != nil {
			t.Fatal(err)
		}
		rec = get(e, "/probe?module=id&target=ns1.example.net", "1")
		if fams := parseText(t, rec.Body.String()); rec.Code != 200 || value(t, fams, nameProbeSuccess) != 0 || fams[nameInstanceInfo] != nil {
			t.Errorf("a name without an IPv6 address: %d %s", rec.Code, rec.Body)
		}

		rec = get(e, "/metrics", "")
		ownText = rec.Body.String()
		own := parseText(t, ownText)
		results := map[string]float64{}
		for _, s := range samples(own[nameProbesTotal]) {
			results[s.labels["result"]] += s.value
		}
		if results["success"] != 2 || results["failure"] != 1 {
			t.Errorf("probes counted %v:\n%s", results, ownText)
		}
		if b := samples(own[nameBuildInfo]); len(b) != 1 || b[0].labels["version"] != "v-test" || !strings.HasPrefix(b[0].labels["goversion"], "go") {
			t.Errorf("build info %v", b)
		}
		if own["go_goroutines"] == nil || value(t, own, nameInFlight) != 0 || value(t, own, nameConcurrency) != DefaultMaxConcurrent {
			t.Errorf("own health:\n%s", ownText)
		}
		if h := samples(own[nameProbeSeconds]); len(h) != 1 || h[0].value != 3 {
			t.Errorf("probe durations %v", h)
		}
	})
	checkMetrics(t, []byte(probeText))
	checkMetrics(t, []byte(ownText))
}

// TestExporterBadRequests: what cannot be probed is refused with HTTP 400
// and one line naming the input and what to do, and counted by reason.
func TestExporterBadRequests(t *testing.T) {
	e := newTestExporter(t, BuiltinConfig(allow192), lab, 0)
	for _, tc := range []struct{ url, header, reason, msg string }{
		{"/probe?target=192.0.2.53", "", RejectBadModule, "module missing: give module=NAME (this exporter has id, trace)"},
		{"/probe?module=dns&target=192.0.2.53", "", RejectBadModule, `module "dns": unknown (this exporter has id, trace)`},
		{"/probe?module=id&module=trace&target=192.0.2.53", "", RejectBadModule, "module given 2 times"},
		{"/probe?module=id", "", RejectBadTarget, "target missing"},
		{"/probe?module=id&target=192.0.2.53&target=192.0.2.54", "", RejectBadTarget, "target given 2 times"},
		{"/probe?module=id&target=192.0.2.53:53", "", RejectBadTarget, "give the address alone"},
		{"/probe?module=id&target=%1b%5b2J", "", RejectBadTarget, `target "\x1b[2J": not an IP address or a host name`},
		{"/probe?module=trace&target=198.51.100.1", "", RejectNotAllowed, `target "198.51.100.1": not allowed by module "trace" (it allows 192.0.2.0/24, 2001:db8::/32)`},
		{"/probe?module=id&target=ns1.example.net", "", RejectNotAllowed, "host name not listed"},
		{"/probe?module=id&target=192.0.2.53", "soon", RejectBadTimeout, `X-Prometheus-Scrape-Timeout-Seconds "soon": want a positive number of seconds`},
		{"/probe?module=id&target=192.0.2.53", "-1", RejectBadTimeout, "positive"},
		{"/probe?module=id&target=192.0.2.53", "NaN", RejectBadTimeout, "positive"},
	} {
		rec := get(e, tc.url, tc.header)
		body := rec.Body.String()
		if rec.Code != http.StatusBadRequest || !strings.Contains(body, tc.msg) || strings.Count(body, "\n") != 1 || strings.Contains(body, "\x1b") {
			t.Errorf("%s: %d %q, want 400 and one line saying %q", tc.url, rec.Code, body, tc.msg)
		}
	}
	own := parseText(t, get(e, "/metrics", "").Body.String())
	got := map[string]float64{}
	for _, s := range samples(own[nameRejected]) {
		got[s.labels["reason"]] = s.value
	}
	want := map[string]float64{RejectBadModule: 3, RejectBadTarget: 4, RejectNotAllowed: 2, RejectBadTimeout: 3, RejectBusy: 0}
	for r, n := range want {
		if got[r] != n {
			t.Errorf("rejected %v, want %v", got, want)
			break
		}
	}
	if samples(own[nameProbesTotal]) != nil {
		t.Errorf("refused requests ran probes: %v", samples(own[nameProbesTotal]))
	}
	req := httptest.NewRequest(http.MethodPost, "/probe?module=id&target=192.0.2.53", nil)
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

// TestExporterTimeout: a probe of a silent service ends by the scrape's
// timeout less the offset (at most a quarter of it), or the module's
// shorter timeout, or 10s without a header.
func TestExporterTimeout(t *testing.T) {
	for _, tc := range []struct {
		header, module string
		want           time.Duration
	}{
		{"1", "", 750 * time.Millisecond},
		{"10", "", 9500 * time.Millisecond},
		{"10", "timeout: 2s", 2 * time.Second},
		{"", "", DefaultProbeTimeout},
		{"1e9", "", 2*time.Minute - 500*time.Millisecond},
	} {
		synctest.Test(t, func(t *testing.T) {
			c := mustConfig(t, "modules:\n  id: {id: {query_timeout: 5m}, "+tc.module+"}\n")
			e := newTestExporter(t, c, &probetest.Server{Silent: true}, 0)
			start := time.Now()
			rec := get(e, "/probe?module=id&target=192.0.2.53", tc.header)
			if took := time.Since(start); took != tc.want || rec.Code != 200 {
				t.Errorf("header %q, module %q: %d after %v, want 200 after %v", tc.header, tc.module, rec.Code, took, tc.want)
			}
		})
	}
}

// TestExporterBusy: with one slot, a second scrape waits for it within its
// own timeout and is then refused with 503; the first is unharmed.
func TestExporterBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := mustConfig(t, "modules:\n  id: {id: {}}\n")
		e := newTestExporter(t, c, &probetest.Server{Silent: true}, 1)
		var wg sync.WaitGroup
		var first *httptest.ResponseRecorder
		wg.Go(func() { first = get(e, "/probe?module=id&target=192.0.2.53", "5") })
		synctest.Wait()
		own := parseText(t, get(e, "/metrics", "").Body.String())
		if value(t, own, nameInFlight) != 1 {
			t.Errorf("in flight %v", value(t, own, nameInFlight))
		}
		start := time.Now()
		rec := get(e, "/probe?module=id&target=192.0.2.53", "1")
		if took := time.Since(start); rec.Code != http.StatusServiceUnavailable || took != 750*time.Millisecond || !strings.Contains(rec.Body.String(), "busy: 1 probes running") {
			t.Errorf("second scrape: %d after %v: %s", rec.Code, took, rec.Body)
		}
		wg.Wait()
		if first.Code != 200 {
			t.Errorf("first scrape: %d", first.Code)
		}
		own = parseText(t, get(e, "/metrics", "").Body.String())
		for _, s := range samples(own[nameRejected]) {
			if s.labels["reason"] == RejectBusy && s.value != 1 {
				t.Errorf("busy counted %v", s.value)
			}
		}
		if value(t, own, nameInFlight) != 0 {
			t.Errorf("in flight after both: %v", value(t, own, nameInFlight))
		}
	})
}

// TestExporterDebug: ?debug=true shows the probe's log with its metrics.
func TestExporterDebug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newTestExporter(t, BuiltinConfig(allow192), &probetest.Server{Silent: true}, 0)
		rec := get(e, "/probe?module=id&target=192.0.2.53&debug=true", "1")
		body := rec.Body.String()
		for _, want := range []string{"probe of \"192.0.2.53\" with module id, timeout 750ms", `msg="no DNS reply to the identity queries"`, "anycheck_probe_success 0"} {
			if !strings.Contains(body, want) {
				t.Errorf("debug output lacks %q:\n%s", want, body)
			}
		}
	})
}

// TestExporterLanding: the landing page lists the modules and what they allow.
func TestExporterLanding(t *testing.T) {
	e := newTestExporter(t, BuiltinConfig(allow192), lab, 0)
	rec := get(e, "/", "")
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"<code>id</code>: identity over udp/53, 1 flow(s); it allows 192.0.2.0/24, 2001:db8::/32", "<code>trace</code>: trace udp/53"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("landing page lacks %q:\n%s", want, body)
		}
	}
	if rec := get(e, "/nothing", ""); rec.Code != http.StatusNotFound {
		t.Errorf("/nothing: %d", rec.Code)
	}
}

// TestExporterProbesAtOnce: scrapes at once share the configuration (its
// site table included) without a race (go test -race).
func TestExporterProbesAtOnce(t *testing.T) {
	e := newTestExporter(t, BuiltinConfig(allow192), lab, 0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if rec := get(e, "/probe?module=id&target=192.0.2.53", "5"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "anycheck_probe_success 1") {
				t.Errorf("%d %s", rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
}
