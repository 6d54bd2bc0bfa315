package geo

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Point is a place on the globe in degrees (WGS 84).
type Point struct {
	Lat, Lon float64
}

// Valid reports whether p is a usable location: finite, latitude within
// ±90 and longitude within ±180, and not 0,0 ("null island", the value of
// a location nobody set).
func (p Point) Valid() bool {
	if math.IsNaN(p.Lat) || math.IsNaN(p.Lon) || math.IsInf(p.Lat, 0) || math.IsInf(p.Lon, 0) {
		return false
	}
	if p.Lat < -90 || p.Lat > 90 || p.Lon < -180 || p.Lon > 180 {
		return false
	}
	return p.Lat != 0 || p.Lon != 0
}

func (p Point) String() string {
	return strconv.FormatFloat(p.Lat, 'f', -1, 64) + "," + strconv.FormatFloat(p.Lon, 'f', -1, 64)
}

// ParsePoint reads "LAT,LON" in decimal degrees. A point that is not Valid
// is an error naming what is wrong with it.
func ParsePoint(s string) (Point, error) {
	la, lo, ok := strings.Cut(s, ",")
	if !ok {
		return Point{}, fmt.Errorf("location %q: want LAT,LON in decimal degrees", s)
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(la), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(lo), 64)
	if err1 != nil || err2 != nil {
		return Point{}, fmt.Errorf("location %q: want LAT,LON in decimal degrees", s)
	}
	p := Point{lat, lon}
	switch {
	case math.IsNaN(lat) || math.IsNaN(lon) || math.IsInf(lat, 0) || math.IsInf(lon, 0):
		return Point{}, fmt.Errorf("location %q: not a number", s)
	case lat < -90 || lat > 90:
		return Point{}, fmt.Errorf("location %q: latitude out of range (-90 to 90)", s)
	case lon < -180 || lon > 180:
		return Point{}, fmt.Errorf("location %q: longitude out of range (-180 to 180)", s)
	case !p.Valid():
		return Point{}, fmt.Errorf("location %q: 0,0 is where unset locations land, not a place", s)
	}
	return p, nil
}

// EarthRadiusKm is the Earth's mean radius (IUGG, 6371.0088 km).
const EarthRadiusKm = 6371.0088

// Distance is the great-circle distance between a and b in kilometres
// (haversine on the mean radius: within 0.5 % of the ellipsoid, far below
// what a round-trip time can tell).
func Distance(a, b Point) float64 {
	const rad = math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLon := (b.Lon - a.Lon) * rad
	s1, s2 := math.Sin(dLat/2), math.Sin(dLon/2)
	h := s1*s1 + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*s2*s2
	return 2 * EarthRadiusKm * math.Asin(math.Sqrt(math.Min(1, h)))
}

// FibreKmPerMs is how far a signal travels in optical fibre in one
// millisecond: light at 2/3 of its vacuum speed (299,792.458 km/s; silica's
// refractive index is about 1.5), the constant of delay-based geolocation
// since CBG (Gueye et al., "Constraint-Based Geolocation of Internet Hosts",
// IMC 2004) and of iGreedy's disks. Paths are longer than great circles and
// routers add delay, so real answers come from well inside the bound; the
// bound is what physics allows, never an estimate.
const FibreKmPerMs = 299792.458 / 1.5 / 1000

// MaxRTT is the longest round-trip time the geometry accepts: a longer one
// (a clock step, a queue that held the packet) says nothing about distance
// and is ignored with a count. 10 s is fifty times the round trip to the
// antipode through fibre.
const MaxRTT = 10 * time.Second

// UsableRTT reports whether rtt can bound a distance: above zero and at
// most MaxRTT.
func UsableRTT(rtt time.Duration) bool { return rtt > 0 && rtt <= MaxRTT }

// RadiusKm is how far from the vantage point an answer that took rtt can
// have come from: rtt/2 × FibreKmPerMs.
func RadiusKm(rtt time.Duration) float64 {
	return float64(rtt) / float64(time.Millisecond) / 2 * FibreKmPerMs
}

// MinRTT is the least round-trip time physics allows over km of fibre.
func MinRTT(km float64) time.Duration {
	if km <= 0 {
		return 0
	}
	return time.Duration(2 * km / FibreKmPerMs * float64(time.Millisecond))
}

// SiteSlackKm is how much farther than the disk's edge a site must lie for
// its answer to be impossible: a site is placed at its city's airport (or
// a metropolitan code's main airport), and a city's data centres lie within
// this of it; Atlas also blurs its probes' published positions by about a
// kilometre.
const SiteSlackKm = 100.0

// Light is the speed-of-light check of one answer: the distance between
// the vantage point and the site that claims to have answered, the RTT
// measured, and the least RTT physics allows over that distance.
type Light struct {
	DistanceKm float64
	RTT        time.Duration
	MinRTT     time.Duration
	// Impossible: the site lies more than SiteSlackKm beyond the distance
	// rtt allows, so the answer is not from that site (or the vantage is
	// not where it says it is).
	Impossible bool
}

// CheckLight runs the speed-of-light check; ok is false when a point is not
// Valid or the RTT is not usable (nothing can be said).
func CheckLight(vantage, site Point, rtt time.Duration) (l Light, ok bool) {
	if !vantage.Valid() || !site.Valid() || !UsableRTT(rtt) {
		return Light{}, false
	}
	d := Distance(vantage, site)
	return Light{
		DistanceKm: d,
		RTT:        rtt,
		MinRTT:     MinRTT(d),
		Impossible: d-SiteSlackKm > RadiusKm(rtt),
	}, true
}
