package atlas

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// seeds adds every fixture result on its own, as a one-element array and
// as a two-result stream. Whole fixture files are left out: the fuzzer
// spends its time minimising large inputs instead of mutating.
func seeds(f *testing.F) {
	for _, name := range []string{"traceroute.jsonl", "dns.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		var prev []byte
		for _, line := range bytes.Split(data, []byte("\n")) {
			line = bytes.TrimSuffix(line, []byte(","))
			if len(line) < 2 || line[0] != '{' {
				continue
			}
			f.Add(line)
			f.Add([]byte("[" + string(line) + "]"))
			if prev != nil {
				f.Add([]byte(string(prev) + "\n" + string(line)))
			}
			prev = line
		}
	}
	f.Add([]byte(`{"prb_id":1,"type":"traceroute","result":[{"hop":"x"}]}`))
	f.Add([]byte(`{"prb_id":1,"type":"dns","result":{"abuf":"!!"}}`))
	f.Add([]byte(`{"prb_id":1,"type":"dns","error":"x"}`))
	f.Add([]byte(`{"prb_id":1,"type":"traceroute","result":[{"hop":1,"result":[{"from":"192.0.2.1","icmpext":{"obj":[{"class":1,"type":1,"mpls":[{"label":1,"s":1}]}]}}]}]}`))
}

// One result: never a panic, and every observation has a target.
func FuzzParseResult(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseResult(data)
		if err != nil {
			return
		}
		for _, o := range r.Observations("fuzz") {
			if o.Vantage.Key == "" {
				t.Fatalf("observation without a vantage: %+v", o)
			}
		}
	})
}

// A whole file: the reader ends (no endless loop on bad input) and never panics.
func FuzzReader(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := 0; i <= len(data); i++ {
			_, err := rd.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			var re *ResultError
			if err != nil && !errors.As(err, &re) {
				return
			}
		}
		t.Fatalf("more results than bytes: the reader loops")
	})
}
