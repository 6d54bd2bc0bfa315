// Package exporter is anycheck for Prometheus: the blackbox_exporter-style
// /probe endpoint of `anycheck exporter` (a probe at scrape time is one
// call of Prober.Probe with its module's configuration, the HTTP handler
// around it only parses, bounds and writes) and the collector of
// `watch --metrics` (WatchMetrics, fed after every round of a watch).
//
// It owns the configuration file (modules of identity and path probes,
// the targets each may probe), the metric catalogue (Metrics: names in
// Prometheus conventions, units in the name; the README's table is held
// to it), the request checks (a module that exists, a target that is one
// unicast address or a listed host name, within the module's allowed
// targets: never an open relay), the probe's deadline (the scrape's
// timeout header less an offset, the module's timeout) and the bound on
// probes at once.
//
// Like the other libraries it prints nothing and exits nowhere: it logs to
// the slog.Logger it is given, takes its sockets (probe.Network,
// trace.Network), ASN sources and resolver injected, and shares one
// packet budget (--rate) between all probes.
package exporter
