package atlas

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/anycheck/anycheck/measure"
)

// readAll reads every result, collecting per-result errors apart.
func readAll(t *testing.T, data []byte) ([]Result, []error, error) {
	t.Helper()
	rd, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	defer rd.Close()
	var out []Result
	var bad []error
	for {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, bad, nil
		}
		var re *ResultError
		if errors.As(err, &re) {
			bad = append(bad, err)
			continue
		}
		if err != nil {
			return out, bad, err
		}
		out = append(out, r)
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadTracerouteLines(t *testing.T) {
	res, bad, err := readAll(t, fixture(t, "traceroute.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 5 || len(bad) != 2 {
		t.Fatalf("read %d results, %d bad (%v)", len(res), len(bad), bad)
	}
	if !strings.Contains(bad[0].Error(), "result 4: a ping result") || !strings.Contains(bad[1].Error(), "result 5: not JSON") {
		t.Errorf("bad results: %v", bad)
	}

	udp := res[0]
	if udp.Type != TypeTraceroute || udp.ProbeID != 1001 || udp.Proto != "udp" || udp.AF != 4 || udp.Trace.ParisID != 3 ||
		udp.Src.String() != "10.0.0.10" || udp.From.String() != "198.51.100.200" || !udp.Time.Equal(time.Unix(1767225600, 0)) {
		t.Errorf("header %+v", udp)
	}
	h := udp.Trace.Hops
	if len(h) != 5 || !h[1].Replies[0].Timeout || len(h[2].Replies[0].MPLS) != 1 || h[2].Replies[0].MPLS[0].Label != 24017 || !h[2].Replies[0].MPLS[0].S {
		t.Errorf("hops %+v", h)
	}
	if late := h[3].Replies[0]; late.Late != 2 || late.RTT != 0 || late.From.String() != "203.0.113.1" {
		t.Errorf("late reply %+v", late)
	}
	o := udp.Observations("t.jsonl#0")
	if len(o) != 1 || len(o[0].Flows) != 1 {
		t.Fatalf("observations %+v", o)
	}
	f := o[0].Flows[0]
	if !f.Reached || f.ID != 3 || len(f.Hops[1].Responders) != 0 || f.Hops[3].Responders[0].RTT != 9900*time.Microsecond {
		t.Errorf("flow %+v", f)
	}
	if o[0].Vantage.Key != "atlas:1001" || o[0].Vantage.Label != "probe 1001" || o[0].TargetName != "" {
		t.Errorf("vantage %+v, target name %q", o[0].Vantage, o[0].TargetName)
	}

	// A hop-level error is an error of the vantage, not a silent hop.
	if o := res[1].Observations(""); len(o[0].Errors) != 1 || !strings.Contains(o[0].Errors[0], "hop 1: connect failed") {
		t.Errorf("hop error: %+v", o[0].Errors)
	}

	// ICMPv6 with "H" unreachables and the hop 255 tail reaching the target.
	v6 := res[2].Observations("")[0].Flows[0]
	if res[2].AF != 6 || res[2].Proto != "icmp" || !v6.Reached || v6.Hops[1].Responders[0].Unreachable != "!H" || v6.Hops[3].TTL != 255 {
		t.Errorf("v6 flow %+v", v6)
	}
	if res[2].Trace.Hops[3].Replies[0].ITTL != 249 {
		t.Errorf("ittl not read: %+v", res[2].Trace.Hops[3].Replies[0])
	}

	// TCP: flags, ittl, and a reply quoting another destination.
	tcp := res[3]
	if tcp.Proto != "tcp" || tcp.Trace.Hops[2].Replies[0].Flags != "SA" || tcp.Trace.Hops[0].Replies[0].ITTL != 2 {
		t.Errorf("tcp %+v", tcp.Trace.Hops)
	}
	if errs := tcp.Observations("")[0].Errors; len(errs) != 1 || !strings.Contains(errs[0], "quotes destination 192.0.2.99") {
		t.Errorf("edst: %v", errs)
	}
}

func TestReadDNSArray(t *testing.T) {
	res, bad, err := readAll(t, fixture(t, "dns.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 9 || len(bad) != 1 || !strings.Contains(bad[0].Error(), "result 8: a http result") {
		t.Fatalf("read %d, bad %v", len(res), bad)
	}
	obs := func(i int) (a probeAnswer) {
		o := res[i].Observations("")
		if len(o) == 0 {
			t.Fatalf("result %d: no observation", i)
		}
		return probeAnswer{o[0].Answers[0].Status, o[0].Answers[0].Suspicions, o[0].Identity.Instance, o[0].Identity.Source, o[0].Answers[0].RTT}
	}
	// abuf: NSID names the instance; a clean authoritative answer.
	if a := obs(0); a.status != measure.StatusAnswered || a.instance != "fra-1" || a.source != "nsid" || len(a.sus) != 0 || a.rtt != 10900*time.Microsecond {
		t.Errorf("abuf answer %+v", a)
	}
	// answers only, RDATA as one string (fw 4720).
	if a := obs(1); a.status != measure.StatusAnswered || a.instance != "s2.ams.anydns.example" || a.source != "hostname.bind" {
		t.Errorf("answers-only %+v", a)
	}
	// error {timeout}.
	if a := obs(2); a.status != measure.StatusTimeout || a.instance != "" {
		t.Errorf("timeout %+v", a)
	}
	// resultset: one observation per entry, each with its own target.
	rs := res[3].Observations("")
	if len(rs) != 2 || rs[0].Identity.Instance != "ams-2" || rs[1].Target.String() != "2001:db8:53::53" || rs[1].Answers[0].Status != measure.StatusError || len(rs[1].Errors) != 1 {
		t.Errorf("resultset %+v", rs)
	}
	// A middlebox: RA set, class IN, TTL 300.
	if a := obs(4); !slices.Equal(a.sus, []measure.Suspicion{measure.SuspectRA, measure.SuspectAAClear, measure.SuspectClassNotCH, measure.SuspectTTLNonZero}) {
		t.Errorf("middlebox flags %v", a.sus)
	}
	// A bare header: NOTIMP, no question.
	if a := obs(5); a.status != measure.StatusNotImp || !slices.Contains(a.sus, measure.SuspectQuestionMissing) || !slices.Contains(a.sus, measure.SuspectRA) {
		t.Errorf("header-only %+v", a)
	}
	// Firmware 4400 names: addr, srcaddr, mode UDP6, no type.
	old := res[6]
	if old.Type != TypeDNS || old.AF != 6 || old.Proto != "udp" || old.Dst.String() != "2001:db8:53::53" || old.Src.String() != "2001:db8:100::10" {
		t.Errorf("fw 4400 %+v", old)
	}
	// Control characters survive raw (escaping is the renderer's job).
	if a := obs(7); a.instance != "evil\x1b[31m" {
		t.Errorf("identity %q", a.instance)
	}
}

type probeAnswer struct {
	status   measure.Status
	sus      []measure.Suspicion
	instance string
	source   string
	rtt      time.Duration
}

func TestReadGzipAndFormats(t *testing.T) {
	plain := fixture(t, "dns.json")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	for name, data := range map[string][]byte{"array": plain, "gzip": gz.Bytes()} {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := map[string]string{"array": "json array", "gzip": "json array+gzip"}[name]
		if rd.Format() != want {
			t.Errorf("%s: format %q", name, rd.Format())
		}
		res, _, err := readAll(t, data)
		if err != nil || len(res) != 9 {
			t.Errorf("%s: %d results, %v", name, len(res), err)
		}
	}
	// A pretty-printed object stream reads too.
	pretty := "{\n  \"type\": \"dns\",\n  \"prb_id\": 7,\n  \"dst_addr\": \"192.0.2.53\",\n  \"error\": {\"timeout\": 1000}\n}\n"
	if res, bad, err := readAll(t, []byte(pretty+pretty)); err != nil || len(res) != 2 || len(bad) != 0 {
		t.Errorf("pretty stream: %d %v %v", len(res), bad, err)
	}
}

func TestReadBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"empty":       {nil, "empty"},
		"spaces":      {[]byte(" \n\t"), "empty"},
		"not json":    {[]byte("traceroute to 192.0.2.53"), "starts with 't'"},
		"bad gzip":    {[]byte{0x1f, 0x8b, 0, 1}, "gzip"},
		"anycheck v1": {[]byte(`{"schema":"anycheck/v1","kind":"id","results":[]}`), "result 0: no prb_id"},
	} {
		res, bad, err := readAll(t, tc.data)
		got := ""
		switch {
		case err != nil:
			got = err.Error()
		case len(bad) > 0:
			got = bad[0].Error()
		}
		if !strings.Contains(got, tc.want) || len(res) != 0 {
			t.Errorf("%s: %q (%d results), want %q", name, got, len(res), tc.want)
		}
	}
	// A truncated array: what came before is read, then the error names the index.
	data := fixture(t, "dns.json")
	res, _, err := readAll(t, data[:len(data)/2])
	if err == nil || !strings.Contains(err.Error(), "truncated JSON") || len(res) == 0 {
		t.Errorf("truncated array: %d results, %v", len(res), err)
	}
	// Truncated lines: the last result is the error.
	lines := fixture(t, "traceroute.jsonl")
	_, _, err = readAll(t, lines[:len(lines)-100])
	if err == nil || !strings.Contains(err.Error(), "result 6: truncated JSON") {
		t.Errorf("truncated lines: %v", err)
	}
}

// The real results in the shared reference data parse (skipped where the
// reference data is not beside the repository).
func TestRefdata(t *testing.T) {
	var dir string
	for _, d := range []string{os.Getenv("ANYCHECK_REFDATA"), "../../shared/refdata/atlas", "/work/shared/refdata/atlas"} {
		if d == "" {
			continue
		}
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			dir = d
			break
		}
	}
	if dir == "" {
		t.Skip("no refdata/atlas beside the repository")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	instances := map[string]bool{}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "probes_") {
			continue // probe metadata (the probe archive), not results
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, bad, err := readAll(t, data)
		if err != nil || len(bad) > 0 || len(res) == 0 {
			t.Errorf("%s: %d results, bad %v, err %v", filepath.Base(f), len(res), bad, err)
		}
		for _, r := range res {
			for _, o := range r.Observations("") {
				if o.Identity.Instance != "" {
					instances[o.Identity.Instance] = true
				}
			}
		}
	}
	for _, want := range []string{"ns1.fi-hel.k.ripe.net", "k3.ams-ix.k.ripe.net", "res110.mia.rrdns.pch.net"} {
		if !instances[want] {
			t.Errorf("identity %q not read from the reference data", want)
		}
	}
}

