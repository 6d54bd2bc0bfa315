package report_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/internal/report/reporttest"
)

// Every golden JSON output must match the published v1 schema.
func TestGoldenOutputsMatchSchema(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "golden", "*.json*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("expected the golden JSON outputs in testdata/golden, found %d", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			reporttest.Check(t, data, strings.HasSuffix(f, ".jsonl"))
		})
	}
}

// The schema must reject what the contract forbids, or it checks nothing.
func TestSchemaRejectsBrokenDocuments(t *testing.T) {
	for name, doc := range map[string]string{
		"wrong schema":    `{"schema":"anycheck/v2","kind":"id","tool":{"name":"anycheck","version":"x"},"started":"2026-11-22T03:00:00Z","vantage":{"sources":[]},"results":[],"errors":[]}`,
		"rtt as string":   `{"schema":"anycheck/v1","kind":"whois","tool":{"name":"anycheck","version":"x"},"started":"2026-11-22T03:00:00Z","vantage":{"sources":[]},"results":[{"input":"192.0.2.1","origin":{"address":"192.0.2.1","asns":["64500"],"source":"cymru","cached":false,"unannounced":false}}],"errors":[]}`,
		"missing results": `{"schema":"anycheck/v1","kind":"id","tool":{"name":"anycheck","version":"x"},"started":"2026-11-22T03:00:00Z","vantage":{"sources":[]},"errors":[]}`,
		"unknown status":  `{"schema":"anycheck/v1","kind":"id","type":"result","target":"x","result":{"input":"x","address":"192.0.2.53","port":53,"transport":"udp","flows":[{"source":"203.0.113.1:1","identity":null,"runs":[{"started":"2026-11-22T03:00:00Z","identity":{"instance":"","instance_source":"","nsid_hostname_disagree":false},"answers":[{"name":"hostname.bind","transport":"udp","status":"weird","rcode":0,"txt":[],"nsid":null,"nsid_hex":null,"rtt_ms":1,"truncated":false,"suspicions":[],"size":1}]}],"summary":{"runs":1,"queries":1,"answered":1,"timeouts":0,"rtt_ms":null,"instances":[],"statuses":{}}}],"instances":[],"failed":false}}`,
		"bad address":     `{"schema":"anycheck/v1","kind":"trace","type":"hop","target":"x","hop":{"ttl":1,"probes":[],"rate_limited":false,"responders":[{"address":"not-an-ip","origin":null}]}}`,
	} {
		if err := reporttest.Validate([]byte(doc)); err == nil {
			t.Errorf("%s: schema accepted a broken document", name)
		}
	}
}
