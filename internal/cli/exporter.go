package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/exporter"
	"github.com/anycheck/anycheck/trace"
)

// DefaultExporterListen is where `anycheck exporter` listens by default.
const DefaultExporterListen = ":9153"

type exporterOptions struct {
	g             *globalOptions
	cmdIO         // its streams and dependencies
	listen        string
	config        string
	allow         prefixList
	rate          float64
	maxConcurrent int
	timeoutOffset time.Duration
	webConfig     string
	logLevel      string
	noCache       bool
}

func newExporterCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *exporterOptions) error) *cobra.Command {
	o := &exporterOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "exporter",
		Short: "Serve Prometheus: /probe?target=…&module=… runs a probe at scrape time",
		Long: `Serve anycheck's probes to Prometheus, in the style of blackbox_exporter:
/probe?target=ADDRESS&module=NAME runs one probe at scrape time and answers
with its metrics (which instance answered, by which path); /metrics is the
exporter's own health, Go runtime and build.

Modules come from --config (a YAML file: identity queries, a trace, or
both, and the targets each may probe). Without --config there are two
built-in modules, id and trace, with the defaults of those commands.

Only targets listed in the configuration (addresses, prefixes, host names)
or within --allow are probed; anything else is refused with HTTP 400, as
are unknown modules and bad targets: the exporter is no open relay. Every
probe ends within the scrape's timeout (X-Prometheus-Scrape-Timeout-Seconds
less --timeout-offset), at most --max-concurrent run at once, and all of
them share one --rate packet budget. SIGHUP reloads --config.`,
		Example: `  anycheck exporter --allow 192.0.2.0/24
  anycheck exporter --config anycheck.yml --listen 127.0.0.1:9153
  curl 'http://localhost:9153/probe?module=id&target=192.0.2.53'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runExporter(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", DefaultExporterListen, "address to listen on, HOST:PORT")
	f.StringVar(&o.config, "config", "", "modules file (YAML); default: the built-in modules id and trace")
	f.Var(&o.allow, "allow", "targets every module may probe: prefixes or addresses, comma-separated (e.g. 192.0.2.0/24)")
	rateVar(f, &o.rate, trace.DefaultRate, "packets per second over all probes (queries and trace probes)")
	f.IntVar(&o.maxConcurrent, "max-concurrent", exporter.DefaultMaxConcurrent, "probes that run at once; more wait for a slot within their scrape's timeout, then get 503")
	durationVarP(f, &o.timeoutOffset, "timeout-offset", "", exporter.DefaultTimeoutOffset, "kept back from the scrape's timeout (at most a quarter of it) so the answer arrives in time")
	f.StringVar(&o.webConfig, "web-config", "", "TLS and basic-auth configuration (the exporter-toolkit web config file)")
	f.BoolVar(&o.noCache, "no-cache", false, "neither read nor write the on-disk ASN cache of trace modules")
	enumVarP(f, &o.logLevel, "log-level", "", "info", "log level on stderr", "debug", "info", "warn", "error")
	return cmd
}

func (o *exporterOptions) validate() error {
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return usageErr("--listen %q: want HOST:PORT or :PORT", o.listen)
	}
	if o.maxConcurrent < 1 || o.maxConcurrent > 1024 {
		return usageErr("--max-concurrent %d: must be between 1 and 1024", o.maxConcurrent)
	}
	if o.timeoutOffset < 0 {
		return usageErr("--timeout-offset %s: must not be negative", o.timeoutOffset)
	}
	if o.config == "" && len(o.allow) == 0 {
		return usageErr("nothing may be probed: give --allow PREFIX,… (the targets the built-in modules id and trace may probe) or a --config whose modules list allowed_targets")
	}
	return nil
}

// logLevel is --log-level's level (the flag allows only the four words).
func logLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}

// loadExporterConfig is --config, or the built-in modules.
func loadExporterConfig(o *exporterOptions) (*exporter.Config, error) {
	if o.config == "" {
		return exporter.BuiltinConfig(o.allow), nil
	}
	return exporter.LoadConfig(o.config, o.allow)
}

func runExporter(ctx context.Context, o *exporterOptions) error {
	s, d := o.s, o.d
	log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: logLevel(o.logLevel)}))
	cfg, err := loadExporterConfig(o)
	if err != nil {
		return usageErr("%v", err)
	}
	if o.webConfig != "" {
		if err := web.Validate(o.webConfig); err != nil {
			return usageErr("--web-config %s: %v", o.webConfig, err)
		}
	}
	cacheDir := ""
	if d.cacheDir != nil && !o.noCache {
		if dir, err := d.cacheDir(); err == nil && dir != "" {
			cacheDir = filepath.Join(dir, "anycheck")
		}
	}
	e, err := exporter.New(exporter.Options{
		Config: cfg,
		Prober: &exporter.Prober{
			Budget:   trace.NewBudget(o.rate),
			ProbeNet: d.probeNet,
			TraceNet: d.traceNet,
		},
		MaxConcurrent: o.maxConcurrent,
		TimeoutOffset: o.timeoutOffset,
		Version:       buildVersion(),
		Logger:        log,
		LookupHost:    d.lookupHost,
		NewResolver:   d.newResolver,
		WhoisDial:     d.whoisDial,
		CacheDir:      cacheDir,
	})
	if err != nil {
		return usageErr("--config: %v", err)
	}
	for _, n := range cfg.ModuleNames() {
		log.Info("module", "name", n, "probes", describeModule(cfg.Modules[n]))
	}

	// SIGHUP reloads the configuration; a bad one is logged and the one
	// in use stays.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				c, err := loadExporterConfig(o)
				if err == nil {
					err = e.SetConfig(c)
				}
				if err != nil {
					log.Error("reload failed; the configuration in use stays", "err", err)
					continue
				}
				log.Info("configuration reloaded", "modules", strings.Join(c.ModuleNames(), ","))
			}
		}
	}()
	return serveHTTP(ctx, o.listen, o.webConfig, e.Handler(), log)
}

func describeModule(m *exporter.Module) string {
	var parts []string
	if m.Trace != nil {
		parts = append(parts, fmt.Sprintf("trace %s/%d", m.Trace.Protocol, m.Trace.Port))
	}
	if m.ID != nil {
		parts = append(parts, fmt.Sprintf("identity %s/%d over %d flow(s)", m.ID.Protocol, m.ID.Port, m.ID.Flows))
	}
	return strings.Join(parts, ", then ")
}

// serveHTTP serves h on addr until ctx ends (a signal: the normal end of
// a server). webConfig, when set, is an exporter-toolkit web
// configuration (TLS, basic auth).
func serveHTTP(ctx context.Context, addr, webConfig string, h http.Handler, log *slog.Logger) error {
	ln, err := listenHTTP(ctx, addr)
	if err != nil {
		return err
	}
	log.Info("listening", "address", ln.Addr().String())
	return serveOn(ctx, ln, webConfig, h, log)
}

// listenHTTP opens the listening socket, so a port in use is said before
// anything starts.
func listenHTTP(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// serveOn serves h on ln until ctx ends, then shuts down, giving requests
// in flight a few seconds.
func serveOn(ctx context.Context, ln net.Listener, webConfig string, h http.Handler, log *slog.Logger) error {
	addr := ln.Addr().String()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() {
		done <- web.Serve(ln, srv, &web.FlagConfig{
			WebListenAddresses: &[]string{addr},
			WebSystemdSocket:   new(bool),
			WebConfigFile:      &webConfig,
		}, log)
	}()
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", addr, err)
	}
	log.Info("stopped")
	return nil
}

// prefixList is a flag of prefixes or addresses, comma-separated; an
// address stands for itself (/32, /128).
type prefixList []netip.Prefix

func (p *prefixList) String() string {
	parts := make([]string, len(*p))
	for i, x := range *p {
		parts[i] = x.String()
	}
	return strings.Join(parts, ",")
}

func (p *prefixList) Type() string { return "PREFIX,..." }

func (p *prefixList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			a = a.Unmap()
			*p = append(*p, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		x, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%q: not a prefix or an address", s)
		}
		if x != x.Masked() {
			return fmt.Errorf("%q: host bits set; did you mean %s?", s, x.Masked())
		}
		*p = append(*p, x)
	}
	return nil
}
