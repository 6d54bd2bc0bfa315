package probe

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/anycheck/anycheck/measure"
)

// streamConn is a TCP-like connection (not a net.PacketConn, so dns.Conn
// reads length-prefixed messages from it) that yields fixed bytes once the
// query is sent (its first Write), then the end of the stream.
type streamConn struct {
	r      *bytes.Reader
	sent   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	closed bool
}

func newStreamConn(b []byte) *streamConn {
	return &streamConn{r: bytes.NewReader(b), sent: make(chan struct{})}
}

func (c *streamConn) Read(p []byte) (int, error) {
	<-c.sent
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *streamConn) Write(p []byte) (int, error) {
	c.once.Do(func() { close(c.sent) })
	return len(p), nil
}

func (c *streamConn) Close() error {
	c.once.Do(func() { close(c.sent) })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// frames splits a TCP stream into its length-prefixed messages, as RFC
// 1035 §4.2.2 defines them, up to the first incomplete one.
func frames(stream []byte) [][]byte {
	var out [][]byte
	for len(stream) >= 2 {
		n := int(binary.BigEndian.Uint16(stream))
		if len(stream) < 2+n {
			break
		}
		out = append(out, stream[2:2+n])
		stream = stream[2+n:]
	}
	return out
}

func frame(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

// FuzzTCPStream feeds a TCP stream of untrusted bytes to the reader of a
// flow's connection while a query waits on it. Whatever the bytes, the
// query ends (the stream ends), and it takes an answer only from a whole
// frame that carries its ID and answers its question.
func FuzzTCPStream(f *testing.F) {
	const id = 0x4a11
	answer := func(name string, qid uint16, txt string) []byte {
		m := measure.NewQuery(name, qid)
		m.Response, m.Authoritative = true, true
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	good := answer(measure.NameHostnameBind, id, "")
	reflected, _ := measure.NewQuery(measure.NameHostnameBind, id).Pack()
	f.Add(frame(good))
	f.Add(frame(answer(measure.NameHostnameBind, id+1, ""), good)) // another query's answer first
	f.Add(frame(reflected, good))                                  // the query reflected, then the answer
	f.Add(frame(answer(measure.NameIDServer, id, "")))             // the right ID for another question
	f.Add(frame(good)[:len(good)-3])                               // cut short
	f.Add([]byte{0x00})                                            // half a length prefix
	f.Add([]byte{0xff, 0xff, 0x4a, 0x11})                          // a length far beyond the stream
	f.Add(frame([]byte{0x4a, 0x11}, []byte{}, []byte{0x4a}))       // frames shorter than a header
	f.Fuzz(func(t *testing.T, stream []byte) {
		m := newMux(newStreamConn(stream), measure.TCP, &idSet{})
		defer m.close()
		q := m.registerID(measure.NameHostnameBind, id)
		m.send(t.Context(), q, nil, 10*time.Second)
		start := time.Now()
		a, err := m.await(t.Context(), q, 10*time.Second)
		if time.Since(start) > 5*time.Second {
			t.Fatalf("await ran until its deadline on a stream that ended")
		}
		if err != nil {
			if a.Status != "" {
				t.Fatalf("error %v with an answer %+v", err, a)
			}
			return
		}
		if a.Status == measure.StatusMalformed && a.Rcode < 0 && a.RTT == 0 {
			return // only messages that were not the answer came
		}
		for _, fr := range frames(stream) {
			if want, ours := measure.Classify(measure.NameHostnameBind, id, fr); ours && want.Status == a.Status && want.Rcode == a.Rcode {
				return
			}
		}
		t.Fatalf("answer %+v does not come from a frame of the stream %x", a, stream)
	})
}

// The reader ends at the end of the stream, and an answer in the stream
// is taken even when the end follows at once.
func TestTCPStreamEnd(t *testing.T) {
	good, _ := measure.NewQuery(measure.NameHostnameBind, 7).Pack()
	good[2] |= 0x80 // QR
	m := newMux(newStreamConn(frame(good)), measure.TCP, &idSet{})
	defer m.close()
	q := m.registerID(measure.NameHostnameBind, 7)
	m.send(t.Context(), q, nil, 5*time.Second)
	a, err := m.await(t.Context(), q, 5*time.Second)
	if err != nil || a.Status != measure.StatusEmpty {
		t.Fatalf("answer %+v, %v; want the empty answer in the stream", a, err)
	}
	q = m.registerID(measure.NameIDServer, 8)
	m.send(t.Context(), q, nil, 5*time.Second)
	if _, err := m.await(t.Context(), q, 5*time.Second); err == nil || err != io.EOF && err != errConnClosed {
		t.Fatalf("after the stream: %v, want the end of the connection", err)
	}
}
