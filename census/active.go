package census

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/anycheck/anycheck/internal/wait"
)

// Conn is the socket of an active census at one site: ICMP or ICMPv6
// messages (without the IP header) to and from the anycast address. The
// host's is ListenICMP; tests pass their own.
type Conn interface {
	// WriteTo sends one ICMP message to dst.
	WriteTo(msg []byte, dst netip.Addr) error
	// ReadFrom reads one ICMP message addressed to the anycast address;
	// ttl is the packet's TTL (hop limit), -1 when unknown.
	ReadFrom(buf []byte) (n int, src netip.Addr, ttl int, err error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// Limits of an active census.
const (
	DefaultRate = 1000
	// MaxRate bounds --rate: a census is a measurement, not a flood.
	MaxRate = 100_000
)

// NewCensusID returns a random census id (never 0).
func NewCensusID() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// echoID is the ICMP echo identifier of a census's requests.
func echoID(census uint64) int { return int(census & 0xffff) }

// SendOptions configure Send.
type SendOptions struct {
	// Anycast is the address the requests come from (the Conn is bound to
	// it); Site names the sender in every payload.
	Anycast netip.Addr
	Site    string
	Census  uint64
	// Rate is echo requests per second (1 to MaxRate).
	Rate float64
	// Now is the clock for the payloads' send times (time.Now if nil).
	// Pacing uses the time package's timers.
	Now func() time.Time
	// OnSent is called after every request, in order, from Send's goroutine.
	OnSent func(Sent)
}

// Sent is one echo request of a census.
type Sent struct {
	Seq    int
	Target netip.Addr
	At     time.Time
	Err    error // the send failed (no route, a full buffer)
}

// SendSummary is what a Send did.
type SendSummary struct {
	Census      uint64
	Sent        int // requests handed to the socket
	Failed      int // sends that failed
	Start, End  time.Time
	Interrupted bool // ctx was cancelled before every target was sent
}

// Rate is the achieved rate: requests over the time from the first to
// the last.
func (s SendSummary) Rate() float64 {
	d := s.End.Sub(s.Start).Seconds()
	if s.Sent+s.Failed < 2 || d <= 0 {
		return 0
	}
	return float64(s.Sent+s.Failed-1) / d
}

// minSleep is the shortest pause of a sender (see Send).
const minSleep = time.Millisecond

// Send sends one echo request to every target, from the anycast address,
// at the given rate: request i leaves at start + i/rate, or up to a
// millisecond before (requests that fell behind the schedule leave at once,
// so the average holds even when the timer wakes late). It stops when ctx is cancelled, with what was
// sent so far in the summary. Targets of the other family are refused
// (the caller filters them).
func Send(ctx context.Context, conn Conn, targets []netip.Addr, o SendOptions) (SendSummary, error) {
	if !(o.Rate >= 1 && o.Rate <= MaxRate) { // NaN too
		return SendSummary{}, fmt.Errorf("rate %g: must be 1 to %d per second", o.Rate, MaxRate)
	}
	if err := CheckSite(o.Site); err != nil {
		return SendSummary{}, err
	}
	if o.Census == 0 {
		return SendSummary{}, errors.New("census id 0: choose one (NewCensusID)")
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	for _, t := range targets {
		if t.Is4() != o.Anycast.Is4() {
			return SendSummary{}, fmt.Errorf("target %s: another address family than the anycast address %s", t, o.Anycast)
		}
	}
	s := SendSummary{Census: o.Census}
	interval := time.Duration(float64(time.Second) / o.Rate)
	start := time.Now()
	for i, target := range targets {
		// A request may leave up to minSleep before its time, so the
		// sender wakes at most 1000 times a second at any rate: on a
		// loaded host every wake-up is late, and a late one per request
		// would hold a high rate back. The average over the census
		// stays within minSleep of the schedule.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d >= minSleep {
			wait.Sleep(ctx, d)
		}
		if ctx.Err() != nil {
			s.Interrupted = true
			break
		}
		at := now()
		msg, err := echoRequest(o, i, target, at)
		if err == nil {
			err = conn.WriteTo(msg, target)
		}
		if i == 0 {
			s.Start = at
		}
		s.End = at
		if err != nil {
			s.Failed++
		} else {
			s.Sent++
		}
		if o.OnSent != nil {
			o.OnSent(Sent{Seq: i, Target: target, At: at, Err: err})
		}
	}
	return s, nil
}

func echoRequest(o SendOptions, seq int, target netip.Addr, at time.Time) ([]byte, error) {
	data, err := Payload{Census: o.Census, Site: o.Site, Target: target, Sent: at}.Marshal()
	if err != nil {
		return nil, err
	}
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if target.Is6() {
		typ = ipv6.ICMPTypeEchoRequest // the kernel fills in the ICMPv6 checksum
	}
	m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: echoID(o.Census), Seq: seq & 0xffff, Data: data}}
	return m.Marshal(nil)
}

