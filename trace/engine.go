package trace

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anycheck/anycheck/measure"

	"golang.org/x/time/rate"
)

// probeState is one scheduled probe of a hop.
type probeState struct {
	probe   Probe
	sent    time.Time
	isSent  bool
	sendErr bool
	reply   *Reply
	due     time.Time // when it is given up if still unanswered (settle keeps it current)
}

type hopState struct {
	ttl    int
	probes []probeState
	nsent  int // probes sent so far (in Seq order)
}

// engine runs one flow's trace: it sends round after round (one probe per
// TTL per round, the probes to one router at least ttlSpread apart),
// matches replies and finalises hops in TTL order.
type engine struct {
	opts  Options
	conn  Conn
	flow  Flow
	match *matcher

	hops    []hopState // index ttl-FirstTTL
	budget  *rate.Limiter
	grant   *rate.Reservation // the budget's token for the next send, once asked for
	grantAt time.Time         // when that token may be used
	nextTag uint16

	frontier int // highest TTL with a probe answered or given up (FirstTTL-1 before any); sends stay within Window above it
	terminal int // lowest TTL at which the destination (or an unreachable) answered; 0 = none yet
	// destAnswered is when the destination's first answer came back (TCP:
	// SYNs sent before it found that probe's half-open connection).
	destAnswered time.Time
	reached      bool
	emitted      int // hops emitted so far
	sendOK       int
	sendFailed   int
	notes        []string
	fatal        error
	started      time.Time
	byTag        map[uint16][2]int // tag → (hop index, seq)
	recv         chan Packet
	stop         chan struct{}
	wg           sync.WaitGroup
	loops        int // scheduler iterations, for tests: waiting must not spin
}

