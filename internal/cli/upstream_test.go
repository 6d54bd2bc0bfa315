package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/anycheck/anycheck/trace/tracetest"
	"github.com/anycheck/anycheck/whois"
)

// TestSameUpstreamEverywhere: trace, a flow sweep, watch --trace and
// compare print the same upstream for the same path — one definition
// (catchment.UpstreamOf) behind every command (issue 17). The path:
// vantage AS64500 → transit AS64510 → the service's own router in
// AS64520 → the anycast address, whose origin is AS64520.
func TestSameUpstreamEverywhere(t *testing.T) {
	path := func() *tracetest.Net {
		return &tracetest.Net{
			Hops: tracetest.RoutersAt("198.51.100.1", "198.51.100.145", "203.0.113.1"),
			Dest: tracetest.Dest{RTT: fakeRTT * 4, Hostname: "i1.lab-a", NSID: "i1-nsd"},
		}
	}
	origins := asOrigins(map[string]uint32{"198.51.100.1": 64500, "198.51.100.145": 64510, "203.0.113.1": 64520, "192.0.2.53": 64520, tracetest.Source4.String(): 64500})
	deps := func() *deps {
		d := ecmpDeps(&ecmpNet{branches: []func() *tracetest.Net{path}, pick: func(uint16) int { return 0 }})
		d.newResolver = func(string, whois.Options) (whois.Resolver, error) { return origins, nil }
		return d
	}
	// Where the path enters the service, and the last AS before it.
	const want = "203.0.113.1 from AS64510"

	tr := runCLI(t, deps(), "trace", "-n", "192.0.2.53")
	if tr.code != ExitOK || !strings.Contains(tr.stdout, "upstream  "+want+"  (hop 3)") {
		t.Errorf("trace: exit %d:\n%s%s", tr.code, tr.stdout, tr.stderr)
	}
	sw := runCLI(t, deps(), "trace", "--flows", "3", "-n", "192.0.2.53")
	if sw.code != ExitOK || !strings.Contains(sw.stdout, "upstream  "+want+"  (hop 3)") {
		t.Errorf("sweep: exit %d:\n%s%s", sw.code, sw.stdout, sw.stderr)
	}
	synctest.Test(t, func(t *testing.T) {
		w := runCLI(t, deps(), "watch", "--interval", "100ms", "-c", "2", "--trace", "-n", "192.0.2.53")
		if w.code != ExitOK || !strings.Contains(w.stdout, "upstream "+want+"\n") {
			t.Errorf("watch --trace: exit %d:\n%s%s", w.code, w.stdout, w.stderr)
		}
	})
	js := runCLI(t, deps(), "trace", "-n", "-o", "json", "192.0.2.53")
	doc := filepath.Join(t.TempDir(), "trace.json")
	if err := os.WriteFile(doc, []byte(js.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	cmp := runCLI(t, deps(), "compare", doc)
	if cmp.code != ExitOK || !strings.Contains(cmp.stdout, "  "+want+"  ") {
		t.Errorf("compare: exit %d:\n%s%s", cmp.code, cmp.stdout, cmp.stderr)
	}
}
