package exporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/prometheus/common/expfmt"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/whois"
)

// Defaults of Options.
const (
	// DefaultMaxConcurrent probes run at once; more wait for a slot
	// within their own deadline.
	DefaultMaxConcurrent = 8
	// DefaultTimeoutOffset is kept back from the scrape's timeout, so the
	// answer reaches Prometheus in time.
	DefaultTimeoutOffset = 500 * time.Millisecond
	// DefaultProbeTimeout bounds a probe when the request says no scrape
	// timeout (a person with curl) and its module none.
	DefaultProbeTimeout = 10 * time.Second
	// maxProbeTimeout bounds any probe.
	maxProbeTimeout = 2 * time.Minute
)

// ScrapeTimeoutHeader is the header Prometheus sends its scrape timeout in.
const ScrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// Options configures an Exporter.
type Options struct {
	Config *Config
	// Prober runs the probes; its Resolver, when nil, is the exporter's
	// (one ASN source per trace module's settings, cached in CacheDir).
	Prober *Prober
	// MaxConcurrent bounds the probes running at once; 0: DefaultMaxConcurrent.
	MaxConcurrent int
	// TimeoutOffset is kept back from the scrape timeout, at most a
	// quarter of it; 0: DefaultTimeoutOffset.
	TimeoutOffset time.Duration
	// Version names the build (anycheck_build_info).
	Version string
	// Logger receives the exporter's log; nil: none.
	Logger *slog.Logger
	// LookupHost resolves host names listed in allowed_targets; nil: the
	// system resolver.
	LookupHost func(ctx context.Context, network, host string) ([]netip.Addr, error)
	// NewResolver builds an ASN source (whois.New when nil); WhoisDial and
	// CacheDir are given to it.
	NewResolver func(spec string, o whois.Options) (whois.Resolver, error)
	WhoisDial   func(ctx context.Context, network, addr string) (net.Conn, error)
	CacheDir    string
}

// Exporter serves /probe, /metrics and a landing page.
type Exporter struct {
	o      Options
	cfg    atomic.Pointer[Config]
	prober *Prober
	slots  chan struct{}
	log    *slog.Logger

	reg          *prometheus.Registry
	probes       *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	inFlight     prometheus.Gauge
	probeSeconds *prometheus.HistogramVec

	mu        sync.Mutex
	resolvers map[string]whois.Resolver
}

// New makes an exporter. An error is a configuration that cannot be used
// (an ASN table that does not load).
func New(o Options) (*Exporter, error) {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.TimeoutOffset <= 0 {
		o.TimeoutOffset = DefaultTimeoutOffset
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LookupHost == nil {
		o.LookupHost = net.DefaultResolver.LookupNetIP
	}
	if o.NewResolver == nil {
		o.NewResolver = whois.New
	}
	e := &Exporter{o: o, slots: make(chan struct{}, o.MaxConcurrent), log: o.Logger, resolvers: map[string]whois.Resolver{}}
	p := *o.Prober
	if p.Resolver == nil {
		p.Resolver = e.resolver
	}
	e.prober = &p
	if err := e.SetConfig(o.Config); err != nil {
		return nil, err
	}

	e.reg = prometheus.NewRegistry()
	e.probes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: nameProbesTotal, Help: helpOf(nameProbesTotal)}, []string{"module", "result"})
	e.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: nameRejected, Help: helpOf(nameRejected)}, []string{"reason"})
	e.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: nameInFlight, Help: helpOf(nameInFlight)})
	limit := prometheus.NewGauge(prometheus.GaugeOpts{Name: nameConcurrency, Help: helpOf(nameConcurrency)})
	limit.Set(float64(o.MaxConcurrent))
	e.probeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: nameProbeSeconds, Help: helpOf(nameProbeSeconds),
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"module"})
	for _, r := range []string{RejectBadModule, RejectBadTarget, RejectNotAllowed, RejectBadTimeout, RejectBusy} {
		e.rejected.WithLabelValues(r) // every reason from the start, at 0
	}
	e.reg.MustRegister(e.probes, e.rejected, e.inFlight, limit, e.probeSeconds, BuildInfo(o.Version),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return e, nil
}

