package geo

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Sample is one vantage point's lowest RTT to a target, with where the
// vantage point is.
type Sample struct {
	Vantage     Point
	RTT         time.Duration
	Approximate bool // the vantage's position is approximate (see Approximate)
}

// Instance is one anycast instance the RTTs prove: a disk no other
// instance's disk meets, placed at the most likely city inside it.
type Instance struct {
	// Sample is the index (in the samples given) of the vantage point whose
	// disk proves the instance: the smallest of its group.
	Sample   int
	RadiusKm float64
	// Place is where the instance most likely is: a large airport inside
	// the disk (else a medium one), the nearest to the vantage point. The
	// zero Place when the disk holds none (a disk at sea).
	Place Place
	// Vantages are the samples whose disks hold the instance (its place,
	// or the proving vantage point when it has none): vantage points that
	// can be reaching it.
	Vantages []int
	// Approximate is set when the proving vantage point's position is
	// approximate: the instance rests on a position that may be a
	// country away.
	Approximate bool
}

// Located reports whether the instance was placed at a city.
func (in Instance) Located() bool { return in.Place.Code != "" }

// Enumeration is the result of Enumerate.
type Enumeration struct {
	Instances []Instance // by proving RTT, those resting on approximate positions last
	Used      int        // samples with a valid position and a usable RTT
	BadRTT    int        // samples whose RTT is ≤ 0 or above MaxRTT: ignored
	NoPlace   int        // samples whose position is not Valid: ignored
}

// disk is a sample's disk on the unit sphere.
type disk struct {
	sample int
	v      vec     // centre
	r      float64 // radius, km
	// sin and cos of half the radius's angle, for the overlap test
	sinH, cosH float64
	ring       bool // collapsed to its place
}

// vec is a point as a unit vector: distances become dot products.
type vec [3]float64

func toVec(p Point) vec {
	const rad = math.Pi / 180
	la, lo := p.Lat*rad, p.Lon*rad
	return vec{math.Cos(la) * math.Cos(lo), math.Cos(la) * math.Sin(lo), math.Sin(la)}
}

func dot(a, b vec) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

func newDisk(sample int, c Point, r float64) disk {
	h := r / (2 * EarthRadiusKm)
	return disk{sample: sample, v: toVec(c), r: r, sinH: math.Sin(h), cosH: math.Cos(h)}
}

// cosRadius is the cosine of a radius's central angle: a point p lies in
// the disk when dot(centre, p) ≥ cosRadius (π for a disk past the
// antipode: everything).
func cosRadius(r float64) float64 { return math.Cos(math.Min(math.Pi, r/EarthRadiusKm)) }

// collapsedKm is the radius a disk is given once it is placed at a city
// (iGreedy's 0.1 km): from then on it stands for that city.
const collapsedKm = 0.1

// overlaps is the one intersection test of the enumeration (the benchmark's
// reference uses it too, so both agree to the last bit): the central angle
// between the centres is below the sum of the radii's angles. With half
// angles A and B that is: A+B ≥ π/2 (the disks cover a hemisphere between
// them), or the chord² 2−2·dot is below (2·sin(A+B))², with sin(A+B) from
// the sines and cosines kept per disk — no trigonometry per pair.
func overlaps(a, b *disk) bool {
	cosSum := a.cosH*b.cosH - a.sinH*b.sinH // cos(A+B)
	if cosSum <= 0 {
		return true
	}
	s := a.sinH*b.cosH + a.cosH*b.sinH // sin(A+B)
	return 1-dot(a.v, b.v) < 2*s*s
}

