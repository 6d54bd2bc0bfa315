package exporter

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/measure"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/sweep"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

// defaultQueryTimeout is the wait for each identity answer, as `anycheck id`'s.
const defaultQueryTimeout = 2 * time.Second

// Prober runs probes. Probe is one library call per /probe request; the
// fields are what every probe shares.
type Prober struct {
	// Budget is the packet budget of every probe (--rate): each query and
	// each trace probe takes a token. Nil: none.
	Budget *rate.Limiter
	// Sites is the site-hint table (site labels, hints); nil: the built-in
	// one, parsed at each probe (give one to share it).
	Sites *catchment.Sites
	// Resolver returns the ASN source of a trace module (the caller keeps
	// one per source, with its cache); nil: none, so paths carry no ASes.
	Resolver func(t *TraceModule) (whois.Resolver, error)
	// ProbeNet and TraceNet inject the sockets; nil: the host's.
	ProbeNet probe.Network
	TraceNet trace.Network
}

// Probe measures target as module m asks and registers the metrics on
// reg, anycheck_probe_success and anycheck_probe_duration_seconds
// included; it returns the success. ctx bounds it: every wait ends by its
// deadline. Log records what failed and why (the /probe?debug=true output
// and the exporter's debug log).
func (p *Prober) Probe(ctx context.Context, target netip.Addr, m *Module, reg prometheus.Registerer, log *slog.Logger) bool {
	start := time.Now()
	out := newProbeMetrics(reg)
	ok := true
	var src netip.AddrPort
	var ids []flowIdentity
	if m.Trace != nil {
		r := p.probeTrace(ctx, target, m.Trace, m.ID == nil, out, log)
		ok = r.ok
		if m.ID == nil {
			ids = r.identities
		}
		if r.source.Port() != 0 && (m.Trace.Protocol == string(trace.UDP) || m.Trace.Protocol == string(trace.TCP)) {
			src = netip.AddrPortFrom(netip.Addr{}, r.source.Port())
		}
	}
	if m.ID != nil {
		var idOK bool
		ids, idOK = p.probeID(ctx, target, m.ID, src, log)
		ok = ok && idOK
	}
	if m.ID != nil || len(ids) > 0 {
		hints := m.ID != nil && m.ID.Hints
		if !p.identityMetrics(target, ids, hints, out, log) {
			ok = false
		}
	}
	out.gauge(nameProbeDuration).Set(time.Since(start).Seconds())
	out.gauge(nameProbeSuccess).Set(b2f(ok))
	return ok
}

// flowIdentity is what one flow's identity queries gave.
type flowIdentity struct {
	source   netip.AddrPort
	identity measure.Identity
	answers  []measure.Answer
}

// probeID asks the identity over the module's flows at once: the first
// from src's port when given (the trace's flow), the others from ports of
// their own. It reports whether any flow got a DNS reply.
func (p *Prober) probeID(ctx context.Context, target netip.Addr, id *IDModule, src netip.AddrPort, log *slog.Logger) ([]flowIdentity, bool) {
	timeout := id.QueryTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		log.Warn("no time left for the identity queries", "target", target)
		return nil, false
	}
	var names []string
	if len(id.Names) > 0 {
		names = id.Names
	}
	flows := make([]flowIdentity, id.Flows)
	errs := make([]error, id.Flows)
	var wg sync.WaitGroup
	for f := range id.Flows {
		wg.Go(func() {
			s := netip.AddrPort{}
			if f == 0 {
				s = src
			}
			res, err := probe.Run(ctx, probe.Options{
				Target:  netip.AddrPortFrom(target, id.Port),
				Source:  s,
				Names:   names,
				Version: id.Version,
				TCP:     id.Protocol == "tcp",
				Timeout: timeout,
				Limiter: p.Budget,
				Net:     p.ProbeNet,
			})
			errs[f] = err
			flows[f] = flowIdentity{source: res.Source, identity: res.Identity, answers: res.Answers}
		})
	}
	wg.Wait()
	replied := false
	for f, fl := range flows {
		if errs[f] != nil {
			log.Warn("identity flow could not be opened", "flow", f, "err", errs[f])
			continue
		}
		got := false
		for _, a := range fl.answers {
			got = got || a.Replied()
		}
		replied = replied || got
		log.Debug("identity flow", "source", fl.source, "instance", fl.identity.Instance, "answers", answersText(fl.answers))
	}
	if !replied {
		log.Info("no DNS reply to the identity queries", "target", netip.AddrPortFrom(target, id.Port), "timeout", timeout)
	}
	// Flows that could not be opened measured nothing.
	out := flows[:0]
	for f, fl := range flows {
		if errs[f] == nil {
			out = append(out, fl)
		}
	}
	return out, replied
}

