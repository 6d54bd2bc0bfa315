// Package bench compares anycheck's trace with the classic tools on the same
// lab path. It is a measurement, run by bench/trace.sh, never a pass/fail
// timing test: TestBenchTrace skips unless ANYCHECK_BENCH=1.
package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
)

// tool is one traceroute implementation and how to read its hop list.
type tool struct {
	name string
	argv func(bin, dst string) []string
	hops func(out string) []string // responding address per TTL, "*" for none
}

var addrRe = regexp.MustCompile(`^[0-9a-fA-F:.]+$`)

// firstAddrPerLine reads "TTL  ADDR ..." style lines (traceroute, scamper,
// anycheck's text output) into one address per TTL.
func firstAddrPerLine(out string, ttlRe *regexp.Regexp) []string {
	byTTL := map[int]string{}
	maxTTL := 0
	for _, line := range strings.Split(out, "\n") {
		m := ttlRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ttl, _ := strconv.Atoi(m[1])
		hop := "*"
		for _, w := range strings.Fields(m[2]) {
			if _, err := netip.ParseAddr(w); err == nil && addrRe.MatchString(w) {
				hop = w
				break
			}
		}
		if _, seen := byTTL[ttl]; !seen || byTTL[ttl] == "*" {
			byTTL[ttl] = hop
		}
		maxTTL = max(maxTTL, ttl)
	}
	out2 := make([]string, maxTTL)
	for i := range out2 {
		out2[i] = "*"
		if h, ok := byTTL[i+1]; ok {
			out2[i] = h
		}
	}
	return out2
}

var (
	ttlLine = regexp.MustCompile(`^\s*(\d+)\s+(.*)$`)
	mtrLine = regexp.MustCompile(`^\s*(\d+)\.\|--\s+(.*)$`)
	mtrStar = regexp.MustCompile(`^\?\?\?`)
)

func tools() []tool {
	return []tool{
		{"anycheck", func(bin, dst string) []string {
			return []string{bin, "trace", "-n", "--asn", "none", "-m", "10", dst}
		}, func(out string) []string { return firstAddrPerLine(out, ttlLine) }},
		// Knot drops a non-DNS payload to port 53 without a reply, so
		// traceroute waits at every TTL up to -m: -w 1 -m 10 bound it.
		{"traceroute -U -p 53 -w 1", func(_, dst string) []string {
			return []string{"traceroute", "-n", "-U", "-p", "53", "-w", "1", "-m", "10", dst}
		}, func(out string) []string { return firstAddrPerLine(dropFirst(out), ttlLine) }},
		{"mtr -r -c 1 -u -P 53", func(_, dst string) []string {
			return []string{"mtr", "-r", "-n", "-c", "1", "-u", "-P", "53", "-m", "10", dst}
		}, func(out string) []string {
			var hops []string
			for _, line := range strings.Split(out, "\n") {
				m := mtrLine.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				f := strings.Fields(m[2])
				if len(f) == 0 || mtrStar.MatchString(f[0]) {
					hops = append(hops, "*")
				} else {
					hops = append(hops, f[0])
				}
			}
			return hops
		}},
		// scamper's udp-paris probes to port 53 carry no DNS query, so a DNS
		// server never answers them and scamper waits out its gap limit
		// past the destination (5 hops × 2 attempts × 5 s by default);
		// -w 1 keeps the bench bounded, and the hop list shows the miss.
		{"scamper trace -P udp-paris -w 1", func(_, dst string) []string {
			return []string{"scamper", "-O", "text", "-c", "trace -P udp-paris -d 53 -w 1 -m 10", "-i", dst}
		}, func(out string) []string { return firstAddrPerLine(dropFirst(out), ttlLine) }},
	}
}

func dropFirst(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

const runs = 3

// TestBenchTrace runs every tool `runs` times on each client's path to the
// anycast service and prints the median wall time per trace, its ratio to
// anycheck's, and whether the hop lists agree with the lab's routing.
func TestBenchTrace(t *testing.T) {
	if os.Getenv("ANYCHECK_BENCH") != "1" {
		t.Skip("run by bench/trace.sh (ANYCHECK_BENCH=1)")
	}
	ac := lab.StartAnycast(t)
	bin := lab.Binary(t)
	// The bench measures the tools, not the routers' ICMP budget: with
	// Linux's default rate limit, back-to-back runs of four tools would
	// see "*" where the budget ran out.
	for _, r := range []string{"e1", "m1", "m2", "r1", "ra", "s2", "r2", "rb", "rt"} {
		if err := ac.DisableICMPRateLimit(r); err != nil {
			t.Fatal(err)
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "path\ttool\tmedian\tmin\tmax\tvs anycheck\thops agree with the lab\n")
	for _, path := range []struct {
		client string
		f      lab.Family
	}{{"c1", lab.IPv4}, {"c1", lab.IPv6}, {"c2", lab.IPv4}, {"c2", lab.IPv6}} {
		dst := ac.ServiceAddr(path.f).String()
		want := ac.ExpectedPath(path.client, path.f)
		var base time.Duration
		for _, tl := range tools() {
			var times []time.Duration
			agree := 0
			var lastHops []string
			for range runs {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				start := time.Now()
				out, errOut, err := ac.Run(ctx, path.client, tl.argv(bin, dst)...)
				el := time.Since(start)
				cancel()
				fmt.Fprintf(os.Stderr, "bench: %s %v %s: %s\n", path.client, path.f, tl.name, ms(el))
				if err != nil && !strings.Contains(tl.name, "anycheck") {
					t.Logf("%s: %v: %s", tl.name, err, errOut)
				}
				times = append(times, el)
				lastHops = tl.hops(string(out))
				if matches(lastHops, want) {
					agree++
				}
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			med := times[len(times)/2]
			if tl.name == "anycheck" {
				base = med
			}
			fmt.Fprintf(w, "%s %v\t%s\t%s\t%s\t%s\t%.1f×\t%d/%d %s\n", path.client, path.f, tl.name, ms(med), ms(times[0]), ms(times[len(times)-1]),
				float64(med)/float64(base), agree, runs, strings.Join(lastHops, " "))
		}
		var exp []string
		for _, h := range want {
			exp = append(exp, h.String())
		}
		fmt.Fprintf(w, "%s %v\t(lab routing)\t\t\t\t\t%s\n", path.client, path.f, strings.Join(exp, " "))
		w.Flush()
	}
	w.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// matches compares a tool's hop list with the lab's expected path: same
// length, each hop one of the addresses the lab allows (either branch of
// the diamond), "*" exactly where the lab has a silent hop.
func matches(got []string, want []lab.Hop) bool {
	if len(got) != len(want) {
		return false
	}
	for i, w := range want {
		if w.Silent() {
			if got[i] != "*" {
				return false
			}
			continue
		}
		a, err := netip.ParseAddr(got[i])
		if err != nil || !slices.Contains(w.Addrs, a) {
			return false
		}
	}
	return true
}
