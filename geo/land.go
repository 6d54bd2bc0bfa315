package geo

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// landGz holds the land outlines of Natural Earth (1:50m, through npm's
// world-atlas), simplified by gendata to about a tenth of a degree.
//
//go:embed land.bin.gz
var landGz []byte

var land = sync.OnceValue(func() [][]Point {
	rings, err := parseLand(landGz)
	if err != nil {
		panic(fmt.Sprintf("geo: embedded land outlines: %v", err)) // tested; a build defect
	}
	return rings
})

// Land returns the land outlines as closed rings (outer coasts and lakes
// alike: drawn with the even-odd rule they come out right). The slice is
// shared: callers must not change it.
func Land() [][]Point { return land() }

func parseLand(gz []byte) ([][]Point, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	r := bytes.NewReader(b)
	n, err := binary.ReadUvarint(r)
	if err != nil || n > 1<<20 {
		return nil, errors.New("bad ring count")
	}
	rings := make([][]Point, 0, n)
	for range n {
		k, err := binary.ReadUvarint(r)
		if err != nil || k > 1<<20 {
			return nil, errors.New("bad point count")
		}
		ring := make([]Point, k)
		var x, y int64
		for i := range ring {
			dx, err1 := binary.ReadVarint(r)
			dy, err2 := binary.ReadVarint(r)
			if err1 != nil || err2 != nil {
				return nil, errors.New("ring cut short")
			}
			x, y = x+dx, y+dy
			ring[i] = Point{Lat: float64(y) / 100, Lon: float64(x) / 100}
		}
		rings = append(rings, ring)
	}
	if r.Len() != 0 {
		return nil, errors.New("trailing bytes")
	}
	return rings, nil
}
