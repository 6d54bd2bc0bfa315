package census

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

// Records gathered from several files join one census at a time: its
// sites (every listener's, in the order seen), the targets its sender sent
// to without an error, only its replies, and its senders named by their
// records or by the replies' payloads.
func TestRecordsReport(t *testing.T) {
	var rs Records
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	rep := func(site string, id uint64, sender, target string) Reply {
		return Reply{Site: site, Census: id, Sender: sender, Target: a(target), From: a(target), Received: t0}
	}
	rs.AddReply(rep("lhr", 7, "ams", "198.51.100.10"))
	rs.AddReply(rep("fra", 9, "fra", "203.0.113.5")) // another census
	rs.AddReply(rep("ams", 7, "", "203.0.113.9"))
	rs.AddSent(7, "ams", Sent{Seq: 1, Target: a("198.51.100.10")})
	rs.AddSent(7, "ams", Sent{Seq: 2, Target: a("192.0.2.1")})
	rs.AddSent(7, "ams", Sent{Seq: 3, Target: a("2001:db8:5::1"), Err: errors.New("no route")})
	rs.AddSent(7, "sin", Sent{Seq: 4, Target: a("203.0.113.9")})

	if ids := rs.Censuses(); !slices.Equal(ids, []uint64{7, 9}) {
		t.Fatalf("censuses %v, want [7 9]", ids)
	}
	j := rs.Report(7, JoinOptions{})
	var sites []string
	for _, in := range j.Census.Instances {
		sites = append(sites, fmt.Sprintf("%s:%d", in.Name, in.Queries))
	}
	if fmt.Sprint(sites) != "[lhr:1 fra:0 ams:1]" || j.Census.Queries != 2 {
		t.Errorf("instances %v, %d replies; want lhr, fra, ams as seen and census 9's reply left out", sites, j.Census.Queries)
	}
	var prefixes []string
	for _, c := range j.Census.Clients {
		prefixes = append(prefixes, fmt.Sprintf("%s:%d", c.Prefix, c.Queries))
	}
	if fmt.Sprint(prefixes) != "[192.0.2.0/24:0 198.51.100.0/24:1 203.0.113.0/24:1]" {
		t.Errorf("clients %v: want the silent target sent to, not the one whose send failed", prefixes)
	}
	if !slices.Equal(j.Senders, []string{"ams", "sin"}) || j.Unsent {
		t.Errorf("senders %v, unsent %v", j.Senders, j.Unsent)
	}

	// Census 9 has replies but no sender's record: its silent targets are
	// not known; its sender is named by the replies.
	j = rs.Report(9, JoinOptions{})
	if !j.Unsent || !slices.Equal(j.Senders, []string{"fra"}) || j.Census.Queries != 1 {
		t.Errorf("census 9: unsent %v, senders %v, %d replies", j.Unsent, j.Senders, j.Census.Queries)
	}
}
