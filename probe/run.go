package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// DefaultTimeout bounds each query when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// Run asks the query set over one flow: every query leaves from the same
// source address and port, so every answer describes the same path and
// hence the same anycast instance. UDP by default, with a truncated answer
// asked again over TCP from the same port; Options.TCP sends everything over
// one TCP connection from that port.
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
	names := append([]string(nil), opts.Names...)
	if opts.Names == nil {
		names = append(names, DefaultNames...)
	}
	if opts.Version {
		names = append(names, VersionNames...)
	}
	r := &runner{
		nw:      opts.Net,
		target:  target,
		src:     src,
		timeout: opts.Timeout,
	}
	if r.nw == nil {
		r.nw = SystemNetwork()
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	defer r.close()

	res := Result{Target: target, Started: time.Now()}
	if opts.TCP {
		// Connect once up front: a port that cannot be bound is a set-up
		// failure. A refused or silent target is not; the first query
		// reports it and later queries try to connect again.
		r.firstDeadline = r.deadline(ctx)
		err := r.dialTCP(ctx, r.firstDeadline)
		if err != nil && isBindError(err) {
			return Result{}, fmt.Errorf("probe %s: %w", target, err)
		}
		r.dialErr = err
	} else {
		conn, err := r.nw.ListenUDP(ctx, src, target)
		switch {
		case err != nil && isBindError(err):
			return Result{}, fmt.Errorf("probe %s: %w", target, err)
		case err != nil:
			// The socket is bound but cannot reach the target (no route):
			// every query reports that, like an unreachable target.
			r.dialErr = err
			r.notePort(err)
		default:
			r.udp = conn
			r.src = addrPortOf(conn.LocalAddr())
		}
	}

	for _, name := range names {
		var a Answer
		if opts.TCP {
			a = r.tcpQuery(ctx, name)
		} else {
			a = r.udpQuery(ctx, name)
			if a.Truncated && a.Status != StatusTimeout && a.Status != StatusError {
				// RFC 7766: a truncated UDP answer is asked again over
				// TCP, from the same port so it stays on the same flow.
				a = r.tcpQuery(ctx, name)
				a.Truncated = true
				if a.Status == StatusTimeout || a.Status == StatusError {
					a.Detail = "udp reply truncated; tcp retry: " + a.Detail
				}
			}
		}
		res.Answers = append(res.Answers, a)
	}
	res.Source = r.src
	res.Identity = Summarise(res.Answers)
	return res, nil
}

// runner holds the sockets of one flow.
type runner struct {
	nw      Network
	target  netip.AddrPort
	src     netip.AddrPort // the flow's source; its port is fixed once known
	timeout time.Duration
	udp     net.Conn
	tcp     net.Conn
	tcpUsed bool  // tcp has carried an answer (a server may close it when idle)
	dialErr error // why the last socket could not be opened
	// firstDeadline is the first TCP query's deadline, already running
	// during the up-front connect, so that query too ends within Timeout.
	firstDeadline time.Time
}

func (r *runner) close() {
	if r.udp != nil {
		r.udp.Close()
	}
	r.closeTCP()
}

func (r *runner) closeTCP() {
	if r.tcp != nil {
		r.tcp.Close()
		r.tcp, r.tcpUsed = nil, false
	}
}

// notePort keeps the local port of a failed connect, when the Network
// reports it as the OpError's Source, so later attempts reuse it.
func (r *runner) notePort(err error) {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Source != nil {
		if ap := addrPortOf(oe.Source); ap.Port() != 0 && r.src.Port() == 0 {
			r.src = netip.AddrPortFrom(r.src.Addr(), ap.Port())
		}
	}
}

func (r *runner) dialTCP(ctx context.Context, deadline time.Time) error {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := r.nw.DialTCP(dctx, r.src, r.target)
	if err != nil {
		r.notePort(err)
		return err
	}
	r.tcp, r.tcpUsed = conn, false
	r.src = addrPortOf(conn.LocalAddr())
	return nil
}

// deadline is the end of one query's wait: its Timeout, or ctx's deadline
// when that comes first.
func (r *runner) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(r.timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

func (r *runner) failed(ctx context.Context, name string, t Transport, err error) Answer {
	a := Answer{Name: dns.Fqdn(name), Transport: t, Rcode: -1, Status: StatusError, Detail: errDetail(err)}
	if isTimeout(err) {
		a.Status = StatusTimeout
		a.Detail = fmt.Sprintf("no reply within %v", r.timeout)
		// The socket deadline may fire a moment before ctx notices its own.
		if cd, ok := ctx.Deadline(); ok && !time.Now().Before(cd) {
			a.Detail = context.DeadlineExceeded.Error()
		}
	}
	return a
}

// ctxAnswer reports a query that ctx stopped.
func ctxAnswer(ctx context.Context, name string, t Transport) Answer {
	a := Answer{Name: dns.Fqdn(name), Transport: t, Rcode: -1, Status: StatusError, Detail: ctx.Err().Error()}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		a.Status = StatusTimeout
	}
	return a
}

