package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anycheck/anycheck/measure"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// A mux carries the queries of one flow over one socket: every query is
// written at once, and a single reader hands each message to the query
// whose DNS ID it carries. UDP and TCP differ only in framing, which
// dns.Conn does (a datagram per message, or RFC 1035 §4.2.2 length
// prefixes on a stream), so several queries can be in flight on one TCP
// connection too (RFC 7766 §6.2.1.1 pipelining; answers may come in any
// order).
type mux struct {
	co        *dns.Conn
	raw       net.Conn // the socket under co, for its error queue
	transport measure.Transport
	ids       *idSet

	mu      sync.Mutex
	waiting map[uint16]*query
	strays  int // messages whose ID belongs to no query waiting on this socket

	answered atomic.Int32  // queries that got their reply here
	dead     chan struct{} // closed when the reader stops
	err      error         // why the reader stopped; set before dead is closed
}

// query is one identity query waiting on a mux.
type query struct {
	name     string
	id       uint16
	ch       chan delivery
	sent     time.Time
	deadline time.Time
	sendErr  error
}

// delivery is what the reader hands a query: a message, classified
// against the query (ours: it answers the query's question), or a socket
// error.
type delivery struct {
	answer measure.Answer
	ours   bool
	err    error
}

func newMux(c net.Conn, t measure.Transport, ids *idSet) *mux {
	raw := c
	if dc, ok := c.(datagramConn); ok {
		raw = dc.Conn
	}
	m := &mux{
		co:        &dns.Conn{Conn: c},
		raw:       raw,
		transport: t,
		ids:       ids,
		waiting:   map[uint16]*query{},
		dead:      make(chan struct{}),
	}
	go m.read()
	return m
}

// close closes the socket and waits for the reader to stop.
func (m *mux) close() {
	m.co.Close()
	<-m.dead
}

func (m *mux) isDead() bool {
	select {
	case <-m.dead:
		return true
	default:
		return false
	}
}

// read runs until the socket is closed or, for TCP, the stream ends.
func (m *mux) read() {
	buf := make([]byte, dns.MaxMsgSize)
	var err error
	for errs := 0; ; {
		var n int
		n, err = m.co.Read(buf)
		if err == nil {
			errs = 0
			m.dispatch(bytes.Clone(buf[:n]), time.Now())
			continue
		}
		// On a connected UDP socket an ICMP error (port or host
		// unreachable) is reported by the next read and then cleared: it
		// answers every query waiting now, and the socket stays usable.
		// Anything else, or a socket that keeps failing, ends the reader.
		if errs++; m.transport == measure.UDP && isICMPErr(err) && errs < 64 {
			m.broadcast(unreachableOf(m.raw, err))
			continue
		}
		break
	}
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
	close(m.dead)
}

// dispatch hands msg to the query whose ID it carries. A message no query
// waits for (a late answer, a spoofed or stray datagram) is counted and
// dropped, as is a flood beyond what a query has room for. The reader
// classifies, so a connection counts its answers before it is seen dead.
func (m *mux) dispatch(msg []byte, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var q *query
	if len(msg) >= 2 {
		q = m.waiting[binary.BigEndian.Uint16(msg)]
	}
	if q == nil {
		m.strays++
		return
	}
	a, ours := measure.Classify(q.name, q.id, msg)
	if ours {
		a.RTT, a.Transport = at.Sub(q.sent), m.transport
	}
	select {
	case q.ch <- delivery{answer: a, ours: ours}:
		if ours {
			m.answered.Add(1)
		}
	default:
	}
}

// broadcast hands a socket error to every query waiting now.
func (m *mux) broadcast(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range m.waiting {
		select {
		case q.ch <- delivery{err: err}:
		default:
		}
	}
}

// register makes a query for name with an ID no other query of the run
// uses, so a late answer to one query can never be taken for another's.
func (m *mux) register(name string) *query {
	return m.registerID(name, m.ids.next())
}

func (m *mux) registerID(name string, id uint16) *query {
	q := &query{name: dns.Fqdn(name), id: id, ch: make(chan delivery, 8)}
	m.mu.Lock()
	m.waiting[id] = q
	m.mu.Unlock()
	return q
}

func (m *mux) unregister(q *query) {
	m.mu.Lock()
	delete(m.waiting, q.id)
	m.mu.Unlock()
}

// send writes q once the packet budget allows. The wait for its answer
// runs timeout from the moment it leaves: time the budget held it back is
// not time waited for the server.
func (m *mux) send(ctx context.Context, q *query, lim *rate.Limiter, timeout time.Duration) {
	if lim != nil {
		if err := lim.Wait(ctx); err != nil {
			q.sendErr = err
			return
		}
	}
	msg := measure.NewQuery(q.name, q.id)
	m.mu.Lock() // the reader reads q.sent when the answer comes
	q.sent = time.Now()
	q.deadline = q.sent.Add(timeout)
	m.mu.Unlock()
	if err := m.co.WriteMsg(msg); err != nil {
		if m.transport == measure.UDP && isICMPErr(err) {
			// The send reported (and cleared) an ICMP error meant for
			// an earlier query of this socket: it is every query's.
			m.broadcast(unreachableOf(m.raw, err))
			return
		}
		q.sendErr = err
	}
}

