package census

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	dnstap "github.com/dnstap/golang-dnstap"
	framestream "github.com/farsightsec/golang-framestream"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"
)

// LogFormat is the kind of a log file, told from its content.
type LogFormat string

const (
	FormatDnstap LogFormat = "dnstap"
	FormatPcap   LogFormat = "pcap"
	FormatPcapNG LogFormat = "pcapng"
)

// Query is one client query read from a log.
type Query struct {
	// Time is Unix nanoseconds (the log's clock).
	Time   int64
	Client netip.Addr
	// Identity names the server that logged it (dnstap identity, or the
	// capture's answer to CH TXT hostname.bind / id.server); "" unknown.
	Identity string
}

// LogStats count what a log held.
type LogStats struct {
	Format LogFormat
	// Records are the dnstap frames or captured packets read.
	Records uint64
	// Queries were passed on; Responses are the server's answers (counted
	// as the clients' queries in a log that holds only responses).
	Queries, Responses uint64
	// Skipped counts the records passed over, by reason.
	Skipped map[string]uint64
	// Truncated is set when the log ended in the middle of a record.
	Truncated bool
	// Identities are the server identities the log names (at most 16).
	Identities []string
	// Servers are the addresses the counted queries were sent to (at most
	// 16): the service's, for a census of one anycast service.
	Servers []netip.Addr
}

func (s *LogStats) skip(reason string) {
	if s.Skipped == nil {
		s.Skipped = map[string]uint64{}
	}
	s.Skipped[reason]++
}

// LogOptions select what a LogReader passes on.
type LogOptions struct {
	// Services, when set, keep only queries to these addresses (the
	// anycast service's): a capture or a resolver's log holds other traffic.
	Services []netip.Addr
}

// MaxFrame is the largest dnstap frame read; larger frames are skipped
// (a DNS message is at most 64 KiB, and a dnstap frame holds one or two).
const MaxFrame = 256 << 10

// LogReader reads one log — dnstap (Frame Streams) or a pcap / pcapng
// capture, plain or gzip — and returns the client queries in it, in the
// log's order, one at a time: a log of any size is read in bounded memory.
// Records that are not client queries or do not parse are counted in
// Stats and skipped; a log cut short ends with Stats().Truncated.
type LogReader struct {
	o     LogOptions
	stats LogStats

	frames dnstap.Reader
	frame  []byte

	pcap *pcapgo.Reader
	ng   *pcapgo.NgReader
	dec  map[layers.LinkType]*PacketDecoder

	// A log holding only responses counts them; once a query shows up,
	// responses are the server's and no longer counted.
	sawQuery bool
	identity []byte
	idString string
	err      error
}

// OpenLog starts reading a log; the format is told from the first bytes
// (gzip is undone first). An input that is none of the formats is an
// error saying what was found.
func OpenLog(r io.Reader, o LogOptions) (*LogReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(zr, 64<<10)
		head, _ = br.Peek(4)
	}
	l := &LogReader{o: o}
	switch {
	case len(head) < 4:
		return nil, fmt.Errorf("%d bytes: not a dnstap, pcap or pcapng file", len(head))
	case bytes.Equal(head, []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, fmt.Errorf("pcapng: %w", err)
		}
		l.ng, l.stats.Format = ng, FormatPcapNG
	case isPcapMagic(head):
		p, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("pcap: %w", err)
		}
		l.pcap, l.stats.Format = p, FormatPcap
	case bytes.Equal(head, []byte{0, 0, 0, 0}):
		// Frame Streams: an escape (a zero length), then the START frame.
		fr, err := dnstap.NewReader(br, nil)
		if err != nil {
			return nil, fmt.Errorf("dnstap: %w", frameErr(err))
		}
		l.frames, l.frame, l.stats.Format = fr, make([]byte, MaxFrame), FormatDnstap
	default:
		return nil, fmt.Errorf("starts with %x: not a dnstap (Frame Streams), pcap or pcapng file", head)
	}
	l.dec = map[layers.LinkType]*PacketDecoder{}
	return l, nil
}

