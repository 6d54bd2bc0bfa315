package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden %s (run go test ./internal/render -update to create): %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

// Fixtures: answers as the probe package returns them.

func answer(name string, st measure.Status, rtt time.Duration, txt ...string) measure.Answer {
	rc := 0
	switch st {
	case measure.StatusRefused:
		rc = 5
	case measure.StatusTimeout:
		rc = -1
	}
	return measure.Answer{Name: name, Transport: measure.UDP, Status: st, Rcode: rc, TXT: txt, RTT: rtt, Size: 80}
}

func idFixture(hostile bool) []report.IDTarget {
	a1 := answer(measure.NameHostnameBind, measure.StatusAnswered, 412*time.Microsecond, "i1.lab-a")
	a1.NSID = []byte("i1-nsd")
	a2 := answer(measure.NameIDServer, measure.StatusAnswered, 388*time.Microsecond, "i1.lab-a")
	a2.NSID = []byte("i1-nsd")
	a3 := answer(measure.NameVersionBind, measure.StatusRefused, 350*time.Microsecond)
	answers := []measure.Answer{a1, a2, a3}
	if hostile {
		answers[0].TXT = []string{"evil\x1b[31mred\x07\nline"}
		answers[0].NSID = []byte{0x1b, 0x5b, 0x32, 0x4a}
		answers[1].Suspicions = []measure.Suspicion{measure.SuspectRA, measure.SuspectClassNotCH}
	}
	id := measure.Identity{Instance: "i1-nsd", Source: "nsid", NSID: "i1-nsd", NSIDHex: "69312d6e7364", HostnameBind: "i1.lab-a", IDServer: "i1.lab-a"}
	if hostile {
		id = measure.Identity{Instance: "evil\x1b[31mred\x07\nline", Source: "hostname.bind", NSIDHex: "1b5b324a", HostnameBind: "evil\x1b[31mred\x07\nline"}
	}
	res := probe.Result{
		Target:   netip.MustParseAddrPort("192.0.2.53:53"),
		Source:   netip.MustParseAddrPort("203.0.113.10:40000"),
		Started:  t0,
		Answers:  answers,
		Identity: id,
	}
	return []report.IDTarget{report.FromIDRuns("192.0.2.53", res.Target, false, [][]probe.Result{{res}}, nil)}
}

func idDoc(targets []report.IDTarget) *report.Document {
	d := report.New(report.KindID, report.Tool{Name: "anycheck", Version: "test"}, t0, "vantage-1")
	d.AddSource("203.0.113.10:40000")
	d.Results = targets
	return d
}

