package cli_test

// Lab tests: the built anycheck binary, run inside the client namespaces of
// the project's anycast lab (internal/lab), against real routers (BIRD 2)
// and real DNS servers (NSD, Knot). They skip without root and the lab
// packages, and fail instead when ANYCHECK_LAB=1.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/internal/report/reporttest"
)

// labRun runs the anycheck binary in a lab node and returns stdout, stderr
// and the exit code.
func labRun(t *testing.T, ac *lab.Anycast, node string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, errOut, err := ac.Run(ctx, node, append([]string{lab.Binary(t)}, args...)...)
	return string(out), string(errOut), exitStatus(t, err)
}

func labRunAs(t *testing.T, ac *lab.Anycast, node string, u lab.User, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, errOut, err := ac.RunAs(ctx, node, u, append([]string{lab.Binary(t)}, args...)...)
	return string(out), string(errOut), exitStatus(t, err)
}

func exitStatus(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if ok := asExit(err, &ee); ok {
		return ee.ExitCode()
	}
	t.Fatalf("run anycheck: %v", err)
	return -1
}

func asExit(err error, target **exec.ExitError) bool {
	for err != nil {
		if e, ok := err.(*exec.ExitError); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// idDoc is the part of `anycheck id -o json` the lab tests read.
type idDoc struct {
	Results []struct {
		Target string
		Flows  []struct {
			Flow     labFlow
			Instance struct {
				Name         string
				HostnameBind string `json:"hostname_bind"`
				NSID         string
			}
			Runs []struct {
				Answers []struct {
					Name, Transport, Status, Detail string
				}
			}
		}
	}
}

// labFlow is a flow object's source, as the lab tests read it.
type labFlow struct {
	Src   string
	Sport int
}

func (f labFlow) String() string { return net.JoinHostPort(f.Src, strconv.Itoa(f.Sport)) }

func families() []lab.Family { return []lab.Family{lab.IPv4, lab.IPv6} }

// TestLabID: from each client, over UDP and TCP, IPv4 and IPv6, `anycheck
// id` names the instance that client really reaches (the lab's routing
// truth, and dig's answer from the same client); withdrawing instance A's
// BGP session moves c1 to instance B.
func TestLabID(t *testing.T) {
	ac := lab.StartAnycast(t)
	seen := map[string]bool{}
	for _, client := range ac.Clients() {
		want, ok := ac.InstanceOf(client)
		if !ok {
			t.Fatalf("%s: lab says the service is unreachable", client)
		}
		for _, f := range families() {
			dig, err := ac.IdentifyFrom(context.Background(), client, f)
			if err != nil {
				t.Fatalf("%s %v: dig: %v", client, f, err)
			}
			for _, tcp := range []bool{false, true} {
				name := fmt.Sprintf("%s/%v/tcp=%v", client, f, tcp)
				args := []string{"id", "-o", "json", ac.ServiceAddr(f).String()}
				if tcp {
					args = append(args, "--tcp")
				}
				out, errOut, code := labRun(t, ac, client, args...)
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", name, code, errOut)
				}
				reporttest.Check(t, []byte(out), false)
				var doc idDoc
				if err := json.Unmarshal([]byte(out), &doc); err != nil {
					t.Fatal(err)
				}
				id := doc.Results[0].Flows[0].Instance
				if id.NSID != want.NSID || id.HostnameBind != want.Identity || id.Name != want.NSID {
					t.Errorf("%s: anycheck says NSID %q hostname.bind %q, lab routing says %s (%q/%q)", name, id.NSID, id.HostnameBind, want.Node, want.NSID, want.Identity)
				}
				if id.NSID != dig.NSID || id.HostnameBind != dig.Hostname {
					t.Errorf("%s: anycheck (%q/%q) disagrees with dig (%q/%q)", name, id.NSID, id.HostnameBind, dig.NSID, dig.Hostname)
				}
				for _, a := range doc.Results[0].Flows[0].Runs[0].Answers {
					if wantT := map[bool]string{false: "udp", true: "tcp"}[tcp]; a.Transport != wantT {
						t.Errorf("%s: %s answered over %s", name, a.Name, a.Transport)
					}
					// NSD and Knot keep a connection open for several
					// queries: --tcp pipelines the run on one connection.
					if a.Detail != "" {
						t.Errorf("%s: %s: %s", name, a.Name, a.Detail)
					}
				}
				seen[id.Name] = true
			}
		}
	}
	if len(seen) != 2 {
		t.Fatalf("the two clients should reach two different instances, saw %v", seen)
	}

	// Withdraw instance A from r1: c1 must move to B.
	if err := ac.StopBGP(ac.A.Origin, "r1"); err != nil {
		t.Fatal(err)
	}
	if in, err := ac.WaitInstance(context.Background(), "c1"); err != nil || in.Node != ac.B.Node {
		t.Fatalf("after stopping %s–r1, c1 should reach %s: got %v, %v", ac.A.Origin, ac.B.Node, in.Node, err)
	}
	for _, f := range families() {
		out, errOut, code := labRun(t, ac, "c1", "id", "-o", "json", ac.ServiceAddr(f).String())
		if code != 0 {
			t.Fatalf("after failover: exit %d: %s", code, errOut)
		}
		var doc idDoc
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		if got := doc.Results[0].Flows[0].Instance.NSID; got != ac.B.NSID {
			t.Errorf("%v: after failover c1 reaches %q, want %q", f, got, ac.B.NSID)
		}
	}
}

// TestLabIDUnreachable: a target with no route answers nothing; every query
// ends within --timeout and the exit code is 3. What comes back instead of
// an answer is said: a router's "administratively prohibited" (a prohibit
// route on r1) with its address, the instance's port unreachable on a port
// it does not serve, as trace marks them.
func TestLabIDUnreachable(t *testing.T) {
	ac := lab.StartAnycast(t)
	// 203.0.113.250 is inside a lab prefix but no host holds it.
	start := time.Now()
	out, _, code := labRun(t, ac, "c1", "id", "--timeout", "500ms", "-o", "json", "203.0.113.250")
	if code != 3 {
		t.Errorf("exit %d, want 3", code)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("two queries with --timeout 500ms took %s", time.Since(start))
	}
	// Each twice: in the flow's answers (its last run's) and in its run.
	if strings.Count(out, `"status": "timeout"`)+strings.Count(out, `"status": "unreachable"`) != 4 {
		t.Errorf("want two queries without an answer:\n%s", out)
	}

	// Every query gets its ICMP error (Linux sends 6 at once to one
	// source, then 1 a second).
	for _, n := range []string{"r1", ac.A.Node} {
		if err := ac.DisableICMPRateLimit(n); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prohibited := map[lab.Family]string{lab.IPv4: "192.0.2.99", lab.IPv6: "2001:db8:53::99"}
	for f, addr := range prohibited {
		argv := []string{"ip", "route", "add", "prohibit", addr}
		if f == lab.IPv6 {
			argv = []string{"ip", "-6", "route", "add", "prohibit", addr}
		}
		if _, errOut, err := ac.Run(ctx, "r1", argv...); err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
	}
	for _, f := range families() {
		r1 := ac.Addr("r1", "core", f)
		for _, tc := range []struct{ target, port, want string }{
			{prohibited[f], "53", "administratively prohibited (!X) from " + r1.String()},
			{ac.ServiceAddr(f).String(), "5353", "port unreachable from " + ac.ServiceAddr(f).String()},
		} {
			name := fmt.Sprintf("%v id --port %s %s", f, tc.port, tc.target)
			out, _, code := labRun(t, ac, "c1", "id", "--port", tc.port, "--timeout", "3s", tc.target)
			if code != 3 {
				t.Errorf("%s: exit %d, want 3", name, code)
			}
			if !strings.Contains(out, "hostname.bind  unreachable  "+tc.want) || !strings.Contains(out, "2 unreachable ("+tc.want+")") {
				t.Errorf("%s: want %q said per query and in the failure:\n%s", name, tc.want, out)
			}
		}
	}
}

// traceDoc is the part of `anycheck trace -o json` the lab tests read.
type traceDoc struct {
	Results []struct{ Flows []tracePath }
}

// tracePath is a traced flow (a trace's, or one of a sweep's) with its
// path's fields at the top.
type tracePath struct {
	Flow       report.FlowDTO
	Mode       string
	Reached    bool
	StopReason string
	DestTTL    int
	Hops       []report.HopDTO
	Instance   *struct{ Instance, NSID, HostnameBind string } // nil when the answers named none
	ASPath     []uint32
}

// UnmarshalJSON reads a flow object of the contract (report.TraceFlow).
func (p *tracePath) UnmarshalJSON(b []byte) error {
	var f report.TraceFlow
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*p = tracePath{Flow: f.Flow, Mode: f.Path.Mode, Reached: f.Path.Reached, StopReason: f.Path.StopReason,
		DestTTL: f.Path.DestTTL, Hops: f.Path.Hops, ASPath: f.Path.ASPath}
	if f.Instance.Name != "" {
		p.Instance = &struct{ Instance, NSID, HostnameBind string }{string(f.Instance.Name), string(f.Instance.NSID), string(f.Instance.HostnameBind)}
	}
	return nil
}

func parseTrace(t *testing.T, name, out string) tracePath {
	t.Helper()
	reporttest.Check(t, []byte(out), false)
	var doc traceDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(doc.Results) != 1 || len(doc.Results[0].Flows) != 1 {
		t.Fatalf("%s: want one path, got %d results", name, len(doc.Results))
	}
	return doc.Results[0].Flows[0]
}

// checkHops compares a trace's hops to the lab's routing truth.
func checkHops(t *testing.T, name string, got tracePath, want []lab.Hop) {
	t.Helper()
	if !got.Reached || got.DestTTL != len(want) {
		t.Errorf("%s: reached=%v at ttl %d (%s), want the destination at ttl %d", name, got.Reached, got.DestTTL, got.StopReason, len(want))
	}
	for i, w := range want {
		if i >= len(got.Hops) {
			t.Errorf("%s: hop %d missing", name, i+1)
			continue
		}
		h := got.Hops[i]
		if w.Silent() {
			if len(h.Responders) != 0 {
				t.Errorf("%s: hop %d should be silent (*), got %v", name, i+1, h.Responders)
			}
			continue
		}
		if len(h.Responders) != 1 {
			t.Errorf("%s: hop %d: want one responder of %v, got %v", name, i+1, w, h.Responders)
			continue
		}
		if a := netip.MustParseAddr(h.Responders[0].Address); !w.Has(a) {
			t.Errorf("%s: hop %d answered from %s, want one of %v", name, i+1, a, w)
		}
	}
}

// TestLabTrace: every protocol × family from both clients reaches the
// destination with the hop list the lab's routing implies; the silent hop
// is "*"; the UDP/53 trace's instance is the one `anycheck id` finds from
// the same source port.
func TestLabTrace(t *testing.T) {
	ac := lab.StartAnycast(t)
	for _, client := range ac.Clients() {
		for _, f := range families() {
			want := ac.ExpectedPath(client, f)
			inst, _ := ac.InstanceOf(client)
			for _, proto := range []string{"udp", "icmp", "tcp"} {
				name := fmt.Sprintf("%s/%v/%s", client, f, proto)
				// Routers keep Linux's default ICMP rate limit (burst 6 per
				// destination, then 1/s): three protocols × 2 probes per hop
				// fit in one burst.
				out, errOut, code := labRun(t, ac, client, "trace", "-P", proto, "-q", "2", "--asn", "none", "-n", "-o", "json", "-w", "1s", "-m", "12", ac.ServiceAddr(f).String())
				if code != 0 {
					t.Errorf("%s: exit %d: %s", name, code, errOut)
					continue
				}
				p := parseTrace(t, name, out)
				checkHops(t, name, p, want)
				if p.Mode != "raw" {
					t.Errorf("%s: as root the mode should be raw, got %s", name, p.Mode)
				}
				if proto == "icmp" {
					continue
				}
				if p.Instance == nil || p.Instance.NSID != inst.NSID {
					t.Errorf("%s: trace instance %+v, want %s (%s)", name, p.Instance, inst.Node, inst.NSID)
					continue
				}
				// The same flow, asked by `anycheck id`: same instance.
				args := []string{"id", "-o", "json", "--sport", fmt.Sprint(p.Flow.Sport), ac.ServiceAddr(f).String()}
				if proto == "tcp" {
					args = append(args, "--tcp")
				}
				idOut, idErr, code := labRun(t, ac, client, args...)
				if code != 0 {
					t.Errorf("%s: id exit %d: %s", name, code, idErr)
					continue
				}
				var doc idDoc
				if err := json.Unmarshal([]byte(idOut), &doc); err != nil {
					t.Fatal(err)
				}
				fl := doc.Results[0].Flows[0]
				if fl.Flow.Sport != p.Flow.Sport || fl.Instance.NSID != p.Instance.NSID {
					t.Errorf("%s: id from %s says %q, trace from port %d says %q", name, fl.Flow, fl.Instance.NSID, p.Flow.Sport, p.Instance.NSID)
				}
			}
		}
	}
}

// TestLabTraceDiamond: through e1's ECMP diamond, one flow (one source port)
// always takes the same middle hop, while 16 flows show both branches — and
// so does Debian's classic traceroute varying its ports, which proves the
// diamond really balances.
func TestLabTraceDiamond(t *testing.T) {
	ac := lab.StartAnycast(t)
	// 36 traces through the same routers: every reply is needed, so the
	// routers on c1's path answer without ICMP rate limits here.
	for _, r := range []string{"e1", "m1", "m2", "r1", "ra"} {
		if err := ac.DisableICMPRateLimit(r); err != nil {
			t.Fatal(err)
		}
	}
	want := ac.ExpectedPath("c1", lab.IPv4)
	mid := -1
	for i, h := range want {
		if len(h.Nodes) == 2 {
			mid = i
		}
	}
	if mid < 0 {
		t.Fatalf("lab path from c1 has no diamond: %v", want)
	}
	dst := ac.ServiceV4.String()
	middle := func(args ...string) string {
		out, errOut, code := labRun(t, ac, "c1", append([]string{"trace", "--asn", "none", "-n", "-q", "1", "-o", "json", "-m", "8"}, append(args, dst)...)...)
		if code != 0 {
			t.Fatalf("trace %v: exit %d: %s", args, code, errOut)
		}
		p := parseTrace(t, "diamond", out)
		if len(p.Hops) <= mid || len(p.Hops[mid].Responders) != 1 {
			t.Fatalf("trace %v: middle hop missing: %s", args, out)
		}
		return p.Hops[mid].Responders[0].Address
	}
	first := middle("--sport", "41000")
	for i := range 19 {
		if got := middle("--sport", "41000"); got != first {
			t.Fatalf("run %d of one flow took %s, run 0 took %s: not Paris", i+2, got, first)
		}
	}
	both := map[string]bool{}
	for i := range 16 {
		both[middle("--sport", fmt.Sprint(42000+i*7))] = true
	}
	if len(both) != 2 {
		t.Errorf("16 flows should show both middle hops %v, saw %v", want[mid], both)
	}

	// Classic traceroute: one probe per hop, a new port per probe.
	classic := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 8 {
		out, _, err := ac.Run(ctx, "c1", "traceroute", "-n", "-U", "-q", "4", "-N", "1", "-w", "1", "-m", fmt.Sprint(mid+1), "-f", fmt.Sprint(mid+1), "-p", fmt.Sprint(33434+i*40), dst)
		if err != nil {
			t.Fatalf("traceroute: %v: %s", err, out)
		}
		for _, w := range strings.Fields(string(out)) {
			if a, err := netip.ParseAddr(w); err == nil && want[mid].Has(a) {
				classic[w] = true
			}
		}
	}
	if len(classic) != 2 {
		t.Errorf("classic traceroute should see both middle hops, saw %v", classic)
	}
}

// TestLabTraceUnprivileged: --mode socket as an unprivileged user traces
// over UDP and ICMP (ping sockets allowed for the user's group).
func TestLabTraceUnprivileged(t *testing.T) {
	ac := lab.StartAnycast(t)
	if err := ac.SetSysctl("c2", "net.ipv4.ping_group_range", "0 2147483647"); err != nil {
		t.Fatal(err)
	}
	nobody := lab.User{UID: 65534, GID: 65534}
	for _, f := range families() {
		want := ac.ExpectedPath("c2", f)
		for _, proto := range []string{"udp", "icmp"} {
			name := fmt.Sprintf("socket/%v/%s", f, proto)
			out, errOut, code := labRunAs(t, ac, "c2", nobody, "trace", "--mode", "socket", "-P", proto, "-q", "2", "--asn", "none", "-n", "-o", "json", "-w", "1s", "-m", "12", ac.ServiceAddr(f).String())
			if code != 0 {
				t.Errorf("%s: exit %d: %s", name, code, errOut)
				continue
			}
			p := parseTrace(t, name, out)
			if p.Mode != "socket" {
				t.Errorf("%s: mode %s", name, p.Mode)
			}
			checkHops(t, name, p, want)
		}
	}
	// TCP needs raw sockets: exit 4 with the setcap hint, nothing on stdout.
	out, errOut, code := labRunAs(t, ac, "c2", nobody, "trace", "-P", "tcp", "--asn", "none", "-n", ac.ServiceV4.String())
	if code != 4 || out != "" || !strings.Contains(errOut, "setcap cap_net_raw+ep") {
		t.Errorf("unprivileged tcp trace: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestLabTraceConcurrent: two traces started at the same moment from the
// same client both come out right (each matches only its own replies).
func TestLabTraceConcurrent(t *testing.T) {
	ac := lab.StartAnycast(t)
	want := ac.ExpectedPath("c1", lab.IPv4)
	var wg sync.WaitGroup
	outs := make([]string, 2)
	codes := make([]int, 2)
	protos := []string{"udp", "udp"}
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Two probes per hop each: both traces fit in the routers'
			// default ICMP burst of 6.
			outs[i], _, codes[i] = labRun(t, ac, "c1", "trace", "-P", protos[i], "-q", "2", "--asn", "none", "-n", "-o", "json", "-m", "12", ac.ServiceV4.String())
		}()
	}
	wg.Wait()
	for i := range 2 {
		if codes[i] != 0 {
			t.Errorf("trace %d: exit %d", i, codes[i])
			continue
		}
		checkHops(t, fmt.Sprintf("concurrent %d", i), parseTrace(t, "concurrent", outs[i]), want)
	}
}

// TestLabTraceASN: a whois server and an origin-zone DNS server run in the
// lab's services namespace; a trace from c1 shows the right origin AS for
// every hop with each of cymru, cymru-dns and file: sources.
func TestLabTraceASN(t *testing.T) {
	ac := lab.StartAnycast(t)
	whoisAddr, dnsAddr, table := startLabWhois(t, ac)
	pfx2as := writePfx2as(t, table)
	asNames := map[uint32]string{}
	for _, as := range ac.ASes() {
		asNames[as.Number] = as.Name
	}

	for _, src := range [][]string{
		{"--asn", "cymru", "--whois-server", whoisAddr, "--no-cache"},
		{"--asn", "cymru-dns", "--asn-dns-server", dnsAddr, "--no-cache"},
		{"--asn", "file:" + pfx2as},
	} {
		for _, tc := range []struct {
			client string
			f      lab.Family
		}{{"c1", lab.IPv4}, {"c1", lab.IPv6}, {"c2", lab.IPv4}, {"c2", lab.IPv6}} {
			f := tc.f
			name := fmt.Sprintf("%s/%s/%v", src[1], tc.client, f)
			// Three sources × one family share the routers' ICMP burst of 6.
			out, errOut, code := labRun(t, ac, tc.client, append([]string{"trace", "-q", "2", "-n", "-o", "json", "-m", "12", ac.ServiceAddr(f).String()}, src...)...)
			if code != 0 {
				t.Errorf("%s: exit %d: %s", name, code, errOut)
				continue
			}
			p := parseTrace(t, name, out)
			for _, h := range p.Hops {
				for _, r := range h.Responders {
					a := netip.MustParseAddr(r.Address)
					wantAS, single := ac.OriginAS(a)
					if r.Origin == nil || len(r.Origin.ASNs) == 0 {
						t.Errorf("%s: hop %d %s has no origin", name, h.TTL, a)
						continue
					}
					if single && (len(r.Origin.ASNs) != 1 || r.Origin.ASNs[0] != wantAS) {
						t.Errorf("%s: hop %d %s: origins %v, want AS%d", name, h.TTL, a, r.Origin.ASNs, wantAS)
					}
					if wantName := asNames[wantAS]; single && !strings.HasPrefix(src[1], "file:") && r.Origin.ASName != wantName {
						t.Errorf("%s: hop %d %s: AS name %q, want %q", name, h.TTL, a, r.Origin.ASName, wantName)
					}
					if !single && len(r.Origin.ASNs) < 2 {
						t.Errorf("%s: hop %d %s: the anycast prefix should show its origins, got %v", name, h.TTL, a, r.Origin.ASNs)
					}
				}
			}
			// Each client's ISP, then its instance's AS (the multi-origin
			// anycast prefix continues it).
			if want := ac.ExpectedASPath(tc.client); fmt.Sprint(p.ASPath) != fmt.Sprint(want) {
				t.Errorf("%s: as path %v, want %v", name, p.ASPath, want)
			}
		}
	}
}

// TestLabTraceNames: reverse names for every hop come from the lab's DNS
// server (--dns-server), looked up in parallel after probing.
func TestLabTraceNames(t *testing.T) {
	ac := lab.StartAnycast(t)
	_, dnsAddr, _ := startLabWhois(t, ac)
	for _, f := range families() {
		out, errOut, code := labRun(t, ac, "c1", "trace", "--asn", "none", "--dns-server", dnsAddr, "-o", "json", "-m", "12", ac.ServiceAddr(f).String())
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", f, code, errOut)
		}
		p := parseTrace(t, "names", out)
		for _, h := range p.Hops {
			for _, r := range h.Responders {
				node := ac.NodeOf(netip.MustParseAddr(r.Address))
				want := node + ".lab.example"
				if !slices.Contains(labRouters, node) {
					want = "" // the anycast address has no PTR in the lab
				}
				if r.Name != want {
					t.Errorf("%v: hop %d %s: name %q, want %q", f, h.TTL, r.Address, r.Name, want)
				}
			}
		}
	}

	// A whois server that is not there: the trace is complete, the failure
	// is in errors and on stderr, and the exit status is the trace's.
	closed := netip.AddrPortFrom(ac.ServicesAddr(lab.IPv4), 4444).String()
	out, errOut, code := labRun(t, ac, "c1", "trace", "-n", "--whois-server", closed, "--no-cache", "-o", "json", ac.ServiceV4.String())
	if code != 0 {
		t.Errorf("failed enrichment changed the exit status to %d: %s", code, errOut)
	}
	p := parseTrace(t, "whois down", out)
	if !p.Reached || p.Instance == nil || len(p.ASPath) != 0 {
		t.Errorf("trace should be intact without AS data: %s", out)
	}
	if !strings.Contains(out, `"stage": "whois"`) || !strings.Contains(errOut, closed) {
		t.Errorf("the whois failure should be reported in errors and on stderr: %s / %s", out, errOut)
	}
}

// waitTCP waits (bounded) until addr:port accepts connections from node.
func waitTCP(t *testing.T, ac *lab.Anycast, node string, addr netip.Addr, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _, err := ac.Run(ctx, node, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", addr, port))
		cancel()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s:%d does not accept connections from %s", addr, port, node)
}

// TestLabTraceInterrupted: Ctrl-C during a trace prints the hops measured so
// far as valid JSON marked interrupted, and exits 130.
func TestLabTraceInterrupted(t *testing.T) {
	ac := lab.StartAnycast(t)
	// 192.0.2.99 is routed to instance A's host, which holds no such
	// address and does not forward: the hops answer, the target never does.
	for _, format := range []string{"json", "jsonl", "text"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := ac.Command(ctx, "c1", lab.Binary(t), "trace", "--asn", "none", "-n", "-q", "1", "-w", "20s", "-o", format, "192.0.2.99")
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := cmd.Wait()
		cancel()
		if time.Since(start) > 3*time.Second {
			t.Errorf("%s: took %s to stop after Ctrl-C", format, time.Since(start))
		}
		if code := exitStatus(t, err); code != 130 {
			t.Errorf("%s: exit %d, want 130; stderr %q", format, code, errOut.String())
		}
		switch format {
		case "json":
			p := parseTrace(t, "interrupted", out.String())
			if p.StopReason != "interrupted" || len(p.Hops) < 4 {
				t.Errorf("want the answered hops and stop_reason interrupted: %s", out.String())
			}
			if !strings.Contains(out.String(), `"interrupted": true`) {
				t.Errorf("document not marked interrupted")
			}
		case "jsonl":
			reporttest.Check(t, []byte(out.String()), true)
			if !strings.Contains(out.String(), `"type":"hop"`) || !strings.Contains(out.String(), `"type":"end"`) {
				t.Errorf("jsonl should stream hops and end: %s", out.String())
			}
		case "text":
			if !strings.Contains(out.String(), "198.51.100.1") || !strings.Contains(out.String(), "not reached: interrupted") {
				t.Errorf("text should show the hops so far: %s", out.String())
			}
		}
	}
}

// TestLabTraceTCP53Delayed: on the lab with real paths' delays, where a
// SYN reaches the server long before the RST our kernel sends on its
// SYN-ACK, a TCP/53 trace still gets a SYN-ACK for every probe at the
// destination (none lost to the half-open connection of another probe, no
// "(rate-limited?)"), and the identity query over TCP from the flow's port
// names the instance: IPv4 and IPv6, from both clients.
func TestLabTraceTCP53Delayed(t *testing.T) {
	ac := lab.StartAnycastDelayed(t)
	for _, client := range ac.Clients() {
		for _, f := range families() {
			name := fmt.Sprintf("%s/%v", client, f)
			inst, _ := ac.InstanceOf(client)
			out, errOut, code := labRun(t, ac, client, "trace", "-P", "tcp", "--asn", "none", "-n", "-o", "json", "-m", "12", ac.ServiceAddr(f).String())
			if code != 0 {
				t.Errorf("%s: exit %d: %s", name, code, errOut)
				continue
			}
			p := parseTrace(t, name, out)
			checkHops(t, name, p, ac.ExpectedPath(client, f))
			if p.DestTTL == 0 || p.DestTTL > len(p.Hops) {
				continue
			}
			dest := p.Hops[p.DestTTL-1]
			for i, pr := range dest.Probes {
				if pr.Reply == nil || pr.Reply.Kind != "syn-ack" {
					t.Errorf("%s: destination probe %d: %+v, want a syn-ack", name, i, pr.Reply)
				}
			}
			if dest.RateLimited {
				t.Errorf("%s: the destination is shown rate limited", name)
			}
			if p.Instance == nil || p.Instance.NSID != inst.NSID {
				t.Errorf("%s: instance %+v, want %s", name, p.Instance, inst.NSID)
			}
		}
	}
}
