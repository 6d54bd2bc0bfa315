package census

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"
)

// dnsQuery is a real query's bytes (CH TXT hostname.bind, RD clear).
func dnsQuery(t testing.TB, response bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.Id = 0x1234
	m.Question = []dns.Question{{Name: "hostname.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}
	if response {
		m.Response = true
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "hostname.bind.", Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: []string{"i1.lab-a"}}}
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ipPacket builds IP + UDP/TCP + payload from src to dst with gopacket.
func ipPacket(t testing.TB, src, dst netip.AddrPort, tcp bool, payload []byte) []byte {
	t.Helper()
	var ip gopacket.NetworkLayer
	var proto layers.IPProtocol = layers.IPProtocolUDP
	if tcp {
		proto = layers.IPProtocolTCP
	}
	if src.Addr().Is4() {
		ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
	} else {
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
	}
	var l4 gopacket.SerializableLayer
	if tcp {
		framed := binary.BigEndian.AppendUint16(nil, uint16(len(payload)))
		payload = append(framed, payload...)
		tl := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), PSH: true, ACK: true, Window: 512}
		tl.SetNetworkLayerForChecksum(ip)
		l4 = tl
	} else {
		ul := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
		ul.SetNetworkLayerForChecksum(ip)
		l4 = ul
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip.(gopacket.SerializableLayer), l4, gopacket.Payload(payload))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func etherType(ip []byte) uint16 {
	if ip[0]>>4 == 6 {
		return 0x86dd
	}
	return 0x0800
}

// frame puts an IP packet in the link layer of the given link type. The
// link headers are written out byte by byte, as the formats define them.
func frame(link uint32, ip []byte) []byte {
	var h []byte
	switch link {
	case LinkEthernet:
		h = []byte{
			0x02, 0, 0, 0, 0, 0x02, // destination MAC
			0x02, 0, 0, 0, 0, 0x01, // source MAC
			0x81, 0x00, 0x00, 0x2a, // 802.1Q tag, VLAN 42
		}
		h = binary.BigEndian.AppendUint16(h, etherType(ip))
	case LinkLinuxSLL:
		h = []byte{
			0x00, 0x00, // packet type: to us
			0x00, 0x01, // ARPHRD_ETHER
			0x00, 0x06, // link-layer address length
			0x02, 0, 0, 0, 0, 0x01, 0, 0, // address, padded to 8
		}
		h = binary.BigEndian.AppendUint16(h, etherType(ip))
	case LinkLinuxSLL2:
		h = binary.BigEndian.AppendUint16(nil, etherType(ip)) // protocol
		h = append(h,
			0x00, 0x00, // reserved
			0x00, 0x00, 0x00, 0x07, // interface index
			0x00, 0x01, // ARPHRD_ETHER
			0x00,                         // packet type: to us
			0x06,                         // address length
			0x02, 0, 0, 0, 0, 0x01, 0, 0, // address, padded to 8
		)
	case LinkNull:
		fam := uint32(2) // AF_INET, host byte order (little endian here)
		if ip[0]>>4 == 6 {
			fam = 30 // AF_INET6 on macOS
		}
		h = binary.LittleEndian.AppendUint32(nil, fam)
	case LinkRaw, LinkIPv4, LinkIPv6:
	}
	return append(h, ip...)
}

func TestPacketDecode(t *testing.T) {
	c4, s4 := netip.MustParseAddrPort("198.51.100.10:40000"), netip.MustParseAddrPort("192.0.2.53:53")
	c6, s6 := netip.MustParseAddrPort("[2001:db8:100:1::10]:40001"), netip.MustParseAddrPort("[2001:db8:53::53]:53")
	q := dnsQuery(t, false)
	for _, link := range []uint32{LinkEthernet, LinkLinuxSLL, LinkLinuxSLL2, LinkNull, LinkRaw} {
		dec, err := NewPacketDecoder(link)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name     string
			src, dst netip.AddrPort
			tcp      bool
		}{{"udp4", c4, s4, false}, {"udp6", c6, s6, false}, {"tcp4", c4, s4, true}, {"tcp6", c6, s6, true}} {
			p, err := dec.Decode(frame(link, ipPacket(t, tc.src, tc.dst, tc.tcp, q)))
			if err != nil {
				t.Fatalf("link %d %s: %v", link, tc.name, err)
			}
			if p.Src != tc.src || p.Dst != tc.dst || p.TCP != tc.tcp || !p.Query() || p.Response() {
				t.Errorf("link %d %s: %+v", link, tc.name, p)
			}
		}
		resp, err := dec.Decode(frame(link, ipPacket(t, s4, c4, false, dnsQuery(t, true))))
		if err != nil || !resp.Response() || resp.Query() {
			t.Errorf("link %d response: %+v %v", link, resp, err)
		}
	}
	if _, err := NewPacketDecoder(105); !errors.Is(err, ErrUnsupportedLink) {
		t.Errorf("802.11: %v, want ErrUnsupportedLink", err)
	}
}