func traceFixture() report.TraceResult {
	dst := netip.MustParseAddr("192.0.2.53")
	te := func(from string, rtt time.Duration, ttl int) *trace.Reply {
		return &trace.Reply{From: netip.MustParseAddr(from), RTT: rtt, Kind: trace.ReplyTimeExceeded, ICMPType: 11, ICMPCode: 0, ReplyTTL: 64 - ttl + 1, QuotedTTL: 1}
	}
	dnsAns := answer(measure.NameHostnameBind, measure.StatusAnswered, 1200*time.Microsecond, "i1.lab-a")
	dnsAns.NSID = []byte("i1-nsd")
	hop := func(ttl int, rs ...*trace.Reply) trace.Hop {
		h := trace.Hop{TTL: ttl}
		for i, r := range rs {
			h.Probes = append(h.Probes, trace.ProbeResult{Seq: i, Sent: t0, Reply: r})
		}
		return h
	}
	mpls := te("198.51.100.6", 900*time.Microsecond, 3)
	mpls.MPLS = []measure.MPLSLabel{{Label: 16001, TC: 0, S: true, TTL: 1}}
	destReply := func(rtt time.Duration) *trace.Reply {
		a := dnsAns
		a.RTT = rtt
		return &trace.Reply{From: dst, RTT: rtt, Kind: trace.ReplyDNS, ICMPType: -1, ICMPCode: -1, ReplyTTL: 60, QuotedTTL: -1, DNS: &a}
	}
	p := trace.Path{
		Flow: trace.Flow{Proto: trace.UDP, Src: netip.MustParseAddrPort("203.0.113.10:33512"), Dst: netip.MustParseAddrPort("192.0.2.53:53")},
		Mode: trace.ModeRaw, Started: t0, Elapsed: 15 * time.Millisecond,
		Hops: []trace.Hop{
			hop(1, te("203.0.113.1", 310*time.Microsecond, 1), te("203.0.113.1", 280*time.Microsecond, 1), te("203.0.113.1", 270*time.Microsecond, 1)),
			hop(2, nil, nil, nil),
			hop(3, mpls, te("198.51.100.6", 950*time.Microsecond, 3), nil),
			hop(4, destReply(1200*time.Microsecond), destReply(1100*time.Microsecond), destReply(1150*time.Microsecond)),
		},
		Reached: true, Stop: trace.StopReached, DestTTL: 4,
		Instance: &measure.Identity{Instance: "i1-nsd", Source: "nsid", NSID: "i1-nsd", NSIDHex: "69312d6e7364", HostnameBind: "i1.lab-a"},
		Answers:  []measure.Answer{dnsAns},
	}
	tp := report.FromPath(p, nil)
	origins := map[netip.Addr]whois.Origin{
		netip.MustParseAddr("203.0.113.1"):  {ASNs: []uint32{64500}, Prefix: netip.MustParsePrefix("203.0.113.0/24"), ASName: "LAB-ISP-ONE", Source: "cymru"},
		netip.MustParseAddr("203.0.113.10"): {ASNs: []uint32{64500}, Prefix: netip.MustParsePrefix("203.0.113.0/24"), ASName: "LAB-ISP-ONE", Source: "cymru"},
		netip.MustParseAddr("198.51.100.6"): {ASNs: []uint32{64510}, Prefix: netip.MustParsePrefix("198.51.100.0/24"), ASName: "LAB-TRANSIT", Source: "cymru"},
		dst:                                 {ASNs: []uint32{64520}, Prefix: netip.MustParsePrefix("192.0.2.0/24"), ASName: "LAB-ANYCAST\x1b[2J", Source: "cymru"},
	}
	tp.Enrich(origins, map[netip.Addr]string{netip.MustParseAddr("203.0.113.1"): "r1.lab.example"})
	_, facts := live.Path(p, origins)
	tp.SetPath(facts)
	return report.NewTraceResult("192.0.2.53", tp)
}

func TestIDTextGolden(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hostile bool
	}{{"id.txt", false}, {"id_hostile.txt", true}} {
		var b bytes.Buffer
		if err := IDText(&b, idFixture(tc.hostile)); err != nil {
			t.Fatal(err)
		}
		golden(t, tc.name, b.Bytes())
		if strings.ContainsAny(b.String(), "\x1b\x07") {
			t.Errorf("%s: control characters reached the terminal output:\n%q", tc.name, b.String())
		}
	}
}

func TestIDTextShowsInstanceAndDisagreement(t *testing.T) {
	targets := idFixture(false)
	targets[0].Flows[0].Runs[0].Instance.HostnameBind = "other"
	targets[0].Flows[0].Runs[0].Instance.Disagree = true
	var b bytes.Buffer
	if err := IDText(&b, targets); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "instance  i1-nsd") {
		t.Errorf("instance line missing:\n%s", out)
	}
	// Both are on the identity line; an NSID set apart from the host name
	// (as operators do on purpose) gets no note of its own on every run
	// (compare says it once per instance).
	if !strings.Contains(out, `(NSID "i1-nsd"; hostname.bind "other"`) || strings.Contains(out, "differ") {
		t.Errorf("the identity line should show both, without a note:\n%s", out)
	}
}

