package trace

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anycheck/anycheck/probe"
)

// probeState is one scheduled probe of a hop.
type probeState struct {
	probe   Probe
	sent    time.Time
	isSent  bool
	sendErr bool
	reply   *Reply
}

type hopState struct {
	ttl    int
	probes []probeState
}

// engine runs one flow's trace: it sends round after round (one probe per
// TTL per round, so the probes to one router are spread in time), matches
// replies and finalises hops in TTL order.
type engine struct {
	opts  Options
	conn  Conn
	flow  Flow
	match *matcher

	hops     []hopState // index ttl-FirstTTL
	schedule [][2]int   // (ttl, seq) in sending order
	next     int        // next schedule entry
	nextAt   time.Time  // earliest time of the next send
	interval time.Duration
	nextTag  uint16

	frontier   int // highest TTL with a probe answered or given up (FirstTTL-1 before any); sends stay within Window above it
	terminal   int // lowest TTL at which the destination (or an unreachable) answered; 0 = none yet
	reached    bool
	emitted    int // hops emitted so far
	sendOK     int
	sendFailed int
	notes      []string
	fatal      error
	started    time.Time
	byTag      map[uint16][2]int // tag → (hop index, seq)
	recv       chan Packet
	stop       chan struct{}
	wg         sync.WaitGroup
	loops      int // scheduler iterations, for tests: waiting must not spin
}

func newEngine(opts Options, conn Conn) *engine {
	e := &engine{
		opts:     opts,
		conn:     conn,
		flow:     conn.Flow(),
		interval: time.Duration(float64(time.Second) / opts.Rate),
		nextTag:  uint16(rand.N(0xfff0)) + 1,
		byTag:    map[uint16][2]int{},
		recv:     make(chan Packet, 256),
		stop:     make(chan struct{}),
	}
	e.match = newMatcher(e.flow)
	e.frontier = opts.FirstTTL - 1
	for ttl := opts.FirstTTL; ttl <= opts.MaxTTL; ttl++ {
		e.hops = append(e.hops, hopState{ttl: ttl, probes: make([]probeState, opts.Queries)})
	}
	for q := 0; q < opts.Queries; q++ {
		for ttl := opts.FirstTTL; ttl <= opts.MaxTTL; ttl++ {
			e.schedule = append(e.schedule, [2]int{ttl, q})
		}
	}
	return e
}

func (e *engine) reader() {
	defer e.wg.Done()
	for {
		p, err := e.conn.Recv()
		if err != nil {
			return
		}
		select {
		case e.recv <- p:
		case <-e.stop:
			return
		}
	}
}

func (e *engine) run(ctx context.Context) Path {
	e.started = time.Now()
	e.wg.Add(1)
	go e.reader()
	defer close(e.stop)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.loops++
		now := time.Now()
		e.advanceFrontier(now)
		if e.sendable() && !now.Before(e.nextAt) {
			e.sendNext()
			if e.fatal != nil {
				return e.path(StopError)
			}
			continue
		}
		e.emit(now)
		if e.done() {
			return e.path(e.stopReason())
		}
		wake := e.nextWake(now)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wake.Sub(now))
		select {
		case <-ctx.Done():
			return e.path(StopInterrupted)
		case p := <-e.recv:
			e.handle(p)
		case <-timer.C:
			// Replies already read but not yet handled were in time:
			// take them before anything is given up.
			for drained := false; !drained; {
				select {
				case p := <-e.recv:
					e.handle(p)
				default:
					drained = true
				}
			}
		}
	}
}

// sendable skips schedule entries no longer wanted (past the destination:
// not worth a packet) and says whether the next one may go now as far as
// the window is concerned. The schedule is never reordered around a
// blocked entry: a later round's probe to a low TTL would then follow its
// sibling closely and spend the router's ICMP burst.
func (e *engine) sendable() bool {
	for e.next < len(e.schedule) && e.terminal > 0 && e.schedule[e.next][0] > e.terminal {
		e.next++
	}
	return e.next < len(e.schedule) && e.schedule[e.next][0] <= e.frontier+e.opts.Window
}

