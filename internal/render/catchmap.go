package render

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/geo/worldmap"
	"github.com/anycheck/anycheck/internal/report"
)

// rowID ties a catchment-table line to its map dot (data-v) in the HTML
// report: its index in the rows.
func rowID(i int) string { return "r" + strconv.Itoa(i) }

// TargetMap is one target's catchment as a world map: every line with a
// position is a dot coloured by its catchment key (the target's keys in
// share order, as in the text report), lines counted apart are rings,
// sites with a place are labelled markers; the legend gives each key's
// share, the notes what has no position and what latency proves.
func TargetMap(rows []report.CompareRow, t report.CompareTarget, lines bool) worldmap.Map {
	m := worldmap.Map{Title: "catchment of " + targetLabel(t.Target, strings.Join(t.Names, ", ")), Lines: lines}
	keyIndex := map[string]int{}
	siteIndex := map[string]int{}
	for i, sh := range t.Instances {
		keyIndex[sh.Source+"\x00"+sh.Instance] = i
		label := shareLabel(sh)
		if s := sh.Site; s != nil && s.Place != nil {
			siteIndex[sh.Instance] = len(m.Sites)
			m.Sites = append(m.Sites, worldmap.Site{At: geo.Point{Lat: s.Place.Lat, Lon: s.Place.Lon}, Label: Escape(sh.Instance), Key: i})
		}
		m.Keys = append(m.Keys, worldmap.Key{Label: label, Vantages: sh.Vantages, Share: sh.Share})
	}
	unplaced, approx, keyless := 0, 0, 0
	for i, r := range rows {
		if r.Target != t.Target {
			continue
		}
		loc := r.Vantage.Location
		if loc == nil {
			unplaced++
			continue
		}
		if loc.Approximate {
			approx++
		}
		d := worldmap.Dot{At: geo.Point{Lat: loc.Lat, Lon: loc.Lon}, Key: -1, Site: -1, Suspect: r.Suspect, ID: rowID(i)}
		if c := r.Catchment; c != nil {
			if k, ok := keyIndex[c.Kind+"\x00"+c.Value]; ok {
				d.Key = k
			}
			if s, ok := siteIndex[c.Value]; ok && c.Kind == "site" {
				d.Site = s
			}
		}
		if d.Key < 0 && !d.Suspect {
			keyless++
		}
		m.Dots = append(m.Dots, d)
	}
	if keyless > 0 {
		m.Notes = append(m.Notes, plural(keyless, "vantage point")+" in grey: split by flow, or naming no instance")
	}
	if unplaced > 0 {
		m.Notes = append(m.Notes, plural(unplaced, "vantage point")+" without a position (not drawn)")
	}
	if approx > 0 {
		m.Notes = append(m.Notes, plural(approx, "vantage point")+" drawn at an approximate position (its country's)")
	}
	if l := t.Latency; l != nil && len(l.Instances) > 1 {
		note := fmt.Sprintf("latency: ≥ %d instances by RTT", len(l.Instances))
		if l.Named > 0 {
			note += "; the names give " + plural(l.Named, "site")
		}
		if l.Approximate > 0 {
			note += fmt.Sprintf("; %d rest on approximate positions", l.Approximate)
		}
		m.Notes = append(m.Notes, note)
	}
	return m
}

