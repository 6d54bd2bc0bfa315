// Package sweep is the flow-sweep engine (`anycheck trace --flows`): it
// traces one target over many flows that differ only in the source port
// (ICMP: the echo identifier), each a trace.Run of its own, either a fixed
// number at once or, for Auto, round after round until the MDA stopping
// rule (catchment.MDAUnsatisfied) finds no hop that could still hide a next
// hop. It hands out the flows' ports, bounds the flows in flight, and
// reports each flow as it ends through callbacks; it prints nothing, and
// what the flows mean (paths, diamonds, splits) is the caller's to work
// out with package catchment.
package sweep

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/catchment/live"
	"github.com/anycheck/anycheck/trace"
)

// Why a sweep stopped (the same words as its JSON summary's stop.reason).
const (
	StopFlows       = "flows"       // a fixed sweep: every flow asked for was traced
	StopMDA         = "mda"         // Auto: no hop needs more flows to rule out another next hop
	StopMaxFlows    = "max_flows"   // Auto: MaxFlows reached while some hop still wanted flows
	StopInterrupted = "interrupted" // ctx ended
	StopFailed      = "failed"      // Auto: no flow of the last round could be traced
	StopStalled     = "stalled"     // Auto: the last round brought no reply to the hops that wanted flows
)

// The trace options a sweep's callers give its flows (trace.Options.Window
// and MinWait) unless the user asks for others; a single trace's defaults
// are 16 and 25 ms.
const (
	// Window is a sweep's -N: the TTLs a flow probes beyond what it
	// knows. Every probe at or past the destination's distance is a query
	// to the service, and DNS servers limit the answers they send one
	// network (NSD's response rate limiting: 200 a second by default), so
	// a sweep keeps each flow to about Window queries: with 64 flows
	// at once, 16 each would be a thousand, and the dropped answers would
	// show as flows that never reached the service. The destination's probe
	// then leaves once the hop Window before it has answered: a flow
	// takes about that hop's round trip longer than one trace.
	Window = 2
	// MinWait is the least a flow of a sweep waits for a silent
	// hop once the hops beyond it answered (a single trace: 25 ms). Every
	// flow has its own sockets, and each raw ICMP socket receives every
	// flow's errors: with many flows on a busy host a router's reply can
	// be read tens of milliseconds after the destination's, and a hop
	// given up too early splits its flow off into a path of its own.
	MinWait = 100 * time.Millisecond
)

// Confidence is the MDA stopping rule's: a hop is settled once enough
// flows passed it to rule out one more next hop at 95 %.
const Confidence = 0.95

// FirstRound is Auto's first round: 16 flows rule out a fourth next hop at
// any hop every flow passes (MDA at 95 %) and give each branch of a
// two-way diamond 8 flows on average, more than the 6 its own next hop
// needs, so a diamond is usually settled in one round.
const FirstRound = 16

// portTries bounds how many ports a flow of an automatic range tries when
// the one it was given is in use.
const portTries = 16

// dynamicPorts is the start of the IANA dynamic range, where automatic
// ports are picked.
const dynamicPorts = 49152

// Ports hands out flows their source ports (ICMP: echo identifiers), each
// once: consecutive from a given port, or from a random start in the
// dynamic range. Several targets' sweeps may share one (a flow holds its
// port while it runs). With automatic ports a port in use is skipped; a
// given range is the user's and is kept as asked.
type Ports struct {
	mu       sync.Mutex
	next     int
	explicit bool
}

// NewPorts plans the ports of up to flows flows: from first when it is
// not 0, else from a random start in the dynamic range that leaves room
// for them and a quarter more (ports skipped on the way).
func NewPorts(first, flows int) *Ports {
	if first != 0 {
		return &Ports{next: first, explicit: true}
	}
	span := max(1, 65536-dynamicPorts-flows-flows/4)
	return &Ports{next: dynamicPorts + rand.N(span)}
}

// take returns the next port, false when the range is exhausted.
func (pp *Ports) take() (int, bool) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.next > 65535 {
		return 0, false
	}
	p := pp.next
	pp.next++
	return p, true
}

