package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/anycheck/anycheck/measure"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// defaultTimeout bounds each query when Options.Timeout is zero.
const defaultTimeout = 2 * time.Second

// Run asks the query set over one flow: every query leaves from the same
// source address and port, so every answer describes the same path and
// hence the same anycast instance. The queries go out at once, each with
// its own DNS ID, and the answers are matched by ID, so a run takes one
// round trip, not one per query. UDP by default, with a truncated answer
// asked again over TCP from the same port; Options.TCP sends everything
// over one TCP connection from that port.
//
// The error is for set-up failures only (invalid options, the source cannot
// be bound); a target that refuses, stays silent or answers garbage gives
// Answers with the matching Status, one per query name, in order.
func Run(ctx context.Context, opts Options) (Result, error) {
	target := netip.AddrPortFrom(opts.Target.Addr().Unmap(), opts.Target.Port())
	if !target.Addr().IsValid() || target.Port() == 0 {
		return Result{}, fmt.Errorf("probe target %q: need an address and a non-zero port", opts.Target)
	}
	src, err := localSource(opts.Source, target)
	if err != nil {
		return Result{}, fmt.Errorf("probe %s: %w", target, err)
	}
	r := &runner{nw: opts.Net, target: target, timeout: opts.Timeout, lim: opts.Limiter, ids: &idSet{}}
	if r.nw == nil {
		r.nw = systemNetwork{}
	}
	if r.timeout <= 0 {
		r.timeout = defaultTimeout
	}
	r.tcp = &tcpPipe{r: r, src: src}
	defer r.close()

	names := queryNames(opts)
	res := Result{Target: target, Started: time.Now(), Answers: make([]measure.Answer, len(names))}
	ask := func(i int) {}
	if opts.TCP {
		// Connect once up front: a port that cannot be bound is a set-up
		// failure. A refused or silent target is not: every query
		// reports it.
		deadline := time.Now().Add(r.timeout)
		m, err := r.tcp.conn(ctx, deadline)
		if err != nil {
			if isBindError(err) {
				return Result{}, fmt.Errorf("probe %s: %w", target, err)
			}
			for i, name := range names {
				res.Answers[i] = r.failed(ctx, name, measure.TCP, err)
			}
		} else {
			qs := sendAll(ctx, m, names, r.lim, r.timeout)
			ask = func(i int) { res.Answers[i] = r.overTCP(ctx, names[i], m, qs[i]) }
		}
	} else {
		conn, err := r.nw.ListenUDP(ctx, src, target)
		switch {
		case err != nil && isBindError(err):
			return Result{}, fmt.Errorf("probe %s: %w", target, err)
		case err != nil:
			// The socket is bound but cannot reach the target (no route):
			// every query reports that, like an unreachable target.
			r.tcp.notePort(err)
			for i, name := range names {
				res.Answers[i] = r.failed(ctx, name, measure.UDP, err)
			}
		default:
			r.udp = newMux(datagram(conn), measure.UDP, r.ids)
			r.tcp.setSource(addrPortOf(conn.LocalAddr()))
			qs := sendAll(ctx, r.udp, names, r.lim, r.timeout)
			ask = func(i int) { res.Answers[i] = r.overUDP(ctx, qs[i]) }
		}
	}
	var wg sync.WaitGroup
	for i := range names {
		wg.Go(func() { ask(i) })
	}
	wg.Wait()
	res.Source = r.tcp.source()
	res.Identity = measure.Summarise(res.Answers)
	return res, nil
}

// queryNames is the query set of a run, in the order asked.
func queryNames(opts Options) []string {
	names := slices.Clone(opts.Names)
	if opts.Names == nil {
		names = []string{measure.NameHostnameBind, measure.NameIDServer}
	}
	if opts.Version {
		names = append(names, measure.NameVersionBind, measure.NameVersionServer)
	}
	return names
}

