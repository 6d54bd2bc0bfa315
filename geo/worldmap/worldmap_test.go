package worldmap

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/geo"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func place(code string) geo.Point {
	p, ok := geo.LookupIATA(code)
	if !ok {
		panic(code)
	}
	return p.Point
}

// sample is a small catchment: two sites, vantage points near cities, one
// intercepted answer, one vantage with no location, hostile labels.
func sample() Map {
	return Map{
		Title: "catchment of 192.0.2.53 <lab> & co",
		Keys: []Key{
			{Label: "ams (AMS Amsterdam, NL)", Vantages: 3, Share: 0.6},
			{Label: "lax (LAX Los Angeles, US)", Vantages: 2, Share: 0.4},
		},
		Sites: []Site{
			{At: place("AMS"), Label: "ams", Key: 0},
			{At: place("LAX"), Label: "lax\x1b[31m", Key: 1},
		},
		Dots: []Dot{
			{At: geo.Point{Lat: 52.1, Lon: 5.1}, Key: 0, Site: 0, ID: "1"},
			{At: geo.Point{Lat: 48.8, Lon: 2.3}, Key: 0, Site: 0, ID: "2"},
			{At: geo.Point{Lat: 40.4, Lon: -3.7}, Key: 0, Site: 0, ID: "3"},
			{At: geo.Point{Lat: 37.8, Lon: -122.4}, Key: 1, Site: 1, ID: "4\""},
			{At: geo.Point{Lat: 35.7, Lon: 139.7}, Key: 1, Site: 1, ID: "5"},
			{At: geo.Point{Lat: -33.9, Lon: 151.2}, Key: -1, Site: -1, Suspect: true, ID: "6"},
			{At: geo.Point{}, Key: 0, Site: 0, ID: "7"}, // no location: not drawn
		},
		Lines: true,
		Notes: []string{"1 vantage point without a location", "latency finds ≥ 2 instances"},
	}
}

func TestGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, sample()); err != nil {
		t.Fatal(err)
	}
	checkXML(t, b.Bytes())
	golden := filepath.Join("testdata", "sample.svg")
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("SVG differs from %s (go test -update to accept)", golden)
	}
	s := b.String()
	// One circle per located dot (6 of 7), the suspect one as a ring.
	if n := strings.Count(s, "<circle "); n != 6+1 { // + the legend's ring
		t.Errorf("%d circles", n)
	}
	for _, want := range []string{`data-v="4&quot;"`, "&lt;lab&gt; &amp; co", "lax\ufffd[31m", "ams (AMS Amsterdam, NL) — 3 (60.0%)", "not from the service (counted apart) — 1", "latency finds ≥ 2 instances"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(s, `data-v="7"`) {
		t.Errorf("a dot without a location was drawn")
	}
	// The same map gives the same bytes.
	var again bytes.Buffer
	Write(&again, sample())
	if !bytes.Equal(again.Bytes(), b.Bytes()) {
		t.Errorf("not deterministic")
	}
}

func checkXML(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
	}
}

// bigMap is 10,000 vantage points over 20 keys with lines.
func bigMap() Map {
	rng := rand.New(rand.NewPCG(1, 2))
	all := geo.Places()
	m := Map{Title: "10,000 vantage points", Lines: true}
	for k := range 20 {
		p := all[rng.IntN(len(all))]
		m.Keys = append(m.Keys, Key{Label: fmt.Sprintf("site-%02d (%s)", k, p.String()), Vantages: 500, Share: 0.05})
		m.Sites = append(m.Sites, Site{At: p.Point, Label: fmt.Sprintf("site-%02d", k), Key: k})
	}
	for i := range 10000 {
		p := all[rng.IntN(len(all))]
		k := rng.IntN(20)
		m.Dots = append(m.Dots, Dot{At: geo.Point{Lat: p.Lat + rng.NormFloat64()*0.2, Lon: p.Lon + rng.NormFloat64()*0.2}, Key: k, Site: k, Suspect: i%97 == 0, ID: fmt.Sprint(i + 1)})
	}
	return m
}

func TestTenThousandDots(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, bigMap()); err != nil {
		t.Fatal(err)
	}
	checkXML(t, b.Bytes())
	if b.Len() > 5<<20 {
		t.Errorf("SVG of 10,000 vantage points: %d bytes, want < 5 MB", b.Len())
	}
	if n := strings.Count(b.String(), "data-v="); n != 10000 {
		t.Errorf("%d dots", n)
	}
	t.Logf("10,000 vantage points with lines: %d bytes", b.Len())
}

func BenchmarkWrite10k(b *testing.B) {
	m := bigMap()
	for b.Loop() {
		Write(io.Discard, m)
	}
}
