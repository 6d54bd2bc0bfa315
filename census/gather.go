package census

import (
	"slices"
	"sort"
)

// Records gathers what the files of an active census hold — the
// listeners' replies and the senders' records, of one census or several
// — until Report joins one census from them.
type Records struct {
	replies []Reply
	sent    map[uint64][]Sent
	senders map[uint64]map[string]bool
	sites   []string // listener sites, in the order seen
}

// AddReply keeps one listener's reply.
func (rs *Records) AddReply(r Reply) {
	rs.replies = append(rs.replies, r)
	if !slices.Contains(rs.sites, r.Site) {
		rs.sites = append(rs.sites, r.Site)
	}
	if r.Sender != "" {
		rs.addSender(r.Census, r.Sender)
	}
}

// AddSent keeps one request the sender at site sent for census id.
func (rs *Records) AddSent(id uint64, site string, s Sent) {
	if rs.sent == nil {
		rs.sent = map[uint64][]Sent{}
	}
	rs.sent[id] = append(rs.sent[id], s)
	rs.addSender(id, site)
}

func (rs *Records) addSender(id uint64, site string) {
	if rs.senders == nil {
		rs.senders = map[uint64]map[string]bool{}
	}
	if rs.senders[id] == nil {
		rs.senders[id] = map[string]bool{}
	}
	rs.senders[id][site] = true
}

// Censuses are the ids of the censuses the records hold, in order.
func (rs *Records) Censuses() []uint64 {
	seen := map[uint64]bool{}
	for _, r := range rs.replies {
		seen[r.Census] = true
	}
	for id := range rs.sent {
		seen[id] = true
	}
	var ids []uint64
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Joined is one census joined from the records.
type Joined struct {
	Census *Census
	// Senders are the sites that sent it (from their records and the
	// replies' payloads), sorted.
	Senders []string
	// Unsent is set when no sender's record was given: the targets that
	// did not reply are not known.
	Unsent bool
}

// Report joins census id: every listener site (in the order seen), the
// targets its sender sent to without a send error, and its replies.
func (rs *Records) Report(id uint64, o JoinOptions) Joined {
	j := NewJoin(o)
	for _, site := range rs.sites {
		j.Site(site)
	}
	for _, s := range rs.sent[id] {
		if s.Err == nil {
			j.AddSent(s.Target)
		}
	}
	replies := 0
	for _, r := range rs.replies {
		if r.Census == id {
			j.AddReply(r)
			replies++
		}
	}
	out := Joined{Census: j.Result(), Unsent: len(rs.sent[id]) == 0 && replies > 0}
	for site := range rs.senders[id] {
		out.Senders = append(out.Senders, site)
	}
	sort.Strings(out.Senders)
	return out
}
