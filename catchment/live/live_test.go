package live

import (
	"net/netip"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
)

func TestPath(t *testing.T) {
	a := netip.MustParseAddr
	reply := func(from string, rtt time.Duration) *trace.Reply {
		return &trace.Reply{From: a(from), RTT: rtt, Kind: trace.ReplyTimeExceeded, ICMPType: 11, ICMPCode: 0}
	}
	p := trace.Path{
		Flow:    trace.Flow{Proto: trace.UDP, Src: netip.MustParseAddrPort("198.51.100.10:40000"), Dst: netip.MustParseAddrPort("192.0.2.53:53")},
		Reached: true,
		Hops: []trace.Hop{
			{TTL: 1, Probes: []trace.ProbeResult{{Reply: reply("198.51.100.1", 3*time.Millisecond)}, {Reply: reply("198.51.100.1", time.Millisecond)}, {}}},
			{TTL: 2, RateLimited: true, Probes: []trace.ProbeResult{{}, {}}},
			{TTL: 3, Probes: []trace.ProbeResult{{Reply: &trace.Reply{From: a("198.51.100.9"), RTT: 5 * time.Millisecond, Kind: trace.ReplyUnreachable, ICMPType: 3, ICMPCode: 1}}}},
			{TTL: 4, Probes: []trace.ProbeResult{{Reply: &trace.Reply{From: a("192.0.2.53"), RTT: 6 * time.Millisecond, Kind: trace.ReplyDNS, ICMPType: -1, ICMPCode: -1}}}},
		},
		Instance: &measure.Identity{Instance: "i1", Source: measure.SourceNSID, NSID: "i1"},
	}
	origins := map[netip.Addr]whois.Origin{
		a("198.51.100.1"): {ASNs: []uint32{64500}}, a("198.51.100.9"): {ASNs: []uint32{64510}}, a("192.0.2.53"): {ASNs: []uint32{64520}},
	}
	f, facts := Path(p, origins)
	if len(f.Hops) != 4 || len(f.Hops[0].Responders) != 1 || f.Hops[0].Responders[0].RTT != time.Millisecond || !f.Hops[1].Silent() || !f.Hops[1].RateLimited {
		t.Fatalf("hops %+v", f.Hops)
	}
	if r := f.Hops[2].Responders[0]; r.Unreachable != "!H" || r.ASNs[0] != 64510 {
		t.Errorf("unreachable hop %+v", r)
	}
	if f.Identity.Instance != "i1" || !f.Reached || f.Source.Port() != 40000 {
		t.Errorf("flow %+v", f)
	}
	if u := facts.Upstream; u == nil || u.Addr != a("198.51.100.9") || u.AS != 64510 || !u.ByOrigin || facts.RTT != 6*time.Millisecond {
		t.Errorf("facts %+v upstream %+v", facts, facts.Upstream)
	}
	// Without origins: the last responding hop before the target.
	if _, facts := Path(p, nil); facts.Upstream == nil || facts.Upstream.AS != 0 || facts.Upstream.Addr != a("198.51.100.9") {
		t.Errorf("no origins: %+v", facts.Upstream)
	}
}