// advanceFrontier moves the frontier to the highest TTL above it with a
// probe given up by now or refused by the kernel (answers move it in
// handle). It only ever rises: a deadline can recede when a slower answer
// arrives above it, but what was learnt about the path stays learnt.
func (e *engine) advanceFrontier(now time.Time) {
	for i := len(e.hops) - 1; i >= 0 && e.hops[i].ttl > e.frontier; i-- {
		if e.hops[i].ttl > e.lastTTL() {
			continue
		}
		for j := range e.hops[i].probes {
			if e.probeFinal(i, &e.hops[i].probes[j], now) {
				e.frontier = e.hops[i].ttl
				return
			}
		}
	}
}

// sendNext sends the next scheduled probe; sendable has said it may go.
func (e *engine) sendNext() {
	s := e.schedule[e.next]
	e.next++
	h := &e.hops[s[0]-e.opts.FirstTTL]
	ps := &h.probes[s[1]]
	p, err := e.build(s[0])
	if err != nil {
		e.fatal = err
		return
	}
	p.Seq = s[1]
	ps.probe = p
	at, err := e.conn.Send(p)
	if at.IsZero() {
		at = time.Now()
	}
	ps.sent, ps.isSent = at, true
	e.nextAt = at.Add(e.interval)
	e.byTag[p.Tag] = [2]int{s[0] - e.opts.FirstTTL, s[1]}
	if err != nil {
		ps.sendErr = true
		e.frontier = max(e.frontier, s[0])
		e.sendFailed++
		if e.sendFailed == 1 {
			e.notes = append(e.notes, fmt.Sprintf("send ttl %d: %v", s[0], err))
		}
		// Nothing ever left (no route, a local firewall) or privilege
		// is missing: a set-up failure, not a path with holes.
		if e.sendOK == 0 || errors.Is(err, ErrPermission) {
			e.fatal = err
		}
		return
	}
	e.sendOK++
	e.match.add(p)
}

// build makes the probe for ttl with a fresh tag; for UDP the tag is also
// chosen so that no two probes of the flow share a checksum.
func (e *engine) build(ttl int) (Probe, error) {
	for range 0x10000 {
		tag := e.nextTag
		e.nextTag++
		if tag == 0 {
			continue
		}
		if _, used := e.byTag[tag]; used {
			continue
		}
		p, err := BuildProbe(e.flow, ttl, tag, e.opts.QName)
		if err != nil {
			return Probe{}, err
		}
		if p.Proto == UDP {
			if _, clash := e.match.byChecksum[p.Checksum]; clash {
				continue
			}
		}
		return p, nil
	}
	return Probe{}, errors.New("no free probe tag")
}

// handle matches one received packet and records it as a reply.
func (e *engine) handle(pkt Packet) {
	o, err := ParseReply(pkt)
	if err != nil {
		return
	}
	tag, nat, ok := e.match.match(o)
	if !ok {
		return
	}
	loc, ok := e.byTag[tag]
	if !ok {
		return
	}
	at := pkt.At
	if at.IsZero() {
		at = time.Now()
	}
	if o.Kind == ReplyACK {
		if loc, ok = e.challenged(loc, at); !ok {
			return
		}
	}
	if loc[0] < e.emitted {
		return // its hop is already final and shown
	}
	ps := &e.hops[loc[0]].probes[loc[1]]
	if ps.reply != nil {
		return // a duplicate: the first answer stands
	}
	r := &Reply{
		From:      o.From,
		RTT:       max(at.Sub(ps.sent), 0),
		Kind:      o.Kind,
		ICMPType:  o.ICMPType,
		ICMPCode:  o.ICMPCode,
		ReplyTTL:  o.ReplyTTL,
		QuotedTTL: o.QuotedTTL,
		MPLS:      o.MPLS,
		NAT:       nat,
	}
	if o.Kind == ReplyDNS {
		a := probe.ClassifyReply(e.opts.QName, tag, o.DNS)
		a.RTT = r.RTT
		a.Transport = probe.UDP
		r.DNS = &a
	}
	ps.reply = r
	ttl := e.hops[loc[0]].ttl
	e.frontier = max(e.frontier, ttl)
	if end, reached := e.isTerminal(r); end && (e.terminal == 0 || ttl < e.terminal) {
		e.terminal = ttl
		e.reached = reached
	}
}

