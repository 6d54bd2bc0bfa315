package trace

// matcher ties observations to the probes of one flow that were sent. It
// accepts only replies naming our destination, protocol, ports and a tag we
// used; everything else (other programs, another tracer to the same
// destination, stale or spoofed packets) is dropped.
type matcher struct {
	flow       Flow
	sent       map[uint16]Probe  // by tag
	byChecksum map[uint16]uint16 // UDP: transport checksum → tag
}

func newMatcher(f Flow) *matcher {
	return &matcher{flow: f, sent: map[uint16]Probe{}, byChecksum: map[uint16]uint16{}}
}

// add records a sent probe.
func (m *matcher) add(p Probe) {
	m.sent[p.Tag] = p
	if p.Proto == UDP {
		m.byChecksum[p.Checksum] = p.Tag
	}
}

// match returns the tag of the probe o answers, and whether the quoted
// header shows the probe was rewritten on the way (NAT).
func (m *matcher) match(o observation) (tag uint16, nat bool, ok bool) {
	f := m.flow
	if o.Proto != f.Proto {
		return 0, false, false
	}
	if o.Quote {
		tag, nat, ok := m.matchQuote(o)
		// A quote long enough to hold the payload's tag (the DNS message
		// ID, the magic payload's tag) must name the same probe as the
		// header fields: a forged error cannot borrow a probe's IPv4 ID
		// or checksum while quoting another query.
		if ok && o.HasPayloadTag && o.PayloadTag != tag {
			return 0, false, false
		}
		return tag, nat, ok
	}
	switch o.Kind {
	case ReplyTimeExceeded, ReplyUnreachable:
		// Error-queue reports (socket mode): the kernel tied the error to
		// our socket by our source port alone, so it must also name our
		// destination (address and port, as the kernel read them from the
		// quote); the payload tag then names the probe.
		if o.Dst != f.Dst {
			return 0, false, false
		}
		switch {
		case f.Proto == UDP && o.HasPayloadTag:
			return m.known(o.PayloadTag)
		case f.Proto == ICMP && o.HasSeq:
			return m.known(uint16(o.Seq))
		}
		return 0, false, false
	case ReplyDNS, ReplyUDP:
		if o.Dst != f.Dst || !o.HasPayloadTag {
			return 0, false, false
		}
		if (f.Dst.Port() == 53) != (o.Kind == ReplyDNS) {
			return 0, false, false
		}
		return m.known(o.PayloadTag)
	case ReplyEcho:
		if o.From != f.Dst.Addr() || o.Src.Port() != f.Src.Port() || !o.HasSeq || o.Seq > 0xffff {
			return 0, false, false
		}
		return m.known(uint16(o.Seq))
	case ReplySynAck, ReplyRST, ReplyACK:
		if o.Dst != f.Dst || o.Src.Port() != f.Src.Port() || !o.HasSeq {
			return 0, false, false
		}
		if o.Src.Addr().IsValid() && o.Src.Addr() != f.Src.Addr() {
			return 0, false, false
		}
		t := uint16(o.Seq >> 16)
		if p, ok := m.sent[t]; ok && tcpSeq(f, p.Tag) == o.Seq {
			return t, false, true
		}
	}
	return 0, false, false
}

func (m *matcher) known(tag uint16) (uint16, bool, bool) {
	_, ok := m.sent[tag]
	return tag, false, ok
}

// matchQuote matches an ICMP error by the probe header it quotes.
func (m *matcher) matchQuote(o observation) (uint16, bool, bool) {
	f := m.flow
	if o.Dst.Addr() != f.Dst.Addr() {
		return 0, false, false
	}
	if f.Proto != ICMP && o.Dst.Port() != f.Dst.Port() {
		return 0, false, false
	}
	// The primary tag needs the quoted source to be exactly ours.
	if o.Src == f.Src {
		switch f.Proto {
		case UDP:
			if t, ok := m.byChecksum[o.Checksum]; ok && o.HasChecksum {
				return t, false, true
			}
		case ICMP:
			if p, ok := m.sent[uint16(o.Seq)]; ok && o.HasSeq && o.Seq <= 0xffff {
				return p.Tag, o.HasChecksum && o.Checksum != p.Checksum, true
			}
		case TCP:
			if p, ok := m.sent[uint16(o.Seq>>16)]; ok && o.HasSeq && tcpSeq(f, p.Tag) == o.Seq {
				return p.Tag, false, true
			}
		}
	} else if o.Src.Addr() == f.Src.Addr() {
		// Our address with another port or identifier: another tracer on
		// this host (a NAT rewriting only the port is indistinguishable
		// from it, so such replies are not ours to claim).
		return 0, false, false
	}
	// The probe was rewritten on the way (source address, or checksum via
	// a payload change): the second copies of the tag still name it. A
	// rewritten flow is flagged as NAT.
	if o.HasPayloadTag {
		if p, ok := m.sent[o.PayloadTag]; ok && (!o.HasIPID || o.IPID == p.Tag) {
			return p.Tag, true, true
		}
	}
	if o.HasIPID {
		if p, ok := m.sent[o.IPID]; ok && (f.Proto != ICMP || uint16(o.Seq) == p.Tag) {
			return p.Tag, true, true
		}
	}
	return 0, false, false
}
