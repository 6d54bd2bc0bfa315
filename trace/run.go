package trace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/anycheck/anycheck/measure"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// Defaults applied by Run to zero Options fields.
const (
	DefaultPort     = 53
	DefaultFirstTTL = 1
	DefaultMaxTTL   = 30
	DefaultQueries  = 3
	DefaultRate     = 1000.0
	// MinRate is the slowest budget: slower, a trace takes hours (and
	// 1e-300 packets/s for ever).
	MinRate       = 1.0
	DefaultWait   = 2 * time.Second
	DefaultWindow = 16
)

// Waits and spacing.
const (
	// silentFactor: a probe unanswered once every TTL beyond it up to the
	// destination answered (or was given up) is given up silentFactor × the
	// largest RTT seen at or beyond its TTL after it was sent, never sooner
	// than Options.MinWait (routers that build ICMP errors in their slow
	// path, scheduling jitter), never later than Options.Wait. 2: in the
	// delayed lab and in real Atlas traceroutes a hop's reply comes back
	// within 1.03× the largest RTT beyond it; slow-path delays are
	// absolute (tens of ms), which MinWait covers. See doc.go.
	silentFactor   = 2
	defaultMinWait = 25 * time.Millisecond
	maxQueries     = 10
	// ttlSpread is the least time between two probes with the same TTL
	// (the same router): a router then sees at most 1000 of our probes per
	// second, within the refill of Linux's host-wide ICMP budget
	// (net.ipv4.icmp_msgs_per_sec) and of common router policers.
	ttlSpread = time.Millisecond
	// readGrace is how long the scheduler parks, once a deadline is due,
	// for replies already in its sockets before it gives anything up.
	readGrace = time.Millisecond
)

// errTCPSocket: socket mode has no way to send a bare SYN with a TTL of our
// choosing and read what answers it.
var errTCPSocket = errors.New("tcp probes need raw mode: socket mode cannot send them")

// NewBudget is the run-wide packet budget for a rate of pps packets per
// second: a token bucket holding a quarter second's worth (at least one
// packet), so a run may send that many back to back (the first round of
// several traces at once) and never more than pps per second on average.
// Several traces (targets, flows) share one through Options.Budget.
func NewBudget(pps float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(pps), max(1, int(pps/4)))
}

// Run traces one flow. When ctx is cancelled it returns what was measured
// so far, Stop == StopInterrupted, and a nil error. Errors are for set-up
// failures (bad options, sockets that cannot be opened, a first probe
// that cannot leave), named by target and flow; they wrap ErrPermission
// when privilege is missing.
func Run(ctx context.Context, opts Options) (Path, error) {
	opts, err := withDefaults(opts)
	if err != nil {
		return Path{}, err
	}
	flow := Flow{
		Proto: opts.Proto,
		Src:   netip.AddrPortFrom(opts.Source, opts.SrcPort),
		Dst:   netip.AddrPortFrom(opts.Target, opts.Port),
	}
	if opts.Proto == ICMP {
		flow.Dst = netip.AddrPortFrom(opts.Target, 0)
	}
	subject := fmt.Sprintf("trace %s %s", opts.Target, opts.Proto)
	if opts.Proto != ICMP {
		subject = fmt.Sprintf("trace %s %s/%d", opts.Target, opts.Proto, opts.Port)
	}
	nw := opts.Net
	if nw == nil {
		nw = HostNetwork()
	}
	conn, err := nw.Open(ctx, flow, opts.Mode)
	if err != nil {
		return Path{}, fmt.Errorf("%s: %w", subject, err)
	}
	e := newEngine(opts, conn)
	path := e.run(ctx)
	conn.Close()
	e.wg.Wait()
	if e.fatal != nil {
		return path, fmt.Errorf("%s: %w", subject, e.fatal)
	}
	if n := noDNSNote(path); n != "" {
		path.Notes = append(path.Notes, n)
	}
	return path, nil
}