// identityMetrics writes what the flows' answers say: the instances (and
// their share of the flows), the answers by outcome, the RTT and, with
// hints, the signs that something else answered. It reports whether an
// answer came from the service (a reply, and no sign against it).
func (p *Prober) identityMetrics(target netip.Addr, flows []flowIdentity, hints bool, out *probeMetrics, log *slog.Logger) bool {
	sites := p.Sites
	if sites == nil {
		sites = catchment.BuiltinSites()
	}
	type key struct{ query, status string }
	answers := map[key]int{}
	var rtt time.Duration
	signs := map[catchment.Suspicion]bool{}
	var cflows []catchment.Flow
	first := map[string]measure.Identity{}
	replied := false
	for _, fl := range flows {
		flowReplied := false
		for _, a := range fl.answers {
			answers[key{strings.TrimSuffix(a.Name, "."), string(a.Status)}]++
			if a.Replied() {
				flowReplied = true
				if a.RTT > 0 && (rtt == 0 || a.RTT < rtt) {
					rtt = a.RTT
				}
			}
		}
		replied = replied || flowReplied
		id := fl.identity
		if hints && flowReplied {
			s := catchment.AnswerSigns(target, id, fl.answers, sites)
			for _, x := range s {
				signs[x] = true
			}
			if len(s) > 0 {
				// An answer unlike the service names no instance.
				log.Info("answers unlike the service", "source", fl.source, "identity", id.Instance, "signs", s)
				id = measure.Identity{}
			}
		}
		cflows = append(cflows, catchment.Flow{Source: fl.source, Identity: id})
		if _, ok := first[id.Instance]; !ok && id.Instance != "" {
			first[id.Instance] = id
		}
	}
	split := catchment.SplitOf(cflows)
	out.gauge(nameFlows).Set(float64(len(flows)))
	out.gauge(nameFlowsInstances).Set(float64(len(split.Instances)))
	out.gauge(nameCatchmentSplit).Set(b2f(split.Split))
	for _, in := range split.Instances {
		id := first[in.Instance]
		site, _ := sites.HintFor(target, id.Instance)
		out.gaugeVec(nameInstanceInfo, identityLabels...).WithLabelValues(labelValue(id.Instance), labelValue(site.Site), labelValue(id.NSID), labelValue(id.HostnameBind)).Set(1)
		out.gaugeVec(nameInstanceFlows, labelInstance).WithLabelValues(labelValue(id.Instance)).Set(float64(in.Count))
	}
	keys := make([]key, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.query+" "+a.status, b.query+" "+b.status) })
	for _, k := range keys {
		out.gaugeVec(nameDNSAnswers, "query", "status").WithLabelValues(labelValue(k.query), k.status).Set(float64(answers[k]))
	}
	if rtt > 0 {
		out.gauge(nameDNSRTT).Set(rtt.Seconds())
	}
	if hints {
		out.gauge(nameUnlikeService).Set(b2f(len(signs) > 0))
		var ss []string
		for s := range signs {
			ss = append(ss, string(s))
		}
		slices.Sort(ss)
		for _, s := range ss {
			out.gaugeVec(nameAnswerSign, "sign").WithLabelValues(s).Set(1)
		}
	}
	return replied && len(signs) == 0
}