// CompareSVG writes the catchment as an SVG world map: one map per target,
// stacked.
func CompareSVG(w io.Writer, rows []report.CompareRow, s *report.CompareSummary, lines bool) error {
	if s == nil || len(s.Targets) == 0 {
		return worldmap.Write(w, worldmap.Map{Title: "no catchment to draw"})
	}
	if len(s.Targets) == 1 {
		return worldmap.Write(w, TargetMap(rows, s.Targets[0], lines))
	}
	var parts [][]byte
	var heights []float64
	width, height := 0.0, 0.0
	for _, t := range s.Targets {
		m := TargetMap(rows, t, lines)
		var b bytes.Buffer
		if err := worldmap.Write(&b, m); err != nil {
			return err
		}
		wd, ht := worldmap.Size(m)
		width = math.Max(width, wd)
		height += ht
		parts = append(parts, b.Bytes())
		heights = append(heights, ht)
	}
	ew := &errWriter{w: w}
	ew.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s">`+"\n", fmtPx(width), fmtPx(height), fmtPx(width), fmtPx(height))
	y := 0.0
	for i, p := range parts {
		ew.printf(`<g transform="translate(0 %s)">`+"\n", fmtPx(y))
		if ew.err == nil {
			_, ew.err = w.Write(p)
		}
		ew.printf("</g>\n")
		y += heights[i]
	}
	ew.printf("</svg>\n")
	return ew.err
}

func fmtPx(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

// CompareHTML writes the catchment report as one self-contained HTML page:
// the summary (the text report's, without its table), a map per target,
// the dot graph of paths when graph holds Graphviz's SVG of it, and the
// catchment table, sortable and filterable, one row per line (filtering
// hides the rows' dots on the maps).
func CompareHTML(w io.Writer, rows []report.CompareRow, s *report.CompareSummary, graph []byte, lines bool) error {
	var text bytes.Buffer
	if err := CompareText(&text, rows, s, CompareOptions{NoTable: true}); err != nil {
		return err
	}
	p := HTMLPage{Title: "anycheck compare", Summary: strings.Split(strings.TrimRight(text.String(), "\n"), "\n")}
	if s != nil {
		for _, t := range s.Targets {
			var b bytes.Buffer
			if err := worldmap.Write(&b, TargetMap(rows, t, lines)); err != nil {
				return err
			}
			p.Figures = append(p.Figures, HTMLFigure{Caption: "catchment of " + targetLabel(t.Target, strings.Join(t.Names, ", ")) + ": one dot per located vantage point", SVG: b.Bytes()})
		}
	}
	if len(graph) > 0 {
		p.Figures = append(p.Figures, HTMLFigure{Caption: "paths: vantage points → ASes → instances (Graphviz)", SVG: graph})
	}
	p.Columns = []HTMLColumn{{Name: "vantage"}, {Name: "AS"}, {Name: "country"}, {Name: "position"}, {Name: "target"}, {Name: "catchment"},
		{Name: "site"}, {Name: "place"}, {Name: "instance"}, {Name: "upstream"}, {Name: "AS path"}, {Name: "DNS RTT ms", Numeric: true},
		{Name: "path RTT ms", Numeric: true}, {Name: "notes"}}
	for i, r := range rows {
		country, pos, place, inst := "", "", "", ""
		if o := r.Vantage.Origin; o != nil {
			country = Escape(o.Country)
		}
		if l := r.Vantage.Location; l != nil {
			pos = strconv.FormatFloat(l.Lat, 'f', -1, 64) + "," + strconv.FormatFloat(l.Lon, 'f', -1, 64)
			if l.Approximate {
				pos += " (approximate)"
			}
		}
		if r.Instance.Site != nil && r.Instance.Site.Place != nil {
			pl := r.Instance.Site.Place
			place = strings.TrimSpace(pl.Code + " " + pl.City + ", " + pl.Country)
		}
		if r.Instance.Name != "" {
			inst = Escape(string(r.Instance.Name))
		}
		notes := rowNotes(r)
		p.Rows = append(p.Rows, HTMLRow{ID: rowID(i), Cells: []string{
			Escape(r.Vantage.Label), vantageAS(r.Vantage), country, pos, targetLabel(r.Target, rowName(r)), rowCatchment(r),
			rowSite(r), place, inst, upstreamLabel(r.Upstream), asPath(r.ASPath),
			msCell(r.DNSRTTMs), msCell(r.PathRTTMs), strings.Join(notes, "; "),
		}})
	}
	return WriteHTML(w, p)
}

// msCell is an RTT as a number for a sortable column; "" when unknown.
func msCell(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', 3, 64)
}
