package report_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/internal/report/reporttest"
)

// Every golden JSON output must match the published v2 schema.
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

// The schema must reject what the contract forbids, or it checks nothing:
// each broken document differs from a valid one in one place.
func TestSchemaRejectsBrokenDocuments(t *testing.T) {
	const head = `"tool":{"name":"anycheck","version":"x"},"started":"2026-11-22T03:00:00.000Z","vantage":{"sources":[]}`
	whois := `{"input":"192.0.2.1","target":"192.0.2.1","origin":{"address":"192.0.2.1","asns":[64500],"source":"cymru","cached":false,"unannounced":false}}`
	hop := `{"schema":"anycheck/v2","kind":"trace","type":"hop","vantage":{"sources":[]},"target":"x","hop":{"ttl":1,"probes":[],"rate_limited":false,"responders":[{"address":"198.51.100.1","origin":null}]}}`
	valid := map[string]string{
		"whois": `{"schema":"anycheck/v2","kind":"whois",` + head + `,"results":[` + whois + `],"errors":[]}`,
		"hop":   hop,
	}
	for name, doc := range valid {
		if err := reporttest.Validate([]byte(doc)); err != nil {
			t.Fatalf("%s: the valid document is refused: %v", name, err)
		}
	}
	for name, doc := range map[string]string{
		"v1 schema":        strings.Replace(valid["whois"], "anycheck/v2", "anycheck/v1", 1),
		"asn as string":    strings.Replace(valid["whois"], "[64500]", `["64500"]`, 1),
		"missing results":  strings.Replace(valid["whois"], `"results":[`+whois+`],`, "", 1),
		"second precision": strings.Replace(valid["whois"], "03:00:00.000Z", "03:00:00Z", 1),
		"local time":       strings.Replace(valid["whois"], "03:00:00.000Z", "03:00:00.000+01:00", 1),
		"bad address":      strings.Replace(hop, "198.51.100.1", "not-an-ip", 1),
		"no vantage":       strings.Replace(hop, `"vantage":{"sources":[]},`, "", 1),
		"null vantage":     strings.Replace(hop, `"vantage":{"sources":[]}`, `"vantage":null`, 1),
	} {
		if doc == valid["whois"] || doc == hop {
			t.Fatalf("%s: the test changed nothing", name)
		}
		if err := reporttest.Validate([]byte(doc)); err == nil {
			t.Errorf("%s: schema accepted a broken document", name)
		}
	}
}
