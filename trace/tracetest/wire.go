package tracetest

import (
	"encoding/binary"
	"net/netip"

	"github.com/anycheck/anycheck/measure"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/anycheck/anycheck/trace"
)

// Wire constants (RFC 791, 792, 793, 4443).
const (
	protoICMP = 1
	protoTCP  = 6

	icmp4Unreachable  = 3
	icmp4TimeExceeded = 11
	icmp4PortUnreach  = 3
	icmp4EchoReply    = 0
	icmp6Unreachable  = 1
	icmp6TimeExceeded = 3
	icmp6PortUnreach  = 4
	icmp6EchoReply    = 129

	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// ipv4Packet wraps payload in an IPv4 header (checksum left 0: a raw
// socket's reader sees packets the kernel already verified).
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

// quote is what a router quotes of a probe: the whole packet as it
// arrived, with TTL 1.
func quote(p trace.Probe) []byte {
	q := append([]byte(nil), p.Packet...)
	if p.L4 == 20 {
		q[8] = 1
	} else {
		q[7] = 1
	}
	return q
}

// rewriteSource is p with its source address changed on the way.
func rewriteSource(p trace.Probe, v6 bool) trace.Probe {
	q := p
	q.Packet = append([]byte(nil), p.Packet...)
	if v6 {
		q.Packet[23] ^= 0xff
	} else {
		q.Packet[15] ^= 0xff
	}
	return q
}

// icmpError is an ICMP(v6) error quoting q, with an RFC 4884 extension
// carrying the RFC 4950 label stack when labels are given.
func icmpError(v6 bool, typ, code int, q []byte, labels []measure.MPLSLabel) []byte {
	var ext []icmp.Extension
	if labels != nil {
		ls := &icmp.MPLSLabelStack{Class: 1, Type: 1}
		for _, l := range labels {
			ls.Labels = append(ls.Labels, icmp.MPLSLabel{Label: int(l.Label), TC: int(l.TC), S: l.S, TTL: int(l.TTL)})
		}
		ext = []icmp.Extension{ls}
	}
	body := icmp.MessageBody(&icmp.TimeExceeded{Data: q, Extensions: ext})
	if (v6 && typ == icmp6Unreachable) || (!v6 && typ == icmp4Unreachable) {
		body = &icmp.DstUnreach{Data: q, Extensions: ext}
	}
	m := icmp.Message{Type: ipv4.ICMPType(typ), Code: code, Body: body}
	if v6 {
		m.Type = ipv6.ICMPType(typ)
	}
	b, err := m.Marshal(nil)
	if err != nil {
		panic(err)
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

// echoReply is the destination's answer to an echo request probe.
func echoReply(v6 bool, p trace.Probe) []byte {
	b := append([]byte(nil), p.Transport()...)
	b[0] = icmp4EchoReply
	if v6 {
		b[0] = icmp6EchoReply
	}
	return b
}