// A binary NSID has no text: the identity line shows its hex, never an
// empty quoted string.
func TestIDTextBinaryNSIDDisagreement(t *testing.T) {
	targets := idFixture(true)
	targets[0].Flows[0].Runs[0].Instance.Disagree = true
	var b bytes.Buffer
	if err := IDText(&b, targets); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, `NSID ""`) || !strings.Contains(out, `NSID hex 1b5b324a; hostname.bind "evil\x1b[31mred\x07\nline"`) {
		t.Errorf("binary NSID disagreement shown wrong:\n%s", out)
	}
}

// An RCODE without a status of its own is named once.
func TestIDTextOtherRcodeOnce(t *testing.T) {
	targets := idFixture(false)
	rc := 9
	a := &targets[0].Flows[0].Runs[0].Answers[2]
	a.Status, a.Rcode, a.Detail = "rcode", &rc, "rcode NOTAUTH (9)"
	var b bytes.Buffer
	if err := IDText(&b, targets); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Count(out, "rcode NOTAUTH (9)") != 1 || strings.Contains(out, "rcode 9") {
		t.Errorf("rcode shown twice or not at all:\n%s", out)
	}
}

// A failed target says why, not "every query timed out" whatever happened.
func TestIDTextFailure(t *testing.T) {
	targets := idFixture(false)
	targets[0].Failed, targets[0].Error = true, "no flow could be opened: bind udp source 0.0.0.0:5300: address already in use"
	targets[0].Operator = "Lab Operator"
	var b bytes.Buffer
	if err := IDText(&b, targets); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "failed    no flow could be opened: bind udp source 0.0.0.0:5300: address already in use\n") || strings.Contains(out, "timed out") {
		t.Errorf("failure not shown as it happened:\n%s", out)
	}
	if !strings.HasPrefix(out, "id 192.0.2.53:53, udp  operator Lab Operator\n") {
		t.Errorf("operator not in the title:\n%s", out)
	}
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, idDoc(idFixture(false))); err != nil {
		t.Fatal(err)
	}
	golden(t, "id.json", b.Bytes())

	b.Reset()
	if err := JSON(&b, idDoc(idFixture(true))); err != nil {
		t.Fatal(err)
	}
	golden(t, "id_hostile.json", b.Bytes())

	b.Reset()
	d := report.New(report.KindTrace, report.Tool{Name: "anycheck", Version: "test"}, t0, "vantage-1")
	tp := traceFixture()
	d.Results = []report.TraceResult{tp}
	d.AddSource("203.0.113.10:33512")
	if err := JSON(&b, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "trace.json", b.Bytes())

	b.Reset()
	for _, h := range tp.Flows[0].Path.Hops {
		if err := JSONL(&b, d.WithVantage(d.HopRecord("192.0.2.53", h))); err != nil {
			t.Fatal(err)
		}
	}
	if err := JSONL(&b, d.WithVantage(d.ResultRecord("192.0.2.53", tp))); err != nil {
		t.Fatal(err)
	}
	if err := JSONL(&b, d.EndRecord()); err != nil {
		t.Fatal(err)
	}
	golden(t, "trace.jsonl", b.Bytes())
}

func TestTraceTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := TraceText(&b, []report.TraceResult{traceFixture()}, TraceOptions{MaxTTL: 30}); err != nil {
		t.Fatal(err)
	}
	golden(t, "trace.txt", b.Bytes())
	out := b.String()
	for _, want := range []string{
		" 2  * * *",
		"as path   64500 → 64510 → 64520",
		"upstream  198.51.100.6 from AS64510  LAB-TRANSIT  (hop 3)",
		"[MPLS: Lbl 16001, TC 0, S 1, TTL 1]",
		`instance  i1-nsd  (NSID "i1-nsd"; hostname.bind "i1.lab-a")  4 hops, 1.10 ms`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape sequence from an AS name reached the terminal:\n%q", out)
	}
}