// Options of one target's sweep.
type Options struct {
	// Trace is every flow's trace: target, protocol, waits, the run's
	// packet budget (share one across targets), the network. Its SrcPort
	// is set per flow; OnHop is replaced (see OnHop below).
	Trace trace.Options
	// Flows is a fixed sweep's number of flows; with Auto, the most flows
	// rounds may use (0: FirstRound).
	Flows int
	Auto  bool
	// Ports gives the flows their ports; nil = automatic ports of the
	// sweep's own.
	Ports *Ports
	// Slots, when set, bounds the flows traced at once (shared by a run's
	// targets: a flow takes a slot while it runs).
	Slots chan struct{}
	// Identity, for a TCP/53 sweep, asks each flow's instance over a
	// connection from its own port once its trace is over (nil: not).
	Identity *trace.IdentityOptions

	// OnStart is called as each flow is started, with its round (1, 2, …).
	OnStart func(round int)
	// OnHop streams each flow's hops as they become final.
	OnHop func(sport int, h trace.Hop)
	// OnFlow is called as each flow ends (traced or failed), from the
	// flow's goroutine.
	OnFlow func(Flow)
	// OnNoPorts is called when the port range runs out before a round's
	// flows were all started.
	OnNoPorts func()
}

// Flow is one flow's outcome: its path, or why it could not be traced.
type Flow struct {
	Port int
	Path trace.Path // Path.Flow.Src carries the port even for a failed flow
	Err  error
}

// Result is a target's sweep.
type Result struct {
	Paths  []trace.Path // the flows traced (in the order they ended)
	Failed []Flow       // flows that could not be traced (not ErrPermission)
	Rounds int
	Reason string // Stop…
	// Permission is a flow's missing privilege (trace.ErrPermission): the
	// sweep stopped there.
	Permission error
}

// errNotStarted: ctx ended before the flow got a slot.
var errNotStarted = errors.New("not started")

// Run sweeps one target. It returns when its stopping rule is met, ctx
// ends (Reason StopInterrupted, with what was traced), or a flow lacks
// privilege (Permission).
func Run(ctx context.Context, o Options) Result {
	if o.Ports == nil {
		o.Ports = NewPorts(0, max(o.Flows, FirstRound))
	}
	s := &sweeper{o: o}
	batch := o.Flows
	if o.Auto {
		batch = FirstRound
		if o.Flows > 0 {
			batch = min(FirstRound, o.Flows)
		}
	}
	used := 0
	var last []catchment.MDAVertex // the hops that wanted flows after the previous round
	r := &s.res
	for {
		r.Rounds++
		before := len(r.Paths)
		s.round(ctx, batch)
		used += batch
		switch {
		case r.Permission != nil:
			return *r
		case ctx.Err() != nil:
			r.Reason = StopInterrupted
			return *r
		case !o.Auto:
			r.Reason = StopFlows
			return *r
		case len(r.Paths) == before:
			// Nothing of this round could be traced: more flows would
			// fail the same way.
			r.Reason = StopFailed
			return *r
		}
		flows := make([]catchment.Flow, len(r.Paths))
		for i, p := range r.Paths {
			flows[i] = live.Flow(p, nil)
		}
		uns := catchment.MDAUnsatisfied(flows, Confidence)
		switch {
		case len(uns) == 0:
			r.Reason = StopMDA
			return *r
		case o.Flows > 0 && used >= o.Flows:
			r.Reason = StopMaxFlows
			return *r
		case r.Rounds > 1 && slices.Equal(uns, last) && !answeredAt(flows[before:], uns):
			// The round's flows brought no reply to the hops that
			// wanted them, nor from any router at their TTLs: those
			// routers have stopped answering (an ICMP rate limit:
			// Linux sends 6 errors at once, then one a second), and
			// more flows now would only be more "*". (Flows answered
			// there by the other branch's routers only hashed away
			// from the short hop: the next round may reach it.)
			r.Reason = StopStalled
			return *r
		}
		last = uns
		room := math.MaxInt
		if o.Flows > 0 {
			room = o.Flows - used
		}
		batch = NextBatch(uns, len(r.Paths), room)
	}
}