func isPcapMagic(b []byte) bool {
	for _, m := range [][]byte{{0xa1, 0xb2, 0xc3, 0xd4}, {0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}, {0x4d, 0x3c, 0xb2, 0xa1}} {
		if bytes.Equal(b, m) {
			return true
		}
	}
	return false
}

func frameErr(err error) error {
	if errors.Is(err, framestream.ErrContentTypeMismatch) {
		return errors.New("a Frame Streams file of another content type (not protobuf:dnstap.Dnstap)")
	}
	return err
}

// Stats returns the counts so far.
func (l *LogReader) Stats() LogStats { return l.stats }

// Next returns the next client query; io.EOF at the end of the log
// (also after a truncated record: see Stats). Other errors are failures
// to read the underlying file.
func (l *LogReader) Next() (Query, error) {
	if l.err != nil {
		return Query{}, l.err
	}
	for {
		var q Query
		var ok bool
		var err error
		if l.frames != nil {
			q, ok, err = l.nextFrame()
		} else {
			q, ok, err = l.nextPacket()
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				l.stats.Truncated = true
				err = io.EOF
			}
			l.err = err
			return Query{}, err
		}
		if ok {
			return q, nil
		}
	}
}

func (l *LogReader) nextFrame() (Query, bool, error) {
	n, err := l.frames.ReadFrame(l.frame)
	switch {
	case errors.Is(err, framestream.ErrDataFrameTooLarge):
		l.stats.Records++
		l.stats.skip("dnstap frame too large")
		return Query{}, false, nil
	case errors.Is(err, framestream.EOF), errors.Is(err, io.EOF):
		return Query{}, false, io.EOF
	case errors.Is(err, framestream.ErrDecode):
		// A control frame that does not parse: the rest of the stream
		// cannot be framed.
		l.stats.skip("broken Frame Streams control frame")
		l.stats.Truncated = true
		return Query{}, false, io.EOF
	case err != nil:
		return Query{}, false, err
	}
	l.stats.Records++
	m, err := ParseDnstap(l.frame[:n])
	switch {
	case errors.Is(err, ErrNotClientTraffic):
		l.stats.skip("dnstap message of another type")
		return Query{}, false, nil
	case errors.Is(err, ErrUnknownType):
		l.stats.skip("unknown dnstap message type")
		return Query{}, false, nil
	case err != nil:
		l.stats.skip("malformed dnstap frame")
		return Query{}, false, nil
	}
	if m.Server.IsValid() && !l.service(m.Server) {
		l.stats.skip("query to another address")
		return Query{}, false, nil
	}
	if !l.count(m.Query()) {
		return Query{}, false, nil
	}
	return Query{Time: m.Time.UnixNano(), Client: m.Client.Addr(), Identity: l.intern(m.Identity)}, true, nil
}

func (l *LogReader) nextPacket() (Query, bool, error) {
	var data []byte
	var link layers.LinkType
	var err error
	var ts int64
	if l.pcap != nil {
		d, ci, e := l.pcap.ZeroCopyReadPacketData()
		data, err, ts, link = d, e, ci.Timestamp.UnixNano(), l.pcap.LinkType()
	} else {
		d, ci, e := l.ng.ZeroCopyReadPacketData()
		data, err, ts = d, e, ci.Timestamp.UnixNano()
		if e == nil && len(ci.AncillaryData) > 0 {
			link, _ = ci.AncillaryData[0].(layers.LinkType)
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Query{}, false, err
		}
		// pcapgo's complaints about a record (lengths beyond the snap
		// length, a block that does not parse) end the capture: the
		// records after it cannot be framed.
		l.stats.skip("broken capture record")
		l.stats.Truncated = true
		return Query{}, false, io.EOF
	}
	l.stats.Records++
	dec, ok := l.dec[link]
	if !ok {
		dec, err = NewPacketDecoder(uint32(link))
		if err != nil {
			dec = nil
		}
		l.dec[link] = dec
	}
	if dec == nil {
		l.stats.skip(fmt.Sprintf("link type %d not supported", link))
		return Query{}, false, nil
	}
	p, err := dec.Decode(data)
	switch {
	case errors.Is(err, ErrNotDNS):
		l.stats.skip("not DNS on port 53")
		return Query{}, false, nil
	case err != nil:
		l.stats.skip("malformed packet")
		return Query{}, false, nil
	}
	if p.Response() {
		l.learnIdentity(p.DNS)
		if !l.service(p.Src.Addr()) {
			l.stats.skip("answer from another address")
			return Query{}, false, nil
		}
		if !l.count(false) {
			return Query{}, false, nil
		}
		return Query{Time: ts, Client: p.Dst.Addr(), Identity: l.idString}, true, nil
	}
	if !p.Query() {
		l.stats.skip("not DNS on port 53")
		return Query{}, false, nil
	}
	if !l.service(p.Dst.Addr()) {
		l.stats.skip("query to another address")
		return Query{}, false, nil
	}
	l.count(true)
	return Query{Time: ts, Client: p.Src.Addr(), Identity: l.idString}, true, nil
}