func TestWhoisTextGolden(t *testing.T) {
	rows := []report.WhoisResult{
		{Input: "192.0.2.53", Target: "192.0.2.53", Name: "ns.lab.example", Origin: ptr(report.FromOrigin(whois.Origin{Addr: netip.MustParseAddr("192.0.2.53"), ASNs: []uint32{64520, 64521}, Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "ZZ", Registry: "lab", Allocated: "2026-01-01", ASName: "LAB-ANYCAST", Source: "cymru"}))},
		{Input: "10.1.2.3", Target: "10.1.2.3", Origin: ptr(report.FromOrigin(whois.Origin{Addr: netip.MustParseAddr("10.1.2.3"), Special: "private", Source: "special"}))},
		{Input: "198.51.100.77", Target: "198.51.100.77", Origin: ptr(report.FromOrigin(whois.Origin{Addr: netip.MustParseAddr("198.51.100.77"), Unannounced: true, Source: "cymru", Cached: true}))},
		{Input: "203.0.113.9", Target: "203.0.113.9"},
	}
	var b bytes.Buffer
	if err := WhoisTable(&b, rows, true); err != nil {
		t.Fatal(err)
	}
	golden(t, "whois.txt", b.Bytes())

	b.Reset()
	d := report.New(report.KindWhois, report.Tool{Name: "anycheck", Version: "test"}, t0, "vantage-1")
	d.Results = rows
	if err := JSON(&b, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "whois.json", b.Bytes())
}

func ptr[T any](v T) *T { return &v }

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain.host-1", "plain.host-1"},
		{"tab\there", `tab\there`},
		{"esc\x1b[31m", `esc\x1b[31m`},
		{"bell\x07", `bell\x07`},
		{"nul\x00", `nul\x00`},
		{"back\\slash", `back\\slash`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"del\x7f", `del\x7f`},
		{"c1\u0085", `c1\u{85}`},
		{"rtl\u202eevil", `rtl\u{202e}evil`},
		{"zürich.例え", "zürich.例え"},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "a", "\x1b[2J", "\xff\xfe", "\u202e", `\x41`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		for _, r := range out {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("Escape(%q) left control rune %U", s, r)
			}
		}
	})
}

// TestTraceTextMarks: port unreachable, the normal end of a UDP trace, has
// no mark (traceroute prints none; !P is protocol unreachable); the other
// unreachables keep traceroute's marks.
func TestTraceTextMarks(t *testing.T) {
	dst := netip.MustParseAddr("192.0.2.53")
	unreach := func(from netip.Addr, typ, code int) trace.Hop {
		r := &trace.Reply{From: from, RTT: time.Millisecond, Kind: trace.ReplyUnreachable, ICMPType: typ, ICMPCode: code, ReplyTTL: 60, QuotedTTL: 1}
		return trace.Hop{TTL: 2, Probes: []trace.ProbeResult{{Sent: t0, Reply: r}}}
	}
	for _, c := range []struct {
		hop  trace.Hop
		want string
	}{
		{unreach(dst, 3, 3), ""},
		{unreach(netip.MustParseAddr("2001:db8:53::53"), 1, 4), ""},
		{unreach(dst, 3, 2), "!P"},
		{unreach(netip.MustParseAddr("198.51.100.1"), 3, 1), "!H"},
		{unreach(netip.MustParseAddr("198.51.100.1"), 3, 0), "!N"},
		{unreach(netip.MustParseAddr("198.51.100.1"), 3, 13), "!X"},
		{unreach(netip.MustParseAddr("2001:db8::1"), 1, 1), "!X"},
		{unreach(netip.MustParseAddr("2001:db8::1"), 1, 3), "!H"},
	} {
		lines, _ := hopTable([]report.HopDTO{report.FromHop(c.hop)}, false)
		if len(lines) != 1 {
			t.Fatalf("lines %q", lines)
		}
		f := strings.Fields(lines[0])
		mark := f[len(f)-1]
		if mark == "ms" {
			mark = ""
		}
		if mark != c.want {
			t.Errorf("type %d code %d: %q, want mark %q", c.hop.Probes[0].Reply.ICMPType, c.hop.Probes[0].Reply.ICMPCode, lines[0], c.want)
		}
	}
}

