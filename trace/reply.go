package trace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/anycheck/anycheck/measure"

	"golang.org/x/net/icmp"
)

// observation is what one received packet says about the probe it may
// answer: the reply's own facts (who, how, TTLs, MPLS) and the identity of
// the probe as quoted or echoed back. parseReply fills it; the matcher
// decides whether it answers one of ours.
type observation struct {
	Kind      ReplyKind
	From      netip.Addr
	ICMPType  int // -1 when not ICMP
	ICMPCode  int // -1 when not ICMP
	ReplyTTL  int // -1 when unknown
	QuotedTTL int // -1 when not quoted
	MPLS      []measure.MPLSLabel

	// Proto is the protocol of the probe this answers.
	Proto Protocol
	// Quote is set when Src, Dst and Checksum come from a quoted header
	// (an ICMP error read on a raw socket).
	Quote bool
	// Src and Dst are the probe's addresses: quoted, or reconstructed from
	// a direct reply (its source is our Dst). An invalid address is unknown.
	// For ICMP echo the port is the identifier.
	Src, Dst netip.AddrPort

	IPID        uint16 // quoted IPv4 ID
	HasIPID     bool
	Checksum    uint16 // quoted transport checksum
	HasChecksum bool
	// Seq is the ICMP echo sequence number (quoted or echoed) or, for TCP,
	// the probe's sequence number (quoted, or a SYN-ACK/RST's ack-1).
	Seq    uint32
	HasSeq bool
	// PayloadTag is the DNS message ID or the magic payload's tag, from a
	// quoted, echoed or error-queue payload, or a DNS answer's ID.
	PayloadTag    uint16
	HasPayloadTag bool
	// DNS holds the raw DNS answer when Kind == ReplyDNS.
	DNS []byte
}

var errNotReply = errors.New("not a reply to a probe")

// portUnreachable reports an ICMP port unreachable (RFC 792 type 3 code 3,
// RFC 4443 type 1 code 4): from the destination, the normal end of a UDP
// trace to a port nothing listens on.
func (r *Reply) portUnreachable() bool {
	return r.Kind == ReplyUnreachable &&
		(r.From.Is4() && r.ICMPCode == icmp4PortUnreach || r.From.Is6() && r.ICMPCode == icmp6PortUnreach)
}

