// Command genatlas writes a RIPE Atlas traceroute result file (JSON array)
// for the compare benchmark: n results of two measurements of one anycast
// service, IPv4 (192.0.2.53) and IPv6 (2001:db8:53::53), from n/2
// dual-stack probes. The output is the same for the same seed; addresses
// are from the documentation and private ranges.
//
// The results are shaped like the real ones in shared/refdata/atlas
// (firmware 4500–4720; 2.8–6.4 KB for 11–20 hops): three replies per hop,
// each with from, rtt (three decimals), size and ttl; a private first hop
// (size 68, ttl 64); an access network, a core where half the paths
// cross two to five MPLS hops (icmpext label stacks, size 140/168, ittl),
// the site's upstream, the instance's network and the destination. Three
// traces in ten do not reach the destination (UDP to a closed port is often
// filtered): five silent hops follow the last answer, then the "hop 255"
// tail. Scattered timeouts ({"x":"*"}), late replies, silent hops and
// per-packet load balancing are mixed in. IPv6 results carry IPv6
// addresses of real-world length (router interfaces, SLAAC probes).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
)

// site is one instance of the service: the upstreams a probe's path may
// enter its network by, and the routers inside it (before the instance),
// per family.
type site struct {
	up4, up6       []string
	inner4, inner6 []string
}

var sites = []site{
	{[]string{"203.0.113.1", "203.0.113.9"}, []string{"2001:db8:a::1", "2001:db8:a::9"}, []string{"203.0.113.2"}, []string{"2001:db8:a:1::2"}},
	{[]string{"198.51.100.33"}, []string{"2001:db8:b:33::1"}, nil, nil},
	{[]string{"198.51.100.77", "198.51.100.78"}, []string{"2001:db8:b:77::1"}, []string{"198.51.100.80", "198.51.100.81"}, []string{"2001:db8:b:80::1", "2001:db8:b:81::1"}},
	{[]string{"192.0.2.254"}, []string{"2001:db8:c::fe"}, []string{"192.0.2.250"}, []string{"2001:db8:c::fa"}},
	{[]string{"203.0.113.129"}, []string{"2001:db8:d:81::2"}, nil, nil},
}

type gen struct {
	rng *rand.Rand
	w   *bufio.Writer
	b   strings.Builder
}

func main() {
	n := flag.Int("n", 10000, "results (half IPv4, half IPv6)")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	g := &gen{rng: rand.New(rand.NewPCG(*seed, 2)), w: bufio.NewWriterSize(os.Stdout, 1<<20)}
	g.w.WriteString("[")
	for i := range *n {
		if i > 0 {
			g.w.WriteString(",\n")
		}
		g.result(i)
		g.w.WriteString(g.b.String())
		g.b.Reset()
	}
	g.w.WriteString("]\n")
	if err := g.w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "genatlas:", err)
		os.Exit(1)
	}
}

func (g *gen) printf(format string, a ...any) { fmt.Fprintf(&g.b, format, a...) }

// v4 is a router address of the documentation ranges.
func (g *gen) v4() string {
	return fmt.Sprintf("%s.%d", []string{"192.0.2", "198.51.100", "203.0.113"}[g.rng.IntN(3)], 1+g.rng.IntN(250))
}

// priv4 is an address of an access network (private or shared space).
func (g *gen) priv4() string {
	switch g.rng.IntN(3) {
	case 0:
		return fmt.Sprintf("10.%d.%d.%d", g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
	case 1:
		return fmt.Sprintf("100.%d.%d.%d", 64+g.rng.IntN(64), g.rng.IntN(256), 1+g.rng.IntN(254))
	}
	return fmt.Sprintf("172.%d.%d.%d", 16+g.rng.IntN(16), g.rng.IntN(256), 1+g.rng.IntN(254))
}

// v6 is a router interface address in 2001:db8::/32.
func (g *gen) v6() string {
	r := g.rng
	switch r.IntN(3) {
	case 0:
		return fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(0x10000), r.IntN(0x10000), 1+r.IntN(0xffff))
	case 1:
		return fmt.Sprintf("2001:db8:%x::%x:%x:%x", r.IntN(0x10000), r.IntN(0x10000), r.IntN(0x10000), 1+r.IntN(0xffff))
	}
	return fmt.Sprintf("2001:db8:%x:%x:%x::%x", r.IntN(0x10000), r.IntN(0x10000), r.IntN(0x10000), 1+r.IntN(0xff))
}

// hop is one TTL's plan: who answers and how.
type hop struct {
	from  string // "" = silent
	alt   string // a second responder (per-packet load balancing)
	size  int
	ttl   int // reply TTL
	mpls  int // MPLS label; 0 = none
	ittl  int
	dest  bool
	extra float64 // added RTT (ms) at this hop
}