// sendAll registers every query before it sends the first, so an error
// the socket reports for one (an ICMP unreachable) reaches them all.
func sendAll(ctx context.Context, m *mux, names []string, lim *rate.Limiter, timeout time.Duration) []*query {
	qs := make([]*query, len(names))
	for i, name := range names {
		qs[i] = m.register(name)
	}
	for _, q := range qs {
		m.send(ctx, q, lim, timeout)
	}
	return qs
}

// runner holds the sockets of one flow.
type runner struct {
	nw      Network
	target  netip.AddrPort
	timeout time.Duration
	lim     *rate.Limiter
	ids     *idSet
	udp     *mux
	tcp     *tcpPipe
}

func (r *runner) close() {
	if r.udp != nil {
		r.udp.close()
	}
	r.tcp.close()
}

// overUDP waits for q's answer and asks again over TCP, from the flow's
// port, when it is truncated (RFC 7766).
func (r *runner) overUDP(ctx context.Context, q *query) measure.Answer {
	a, err := r.udp.await(ctx, q, r.timeout)
	if err != nil {
		return r.failed(ctx, q.name, measure.UDP, err)
	}
	if !a.Truncated {
		return a
	}
	a = r.overTCP(ctx, q.name, nil, nil)
	a.Truncated = true
	if a.Status == measure.StatusTimeout || a.Status == measure.StatusError {
		a.Detail = "udp reply truncated; tcp retry: " + a.Detail
	}
	return a
}

// overTCP asks name over the flow's TCP connection; m and q are the
// connection and the query when it was already sent. A connect and the
// wait for an answer each take at most the run's Timeout. A server may close a
// connection that carried answers (after each answer, or when idle): that
// is not the target failing, so the query is asked again on a new
// connection from the same port. Every connection but the last answered
// some query, so a run makes at most one more connection than it has
// queries.
func (r *runner) overTCP(ctx context.Context, name string, m *mux, q *query) measure.Answer {
	for again := false; ; again = true {
		if m == nil {
			var err error
			if m, err = r.tcp.conn(ctx, time.Now().Add(r.timeout)); err != nil {
				return r.failed(ctx, name, measure.TCP, err)
			}
			q = m.register(name)
			m.send(ctx, q, r.lim, r.timeout)
		}
		a, err := m.await(ctx, q, r.timeout)
		if err == nil {
			if again && a.Detail == "" {
				// Say why the run's queries did not share one
				// connection: the server does not keep one open.
				a.Detail = "asked on a new connection: the server closed the one it had answered on"
			}
			return a
		}
		if ctx.Err() == nil && (m.isDead() || isEOF(err)) && m.answeredBy(q.deadline) > 0 {
			m, q = nil, nil
			continue
		}
		return r.failed(ctx, name, measure.TCP, err)
	}
}

// failed turns the error that ended a query into its Answer.
func (r *runner) failed(ctx context.Context, name string, t measure.Transport, err error) measure.Answer {
	if ctx.Err() != nil {
		return ctxAnswer(ctx, name, t)
	}
	a := measure.Answer{Name: dns.Fqdn(name), Transport: t, Rcode: -1, Status: measure.StatusError, Detail: errDetail(err)}
	var u *Unreachable
	switch {
	case errors.As(err, &u):
		a.Status, a.Detail = measure.StatusUnreachable, u.Error()
	case t == measure.TCP && errors.Is(err, syscall.ECONNREFUSED):
		a.Status, a.Detail = measure.StatusUnreachable, "connection refused (tcp reset)"
	case isTimeout(err):
		a.Status = measure.StatusTimeout
		a.Detail = fmt.Sprintf("no reply within %v", r.timeout)
	case errors.Is(err, errConnClosed) || isEOF(err):
		a.Detail = errConnClosed.Error()
	}
	return a
}

