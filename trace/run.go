package trace

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/anycheck/anycheck/probe"
	"github.com/miekg/dns"
)

// Defaults applied by Run to zero Options fields.
const (
	DefaultPort     = 53
	DefaultFirstTTL = 1
	DefaultMaxTTL   = 30
	DefaultQueries  = 3
	DefaultRate     = 1000.0
	DefaultWait     = 2 * time.Second
	DefaultWindow   = 16
)

// Adaptive wait: a silent probe below a hop that answered after rtt is
// given up after adaptiveFactor×rtt, at least Options.MinWait (scheduling
// jitter, routers that build ICMP errors in their slow path), never after
// more than Options.Wait.
const (
	adaptiveFactor = 5
	DefaultMinWait = 25 * time.Millisecond
	maxQueries     = 10
)

// errTCPSocket: socket mode has no way to send a bare SYN with a TTL of our
// choosing and read what answers it.
var errTCPSocket = errors.New("tcp probes need raw mode: socket mode cannot send them")

// Run traces one flow; see the API comment in types.go.
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
	if o.Proto == "" {
		o.Proto = UDP
	}
	switch o.Proto {
	case UDP, TCP, ICMP:
	default:
		return o, fmt.Errorf("trace %s: unknown protocol %q", o.Target, o.Proto)
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Mode == "" {
		o.Mode = ModeAuto
	}
	switch o.Mode {
	case ModeAuto, ModeRaw, ModeSocket:
	default:
		return o, fmt.Errorf("trace %s: unknown mode %q", o.Target, o.Mode)
	}
	if o.Proto == TCP && o.Mode == ModeSocket {
		return o, fmt.Errorf("trace %s: %w", o.Target, errTCPSocket)
	}
	if o.FirstTTL == 0 {
		o.FirstTTL = DefaultFirstTTL
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.FirstTTL < 1 || o.MaxTTL > 255 || o.FirstTTL > o.MaxTTL {
		return o, fmt.Errorf("trace %s: ttl range %d-%d: want 1 <= first <= max <= 255", o.Target, o.FirstTTL, o.MaxTTL)
	}
	if o.Queries == 0 {
		o.Queries = DefaultQueries
	}
	if o.Queries < 1 || o.Queries > maxQueries {
		return o, fmt.Errorf("trace %s: %d queries per hop: want 1-%d", o.Target, o.Queries, maxQueries)
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if !(o.Rate > 0) {
		return o, fmt.Errorf("trace %s: rate %v: want > 0 packets/s", o.Target, o.Rate)
	}
	if o.Wait == 0 {
		o.Wait = DefaultWait
	}
	if o.Wait < 0 {
		return o, fmt.Errorf("trace %s: negative wait %v", o.Target, o.Wait)
	}
	if o.MinWait == 0 {
		o.MinWait = min(DefaultMinWait, o.Wait)
	}
	if o.MinWait < 0 || o.MinWait > o.Wait {
		return o, fmt.Errorf("trace %s: min wait %v: want 0 < min wait <= wait %v", o.Target, o.MinWait, o.Wait)
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Window < 0 {
		return o, fmt.Errorf("trace %s: window %d: want >= 1 ttls in flight", o.Target, o.Window)
	}
	if o.QName == "" {
		o.QName = probe.NameHostnameBind
	}
	o.QName = dns.Fqdn(o.QName)
	return o, nil
}