// parseReply reads one received packet. It is pure and safe on any bytes:
// anything that cannot be a reply to one of our probe kinds is an error.
func parseReply(p Packet) (observation, error) {
	o := observation{ICMPType: -1, ICMPCode: -1, ReplyTTL: p.TTL, QuotedTTL: -1}
	if o.ReplyTTL == 0 {
		o.ReplyTTL = -1
	}
	switch p.Source {
	case FromICMP, FromTCP:
		b := p.Data
		o.From = p.From.Addr()
		if !p.V6 {
			h, rest, err := parseIPv4(b)
			if err != nil {
				return o, fmt.Errorf("parse reply: %w", err)
			}
			b = rest
			o.From = h.src
			o.ReplyTTL = h.ttl
			want := byte(protoICMP)
			if p.Source == FromTCP {
				want = protoTCP
			}
			if h.proto != want {
				return o, fmt.Errorf("parse reply: ip protocol %d: %w", h.proto, errNotReply)
			}
			if p.Source == FromTCP {
				return parseTCPReply(o, b, h.dst)
			}
			return parseICMPReply(o, b, false)
		}
		if p.Source == FromTCP {
			return parseTCPReply(o, b, netip.Addr{})
		}
		return parseICMPReply(o, b, true)
	case FromUDP:
		o.From = p.From.Addr()
		o.Proto = UDP
		o.Dst = p.From
		o.Kind = ReplyUDP
		b := p.Data
		if tag, ok := magicTag(b); ok {
			o.PayloadTag, o.HasPayloadTag = tag, true
			return o, nil
		}
		// A DNS response: header of 12 bytes with QR set.
		if len(b) >= 12 && b[2]&0x80 != 0 {
			o.Kind = ReplyDNS
			o.PayloadTag, o.HasPayloadTag = binary.BigEndian.Uint16(b), true
			o.DNS = b
		}
		return o, nil
	case FromErrQueue:
		if p.Err == nil {
			return o, fmt.Errorf("parse reply: error-queue packet without error: %w", errNotReply)
		}
		o.From = p.Err.Offender
		o.ICMPType, o.ICMPCode = int(p.Err.Type), int(p.Err.Code)
		k, ok := errorKind(p.V6, p.Err.Type)
		if !ok {
			return o, fmt.Errorf("parse reply: icmp type %d: %w", p.Err.Type, errNotReply)
		}
		o.Kind = k
		o.Proto = p.Proto
		o.Dst = p.OrigDst
		switch p.Proto {
		case ICMP:
			// Ping sockets queue the quoted echo request from its ICMP header on.
			if len(p.Data) < icmpHeaderLen {
				return o, fmt.Errorf("parse reply: error-queue echo of %d bytes: %w", len(p.Data), errNotReply)
			}
			if !isEchoRequest(p.V6, p.Data[0]) {
				return o, fmt.Errorf("parse reply: error-queue quote is icmp type %d: %w", p.Data[0], errNotReply)
			}
			o.Src = netip.AddrPortFrom(netip.Addr{}, binary.BigEndian.Uint16(p.Data[4:]))
			o.Seq, o.HasSeq = uint32(binary.BigEndian.Uint16(p.Data[6:])), true
		case UDP:
			if tag, ok := magicTag(p.Data); ok {
				o.PayloadTag, o.HasPayloadTag = tag, true
			} else if len(p.Data) >= 12 {
				o.PayloadTag, o.HasPayloadTag = binary.BigEndian.Uint16(p.Data), true
			} else {
				return o, fmt.Errorf("parse reply: error-queue payload of %d bytes: %w", len(p.Data), errNotReply)
			}
		default:
			return o, fmt.Errorf("parse reply: error queue of protocol %q: %w", p.Proto, errNotReply)
		}
		return o, nil
	case FromPing:
		o.From = p.From.Addr()
		return parseICMPReply(o, p.Data, p.V6)
	}
	return o, fmt.Errorf("parse reply: unknown packet source %d", p.Source)
}

type ipHeader struct {
	src, dst netip.Addr
	proto    byte
	ttl      int
	id       uint16
}