// traceResult is what the path part of a probe hands the identity part.
type traceResult struct {
	ok         bool
	source     netip.AddrPort // the (first) flow traced
	identities []flowIdentity // each flow's answers (udp/53; tcp/53 asked after)
}

// answersText sums up answers for a log line.
func answersText(as []measure.Answer) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = strings.TrimSuffix(a.Name, ".") + "=" + string(a.Status)
		if a.Detail != "" && !a.Replied() {
			parts[i] += " (" + a.Detail + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// probeMetrics creates the metrics of one probe on its registry, once each.
type probeMetrics struct {
	reg    prometheus.Registerer
	gauges map[string]prometheus.Gauge
	vecs   map[string]*prometheus.GaugeVec
}

func newProbeMetrics(reg prometheus.Registerer) *probeMetrics {
	return &probeMetrics{reg: reg, gauges: map[string]prometheus.Gauge{}, vecs: map[string]*prometheus.GaugeVec{}}
}

func (o *probeMetrics) gauge(name string) prometheus.Gauge {
	if g, ok := o.gauges[name]; ok {
		return g
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: helpOf(name)})
	o.reg.MustRegister(g)
	o.gauges[name] = g
	return g
}

func (o *probeMetrics) gaugeVec(name string, labels ...string) *prometheus.GaugeVec {
	if g, ok := o.vecs[name]; ok {
		return g
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: helpOf(name)}, labels)
	o.reg.MustRegister(g)
	o.vecs[name] = g
	return g
}

// helpOf is a metric's help text from the catalogue.
func helpOf(name string) string {
	for _, m := range Metrics {
		if m.Name == name {
			return strings.NewReplacer("`", "").Replace(m.Help)
		}
	}
	panic(fmt.Sprintf("metric %s is not in the catalogue", name))
}

// maxLabelValue bounds a label value made of untrusted text (an identity
// string, an AS path): valid UTF-8, at most this many bytes.
const maxLabelValue = 128

func labelValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxLabelValue {
		return s
	}
	cut := maxLabelValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func asPathText(p []uint32) string {
	parts := make([]string, len(p))
	for i, a := range p {
		parts[i] = strconv.FormatUint(uint64(a), 10)
	}
	return strings.Join(parts, " ")
}