// noDNSNote explains a UDP/53 trace that ended in port unreachable: the
// destination's host was reached, but nothing serves DNS on that port, so
// no instance can be named.
func noDNSNote(p Path) string {
	if p.Flow.Proto != UDP || p.Flow.Dst.Port() != 53 || !p.Reached || len(p.Answers) > 0 || len(p.Hops) == 0 {
		return ""
	}
	for _, pr := range p.Hops[len(p.Hops)-1].Probes {
		if r := pr.Reply; r != nil && r.From == p.Flow.Dst.Addr() && r.portUnreachable() {
			return fmt.Sprintf("%s answered port unreachable: the destination has no DNS service on udp/%d", r.From, p.Flow.Dst.Port())
		}
	}
	return ""
}

func withDefaults(o Options) (Options, error) {
	if !o.Target.IsValid() {
		return o, errors.New("trace: no target address")
	}
	o.Target = o.Target.Unmap()
	if o.Source.IsValid() {
		o.Source = o.Source.Unmap()
		if o.Source.Is4() != o.Target.Is4() {
			return o, fmt.Errorf("trace %s: source %s is of another address family", o.Target, o.Source)
		}
	}
	o.Proto = cmp.Or(o.Proto, UDP)
	switch o.Proto {
	case UDP, TCP, ICMP:
	default:
		return o, fmt.Errorf("trace %s: unknown protocol %q", o.Target, o.Proto)
	}
	o.Port = cmp.Or(o.Port, DefaultPort)
	o.Mode = cmp.Or(o.Mode, ModeAuto)
	switch o.Mode {
	case ModeAuto, ModeRaw, ModeSocket:
	default:
		return o, fmt.Errorf("trace %s: unknown mode %q", o.Target, o.Mode)
	}
	if o.Proto == TCP && o.Mode == ModeSocket {
		return o, fmt.Errorf("trace %s: %w", o.Target, errTCPSocket)
	}
	o.FirstTTL = cmp.Or(o.FirstTTL, DefaultFirstTTL)
	o.MaxTTL = cmp.Or(o.MaxTTL, DefaultMaxTTL)
	if o.FirstTTL < 1 || o.MaxTTL > 255 || o.FirstTTL > o.MaxTTL {
		return o, fmt.Errorf("trace %s: ttl range %d-%d: want 1 <= first <= max <= 255", o.Target, o.FirstTTL, o.MaxTTL)
	}
	o.Queries = cmp.Or(o.Queries, DefaultQueries)
	if o.Queries < 1 || o.Queries > maxQueries {
		return o, fmt.Errorf("trace %s: %d queries per hop: want 1-%d", o.Target, o.Queries, maxQueries)
	}
	o.Rate = cmp.Or(o.Rate, DefaultRate)
	if !(o.Rate >= MinRate) || math.IsInf(o.Rate, 0) {
		return o, fmt.Errorf("trace %s: rate %v: want %v packets/s or more", o.Target, o.Rate, MinRate)
	}
	if b := o.Budget; b != nil && b.Limit() != rate.Inf && (b.Burst() < 1 || b.Limit() <= 0) {
		return o, fmt.Errorf("trace %s: packet budget %v/s, burst %d: grants no packet", o.Target, float64(b.Limit()), b.Burst())
	}
	o.Wait = cmp.Or(o.Wait, DefaultWait)
	if o.Wait < 0 {
		return o, fmt.Errorf("trace %s: negative wait %v", o.Target, o.Wait)
	}
	o.MinWait = cmp.Or(o.MinWait, min(defaultMinWait, o.Wait))
	if o.MinWait < 0 || o.MinWait > o.Wait {
		return o, fmt.Errorf("trace %s: min wait %v: want 0 < min wait <= wait %v", o.Target, o.MinWait, o.Wait)
	}
	o.Window = cmp.Or(o.Window, DefaultWindow)
	if o.Window < 0 {
		return o, fmt.Errorf("trace %s: window %d: want >= 1 ttls in flight", o.Target, o.Window)
	}
	o.QName = dns.Fqdn(cmp.Or(o.QName, measure.NameHostnameBind))
	return o, nil
}