// challenged finds the probe a challenge ACK answers. The ACK acknowledges
// the probe at acked, whose SYN left a half-open connection at the
// destination; it answers a later SYN on the same 4-tuple: an unanswered
// probe sent after that one, at a TTL that reaches the destination, and
// sent about one round trip (the acknowledged probe's) before the ACK
// came back — the earliest such probe when that round trip is unknown.
func (e *engine) challenged(acked [2]int, at time.Time) ([2]int, bool) {
	first := &e.hops[acked[0]].probes[acked[1]]
	minTTL := e.hops[acked[0]].ttl
	if e.terminal > 0 {
		minTTL = min(minTTL, e.terminal)
	}
	var best [2]int
	var bestDist time.Duration
	found := false
	for i := range e.hops {
		if e.hops[i].ttl < minTTL {
			continue
		}
		for j := range e.hops[i].probes {
			ps := &e.hops[i].probes[j]
			if !ps.isSent || ps.sendErr || ps.reply != nil || !ps.sent.After(first.sent) || ps.sent.After(at) {
				continue
			}
			dist := ps.sent.Sub(first.sent)
			if first.reply != nil {
				dist = at.Sub(ps.sent) - first.reply.RTT
				dist = max(dist, -dist)
			}
			if !found || dist < bestDist {
				best, bestDist, found = [2]int{i, j}, dist, true
			}
		}
	}
	return best, found
}

// isTerminal says whether a reply ends the trace at its TTL and whether it
// means the destination was reached.
func (e *engine) isTerminal(r *Reply) (end, reached bool) {
	switch r.Kind {
	case ReplyDNS, ReplyUDP, ReplyEcho, ReplySynAck, ReplyRST, ReplyACK:
		return true, true
	case ReplyUnreachable:
		if r.From == e.flow.Dst.Addr() && (r.portUnreachable() || e.flow.Proto == ICMP) {
			return true, true
		}
		return true, false
	}
	return false, false
}

// lastTTL is the TTL up to which hops are wanted.
func (e *engine) lastTTL() int {
	if e.terminal > 0 {
		return e.terminal
	}
	return e.opts.MaxTTL
}

// deadline is when an unanswered probe is given up: Wait after sending, or
// sooner when a hop at or beyond its TTL answered quickly (if that hop's
// reply came back in rtt, ours would have too).
func (e *engine) deadline(hi int, ps *probeState) time.Time {
	wait := e.opts.Wait
	var ref time.Duration
	found := false
	for i := hi; i < len(e.hops) && e.hops[i].ttl <= e.lastTTL(); i++ {
		for j := range e.hops[i].probes {
			q := &e.hops[i].probes[j]
			if q != ps && q.reply != nil {
				ref = max(ref, q.reply.RTT)
				found = true
			}
		}
	}
	if found {
		wait = min(wait, max(adaptiveFactor*ref, e.opts.MinWait))
	}
	return ps.sent.Add(wait)
}

func (e *engine) probeFinal(hi int, ps *probeState, now time.Time) bool {
	if !ps.isSent {
		return false
	}
	if ps.reply != nil || ps.sendErr {
		return true
	}
	return !now.Before(e.deadline(hi, ps))
}

// emit hands every hop that became final to OnHop, in TTL order.
func (e *engine) emit(now time.Time) {
	for e.emitted < len(e.hops) && e.hops[e.emitted].ttl <= e.lastTTL() {
		h := &e.hops[e.emitted]
		for j := range h.probes {
			if !e.probeFinal(e.emitted, &h.probes[j], now) {
				return
			}
		}
		e.emitted++
		if e.opts.OnHop != nil {
			e.opts.OnHop(e.hopResult(h))
		}
	}
}

