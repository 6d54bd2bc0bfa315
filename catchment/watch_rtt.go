package catchment

import (
	"math"
	"slices"
	"time"
)

// RTTPercentiles sum up the round trip times of one instance: nearest-rank
// percentiles (the smallest sample with at least p % of the samples at or
// below it). Exact while a flow has seen fewer than exactRTTs samples;
// beyond that the samples are kept in logarithmic buckets 1 % wide, so a
// watch of days at a short interval keeps bounded memory and its
// percentiles stay within 1 %.
type RTTPercentiles struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
}

// exactRTTs is how many samples of a flow are kept as they are (a day at
// the default 10 s interval) before they are folded into buckets.
const exactRTTs = 8640

// bucketGrowth is the width of a bucket: each is 1 % wider than the last.
var bucketGrowth = math.Log(1.01)

// rttSamples collects RTTs for percentiles with bounded memory.
type rttSamples struct {
	n        int
	min, max time.Duration
	exact    []time.Duration // every sample, until there are exactRTTs
	buckets  map[int]int     // bucket index → count, after that
}

func bucketOf(d time.Duration) int {
	if d < time.Microsecond {
		return -1
	}
	return int(math.Log(float64(d)/float64(time.Microsecond)) / bucketGrowth)
}

// bucketValue is the geometric middle of a bucket.
func bucketValue(b int) time.Duration {
	if b < 0 {
		return 0
	}
	return time.Duration(float64(time.Microsecond) * math.Exp((float64(b)+0.5)*bucketGrowth))
}

func (r *rttSamples) add(d time.Duration) {
	if r.n == 0 || d < r.min {
		r.min = d
	}
	if d > r.max {
		r.max = d
	}
	r.n++
	if r.buckets == nil {
		r.exact = append(r.exact, d)
		return
	}
	r.buckets[bucketOf(d)]++
}

// fold moves the exact samples into buckets; later samples go there too.
func (r *rttSamples) fold() {
	if r.buckets != nil {
		return
	}
	r.buckets = map[int]int{}
	for _, x := range r.exact {
		r.buckets[bucketOf(x)]++
	}
	r.exact = nil
}

func (r *rttSamples) percentiles() RTTPercentiles {
	p := RTTPercentiles{N: r.n, Min: r.min, Max: r.max}
	if r.n == 0 {
		return p
	}
	rank := func(q float64) int { return max(1, int(math.Ceil(q*float64(r.n)))) }
	if r.buckets == nil {
		s := slices.Clone(r.exact)
		slices.Sort(s)
		at := func(q float64) time.Duration { return s[rank(q)-1] }
		p.P50, p.P90, p.P99 = at(0.50), at(0.90), at(0.99)
		return p
	}
	keys := make([]int, 0, len(r.buckets))
	for k := range r.buckets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	at := func(q float64) time.Duration {
		want, seen := rank(q), 0
		for _, k := range keys {
			seen += r.buckets[k]
			if seen >= want {
				return min(max(bucketValue(k), r.min), r.max)
			}
		}
		return r.max
	}
	p.P50, p.P90, p.P99 = at(0.50), at(0.90), at(0.99)
	return p
}