// TestTraceTextLongNames: names longer than their column are cut with an
// ellipsis, never in the middle of an escape sequence, and the columns stay
// aligned.
func TestTraceTextLongNames(t *testing.T) {
	long := strings.Repeat("r", 36) + "\x1b[31m.lab.example"
	for n := 36; n <= 40; n++ {
		got := escapeFit(long[:n]+"\x1b"+long[n:], maxNameWidth)
		if utf8.RuneCountInString(got) > maxNameWidth || !strings.HasSuffix(got, "…") {
			t.Errorf("%q: %d runes", got, utf8.RuneCountInString(got))
		}
		if i := strings.LastIndex(got, `\`); i >= 0 && !strings.HasPrefix(got[i:], `\x1b`) {
			t.Errorf("%q: cut through an escape", got)
		}
	}
	if got := escapeFit("short\x07", maxNameWidth); got != `short\x07` {
		t.Errorf("short name: %q", got)
	}
}

// JSON streams the results list, and its bytes are those of encoding the
// whole document at once: for no results, one, many, results that marshal
// themselves, and untrusted text that looks like the results key.
func TestJSONStreamsSameBytes(t *testing.T) {
	hostile := idFixture(true)
	hostile[0].Input = "\n  \"results\": [] <b>&</b>"
	type own struct{ A []int }
	docs := map[string]*report.Document{
		"none":    idDoc([]report.IDTarget{}),
		"one":     idDoc(idFixture(false)[:1]),
		"hostile": idDoc(append(hostile, hostile...)),
		"nil":     idDoc(nil),
	}
	d := report.New(report.KindTrace, report.Tool{Name: "anycheck", Version: "test"}, t0, "vantage\n  \"results\": []")
	d.Results = []json.RawMessage{json.RawMessage(`{"a":[],"b":{"c":[1,2]}}`), json.RawMessage(`[]`)}
	d.Errors = append(d.Errors, report.Problem{Target: "x", Message: "after the results"})
	docs["marshalers"] = d
	docs["structs"] = &report.Document{Schema: report.Schema, Results: []own{{}, {A: []int{1}}}}
	for name, doc := range docs {
		var whole bytes.Buffer
		enc := json.NewEncoder(&whole)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			t.Fatal(err)
		}
		var streamed bytes.Buffer
		if err := JSON(&streamed, doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(streamed.Bytes(), whole.Bytes()) {
			t.Errorf("%s: streamed\n%s\nwhole\n%s", name, streamed.Bytes(), whole.Bytes())
		}
	}
}

// The compare report has no line ending in white space (the "where paths
// part" heading before its list had one).
func TestCompareTextNoTrailingSpace(t *testing.T) {
	as := uint32(64508)
	s := &report.CompareSummary{PathsPart: []report.PartingDTO{{Target: "192.0.2.53", OriginAS: 64496, Common: []uint32{64496},
		Sides: []report.PartSide{{Instance: "ams-1", Vantages: []string{"probe 1"}, AS: &as}, {Instance: "fra-2", Vantages: []string{"probe 2"}}}}}}
	rows := []report.CompareRow{{Vantage: report.CompareVantage{Key: "atlas:1", Label: "probe 1"}, Target: "192.0.2.53", Family: "ipv4", Instance: report.InstanceDTO{Name: "ams-1", Source: "nsid"}}}
	var b bytes.Buffer
	if err := CompareText(&b, rows, s, CompareOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "where paths part:\n  AS64496 → 192.0.2.53") {
		t.Errorf("no parting listed:\n%s", b.String())
	}
	// The sides of a parting are aligned on their widest instance, however
	// long (and whatever an escape makes of it).
	s.PathsPart[0].Sides[1].Instance = "a-very-long-instance-name-\x1b[31m.example"
	b.Reset()
	if err := CompareText(&b, rows, s, CompareOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	i, j := strings.Index(out, "AS64508"), strings.Index(out, "the path ends")
	if i < 0 || j < 0 {
		t.Fatalf("sides missing:\n%s", out)
	}
	lineStart := func(k int) int { return strings.LastIndex(out[:k], "\n") + 1 }
	if i-lineStart(i) != j-lineStart(j) || !strings.Contains(out, `\x1b[31m`) {
		t.Errorf("sides not aligned (or not escaped):\n%s", out)
	}
	for i, l := range strings.Split(b.String(), "\n") {
		if strings.TrimRight(l, " \t") != l {
			t.Errorf("line %d ends in white space: %q", i+1, l)
		}
	}
}

// A flow of several runs whose last run lost its answers names the
// instance its earlier runs reached (the lab's `id -c 5` against a lossy
// instance said "instance none" above "instances i1-nsd ×3"), and says
// that the answers below are the last run's.
func TestIDTextLastRunLost(t *testing.T) {
	first := idFixture(false)[0].Flows[0]
	res := probe.Result{Target: netip.MustParseAddrPort("192.0.2.53:53"), Source: netip.MustParseAddrPort("203.0.113.10:40000")}
	named := func(i int) probe.Result {
		r := res
		r.Started = t0.Add(time.Duration(i) * 200 * time.Millisecond)
		r.Identity = measure.Identity{Instance: "i1-nsd", Source: "nsid", NSID: "i1-nsd", NSIDHex: "69312d6e7364", HostnameBind: "i1.lab-a", IDServer: "i1.lab-a"}
		for _, a := range first.Runs[0].Answers[:2] {
			r.Answers = append(r.Answers, answer(a.Name, measure.StatusAnswered, 300*time.Microsecond, a.TXT...))
			r.Answers[len(r.Answers)-1].NSID = []byte("i1-nsd")
		}
		return r
	}
	lost := res
	lost.Started = t0.Add(time.Second)
	lost.Answers = []measure.Answer{answer(measure.NameHostnameBind, measure.StatusTimeout, 0), answer(measure.NameIDServer, measure.StatusTimeout, 0)}
	runs := []probe.Result{named(0), lost, named(2), named(3), lost}
	var b bytes.Buffer
	if err := IDText(&b, []report.IDTarget{report.FromIDRuns("192.0.2.53", res.Target, false, [][]probe.Result{runs}, nil)}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "instance  none") || !strings.Contains(out, "instance  i1-nsd  (") {
		t.Errorf("a flow with answers should name the instance they gave:\n%s", out)
	}
	if !strings.Contains(out, "last run (5 of 5)") || !strings.Contains(out, "instances i1-nsd ×3") {
		t.Errorf("the answers shown should be said to be the last run's, with the runs' instances:\n%s", out)
	}
}

// A site line of the catchment says where the site is, from the places
// table: the code, the city and the country, then the instances counted
// under it (not repeated when the only one is the code itself).
func TestShareLabelNamesThePlace(t *testing.T) {
	fra := &report.PlaceDTO{Code: "FRA", City: "Frankfurt am Main", Country: "DE", Lat: 50.03, Lon: 8.56}
	hel := &report.PlaceDTO{Code: "HEL", City: "Helsinki", Country: "FI", Lat: 60.32, Lon: 24.96}
	for _, tc := range []struct {
		sh   report.ShareDTO
		want string
	}{
		{report.ShareDTO{Instance: "fra", Source: "site", Site: &report.SiteDTO{Site: "fra", Place: fra}, Members: []report.FlowCount{{Instance: "FRA", Flows: 24}}},
			"FRA Frankfurt am Main, DE"},
		{report.ShareDTO{Instance: "fra", Source: "site", Site: &report.SiteDTO{Operator: "f-root", Site: "fra", Place: fra},
			Members: []report.FlowCount{{Instance: "fra1b.f.root-servers.org", Flows: 2}, {Instance: "fra1a.f.root-servers.org", Flows: 1}}},
			"FRA Frankfurt am Main, DE (fra1b.f.root-servers.org 2, fra1a.f.root-servers.org 1)"},
		{report.ShareDTO{Instance: "fi-hel", Source: "site", Site: &report.SiteDTO{Operator: "k-root", Site: "fi-hel", Place: hel}, Members: []report.FlowCount{{Instance: "ns1.fi-hel.k.ripe.net", Flows: 3}}},
			"FI-HEL Helsinki, FI (ns1.fi-hel.k.ripe.net)"},
		{report.ShareDTO{Instance: "lab-a", Source: "site", Site: &report.SiteDTO{Operator: "lab", Site: "lab-a", Place: &report.PlaceDTO{Lat: 50.11, Lon: 8.68}}, Members: []report.FlowCount{{Instance: "i1.lab-a", Flows: 1}}},
			"LAB-A at 50.11,8.68 (i1.lab-a)"},
		{report.ShareDTO{Instance: "wie", Source: "site", Site: &report.SiteDTO{Operator: "verisign", Site: "wie", Unplaced: "the operator's names carry no place code"}, Members: []report.FlowCount{{Instance: "nnn1-wie1", Flows: 1}}},
			"WIE (nnn1-wie1)"},
		{report.ShareDTO{Instance: "x", Source: "site", Site: &report.SiteDTO{Site: "x", Place: &report.PlaceDTO{Code: "FRA", City: "Frankfurt\x1b[2J", Country: "DE", Lat: 50, Lon: 8}}},
			`X Frankfurt\x1b[2J, DE`},
	} {
		if got := shareLabel(tc.sh); got != tc.want {
			t.Errorf("shareLabel = %q, want %q", got, tc.want)
		}
	}
}

// Over several runs the instance line gathers the identity strings of the
// runs that named the same instance: a last run that lost its
// hostname.bind answer described i1-nsd by its NSID and id.server only.
func TestIDTextIdentityOverRuns(t *testing.T) {
	res := probe.Result{Target: netip.MustParseAddrPort("192.0.2.53:53"), Source: netip.MustParseAddrPort("203.0.113.10:40000"), Started: t0}
	full := res
	full.Identity = measure.Identity{Instance: "i1-nsd", Source: "nsid", NSID: "i1-nsd", NSIDHex: "69312d6e7364", HostnameBind: "i1.lab-a", IDServer: "i1.lab-a"}
	full.Answers = []measure.Answer{answer(measure.NameHostnameBind, measure.StatusAnswered, 300*time.Microsecond, "i1.lab-a"), answer(measure.NameIDServer, measure.StatusAnswered, 300*time.Microsecond, "i1.lab-a")}
	half := res
	half.Started = t0.Add(200 * time.Millisecond)
	half.Identity = measure.Identity{Instance: "i1-nsd", Source: "nsid", NSID: "i1-nsd", NSIDHex: "69312d6e7364", IDServer: "i1.lab-a"}
	half.Answers = []measure.Answer{answer(measure.NameHostnameBind, measure.StatusTimeout, 0), answer(measure.NameIDServer, measure.StatusAnswered, 300*time.Microsecond, "i1.lab-a")}
	var b bytes.Buffer
	if err := IDText(&b, []report.IDTarget{report.FromIDRuns("192.0.2.53", res.Target, false, [][]probe.Result{{full, half}}, nil)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `instance  i1-nsd  (NSID "i1-nsd"; hostname.bind "i1.lab-a"; id.server "i1.lab-a")`+"\n") {
		t.Errorf("the instance line should gather the runs' identity strings:\n%s", b.String())
	}
}
