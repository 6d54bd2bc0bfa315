package trace

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/anycheck/anycheck/measure"
)

// IP protocol numbers used on the wire.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// ICMP types (RFC 792, RFC 4443) this package sends or understands.
const (
	icmp4EchoReply    = 0
	icmp4Unreachable  = 3
	icmp4Echo         = 8
	icmp4TimeExceeded = 11
	icmp4PortUnreach  = 3 // code

	icmp6Unreachable  = 1
	icmp6TimeExceeded = 3
	icmp6Echo         = 128
	icmp6EchoReply    = 129
	icmp6PortUnreach  = 4 // code
)

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
	icmpHeaderLen = 8
	tcpHeaderLen  = 24 // 20 + one MSS option: a SYN without MSS is dropped by some middleboxes
	tcpMSS        = 1220
	tcpWindow     = 64240
)

// payloadMagic starts every non-DNS probe payload, so an echoed payload (a
// UDP echo service, an ICMP echo reply) can be recognised as ours.
var payloadMagic = [8]byte{'a', 'n', 'y', 'c', 'h', 'e', 'c', 'k'}

// Probe is one packet of a flow: the flow's fixed fields plus a TTL and a
// tag. Packet is complete, IP header included for both families, so raw
// sockets send it unchanged; socket mode sends Payload() and lets the
// kernel build the headers.
type Probe struct {
	Proto Protocol
	TTL   int
	Seq   int    // 0-based probe index within the hop
	Tag   uint16 // never 0: UDP DNS ID / IPv4 ID, ICMP sequence, TCP sequence high half
	// Packet is the whole datagram, IP header first.
	Packet []byte
	// L4 is the offset of the transport header within Packet.
	L4 int
	// Checksum is the transport checksum as sent; errors quoting another
	// value mean something rewrote the probe.
	Checksum uint16
}

// Transport returns the transport header and payload of the probe.
func (p Probe) Transport() []byte { return p.Packet[p.L4:] }

// SocketPayload is what a socket-mode socket writes for this probe: the
// UDP payload for a UDP socket, the whole ICMP message for a ping socket
// (the kernel rewrites its identifier and checksum). TCP has none.
func (p Probe) SocketPayload() []byte {
	switch p.Proto {
	case ICMP:
		return p.Transport()
	case TCP:
		return nil
	default:
		return p.Transport()[udpHeaderLen:]
	}
}