// answeredAt reports whether any of flows was answered both at the TTL of
// a vertex that wants flows and at the TTL after it (the answers the MDA
// rule counts for that vertex), whichever routers answered.
func answeredAt(flows []catchment.Flow, uns []catchment.MDAVertex) bool {
	for _, f := range flows {
		for _, v := range uns {
			if (v.TTL == 0 || answers(f, v.TTL)) && answers(f, v.TTL+1) {
				return true
			}
		}
	}
	return false
}

// answers reports whether flow f has a responder at ttl.
func answers(f catchment.Flow, ttl int) bool {
	for _, h := range f.Hops {
		if h.TTL == ttl {
			return len(h.Responders) > 0
		}
	}
	return false
}

// NextBatch is how many flows the next round of an Auto sweep sends: for
// each hop still short of flows, the flows it lacks divided by the share
// of the flows so far that passed it (new flows spread over the branches
// as the earlier ones did); the largest over all such hops, at least 1 and
// at most room.
func NextBatch(uns []catchment.MDAVertex, traced, room int) int {
	want := 1
	for _, v := range uns {
		if v.Flows <= 0 || traced <= 0 {
			want = room
			break
		}
		lack := float64(v.Needed - v.Flows)
		want = max(want, int(math.Ceil(lack*float64(traced)/float64(v.Flows))))
	}
	return max(1, min(want, room))
}

type sweeper struct {
	o   Options
	mu  sync.Mutex // guards res while a round's flows end
	res Result
}

// round traces n more flows at once.
func (s *sweeper) round(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for range n {
		port, ok := s.o.Ports.take()
		if !ok {
			if s.o.OnNoPorts != nil {
				s.o.OnNoPorts()
			}
			break
		}
		if s.o.OnStart != nil {
			s.o.OnStart(s.res.Rounds)
		}
		wg.Go(func() {
			p, err := s.flow(ctx, port)
			f := Flow{Port: int(p.Flow.Src.Port()), Path: p, Err: err}
			s.mu.Lock()
			switch {
			case errors.Is(err, trace.ErrPermission):
				if s.res.Permission == nil {
					s.res.Permission = err
				}
			case errors.Is(err, errNotStarted):
			case err != nil:
				s.res.Failed = append(s.res.Failed, f)
			case p.Stop == trace.StopInterrupted && len(p.Hops) == 0:
				// Cut before anything came back: nothing to show.
			default:
				s.res.Paths = append(s.res.Paths, p)
			}
			s.mu.Unlock()
			if s.o.OnFlow != nil && !errors.Is(err, errNotStarted) {
				s.o.OnFlow(f)
			}
		})
	}
	wg.Wait()
}

// flow traces one flow from port (an automatic range skips to its next
// ports while the one given is in use), then, on TCP/53, asks the
// identity over a connection from the same port.
func (s *sweeper) flow(ctx context.Context, port int) (trace.Path, error) {
	if s.o.Slots != nil {
		select {
		case s.o.Slots <- struct{}{}:
		case <-ctx.Done():
			return trace.Path{}, errNotStarted
		}
		defer func() { <-s.o.Slots }()
	}
	for try := 0; ; try++ {
		opts := s.o.Trace
		opts.SrcPort = uint16(port)
		sport := port
		opts.OnHop = nil
		if s.o.OnHop != nil {
			opts.OnHop = func(h trace.Hop) { s.o.OnHop(sport, h) }
		}
		p, err := trace.Run(ctx, opts)
		if err != nil && errors.Is(err, syscall.EADDRINUSE) && !s.o.Ports.explicit && try < portTries {
			if next, ok := s.o.Ports.take(); ok {
				port = next
				continue
			}
		}
		if err != nil {
			p.Flow.Src = netip.AddrPortFrom(p.Flow.Src.Addr(), uint16(port))
			return p, err
		}
		if s.o.Identity != nil {
			trace.IdentifyTCP53(ctx, &p, *s.o.Identity)
		}
		return p, nil
	}
}
