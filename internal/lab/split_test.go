package lab

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// The split client's catchment depends on its source port: r3 balances
// flows over its equal routes to both sites by the 5-tuple, so one port
// always reaches one instance and 16 ports reach both.
func TestLabSplitClient(t *testing.T) {
	t.Parallel()
	ac := StartAnycast(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := ac.SplitClient()
	for _, f := range []Family{IPv4, IPv6} {
		seen := map[string]int{}
		for port := uint16(42000); port < 42016; port++ {
			src := netip.AddrPortFrom(ac.ClientAddr(c, f), port)
			var first Identity
			for try := range 2 {
				id, err := ac.IdentifyFromPort(ctx, c, src, ac.ServiceAddr(f))
				if err != nil {
					t.Fatalf("%v from %s: %v", f, src, err)
				}
				if id != (Identity{Hostname: ac.A.Identity, NSID: ac.A.NSID}) && id != (Identity{Hostname: ac.B.Identity, NSID: ac.B.NSID}) {
					t.Fatalf("%v from %s: %+v is neither instance", f, src, id)
				}
				if try == 0 {
					first = id
				} else if id != first {
					t.Errorf("%v from %s: %s, then %s: one flow must keep its instance", f, src, first.NSID, id.NSID)
				}
			}
			seen[first.NSID]++
		}
		if len(seen) != 2 {
			t.Errorf("%v: 16 source ports all reached one instance %v: r3 does not balance over both sites", f, seen)
		}
	}
}
