package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/internal/report/reporttest"
)

// Hostile values planted in anycheck documents: terminal escapes (OSC
// sets the window title, CSI moves the cursor) and spreadsheet formulas.
var hostileText = []string{"\x1b]0;owned\x07", "=HYPERLINK(\"http://x.example/\";\"click\")", "=cmd|' /C calc'!A0", "+1+cmd|'/C calc'!A0", "@SUM(1)", "\x1b[2J\x1b[H"}

// plantHostile rewrites a golden document: every enum-like and text field
// it knows gets a hostile value (the i-th, round robin), every suspicion
// list a hostile entry.
func plantHostile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(golden(name))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	i := 0
	next := func() string { i++; return hostileText[i%len(hostileText)] }
	var walk func(v any, top bool)
	walk = func(v any, top bool) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				x := v[k]
				switch k {
				case "hostname":
					// The vantage label, in every rendering: the test
					// looks for it.
					v[k] = hostileText[0]
					continue
				case "suspicions":
					v[k] = append(x.([]any), next(), "ra_set")
					continue
				case "txt":
					v[k] = []any{next()}
					continue
				case "instance_source", "status", "protocol", "transport", "stop_reason", "mode", "instance",
					"nsid", "hostname_bind", "id_server", "detail", "as_name", "country", "input", "message", "name", "identity":
					if _, ok := x.(string); ok {
						v[k] = next()
						continue
					}
				case "kind":
					if _, ok := x.(string); ok && !top {
						v[k] = next()
						continue
					}
				}
				walk(x, false)
			}
		case []any:
			for _, x := range v {
				walk(x, false)
			}
		}
	}
	walk(doc, true)
	// anycheck writes "schema" first, and compare tells its documents by that.
	delete(doc.(map[string]any), "schema")
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(`{"schema":"anycheck/v1",`), out[1:]...)
}

// Everything read from an anycheck document is untrusted: no terminal
// escape reaches text or dot output, no CSV cell starts a formula, and
// -o json validates against the schema whatever the input held.
func TestCompareHostileDocuments(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"id.json", "id_flows.json", "trace.json", "sweep.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), plantHostile(t, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, format := range []string{"text", "json", "csv", "dot", "html"} {
		r := runCLI(t, testDeps(), "compare", "--asn", "none", "-o", format, dir)
		if r.code != ExitOK && r.code != ExitPartial {
			t.Fatalf("%s: exit %d: %s", format, r.code, r.stderr)
		}
		if strings.ContainsAny(r.stdout+r.stderr, "\x1b\x07") {
			t.Errorf("%s: a terminal escape passed through:\n%q\n%q", format, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "owned") && format != "json" {
			t.Errorf("%s: the planted values are not shown at all (escaped, they should be):\n%s", format, r.stdout)
		}
		switch format {
		case "json":
			if err := reporttest.Validate([]byte(r.stdout)); err != nil {
				t.Errorf("json: not valid against the schema: %v\n%s", err, r.stdout)
			}
		case "csv":
			recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
			if err != nil {
				t.Fatalf("csv: %v", err)
			}
			for _, rec := range recs {
				for _, c := range rec {
					if c != "" && strings.ContainsRune("=+@", rune(c[0])) || len(c) > 1 && c[0] == '-' && (c[1] < '0' || c[1] > '9') {
						t.Errorf("csv: a cell a spreadsheet runs: %q", c)
					}
				}
			}
		}
		if bytes.Contains([]byte(r.stderr), []byte("panic")) {
			t.Errorf("%s: %s", format, r.stderr)
		}
	}
}