func (g *gen) result(i int) {
	r := g.rng
	probe := 10000 + i/2
	v6 := i%2 == 1
	// The probe's site (catchment) is fixed per probe, its family's
	// upstream one of the site's.
	pr := rand.New(rand.NewPCG(uint64(probe), 7))
	st := sites[pr.IntN(len(sites))]
	dst, af, msm := "192.0.2.53", 4, 9100001
	ups, inner := st.up4, st.inner4
	addr := g.v4
	if v6 {
		dst, af, msm, ups, inner, addr = "2001:db8:53::53", 6, 9100002, st.up6, st.inner6, g.v6
	}
	upstream := ups[pr.IntN(len(ups))]
	ts := 1767225600 + i*3

	var hops []hop
	rtt0 := 0.3 + r.Float64()*3
	// First hop: the probe's home router.
	if v6 {
		hops = append(hops, hop{from: fmt.Sprintf("2001:db8:%x:%x::1", pr.IntN(0x10000), pr.IntN(0x10000)), size: 96, ttl: 64})
	} else {
		hops = append(hops, hop{from: fmt.Sprintf("192.168.%d.1", pr.IntN(256)), size: 68, ttl: 64})
	}
	// Access network.
	for range 2 + r.IntN(3) {
		a := g.priv4()
		if v6 {
			a = g.v6()
		}
		hops = append(hops, hop{from: a, size: 28, extra: r.Float64() * 6})
	}
	// Core, sometimes with an MPLS run.
	core := 5 + r.IntN(9)
	mplsAt, mplsLen := -1, 0
	if r.IntN(2) == 0 {
		mplsLen = 2 + r.IntN(4)
		mplsAt = r.IntN(max(1, core-mplsLen+1))
	}
	for c := range core {
		h := hop{from: addr(), size: 28, extra: r.Float64() * 4}
		if r.IntN(10) < 3 {
			h.size = 68
		}
		if r.IntN(40) == 0 {
			h.alt = addr()
		}
		if c >= mplsAt && c < mplsAt+mplsLen {
			h.mpls = 16 + r.IntN(1<<20-16)
			h.size = []int{140, 168}[r.IntN(2)]
			if c > mplsAt {
				h.ittl = c - mplsAt + 1
			}
		}
		if r.IntN(20) == 0 {
			h.from = "" // a router that never answers
		}
		if r.IntN(8) == 0 {
			h.extra += 20 + r.Float64()*120 // a long link
		}
		hops = append(hops, h)
	}
	hops = append(hops, hop{from: upstream, size: 28, extra: r.Float64() * 3})
	// The instance's network, then the destination.
	for _, a := range inner {
		hops = append(hops, hop{from: a, size: 28, extra: r.Float64()})
	}
	hops = append(hops, hop{from: dst, size: 68, dest: true, extra: r.Float64()})
	reached := r.IntN(10) >= 3
	if !reached {
		// Answers stop somewhere after the core; five silent hops and
		// the hop 255 tail follow.
		last := len(hops) - 1 - r.IntN(min(4, len(hops)-2))
		hops = hops[:last]
		for range 5 {
			hops = append(hops, hop{})
		}
	}
	// Reply TTLs: what is left of the router's initial TTL on the way back.
	for h := range hops {
		if hops[h].ttl == 0 && hops[h].from != "" {
			base := 255
			if hops[h].dest || r.IntN(3) == 0 {
				base = 64
			}
			hops[h].ttl = base - h
		}
	}

	g.printf(`{"fw":5080,"lts":%d,"endtime":%d,"dst_name":"%s","dst_addr":"%s","src_addr":"`, r.IntN(120), ts+4+r.IntN(8), dst, dst)
	if v6 {
		g.printf("2001:db8:%x:%x:%x:%x:%x:%x", pr.IntN(0x10000), pr.IntN(0x10000), pr.IntN(0x10000), pr.IntN(0x10000), pr.IntN(0x10000), pr.IntN(0x10000))
	} else {
		g.printf("192.168.%d.%d", pr.IntN(256), 2+pr.IntN(250))
	}
	g.printf(`","proto":"UDP","af":%d,"size":48,"paris_id":%d,"result":[`, af, 1+r.IntN(16))
	rtt := rtt0
	late := 0
	for h, hp := range hops {
		if h > 0 {
			g.printf(",")
		}
		rtt += hp.extra
		g.printf(`{"hop":%d,"result":[`, h+1)
		for q := range 3 {
			if q > 0 {
				g.printf(",")
			}
			from := hp.from
			if hp.alt != "" && q == 1 {
				from = hp.alt
			}
			switch x := r.IntN(200); {
			case from == "" || x < 5:
				g.printf(`{"x":"*"}`)
			case x == 5:
				late++
				g.printf(`{"late":%d,"from":"%s","ttl":%d,"size":%d}`, late, from, hp.ttl, hp.size)
			default:
				g.printf(`{"from":"%s",`, from)
				if hp.mpls > 0 {
					g.printf(`"icmpext":{"version":2,"rfc4884":%d,"obj":[{"class":1,"type":1,"mpls":[{"label":%d,"exp":0,"s":1,"ttl":1}]}]},`, r.IntN(2), hp.mpls)
				}
				if hp.ittl > 1 {
					g.printf(`"ittl":%d,`, hp.ittl)
				}
				g.printf(`"rtt":%.3f,"size":%d,"ttl":%d}`, rtt+r.Float64()*rtt/10, hp.size, hp.ttl)
			}
		}
		g.printf("]}")
	}
	if !reached {
		g.printf(`,{"hop":255,"result":[{"x":"*"},{"x":"*"},{"x":"*"}]}`)
	}
	g.printf(`],"msm_id":%d,"prb_id":%d,"timestamp":%d,"msm_name":"Traceroute","from":"`, msm, probe, ts)
	if v6 {
		g.printf("2001:db8:%x:%x:%x:%x:%x:%x", pr.IntN(0x10000), pr.IntN(0x10000), pr.IntN(0x10000), pr.IntN(0x10000), pr.IntN(0x10000), pr.IntN(0x10000))
	} else {
		g.printf("%s.%d", []string{"192.0.2", "198.51.100", "203.0.113"}[pr.IntN(3)], 1+pr.IntN(250))
	}
	g.printf(`","type":"traceroute","group_id":%d}`, msm)
}
