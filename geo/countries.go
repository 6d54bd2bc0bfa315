package geo

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// countriesTSV holds each country's centroid (the centroid of its largest
// polygon in Natural Earth's 1:50m countries), made by gendata.
//
//go:embed countries.tsv
var countriesTSV string

var centroids = sync.OnceValue(func() map[string]Point {
	m, err := parseCentroids(countriesTSV)
	if err != nil {
		panic(fmt.Sprintf("geo: embedded country centroids: %v", err)) // tested; a build defect
	}
	return m
})

func parseCentroids(text string) (map[string]Point, error) {
	m := map[string]Point{}
	for n, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 3 || len(f[0]) != 2 {
			return nil, fmt.Errorf("line %d: %q", n+1, line)
		}
		lat, err1 := strconv.ParseFloat(f[1], 64)
		lon, err2 := strconv.ParseFloat(f[2], 64)
		p := Point{lat, lon}
		if err1 != nil || err2 != nil || !p.Valid() {
			return nil, fmt.Errorf("line %d: location %q,%q", n+1, f[1], f[2])
		}
		m[f[0]] = p
	}
	return m, nil
}

// Centroid is the centroid of a country (ISO 3166-1 alpha-2, any case).
func Centroid(country string) (Point, bool) {
	p, ok := centroids()[strings.ToUpper(country)]
	return p, ok
}

// CentroidKm is how close to its country's centroid a position must be to
// count as sitting on it.
const CentroidKm = 10.0

// Atlas system tags that say RIPE Atlas set a probe's position itself, from
// IP geolocation, because its host never did.
const (
	TagAutoGeoCountry = "system-auto-geoip-country" // somewhere in the country
	TagAutoGeoCity    = "system-auto-geoip-city"    // somewhere in the city
)

// Approximate reports whether a probe's published position says little
// about where it is, and why. RIPE Atlas places a probe whose host never
// set its location from IP geolocation and tags it: at country level
// (TagAutoGeoCountry) the position is the geolocation database's point for
// "somewhere in this country", the same for every such probe of the
// country. A position on the country's centroid (within CentroidKm) is
// taken the same way when the tags are not at hand (results that carry
// coordinates only). City-level placement is kept: it is off by tens of
// kilometres, not by a country.
func Approximate(country string, p Point, tags []string) (bool, string) {
	for _, t := range tags {
		if t == TagAutoGeoCountry {
			return true, "placed by Atlas from IP geolocation, country level"
		}
	}
	if c, ok := Centroid(country); ok && p.Valid() && Distance(c, p) <= CentroidKm {
		return true, "on the country's centroid"
	}
	return false, ""
}