// BuildInfo is anycheck_build_info: 1, labelled with the version.
func BuildInfo(version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: nameBuildInfo, Help: helpOf(nameBuildInfo),
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// SetConfig replaces the configuration (a reload) once every trace
// module's ASN source can be made; probes running keep the one they
// started with. On an error the configuration in use stays.
func (e *Exporter) SetConfig(c *Config) error {
	for _, n := range c.ModuleNames() {
		if t := c.Modules[n].Trace; t != nil {
			if _, err := e.resolver(t); err != nil {
				return fmt.Errorf("module %q: trace: asn %s: %w", n, t.ASN, err)
			}
		}
	}
	e.cfg.Store(c)
	return nil
}

// sites is the site-hint table of the configuration in use, unless the
// Prober was given one.
func (e *Exporter) sites() *catchment.Sites {
	if e.o.Prober.Sites != nil {
		return e.o.Prober.Sites
	}
	return e.cfg.Load().Sites()
}

// Handler serves /probe, /metrics and the landing page.
func (e *Exporter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/probe", e.serveProbe)
	mux.Handle("/metrics", promhttp.InstrumentMetricHandler(e.reg, promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{})))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "OK") })
	mux.HandleFunc("/", e.serveLanding)
	return mux
}

func (e *Exporter) serveLanding(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	cfg := e.cfg.Load()
	var mods bytes.Buffer
	for _, n := range cfg.ModuleNames() {
		m := cfg.Modules[n]
		fmt.Fprintf(&mods, "<li><code>%s</code>: %s; %s</li>\n", html.EscapeString(n), html.EscapeString(m.what()), html.EscapeString(m.allowedText()))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!DOCTYPE html>
<html><head><title>anycheck exporter</title></head><body>
<h1>anycheck exporter</h1>
<p>Which instance of an anycast DNS service answers, and by which path: <code>/probe?target=ADDRESS&amp;module=NAME</code>.</p>
<p><a href="/metrics">/metrics</a>: the exporter's own health.</p>
<h2>Modules</h2>
<ul>
%s</ul>
<p>anycheck %s</p>
</body></html>
`, mods.String(), html.EscapeString(e.o.Version))
}

// what says what a module probes, for the landing page.
func (m *Module) what() string {
	switch {
	case m.ID != nil && m.Trace != nil:
		return fmt.Sprintf("trace %s/%d, then the identity over its flow", m.Trace.Protocol, m.Trace.Port)
	case m.Trace != nil:
		return fmt.Sprintf("trace %s/%d", m.Trace.Protocol, m.Trace.Port)
	}
	return fmt.Sprintf("identity over %s/%d, %d flow(s)", m.ID.Protocol, m.ID.Port, m.ID.Flows)
}

// serveProbe runs one probe: the module's, to the target, within the
// scrape's timeout, once a slot is free.
func (e *Exporter) serveProbe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	cfg := e.cfg.Load()
	m, target, name, err := e.parse(cfg, q["module"], q["target"])
	var timeout time.Duration
	if err == nil {
		timeout, err = e.timeout(r.Header.Get(ScrapeTimeoutHeader), m)
	}
	if err != nil {
		e.refuse(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	select {
	case e.slots <- struct{}{}:
		defer func() { <-e.slots }()
	case <-ctx.Done():
		e.refuse(w, reject(RejectBusy, "busy: %d probes running (--max-concurrent) and none ended within the probe's %s", cap(e.slots), timeout))
		return
	}
	e.inFlight.Inc()
	defer e.inFlight.Dec()

	debug := q.Get("debug") == "true"
	var logBuf bytes.Buffer
	log := e.log
	if debug {
		log = slog.New(slog.NewMultiHandler(e.log.Handler(), slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	log = log.With("module", m.name, "target", q.Get("target"))

	start := time.Now()
	reg := prometheus.NewRegistry()
	ok := false
	if name != "" {
		target, err = m.Resolve(ctx, name, e.o.LookupHost)
		if err != nil {
			log.Warn("target", "err", err)
			out := newProbeMetrics(reg)
			out.gauge(nameProbeDuration).Set(time.Since(start).Seconds())
			out.gauge(nameProbeSuccess).Set(0)
		}
	}
	if err == nil {
		p := *e.prober
		p.Sites = e.sites()
		ok = p.Probe(ctx, target, m, reg, log)
	}
	result := "failure"
	if ok {
		result = "success"
	}
	e.probes.WithLabelValues(m.name, result).Inc()
	e.probeSeconds.WithLabelValues(m.name).Observe(time.Since(start).Seconds())
	log.Debug("probe done", "success", ok, "took", time.Since(start))

	if debug {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "probe of %s with module %s, timeout %s\n\nlog:\n%s\nmetrics:\n", quote(q.Get("target")), m.name, timeout, logBuf.String())
		mfs, err := reg.Gather()
		if err != nil {
			fmt.Fprintf(w, "gather: %v\n", err)
		}
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
				return
			}
		}
		return
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// parse checks a request's module and target.
func (e *Exporter) parse(cfg *Config, modules, targets []string) (*Module, netip.Addr, string, error) {
	names := cfg.ModuleNames()
	switch len(modules) {
	case 0:
		return nil, netip.Addr{}, "", reject(RejectBadModule, "module missing: give module=NAME (this exporter has %s)", joinNames(names))
	case 1:
	default:
		return nil, netip.Addr{}, "", reject(RejectBadModule, "module given %d times: give one", len(modules))
	}
	m, ok := cfg.Module(modules[0])
	if !ok {
		return nil, netip.Addr{}, "", reject(RejectBadModule, "module %s: unknown (this exporter has %s)", quote(modules[0]), joinNames(names))
	}
	if len(targets) > 1 {
		return nil, netip.Addr{}, "", reject(RejectBadTarget, "target given %d times: give one", len(targets))
	}
	t := ""
	if len(targets) == 1 {
		t = targets[0]
	}
	a, name, err := m.CheckTarget(t)
	return m, a, name, err
}

// timeout is how long a probe of m may take: the scrape's timeout less
// the offset (at most a quarter of it), the module's when shorter.
func (e *Exporter) timeout(header string, m *Module) (time.Duration, error) {
	t := DefaultProbeTimeout
	if header != "" {
		s, err := strconv.ParseFloat(header, 64)
		if err != nil || !(s > 0) || math.IsInf(s, 0) {
			return 0, reject(RejectBadTimeout, "%s %s: want a positive number of seconds", ScrapeTimeoutHeader, quote(header))
		}
		t = time.Duration(min(s, maxProbeTimeout.Seconds()) * float64(time.Second))
		t -= min(e.o.TimeoutOffset, t/4)
	}
	if m.Timeout > 0 && m.Timeout < t {
		t = m.Timeout
	}
	return min(t, maxProbeTimeout), nil
}

// refuse answers a request that cannot be probed: 400 (503 when busy)
// with the one-line reason.
func (e *Exporter) refuse(w http.ResponseWriter, err error) {
	var re *RequestError
	if !errors.As(err, &re) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	e.rejected.WithLabelValues(re.Reason).Inc()
	e.log.Debug("probe request refused", "reason", re.Reason, "err", re.msg)
	code := http.StatusBadRequest
	if re.Reason == RejectBusy {
		code = http.StatusServiceUnavailable
	}
	http.Error(w, re.msg, code)
}

// resolver is the ASN source of a trace module's settings, made once.
func (e *Exporter) resolver(t *TraceModule) (whois.Resolver, error) {
	key := t.ASN + "|" + t.WhoisServer + "|" + t.ASNDNSServer
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.resolvers[key]; ok {
		return r, nil
	}
	r, err := e.o.NewResolver(t.ASN, whois.Options{
		WhoisServer: t.WhoisServer,
		DNSServer:   t.ASNDNSServer,
		Dial:        e.o.WhoisDial,
		CacheDir:    e.o.CacheDir,
		OnCacheError: func(err error) {
			e.log.Warn("asn cache", "err", err)
		},
	})
	if err != nil {
		return nil, err
	}
	e.resolvers[key] = r
	return r, nil
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
