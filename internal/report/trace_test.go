package report

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

func pathThrough(hops ...string) trace.Path {
	p := trace.Path{
		Flow:    trace.Flow{Proto: trace.UDP, Src: netip.MustParseAddrPort("198.51.100.10:40000"), Dst: netip.MustParseAddrPort("192.0.2.53:53")},
		Reached: true, Stop: trace.StopReached, DestTTL: len(hops),
	}
	for i, h := range hops {
		hop := trace.Hop{TTL: i + 1}
		if h != "*" {
			hop.Probes = []trace.ProbeResult{{Reply: &trace.Reply{From: netip.MustParseAddr(h), RTT: time.Millisecond, ICMPType: 11, ReplyTTL: -1, QuotedTTL: -1}}}
		} else {
			hop.Probes = []trace.ProbeResult{{}}
		}
		p.Hops = append(p.Hops, hop)
	}
	return p
}

func TestEnrichASPathAndUpstream(t *testing.T) {
	origin := func(asns ...uint32) whois.Origin { return whois.Origin{ASNs: asns, Source: "test"} }
	o := map[netip.Addr]whois.Origin{
		netip.MustParseAddr("198.51.100.10"):  origin(64500),
		netip.MustParseAddr("198.51.100.1"):   origin(64500),
		netip.MustParseAddr("198.51.100.22"):  origin(64500),
		netip.MustParseAddr("10.0.0.1"):       {Special: "private", Source: "special"},
		netip.MustParseAddr("198.51.100.145"): origin(64510),
		netip.MustParseAddr("203.0.113.1"):    origin(64520),
		// The anycast prefix has one origin per site.
		netip.MustParseAddr("192.0.2.53"): origin(64521, 64520),
	}
	for _, tc := range []struct {
		name     string
		hops     []string
		path     []uint32
		upstream uint32
	}{
		{"via the site's own AS", []string{"198.51.100.1", "198.51.100.22", "10.0.0.1", "*", "198.51.100.145", "203.0.113.1", "192.0.2.53"}, []uint32{64500, 64510, 64520}, 64510},
		{"straight from the ISP", []string{"198.51.100.1", "192.0.2.53"}, []uint32{64500, 64521}, 64500},
		{"unknown hops are skipped", []string{"198.51.100.99", "198.51.100.1", "192.0.2.53"}, []uint32{64500, 64521}, 64500},
	} {
		p := pathThrough(tc.hops...)
		tp := FromPath(p, nil)
		tp.Enrich(o, nil)
		_, facts := live.Path(p, o)
		tp.SetPath(facts)
		if !slices.Equal(tp.Path.ASPath, tc.path) {
			t.Errorf("%s: as path %v, want %v", tc.name, tp.Path.ASPath, tc.path)
		}
		if u := tp.Path.Upstream; u == nil || u.AS == nil || *u.AS != tc.upstream {
			t.Errorf("%s: upstream %+v, want AS%d", tc.name, u, tc.upstream)
		}
		if tp.Path.SourceOrigin == nil || tp.Path.SourceOrigin.ASNs[0] != 64500 {
			t.Errorf("%s: source origin %+v", tc.name, tp.Path.SourceOrigin)
		}
	}
	// No enrichment: empty path, no upstream AS, and the JSON keeps [] not
	// null; the upstream is the last responding hop before the target.
	p := pathThrough("198.51.100.1", "192.0.2.53")
	tp := FromPath(p, nil)
	tp.Enrich(nil, nil)
	_, facts := live.Path(p, nil)
	tp.SetPath(facts)
	if u := tp.Path.Upstream; tp.Path.ASPath == nil || len(tp.Path.ASPath) != 0 || u == nil || u.Address != "198.51.100.1" || u.AS != nil {
		t.Errorf("without origins: path %#v upstream %+v", tp.Path.ASPath, u)
	}
}
