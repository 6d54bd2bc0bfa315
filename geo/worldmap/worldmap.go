// Package worldmap draws a catchment as an SVG world map: land from
// Natural Earth (package geo's outlines) in the Equal Earth projection,
// vantage points as small translucent dots coloured by their catchment key,
// sites as labelled markers, optional lines from each vantage point to its
// site, answers not from the service marked apart, and a legend with each
// key's share.
//
// The renderer is pure: a Map in, SVG bytes out, the same bytes for the
// same Map (golden-tested). It knows nothing of catchments; callers build
// the Map. It stays readable at 10,000 dots (each is a 1.6 px circle at
// half opacity; fewer dots are drawn larger) and small (a dot is one short element; the land is one
// path).
package worldmap

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/anycheck/anycheck/geo"
)

// Map is what to draw.
type Map struct {
	Title string
	// Keys are the catchment keys in legend order (largest first); a dot or
	// site refers to one by index. Keys past the palette share one grey.
	Keys  []Key
	Dots  []Dot
	Sites []Site
	// Lines draws a thin line from each dot with a Site to that site.
	Lines bool
	// Notes are lines of text under the legend (counts of vantage points
	// without a location, enumeration results).
	Notes []string
	// Width in pixels; 0 means 1200.
	Width int
}

// Key is one catchment key of the legend.
type Key struct {
	Label    string
	Vantages int
	Share    float64 // 0..1
}

// Dot is one vantage point.
type Dot struct {
	At  geo.Point
	Key int // index into Keys; -1 for none (drawn grey)
	// Site is the index into Sites of the site it reached, -1 for none.
	Site int
	// Suspect marks an answer not from the service (intercepted, faster
	// than the path or than light): drawn as a ring, apart from the keys.
	Suspect bool
	// ID is written as the dot's data-v attribute, for a page to find it
	// (the HTML report filters dots by it); "" writes none.
	ID string
}

// Site is a labelled marker.
type Site struct {
	At    geo.Point
	Label string
	Key   int // colour of the marker; -1 for none
}

// Palette is the keys' colours: Okabe and Ito's colour-blind-safe set,
// then Tableau's, darkened where they would vanish on the land.
var Palette = []string{
	"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
	"#8c564b", "#7f7f00", "#9467bd", "#17becf", "#bc3c3c", "#2ca02c",
}

// Other is the colour of keys past the palette and of dots without a key.
const Other = "#7a7a7a"

// Colour is the colour of key i.
func Colour(i int) string {
	if i < 0 || i >= len(Palette) {
		return Other
	}
	return Palette[i]
}

// Equal Earth projection (Šavrič, Patterson and Jenny, 2018).
const (
	eeA1 = 1.340264
	eeA2 = -0.081106
	eeA3 = 0.000893
	eeA4 = 0.003796
)

func equalEarth(p geo.Point) (x, y float64) {
	lam, phi := p.Lon*math.Pi/180, p.Lat*math.Pi/180
	th := math.Asin(math.Sqrt(3) / 2 * math.Sin(phi))
	t2 := th * th
	t6 := t2 * t2 * t2
	x = 2 * math.Sqrt(3) * lam * math.Cos(th) / (3 * (9*eeA4*t6*t2 + 7*eeA3*t6 + 3*eeA2*t2 + eeA1))
	y = th * (eeA4*t6*t2 + eeA3*t6 + eeA2*t2 + eeA1)
	return x, y
}

// The projection's extent: x at ±180° on the equator, y at the poles.
var (
	eeMaxX, _ = equalEarth(geo.Point{Lat: 0, Lon: 180})
	_, eeMaxY = equalEarth(geo.Point{Lat: 90, Lon: 0})
)

// frame maps projected coordinates to pixels.
type frame struct {
	w, h, top float64
}

func (f frame) px(p geo.Point) (x, y float64) {
	ex, ey := equalEarth(p)
	return (ex/eeMaxX + 1) / 2 * f.w, f.top + (1-ey/eeMaxY)/2*f.h
}

// num writes a pixel coordinate with one decimal: enough at any size a
// screen shows, and short.
func num(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, math.Round(v*10)/10, 'f', -1, 64)
}

// layout is where the parts of a map go: the title's band, the map, the
// legend below it.
func layout(m Map) (width, top, mapH, total float64) {
	width = float64(m.Width)
	if width <= 0 {
		width = 1200
	}
	mapH = width * eeMaxY / eeMaxX
	if m.Title != "" {
		top = 28
	}
	legendRows := len(m.Keys) + len(m.Notes)
	if hasSuspect(m.Dots) {
		legendRows++
	}
	legendH := 0.0
	if legendRows > 0 {
		legendH = 16 + 16*float64(legendRows)
	}
	return width, top, mapH, top + mapH + legendH
}

