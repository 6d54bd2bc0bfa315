package render

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/geo/worldmap"
	"github.com/anycheck/anycheck/internal/lab"
	xhtml "golang.org/x/net/html"
)

// htmlSample is a page of n rows whose map has a dot per row (every third
// row's vantage has no location, so no dot), with hostile text.
func htmlSample(n int) HTMLPage {
	places := geo.Places()
	m := worldmap.Map{Keys: []worldmap.Key{{Label: "ams", Vantages: n / 2, Share: .5}, {Label: "lax", Vantages: n - n/2, Share: .5}}}
	p := HTMLPage{
		Title:   "catchment <script>alert(1)</script>",
		Summary: []string{"2 instances", "evil \x1b]0;title\x07"},
		Columns: []HTMLColumn{{Name: "vantage"}, {Name: "site"}, {Name: "rtt ms", Numeric: true}},
	}
	for i := range n {
		id := fmt.Sprint(i + 1)
		site := "ams"
		if i%2 == 1 {
			site = "lax"
		}
		if i%3 != 2 {
			pl := places[(i*7919)%len(places)]
			m.Dots = append(m.Dots, worldmap.Dot{At: pl.Point, Key: i % 2, Site: -1, ID: id})
		}
		p.Rows = append(p.Rows, HTMLRow{ID: id, Cells: []string{fmt.Sprintf("probe %d", i+1), site, fmt.Sprintf("%.1f", float64((i*37)%400)/2)}})
	}
	p.Rows = append(p.Rows, HTMLRow{ID: "x\"><img src=x>", Cells: []string{"<b>bold</b>", "lax", "n/a"}})
	var svg bytes.Buffer
	worldmap.Write(&svg, m)
	p.Figures = []HTMLFigure{{Caption: "the map", SVG: append([]byte(`<?xml version="1.0"?>`+"\n<!DOCTYPE svg>\n"), svg.Bytes()...)}}
	return p
}

func TestWriteHTML(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, htmlSample(30)); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, bad := range []string{"<script>alert", "<b>bold", "<img src=x>", "<?xml", "<!DOCTYPE svg", "\x1b", "\x07"} {
		if strings.Contains(s, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", `evil \x1b]0;title\x07`, "&lt;b&gt;bold&lt;/b&gt;", `<th data-type="num" title="sort">rtt ms</th>`, "31 of 31 rows"} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Nothing is fetched: no element has a src or href attribute (the SVG
	// namespace is a name, not a fetch), and the hostile row id stayed an
	// attribute value.
	z := xhtml.NewTokenizer(strings.NewReader(s))
	tags := map[string]int{}
	for tt := z.Next(); tt != xhtml.ErrorToken; tt = z.Next() {
		tok := z.Token()
		if tt == xhtml.StartTagToken || tt == xhtml.SelfClosingTagToken {
			tags[tok.Data]++
			for _, a := range tok.Attr {
				if k := strings.ToLower(a.Key); k == "src" || k == "href" || strings.HasSuffix(k, ":href") {
					t.Errorf("<%s %s=%q>: the page refers to something outside itself", tok.Data, a.Key, a.Val)
				}
			}
		}
	}
	if tags["img"] != 0 || tags["b"] != 0 || tags["script"] != 1 || tags["tr"] != 32 {
		t.Errorf("elements %v: want 1 script, 32 rows (header too), no img or b", tags)
	}
}

// harness is put at the top of the page under test: it records errors
// and console.error calls from the start, and once the page has loaded it
// counts rows and dots, filters, sorts, and writes what it saw as JSON
// into a <pre id="harness"> that chromium's --dump-dom prints.
const harness = `<script>
window.__errors=[];
window.addEventListener("error",function(e){__errors.push(String(e.message));});
(function(){var ce=console.error;console.error=function(){__errors.push(Array.prototype.join.call(arguments," "));ce.apply(console,arguments);};})();
window.addEventListener("load",function(){
  var out={};
  var rows=function(){return Array.prototype.slice.call(document.querySelectorAll("#rows tbody tr"));};
  var shownDots=function(){return Array.prototype.filter.call(document.querySelectorAll("figure circle[data-v]"),function(c){return c.style.display!=="none";}).length;};
  out.rows=rows().length;
  out.dots=document.querySelectorAll("figure circle[data-v]").length;
  var f=document.getElementById("filter");
  f.value="lax";f.dispatchEvent(new Event("input"));
  out.filtered=rows().filter(function(r){return !r.hidden;}).length;
  out.filteredDots=shownDots();
  out.count=document.getElementById("count").textContent;
  f.value="";f.dispatchEvent(new Event("input"));
  out.unfilteredDots=shownDots();
  var th=document.querySelectorAll("#rows th")[2];
  th.click();th.click();
  out.firstAfterSort=rows()[0].cells[2].textContent;
  out.errors=__errors;
  var pre=document.createElement("pre");pre.id="harness";pre.textContent=JSON.stringify(out);document.body.appendChild(pre);
});
</script>
`

// TestLabHTMLInChromium loads the page in headless Debian chromium,
// offline (no network, a fresh profile): no errors, one row per vantage
// point, one dot per located vantage point, the filter hides rows and
// their dots, and sorting works.
func TestLabHTMLInChromium(t *testing.T) {
	lab.Require(t, "chromium")
	const n = 10000
	p := htmlSample(n)
	var b bytes.Buffer
	if err := WriteHTML(&b, p); err != nil {
		t.Fatal(err)
	}
	if b.Len() > 10<<20 {
		t.Errorf("page of %d rows: %d bytes, want < 10 MB", n, b.Len())
	}
	page := strings.Replace(b.String(), "<head>\n", "<head>\n"+harness, 1)
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	os.WriteFile(file, []byte(page), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, stderr := lab.ChromiumDump(t, ctx, dir, file, 30*time.Second)
	var out struct {
		Rows, Dots, Filtered, FilteredDots, UnfilteredDots int
		Count, FirstAfterSort                              string
		Errors                                             []string
	}
	if err := json.Unmarshal([]byte(res), &out); err != nil {
		t.Fatalf("harness output %q: %v\nchromium stderr:\n%s", res, err, stderr)
	}
	located := n - n/3
	lax := n/2 + 1 // odd rows and the hostile row
	laxDots := 0
	for i := range n {
		if i%2 == 1 && i%3 != 2 {
			laxDots++
		}
	}
	if out.Rows != n+1 || out.Dots != located || out.Filtered != lax || out.FilteredDots != laxDots || out.UnfilteredDots != located {
		t.Errorf("rows %d (want %d), dots %d (want %d), filtered %d (want %d), their dots %d (want %d), dots after clearing %d",
			out.Rows, n+1, out.Dots, located, out.Filtered, lax, out.FilteredDots, laxDots, out.UnfilteredDots)
	}
	if out.Count != fmt.Sprintf("%d of %d rows", lax, n+1) {
		t.Errorf("count %q", out.Count)
	}
	if out.FirstAfterSort != "199.5" {
		t.Errorf("sorted descending by rtt, first %q", out.FirstAfterSort)
	}
	if len(out.Errors) > 0 || strings.Contains(stderr, "Uncaught") {
		t.Errorf("errors: %q\n%s", out.Errors, stderr)
	}
	t.Logf("%d rows, %d dots: %d bytes", out.Rows, out.Dots, b.Len())
}
