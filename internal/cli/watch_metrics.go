package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/exporter"
)

// serveWatchMetrics serves --metrics until the watch ends: each flow's
// state (exporter.WatchMetrics, which each round of the watch updates),
// the build and the Go runtime. A port that cannot be bound ends the
// watch before it starts; stop waits for the server to close.
func serveWatchMetrics(ctx context.Context, addr string, s *streams) (m *exporter.WatchMetrics, stop func(), err error) {
	ln, err := listenHTTP(ctx, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics: %w", err)
	}
	m = exporter.NewWatchMetrics(catchment.BuiltinSites())
	reg := prometheus.NewRegistry()
	reg.MustRegister(m, exporter.BuildInfo(buildVersion()), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	fmt.Fprintf(s.err, "anycheck: metrics at http://%s/metrics\n", ln.Addr())
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		defer close(done)
		if err := serveOn(sctx, ln, "", mux, log); err != nil {
			log.Error("metrics server", "err", err)
		}
	}()
	return m, func() { cancel(); <-done }, nil
}
