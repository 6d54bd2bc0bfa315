package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycheck/anycheck/census"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/internal/report/reporttest"
)

const censusFixtures = "../../testdata/census/"

// census logs on real logs of the lab's instances: NSD's and Knot's dnstap
// (named by their identities) and tcpdump -i any on NSD's node.
func TestCensusLogs(t *testing.T) {
	d := testDeps()
	nsd, knot, cap := censusFixtures+"nsd-i1.dnstap", censusFixtures+"knot-i2.dnstap", censusFixtures+"tcpdump-any-i1.pcap"
	r := runCLI(t, d, "census", "logs", "--prefix-len", "32", nsd, knot)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"census logs of 192.0.2.53, 2001:db8:53::53: 2 instances, 28 queries from ",
		"i1-nsd ", "i2-knot ",
		"198.51.100.10/32", "198.51.100.74/32",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, r.stdout)
		}
	}
	// The clients land where the lab routes them: c1 on i1, c2 on i2.
	r = runCLI(t, d, "census", "logs", "--prefix-len", "32", "-o", "json", nsd, knot)
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Results []report.CensusClient `json:"results"`
		Census  report.CensusSummary  `json:"census"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	for _, c := range doc.Results {
		where[c.Prefix] = deref(c.Instance)
	}
	if where["198.51.100.10/32"] != "i1-nsd" || where["198.51.100.74/32"] != "i2-knot" {
		t.Errorf("clients at %v", where)
	}
	if len(doc.Census.Inputs) != 2 || doc.Census.Inputs[0].Format != "dnstap" || doc.Census.Inputs[0].Responses == 0 {
		t.Errorf("inputs %+v", doc.Census.Inputs)
	}
	// A capture is named with --instance; jsonl and csv.
	r = runCLI(t, d, "census", "logs", "--instance", "a="+cap, "-o", "jsonl")
	reporttest.Check(t, []byte(r.stdout), true)
	if r.code != ExitOK || !strings.Contains(r.stdout, `"instance":"a"`) {
		t.Errorf("jsonl exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, d, "census", "logs", "--instance", "a="+cap, "-o", "csv")
	if !strings.HasPrefix(r.stdout, "prefix,sample,family,origin_as,country,instance,queries,") || !strings.Contains(r.stdout, "198.51.100.0/24,198.51.100.10,IPv4,,,a,10,") {
		t.Errorf("csv:\n%s", r.stdout)
	}
}

func TestCensusLogsBadInput(t *testing.T) {
	d := testDeps()
	dir := t.TempDir()
	notLog := filepath.Join(dir, "x.json")
	os.WriteFile(notLog, []byte(`{"schema":"anycheck/v1"}`), 0o644)
	data, _ := os.ReadFile(censusFixtures + "knot-i2.dnstap")
	cut := filepath.Join(dir, "cut.dnstap")
	os.WriteFile(cut, data[:len(data)-40], 0o644)
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"census", "logs"}, ExitUsage, "no logs"},
		{[]string{"census", "logs", filepath.Join(dir, "missing")}, ExitUsage, "no such file"},
		{[]string{"census", "logs", notLog}, ExitUsage, "not a dnstap (Frame Streams), pcap or pcapng file"},
		{[]string{"census", "logs", "--instance", "noequals"}, ExitUsage, "want NAME=FILE"},
		{[]string{"census", "logs", "--prefix-len", "33", cut}, ExitUsage, "IPv4 prefix length"},
		{[]string{"census", "logs", "--prefix-len", "24,129", cut}, ExitUsage, "IPv6 prefix length"},
		{[]string{"census", "logs", "--split-window", "0s", cut}, ExitUsage, "--split-window"},
		// A log cut short: what it holds is reported, the cut is said (exit 3).
		{[]string{"census", "logs", cut}, ExitPartial, "ends in the middle of a record"},
		// A capture names no instance until its server answered an identity query.
		{[]string{"census", "logs", "-o", "json", censusFixtures + "tcpdump-any-i1.pcap"}, ExitPartial, "without a server identity"},
	} {
		r := runCLI(t, d, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.err)
		}
		if tc.code == ExitUsage && r.stdout != "" {
			t.Errorf("%v: usage error with output %q", tc.args, r.stdout)
		}
	}
}

// censusNet is an in-process anycast service for the active census: echo
// requests sent from the anycast address come back as replies at the site
// whose catchment the target is in.
type censusNet struct {
	mu        sync.Mutex
	catchment map[netip.Addr]string // target → site; others do not answer
	sites     map[string]*census2Conn
	sent      int
}

type inReply struct {
	msg  []byte
	from netip.Addr
}

type census2Conn struct {
	net   *censusNet
	site  string
	in    chan inReply
	done  chan struct{}
	once  sync.Once
	count int
}

func newCensusNet(catchment map[string]string) *censusNet {
	n := &censusNet{catchment: map[netip.Addr]string{}, sites: map[string]*census2Conn{}}
	for t, s := range catchment {
		n.catchment[netip.MustParseAddr(t)] = s
		if n.sites[s] == nil {
			n.sites[s] = &census2Conn{net: n, site: s, in: make(chan inReply, 100), done: make(chan struct{})}
		}
	}
	return n
}

// open is deps.censusConn: a listener gets its site's conn (by the
// --site the test gives in order), a sender one that routes replies.
func (n *censusNet) open(site string) func(netip.Addr, bool) (census.Conn, error) {
	return func(anycast netip.Addr, replies bool) (census.Conn, error) {
		if replies {
			return n.sites[site], nil
		}
		return &census2Conn{net: n, site: site, done: make(chan struct{})}, nil
	}
}

func (c *census2Conn) WriteTo(msg []byte, dst netip.Addr) error {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.net.sent++
	site, ok := c.net.catchment[dst]
	if !ok {
		return nil // no reply
	}
	reply := append([]byte{0, 0}, msg[2:]...) // type echo reply, code 0
	l := c.net.sites[site]
	l.count++
	l.in <- inReply{reply, dst}
	// A stray ping without the census payload.
	l.in <- inReply{[]byte{0, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'}, dst}
	return nil
}

func (c *census2Conn) ReadFrom(buf []byte) (int, netip.Addr, int, error) {
	select {
	case m := <-c.in:
		return copy(buf, m.msg), m.from, 60, nil
	case <-c.done:
		return 0, netip.Addr{}, -1, os.ErrDeadlineExceeded
	}
}

func (c *census2Conn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && t.Before(time.Now()) {
		c.once.Do(func() { close(c.done) })
	}
	return nil
}

func (c *census2Conn) Close() error { return nil }

func censusTestDeps(n *censusNet, site string) *deps {
	d := testDeps()
	d.censusConn = n.open(site)
	d.interfacePrefixes = func() ([]netip.Prefix, error) {
		return []netip.Prefix{netip.MustParsePrefix("192.0.2.53/32"), netip.MustParsePrefix("127.0.0.1/8")}, nil
	}
	return d
}

// The whole active census in process: listeners at two sites, a sender at
// one, the report joining their files.
func TestCensusActive(t *testing.T) {
	n := newCensusNet(map[string]string{"198.51.100.10": "a", "198.51.100.74": "b", "203.0.113.1": "b"})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	outs := map[string]*bytes.Buffer{}
	codes := map[string]int{}
	var mu sync.Mutex
	for _, site := range []string{"a", "b"} {
		var out, errb bytes.Buffer
		outs[site] = &out
		wg.Go(func() {
			code := run(ctx, []string{"census", "listen", "--anycast", "192.0.2.53", "--site", site, "--census", "2a"},
				&streams{in: strings.NewReader(""), out: &out, err: &errb}, censusTestDeps(n, site))
			mu.Lock()
			codes[site] = code
			mu.Unlock()
		})
	}
	r := runCLI(t, censusTestDeps(n, "a"), "census", "send", "--anycast", "192.0.2.53", "--site", "a", "--census", "2a",
		"--rate", "1000", "-o", "jsonl", "198.51.100.10", "198.51.100.74", "203.0.113.0/24", "192.0.2.99", "2001:db8::1")
	if r.code != ExitOK {
		t.Fatalf("send: exit %d: %s", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), true)
	if n.sent != 4 || !strings.Contains(r.stderr, "1 targets of the other address family") {
		t.Errorf("%d sent (want 4: the IPv6 target left out); stderr %s", n.sent, r.stderr)
	}
	sentFile := filepath.Join(dir, "sent.jsonl")
	os.WriteFile(sentFile, []byte(r.stdout), 0o644)
	// Wait (bounded) until the listeners have read their replies.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (len(n.sites["a"].in) > 0 || len(n.sites["b"].in) > 0) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	wg.Wait()
	var files []string
	for _, site := range []string{"a", "b"} {
		out := outs[site]
		if codes[site] != ExitOK {
			t.Errorf("listener %s: exit %d", site, codes[site])
		}
		reporttest.Check(t, out.Bytes(), true)
		f := filepath.Join(dir, site+".jsonl")
		os.WriteFile(f, out.Bytes(), 0o644)
		files = append(files, f)
	}
	if !strings.Contains(outs["a"].String(), `"no_payload":1`) {
		t.Errorf("listener a did not count the stray ping: %s", outs["a"].String())
	}
	r = runCLI(t, testDeps(), append([]string{"census", "report", "-o", "json"}, append(files, sentFile)...)...)
	if r.code != ExitOK {
		t.Fatalf("report: exit %d: %s", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Results []report.CensusClient `json:"results"`
		Census  report.CensusSummary  `json:"census"`
	}
	json.Unmarshal([]byte(r.stdout), &doc)
	where := map[string]string{}
	for _, c := range doc.Results {
		where[c.Prefix] = deref(c.Instance) + map[bool]string{true: " split"}[c.Split]
	}
	// 198.51.100.10 (a) and .74 (b) share a /24: at several sites.
	if where["198.51.100.0/24"] != "a split" || where["203.0.113.0/24"] != "b" || where["192.0.2.0/24"] != "" ||
		doc.Census.Unresponsive != 1 || doc.Census.Targets != 3 || deref(doc.Census.Census) != "000000000000002a" {
		t.Errorf("catchment %v, summary %+v", where, doc.Census)
	}
	r = runCLI(t, testDeps(), append([]string{"census", "report", "--prefix-len", "32"}, append(files, sentFile)...)...)
	for _, want := range []string{"census report of 192.0.2.53: census 000000000000002a, sent by a to 4 target prefixes; replies at 2 sites",
		"unresponsive: 1 prefix of 4 sent to", "198.51.100.10/32", "198.51.100.74/32"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report text lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCensusSendRefuses(t *testing.T) {
	n := newCensusNet(map[string]string{"198.51.100.10": "a"})
	d := censusTestDeps(n, "a")
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--anycast", "192.0.2.54", "--site", "a", "198.51.100.10"}, ExitUsage, "does not hold that address"},
		{[]string{"--site", "a", "198.51.100.10"}, ExitUsage, "--anycast"},
		{[]string{"--anycast", "192.0.2.53", "198.51.100.10"}, ExitUsage, "--site"},
		{[]string{"--anycast", "192.0.2.53", "--site", "a b", "198.51.100.10"}, ExitUsage, "--site"},
		{[]string{"--anycast", "192.0.2.53", "--site", "a", "--rate", "1000000", "198.51.100.10"}, ExitUsage, "--rate"},
		{[]string{"--anycast", "192.0.2.53", "--site", "a", "--rate", "0", "198.51.100.10"}, ExitUsage, "--rate"},
		{[]string{"--anycast", "192.0.2.53", "--site", "a", "--rate", "NaN", "198.51.100.10"}, ExitUsage, "--rate"},
		{[]string{"--anycast", "192.0.2.53", "--site", "a", "--rate", "1e-300", "198.51.100.10"}, ExitUsage, "--rate"},
		{[]string{"--anycast", "192.0.2.53", "--site", "a", "--census", "xyz", "198.51.100.10"}, ExitUsage, "census id"},
		{[]string{"--anycast", "192.0.2.53", "--site", "a", "not-an-address"}, ExitUsage, "no address or prefix"},
		{[]string{"--anycast", "192.0.2.53", "--site", "a"}, ExitUsage, "no targets"},
		// 256 targets in a /16 is more than --max-targets 100: refused without --yes.
		{[]string{"--anycast", "192.0.2.53", "--site", "a", "--max-targets", "100", "198.51.0.0/16"}, ExitUsage, "confirm with --yes"},
	} {
		r := runCLI(t, d, append([]string{"census", "send"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.err) || r.stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want %d and %q", tc.args, r.code, r.stderr, r.stdout, tc.code, tc.err)
		}
	}
	if n.sent != 0 {
		t.Errorf("%d requests sent by refused censuses", n.sent)
	}
	// With --yes it goes.
	r := runCLI(t, d, "census", "send", "--anycast", "192.0.2.53", "--site", "a", "--max-targets", "100", "--yes", "--rate", "100000", "198.51.0.0/16")
	if r.code != ExitOK || n.sent != 256 || !strings.Contains(r.stdout, "256 of 256 targets sent") {
		t.Errorf("--yes: exit %d, %d sent: %s %s", r.code, n.sent, r.stdout, r.stderr)
	}
	// No raw sockets: exit 4 with the setcap hint.
	d.censusConn = func(netip.Addr, bool) (census.Conn, error) { return nil, os.ErrPermission }
	r = runCLI(t, d, "census", "send", "--anycast", "192.0.2.53", "--site", "a", "198.51.100.10")
	if r.code != ExitPermission || !strings.Contains(r.stderr, "setcap cap_net_raw+ep") {
		t.Errorf("no privilege: exit %d, %s", r.code, r.stderr)
	}
}

// Verfploeter's CSV (a file written here in its format) is read by census
// report, its AS and country columns as the origins.
func TestCensusReportVerfploeter(t *testing.T) {
	r := runCLI(t, testDeps(), "census", "report", "-o", "json", censusFixtures+"verfploeter.csv")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Results []report.CensusClient `json:"results"`
		Census  report.CensusSummary  `json:"census"`
	}
	json.Unmarshal([]byte(r.stdout), &doc)
	if len(doc.Census.Instances) != 3 || doc.Census.Queries != 6 || len(doc.Results) != 3 || doc.Census.Affinity.Split != 2 {
		t.Fatalf("summary %+v, %d rows", doc.Census, len(doc.Results))
	}
	for _, c := range doc.Results {
		if c.Origin == nil || len(c.Origin.ASNs) != 1 {
			t.Errorf("%s: origin %+v, want the file's AS", c.Prefix, c.Origin)
		}
	}
	if r := runCLI(t, testDeps(), "census", "report", censusFixtures+"nsd-i1.dnstap"); r.code != ExitUsage || !strings.Contains(r.stderr, "not a census file") {
		t.Errorf("a dnstap file: exit %d, %s", r.code, r.stderr)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// With the instances' and clients' places, every client gets its distance
// and the instances their median; a client nearer to another instance is
// counted.
func TestCensusLogsDistances(t *testing.T) {
	locs := filepath.Join(t.TempDir(), "clients.csv")
	os.WriteFile(locs, []byte("# prefix,lat,lon\n198.51.100.10/32,52.37,4.90\n198.51.100.74,50.11,8.68\n"), 0o644)
	r := runCLI(t, testDeps(), "census", "logs", "--prefix-len", "32", "-o", "json", "--site-location", "i1-nsd=AMS",
		"--site-location", "i2-knot=50.03,8.57", "--client-locations", locs, censusFixtures+"nsd-i1.dnstap", censusFixtures+"knot-i2.dnstap")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Results []report.CensusClient `json:"results"`
		Census  report.CensusSummary  `json:"census"`
	}
	json.Unmarshal([]byte(r.stdout), &doc)
	for _, c := range doc.Results {
		switch c.Prefix {
		case "198.51.100.10/32", "198.51.100.74/32":
			if c.Distance == nil || c.Distance.InstanceKm > 30 || c.Distance.Nearest != deref(c.Instance) {
				t.Errorf("%s at %s: distance %+v", c.Prefix, deref(c.Instance), c.Distance)
			}
		default:
			if c.Distance != nil {
				t.Errorf("%s has no known place but a distance %+v", c.Prefix, c.Distance)
			}
		}
	}
	for _, in := range doc.Census.Instances {
		if in.MedianKm == nil || in.NotNearest == nil || *in.NotNearest != 0 {
			t.Errorf("instance %+v", in)
		}
	}
	for _, bad := range [][]string{
		{"--site-location", "i1-nsd=XYZ1", "--client-locations", locs},
		{"--site-location", "nosuch=AMS", "--client-locations", locs},
		{"--site-location", "i1-nsd=AMS"},
	} {
		args := append([]string{"census", "logs"}, append(bad, censusFixtures+"nsd-i1.dnstap")...)
		if r := runCLI(t, testDeps(), args...); r.code != ExitUsage || r.stdout != "" {
			t.Errorf("%v: exit %d %s", bad, r.code, r.stderr)
		}
	}
}

// compare reads census documents (JSON and JSONL) next to vantage data:
// each client prefix is a line towards the service, at its instance; a
// split client is split.
func TestCompareReadsCensus(t *testing.T) {
	dir := t.TempDir()
	args := []string{"census", "logs", "--prefix-len", "32", censusFixtures + "nsd-i1.dnstap", censusFixtures + "knot-i2.dnstap"}
	for _, format := range []string{"json", "jsonl"} {
		r := runCLI(t, testDeps(), append(args, "-o", format)...)
		f := filepath.Join(dir, "census."+format)
		os.WriteFile(f, []byte(r.stdout), 0o644)
		r = runCLI(t, testDeps(), "compare", "--asn", "none", "-o", "json", f)
		if r.code != ExitOK {
			t.Fatalf("%s: compare exit %d: %s", format, r.code, r.stderr)
		}
		reporttest.Check(t, []byte(r.stdout), false)
		var doc struct {
			Results []struct {
				Vantage struct {
					Key string `json:"key"`
				} `json:"vantage"`
				Target   string `json:"target"`
				Instance struct {
					Name   *string
					Source string
				}
			} `json:"results"`
		}
		json.Unmarshal([]byte(r.stdout), &doc)
		got := map[string]string{}
		for _, row := range doc.Results {
			got[row.Vantage.Key+" "+row.Target] = deref(row.Instance.Name) + "/" + row.Instance.Source
		}
		if got["census:198.51.100.10/32 192.0.2.53"] != "i1-nsd/census" || got["census:198.51.100.74/32 192.0.2.53"] != "i2-knot/census" ||
			got["census:2001:db8:101::/48 2001:db8:53::53"] != "i2-knot/census" {
			t.Errorf("%s: compare lines %v", format, got)
		}
	}
}

// census logs --instance NAME=- reads that instance's log from standard
// input (a pipe from zcat or ssh); a bare - is named by its log. Only one
// input can be standard input: a second is a usage error naming both.
func TestCensusLogsStdin(t *testing.T) {
	d := testDeps()
	nsd, knot := censusFixtures+"nsd-i1.dnstap", censusFixtures+"knot-i2.dnstap"
	knotData, err := os.ReadFile(knot)
	if err != nil {
		t.Fatal(err)
	}
	withStdin := func(in []byte, args ...string) result {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &streams{in: bytes.NewReader(in), out: &out, err: &errb}, d)
		return result{code, out.String(), errb.String()}
	}
	files := runCLI(t, d, "census", "logs", "--prefix-len", "32", "-o", "csv", "--instance", "i1="+nsd, "--instance", "i2="+knot)
	piped := withStdin(knotData, "census", "logs", "--prefix-len", "32", "-o", "csv", "--instance", "i1="+nsd, "--instance", "i2=-")
	if piped.code != ExitOK || piped.stdout != files.stdout || files.stdout == "" {
		t.Errorf("--instance i2=-: exit %d, stderr %q\n%s\nwant (from the file):\n%s", piped.code, piped.stderr, piped.stdout, files.stdout)
	}
	// A bare - is named by its log (Knot's identity), as a file is.
	piped = withStdin(knotData, "census", "logs", "--prefix-len", "32", "-o", "json", nsd, "-")
	reporttest.Check(t, []byte(piped.stdout), false)
	if piped.code != ExitOK || !strings.Contains(piped.stdout, `"i2-knot"`) || !strings.Contains(piped.stdout, `"file": "-"`) {
		t.Errorf("bare -: exit %d, stderr %q\n%s", piped.code, piped.stderr, piped.stdout)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--instance", "a=-", "--instance", "b=-"}, "standard input (-) can be read once: --instance a=- and --instance b=-"},
		{[]string{"--instance", "a=-", "-"}, "standard input (-) can be read once: --instance a=- and -"},
		{[]string{"-", "-"}, "standard input (-) can be read once: - and -"},
	} {
		r := withStdin(knotData, append([]string{"census", "logs"}, tc.args...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.err) || r.stdout != "" {
			t.Errorf("%v: exit %d, stderr %q; want a usage error %q", tc.args, r.code, r.stderr, tc.err)
		}
	}
	// What is on standard input must be a log.
	r := withStdin([]byte(`{"schema":"anycheck/v2"}`), "census", "logs", "--instance", "a=-")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "standard input: ") || !strings.Contains(r.stderr, "not a dnstap") {
		t.Errorf("junk on stdin: exit %d, stderr %q", r.code, r.stderr)
	}
}