// BuildProbe builds the probe of flow f with the given TTL and tag. The
// flow's source address must be set (checksums cover it). qname is the DNS
// name asked by UDP/53 probes ("" = hostname.bind).
func BuildProbe(f Flow, ttl int, tag uint16, qname string) (Probe, error) {
	if !f.Src.Addr().IsValid() || !f.Dst.Addr().IsValid() {
		return Probe{}, fmt.Errorf("build probe: flow needs source and destination addresses")
	}
	if f.Src.Addr().Is4() != f.Dst.Addr().Is4() {
		return Probe{}, fmt.Errorf("build probe: source %s and destination %s are of different families", f.Src.Addr(), f.Dst.Addr())
	}
	if ttl < 1 || ttl > 255 {
		return Probe{}, fmt.Errorf("build probe: ttl %d out of range 1-255", ttl)
	}
	if tag == 0 {
		return Probe{}, fmt.Errorf("build probe: tag 0 is reserved (the kernel would replace an IPv4 ID of 0)")
	}
	v6 := f.Dst.Addr().Is6()
	var l4 []byte
	var proto byte
	switch f.Proto {
	case UDP:
		proto = protoUDP
		payload, err := udpPayload(f, tag, qname)
		if err != nil {
			return Probe{}, err
		}
		l4 = make([]byte, udpHeaderLen+len(payload))
		binary.BigEndian.PutUint16(l4[0:], f.Src.Port())
		binary.BigEndian.PutUint16(l4[2:], f.Dst.Port())
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		copy(l4[udpHeaderLen:], payload)
		c := transportChecksum(f, proto, l4)
		if c == 0 {
			c = 0xffff // RFC 768: 0 means "no checksum" on IPv4 and is forbidden on IPv6
		}
		binary.BigEndian.PutUint16(l4[6:], c)
	case ICMP:
		proto = protoICMP
		if v6 {
			proto = protoICMPv6
		}
		// The identifier is fixed for the flow, the sequence is the tag.
		// The data's first word is the one's complement of the sequence:
		// their sum is 0xffff whatever the tag, so the ICMP checksum
		// (which some ECMP hashes include) is constant per flow.
		data := make([]byte, 2+len(payloadMagic)+6)
		binary.BigEndian.PutUint16(data, ^tag)
		copy(data[2:], payloadMagic[:])
		m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: int(f.Src.Port()), Seq: int(tag), Data: data}}
		var psh []byte // IPv6: the pseudo-header the checksum covers
		if v6 {
			m.Type = ipv6.ICMPTypeEchoRequest
			psh = icmp.IPv6PseudoHeader(f.Src.Addr().AsSlice(), f.Dst.Addr().AsSlice())
		}
		var err error
		if l4, err = m.Marshal(psh); err != nil {
			return Probe{}, fmt.Errorf("build probe: %w", err)
		}
	case TCP:
		proto = protoTCP
		l4 = make([]byte, tcpHeaderLen)
		binary.BigEndian.PutUint16(l4[0:], f.Src.Port())
		binary.BigEndian.PutUint16(l4[2:], f.Dst.Port())
		binary.BigEndian.PutUint32(l4[4:], tcpSeq(f, tag))
		l4[12] = (tcpHeaderLen / 4) << 4
		l4[13] = 0x02 // SYN
		binary.BigEndian.PutUint16(l4[14:], tcpWindow)
		l4[20], l4[21] = 2, 4 // MSS option
		binary.BigEndian.PutUint16(l4[22:], tcpMSS)
		c := transportChecksum(f, proto, l4)
		binary.BigEndian.PutUint16(l4[16:], c)
	default:
		return Probe{}, fmt.Errorf("build probe: unknown protocol %q", f.Proto)
	}

	var pkt []byte
	var off int
	if v6 {
		off = ipv6HeaderLen
		pkt = make([]byte, off+len(l4))
		binary.BigEndian.PutUint32(pkt[0:], 6<<28|uint32(f.TOS)<<20|f.FlowLabel&0xfffff)
		binary.BigEndian.PutUint16(pkt[4:], uint16(len(l4)))
		pkt[6] = proto
		pkt[7] = byte(ttl)
		s, d := f.Src.Addr().As16(), f.Dst.Addr().As16()
		copy(pkt[8:], s[:])
		copy(pkt[24:], d[:])
	} else {
		off = ipv4HeaderLen
		pkt = make([]byte, off+len(l4))
		pkt[0] = 0x45
		pkt[1] = f.TOS
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		binary.BigEndian.PutUint16(pkt[4:], tag) // IPv4 ID: a second copy of the tag that survives NATs rewriting the checksum
		pkt[8] = byte(ttl)
		pkt[9] = proto
		s, d := f.Src.Addr().As4(), f.Dst.Addr().As4()
		copy(pkt[12:], s[:])
		copy(pkt[16:], d[:])
		binary.BigEndian.PutUint16(pkt[10:], checksum(pkt[:ipv4HeaderLen], 0))
	}
	copy(pkt[off:], l4)
	p := Probe{Proto: f.Proto, TTL: ttl, Tag: tag, Packet: pkt, L4: off}
	p.Checksum = l4Checksum(f.Proto, l4)
	return p, nil
}

// tcpSeq puts the tag in the high half of the sequence number and the
// source port in the low half, so a SYN-ACK's acknowledgement (seq+1)
// still names both.
func tcpSeq(f Flow, tag uint16) uint32 { return uint32(tag)<<16 | uint32(f.Src.Port()) }

func l4Checksum(p Protocol, l4 []byte) uint16 {
	switch p {
	case ICMP:
		return binary.BigEndian.Uint16(l4[2:])
	case TCP:
		return binary.BigEndian.Uint16(l4[16:])
	default:
		return binary.BigEndian.Uint16(l4[6:])
	}
}

// udpPayload is the DNS identity query (message ID = tag) for port 53 and
// a magic + tag payload otherwise.
func udpPayload(f Flow, tag uint16, qname string) ([]byte, error) {
	if f.Dst.Port() == 53 {
		if qname == "" {
			qname = measure.NameHostnameBind
		}
		b, err := measure.NewQuery(qname, tag).Pack()
		if err != nil {
			return nil, fmt.Errorf("build probe: pack DNS query %q: %w", qname, err)
		}
		return b, nil
	}
	b := make([]byte, len(payloadMagic)+2)
	copy(b, payloadMagic[:])
	binary.BigEndian.PutUint16(b[len(payloadMagic):], tag)
	return b, nil
}

// transportChecksum is the Internet checksum of l4 (its checksum field
// zero) including the pseudo-header; ICMPv4 has none.
func transportChecksum(f Flow, proto byte, l4 []byte) uint16 {
	var sum uint32
	if proto != protoICMP {
		sum = pseudoSum(f.Src.Addr(), f.Dst.Addr(), proto, len(l4))
	}
	return checksum(l4, sum)
}

func pseudoSum(src, dst netip.Addr, proto byte, length int) uint32 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		add(s[:])
		add(d[:])
	} else {
		s, d := src.As16(), dst.As16()
		add(s[:])
		add(d[:])
	}
	sum += uint32(proto) + uint32(length)
	return sum
}

// checksum is the RFC 1071 Internet checksum of b, starting from a partial
// sum (the pseudo-header).
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
