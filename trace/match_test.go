package trace

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// rewrite edits a copy of a probe as something on the path would.
func rewrite(p Probe, edit func(b []byte)) Probe {
	q := p
	q.Packet = append([]byte(nil), p.Packet...)
	edit(q.Packet)
	return q
}

// errQueue is socket mode's report of an ICMP error about p, the kernel
// naming the quoted destination dst.
func errQueue(dst netip.AddrPort, p Probe, from netip.Addr) Packet {
	return Packet{Source: FromErrQueue, Proto: p.Proto, Data: p.SocketPayload(), OrigDst: dst, Err: &SockErr{Type: 11, Offender: from}}
}

func TestMatch(t *testing.T) {
	u4 := testFlow(UDP, false, 53)
	i4 := testFlow(ICMP, false, 0)
	t4 := testFlow(TCP, false, 443)
	u6 := testFlow(UDP, true, 53)
	pu4 := mustProbe(t, u4, 3, 0x1234)
	pu6 := mustProbe(t, u6, 3, 0x1234)
	pi4 := mustProbe(t, i4, 3, 0x0042)
	pt4 := mustProbe(t, t4, 3, 0x0a0b)

	// Another tracer on this host to the same destination: same address,
	// another source port, and (by bad luck) the same tag.
	otherTracer := mustProbe(t, Flow{Proto: UDP, Src: netip.AddrPortFrom(src4, 40000), Dst: u4.Dst}, 3, 0x1234)
	otherDst := mustProbe(t, Flow{Proto: UDP, Src: u4.Src, Dst: netip.AddrPortFrom(netip.MustParseAddr("203.0.113.9"), 53)}, 3, 0x1234)
	otherPort := mustProbe(t, Flow{Proto: UDP, Src: u4.Src, Dst: netip.AddrPortFrom(dst4, 54)}, 3, 0x1234)
	unknownTag := mustProbe(t, u4, 3, 0x4321)
	// A NAT on the path: source address and port rewritten, checksum
	// updated; the IPv4 ID (and the DNS ID in a long quote) still name it.
	natted := rewrite(pu4, func(b []byte) {
		copy(b[12:16], []byte{203, 0, 113, 77})
		binary.BigEndian.PutUint16(b[20:], 61000)
		binary.BigEndian.PutUint16(b[26:], 0xbeef)
	})
	// Something rewrote the payload (checksum) but not the addresses.
	mangled := rewrite(pu4, func(b []byte) { binary.BigEndian.PutUint16(b[26:], 0xbeef) })
	otherIdent := mustProbe(t, Flow{Proto: ICMP, Src: netip.AddrPortFrom(src4, 999), Dst: i4.Dst}, 3, 0x0042)
	icmpNat := rewrite(pi4, func(b []byte) { binary.BigEndian.PutUint16(b[22:], 0x1111) })

	// Right source, right IPv4 ID, but the payload (DNS ID 0x4321) and
	// checksum of a query we did not send with that ID.
	forgedID := rewrite(unknownTag, func(b []byte) {
		binary.BigEndian.PutUint16(b[4:], 0x1234)
		binary.BigEndian.PutUint16(b[26:], 0xbeef)
	})
	natForged := rewrite(forgedID, func(b []byte) { copy(b[12:16], []byte{203, 0, 113, 77}) })

	te := func(p Probe, n int) Packet {
		v6 := p.L4 == ipv6HeaderLen
		if v6 {
			return Packet{Source: FromICMP, V6: true, Data: icmpError(true, 3, 0, quoteOf(p, n), nil), From: netip.AddrPortFrom(router6, 0)}
		}
		return Packet{Source: FromICMP, Data: ipv4Packet(router4, src4, protoICMP, 250, 1, icmpError(false, 11, 0, quoteOf(p, n), nil))}
	}
	dnsFrom := func(from netip.AddrPort, id uint16) Packet {
		return Packet{Source: FromUDP, Data: dnsAnswer(t, id), From: from}
	}
	cases := []struct {
		name    string
		flow    Flow
		sent    []Probe
		pkt     Packet
		wantTag uint16
		wantNAT bool
		wantOK  bool
	}{
		{"udp quote", u4, []Probe{pu4}, te(pu4, -1), 0x1234, false, true},
		{"udp quote, 8 bytes", u4, []Probe{pu4}, te(pu4, 8), 0x1234, false, true},
		{"udp v6 quote", u6, []Probe{pu6}, te(pu6, 8), 0x1234, false, true},
		{"another tracer's probe", u4, []Probe{pu4}, te(otherTracer, -1), 0, false, false},
		{"another destination", u4, []Probe{pu4}, te(otherDst, -1), 0, false, false},
		{"another destination port", u4, []Probe{pu4}, te(otherPort, -1), 0, false, false},
		{"a tag never sent", u4, []Probe{pu4}, te(unknownTag, -1), 0, false, false},
		{"nat: rewritten source, tag from ip id", u4, []Probe{pu4}, te(natted, 8), 0x1234, true, true},
		{"nat: rewritten source, long quote", u4, []Probe{pu4}, te(natted, -1), 0x1234, true, true},
		{"checksum rewritten", u4, []Probe{pu4}, te(mangled, -1), 0x1234, true, true},
		{"icmp quote", i4, []Probe{pi4}, te(pi4, 8), 0x0042, false, true},
		{"icmp quote, checksum rewritten", i4, []Probe{pi4}, te(icmpNat, 8), 0x0042, true, true},
		{"icmp quote, another identifier", i4, []Probe{pi4}, te(otherIdent, 8), 0, false, false},
		{"udp error for an icmp flow", i4, []Probe{pi4}, te(pu4, 8), 0, false, false},
		{"tcp quote", t4, []Probe{pt4}, te(pt4, 8), 0x0a0b, false, true},
		{"dns answer", u4, []Probe{pu4}, dnsFrom(u4.Dst, 0x1234), 0x1234, false, true},
		{"dns answer from another address", u4, []Probe{pu4}, dnsFrom(netip.AddrPortFrom(router4, 53), 0x1234), 0, false, false},
		{"dns answer from another port", u4, []Probe{pu4}, dnsFrom(netip.AddrPortFrom(dst4, 5353), 0x1234), 0, false, false},
		{"dns answer with a wrong id", u4, []Probe{pu4}, dnsFrom(u4.Dst, 0x1235), 0, false, false},
		{"echo reply", i4, []Probe{pi4}, Packet{Source: FromICMP, Data: ipv4Packet(dst4, src4, protoICMP, 60, 1, echoReply(false, pi4))}, 0x0042, false, true},
		{"echo reply to another identifier", i4, []Probe{pi4}, Packet{Source: FromICMP, Data: ipv4Packet(dst4, src4, protoICMP, 60, 1, echoReply(false, otherIdent))}, 0, false, false},
		{"echo reply from another host", i4, []Probe{pi4}, Packet{Source: FromICMP, Data: ipv4Packet(router4, src4, protoICMP, 60, 1, echoReply(false, pi4))}, 0, false, false},
		{"syn-ack", t4, []Probe{pt4}, Packet{Source: FromTCP, Data: ipv4Packet(dst4, src4, protoTCP, 60, 1, tcpSegment(443, 33512, 5, tcpSeq(t4, 0x0a0b)+1, 0x12))}, 0x0a0b, false, true},
		{"syn-ack acking another sequence", t4, []Probe{pt4}, Packet{Source: FromTCP, Data: ipv4Packet(dst4, src4, protoTCP, 60, 1, tcpSegment(443, 33512, 5, tcpSeq(t4, 0x0a0b)+2, 0x12))}, 0, false, false},
		{"challenge ack names the probe it acknowledges", t4, []Probe{pt4}, Packet{Source: FromTCP, Data: ipv4Packet(dst4, src4, protoTCP, 60, 1, tcpSegment(443, 33512, 5, tcpSeq(t4, 0x0a0b)+1, 0x10))}, 0x0a0b, false, true},
		{"challenge ack from another host", t4, []Probe{pt4}, Packet{Source: FromTCP, Data: ipv4Packet(router4, src4, protoTCP, 60, 1, tcpSegment(443, 33512, 5, tcpSeq(t4, 0x0a0b)+1, 0x10))}, 0, false, false},
		{"syn-ack to another port", t4, []Probe{pt4}, Packet{Source: FromTCP, Data: ipv4Packet(dst4, src4, protoTCP, 60, 1, tcpSegment(443, 40000, 5, tcpSeq(t4, 0x0a0b)+1, 0x12))}, 0, false, false},
		{"error queue udp", u4, []Probe{pu4}, errQueue(u4.Dst, pu4, router4), 0x1234, false, true},
		{"error queue udp, unknown id", u4, []Probe{pu4}, errQueue(u4.Dst, unknownTag, router4), 0, false, false},
		// A forged error quoting our source port and a tag we sent, but
		// another destination: the kernel queues it on our socket all the
		// same, and reports the quoted destination with it.
		{"error queue udp, another destination", u4, []Probe{pu4}, errQueue(netip.AddrPortFrom(netip.MustParseAddr("203.0.113.9"), 53), pu4, router4), 0, false, false},
		{"error queue udp, another destination port", u4, []Probe{pu4}, errQueue(netip.AddrPortFrom(dst4, 54), pu4, router4), 0, false, false},
		{"error queue udp, destination unknown", u4, []Probe{pu4}, errQueue(netip.AddrPort{}, pu4, router4), 0, false, false},
		{"error queue ping", i4, []Probe{pi4}, Packet{Source: FromErrQueue, Proto: ICMP, Data: pi4.SocketPayload(), OrigDst: i4.Dst, Err: &SockErr{Type: 11, Offender: router4}}, 0x0042, false, true},
		{"error queue ping, another destination", i4, []Probe{pi4}, Packet{Source: FromErrQueue, Proto: ICMP, Data: pi4.SocketPayload(), OrigDst: netip.AddrPortFrom(router4, 0), Err: &SockErr{Type: 11, Offender: router4}}, 0, false, false},
		// A quote with our exact source and the right IPv4 ID, but a
		// checksum and DNS ID of no probe we sent: not ours, not a NAT.
		{"ip id right, dns id and checksum wrong", u4, []Probe{pu4}, te(forgedID, -1), 0, false, false},
		{"ip id right, dns id of another probe", u4, []Probe{pu4, unknownTag}, te(forgedID, -1), 0, false, false},
		{"rewritten source, ip id and dns id disagree", u4, []Probe{pu4, unknownTag}, te(natForged, -1), 0, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMatcher(c.flow)
			for _, p := range c.sent {
				m.add(p)
			}
			o, err := parseReply(c.pkt)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			tag, nat, ok := m.match(o)
			if ok != c.wantOK || tag != c.wantTag && c.wantOK || nat != c.wantNAT {
				t.Fatalf("match = tag %#x nat %v ok %v, want tag %#x nat %v ok %v", tag, nat, ok, c.wantTag, c.wantNAT, c.wantOK)
			}
		})
	}
}