func (e *engine) done() bool {
	return e.emitted > e.lastTTL()-e.opts.FirstTTL
}

func (e *engine) stopReason() StopReason {
	switch {
	case e.terminal > 0 && e.reached:
		return StopReached
	case e.terminal > 0:
		return StopUnreachable
	}
	return StopMaxTTL
}

// nextWake is the earliest moment something can change without a packet
// arriving: the next send, or the next unanswered probe's deadline. While
// the window holds the next send back, only a deadline (or an answer) can
// move the frontier, and some probe above the frontier is always still
// open then (had all been given up, the frontier would be above them), so
// the scheduler sleeps until its deadline rather than polling.
func (e *engine) nextWake(now time.Time) time.Time {
	wake := now.Add(time.Hour)
	if e.sendable() {
		wake = e.nextAt
	}
	for i := e.emitted; i < len(e.hops) && e.hops[i].ttl <= e.lastTTL(); i++ {
		for j := range e.hops[i].probes {
			ps := &e.hops[i].probes[j]
			if ps.isSent && ps.reply == nil && !ps.sendErr {
				// A deadline already past is final; waking for it again
				// would spin while an earlier hop is still open.
				if d := e.deadline(i, ps); d.After(now) && d.Before(wake) {
					wake = d
				}
			}
		}
	}
	if wake.Before(now) {
		wake = now
	}
	return wake
}

// hopResult is the public view of a hop: probes that were sent.
func (e *engine) hopResult(h *hopState) Hop {
	out := Hop{TTL: h.ttl}
	icmpAnswered, silentAfter := false, false
	for j := range h.probes {
		ps := &h.probes[j]
		if !ps.isSent {
			continue
		}
		out.Probes = append(out.Probes, ProbeResult{Seq: j, Sent: ps.sent, Reply: ps.reply})
		switch {
		case ps.reply != nil:
			icmpAnswered = icmpAnswered || ps.reply.Kind == ReplyTimeExceeded || ps.reply.Kind == ReplyUnreachable
		case icmpAnswered && !ps.sendErr:
			silentAfter = true
		}
	}
	// The evidence of rate limiting: a hop that answered with ICMP errors
	// (what routers and hosts rate limit: Linux allows a burst of 6, then
	// 1/s per destination) and then went quiet within the trace. A SYN-ACK,
	// DNS answer or echo reply followed by silence is something else (a
	// TCP server's half-open connection, a busy service).
	out.RateLimited = silentAfter
	return out
}

func (e *engine) path(stop StopReason) Path {
	p := Path{
		Flow:    e.flow,
		Mode:    e.conn.Mode(),
		Started: e.started,
		Elapsed: time.Since(e.started),
		Stop:    stop,
		Notes:   e.notes,
	}
	if p.Mode == ModeSocket {
		p.Unobserved = []string{"nat", "mpls", "quoted_ttl"}
	}
	last := e.lastTTL()
	if stop == StopInterrupted || stop == StopError {
		// Keep every hop that has something sent, up to the last such one.
		last = 0
		for i := range e.hops {
			if e.hops[i].ttl > e.lastTTL() {
				break
			}
			for _, ps := range e.hops[i].probes {
				if ps.isSent {
					last = e.hops[i].ttl
				}
			}
		}
	}
	for i := range e.hops {
		if e.hops[i].ttl > last {
			break
		}
		p.Hops = append(p.Hops, e.hopResult(&e.hops[i]))
	}
	if e.terminal > 0 && e.reached && e.terminal <= last {
		p.Reached = true
		p.DestTTL = e.terminal
	}
	if e.flow.Proto == UDP && e.flow.Dst.Port() == 53 {
		for _, h := range p.Hops {
			for _, pr := range h.Probes {
				if pr.Reply != nil && pr.Reply.DNS != nil {
					p.Answers = append(p.Answers, *pr.Reply.DNS)
				}
			}
		}
		if len(p.Answers) > 0 {
			id := probe.Summarise(p.Answers)
			p.Instance = &id
		}
	}
	return p
}