// The window the reader frames results in is refilled and grown at any
// byte: a source that returns one byte at a time, or half of what is asked,
// reads the same results and the same errors as one that returns it all.
func TestReadAnyChunking(t *testing.T) {
	// A result larger than the reader's window, between two small ones.
	var big strings.Builder
	big.WriteString(`{"type":"traceroute","prb_id":77,"dst_addr":"192.0.2.53","result":[`)
	for h := 1; h <= 255; h++ {
		if h > 1 {
			big.WriteString(",")
		}
		fmt.Fprintf(&big, `{"hop":%d,"result":[`, h)
		for i := range 12 {
			if i > 0 {
				big.WriteString(",")
			}
			fmt.Fprintf(&big, `{"from":"198.51.100.%d","rtt":1.5,"size":28,"ttl":250},{"x":"*"},{"from":"198.51.100.%d","rtt":1.25,"size":28,"ttl":250}`, h%250+1, h%250+1)
		}
		big.WriteString("]}")
	}
	big.WriteString(`]}`)
	if big.Len() <= window {
		t.Fatalf("the big result (%d bytes) fits the window (%d)", big.Len(), window)
	}
	lines := fixture(t, "traceroute.jsonl")
	array := fixture(t, "dns.json")
	for name, data := range map[string][]byte{
		"lines": lines, "array": array,
		"big": []byte("[" + string(array[1:len(array)-2]) + ",\n" + big.String() + "]\n"),
	} {
		want, wantBad, wantErr := readAll(t, data)
		for chunking, wrap := range map[string]func(io.Reader) io.Reader{"one byte": iotest.OneByteReader, "half": iotest.HalfReader, "data error": iotest.DataErrReader} {
			rd, err := NewReader(wrap(bytes.NewReader(data)))
			if err != nil {
				t.Fatalf("%s, %s: %v", name, chunking, err)
			}
			var got []Result
			var bad []string
			for {
				r, err := rd.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				var re *ResultError
				if errors.As(err, &re) {
					bad = append(bad, err.Error())
					continue
				}
				if err != nil {
					t.Fatalf("%s, %s: %v (reading it whole: %v)", name, chunking, err, wantErr)
				}
				got = append(got, r)
			}
			if len(got) != len(want) || len(bad) != len(wantBad) {
				t.Fatalf("%s, %s: %d results, %d bad; want %d, %d", name, chunking, len(got), len(bad), len(want), len(wantBad))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("%s, %s: result %d differs", name, chunking, i)
				}
			}
			for i := range bad {
				if bad[i] != wantBad[i].Error() {
					t.Errorf("%s, %s: %q, want %q", name, chunking, bad[i], wantBad[i])
				}
			}
		}
		if name == "big" {
			last := want[len(want)-1]
			if last.ProbeID != 77 || len(last.Trace.Hops) != 255 || last.Trace.Hops[254].Replies[2].RTT != 1250*time.Microsecond {
				t.Errorf("big result: probe %d, %d hops", last.ProbeID, len(last.Trace.Hops))
			}
		}
	}
}