// Size is the width and height Write gives m, in pixels.
func Size(m Map) (width, height float64) {
	w, _, _, h := layout(m)
	return w, h
}

// Write renders m as a standalone SVG document.
func Write(w io.Writer, m Map) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	width, top, mapH, total := layout(m)
	f := frame{w: width, h: mapH, top: top}

	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="sans-serif" font-size="12">`+"\n",
		fmtNum(width), fmtNum(total), fmtNum(width), fmtNum(total))
	bw.WriteString(`<style>.land{fill:#e4e4e0;stroke:#c4c4bc;stroke-width:.5}.sea{fill:#f6f9fc}.dots circle{fill-opacity:.55}.sus circle{fill:none;stroke:#000;stroke-width:1}.site path{stroke:#000;stroke-width:1}.site text{paint-order:stroke;stroke:#fff;stroke-width:3px;font-weight:bold}.lines path{fill:none;stroke-width:.4;stroke-opacity:.35}.lines.bold path{stroke-width:1.2;stroke-opacity:.7}</style>` + "\n")
	if m.Title != "" {
		fmt.Fprintf(bw, `<text x="8" y="19" font-size="15" font-weight="bold">%s</text>`+"\n", text(m.Title))
	}
	writeSea(bw, f)
	writeLand(bw, f)
	if m.Lines {
		writeLines(bw, f, m)
	}
	writeDots(bw, f, m)
	writeSites(bw, f, m)
	writeLegend(bw, m, top+mapH)
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

func hasSuspect(dots []Dot) bool {
	for _, d := range dots {
		if d.Suspect {
			return true
		}
	}
	return false
}

func fmtNum(v float64) string { return string(num(nil, v)) }

// writeSea outlines the globe (the projection's edge: meridians ±180°).
func writeSea(w *bufio.Writer, f frame) {
	b := []byte(`<path class="sea" d="`)
	for i := 0; i <= 36; i++ {
		x, y := f.px(geo.Point{Lat: 90 - float64(i)*5, Lon: 180})
		b = appendPt(b, i == 0, x, y)
	}
	for i := 0; i <= 36; i++ {
		x, y := f.px(geo.Point{Lat: -90 + float64(i)*5, Lon: -180})
		b = appendPt(b, false, x, y)
	}
	b = append(b, "Z\"/>\n"...)
	w.Write(b)
}

func appendPt(b []byte, move bool, x, y float64) []byte {
	if move {
		b = append(b, 'M')
	} else {
		b = append(b, 'L')
	}
	b = num(b, x)
	b = append(b, ' ')
	return num(b, y)
}

func writeLand(w *bufio.Writer, f frame) {
	b := []byte(`<path class="land" fill-rule="evenodd" d="`)
	for _, ring := range geo.Land() {
		var lx, ly float64
		n := 0
		for i, p := range ring {
			x, y := f.px(p)
			x, y = math.Round(x*10)/10, math.Round(y*10)/10
			if i > 0 && x == lx && y == ly {
				continue // the same pixel: nothing to draw
			}
			b = appendPt(b, i == 0, x, y)
			lx, ly = x, y
			n++
		}
		b = append(b, 'Z')
	}
	b = append(b, "\"/>\n"...)
	w.Write(b)
}

// byKey groups dot indices by key, in key order (-1, no key, first).
func byKey(m Map, keep func(Dot) bool) ([]int, map[int][]int) {
	groups := map[int][]int{}
	for i, d := range m.Dots {
		if !keep(d) || !d.At.Valid() {
			continue
		}
		k := d.Key
		if k >= len(m.Keys) {
			k = -1
		}
		groups[k] = append(groups[k], i)
	}
	keys := make([]int, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys, groups
}

func writeLines(w *bufio.Writer, f frame, m Map) {
	keys, groups := byKey(m, func(d Dot) bool { return d.Site >= 0 && d.Site < len(m.Sites) && m.Sites[d.Site].At.Valid() })
	if len(keys) == 0 {
		return
	}
	// Few lines are drawn bolder; thousands thin and faint.
	if len(m.Dots) <= 200 {
		w.WriteString(`<g class="lines bold">` + "\n")
	} else {
		w.WriteString(`<g class="lines">` + "\n")
	}
	for _, k := range keys {
		b := fmt.Appendf(nil, `<path stroke="%s" d="`, Colour(k))
		for _, i := range groups[k] {
			d := m.Dots[i]
			x1, y1 := f.px(d.At)
			x2, y2 := f.px(m.Sites[d.Site].At)
			b = appendPt(b, true, x1, y1)
			b = appendPt(b, false, x2, y2)
		}
		b = append(b, "\"/>\n"...)
		w.Write(b)
	}
	w.WriteString("</g>\n")
}

func writeDots(w *bufio.Writer, f frame, m Map) {
	keys, groups := byKey(m, func(d Dot) bool { return !d.Suspect })
	// Few dots are drawn larger; thousands small, so they stay apart.
	r := 1.6
	switch n := len(m.Dots); {
	case n <= 200:
		r = 3.2
	case n <= 2000:
		r = 2.2
	}
	w.WriteString(`<g class="dots">` + "\n")
	for _, k := range keys {
		fmt.Fprintf(w, `<g fill="%s" data-key="%d">`+"\n", Colour(k), k)
		writeCircles(w, f, m.Dots, groups[k], r)
		w.WriteString("</g>\n")
	}
	w.WriteString("</g>\n")
	keys, groups = byKey(m, func(d Dot) bool { return d.Suspect })
	if len(keys) > 0 {
		w.WriteString(`<g class="sus">` + "\n")
		for _, k := range keys {
			writeCircles(w, f, m.Dots, groups[k], r+1)
		}
		w.WriteString("</g>\n")
	}
}

func writeCircles(w *bufio.Writer, f frame, dots []Dot, idx []int, r float64) {
	b := make([]byte, 0, 64)
	for _, i := range idx {
		d := dots[i]
		x, y := f.px(d.At)
		b = append(b[:0], `<circle cx="`...)
		b = num(b, x)
		b = append(b, `" cy="`...)
		b = num(b, y)
		b = append(b, `" r="`...)
		b = num(b, r)
		b = append(b, '"')
		if d.ID != "" {
			b = append(b, ` data-v="`...)
			b = append(b, attr(d.ID)...)
			b = append(b, '"')
		}
		b = append(b, "/>\n"...)
		w.Write(b)
	}
}

func writeSites(w *bufio.Writer, f frame, m Map) {
	idx := make([]int, 0, len(m.Sites))
	for i, s := range m.Sites {
		if s.At.Valid() {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	// Labels in order of latitude, north first, so overlapping ones stack
	// the same way every time.
	sort.SliceStable(idx, func(a, b int) bool { return m.Sites[idx[a]].At.Lat > m.Sites[idx[b]].At.Lat })
	w.WriteString(`<g class="site">` + "\n")
	for _, i := range idx {
		s := m.Sites[i]
		x, y := f.px(s.At)
		b := fmt.Appendf(nil, `<g><path fill="%s" d="`, Colour(s.Key))
		b = appendPt(b, true, x, y-6)
		b = appendPt(b, false, x+5, y)
		b = appendPt(b, false, x, y+6)
		b = appendPt(b, false, x-5, y)
		b = append(b, `Z"/><text x="`...)
		b = num(b, x+7)
		b = append(b, `" y="`...)
		b = num(b, y+4)
		b = append(b, `">`...)
		b = append(b, text(s.Label)...)
		b = append(b, "</text></g>\n"...)
		w.Write(b)
	}
	w.WriteString("</g>\n")
}

func writeLegend(w *bufio.Writer, m Map, top float64) {
	y := top + 18
	if len(m.Keys) > 0 || len(m.Notes) > 0 || hasSuspect(m.Dots) {
		w.WriteString(`<g class="legend">` + "\n")
	}
	for i, k := range m.Keys {
		fmt.Fprintf(w, `<rect x="10" y="%s" width="10" height="10" fill="%s"/><text x="26" y="%s">%s — %d (%s)</text>`+"\n",
			fmtNum(y-9), Colour(i), fmtNum(y), text(k.Label), k.Vantages, pct(k.Share))
		y += 16
	}
	if hasSuspect(m.Dots) {
		n := 0
		for _, d := range m.Dots {
			if d.Suspect {
				n++
			}
		}
		fmt.Fprintf(w, `<circle cx="15" cy="%s" r="4" fill="none" stroke="#000"/><text x="26" y="%s">not from the service (counted apart) — %d</text>`+"\n",
			fmtNum(y-4), fmtNum(y), n)
		y += 16
	}
	for _, n := range m.Notes {
		fmt.Fprintf(w, `<text x="10" y="%s" fill="#444">%s</text>`+"\n", fmtNum(y), text(n))
		y += 16
	}
	if len(m.Keys) > 0 || len(m.Notes) > 0 || hasSuspect(m.Dots) {
		w.WriteString("</g>\n")
	}
}

func pct(f float64) string {
	return strconv.FormatFloat(math.Round(f*1000)/10, 'f', 1, 64) + "%"
}

// clean keeps a string valid in XML: invalid UTF-8, control characters and
// the code points XML forbids become U+FFFD (callers escape untrusted
// text for people first; this is only so the document always parses).
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0xfffe && r <= 0xffff) || unicode.Is(unicode.Cs, r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0xfffe && r <= 0xffff) {
			return '\ufffd'
		}
		return r
	}, strings.ToValidUTF8(s, "\ufffd"))
}

var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
var attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")

func text(s string) string { return textEscaper.Replace(clean(s)) }
func attr(s string) string { return attrEscaper.Replace(clean(s)) }
