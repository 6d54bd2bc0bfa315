package exporter

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/anycheck/anycheck/probe/probetest"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/trace/tracetest"
	"github.com/anycheck/anycheck/whois"
	"github.com/anycheck/anycheck/whois/whoistest"
)

// probeOnce runs one probe of module name on a fresh registry.
func probeOnce(t *testing.T, p *Prober, c *Config, name string, to netip.Addr, timeout time.Duration) (bool, map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	reg := prometheus.NewRegistry()
	ok := p.Probe(ctx, to, c.Modules[name], reg, testLog(t))
	fams, text := gather(t, reg)
	return ok, fams, text
}

// TestProbeID: the identity module on an in-memory server 3 ms away names
// the instance with its NSID and hostname.bind, the answers by outcome and
// the RTT (exact, on the bubble's clock).
func TestProbeID(t *testing.T) {
	var text []byte
	synctest.Test(t, func(t *testing.T) {
		srv := &probetest.Server{Hostname: "i1.lab-a", IDServer: "i1.lab-a", NSID: []byte("i1-nsd"), Delay: 3 * time.Millisecond}
		p := &Prober{ProbeNet: oneServer(srv), Budget: trace.NewBudget(1000)}
		ok, fams, txt := probeOnce(t, p, BuiltinConfig(allow192), "id", target, 5*time.Second)
		text = txt
		if !ok || value(t, fams, nameProbeSuccess) != 1 {
			t.Fatalf("probe failed:\n%s", text)
		}
		if d := value(t, fams, nameProbeDuration); d != 0.003 {
			t.Errorf("duration %v s, want 0.003 (one round trip: both queries at once)", d)
		}
		if rtt := value(t, fams, nameDNSRTT); rtt != 0.003 {
			t.Errorf("rtt %v", rtt)
		}
		info := samples(fams[nameInstanceInfo])
		want := map[string]string{"anycast_instance": "i1-nsd", "site": "", "nsid": "i1-nsd", "hostname_bind": "i1.lab-a"}
		if len(info) != 1 || info[0].value != 1 || !equalLabels(info[0].labels, want) {
			t.Errorf("instance info %v, want %v", info, want)
		}
		answers := map[string]float64{}
		for _, s := range samples(fams[nameDNSAnswers]) {
			answers[s.labels["query"]+" "+s.labels["status"]] = s.value
		}
		if len(answers) != 2 || answers["hostname.bind answered"] != 1 || answers["id.server answered"] != 1 {
			t.Errorf("answers %v", answers)
		}
		if value(t, fams, nameFlows) != 1 || value(t, fams, nameFlowsInstances) != 1 || value(t, fams, nameCatchmentSplit) != 0 {
			t.Errorf("flows:\n%s", text)
		}
		if fams[nameUnlikeService] != nil || fams[namePathReached] != nil {
			t.Errorf("metrics the module does not ask for:\n%s", text)
		}
	})
	checkMetrics(t, text)
}

// TestProbeIDFlowsSplit: a module with 6 flows behind an ECMP router that
// sends even source ports to A and odd ones to B sees the split.
func TestProbeIDFlowsSplit(t *testing.T) {
	var text []byte
	synctest.Test(t, func(t *testing.T) {
		a := &probetest.Server{Hostname: "a1", NSID: []byte("a1")}
		b := &probetest.Server{Hostname: "b1", NSID: []byte("b1")}
		ecmp := &probetest.Net{Route: func(_ string, local, _ netip.AddrPort) (*probetest.Server, error) {
			if local.Port()%2 == 0 {
				return a, nil
			}
			return b, nil
		}}
		c := mustConfig(t, "modules:\n  flows: {id: {flows: 6}}\n")
		ok, fams, txt := probeOnce(t, &Prober{ProbeNet: ecmp}, c, "flows", target, 5*time.Second)
		text = txt
		if !ok {
			t.Fatalf("probe failed:\n%s", text)
		}
		if value(t, fams, nameFlows) != 6 || value(t, fams, nameFlowsInstances) != 2 || value(t, fams, nameCatchmentSplit) != 1 {
			t.Errorf("want 6 flows over 2 instances, split:\n%s", text)
		}
		perInstance := map[string]float64{}
		for _, s := range samples(fams[nameInstanceFlows]) {
			perInstance[s.labels[labelInstance]] = s.value
		}
		if perInstance["a1"] != 3 || perInstance["b1"] != 3 || len(samples(fams[nameInstanceInfo])) != 2 {
			t.Errorf("flows per instance %v:\n%s", perInstance, text)
		}
	})
	checkMetrics(t, text)
}