// A broken line of a result-per-line file costs that result only: the
// reader goes on at the next line that starts a result, without reading
// ahead to the end of the file.
func TestReadBrokenLines(t *testing.T) {
	good := `{"type":"dns","prb_id":%d,"dst_addr":"192.0.2.53","error":{"timeout":1000}}`
	data := strings.Join([]string{
		fmt.Sprintf(good, 1),
		`{"type":"dns","prb_id":2,"dst_addr":"192.0.2.53","result":{"abuf":"cut`, // a control character (newline) in a string
		`{"type":"dns","prb_id":3,"result":[{"hop":1`,                            // cut short: the next line starts a result
		fmt.Sprintf(good, 4),
		`{"type":"dns","prb_id":5]`, // mismatched bracket
		`  "indented": {"not": "a result start"}`,
		fmt.Sprintf(good, 6),
		`{"type":"dns", "prb_id": 7 "dst_addr": "192.0.2.53"}`, // framed, but no JSON
		fmt.Sprintf(good, 8),
		`{"type":"dns","prb_id":9,"dst_addr":"192.0.2.53","error":`, // truncated at the end
	}, "\n")
	res, bad, err := readAll(t, []byte(data))
	var ids []int
	for _, r := range res {
		ids = append(ids, r.ProbeID)
	}
	if !slices.Equal(ids, []int{1, 4, 6, 8}) {
		t.Errorf("read probes %v, want 1 4 6 8 (bad: %v)", ids, bad)
	}
	for i, want := range []string{"result 1: not JSON: control character", "result 2: not JSON: cut short", "result 4: not JSON: unexpected ']'", "result 6: not JSON"} {
		if i >= len(bad) || !strings.Contains(bad[i].Error(), want) {
			t.Errorf("bad result %d: %v, want %q", i, bad, want)
		}
	}
	if err == nil || err.Error() != "result 8: truncated JSON" {
		t.Errorf("end: %v", err)
	}
	// A broken array ends the file where it broke.
	for name, tc := range map[string]struct{ data, want string }{
		"trailing comma": {`[` + fmt.Sprintf(good, 1) + `,]`, "result 1: not JSON: ']' after ','"},
		"no comma":       {`[` + fmt.Sprintf(good, 1) + fmt.Sprintf(good, 2) + `]`, `result 1: not JSON: '{' after a result`},
		"mismatch":       {`[{"prb_id":1]}]`, "result 0: not JSON: unexpected ']'"},
		"cut":            {`[` + fmt.Sprintf(good, 1) + `,{"prb_id":`, "result 1: truncated JSON"},
	} {
		res, _, err := readAll(t, []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if name != "mismatch" && len(res) != 1 {
			t.Errorf("%s: %d results before the break", name, len(res))
		}
	}
}

// Invalid UTF-8 in a string becomes U+FFFD, as encoding/json decodes it;
// a field of the wrong kind is named.
func TestReadFieldKinds(t *testing.T) {
	r, err := ParseResult([]byte("{\"type\":\"traceroute\",\"prb_id\":\"12\",\"dst_name\":\"a\xffb\",\"result\":[{\"hop\":1,\"result\":[{\"from\":\"192.0.2.1\",\"err\":7}]}]}"))
	if err != nil || r.ProbeID != 12 || r.DstName != "a\uFFFDb" || r.Trace.Hops[0].Replies[0].Err != "7" {
		t.Errorf("%+v %v", r, err)
	}
	for data, want := range map[string]string{
		`{"type":"traceroute","prb_id":true,"result":[]}`:                             `field "prb_id": a boolean where a number belongs`,
		`{"type":"traceroute","prb_id":1,"result":[{"hop":1,"result":[{"from":5}]}]}`: `hop 1: field "from": a number where text belongs`,
		`{"type":"traceroute","prb_id":1,"result":7}`:                                 `field "result": a number where a hop list belongs`,
		`[1]`: "a list, not a result object",
		`{"type":"dns","prb_id":1,"result":{"answers":[{"TYPE":"TXT","RDATA":[1]}]}}`: `field "RDATA": a number where text belongs`,
	} {
		if _, err := ParseResult([]byte(data)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %q", data, err, want)
		}
	}
}

// repeat is an endless source of one byte.
type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// A result larger than maxResult is refused once that much is buffered:
// the window never holds more than maxResult and one refill.
func TestReadRefusesHugeResult(t *testing.T) {
	for name, prefix := range map[string]string{"array": `[{"prb_id":1,"x":"`, "lines": `{"prb_id":1,"x":"`} {
		rd, err := NewReader(io.MultiReader(strings.NewReader(prefix), io.LimitReader(repeat('a'), 2*maxResult)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = rd.Next()
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("result larger than %d MB", maxResult>>20)) {
			t.Errorf("%s: %v", name, err)
		}
		if len(rd.buf) > maxResult+window {
			t.Errorf("%s: the window grew to %d MB", name, len(rd.buf)>>20)
		}
	}
}

// An ICMP extension of an unexpected shape ("icmpext":{}, an MPLS object
// without its label stack) is one bad result, named; the results around it
// are read (it panicked once).
func TestReadMalformedICMPExt(t *testing.T) {
	good := `{"type":"traceroute","prb_id":2,"result":[{"hop":1,"result":[{"from":"192.0.2.1","rtt":1,"icmpext":{"version":2,"obj":[{"class":1,"type":1,"mpls":[{"label":16,"s":1,"exp":0,"ttl":1}]}]}}]}]}`
	for name, ext := range map[string]string{
		"empty":            `{}`,
		"obj without mpls": `{"version":2,"obj":[{"class":1,"type":1}]}`,
		"obj null":         `{"obj":null}`,
		"mpls null":        `{"obj":[{"class":1,"type":1,"mpls":null}]}`,
	} {
		bad := `{"type":"traceroute","prb_id":1,"result":[{"hop":3,"result":[{"from":"192.0.2.1","rtt":1,"icmpext":` + ext + `}]}]}`
		res, errs, err := readAll(t, []byte(bad+"\n"+good+"\n"))
		if err != nil || len(res) != 1 || len(errs) != 1 {
			t.Errorf("%s: %d results, bad %v, err %v", name, len(res), errs, err)
			continue
		}
		if !strings.Contains(errs[0].Error(), "result 0: hop 3: field \"icmpext") {
			t.Errorf("%s: %v", name, errs[0])
		}
		if l := res[0].Trace.Hops[0].Replies[0].MPLS; len(l) != 1 || l[0].Label != 16 {
			t.Errorf("%s: the good result's labels %+v", name, l)
		}
	}
}

// hopsResult is a traceroute of n hop entries numbered from first.
func hopsResult(n, first int) string {
	var b strings.Builder
	b.WriteString(`{"type":"traceroute","prb_id":1,"timestamp":1767225600,"dst_addr":"192.0.2.53","af":4,"proto":"UDP","result":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"hop":%d,"result":[{"from":"10.0.%d.%d","rtt":1.5,"ttl":250}]}`, first+i, (i>>8)&255, i&255)
	}
	b.WriteString("]}")
	return b.String()
}

// A result is at most 4 MB (a traceroute of 255 hops of 16 replies with
// ICMP extensions is about 1 MB): a 24 MB result of 400,000 hops is one
// bad result read in bounded memory (it took 1.25 GB), and a smaller one
// keeps its first 255 hops with a warning.
func TestReadCapsHopsAndResultSize(t *testing.T) {
	big := hopsResult(400_000, 1)
	var res []Result
	var bad []error
	n := allocatedBytes(func() { res, bad, _ = readAll(t, []byte(big+"\n"+hopsResult(3, 1)+"\n")) })
	t.Logf("%d MB result: %d MB allocated", len(big)>>20, n>>20)
	if len(res) != 1 || len(bad) != 1 || !strings.Contains(bad[0].Error(), "result larger than 4 MB") {
		t.Errorf("%d results, bad %v", len(res), bad)
	}
	if n > 64<<20 {
		t.Errorf("%d MB allocated for one refused result", n>>20)
	}

	r, err := ParseResult([]byte(hopsResult(300, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Trace.Hops) != 255 || r.Trace.Hops[254].TTL != 255 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "45 hops past the 255th left out") {
		t.Errorf("%d hops, warnings %q", len(r.Trace.Hops), r.Warnings)
	}
}

// allocatedBytes is what f allocates (the runtime's count, not time).
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Values outside what Atlas can write are left out with a warning and the
// result is read: a time past year 9999 (it broke -o json's date-time),
// hop numbers outside 1…255, reply TTLs outside 0…255.
func TestReadRefusesValuesOutOfRange(t *testing.T) {
	r, err := ParseResult([]byte(`{"type":"traceroute","prb_id":1,"timestamp":253402300800,"endtime":-5,"dst_addr":"192.0.2.53","result":[` +
		`{"hop":4611686018427387904,"result":[{"from":"10.0.0.1","rtt":1}]},{"hop":-5,"result":[{"from":"10.0.0.2","rtt":1}]},` +
		`{"hop":2,"result":[{"from":"10.0.0.3","rtt":1,"ttl":300,"ittl":-1}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Time.IsZero() || !r.Trace.EndTime.IsZero() || len(r.Trace.Hops) != 1 || r.Trace.Hops[0].TTL != 2 || r.Trace.Hops[0].Replies[0].TTL != -1 || r.Trace.Hops[0].Replies[0].ITTL != 1 {
		t.Errorf("kept %+v %+v", r, r.Trace.Hops)
	}
	want := []string{`timestamp 253402300800 out of range: the result is undated`, `hop 4611686018427387904 out of 1…255: left out`, `hop -5 out of 1…255: left out`, `hop 2: reply TTL 300 out of 0…255`, `hop 2: quoted TTL -1 out of 0…255`}
	if len(r.Warnings) != len(want) {
		t.Fatalf("warnings %q", r.Warnings)
	}
	for i, w := range want {
		if !strings.Contains(r.Warnings[i], w) {
			t.Errorf("warning %q, want %q", r.Warnings[i], w)
		}
	}
	d, err := ParseResult([]byte(`{"type":"dns","prb_id":1,"timestamp":1767225600,"resultset":[{"time":300000000000,"dst_addr":"192.0.2.53","result":{"rt":1}}]}`))
	if err != nil || !d.DNS[0].Time.Equal(d.Time) || len(d.Warnings) != 1 {
		t.Errorf("resultset time: %+v %v", d, err)
	}
}
