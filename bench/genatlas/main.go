// Command genatlas writes a RIPE Atlas traceroute result file (JSON array)
// for the compare benchmark: n results from n probes towards one anycast
// address, paths of 12–30 hops with three replies each, timeouts and late
// replies mixed in, ending at one of a few upstreams. Addresses are from
// the documentation ranges; the output is the same for the same seed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
)

func main() {
	n := flag.Int("n", 10000, "results")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	rng := rand.New(rand.NewPCG(*seed, 2))
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	addr := func() string {
		switch rng.IntN(3) {
		case 0:
			return fmt.Sprintf("192.0.2.%d", 1+rng.IntN(250))
		case 1:
			return fmt.Sprintf("198.51.100.%d", 1+rng.IntN(250))
		}
		return fmt.Sprintf("203.0.113.%d", 1+rng.IntN(250))
	}
	upstreams := []string{"203.0.113.1", "203.0.113.9", "198.51.100.33", "198.51.100.77", "192.0.2.254"}
	fmt.Fprint(w, "[")
	for i := range *n {
		if i > 0 {
			fmt.Fprint(w, ",\n")
		}
		ts := 1767225600 + i
		fmt.Fprintf(w, `{"fw":5080,"mver":"2.6.2","lts":%d,"endtime":%d,"dst_name":"192.0.2.53","dst_addr":"192.0.2.53","src_addr":"10.%d.%d.10","proto":"UDP","af":4,"size":48,"paris_id":%d,"result":[`,
			rng.IntN(100), ts+5, rng.IntN(256), rng.IntN(256), 1+rng.IntN(16))
		hops := 12 + rng.IntN(19)
		rtt := 0.3
		for h := 1; h <= hops; h++ {
			if h > 1 {
				fmt.Fprint(w, ",")
			}
			from := addr()
			switch {
			case h == hops:
				from = "192.0.2.53"
			case h == hops-1:
				from = upstreams[(i/7)%len(upstreams)]
			}
			rtt += rng.Float64() * 4
			fmt.Fprintf(w, `{"hop":%d,"result":[`, h)
			for q := range 3 {
				if q > 0 {
					fmt.Fprint(w, ",")
				}
				switch r := rng.IntN(40); {
				case r == 0 && h != hops:
					fmt.Fprint(w, `{"x":"*"}`)
				case r == 1:
					fmt.Fprintf(w, `{"late":%d,"from":"%s","ttl":%d,"size":28}`, 1+rng.IntN(3), from, 255-h)
				default:
					fmt.Fprintf(w, `{"from":"%s","ttl":%d,"size":28,"rtt":%.3f}`, from, 255-h, rtt+rng.Float64())
				}
			}
			fmt.Fprint(w, "]}")
		}
		fmt.Fprintf(w, `],"msm_id":9100001,"prb_id":%d,"timestamp":%d,"msm_name":"Traceroute","from":"198.51.100.%d","type":"traceroute","group_id":9100001}`,
			10000+i, ts, 1+rng.IntN(250))
	}
	fmt.Fprint(w, "]\n")
}