// TestProbeIDHints: with hints, an intercepting resolver's answer (RA
// set, class IN, a TTL) is unlike the service, names no instance and
// fails the probe; so does a name unlike the target's operator's (b-root's
// names are b1-lax, not i1). Without hints the answer names an instance.
func TestProbeIDHints(t *testing.T) {
	var text []byte
	synctest.Test(t, func(t *testing.T) {
		mbox := &probetest.Server{Hostname: "unbound", IDServer: "unbound", Middlebox: true}
		c := mustConfig(t, "modules:\n  hints: {id: {hints: true}}\n  plain: {id: {}}\n")
		ok, fams, txt := probeOnce(t, &Prober{ProbeNet: oneServer(mbox)}, c, "hints", target, 5*time.Second)
		text = txt
		if ok || value(t, fams, nameProbeSuccess) != 0 || value(t, fams, nameUnlikeService) != 1 {
			t.Errorf("a middlebox's answer passes:\n%s", text)
		}
		signs := map[string]bool{}
		for _, s := range samples(fams[nameAnswerSign]) {
			signs[s.labels["sign"]] = true
		}
		if !signs["ra_set"] || !signs["class_not_ch"] || !signs["ttl_nonzero"] {
			t.Errorf("signs %v", signs)
		}
		if fams[nameInstanceInfo] != nil || value(t, fams, nameFlowsInstances) != 0 {
			t.Errorf("an answer unlike the service names an instance:\n%s", text)
		}

		ok, fams, _ = probeOnce(t, &Prober{ProbeNet: oneServer(mbox)}, c, "plain", target, 5*time.Second)
		if !ok || len(samples(fams[nameInstanceInfo])) != 1 || fams[nameUnlikeService] != nil {
			t.Errorf("without hints the answer is taken as it is")
		}

		// b-root answers CHAOS with names like b1-lax: "i1" is not one.
		broot := netip.MustParseAddr("199.9.14.201")
		clean := &probetest.Server{Hostname: "i1", IDServer: "i1"}
		_, fams, txt = probeOnce(t, &Prober{ProbeNet: oneServer(clean)}, c, "hints", broot, 5*time.Second)
		if s := samples(fams[nameAnswerSign]); len(s) != 1 || s[0].labels["sign"] != "identity_mismatch" {
			t.Errorf("b-root answering i1:\n%s", txt)
		}
		_, fams, txt = probeOnce(t, &Prober{ProbeNet: oneServer(&probetest.Server{Hostname: "b1-lax", IDServer: "b1-lax"})}, c, "hints", broot, 5*time.Second)
		if value(t, fams, nameUnlikeService) != 0 || value(t, fams, nameProbeSuccess) != 1 {
			t.Errorf("b-root answering b1-lax:\n%s", txt)
		}
	})
	checkMetrics(t, text)
}

