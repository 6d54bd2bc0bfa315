package census

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Link types (pcap LINKTYPE_* values) the packet decoder reads: what
// tcpdump writes on Ethernet, on Linux's "any" device (cooked capture, v1
// and v2), on loopback and tunnels.
const (
	LinkNull      uint32 = 0   // BSD loopback: a 4-byte address family
	LinkEthernet  uint32 = 1   // Ethernet, with 802.1Q / QinQ tags
	LinkRaw       uint32 = 101 // raw IPv4 or IPv6
	LinkLoop      uint32 = 108 // OpenBSD loopback
	LinkLinuxSLL  uint32 = 113 // Linux cooked capture v1 (tcpdump -i any)
	LinkIPv4      uint32 = 228
	LinkIPv6      uint32 = 229
	LinkLinuxSLL2 uint32 = 276 // Linux cooked capture v2 (tcpdump -i any, libpcap ≥ 1.10)
	// linkRawBSD are DLT_RAW's values on some systems, written as such by
	// old libpcaps (12 on most BSDs, 14 on OpenBSD).
	linkRawBSD12 uint32 = 12
	linkRawBSD14 uint32 = 14
)

// Packet classification errors, counted by the log reader.
var (
	// ErrNotDNS is a packet that is no DNS message to or from port 53:
	// other traffic in the capture, a TCP segment without data, a fragment.
	ErrNotDNS = errors.New("not a DNS message on port 53")
	// ErrUnsupportedLink is a link type the decoder does not read.
	ErrUnsupportedLink = errors.New("unsupported link type")
)

// Packet is a DNS message to or from port 53 found in a captured packet.
type Packet struct {
	Src, Dst netip.AddrPort
	TCP      bool
	// DNS is the start of the DNS message (over TCP, after the two-byte
	// length). It aliases the packet data.
	DNS []byte
}

// PacketDecoder decodes the packets of one link type. It keeps its layer
// structures between packets (gopacket's DecodingLayerParser), so decoding
// allocates nothing; a decoder is not safe for concurrent use.
type PacketDecoder struct {
	parser     *gopacket.DecodingLayerParser
	raw4, raw6 *gopacket.DecodingLayerParser // raw link: the IP version decides
	eth        layers.Ethernet
	dot1q      layers.Dot1Q
	sll        layers.LinuxSLL
	sll2       layers.LinuxSLL2
	loop       layers.Loopback
	ip4        layers.IPv4
	ip6        layers.IPv6
	ip6ext     layers.IPv6ExtensionSkipper
	ip6frag    layers.IPv6Fragment
	udp        layers.UDP
	tcp        layers.TCP
	decoded    []gopacket.LayerType
}

// NewPacketDecoder returns a decoder for the link type (a pcap LINKTYPE_
// value), or ErrUnsupportedLink.
func NewPacketDecoder(link uint32) (*PacketDecoder, error) {
	d := &PacketDecoder{decoded: make([]gopacket.LayerType, 0, 8)}
	var first gopacket.LayerType
	switch link {
	case LinkEthernet:
		first = layers.LayerTypeEthernet
	case LinkLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case LinkLinuxSLL2:
		first = layers.LayerTypeLinuxSLL2
	case LinkNull, LinkLoop:
		first = layers.LayerTypeLoopback
	case LinkIPv4:
		first = layers.LayerTypeIPv4
	case LinkIPv6:
		first = layers.LayerTypeIPv6
	case LinkRaw, linkRawBSD12, linkRawBSD14:
		d.raw4 = d.newParser(layers.LayerTypeIPv4)
		d.raw6 = d.newParser(layers.LayerTypeIPv6)
		return d, nil
	default:
		return nil, fmt.Errorf("%w %d", ErrUnsupportedLink, link)
	}
	d.parser = d.newParser(first)
	return d, nil
}

func (d *PacketDecoder) newParser(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	// The fragment header is added after the skipper, so it decodes
	// fragments itself: only an atomic fragment leads on to UDP or TCP.
	p := gopacket.NewDecodingLayerParser(first, &d.eth, &d.dot1q, &d.sll, &d.sll2, &d.loop,
		&d.ip4, &d.ip6, &d.ip6ext, &d.ip6frag, &d.udp, &d.tcp)
	p.IgnoreUnsupported = true
	return p
}

// Decode finds the DNS message in one captured packet: UDP or TCP with
// port 53 at either end. Anything else is ErrNotDNS; a packet cut short
// before the DNS header, or whose headers do not parse, is ErrMalformed.
// It never panics (gopacket turns a decoder's panic into an error).
func (d *PacketDecoder) Decode(data []byte) (Packet, error) {
	p := d.parser
	if p == nil {
		if len(data) == 0 {
			return Packet{}, fmt.Errorf("%w: empty packet", ErrMalformed)
		}
		switch data[0] >> 4 {
		case 4:
			p = d.raw4
		case 6:
			p = d.raw6
		default:
			return Packet{}, fmt.Errorf("%w: IP version %d", ErrNotDNS, data[0]>>4)
		}
	}
	if err := p.DecodeLayers(data, &d.decoded); err != nil {
		return Packet{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var src, dst netip.Addr
	var pkt Packet
	var payload []byte
	var sport, dport uint16
	transport := false
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			src, dst = netip.AddrFrom4([4]byte(d.ip4.SrcIP.To4())), netip.AddrFrom4([4]byte(d.ip4.DstIP.To4()))
		case layers.LayerTypeIPv6:
			src, dst = netip.AddrFrom16([16]byte(d.ip6.SrcIP.To16())), netip.AddrFrom16([16]byte(d.ip6.DstIP.To16()))
		case layers.LayerTypeUDP:
			sport, dport, payload, transport = uint16(d.udp.SrcPort), uint16(d.udp.DstPort), d.udp.Payload, true
		case layers.LayerTypeTCP:
			sport, dport, payload, transport = uint16(d.tcp.SrcPort), uint16(d.tcp.DstPort), d.tcp.Payload, true
			pkt.TCP = true
		}
	}
	if !transport || !src.IsValid() || (sport != 53 && dport != 53) {
		return Packet{}, ErrNotDNS
	}
	if pkt.TCP {
		// A segment that starts a DNS message: its two-byte length, then
		// the header. Segments without data (the handshake, ACKs) and
		// continuations are no message of their own.
		if len(payload) == 0 {
			return Packet{}, ErrNotDNS
		}
		if len(payload) < 2 || int(binary.BigEndian.Uint16(payload)) < dnsHeaderLen {
			return Packet{}, fmt.Errorf("%w: TCP segment on port 53 without a DNS length", ErrNotDNS)
		}
		payload = payload[2:]
	}
	if len(payload) < dnsHeaderLen {
		return Packet{}, fmt.Errorf("%w: %d bytes are no DNS header", ErrMalformed, len(payload))
	}
	pkt.Src, pkt.Dst, pkt.DNS = netip.AddrPortFrom(src.Unmap(), sport), netip.AddrPortFrom(dst.Unmap(), dport), payload
	return pkt, nil
}

const dnsHeaderLen = 12

// Query reports whether the DNS message is a query (QR clear) sent to
// port 53, the traffic census counts.
func (p Packet) Query() bool {
	return p.Dst.Port() == 53 && len(p.DNS) >= dnsHeaderLen && p.DNS[2]&0x80 == 0
}

// Response reports whether the DNS message is a response (QR set) sent
// from port 53.
func (p Packet) Response() bool {
	return p.Src.Port() == 53 && len(p.DNS) >= dnsHeaderLen && p.DNS[2]&0x80 != 0
}