func newEngine(opts Options, conn Conn) *engine {
	e := &engine{
		opts:    opts,
		conn:    conn,
		flow:    conn.Flow(),
		budget:  opts.Budget,
		nextTag: uint16(rand.N(0xfff0)) + 1,
		byTag:   map[uint16][2]int{},
		recv:    make(chan Packet, 256),
		stop:    make(chan struct{}),
	}
	if e.budget == nil {
		e.budget = NewBudget(opts.Rate)
	}
	e.match = newMatcher(e.flow)
	e.frontier = opts.FirstTTL - 1
	for ttl := opts.FirstTTL; ttl <= opts.MaxTTL; ttl++ {
		e.hops = append(e.hops, hopState{ttl: ttl, probes: make([]probeState, opts.Queries)})
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
	// A token asked for but not used (the trace ended first) goes back to
	// the run's budget for other traces.
	defer func() {
		if e.grant != nil {
			e.grant.Cancel()
		}
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	grace := time.NewTimer(time.Hour)
	defer grace.Stop()
	for {
		e.loops++
		// Answers that came in during a burst of sends go first: the
		// destination's stops the sends past it.
		for drained := false; !drained; {
			select {
			case p := <-e.recv:
				e.handle(p)
			default:
				drained = true
			}
		}
		now := time.Now()
		e.settle(now)
		e.advanceFrontier(now)
		if hi, seq, at, ok := e.nextSend(now); ok && !now.Before(at) {
			e.sendNext(hi, seq)
			if e.fatal != nil {
				return e.path(StopError)
			}
			continue
		}
		if e.fatal != nil {
			return e.path(StopError)
		}
		e.emit(now)
		if e.done(now) {
			return e.path(e.stopReason())
		}
		wake, deadline := e.nextWake(now)
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
			if deadline {
				// Something may be given up now. Replies already in our
				// sockets were in time, but if this process was starved
				// (a loaded machine) the runtime may wake this timer
				// before the socket readers: park once more, briefly, so
				// they deliver what the kernel holds; the next iteration
				// takes it before anything is given up.
				grace.Reset(readGrace)
				select {
				case <-ctx.Done():
					return e.path(StopInterrupted)
				case p := <-e.recv:
					e.handle(p)
				case <-grace.C:
				}
				grace.Stop()
			}
		}
	}
}

// nextSend picks the probe to send next and says when it may leave (ok is
// false when no probe is wanted within the window). Probes go in rounds:
// every TTL in the window gets its first probe before any gets its
// second, lowest TTL first; TTLs past the destination are not worth a
// packet. A probe leaves ttlSpread after the previous probe to its TTL
// (probes to other TTLs reach other routers and may leave back to back)
// and once the run's packet budget grants a token; the token is asked for
// only when the spread lets the probe go, so a trace waiting on its own
// spacing holds nothing other traces could use.
func (e *engine) nextSend(now time.Time) (hi, seq int, at time.Time, ok bool) {
	top := min(e.lastTTL(), e.frontier+e.opts.Window)
pick:
	for r := range max(e.opts.Queries, retryProbes) {
		for i := 0; i < len(e.hops) && e.hops[i].ttl <= top; i++ {
			h := &e.hops[i]
			if h.nsent != r || (r > 0 && e.tcpAwaits(h, &h.probes[r-1], now)) {
				continue
			}
			if r >= e.opts.Queries && !(e.retryWanted(i) && e.probeFinal(&h.probes[r-1], now)) {
				continue
			}
			ready := now
			if r > 0 {
				if t := h.probes[r-1].sent.Add(ttlSpread); t.After(now) {
					ready = t
				}
			}
			if e.terminal > 0 && h.ttl >= e.terminal {
				if t := e.heldUntil(); t.After(ready) {
					ready = t
				}
			}
			if !ok || ready.Before(at) {
				hi, seq, at, ok = i, r, ready, true
			}
			if !ready.After(now) {
				break pick
			}
		}
	}
	if !ok || at.After(now) {
		return hi, seq, at, ok
	}
	if e.grant == nil {
		// The budget may be shared by traces in other goroutines: reserve
		// at the real time, not the loop's earlier now. A limiter handed a
		// time before its last reservation's moves its clock back and
		// counts that stretch's tokens again (x/time/rate's advance), so
		// a stale time lets several traces together exceed the budget.
		t := time.Now()
		g := e.budget.ReserveN(t, 1)
		if !g.OK() {
			// Only a budget changed under us (burst 0) gets here:
			// withDefaults refuses one that can never grant a packet.
			e.fatal = errors.New("the packet budget grants no packet (rate limiter with burst 0)")
			return hi, seq, now.Add(time.Hour), false
		}
		e.grant, e.grantAt = g, now.Add(g.DelayFrom(t))
	}
	return hi, seq, e.grantAt, true
}

// A TCP destination keeps a half-open connection for each SYN it answers
// until the RST our kernel sends on the SYN-ACK gets there; another SYN on
// the 4-tuple meanwhile gets a challenge ACK or nothing, not a SYN-ACK. A
// SYN sent after that SYN-ACK came back follows the RST on the path, so
// TCP probes that may reach the destination wait for the answers of those
// before them: tcpAwaits before the destination is known, heldUntil after.

// tcpAwaits says whether the next TCP probe to h waits for the previous
// one's answer (or for it to be given up): until the destination has
// answered, any TTL may be the destination's.
func (e *engine) tcpAwaits(h *hopState, prev *probeState, now time.Time) bool {
	return e.flow.Proto == TCP && e.terminal == 0 && prev.reply == nil && !e.probeFinal(prev, now)
}

// heldUntil is, for TCP, when no SYN of ours can still hold a half-open
// connection at the destination: each unanswered probe at or past its TTL
// sent since its first answer came back may have made one, until it would
// be given up (silentFactor × the largest RTT the destination answered
// with, at least MinWait, at most Wait). A probe sent before that first
// answer arrived found the first SYN's connection there and made none.
func (e *engine) heldUntil() time.Time {
	if e.flow.Proto != TCP || e.terminal == 0 {
		return time.Time{}
	}
	var rtt time.Duration
	var until time.Time
	for i := e.terminal - e.opts.FirstTTL; i < len(e.hops); i++ {
		for j := range e.hops[i].probes {
			if r := e.hops[i].probes[j].reply; r != nil {
				rtt = max(rtt, r.RTT)
			}
		}
	}
	hold := min(max(silentFactor*rtt, e.opts.MinWait), e.opts.Wait)
	for i := e.terminal - e.opts.FirstTTL; i < len(e.hops); i++ {
		for j := range e.hops[i].probes {
			ps := &e.hops[i].probes[j]
			if ps.isSent && !ps.sendErr && ps.reply == nil && !ps.sent.Before(e.destAnswered) {
				if t := ps.sent.Add(hold); t.After(until) {
					until = t
				}
			}
		}
	}
	return until
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
			if e.probeFinal(&e.hops[i].probes[j], now) {
				e.frontier = e.hops[i].ttl
				return
			}
		}
	}
}

