package trace

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
)

var rateLimitChild = flag.Bool("trace-ratelimit-child", false, "internal: run TestLabRateLimitChild inside the lab")

// TestLabRateLimitedRouters: routers with Linux's default ICMP rate limit
// (a burst of 6 errors per destination, then 1/s; IPv6 faster on wide
// routes) answer as many of a trace's probes as they did when the engine
// sent one packet per millisecond: the whole burst. Probes to one router
// are still spread (and all its budget is used), probes to other routers
// leave at once. Counted on the chain lab (r1 and r3 answer, r2 is
// silent), once per family and test, from a fresh budget.
func TestLabRateLimitedRouters(t *testing.T) {
	l := lab.Start(t, labTopology())
	bin := publicTestBinary(t)
	if _, err := l.Spawn("dst", bin, "-test.run=^TestLabChild$", "-trace-lab-child=serve"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := l.Command(ctx, "c1", bin, "-test.run=^TestLabRateLimitChild$", "-test.v", "-trace-ratelimit-child").CombinedOutput()
	t.Logf("rate-limit child:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLabRateLimitChild") {
		t.Fatalf("rate-limit child failed: %v", err)
	}
}

// linuxICMPBurst is how many ICMP errors a Linux router sends to one
// destination at once before its rate limit bites (XRLIM_BURST_FACTOR).
const linuxICMPBurst = 6

// answersAt counts the answered probes at a TTL over several paths.
func answersAt(ps []Path, ttl int) (answered, sent int) {
	for _, p := range ps {
		for _, h := range p.Hops {
			if h.TTL != ttl {
				continue
			}
			for _, pr := range h.Probes {
				sent++
				if pr.Reply != nil {
					answered++
				}
			}
		}
	}
	return answered, sent
}

// TestLabRateLimitChild is the in-namespace side of TestLabRateLimitedRouters.
func TestLabRateLimitChild(t *testing.T) {
	if !*rateLimitChild {
		t.Skip("run inside the lab by TestLabRateLimitedRouters")
	}
	waitLabServer(t)
	// The server check above spent nothing: DNS answers are not rate limited.
	run := func(o Options) (Path, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		o.Mode, o.Wait = ModeRaw, 2*time.Second
		p, err := Run(ctx, o)
		if err == nil && (!p.Reached || p.DestTTL != 4) {
			err = fmt.Errorf("reached %v at %d, want the destination at 4", p.Reached, p.DestTTL)
		}
		return p, err
	}
	check := func(t *testing.T, ps []Path) {
		t.Helper()
		for _, ttl := range []int{1, 3} {
			answered, sent := answersAt(ps, ttl)
			t.Logf("ttl %d: %d of %d probes answered", ttl, answered, sent)
			if answered < min(sent, linuxICMPBurst) {
				t.Errorf("ttl %d: %d of %d probes answered, want the router's whole burst (%d)", ttl, answered, sent, min(sent, linuxICMPBurst))
			}
		}
	}
	// One trace with the most probes per hop: 10 to each router, the
	// first 6 within the burst.
	t.Run("one trace, 10 probes per hop, IPv4", func(t *testing.T) {
		p, err := run(Options{Target: labDst4, Queries: maxQueries})
		if err != nil {
			t.Fatal(err)
		}
		check(t, []Path{p})
		for _, ttl := range []int{1, 3} {
			if !p.Hops[ttl-1].RateLimited {
				t.Errorf("ttl %d: %+v not flagged as rate limited", ttl, p.Hops[ttl-1])
			}
		}
	})
	// Four traces at once sharing one budget, as `anycheck trace` runs
	// several targets: 12 probes to each router.
	t.Run("four traces at once, IPv6", func(t *testing.T) {
		budget := NewBudget(DefaultRate)
		ps := make([]Path, 4)
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range ps {
			wg.Go(func() { ps[i], errs[i] = run(Options{Target: labDst6, Budget: budget}) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		check(t, ps)
	})
}