// ListenOptions configure Listen.
type ListenOptions struct {
	// Site names this listener in every reply it records.
	Site string
	// Census, when not 0, keeps only replies of that census; 0 keeps the
	// replies of any census (each says its id).
	Census uint64
	// Now is the clock for receive times (time.Now if nil).
	Now func() time.Time
	// OnReply is called for every reply kept, from Listen's goroutine.
	OnReply func(Reply)
}

// Reply is an echo reply of a census received at one site.
type Reply struct {
	Site   string // the listener's site
	Census uint64
	Sender string     // the site that sent the request
	Target netip.Addr // what the request was sent to
	From   netip.Addr // the reply's source (normally Target)
	Seq    int
	TTL    int // of the reply as received; -1 unknown
	Sent   time.Time
	// Received is the listener's clock: Received − Sent is the round trip
	// where the sender and listener are one host, and includes the clock
	// difference where they are not.
	Received time.Time
}

// ListenStats count what a listener read.
type ListenStats struct {
	Replies     uint64 // kept
	OtherICMP   uint64 // not an echo reply (requests, errors, ...)
	NoPayload   uint64 // an echo reply without a census payload (another program's ping)
	OtherCensus uint64 // a census payload of another census id
	Malformed   uint64 // a census payload that does not parse
}

// Listen reads echo replies from conn until ctx is done (the normal end:
// Ctrl-C or the duration) and passes on those carrying a census payload
// (of o.Census, when set). It returns ctx's end as nil; a socket error
// otherwise.
func Listen(ctx context.Context, conn Conn, o ListenOptions) (ListenStats, error) {
	var st ListenStats
	now := o.Now
	if now == nil {
		now = time.Now
	}
	buf := make([]byte, 65536)
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		n, src, ttl, err := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("read: %w", err)
		}
		r, err := ParseEchoReply(buf[:n])
		switch {
		case errors.Is(err, errNotEchoReply):
			st.OtherICMP++
			continue
		case errors.Is(err, ErrNoPayload):
			st.NoPayload++
			continue
		case err != nil:
			st.Malformed++
			continue
		case o.Census != 0 && r.Census != o.Census:
			st.OtherCensus++
			continue
		}
		st.Replies++
		r.Site, r.From, r.TTL, r.Received = o.Site, src, ttl, now().UTC()
		if o.OnReply != nil {
			o.OnReply(r)
		}
	}
}

var errNotEchoReply = errors.New("not an echo reply")

// ParseEchoReply decodes an ICMP or ICMPv6 message (without IP header)
// that should be an echo reply of a census: its census id, sender site,
// target, send time and sequence number. Other ICMP messages are refused;
// an echo reply without the payload is ErrNoPayload.
func ParseEchoReply(msg []byte) (Reply, error) {
	if len(msg) < 8 {
		return Reply{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(msg))
	}
	// Echo reply: ICMP type 0, ICMPv6 type 129, code 0.
	if (msg[0] != 0 && msg[0] != 129) || msg[1] != 0 {
		return Reply{}, errNotEchoReply
	}
	p, err := ParsePayload(msg[8:])
	if err != nil {
		return Reply{}, err
	}
	return Reply{Census: p.Census, Sender: p.Site, Target: p.Target, Sent: p.Sent, Seq: int(binary.BigEndian.Uint16(msg[6:8])), TTL: -1}, nil
}