// TestProbeDeadline: a silent service ends the probe at its deadline, not
// at the module's longer query timeout; the queries count as timeouts.
func TestProbeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := mustConfig(t, "modules:\n  slow: {id: {query_timeout: 5s}}\n")
		start := time.Now()
		ok, fams, text := probeOnce(t, &Prober{ProbeNet: oneServer(&probetest.Server{Silent: true})}, c, "slow", target, 750*time.Millisecond)
		if took := time.Since(start); took != 750*time.Millisecond {
			t.Errorf("the probe took %v, want its deadline, 750ms", took)
		}
		if ok || value(t, fams, nameProbeDuration) != 0.75 || fams[nameDNSRTT] != nil || fams[nameInstanceInfo] != nil {
			t.Errorf("silent service:\n%s", text)
		}
		for _, s := range samples(fams[nameDNSAnswers]) {
			if s.labels["status"] != "timeout" {
				t.Errorf("answer %v, want timeouts", s)
			}
		}
	})
}

// tracePath is the fake path of the trace tests: three routers of AS64500
// (198.51.100.1-3), then the service (192.0.2.53, AS64520).
func tracePath() *tracetest.Net {
	return &tracetest.Net{
		Hops: tracetest.Routers(3, time.Millisecond),
		Dest: tracetest.Dest{RTT: 4 * time.Millisecond, Hostname: "i2.lab-b", NSID: "i2-knot"},
	}
}

func startWhois(t *testing.T) string {
	t.Helper()
	srv, err := whoistest.Start(whoistest.Config{Rows: []whoistest.Row{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), ASNs: []uint32{64500}, Country: "ZZ", Registry: "lab", Allocated: "2026-01-01", ASName: "ISP-ONE"},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), ASNs: []uint32{64520}, Country: "ZZ", Registry: "lab", Allocated: "2026-01-01", ASName: "ANYDNS"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr()
}

func whoisResolver(t *TraceModule) (whois.Resolver, error) {
	return whois.New(t.ASN, whois.Options{WhoisServer: t.WhoisServer})
}

// TestProbeTrace: the path module traces the fake path and names the
// upstream AS and the AS path from the bulk whois stand-in; its udp/53
// probes' answers name the instance at the end of the path.
func TestProbeTrace(t *testing.T) {
	c := mustConfig(t, "modules:\n  path: {trace: {whois_server: \""+startWhois(t)+"\"}}\n")
	ok, fams, text := probeOnce(t, &Prober{TraceNet: tracePath(), Resolver: whoisResolver}, c, "path", target, 10*time.Second)
	if !ok || value(t, fams, namePathReached) != 1 || value(t, fams, namePathHops) != 4 {
		t.Fatalf("want the target reached at hop 4:\n%s", text)
	}
	info := samples(fams[namePathInfo])
	if len(info) != 1 || !equalLabels(info[0].labels, map[string]string{"upstream_asn": "64500", "as_path": "64500 64520"}) {
		t.Errorf("path info %v", info)
	}
	if rtt := value(t, fams, namePathRTT); rtt < 0.004 || rtt > 0.5 {
		t.Errorf("path rtt %v s, want about 4 ms", rtt)
	}
	in := samples(fams[nameInstanceInfo])
	if len(in) != 1 || in[0].labels[labelInstance] != "i2-knot" || in[0].labels[labelHostnameBind] != "i2.lab-b" {
		t.Errorf("instance at the end of the path: %v", in)
	}
	checkMetrics(t, text)

	// Without an ASN source the path has no ASes, and says so with
	// empty labels rather than a guess.
	c = mustConfig(t, "modules:\n  path: {trace: {asn: none}}\n")
	_, fams, _ = probeOnce(t, &Prober{TraceNet: tracePath()}, c, "path", target, 10*time.Second)
	if info := samples(fams[namePathInfo]); len(info) != 1 || info[0].labels["upstream_asn"] != "" || info[0].labels["as_path"] != "" {
		t.Errorf("path info without ASes: %v", info)
	}

	// A trace that cannot start (no privilege) fails the probe.
	denied := &tracetest.Net{OpenErr: trace.ErrPermission}
	ok, fams, text = probeOnce(t, &Prober{TraceNet: denied}, c, "path", target, 10*time.Second)
	if ok || value(t, fams, namePathReached) != 0 || value(t, fams, nameProbeSuccess) != 0 {
		t.Errorf("a trace without privilege:\n%s", text)
	}
}