// Whatever a document holds, compare -o json writes a document of the v1
// schema (or refuses the input), never panics, and prints no terminal
// escape on stderr.
func FuzzCompareJSON(f *testing.F) {
	// Small seeds, compacted: the fuzzer spends its time mutating, not
	// minimising a large sweep.
	for _, name := range []string{"id.json", "trace.json", "trace.jsonl"} {
		data, err := os.ReadFile(golden(name))
		if err != nil {
			f.Fatal(err)
		}
		var b bytes.Buffer
		if json.Compact(&b, data) == nil {
			data = b.Bytes()
		}
		f.Add(data)
	}
	for _, name := range []string{"id.json", "trace.json"} {
		f.Add(plantHostile(f, name))
	}
	f.Add([]byte(`{"schema":"anycheck/v1","kind":"sweep","results":[{"target":"192.0.2.53","flows":[{"target":"192.0.2.53","started":"2026-01-01T00:00:00Z",` +
		`"flow":{"src":"198.51.100.1","sport":40000},"hops":[{"ttl":1,"responders":[{"address":"198.51.100.1"}]}],"instance":{"instance":"a","instance_source":"nsid"}}]}]}`))
	// RIPE Atlas results go the same way.
	for _, name := range []string{"traceroute.jsonl", "dns.json"} {
		data, err := os.ReadFile(atlasFixture(name))
		if err != nil {
			f.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		f.Add([]byte(strings.Join(lines[:min(3, len(lines))], "\n")))
	}
	d := testDeps()
	f.Fuzz(func(t *testing.T, data []byte) {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"compare", "--asn", "none", "-o", "json", "-"},
			&streams{in: bytes.NewReader(data), out: &out, err: &errb}, d)
		if strings.ContainsAny(errb.String(), "\x1b\x07") {
			t.Fatalf("a terminal escape on stderr: %q", errb.String())
		}
		if code != ExitOK && code != ExitPartial {
			return
		}
		if err := reporttest.Validate(out.Bytes()); err != nil {
			t.Fatalf("not valid against the schema: %v\n%s", err, out.Bytes())
		}
	})
}

// repeatByte is an endless source of one byte.
type repeatByte byte

