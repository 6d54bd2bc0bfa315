package geo

import "testing"

// referenceEnumerate is iGreedy written the straightforward way, to check
// Enumerate against and to time it by: the whole disk-intersection graph
// first (n² tests), then the greedy independent set from scratch after
// every placement, as iGreedy's own code does. Same tests, same order of
// disks, same placement rule, so the result must be identical.
func referenceEnumerate(samples []Sample) Enumeration {
	var e Enumeration
	var disks []disk
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
	sortDisks(disks, samples)
	n := len(disks)
	adj := make([][]bool, n)
	for i := range adj {
		adj[i] = make([]bool, n)
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			o := overlaps(&disks[i], &disks[j])
			adj[i][j], adj[j][i] = o, o
		}
	}
	chosen := map[string]bool{}
	placed := make([]Place, n)
	tried := make([]bool, n)
	var mis []int
	for {
		mis = mis[:0]
		for i := range n {
			free := true
			for _, j := range mis {
				if adj[i][j] {
					free = false
					break
				}
			}
			if free {
				mis = append(mis, i)
			}
		}
		moved := false
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
			for j := range n {
				if j != i {
					o := overlaps(&disks[i], &disks[j])
					adj[i][j], adj[j][i] = o, o
				}
			}
			moved = true
			break
		}
		if !moved {
			break
		}
	}
	e.Instances = instances(mis, disks, placed, samples)
	return e
}

// BenchmarkEnumerate: 10,000 vantage points around 20 sites, Enumerate
// against the O(n²) reference (make bench prints the ratio; the issue
// wants ≤ 0.2× and under a second).
func BenchmarkEnumerate(b *testing.B) {
	samples, _ := population(42, 10000, rootLike)
	want := referenceEnumerate(samples)
	if got := Enumerate(samples); !sameInstances(got, want) {
		b.Fatalf("Enumerate and the reference differ: %d vs %d instances", len(got.Instances), len(want.Instances))
	}
	b.Run("anycheck", func(b *testing.B) {
		for b.Loop() {
			Enumerate(samples)
		}
	})
	b.Run("reference", func(b *testing.B) {
		for b.Loop() {
			referenceEnumerate(samples)
		}
	})
}
