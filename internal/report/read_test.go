package report

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/geo"
)

func TestReadDocumentsJSONAndJSONL(t *testing.T) {
	for _, name := range []string{"trace.json", "trace.jsonl", "id.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", name))
		if err != nil {
			t.Fatal(err)
		}
		if !IsDocument(data[:min(len(data), 4096)]) {
			t.Errorf("%s: not told as anycheck output", name)
		}
		docs, bad, err := ReadDocuments(strings.NewReader(string(data)))
		if err != nil || len(bad) != 0 || len(docs) != 1 || !docs[0].Ended || docs[0].Hostname == "" {
			t.Fatalf("%s: %d docs, bad %v, err %v", name, len(docs), bad, err)
		}
		if n := len(docs[0].IDs) + len(docs[0].Traces); n == 0 {
			t.Errorf("%s: no results", name)
		}
		// A JSONL stream cut before its end record keeps its results.
		if strings.HasSuffix(name, ".jsonl") {
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			docs, _, _ := ReadDocuments(strings.NewReader(strings.Join(lines[:len(lines)-1], "\n")))
			if len(docs) != 1 || docs[0].Ended || len(docs[0].Traces) == 0 {
				t.Errorf("cut stream: %+v", docs)
			}
		}
	}
	if IsDocument([]byte(`[{"prb_id":1}]`)) || IsDocument([]byte(`{"fw":5080,"schema":"x"}`)) {
		t.Errorf("Atlas results told as anycheck output")
	}
}

func TestReadDocumentsSkipsWhatItCannotUse(t *testing.T) {
	in := `{"schema":"anycheck/v3","kind":"id","results":[]}
{"schema":"anycheck/v1","kind":"whois","results":[]}
{"schema":"anycheck/v1","kind":"trace","results":[{"hops":"x"}]}`
	docs, bad, err := ReadDocuments(strings.NewReader(in))
	if err != nil || len(docs) != 0 || len(bad) != 3 {
		t.Fatalf("docs %d, bad %v, err %v", len(docs), bad, err)
	}
	for i, want := range []string{`document 0: schema "anycheck/v3"`, `document 1: kind "whois"`, "document 2: trace results"} {
		if !strings.Contains(bad[i].Error(), want) {
			t.Errorf("%v, want %q", bad[i], want)
		}
	}
	if _, _, err := ReadDocuments(strings.NewReader(`{"schema":"anycheck/v1","kind":"id","results":[`)); err == nil || !strings.Contains(err.Error(), "truncated JSON") {
		t.Errorf("truncated: %v", err)
	}
}

func TestVantageKeys(t *testing.T) {
	docs := []ReadDoc{
		{Hostname: "h", Sources: []string{"198.51.100.10:4000"}},                                            // c1 id
		{Hostname: "h", Traces: []TraceResult{{Flows: []TraceFlow{{Flow: FlowDTO{Src: "198.51.100.10"}}}}}}, // c1 trace
		{Hostname: "h", Sources: []string{"198.51.100.20:4000", "[2001:db8::20]:4000"}},                     // c2
		{Hostname: "", Sources: []string{"203.0.113.5:1"}},                                                  // no host name
		{Hostname: "solo", Sources: []string{"203.0.113.9:1"}},
	}
	v := VantageKeys(docs, []string{"a", "b", "c", "d.json", "e"})
	if v[0].Key != v[1].Key || v[0].Key == v[2].Key {
		t.Errorf("joins: %v", v)
	}
	if v[0].Label != "h 198.51.100.10" || v[2].Label != "h 198.51.100.20" || v[3].Label != "d.json" || v[4].Label != "solo" {
		t.Errorf("labels: %v", v)
	}
}

// An anycheck result file is untrusted input too.
func FuzzParseDocument(f *testing.F) {
	for _, name := range []string{"trace.json", "id.json", "id_hostile.json"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", name)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"schema":"anycheck/v1","kind":"trace","results":[{"target":"x","hops":[{"ttl":1,"responders":[{"address":"1.2.3.4"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDocument(data)
		if err != nil {
			return
		}
		for _, o := range d.Observations(VantageKeys([]ReadDoc{d}, []string{"f"})[0], "f") {
			if !o.Target.IsValid() {
				t.Fatalf("an observation without a target: %+v", o)
			}
			for _, a := range o.Answers {
				if !knownStatus(string(a.Status)) {
					t.Fatalf("status %q passed", a.Status)
				}
				for _, s := range a.Suspicions {
					if !knownSuspicion(string(s)) {
						t.Fatalf("suspicion %q passed", s)
					}
				}
			}
		}
	})
}