// count decides whether a query (or response) is passed on: queries
// always; responses only while the log has shown no query.
func (l *LogReader) count(query bool) bool {
	if query {
		l.stats.Queries++
		l.sawQuery = true
		return true
	}
	l.stats.Responses++
	return !l.sawQuery
}

func (l *LogReader) service(a netip.Addr) bool {
	if len(l.o.Services) == 0 {
		l.noteServer(a)
		return true
	}
	for _, s := range l.o.Services {
		if s == a {
			l.noteServer(a)
			return true
		}
	}
	return false
}

func (l *LogReader) noteServer(a netip.Addr) {
	if !a.IsValid() || len(l.stats.Servers) >= 16 {
		return
	}
	for _, have := range l.stats.Servers {
		if have == a {
			return
		}
	}
	l.stats.Servers = append(l.stats.Servers, a)
}

// intern keeps one string per identity, so a log whose every frame
// carries the same identity allocates it once.
func (l *LogReader) intern(id []byte) string {
	if len(id) == 0 {
		return ""
	}
	if !bytes.Equal(id, l.identity) {
		l.identity = append(l.identity[:0], id...)
		l.idString = string(id)
		l.noteIdentity(l.idString)
	}
	return l.idString
}

func (l *LogReader) noteIdentity(id string) {
	for _, have := range l.stats.Identities {
		if have == id {
			return
		}
	}
	if len(l.stats.Identities) < 16 {
		l.stats.Identities = append(l.stats.Identities, id)
	}
}

// learnIdentity takes the server's identity from its answer to a CHAOS
// identity query (hostname.bind, id.server) in a capture: the NSID when
// the answer carries one, else the TXT string.
func (l *LogReader) learnIdentity(msg []byte) {
	if l.idString != "" || !chaosAnswer(msg) {
		return
	}
	var m dns.Msg
	if m.Unpack(msg) != nil || len(m.Question) != 1 {
		return
	}
	q := m.Question[0]
	name := strings.ToLower(q.Name)
	if q.Qclass != dns.ClassCHAOS || q.Qtype != dns.TypeTXT || (name != "hostname.bind." && name != "id.server.") {
		return
	}
	id := ""
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok && n.Nsid != "" {
				if b, err := hex.DecodeString(n.Nsid); err == nil {
					id = string(b)
				}
			}
		}
	}
	if id == "" {
		for _, rr := range m.Answer {
			if t, ok := rr.(*dns.TXT); ok && len(t.Txt) > 0 {
				id = strings.Join(t.Txt, "")
				break
			}
		}
	}
	if id != "" {
		l.identity = []byte(id)
		l.idString = id
		l.noteIdentity(id)
	}
}

// chaosAnswer is a cheap look at a DNS response: one question of class
// CH, so only those messages are unpacked in full.
func chaosAnswer(msg []byte) bool {
	if len(msg) < dnsHeaderLen+5 || msg[4] != 0 || msg[5] != 1 {
		return false
	}
	i := dnsHeaderLen
	for i < len(msg) && msg[i] != 0 {
		if msg[i]&0xc0 != 0 {
			return false
		}
		i += int(msg[i]) + 1
	}
	return i+5 <= len(msg) && msg[i+3] == 0 && msg[i+4] == byte(dns.ClassCHAOS)
}