func TestPacketDecodeOthers(t *testing.T) {
	dec, _ := NewPacketDecoder(LinkEthernet)
	c4, s4 := netip.MustParseAddrPort("198.51.100.10:40000"), netip.MustParseAddrPort("192.0.2.53:53")
	ip := ipPacket(t, c4, s4, false, dnsQuery(t, false))
	for name, tc := range map[string]struct {
		pkt []byte
		err error
	}{
		"another port":     {frame(LinkEthernet, ipPacket(t, c4, netip.MustParseAddrPort("192.0.2.53:123"), false, []byte("ntp ntp ntp ntp"))), ErrNotDNS},
		"tcp without data": {frame(LinkEthernet, ipPacket(t, c4, s4, true, nil)[:40]), ErrNotDNS},
		"cut in the udp":   {frame(LinkEthernet, ip[:24]), ErrMalformed},
		"short dns":        {frame(LinkEthernet, ipPacket(t, c4, s4, false, []byte{1, 2, 3})), ErrMalformed},
		"arp":              {append(frame(LinkEthernet, []byte{0x45})[:12], 0x08, 0x06, 0, 1), ErrNotDNS},
		"empty":            {nil, ErrMalformed},
	} {
		if _, err := dec.Decode(tc.pkt); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", name, err, tc.err)
		}
	}
	// A fragment is no DNS message of its own (IPv4: MF set).
	frag := frame(LinkEthernet, ip)
	frag[18+6] |= 0x20
	if _, err := dec.Decode(frag); !errors.Is(err, ErrNotDNS) {
		t.Errorf("fragment: %v, want ErrNotDNS", err)
	}
}

func FuzzDecodePacket(f *testing.F) {
	c4, s4 := netip.MustParseAddrPort("198.51.100.10:40000"), netip.MustParseAddrPort("192.0.2.53:53")
	c6, s6 := netip.MustParseAddrPort("[2001:db8::10]:40001"), netip.MustParseAddrPort("[2001:db8:53::53]:53")
	for _, link := range []uint32{LinkEthernet, LinkLinuxSLL, LinkLinuxSLL2, LinkNull, LinkRaw} {
		f.Add(link, frame(link, ipPacket(f, c4, s4, false, dnsQuery(f, false))))
		f.Add(link, frame(link, ipPacket(f, c6, s6, true, dnsQuery(f, false))))
	}
	f.Fuzz(func(t *testing.T, link uint32, data []byte) {
		dec, err := NewPacketDecoder(link)
		if err != nil {
			return
		}
		p, err := dec.Decode(data)
		if err != nil {
			return
		}
		if !p.Src.IsValid() || !p.Dst.IsValid() || (p.Src.Port() != 53 && p.Dst.Port() != 53) || len(p.DNS) < dnsHeaderLen {
			t.Fatalf("accepted %+v", p)
		}
	})
}