// TestProbeTraceThenID: a module with both parts asks the identity over
// the traced flow: the same source port, so the instance named is the one
// at the end of the path measured.
func TestProbeTraceThenID(t *testing.T) {
	n := tracePath()
	c := mustConfig(t, "modules:\n  both: {id: {}, trace: {asn: none}}\n")
	ok, fams, text := probeOnce(t, &Prober{TraceNet: n, ProbeNet: n}, c, "both", target, 10*time.Second)
	if !ok || value(t, fams, namePathReached) != 1 || len(samples(fams[nameInstanceInfo])) != 1 {
		t.Fatalf("both:\n%s", text)
	}
	dials := n.Dials()
	if len(dials) != 1 || dials[0].Local.Port() != tracetest.DefaultSourcePort {
		t.Errorf("identity sockets %+v, want one from the traced flow's port %d", dials, tracetest.DefaultSourcePort)
	}
	checkMetrics(t, text)
}

func equalLabels(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// TestProbeTraceFlows: a trace module with flows sweeps them at once; the
// flows' udp/53 answers say how they spread over instances, and the paths
// are counted (one here: the fake network has no per-flow balancer).
func TestProbeTraceFlows(t *testing.T) {
	n := tracePath()
	c := mustConfig(t, "modules:\n  sweep: {trace: {flows: 4, asn: none}}\n")
	if q := c.Modules["sweep"].Trace.Queries; q != 1 {
		t.Errorf("a sweep's probes per hop: %d, want 1 (trace --flows)", q)
	}
	ok, fams, text := probeOnce(t, &Prober{TraceNet: n}, c, "sweep", target, 10*time.Second)
	if !ok || value(t, fams, namePaths) != 1 || value(t, fams, namePathHops) != 4 || value(t, fams, nameFlows) != 4 {
		t.Fatalf("sweep:\n%s", text)
	}
	if s := samples(fams[nameInstanceFlows]); len(s) != 1 || s[0].labels[labelInstance] != "i2-knot" || s[0].value != 4 || value(t, fams, nameCatchmentSplit) != 0 {
		t.Errorf("flows per instance %v", s)
	}
	if len(n.Dials()) != 0 {
		t.Errorf("a udp/53 sweep asked the identity again: %+v", n.Dials())
	}
	checkMetrics(t, text)

	if _, err := ParseConfig(strings.NewReader("modules:\n  x: {id: {}, trace: {flows: 4}}\n"), "x.yml", nil); err == nil || !strings.Contains(err.Error(), "flows with id:") {
		t.Errorf("trace flows with id: %v", err)
	}
}

// TestProbeTraceTCP53: a tcp/53 trace alone asks the instance over a
// connection from the traced flow's port once the trace is over, as
// `trace -P tcp` does.
func TestProbeTraceTCP53(t *testing.T) {
	n := tracePath()
	c := mustConfig(t, "modules:\n  tcp: {trace: {protocol: tcp, asn: none}}\n")
	ok, fams, text := probeOnce(t, &Prober{TraceNet: n, ProbeNet: n}, c, "tcp", target, 10*time.Second)
	if !ok || value(t, fams, namePathReached) != 1 {
		t.Fatalf("tcp trace:\n%s", text)
	}
	if in := samples(fams[nameInstanceInfo]); len(in) != 1 || in[0].labels[labelInstance] != "i2-knot" {
		t.Errorf("instance after a tcp/53 trace: %v", in)
	}
	if d := n.Dials(); len(d) != 1 || d[0].Network != "tcp" || d[0].Local.Port() != tracetest.DefaultSourcePort {
		t.Errorf("identity connections %+v, want one over tcp from the traced port", d)
	}
}