func (r *runner) udpQuery(ctx context.Context, name string) Answer {
	if ctx.Err() != nil {
		return ctxAnswer(ctx, name, UDP)
	}
	if r.udp == nil {
		return r.failed(ctx, name, UDP, r.dialErr)
	}
	id := randomID()
	wire, err := NewQuery(name, id).Pack()
	if err != nil {
		return r.failed(ctx, name, UDP, fmt.Errorf("pack query %q: %w", name, err))
	}
	conn := r.udp
	conn.SetDeadline(r.deadline(ctx))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	start := time.Now()
	if _, err := conn.Write(wire); err != nil {
		return r.failed(ctx, name, UDP, err)
	}
	buf := make([]byte, 65535)
	w := waiter{name: name, id: id}
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctxAnswer(ctx, name, UDP)
			}
			return w.give(r.failed(ctx, name, UDP, err))
		}
		if a, ok := w.offer(buf[:n]); ok {
			a.RTT, a.Transport = time.Since(start), UDP
			return a
		}
	}
}

func (r *runner) tcpQuery(ctx context.Context, name string) Answer {
	if ctx.Err() != nil {
		return ctxAnswer(ctx, name, TCP)
	}
	deadline := r.deadline(ctx)
	if !r.firstDeadline.IsZero() {
		deadline, r.firstDeadline = r.firstDeadline, time.Time{}
	}
	for attempt := 0; ; attempt++ {
		if r.tcp == nil {
			if r.dialErr == nil {
				r.dialErr = r.dialTCP(ctx, deadline)
			}
			err := r.dialErr
			r.dialErr = nil // the next query tries to connect again
			if err != nil {
				if ctx.Err() != nil {
					return ctxAnswer(ctx, name, TCP)
				}
				return r.failed(ctx, name, TCP, err)
			}
		}
		reused := r.tcpUsed
		a, err := r.tcpExchange(ctx, name, deadline)
		if err == nil {
			r.tcpUsed = true
			return a
		}
		r.closeTCP()
		if ctx.Err() != nil {
			return ctxAnswer(ctx, name, TCP)
		}
		// A server may close an idle connection between our queries; that
		// is not the target failing, so connect again once.
		if reused && attempt == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			continue
		}
		if a.Status == StatusMalformed {
			a.Transport = TCP
			return a
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("connection closed by the server without an answer")
		}
		return r.failed(ctx, name, TCP, err)
	}
}

// tcpExchange sends one query on r.tcp and reads messages until the answer
// (RFC 7766 allows several sequential queries on one connection). A non-nil
// error means the connection is unusable; a returned malformed Answer is
// then the reason to report.
func (r *runner) tcpExchange(ctx context.Context, name string, deadline time.Time) (Answer, error) {
	id := randomID()
	wire, err := NewQuery(name, id).Pack()
	if err != nil {
		return Answer{}, fmt.Errorf("pack query %q: %w", name, err)
	}
	conn := r.tcp
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	framed := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(framed, uint16(len(wire)))
	copy(framed[2:], wire)
	start := time.Now()
	if _, err := conn.Write(framed); err != nil {
		return Answer{}, err
	}
	w := waiter{name: name, id: id}
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			if isTimeout(err) && w.mismatch != nil {
				return *w.mismatch, err
			}
			return Answer{}, err
		}
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(conn, msg); err != nil {
			return Answer{}, err
		}
		if a, ok := w.offer(msg); ok {
			a.RTT, a.Transport = time.Since(start), TCP
			return a, nil
		}
	}
}

// waiter matches incoming messages to one query. Messages that are not a
// reply to it (another query's late answer, a spoofed or stray datagram)
// are skipped; if one carried our ID but was not a reply to our question,
// it becomes the answer (malformed) should nothing better arrive.
type waiter struct {
	name     string
	id       uint16
	skipped  int
	mismatch *Answer
}

func (w *waiter) offer(msg []byte) (Answer, bool) {
	a, ours := classify(w.name, w.id, msg)
	if ours {
		return a, true
	}
	w.skipped++
	if len(msg) >= 2 && binary.BigEndian.Uint16(msg) == w.id {
		w.mismatch = &a
	}
	return a, false
}

// give turns the end of the wait into the answer: the mismatching reply
// if one came, else the failure, noting how many strays were ignored.
func (w *waiter) give(failure Answer) Answer {
	if w.mismatch != nil {
		a := *w.mismatch
		a.Transport = failure.Transport
		return a
	}
	if w.skipped > 0 {
		failure.Detail += fmt.Sprintf(" (ignored %d message(s) that were not the reply)", w.skipped)
	}
	return failure
}

func randomID() uint16 {
	var b [2]byte
	// crypto/rand.Read never fails (Go 1.24+); an unpredictable ID keeps
	// off-path spoofed answers from matching.
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:])
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

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