// parseIPv4 reads an IPv4 header and returns the bytes after it, bounded by
// the total length when that is shorter than what we have.
func parseIPv4(b []byte) (ipHeader, []byte, error) {
	if len(b) < ipv4HeaderLen {
		return ipHeader{}, nil, fmt.Errorf("ipv4 header of %d bytes: %w", len(b), errNotReply)
	}
	if b[0]>>4 != 4 {
		return ipHeader{}, nil, fmt.Errorf("ip version %d, want 4: %w", b[0]>>4, errNotReply)
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < ipv4HeaderLen || ihl > len(b) {
		return ipHeader{}, nil, fmt.Errorf("ipv4 header length %d of %d bytes: %w", ihl, len(b), errNotReply)
	}
	h := ipHeader{
		src:   netip.AddrFrom4([4]byte(b[12:16])),
		dst:   netip.AddrFrom4([4]byte(b[16:20])),
		proto: b[9],
		ttl:   int(b[8]),
		id:    binary.BigEndian.Uint16(b[4:]),
	}
	rest := b[ihl:]
	// Quoted headers may carry the original total length while only part
	// of the packet was quoted: bound by it, never extend.
	if tl := int(binary.BigEndian.Uint16(b[2:])); tl >= ihl && tl-ihl < len(rest) {
		rest = rest[:tl-ihl]
	}
	return h, rest, nil
}

func parseIPv6(b []byte) (ipHeader, []byte, error) {
	if len(b) < ipv6HeaderLen {
		return ipHeader{}, nil, fmt.Errorf("ipv6 header of %d bytes: %w", len(b), errNotReply)
	}
	if b[0]>>4 != 6 {
		return ipHeader{}, nil, fmt.Errorf("ip version %d, want 6: %w", b[0]>>4, errNotReply)
	}
	h := ipHeader{
		src:   netip.AddrFrom16([16]byte(b[8:24])),
		dst:   netip.AddrFrom16([16]byte(b[24:40])),
		proto: b[6],
		ttl:   int(b[7]),
	}
	rest := b[ipv6HeaderLen:]
	if pl := int(binary.BigEndian.Uint16(b[4:])); pl < len(rest) {
		rest = rest[:pl]
	}
	return h, rest, nil
}

func isEchoRequest(v6 bool, typ byte) bool {
	return (!v6 && typ == icmp4Echo) || (v6 && typ == icmp6Echo)
}

func errorKind(v6 bool, typ uint8) (ReplyKind, bool) {
	switch {
	case !v6 && typ == icmp4TimeExceeded, v6 && typ == icmp6TimeExceeded:
		return ReplyTimeExceeded, true
	case !v6 && typ == icmp4Unreachable, v6 && typ == icmp6Unreachable:
		return ReplyUnreachable, true
	}
	return "", false
}

// parseICMPReply reads an ICMP(v6) message: an echo reply, or a time
// exceeded / unreachable error quoting one of our probes.
func parseICMPReply(o observation, b []byte, v6 bool) (observation, error) {
	if len(b) < icmpHeaderLen {
		return o, fmt.Errorf("parse reply: icmp message of %d bytes: %w", len(b), errNotReply)
	}
	o.ICMPType, o.ICMPCode = int(b[0]), int(b[1])
	if (!v6 && b[0] == icmp4EchoReply) || (v6 && b[0] == icmp6EchoReply) {
		o.Kind = ReplyEcho
		o.Proto = ICMP
		o.Dst = netip.AddrPortFrom(o.From, 0)
		o.Src = netip.AddrPortFrom(netip.Addr{}, binary.BigEndian.Uint16(b[4:]))
		o.Seq, o.HasSeq = uint32(binary.BigEndian.Uint16(b[6:])), true
		if tag, ok := echoTag(b[icmpHeaderLen:]); ok {
			o.PayloadTag, o.HasPayloadTag = tag, true
		}
		return o, nil
	}
	k, ok := errorKind(v6, b[0])
	if !ok {
		return o, fmt.Errorf("parse reply: icmp type %d: %w", b[0], errNotReply)
	}
	o.Kind = k
	proto := protoICMP
	if v6 {
		proto = protoICMPv6
	}
	quote := b[icmpHeaderLen:]
	if m, err := icmp.ParseMessage(proto, b); err == nil {
		var ext []icmp.Extension
		switch body := m.Body.(type) {
		case *icmp.TimeExceeded:
			quote, ext = body.Data, body.Extensions
		case *icmp.DstUnreach:
			quote, ext = body.Data, body.Extensions
		}
		for _, e := range ext {
			if ls, ok := e.(*icmp.MPLSLabelStack); ok {
				for _, l := range ls.Labels {
					o.MPLS = append(o.MPLS, measure.MPLSLabel{Label: uint32(l.Label), TC: uint8(l.TC), S: l.S, TTL: uint8(l.TTL)})
				}
			}
		}
	}
	// A malformed extension structure is no reason to drop the quote:
	// fall back to everything after the ICMP header.
	return parseQuote(o, quote, v6)
}

// parseQuote reads the quoted IP header and first transport bytes of our
// probe from an ICMP error.
func parseQuote(o observation, b []byte, v6 bool) (observation, error) {
	var h ipHeader
	var rest []byte
	var err error
	if v6 {
		h, rest, err = parseIPv6(b)
	} else {
		h, rest, err = parseIPv4(b)
	}
	if err != nil {
		return o, fmt.Errorf("parse reply: quoted %w", err)
	}
	o.Quote = true
	o.QuotedTTL = h.ttl
	if !v6 {
		o.IPID, o.HasIPID = h.id, true
	}
	// RFC 792 guarantees 8 bytes of the original datagram after its header.
	if len(rest) < 8 {
		return o, fmt.Errorf("parse reply: quoted transport header of %d bytes: %w", len(rest), errNotReply)
	}
	switch {
	case h.proto == protoUDP:
		o.Proto = UDP
		o.Src = netip.AddrPortFrom(h.src, binary.BigEndian.Uint16(rest[0:]))
		o.Dst = netip.AddrPortFrom(h.dst, binary.BigEndian.Uint16(rest[2:]))
		o.Checksum, o.HasChecksum = binary.BigEndian.Uint16(rest[6:]), true
		payload := rest[udpHeaderLen:]
		if tag, ok := magicTag(payload); ok {
			o.PayloadTag, o.HasPayloadTag = tag, true
		} else if len(payload) >= 12 {
			o.PayloadTag, o.HasPayloadTag = binary.BigEndian.Uint16(payload), true
		}
	case h.proto == protoTCP:
		o.Proto = TCP
		o.Src = netip.AddrPortFrom(h.src, binary.BigEndian.Uint16(rest[0:]))
		o.Dst = netip.AddrPortFrom(h.dst, binary.BigEndian.Uint16(rest[2:]))
		o.Seq, o.HasSeq = binary.BigEndian.Uint32(rest[4:]), true
		if len(rest) >= 18 {
			o.Checksum, o.HasChecksum = binary.BigEndian.Uint16(rest[16:]), true
		}
	case !v6 && h.proto == protoICMP, v6 && h.proto == protoICMPv6:
		if !isEchoRequest(v6, rest[0]) {
			return o, fmt.Errorf("parse reply: quoted icmp type %d: %w", rest[0], errNotReply)
		}
		o.Proto = ICMP
		o.Src = netip.AddrPortFrom(h.src, binary.BigEndian.Uint16(rest[4:]))
		o.Dst = netip.AddrPortFrom(h.dst, 0)
		o.Checksum, o.HasChecksum = binary.BigEndian.Uint16(rest[2:]), true
		o.Seq, o.HasSeq = uint32(binary.BigEndian.Uint16(rest[6:])), true
	default:
		return o, fmt.Errorf("parse reply: quoted ip protocol %d: %w", h.proto, errNotReply)
	}
	return o, nil
}

// parseTCPReply reads a SYN-ACK, RST or bare (challenge) ACK from the
// destination; Seq is the acknowledgement minus one, the sequence number
// of the probe it acknowledges. local is our address from the IPv4 header
// (invalid for IPv6, whose raw sockets strip the header).
func parseTCPReply(o observation, b []byte, local netip.Addr) (observation, error) {
	if len(b) < 20 {
		return o, fmt.Errorf("parse reply: tcp segment of %d bytes: %w", len(b), errNotReply)
	}
	flags := b[13]
	const fin, syn, rst, ack = 0x01, 0x02, 0x04, 0x10
	if flags&ack == 0 {
		// A RST without ACK does not say which SYN it answers.
		return o, fmt.Errorf("parse reply: tcp flags %#02x without ack: %w", flags, errNotReply)
	}
	switch {
	case flags&rst != 0:
		o.Kind = ReplyRST
	case flags&syn != 0:
		o.Kind = ReplySynAck
	case flags&fin == 0:
		o.Kind = ReplyACK
	default:
		return o, fmt.Errorf("parse reply: tcp flags %#02x: %w", flags, errNotReply)
	}
	o.Proto = TCP
	o.Dst = netip.AddrPortFrom(o.From, binary.BigEndian.Uint16(b[0:]))
	o.Src = netip.AddrPortFrom(local, binary.BigEndian.Uint16(b[2:]))
	o.Seq, o.HasSeq = binary.BigEndian.Uint32(b[8:])-1, true
	return o, nil
}

// magicTag reads the tag of a non-DNS probe payload.
func magicTag(b []byte) (uint16, bool) {
	if len(b) < len(payloadMagic)+2 || !bytes.Equal(b[:len(payloadMagic)], payloadMagic[:]) {
		return 0, false
	}
	return binary.BigEndian.Uint16(b[len(payloadMagic):]), true
}

// echoTag reads the echoed ICMP payload: the compensation word (^tag) then
// the magic.
func echoTag(b []byte) (uint16, bool) {
	if len(b) < 2+len(payloadMagic) || !bytes.Equal(b[2:2+len(payloadMagic)], payloadMagic[:]) {
		return 0, false
	}
	return ^binary.BigEndian.Uint16(b), true
}