func (r repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// bytesAllocated is what f allocates (the runtime's count, not wall time).
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A gzip of one 200 MB document is refused at the 64 MB limit while it is
// decompressed: compare allocates a few limits (the JSON decoder doubles
// its buffer up to the limit: about four in all), not the document (712 MB
// before).
func TestCompareGzipBombIsCutAtTheLimit(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, `{"schema":"anycheck/v1","kind":"id","results":[{"input":"`)
	io.Copy(zw, io.LimitReader(repeatByte('a'), 200<<20))
	io.WriteString(zw, `"}]}`)
	zw.Close()
	name := filepath.Join(t.TempDir(), "bomb.json.gz")
	if err := os.WriteFile(name, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var r result
	n := bytesAllocated(func() { r = runCLI(t, testDeps(), "compare", "--asn", "none", name) })
	if r.code != ExitUsage || !strings.Contains(r.stderr, "document 0: larger than 64 MB") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	t.Logf("%d KB of gzip, %d MB allocated", gz.Len()>>10, n>>20)
	if n > 5*64<<20 {
		t.Errorf("%d MB allocated for a %d KB file", n>>20, gz.Len()>>10)
	}
}

// A result dated after the clock (a forged or broken timestamp) cannot be
// a line's latest: it is read undated, with a warning; one past year 9999
// too (it broke -o json's date-time), and a hop TTL outside 0…255 is left
// out with a warning.
func TestCompareFutureAndOutOfRangeValues(t *testing.T) {
	res := func(ts int64, nsid string) string {
		return fmt.Sprintf(`{"type":"dns","prb_id":1001,"msm_id":1,"timestamp":%d,"af":4,"dst_addr":"192.0.2.53","from":"198.51.100.200","proto":"UDP",`+
			`"result":{"rt":10,"answers":[{"TYPE":"TXT","NAME":"hostname.bind","RDATA":["%s"]}]}}`, ts, nsid)
	}
	trace := `{"type":"traceroute","prb_id":1002,"msm_id":2,"timestamp":1767225600,"af":4,"dst_addr":"192.0.2.53","from":"198.51.100.201","proto":"UDP","paris_id":1,` +
		`"result":[{"hop":1,"result":[{"from":"198.51.100.1","rtt":1,"ttl":64}]},{"hop":4611686018427387904,"result":[{"from":"198.51.100.2","rtt":1}]},{"hop":2,"result":[{"from":"192.0.2.53","rtt":2,"ttl":-5}]}]}`
	file := filepath.Join(t.TempDir(), "atlas.jsonl")
	lines := []string{res(1767225600, "s1.fra"), res(220000000000, "s9.evil"), res(253402300800, "s8.evil"), trace}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, testDeps(), "compare", "--asn", "none", "-o", "json", file)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Results []struct {
			Vantage  struct{ Key string }
			Instance struct{ Name *string }
			Time     *string
		}
	}
	json.Unmarshal([]byte(r.stdout), &doc)
	for _, row := range doc.Results {
		if row.Vantage.Key == "atlas:1001" && (row.Instance.Name == nil || *row.Instance.Name != "s1.fra" || row.Time == nil || *row.Time != "2026-01-01T00:00:00.000Z") {
			t.Errorf("probe 1001: instance %v at %v; want s1.fra, its one dated result", row.Instance.Name, row.Time)
		}
	}
	for _, want := range []string{"atlas.jsonl#1: dated 8941-", "result 2: timestamp 253402300800 out of range", "result 3: hop 4611686018427387904 out of 1…255", "result 3: hop 2: reply TTL -5 out of 0…255"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// Warnings of one kind about many results of one input are said for the
// first few results and then once with the count, so a large bad file
// stays readable on stderr; the JSON document keeps every one.
func TestCompareGroupsResultWarnings(t *testing.T) {
	var lines []string
	for i := range 40 {
		switch {
		case i < 12: // a timestamp past year 9999
			lines = append(lines, fmt.Sprintf(`{"type":"dns","prb_id":%d,"msm_id":1,"timestamp":%d,"af":4,"dst_addr":"192.0.2.53","from":"198.51.100.200","proto":"UDP",`+
				`"result":{"rt":10,"answers":[{"TYPE":"TXT","NAME":"hostname.bind","RDATA":["s1.fra"]}]}}`, 1000+i, 253402300800+int64(i)))
		case i < 24: // a reply TTL out of range, on two hops of each result
			lines = append(lines, fmt.Sprintf(`{"type":"traceroute","prb_id":%d,"msm_id":2,"timestamp":1767225600,"af":4,"dst_addr":"192.0.2.53","from":"198.51.100.201","proto":"UDP","paris_id":1,`+
				`"result":[{"hop":1,"result":[{"from":"198.51.100.1","rtt":1,"ttl":%d}]},{"hop":2,"result":[{"from":"192.0.2.53","rtt":2,"ttl":-%d}]}]}`, 1000+i, 300+i, i))
		case i < 26: // dated after the clock: two only, both said
			lines = append(lines, fmt.Sprintf(`{"type":"dns","prb_id":%d,"msm_id":1,"timestamp":%d,"af":4,"dst_addr":"192.0.2.53","from":"198.51.100.200","proto":"UDP",`+
				`"result":{"rt":10,"answers":[{"TYPE":"TXT","NAME":"hostname.bind","RDATA":["s1.fra"]}]}}`, 1000+i, 220000000000+int64(i)))
		default: // not a result Atlas writes: skipped
			lines = append(lines, fmt.Sprintf(`{"type":"ping","prb_id":%d,"msm_id":3,"timestamp":1767225600,"af":4,"dst_addr":"192.0.2.53"}`, 1000+i))
		}
	}
	file := filepath.Join(t.TempDir(), "atlas.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, testDeps(), "compare", "--asn", "none", "-o", "json", file)
	var doc struct{ Errors []struct{ Message string } }
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("exit %d: %v\n%s", r.code, err, r.stderr)
	}
	// Every warning is in the document: 12 timestamps, 24 TTLs, 2 dates, 14 skipped.
	if len(doc.Errors) != 12+24+2+14 {
		t.Errorf("%d errors in the document, want %d", len(doc.Errors), 12+24+2+14)
	}
	stderr := strings.Split(strings.TrimSpace(r.stderr), "\n")
	count := func(sub string) int {
		n := 0
		for _, l := range stderr {
			if strings.Contains(l, sub) {
				n++
			}
		}
		return n
	}
	for _, want := range []struct {
		sub string
		n   int
	}{
		{"out of range: the result is undated", 4}, // results 0, 1, 2 and the rest
		{"atlas.jsonl: result 1: timestamp 253402300801 out of range", 1},
		{"atlas.jsonl: and 9 more results: timestamp N out of range: the result is undated", 1},
		{"reply TTL", 3*2 + 1}, // two hops of each of three results, then the rest
		{"atlas.jsonl: and 9 more results: hop N: reply TTL N out of 0…255: left out", 1},
		{"after this host's clock", 2},
		{"ping", 4},
		{"atlas.jsonl: and 11 more results: a ping result: only traceroute and dns results are read", 1},
	} {
		if got := count(want.sub); got != want.n {
			t.Errorf("%d stderr lines with %q, want %d", got, want.sub, want.n)
		}
	}
	if len(stderr) > 20 {
		t.Errorf("%d lines on stderr:\n%s", len(stderr), r.stderr)
	}
}