// errConnClosed is a TCP connection that ended before the answer came.
var errConnClosed = errors.New("connection closed by the server without an answer")

// await waits for q's answer. It returns the answer (a reply to q, or a
// timeout) with a nil error, or the reason the exchange failed: a socket
// error, the connection's end (wrapping errConnClosed) or ctx's error. A
// message that carries q's ID but is not a reply to its question (the
// query reflected back, an answer to another question) is no answer: it is
// kept and reported as malformed only if nothing better comes before the
// deadline.
func (m *mux) await(ctx context.Context, q *query, timeout time.Duration) (measure.Answer, error) {
	defer m.unregister(q)
	if q.sendErr != nil {
		return measure.Answer{}, q.sendErr
	}
	timer := time.NewTimer(time.Until(q.deadline))
	defer timer.Stop()
	var mismatch *measure.Answer
	take := func(d delivery) (measure.Answer, bool, error) {
		if d.err != nil {
			return measure.Answer{}, true, d.err
		}
		if !d.ours {
			mismatch = &d.answer
			return measure.Answer{}, false, nil
		}
		return d.answer, true, nil
	}
	drain := func() (measure.Answer, bool, error) {
		for {
			select {
			case d := <-q.ch:
				if a, done, err := take(d); done {
					return a, true, err
				}
			default:
				return measure.Answer{}, false, nil
			}
		}
	}
	for {
		select {
		case d := <-q.ch:
			if a, done, err := take(d); done {
				return a, err
			}
		case <-m.dead:
			// The reader hands over every message before it stops.
			if a, done, err := drain(); done {
				return a, err
			}
			if mismatch != nil {
				return malformed(q, m.transport, *mismatch, "the connection closed"), nil
			}
			m.mu.Lock()
			err := m.err
			m.mu.Unlock()
			if isEOF(err) {
				err = errConnClosed
			}
			return measure.Answer{}, err
		case <-ctx.Done():
			return measure.Answer{}, ctx.Err()
		case <-timer.C:
			// An answer that came in time may wait in q.ch while its
			// deadline passes (the budget held this goroutine's start).
			if a, done, err := drain(); done {
				return a, err
			}
			if mismatch != nil {
				return malformed(q, m.transport, *mismatch, fmt.Sprintf("no reply within %v", timeout)), nil
			}
			a := measure.Answer{Name: q.name, Transport: m.transport, Rcode: -1, Status: measure.StatusTimeout,
				Detail: fmt.Sprintf("no reply within %v", timeout)}
			if n := m.strayCount(); n > 0 {
				a.Detail += fmt.Sprintf(" (ignored %d message(s) that were not a reply to this flow's queries)", n)
			}
			return a, nil
		}
	}
}

// malformed reports a query whose only reply was a message with its ID
// that does not answer it: no RTT, no RCODE, and why it was no answer.
func malformed(q *query, t measure.Transport, mismatch measure.Answer, why string) measure.Answer {
	return measure.Answer{Name: q.name, Transport: t, Rcode: -1, Status: measure.StatusMalformed, Size: mismatch.Size,
		Detail: why + "; a message with the query's ID was not its answer: " + mismatch.Detail}
}

// answeredBy waits (until deadline) for the reader to see the end of a
// connection that a write found broken, and returns how many queries it
// answered before it ended.
func (m *mux) answeredBy(deadline time.Time) int {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-m.dead:
	case <-t.C:
	}
	return int(m.answered.Load())
}

func (m *mux) strayCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.strays
}

// isICMPErr reports a socket error that an ICMP message caused on a
// connected UDP socket.
func isICMPErr(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.ENETDOWN,
		syscall.EPROTO, syscall.EMSGSIZE, syscall.ENOPROTOOPT, syscall.ETIMEDOUT,
		syscall.EACCES: // ICMPv6 administratively prohibited
		return true
	}
	return false
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// isTimeout reports an expired deadline: a socket's or a context's.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

// idSet hands out the DNS IDs of one run: random, so off-path spoofed
// answers cannot guess them, and never used twice.
type idSet struct {
	mu   sync.Mutex
	used map[uint16]bool
}

func (s *idSet) next() uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used == nil {
		s.used = map[uint16]bool{}
	}
	for {
		var b [2]byte
		// crypto/rand.Read never fails (Go 1.24+).
		_, _ = rand.Read(b[:])
		if id := binary.BigEndian.Uint16(b[:]); !s.used[id] {
			s.used[id] = true
			return id
		}
	}
}
