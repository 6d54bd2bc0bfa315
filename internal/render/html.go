package render

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"regexp"
	"sync"
	"unicode"
	"unicode/utf8"
)

// HTMLPage is a self-contained report page: a title, summary lines, any
// number of inline SVG figures (the catchment maps, the dot graph of paths),
// and one sortable, filterable table. Everything is inline — styles,
// script, pictures — so the file opens offline and fetches nothing.
//
// Its strings are text a person reads, untrusted parts already made
// visible with Escape (as for a terminal); WriteHTML escapes them for HTML
// and makes visible any control character still in them.
type HTMLPage struct {
	Title   string
	Summary []string // lines of text
	Figures []HTMLFigure
	Columns []HTMLColumn
	Rows    []HTMLRow
}

// HTMLFigure is an inline SVG with a caption. The SVG must come from
// anycheck's own renderers or Graphviz (its text already escaped); an XML
// declaration and DOCTYPE are dropped.
type HTMLFigure struct {
	Caption string
	SVG     []byte
}

// HTMLColumn is a table column; Numeric columns sort as numbers.
type HTMLColumn struct {
	Name    string
	Numeric bool
}

// HTMLRow is a table row. ID ties it to the map dots of the same ID (their
// data-v attribute): filtering the table hides the dots of hidden rows.
type HTMLRow struct {
	ID    string
	Cells []string // text
}

// xmlProlog matches what precedes an SVG's root element in a file of its
// own; compiled on first use (start-up time matters).
var xmlProlog = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?s)\A\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?(<!--.*?-->\s*)*`)
})

// WriteHTML writes p as one HTML document.
func WriteHTML(w io.Writer, p HTMLPage) error {
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">` + "\n")
	fmt.Fprintf(&b, "<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n", htmlText(p.Title), pageCSS)
	fmt.Fprintf(&b, "<h1>%s</h1>\n", htmlText(p.Title))
	if len(p.Summary) > 0 {
		b.WriteString("<pre class=\"summary\">")
		for _, l := range p.Summary {
			b.WriteString(htmlText(l))
			b.WriteByte('\n')
		}
		b.WriteString("</pre>\n")
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	for i, f := range p.Figures {
		b.Reset()
		fmt.Fprintf(&b, "<figure id=\"fig%d\">\n", i)
		svg := xmlProlog().ReplaceAll(f.SVG, nil)
		b.Write(svg)
		fmt.Fprintf(&b, "\n<figcaption>%s</figcaption>\n</figure>\n", htmlText(f.Caption))
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
	}
	b.Reset()
	fmt.Fprintf(&b, "<div class=\"bar\"><input id=\"filter\" type=\"search\" placeholder=\"filter: text in any column\" autocomplete=\"off\"> <span id=\"count\">%d of %d rows</span></div>\n", len(p.Rows), len(p.Rows))
	b.WriteString("<table id=\"rows\">\n<thead><tr>")
	for _, c := range p.Columns {
		kind := "text"
		if c.Numeric {
			kind = "num"
		}
		fmt.Fprintf(&b, "<th data-type=\"%s\" title=\"sort\">%s</th>", kind, htmlText(c.Name))
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for i, r := range p.Rows {
		if i > 0 && i%512 == 0 {
			if _, err := w.Write(b.Bytes()); err != nil {
				return err
			}
			b.Reset()
		}
		fmt.Fprintf(&b, "<tr data-v=\"%s\">", html.EscapeString(clean(r.ID)))
		for _, c := range r.Cells {
			b.WriteString("<td>")
			b.WriteString(htmlText(c))
			b.WriteString("</td>")
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody>\n</table>\n<script>")
	b.WriteString(pageJS)
	b.WriteString("</script>\n</body>\n</html>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// htmlText escapes text for an HTML text node: markup characters become
// entities, and a string that still holds control characters or invalid
// UTF-8 is escaped as for a terminal first (text already escaped has none).
func htmlText(s string) string { return html.EscapeString(clean(s)) }

// clean makes control characters, invalid UTF-8 and invisible format
// characters visible; other text (backslashes included) is left as it is.
func clean(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || !unicode.IsPrint(r) && r != ' ' {
			return Escape(s)
		}
	}
	return s
}

const pageCSS = `body{font:14px/1.4 sans-serif;margin:1em 2em;color:#222}
h1{font-size:20px}
pre.summary{background:#f6f6f3;padding:.6em 1em;overflow-x:auto}
figure{margin:1em 0}
figure svg{max-width:100%;height:auto}
figcaption{color:#555;font-size:12px}
.bar{position:sticky;top:0;background:#fff;padding:.4em 0}
#filter{width:24em;font-size:14px;padding:2px 4px}
table{border-collapse:collapse;font-size:12px}
th,td{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left;white-space:nowrap}
th{cursor:pointer;background:#eee;position:sticky;top:2.2em}
th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}
tr:hover td{background:#fff7d6}`

// pageJS sorts the table by a clicked column and filters its rows by the
// text typed, hiding the map dots of hidden rows. It runs once at load on
// prepared arrays (10,000 rows filter in a few milliseconds).
const pageJS = `(function(){
"use strict";
var tbody=document.querySelector("#rows tbody");
var rows=Array.prototype.slice.call(tbody.rows);
var text=rows.map(function(r){return r.textContent.toLowerCase();});
var dots=new Map();
document.querySelectorAll("figure circle[data-v]").forEach(function(c){
  var k=c.getAttribute("data-v");var l=dots.get(k);if(!l){l=[];dots.set(k,l);}l.push(c);});
var count=document.getElementById("count");
var filter=document.getElementById("filter");
function apply(){
  var q=filter.value.trim().toLowerCase();var n=0;
  for(var i=0;i<rows.length;i++){
    var show=q===""||text[i].indexOf(q)>=0;
    rows[i].hidden=!show;if(show)n++;
    var d=dots.get(rows[i].getAttribute("data-v"));
    if(d)for(var j=0;j<d.length;j++)d[j].style.display=show?"":"none";
  }
  count.textContent=n+" of "+rows.length+" rows";
}
filter.addEventListener("input",apply);
var ths=document.querySelectorAll("#rows th");
ths.forEach(function(th,col){th.addEventListener("click",function(){
  var asc=!th.classList.contains("asc");
  ths.forEach(function(h){h.classList.remove("asc","desc");});
  th.classList.add(asc?"asc":"desc");
  var num=th.getAttribute("data-type")==="num";
  var keyed=rows.map(function(r,i){var t=r.cells[col]?r.cells[col].textContent:"";
    return {r:r,i:i,k:num?parseFloat(t):t.toLowerCase()};});
  keyed.sort(function(a,b){
    var x=a.k,y=b.k,c;
    if(num){var xn=isNaN(x),yn=isNaN(y);c=xn&&yn?0:xn?1:yn?-1:x-y;if(!asc&&!(xn||yn))c=-c;}
    else{c=x<y?-1:x>y?1:0;if(!asc)c=-c;}
    return c||a.i-b.i;});
  var f=document.createDocumentFragment();
  rows=keyed.map(function(e){f.appendChild(e.r);return e.r;});
  text=rows.map(function(r){return r.textContent.toLowerCase();});
  tbody.appendChild(f);
});});
})();
`