// probeTrace traces target (one flow, or a sweep of the module's flows)
// and writes what the paths say: reached, hops, RTT, the distinct paths,
// and the upstream AS and AS path when the module has an ASN source. With
// identity (no id part), a tcp/53 trace asks each flow's instance over a
// connection from its own port, as `trace` does.
func (p *Prober) probeTrace(ctx context.Context, target netip.Addr, t *TraceModule, identity bool, out *probeMetrics, log *slog.Logger) traceResult {
	wait := t.Wait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	if wait <= 0 {
		log.Warn("no time left for the trace", "target", target)
		out.gauge(namePathReached).Set(0)
		return traceResult{}
	}
	opts := trace.Options{
		Target:  target,
		Proto:   trace.Protocol(t.Protocol),
		Port:    t.Port,
		Mode:    trace.Mode(t.Mode),
		MaxTTL:  t.MaxHops,
		Queries: t.Queries,
		Wait:    wait,
		QName:   t.QName,
		Budget:  p.Budget,
		Net:     p.TraceNet,
	}
	var idOpts *trace.IdentityOptions
	if identity {
		idOpts = &trace.IdentityOptions{QName: t.QName, Timeout: wait, Limiter: p.Budget, Net: p.ProbeNet}
	}
	var paths []trace.Path
	if t.Flows > 1 {
		opts.Window = sweep.Window
		opts.MinWait = min(sweep.MinWait, wait)
		res := sweep.Run(ctx, sweep.Options{Trace: opts, Flows: t.Flows, Identity: idOpts})
		if res.Permission != nil {
			log.Warn("trace failed", "err", res.Permission)
			out.gauge(namePathReached).Set(0)
			return traceResult{}
		}
		for _, f := range res.Failed {
			log.Warn("flow could not be traced", "port", f.Port, "err", f.Err)
		}
		paths = res.Paths
		if res.Reason == sweep.StopInterrupted {
			log.Info("sweep cut short by the probe's deadline", "flows", len(paths))
		}
	} else {
		path, err := trace.Run(ctx, opts)
		if err != nil {
			log.Warn("trace failed", "err", err)
			out.gauge(namePathReached).Set(0)
			return traceResult{}
		}
		if path.Stop == trace.StopInterrupted {
			log.Info("trace cut short by the probe's deadline", "hops", len(path.Hops))
		}
		if idOpts != nil {
			trace.IdentifyTCP53(ctx, &path, *idOpts)
		}
		paths = []trace.Path{path}
	}
	var origins map[netip.Addr]whois.Origin
	if p.Resolver != nil && len(paths) > 0 {
		if r, err := p.Resolver(t); err != nil {
			log.Warn("asn source", "err", err)
		} else if origins, err = r.Lookup(ctx, pathAddrs(paths)); err != nil {
			// The paths stand without their ASes.
			log.Warn("asn lookup failed; the path has no AS", "err", err)
		}
	}
	flows, sw := live.Sweep(paths, origins, sweep.Confidence)
	out.gauge(namePathReached).Set(b2f(sw.Reached > 0))
	out.gauge(namePaths).Set(float64(len(sw.Paths)))
	// Hops and RTT are those of the path most flows took.
	var main *catchment.Path
	for i := range sw.Paths {
		if main == nil || len(sw.Paths[i].Flows) > len(main.Flows) {
			main = &sw.Paths[i]
		}
	}
	if main != nil {
		hops := 0
		for _, h := range main.Hops {
			if !h.Silent() {
				hops = h.TTL
			}
		}
		out.gauge(namePathHops).Set(float64(hops))
		if main.Facts.RTT > 0 {
			out.gauge(namePathRTT).Set(main.Facts.RTT.Seconds())
		}
	}
	for _, pa := range sw.Paths {
		upstream := ""
		if pa.Facts.Upstream != nil && pa.Facts.Upstream.AS != 0 {
			upstream = strconv.FormatUint(uint64(pa.Facts.Upstream.AS), 10)
		}
		out.gaugeVec(namePathInfo, "upstream_asn", "as_path").WithLabelValues(upstream, labelValue(asPathText(pa.Facts.ASPath))).Set(1)
		log.Debug("path", "flows", len(pa.Flows), "reached", pa.Reached, "upstream_asn", upstream, "as_path", asPathText(pa.Facts.ASPath))
	}
	r := traceResult{ok: sw.Reached > 0}
	for i, pa := range paths {
		if i == 0 {
			r.source = pa.Flow.Src
		}
		if pa.Instance != nil || len(pa.Answers) > 0 {
			// A udp/53 trace's probes are the identity query (a tcp/53
			// one's identity was asked from its port): the answers name
			// the instance at the end of each flow's path.
			r.identities = append(r.identities, flowIdentity{source: pa.Flow.Src, identity: flows[i].Identity, answers: pa.Answers})
		}
	}
	return r
}

// pathAddrs are the addresses whose origins the paths' analysis needs:
// the target and every responder, once each.
func pathAddrs(paths []trace.Path) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, p := range paths {
		add(p.Flow.Dst.Addr())
		for _, h := range p.Hops {
			for _, pr := range h.Probes {
				if r := pr.Reply; r != nil {
					add(r.From)
				}
			}
		}
	}
	return out
}