// sendNext sends probe seq of hop hi; nextSend has said it may go.
func (e *engine) sendNext(hi, seq int) {
	e.grant = nil // spent on this probe
	h := &e.hops[hi]
	h.nsent++
	ttl := h.ttl
	if seq == len(h.probes) {
		h.probes = append(h.probes, probeState{}) // a retry (retryWanted)
	}
	ps := &h.probes[seq]
	p, err := e.build(ttl)
	if err != nil {
		e.fatal = err
		return
	}
	p.Seq = seq
	ps.probe = p
	at, err := e.conn.Send(p)
	if at.IsZero() {
		at = time.Now()
	}
	ps.sent, ps.isSent = at, true
	e.byTag[p.Tag] = [2]int{hi, seq}
	if err != nil {
		ps.sendErr = true
		e.frontier = max(e.frontier, ttl)
		e.sendFailed++
		if e.sendFailed == 1 {
			e.notes = append(e.notes, fmt.Sprintf("send ttl %d: %v", ttl, err))
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
	o, err := parseReply(pkt)
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
		a := measure.ClassifyReply(e.opts.QName, tag, o.DNS)
		a.RTT = r.RTT
		a.Transport = measure.UDP
		r.DNS = &a
	}
	ps.reply = r
	ttl := e.hops[loc[0]].ttl
	e.frontier = max(e.frontier, ttl)
	end, reached := e.isTerminal(r)
	if reached && e.destAnswered.IsZero() {
		e.destAnswered = at
	}
	if end && (e.terminal == 0 || ttl < e.terminal) {
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

// settle sets when each unanswered probe is given up (probeState.due),
// walking down from the last TTL wanted. The silent-hop rule: a probe at
// TTL t is waited for Wait, unless the destination (or an unreachable) has
// answered and every TTL above t up to it has answered or been given up;
// then it is given up silentFactor × the largest RTT seen at or beyond t
// after it was sent (never sooner than MinWait, never later than Wait).
// Whatever router t is, its reply crosses less of the path than the
// replies from beyond it that already came back (see doc.go for when that
// fails).
func (e *engine) settle(now time.Time) {
	last := min(e.lastTTL(), e.hops[len(e.hops)-1].ttl)
	known := e.terminal > 0 // everything above the current TTL is answered or given up
	var ref time.Duration   // the largest RTT at or beyond the current TTL
	found := false
	// Answers from past the destination count: they are the destination's
	// own, to probes sent with it, and tell how long it takes to answer a
	// burst of them.
	for i := last - e.opts.FirstTTL + 1; i < len(e.hops); i++ {
		for j := range e.hops[i].probes {
			if r := e.hops[i].probes[j].reply; r != nil {
				ref, found = max(ref, r.RTT), true
			}
		}
	}
	for i := last - e.opts.FirstTTL; i >= 0; i-- {
		h := &e.hops[i]
		for j := range h.probes {
			if r := h.probes[j].reply; r != nil {
				ref, found = max(ref, r.RTT), true
			}
		}
		wait := e.opts.Wait
		if known && found {
			wait = min(wait, max(silentFactor*ref, e.opts.MinWait))
		}
		answered, final := false, true
		for j := range h.probes {
			ps := &h.probes[j]
			switch {
			case ps.reply != nil:
				answered = true
			case !ps.isSent:
				final = false
			case ps.sendErr:
			default:
				ps.due = ps.sent.Add(wait)
				if now.Before(ps.due) {
					final = false
				}
			}
		}
		known = known && (answered || final)
	}
}

func (e *engine) probeFinal(ps *probeState, now time.Time) bool {
	if !ps.isSent {
		return false
	}
	if ps.reply != nil || ps.sendErr {
		return true
	}
	return !now.Before(ps.due)
}

// emit hands every hop that became final to OnHop, in TTL order.
func (e *engine) emit(now time.Time) {
	for e.emitted < len(e.hops) && e.hops[e.emitted].ttl <= e.lastTTL() {
		h := &e.hops[e.emitted]
		for j := range h.probes {
			if !e.probeFinal(&h.probes[j], now) {
				return
			}
		}
		if e.held(e.emitted, now) {
			return
		}
		e.emitted++
		if e.opts.OnHop != nil {
			e.opts.OnHop(e.hopResult(h))
		}
	}
}

// A silent TTL between the last router that answered and the destination
// may be the destination itself, whose answer was lost (a lossy path, a
// busy service): every probe at or past its distance reaches it. With one
// probe per hop (a flow sweep), one lost answer would put the destination
// a TTL further on, behind a "*", and a run of them further still. So once
// the destination has answered, each such TTL is probed again until it has
// retryProbes probes (what a single trace sends; -q 3 needs no retry), at
// most retryDepth TTLs below it; a retry the destination answers moves the
// end of the trace there. TCP is left alone: its probes at the destination
// wait on half-open connections (heldUntil). A silent TTL whose fate may
// still change this way is held back from OnHop.
const (
	retryProbes = 3
	retryDepth  = 8
)

// retryWanted says whether hop i gets another probe: it is silent, below
// the destination, with no reply from any TTL between them (which would be
// a router, so the destination is further on), and short of retryProbes.
func (e *engine) retryWanted(i int) bool {
	h := &e.hops[i]
	if e.flow.Proto == TCP || e.terminal == 0 || !e.reached || h.ttl >= e.terminal || h.ttl < e.terminal-retryDepth ||
		h.nsent < e.opts.Queries || h.nsent >= retryProbes {
		return false
	}
	for j := i; j < len(e.hops) && e.hops[j].ttl < e.terminal; j++ {
		for k := range e.hops[j].probes {
			if e.hops[j].probes[k].reply != nil {
				return false
			}
		}
	}
	return true
}

// held says whether silent hop i, all of whose probes are final, may yet
// turn out to be the destination's TTL: before the destination answers,
// while no TTL above it has answered and probes there are still out; after,
// while it is to be probed again (retryWanted).
func (e *engine) held(i int, now time.Time) bool {
	for k := range e.hops[i].probes {
		if e.hops[i].probes[k].reply != nil {
			return false
		}
	}
	if e.terminal > 0 {
		return e.retryWanted(i)
	}
	open := false
	for j := i + 1; j < len(e.hops); j++ {
		h := &e.hops[j]
		if h.nsent < e.opts.Queries {
			open = true
		}
		for k := range h.probes {
			ps := &h.probes[k]
			if ps.reply != nil {
				return false // a router answered beyond it
			}
			if !e.probeFinal(ps, now) {
				open = true
			}
		}
	}
	return open
}

// done: every hop wanted is final, and (TCP) no SYN of ours may still hold
// a half-open connection at the destination, so the port is clean for the
// caller's identity connection or the next trace.
func (e *engine) done(now time.Time) bool {
	return e.emitted > e.lastTTL()-e.opts.FirstTTL && !e.heldUntil().After(now)
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
// arriving: the next send, or the next unanswered probe's deadline
// (deadline says which). While the window holds the next send back, only a
// deadline (or an answer) can move the frontier, and some probe above the
// frontier is always still open then (had all been given up, the frontier
// would be above them), so the scheduler sleeps until its deadline rather
// than polling.
func (e *engine) nextWake(now time.Time) (wake time.Time, deadline bool) {
	wake = now.Add(time.Hour)
	if _, _, at, ok := e.nextSend(now); ok {
		wake = at
	}
	if t := e.heldUntil(); t.After(now) && t.Before(wake) {
		wake = t
	}
	for i := e.emitted; i < len(e.hops) && e.hops[i].ttl <= e.lastTTL(); i++ {
		for j := range e.hops[i].probes {
			ps := &e.hops[i].probes[j]
			if ps.isSent && ps.reply == nil && !ps.sendErr {
				// A deadline already past is final; waking for it again
				// would spin while an earlier hop is still open.
				if ps.due.After(now) && ps.due.Before(wake) {
					wake, deadline = ps.due, true
				}
			}
		}
	}
	if wake.Before(now) {
		wake = now
	}
	return wake, deadline
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
			id := measure.Summarise(p.Answers)
			p.Instance = &id
		}
	}
	return p
}