// Enumerate finds the anycast instances a set of RTTs to one target proves,
// the way iGreedy does (Cicalese et al., "A Fistful of Pings: Accurate and
// Lightweight Anycast Enumeration and Geolocation", INFOCOM 2015): each
// sample bounds the answerer within a disk around its vantage point
// (RadiusKm); disks that do not meet must hold different instances, so a
// greedy maximum independent set of disks — smallest first — is a lower
// bound on their number. Each disk of the set is then placed at the most
// likely city inside it and shrunk to that city, which can free room for
// more disks; enumeration and placement alternate until nothing changes.
//
// Where iGreedy ranks the cities in a disk by population, the places table
// has airports: a large airport is taken before a medium one, and among
// equals the one nearest the vantage point (the RTT is a bound; answers
// come from well inside it). One disk means no proof of anycast: a single
// instance is returned, placed the same way.
//
// The greedy pass is the textbook one; what makes it fast is that it never
// builds the intersection graph: each disk is tested against the set found
// so far (early exit at the first overlap), and after a disk is placed the
// pass resumes from that disk's position, as nothing before it changed.
func Enumerate(samples []Sample) Enumeration {
	var e Enumeration
	disks := make([]disk, 0, len(samples))
	for i, s := range samples {
		switch {
		case !s.Vantage.Valid():
			e.NoPlace++
		case !UsableRTT(s.RTT):
			e.BadRTT++
		default:
			disks = append(disks, newDisk(i, s.Vantage, RadiusKm(s.RTT)))
		}
	}
	e.Used = len(disks)
	if len(disks) == 0 {
		return e
	}
	sortDisks(disks, samples)

	chosen := map[string]bool{} // places already given to an instance
	placed := make([]Place, len(disks))
	tried := make([]bool, len(disks))
	var mis []int // indices into disks, in order
	start := 0
	for {
		// The independent set over disks[start:], keeping mis's prefix.
		for i := start; i < len(disks); i++ {
			free := true
			for _, j := range mis {
				if overlaps(&disks[i], &disks[j]) {
					free = false
					break
				}
			}
			if free {
				mis = append(mis, i)
			}
		}
		// Place the first member not yet tried; when it moves, resume the
		// pass from its position.
		moved := -1
		for _, i := range mis {
			if tried[i] {
				continue
			}
			tried[i] = true
			p, ok := mostLikely(&disks[i])
			if !ok || chosen[p.Code] {
				continue
			}
			chosen[p.Code] = true
			placed[i] = p
			disks[i] = newDisk(disks[i].sample, p.Point, collapsedKm)
			disks[i].ring = true
			moved = i
			break
		}
		if moved < 0 {
			break
		}
		k := slices.Index(mis, moved)
		mis = mis[:k+1]
		start = moved + 1
	}
	e.Instances = instances(mis, disks, placed, samples)
	return e
}

// instances describes the final independent set: each disk's instance and
// the vantage points whose (original) disks hold it.
func instances(mis []int, disks []disk, placed []Place, samples []Sample) []Instance {
	orig := make([]struct {
		v    vec
		cosR float64
	}, len(disks))
	for k, d := range disks {
		s := samples[d.sample]
		orig[k].v, orig[k].cosR = toVec(s.Vantage), cosRadius(RadiusKm(s.RTT))
	}
	var out []Instance
	for _, i := range mis {
		d := disks[i]
		in := Instance{
			Sample:      d.sample,
			RadiusKm:    RadiusKm(samples[d.sample].RTT),
			Place:       placed[i],
			Approximate: samples[d.sample].Approximate,
		}
		at := orig[i].v
		if in.Located() {
			at = toVec(in.Place.Point)
		}
		for k, o := range orig {
			if dot(o.v, at) >= o.cosR {
				in.Vantages = append(in.Vantages, disks[k].sample)
			}
		}
		slices.Sort(in.Vantages)
		out = append(out, in)
	}
	return out
}

// sortDisks orders disks by RTT, those of vantage points with an
// approximate position after all the others (they weigh less: their disk
// adds an instance only where no precise one reaches), then by sample
// index (a stable, total order: the same input gives the same instances).
func sortDisks(disks []disk, samples []Sample) {
	slices.SortStableFunc(disks, func(a, b disk) int {
		if x, y := samples[a.sample].Approximate, samples[b.sample].Approximate; x != y {
			if y {
				return -1
			}
			return 1
		}
		if c := samples[a.sample].RTT - samples[b.sample].RTT; c != 0 {
			if c < 0 {
				return -1
			}
			return 1
		}
		return a.sample - b.sample
	})
}

// placeVecs are the places as unit vectors, made on first use.
var placeVecs = sync.OnceValue(func() []vec {
	all := Places()
	v := make([]vec, len(all))
	for i, p := range all {
		v[i] = toVec(p.Point)
	}
	return v
})

// mostLikely picks the place for a disk: a large airport inside it before a
// medium one, the nearest to the centre among equals (the first in code
// order on a tie).
func mostLikely(d *disk) (Place, bool) {
	all, vs := Places(), placeVecs()
	cosR := cosRadius(d.r)
	best, bestDot := -1, -2.0
	for i, v := range vs {
		p := &all[i]
		if p.Kind == MetroCode {
			continue // the same point as its main airport
		}
		c := dot(d.v, v)
		if c < cosR {
			continue
		}
		better := best < 0 ||
			(p.Kind == LargeAirport && all[best].Kind != LargeAirport) ||
			(p.Kind == all[best].Kind && c > bestDot)
		if better {
			best, bestDot = i, c
		}
	}
	if best < 0 {
		return Place{}, false
	}
	return all[best], true
}