// Values of an enumeration this anycheck does not know are left out of a
// document read back and said in one warning; the rest of the document is
// read; a result without a target address is left out.
func TestReadDocumentDropsUnknownValues(t *testing.T) {
	doc := `{"schema":"anycheck/v1","kind":"trace","results":[
{"target":"192.0.2.53","stop_reason":"\u001b[2Jgone","flow":{"src":"198.51.100.1"},
 "instance":{"instance":"a1","instance_source":"=cmd|x"},
 "answers":[{"name":"hostname.bind","status":"answered","suspicions":["ra_set","=HYPERLINK(1)","x"]},{"name":"id.server","status":"\u001b]0;t\u0007"}],
 "hops":[{"ttl":1,"probes":[{"reply":{"from":"198.51.100.1","kind":"bogus"}}],"responders":[{"address":"198.51.100.1"}]},{"ttl":4611686018427387904},{"ttl":-5}]},
{"target":"not an address"}]}`
	d, err := ParseDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Traces) != 1 {
		t.Fatalf("%d traces, want the one with a target address", len(d.Traces))
	}
	tr := d.Traces[0].Flows[0]
	if len(tr.Path.Hops) != 1 || tr.Path.StopReason != "" || tr.Instance.Source != "" || tr.Instance.Name != "a1" || len(tr.Answers) != 1 ||
		strings.Join(tr.Answers[0].Suspicions, ",") != "ra_set" || tr.Path.Hops[0].Probes[0].Reply.Kind != "" {
		t.Errorf("kept %+v", tr)
	}
	if len(d.Warnings) != 1 {
		t.Fatalf("warnings %q, want one", d.Warnings)
	}
	for _, want := range []string{`flows[].path.stop_reason "` + "\x1b" + `[2Jgone"`, `flows[].instance.source "=cmd|x"`, `flows[].answers[].status`,
		`flows[].answers[].suspicions "=HYPERLINK(1)" (and 1 more)`, `flows[].path.hops[].probes[].reply.kind "bogus"`, `target (a result: not an IP address) "not an address"`, `flows[].path.hops[].ttl (a hop: out of 0…255) "4611686018427387904" (and 1 more)`} {
		if !strings.Contains(d.Warnings[0], want) {
			t.Errorf("warning %q lacks %q", d.Warnings[0], want)
		}
	}
}

// A document's vantage.location becomes the vantage's location, from JSON
// and JSONL alike; one off the globe (or at 0,0) is no location.
func TestReadDocumentsLocation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want geo.Point
	}{
		{`{"schema":"anycheck/v1","kind":"id","started":"2026-01-01T00:00:00Z","vantage":{"hostname":"h","sources":[],"location":{"lat":52.37,"lon":4.89}},"results":[],"errors":[]}`, geo.Point{Lat: 52.37, Lon: 4.89}},
		{`{"schema":"anycheck/v1","kind":"id","type":"end","started":"2026-01-01T00:00:00Z","vantage":{"hostname":"h","sources":[],"location":{"lat":-33.9,"lon":151.2,"place":"SYD"}}}`, geo.Point{Lat: -33.9, Lon: 151.2}},
		{`{"schema":"anycheck/v1","kind":"id","started":"2026-01-01T00:00:00Z","vantage":{"hostname":"h","sources":[],"location":{"lat":500,"lon":4.89}},"results":[],"errors":[]}`, geo.Point{}},
		{`{"schema":"anycheck/v1","kind":"id","started":"2026-01-01T00:00:00Z","vantage":{"hostname":"h","sources":[],"location":{"lat":0,"lon":0}},"results":[],"errors":[]}`, geo.Point{}},
	} {
		docs, bad, err := ReadDocuments(strings.NewReader(tc.in))
		if err != nil || len(bad) != 0 || len(docs) != 1 {
			t.Fatalf("%s: docs %d bad %v err %v", tc.in, len(docs), bad, err)
		}
		if docs[0].Location != tc.want {
			t.Errorf("%s: location %v, want %v", tc.in, docs[0].Location, tc.want)
		}
		if v := VantageKeys(docs, []string{"f"}); v[0].Location != tc.want {
			t.Errorf("vantage location %v", v[0].Location)
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

// allocated is the bytes f allocates (the runtime's count, not wall time).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A document or JSONL line over the limit is refused while it is read:
// what is allocated stays within a few limits however long the input (an
// endless line on stdin once grew without end, a gzip of one huge
// document allocated its whole size).
func TestReadDocumentsLimitWhileReading(t *testing.T) {
	const limit = 1 << 20
	const input = 32 << 20
	for name, prefix := range map[string]string{
		"document":      `{"schema":"anycheck/v1","kind":"id","results":[{"input":"`,
		"document list": "{\"schema\":\"anycheck/v1\",\"kind\":\"id\",\"results\":[]}\n{\"schema\":\"anycheck/v1\",\"kind\":\"id\",\"results\":[{\"input\":\"",
		"jsonl line":    "{\"schema\":\"anycheck/v1\",\"kind\":\"id\",\"type\":\"result\",\"result\":{}}\n{\"schema\":\"anycheck/v1\",\"type\":\"result\",\"x\":\"",
	} {
		var err error
		n := allocated(func() {
			_, _, err = readDocuments(io.MultiReader(strings.NewReader(prefix), io.LimitReader(repeat('a'), input)), limit)
		})
		if err == nil || !strings.Contains(err.Error(), "larger than 1 MB") {
			t.Errorf("%s: %v, want the limit named", name, err)
		}
		if n > 6*limit {
			t.Errorf("%s: %d MB allocated reading past a %d MB limit", name, n>>20, limit>>20)
		}
	}
}

// TestVantageKeysLabels: a vantage named with --label is that vantage
// whatever its addresses (its IPv4 and IPv6 runs are one), and two labels
// on hosts of one name (namespaces, containers all called "vm") are two.
func TestVantageKeysLabels(t *testing.T) {
	docs := []ReadDoc{
		{Hostname: "vm", Label: "c1", Sources: []string{"198.51.100.10:4000"}},
		{Hostname: "vm", Label: "c1", Sources: []string{"[2001:db8:100:1::10]:4000"}},
		{Hostname: "vm", Label: "c2", Sources: []string{"198.51.100.74:4000"}},
		{Hostname: "vm", Sources: []string{"198.51.100.202:4000"}},
	}
	v := VantageKeys(docs, []string{"a", "b", "c", "d"})
	if v[0].Key != v[1].Key || v[0].Key == v[2].Key || v[0].Key == v[3].Key {
		t.Errorf("joins: %v", v)
	}
	if v[0].Label != "c1" || v[2].Label != "c2" || v[3].Label != "vm" {
		t.Errorf("labels: %v", v)
	}
}