// ctxAnswer reports a query that ctx stopped.
func ctxAnswer(ctx context.Context, name string, t measure.Transport) measure.Answer {
	a := measure.Answer{Name: dns.Fqdn(name), Transport: t, Rcode: -1, Status: measure.StatusError, Detail: ctx.Err().Error()}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		a.Status = measure.StatusTimeout
	}
	return a
}

// tcpPipe is the flow's TCP connection: made when the first query needs
// it, shared by every query of the run, and made again (from the same
// port) when the server closes it.
type tcpPipe struct {
	r *runner

	mu      sync.Mutex
	src     netip.AddrPort // the flow's source; its port is fixed once known
	cur     *mux
	dialing *dialAttempt
	conns   []*mux // every connection made, closed with the run
}

// dialAttempt is a connect in progress; queries that need the connection
// meanwhile wait for it instead of connecting again.
type dialAttempt struct {
	done chan struct{}
	m    *mux
	err  error
}

// conn returns the live connection, connecting (by deadline) when there
// is none.
func (p *tcpPipe) conn(ctx context.Context, deadline time.Time) (*mux, error) {
	p.mu.Lock()
	if p.cur != nil && !p.cur.isDead() {
		defer p.mu.Unlock()
		return p.cur, nil
	}
	if p.cur != nil {
		// Free the connection's 4-tuple (RST on close) before the next
		// connect from the same port to the same server needs it.
		p.cur.co.Close()
		p.cur = nil
	}
	if d := p.dialing; d != nil {
		p.mu.Unlock()
		select {
		case <-d.done:
			return d.m, d.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	d := &dialAttempt{done: make(chan struct{})}
	p.dialing = d
	src := p.src
	p.mu.Unlock()

	dctx, cancel := context.WithDeadline(ctx, deadline)
	c, err := p.r.nw.DialTCP(dctx, src, p.r.target)
	cancel()

	p.mu.Lock()
	if err != nil {
		p.notePortLocked(err)
		d.err = err
	} else {
		d.m = newMux(c, measure.TCP, p.r.ids)
		p.cur = d.m
		p.conns = append(p.conns, d.m)
		if ap := addrPortOf(c.LocalAddr()); ap.IsValid() {
			p.src = ap
		}
	}
	p.dialing = nil
	p.mu.Unlock()
	close(d.done)
	return d.m, d.err
}

func (p *tcpPipe) close() {
	p.mu.Lock()
	conns := p.conns
	p.conns, p.cur = nil, nil
	p.mu.Unlock()
	for _, m := range conns {
		m.close()
	}
}

func (p *tcpPipe) source() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.src
}

func (p *tcpPipe) setSource(ap netip.AddrPort) {
	if !ap.IsValid() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.src = ap
}

func (p *tcpPipe) notePort(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notePortLocked(err)
}

// notePortLocked keeps the local port of a failed connect, when the
// Network reports it as the OpError's Source, so later attempts reuse it.
func (p *tcpPipe) notePortLocked(err error) {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Source != nil {
		if ap := addrPortOf(oe.Source); ap.Port() != 0 && p.src.Port() == 0 {
			p.src = netip.AddrPortFrom(p.src.Addr(), ap.Port())
		}
	}
}

// datagram makes sure dns.Conn frames c as UDP (one message per
// datagram): it tells the two apart by net.PacketConn, which an injected
// Network's connected socket need not implement.
func datagram(c net.Conn) net.Conn {
	if _, ok := c.(net.PacketConn); ok {
		return c
	}
	return datagramConn{c}
}

type datagramConn struct{ net.Conn }

func (c datagramConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, err := c.Read(p)
	return n, c.RemoteAddr(), err
}

func (c datagramConn) WriteTo(p []byte, _ net.Addr) (int, error) { return c.Write(p) }

// errDetail gives the short reason of a socket error ("connection
// refused"), not the whole dial chain with addresses the Answer already has.
func errDetail(err error) string {
	if err == nil {
		return "unknown error"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var be *BindError
	if errors.As(err, &be) {
		return be.Error()
	}
	return err.Error()
}
