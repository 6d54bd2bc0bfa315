package trace

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/anycheck/anycheck/measure"

	"github.com/miekg/dns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

var (
	router4 = netip.MustParseAddr("198.51.100.1")
	router6 = netip.MustParseAddr("2001:db8:1::1")
)

// ipv4Packet wraps payload in an IPv4 header (checksum left 0: receivers
// of raw sockets see it verified by the kernel, the parser ignores it).
func ipv4Packet(src, dst netip.Addr, proto byte, ttl int, id uint16, payload []byte) []byte {
	b := make([]byte, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], id)
	b[8], b[9] = byte(ttl), proto
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], payload)
	return b
}

// quoteOf is what a router quotes of a probe: the packet as it arrived
// (TTL 1), cut to n bytes after the IP header (-1 = all).
func quoteOf(p Probe, n int) []byte {
	q := append([]byte(nil), p.Packet...)
	if p.L4 == ipv4HeaderLen {
		q[8] = 1
	} else {
		q[7] = 1
	}
	if n >= 0 && p.L4+n < len(q) {
		q = q[:p.L4+n]
	}
	return q
}

// icmpError builds an ICMP(v6) error message quoting quote, with optional
// RFC 4950 MPLS labels in an RFC 4884 extension (via x/net's marshaller).
func icmpError(v6 bool, typ, code int, quote []byte, labels []icmp.MPLSLabel) []byte {
	var m icmp.Message
	var ext []icmp.Extension
	if labels != nil {
		ext = []icmp.Extension{&icmp.MPLSLabelStack{Class: 1, Type: 1, Labels: labels}}
	}
	body := icmp.MessageBody(&icmp.TimeExceeded{Data: quote, Extensions: ext})
	if (v6 && typ == icmp6Unreachable) || (!v6 && typ == icmp4Unreachable) {
		body = &icmp.DstUnreach{Data: quote, Extensions: ext}
	}
	if v6 {
		m = icmp.Message{Type: ipv6.ICMPType(typ), Code: code, Body: body}
	} else {
		m = icmp.Message{Type: ipv4.ICMPType(typ), Code: code, Body: body}
	}
	b, err := m.Marshal(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// mplsTimeExceeded4 is a hand-assembled RFC 4950 time exceeded as an MPLS
// LSR sends it: the quote padded to 128 bytes with the RFC 4884 length
// (32 words), extension header version 2, one MPLS label stack object with
// label 16001, TC 0, bottom of stack, TTL 1.
func mplsTimeExceeded4(p Probe) []byte {
	quote := quoteOf(p, -1)
	b := make([]byte, 8+128+4+8)
	b[0] = icmp4TimeExceeded
	b[5] = 128 / 4 // RFC 4884 length of the original datagram, in 32-bit words
	copy(b[8:], quote)
	ext := b[8+128:]
	ext[0] = 2 << 4 // version 2
	obj := ext[4:]
	binary.BigEndian.PutUint16(obj[0:], 8) // object length
	obj[2], obj[3] = 1, 1                  // class 1 (MPLS label stack), c-type 1 (incoming)
	var label uint32 = 16001
	obj[4], obj[5], obj[6] = byte(label>>12), byte(label>>4), byte(label<<4)|0x01 // TC 0, S=1
	obj[7] = 1                                                                    // TTL
	binary.BigEndian.PutUint16(ext[2:], checksum(ext, 0))
	binary.BigEndian.PutUint16(b[2:], checksum(b, 0))
	return b
}

func mustProbe(t testing.TB, f Flow, ttl int, tag uint16) Probe {
	t.Helper()
	p, err := BuildProbe(f, ttl, tag, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dnsAnswer(t testing.TB, id uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.Id = id
	m.Response, m.Authoritative = true, true
	m.Question = []dns.Question{{Name: "hostname.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "hostname.bind.", Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: []string{"inst-1"}}}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tcpSegment(sport, dport uint16, seq, ack uint32, flags byte) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = 5 << 4
	b[13] = flags
	return b
}

func echoReply(v6 bool, p Probe) []byte {
	b := append([]byte(nil), p.Transport()...)
	if v6 {
		b[0] = icmp6EchoReply
	} else {
		b[0] = icmp4EchoReply
	}
	return b
}

type replyCase struct {
	name string
	pkt  Packet
	want observation
	err  bool
}

func replyCases(t testing.TB) []replyCase {
	u4 := testFlow(UDP, false, 53)
	u6 := testFlow(UDP, true, 53)
	i4 := testFlow(ICMP, false, 0)
	i6 := testFlow(ICMP, true, 0)
	t4 := testFlow(TCP, false, 443)
	t6 := testFlow(TCP, true, 443)
	pu4 := mustProbe(t, u4, 3, 0x1234)
	pu6 := mustProbe(t, u6, 3, 0x1234)
	pi4 := mustProbe(t, i4, 2, 0x0102)
	pi6 := mustProbe(t, i6, 2, 0x0102)
	pt4 := mustProbe(t, t4, 4, 0x0a0b)
	pp4 := mustProbe(t, testFlow(UDP, false, 33434), 2, 0x0777)
	raw4 := func(outerTTL int, icmpMsg []byte) Packet {
		return Packet{Source: FromICMP, Data: ipv4Packet(router4, src4, protoICMP, outerTTL, 7, icmpMsg), TTL: -1}
	}
	raw6 := func(icmpMsg []byte) Packet {
		return Packet{Source: FromICMP, V6: true, Data: icmpMsg, From: netip.AddrPortFrom(router6, 0), TTL: 61}
	}
	base := func(kind ReplyKind, from netip.Addr, typ, code, replyTTL int) observation {
		return observation{Kind: kind, From: from, ICMPType: typ, ICMPCode: code, ReplyTTL: replyTTL, QuotedTTL: -1}
	}
	withQuote := func(o observation, f Flow, p Probe, payloadTag bool) observation {
		o.Quote, o.QuotedTTL, o.Proto, o.Src, o.Dst = true, 1, f.Proto, f.Src, f.Dst
		if f.Dst.Addr().Is4() {
			o.IPID, o.HasIPID = p.Tag, true
		}
		switch f.Proto {
		case UDP:
			o.Checksum, o.HasChecksum = p.Checksum, true
		case ICMP:
			o.Checksum, o.HasChecksum = p.Checksum, true
			o.Seq, o.HasSeq = uint32(p.Tag), true
		case TCP:
			o.Seq, o.HasSeq = tcpSeq(f, p.Tag), true
			o.Checksum, o.HasChecksum = p.Checksum, true
		}
		if payloadTag {
			o.PayloadTag, o.HasPayloadTag = p.Tag, true
		}
		return o
	}
	te4 := base(ReplyTimeExceeded, router4, 11, 0, 250)
	te6 := base(ReplyTimeExceeded, router6, 3, 0, 61)
	mpls := base(ReplyTimeExceeded, router4, 11, 0, 250)
	mpls.MPLS = []measure.MPLSLabel{{Label: 16001, S: true, TTL: 1}}
	mpls6 := te6
	mpls6.MPLS = []measure.MPLSLabel{{Label: 299776, TC: 5, S: false, TTL: 1}, {Label: 16, S: true, TTL: 2}}
	port4 := base(ReplyUnreachable, dst4, 3, 3, 60)
	port4.From = dst4
	dnsObs := observation{Kind: ReplyDNS, From: dst4, ICMPType: -1, ICMPCode: -1, ReplyTTL: 57, QuotedTTL: -1, Proto: UDP, Dst: u4.Dst, PayloadTag: 0x1234, HasPayloadTag: true, DNS: dnsAnswer(t, 0x1234)}
	echo4 := base(ReplyEcho, dst4, 0, 0, 55)
	echo4.From = dst4
	echo4.Proto, echo4.Dst, echo4.Src = ICMP, netip.AddrPortFrom(dst4, 0), netip.AddrPortFrom(netip.Addr{}, i4.Src.Port())
	echo4.Seq, echo4.HasSeq, echo4.PayloadTag, echo4.HasPayloadTag = 0x0102, true, 0x0102, true
	echo6 := echo4
	echo6.From, echo6.ICMPType, echo6.ReplyTTL, echo6.Dst = dst6, 129, 61, netip.AddrPortFrom(dst6, 0)
	synack := base(ReplySynAck, dst4, -1, -1, 58)
	synack.Proto, synack.Dst, synack.Src, synack.Seq, synack.HasSeq = TCP, t4.Dst, t4.Src, tcpSeq(t4, 0x0a0b), true
	challenge := synack
	challenge.Kind = ReplyACK
	rst6 := base(ReplyRST, dst6, -1, -1, 61)
	rst6.Proto, rst6.Dst, rst6.Src, rst6.Seq, rst6.HasSeq = TCP, t6.Dst, netip.AddrPortFrom(netip.Addr{}, t6.Src.Port()), tcpSeq(t6, 9), true
	eqUDP := base(ReplyTimeExceeded, router4, 11, 0, 249)
	eqUDP.Proto, eqUDP.Dst, eqUDP.PayloadTag, eqUDP.HasPayloadTag = UDP, u4.Dst, 0x1234, true
	eqICMP := base(ReplyUnreachable, router6, 1, 0, -1)
	eqICMP.Proto, eqICMP.Dst, eqICMP.Src, eqICMP.Seq, eqICMP.HasSeq = ICMP, i6.Dst, netip.AddrPortFrom(netip.Addr{}, i6.Src.Port()), 0x0102, true
	magic := observation{Kind: ReplyUDP, From: dst4, ICMPType: -1, ICMPCode: -1, ReplyTTL: -1, QuotedTTL: -1, Proto: UDP, Dst: netip.AddrPortFrom(dst4, 33434), PayloadTag: 0x0777, HasPayloadTag: true}
	other := observation{Kind: ReplyUDP, From: dst4, ICMPType: -1, ICMPCode: -1, ReplyTTL: -1, QuotedTTL: -1, Proto: UDP, Dst: netip.AddrPortFrom(dst4, 33434)}

	return []replyCase{
		{"v4 time exceeded, full quote of udp/53", raw4(250, icmpError(false, 11, 0, quoteOf(pu4, -1), nil)), withQuote(te4, u4, pu4, true), false},
		{"v4 time exceeded, rfc 792 minimum quote", raw4(250, icmpError(false, 11, 0, quoteOf(pu4, 8), nil)), withQuote(te4, u4, pu4, false), false},
		{"v6 time exceeded quoting udp/53", raw6(icmpError(true, 3, 0, quoteOf(pu6, -1), nil)), withQuote(te6, u6, pu6, true), false},
		{"v4 port unreachable from the destination", Packet{Source: FromICMP, Data: ipv4Packet(dst4, src4, protoICMP, 60, 1, icmpError(false, 3, 3, quoteOf(pu4, -1), nil))}, withQuote(port4, u4, pu4, true), false},
		{"v4 mpls time exceeded (hand-assembled rfc 4950)", raw4(250, mplsTimeExceeded4(pu4)), withQuote(mpls, u4, pu4, true), false},
		{"v6 time exceeded with a two-label stack", raw6(icmpError(true, 3, 0, quoteOf(pu6, -1), []icmp.MPLSLabel{{Label: 299776, TC: 5, TTL: 1}, {Label: 16, S: true, TTL: 2}})), withQuote(mpls6, u6, pu6, true), false},
		{"v4 time exceeded quoting icmp echo", raw4(250, icmpError(false, 11, 0, quoteOf(pi4, 8), nil)), withQuote(te4, i4, pi4, false), false},
		{"v6 time exceeded quoting icmp echo", raw6(icmpError(true, 3, 0, quoteOf(pi6, 8), nil)), withQuote(te6, i6, pi6, false), false},
		{"v4 time exceeded quoting tcp syn", raw4(250, icmpError(false, 11, 0, quoteOf(pt4, -1), nil)), withQuote(te4, t4, pt4, false), false},
		{"v4 echo reply", Packet{Source: FromICMP, Data: ipv4Packet(dst4, src4, protoICMP, 55, 1, echoReply(false, pi4))}, echo4, false},
		{"v6 echo reply", Packet{Source: FromICMP, V6: true, Data: echoReply(true, pi6), From: netip.AddrPortFrom(dst6, 0), TTL: 61}, echo6, false},
		{"ping socket echo reply", Packet{Source: FromPing, Data: echoReply(false, pi4), From: netip.AddrPortFrom(dst4, 0), TTL: 55}, echo4, false},
		{"v4 tcp syn-ack", Packet{Source: FromTCP, Data: ipv4Packet(dst4, src4, protoTCP, 58, 1, tcpSegment(443, 33512, 777, tcpSeq(t4, 0x0a0b)+1, 0x12))}, synack, false},
		{"v6 tcp rst-ack", Packet{Source: FromTCP, V6: true, Data: tcpSegment(443, 33512, 0, tcpSeq(t6, 9)+1, 0x14), From: netip.AddrPortFrom(dst6, 0), TTL: 61}, rst6, false},
		{"dns answer from the destination", Packet{Source: FromUDP, Data: dnsAnswer(t, 0x1234), From: u4.Dst, TTL: 57}, dnsObs, false},
		{"echoed magic payload", Packet{Source: FromUDP, Data: pp4.SocketPayload(), From: netip.AddrPortFrom(dst4, 33434), TTL: -1}, magic, false},
		{"other udp payload", Packet{Source: FromUDP, Data: []byte("hello"), From: netip.AddrPortFrom(dst4, 33434), TTL: -1}, other, false},
		{"error queue: udp/53 payload", Packet{Source: FromErrQueue, Proto: UDP, Data: pu4.SocketPayload(), TTL: 249, OrigDst: u4.Dst, Err: &SockErr{Type: 11, Offender: router4}}, eqUDP, false},
		{"error queue: v6 ping", Packet{Source: FromErrQueue, V6: true, Proto: ICMP, Data: pi6.SocketPayload(), TTL: -1, OrigDst: i6.Dst, Err: &SockErr{Type: 1, Code: 0, Offender: router6}}, eqICMP, false},

		{"short icmp", raw4(250, []byte{11, 0, 0}), observation{}, true},
		{"redirect is no reply", raw4(250, icmpError(false, 5, 0, quoteOf(pu4, 8), nil)), observation{}, true},
		{"our own echo request", Packet{Source: FromICMP, Data: ipv4Packet(src4, dst4, protoICMP, 64, 1, pi4.Transport())}, observation{}, true},
		{"quote shorter than 8 transport bytes", raw4(250, icmpError(false, 11, 0, quoteOf(pu4, 4), nil)), observation{}, true},
		{"quoted gre", raw4(250, icmpError(false, 11, 0, ipv4Packet(src4, dst4, 47, 1, 1, make([]byte, 8)), nil)), observation{}, true},
		{"quoted ipv6 in a v4 error", raw4(250, icmpError(false, 11, 0, quoteOf(pu6, -1), nil)), observation{}, true},
		{"outer protocol udp on the icmp socket", Packet{Source: FromICMP, Data: ipv4Packet(router4, src4, protoUDP, 1, 1, make([]byte, 16))}, observation{}, true},
		{"bad ip header length", Packet{Source: FromICMP, Data: append([]byte{0x4f}, make([]byte, 30)...)}, observation{}, true},
		{"v4 tcp challenge ack", Packet{Source: FromTCP, Data: ipv4Packet(dst4, src4, protoTCP, 58, 1, tcpSegment(443, 33512, 1, tcpSeq(t4, 0x0a0b)+1, 0x10))}, challenge, false},
		{"tcp fin-ack", Packet{Source: FromTCP, Data: ipv4Packet(dst4, src4, protoTCP, 58, 1, tcpSegment(443, 33512, 1, 2, 0x11))}, observation{}, true},
		{"rst without ack", Packet{Source: FromTCP, Data: ipv4Packet(dst4, src4, protoTCP, 58, 1, tcpSegment(443, 33512, 1, 0, 0x04))}, observation{}, true},
		{"error queue without error", Packet{Source: FromErrQueue, Proto: UDP, Data: pu4.SocketPayload()}, observation{}, true},
		{"error queue: short udp payload", Packet{Source: FromErrQueue, Proto: UDP, Data: []byte{1, 2}, Err: &SockErr{Type: 11}}, observation{}, true},
		{"error queue: echo reply type", Packet{Source: FromErrQueue, Proto: UDP, Data: pu4.SocketPayload(), Err: &SockErr{Type: 0}}, observation{}, true},
		{"unknown source", Packet{Source: 99}, observation{}, true},
	}
}

func TestParseReply(t *testing.T) {
	for _, c := range replyCases(t) {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseReply(c.pkt)
			if c.err {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// FuzzParseReply feeds arbitrary bytes through the parser and the matcher:
// neither may panic, and whatever parses must be self-consistent.
func FuzzParseReply(f *testing.F) {
	for _, c := range replyCases(f) {
		f.Add(uint8(c.pkt.Source), c.pkt.V6, c.pkt.Data)
	}
	f.Fuzz(func(t *testing.T, src uint8, v6 bool, data []byte) {
		pkt := Packet{Source: Source(src % 6), V6: v6, Data: data, TTL: -1, Proto: UDP,
			From: netip.AddrPortFrom(dst4, 53)}
		if pkt.Source == FromErrQueue {
			pkt.Err = &SockErr{Type: 11, Offender: router4}
			if src&0x80 != 0 {
				pkt.Proto = ICMP
			}
		}
		o, err := parseReply(pkt)
		if err != nil {
			return
		}
		if o.Kind == "" {
			t.Fatalf("no kind: %+v", o)
		}
		for _, l := range o.MPLS {
			if l.Label > 1<<20-1 || l.TC > 7 {
				t.Fatalf("label out of range: %+v", l)
			}
		}
		if o.Kind == ReplyDNS && len(o.DNS) < 12 {
			t.Fatalf("dns answer of %d bytes", len(o.DNS))
		}
		for _, proto := range []Protocol{UDP, ICMP, TCP} {
			fl := testFlow(proto, v6, 53)
			m := newMatcher(fl)
			for tag := uint16(1); tag < 8; tag++ {
				m.add(mustProbe(t, fl, int(tag), tag))
			}
			if tag, _, ok := m.match(o); ok {
				if _, known := m.sent[tag]; !known {
					t.Fatalf("matched unknown tag %#x", tag)
				}
			}
		}
		_ = fmt.Sprint(o)
	})
}
