package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/atlas/atlastest"
	"github.com/anycheck/anycheck/internal/lab"
)

// worldSites names the world population's sites for the site hints: its
// instances answer NSID "ams-1" (and hostname.bind
// "ns1.ams.anydns.example"), whose code is an IATA code.
const worldSites = "anydns auth 192.0.2.0/24,2001:db8:53::/48 ^(?P<iata>[a-z]{3})-[0-9]+$\n"

// writeWorld writes n probes' DNS results (IPv4, hostname.bind) and their
// metadata into dir, with the site-hint file; it returns the sites file.
func writeWorld(t *testing.T, dir string, n int) string {
	t.Helper()
	pop := atlastest.NewWorldPopulation(n)
	res := pop.Results(9200001, atlastest.Definition{Type: "dns", AF: 4, Target: "192.0.2.53", QName: "hostname.bind", Protocol: "UDP"}, pop.Probes)
	var b bytes.Buffer
	b.WriteString("[")
	for i, r := range res {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.Write(r)
	}
	b.WriteString("]\n")
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "probes.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pop.WriteProbes(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sites := filepath.Join(t.TempDir(), "sites.txt")
	os.WriteFile(sites, []byte(worldSites), 0o644)
	return sites
}

// TestLabCompareHTMLInChromium: compare -o html over 10,000 Atlas probes
// (the world population: positions, countries, RTTs from the distance)
// makes one page under 10 MB that headless Debian chromium loads offline
// with no errors: a table row per vantage point, a dot per located one,
// and the filter hides rows and their dots. The SVG map of the same input
// is under 5 MB.
func TestLabCompareHTMLInChromium(t *testing.T) {
	lab.Require(t, "chromium", "dot")
	const n = 10000
	dir := t.TempDir()
	sites := writeWorld(t, dir, n)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(format string) []byte {
		cmd := exec.CommandContext(ctx, lab.Binary(t), "compare", "--asn", "none", "--sites", sites, "-o", format, dir)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("compare -o %s: %v\n%s", format, err, errb.String())
		}
		return out.Bytes()
	}
	svg := run("svg")
	if len(svg) > 5<<20 {
		t.Errorf("SVG of %d vantage points: %d bytes, want < 5 MB", n, len(svg))
	}
	page := run("html")
	if len(page) > 10<<20 {
		t.Errorf("HTML of %d vantage points: %d bytes, want < 10 MB", n, len(page))
	}
	t.Logf("%d vantage points: SVG %d bytes, HTML %d bytes", n, len(svg), len(page))
	var doc struct {
		Results []struct {
			Vantage struct{ Location *struct{ Lat float64 } }
		}
	}
	if err := json.Unmarshal(run("json"), &doc); err != nil {
		t.Fatal(err)
	}
	located := 0
	for _, r := range doc.Results {
		if r.Vantage.Location != nil {
			located++
		}
	}
	rows := len(doc.Results)

	file := filepath.Join(dir, "report.html")
	os.WriteFile(file, bytes.Replace(page, []byte("<head>\n"), []byte("<head>\n"+pageHarness), 1), 0o644)
	start := time.Now()
	res, stderr := lab.ChromiumDump(t, ctx, dir, file, 60*time.Second)
	var got struct {
		Rows, Dots, Filtered, FilteredDots int
		Errors                             []string
	}
	if err := json.Unmarshal([]byte(res), &got); err != nil {
		t.Fatal(err)
	}
	if got.Rows != rows || got.Dots != located || len(got.Errors) > 0 || strings.Contains(stderr, "Uncaught") {
		t.Errorf("rows %d (want %d), dots %d (want %d), errors %q", got.Rows, rows, got.Dots, located, got.Errors)
	}
	// "probe 6001" matches probes 6001 and 60010–60019 of 10,000 (ids run
	// from 6001): the filter shows those rows and only their dots.
	if got.Filtered < 1 || got.Filtered > 11 || got.FilteredDots > got.Filtered || got.FilteredDots < 1 {
		t.Errorf("filtered %d rows, %d dots", got.Filtered, got.FilteredDots)
	}
	t.Logf("chromium loaded, filtered and reported in %v: %d rows, %d dots", time.Since(start).Round(time.Millisecond), got.Rows, got.Dots)
}

// pageHarness records errors from the start and, once the page has
// loaded, counts rows and dots and filters by a probe.
const pageHarness = `<script>
window.__errors=[];
window.addEventListener("error",function(e){__errors.push(String(e.message));});
(function(){var ce=console.error;console.error=function(){__errors.push(Array.prototype.join.call(arguments," "));ce.apply(console,arguments);};})();
window.addEventListener("load",function(){
  var out={};
  var rows=function(){return Array.prototype.slice.call(document.querySelectorAll("#rows tbody tr"));};
  out.rows=rows().length;
  out.dots=document.querySelectorAll("figure circle[data-v]").length;
  var f=document.getElementById("filter");
  f.value="probe 6001";f.dispatchEvent(new Event("input"));
  out.filtered=rows().filter(function(r){return !r.hidden;}).length;
  out.filteredDots=Array.prototype.filter.call(document.querySelectorAll("figure circle[data-v]"),function(c){return c.style.display!=="none";}).length;
  out.errors=__errors;
  var pre=document.createElement("pre");pre.id="harness";pre.textContent=JSON.stringify(out);document.body.appendChild(pre);
});
</script>
`
