package census

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// DnstapType is a dnstap Message.Type (dnstap.proto).
type DnstapType int32

// The dnstap message types census reads: the traffic between a server and
// its clients. An authoritative server (NSD, Knot, BIND) logs AUTH_*,
// a resolver (Unbound, BIND, Knot Resolver) CLIENT_*.
const (
	DnstapAuthQuery      DnstapType = 1
	DnstapAuthResponse   DnstapType = 2
	DnstapClientQuery    DnstapType = 5
	DnstapClientResponse DnstapType = 6
	// dnstapMaxType is the highest type dnstap.proto defines (UPDATE_RESPONSE).
	dnstapMaxType DnstapType = 14
)

// Errors of the dnstap decoder: the counters of a log name them.
var (
	// ErrMalformed is a frame or packet whose bytes do not parse.
	ErrMalformed = errors.New("malformed")
	// ErrNotClientTraffic is a well-formed dnstap message of another type:
	// the server's own queries (resolver, forwarder, stub, tool), updates.
	ErrNotClientTraffic = errors.New("not client traffic")
	// ErrUnknownType is a dnstap message type dnstap.proto does not define.
	ErrUnknownType = errors.New("unknown message type")
)

// DnstapMessage is what census takes from one dnstap frame.
type DnstapMessage struct {
	Type DnstapType
	// Time is when the server saw the query (query_time), or for a
	// response without one, when it answered (response_time).
	Time time.Time
	// Client is the query's source (query_address, query_port).
	Client netip.AddrPort
	// Server is the address the query was sent to (response_address),
	// invalid when the message does not say.
	Server netip.Addr
	TCP    bool
	// Identity is the server's identity (Dnstap.identity). It aliases the
	// frame: copy it to keep it beyond the frame's life.
	Identity []byte
}

// Query reports whether the message is a client's query (not a response).
func (m DnstapMessage) Query() bool {
	return m.Type == DnstapAuthQuery || m.Type == DnstapClientQuery
}

// dnstap.proto field numbers.
const (
	fDnstapIdentity = 1
	fDnstapMessage  = 14
	fDnstapType     = 15

	fMsgType            = 1
	fMsgSocketProtocol  = 3
	fMsgQueryAddress    = 4
	fMsgResponseAddress = 5
	fMsgQueryPort       = 6
	fMsgQueryTimeSec    = 8
	fMsgQueryTimeNsec   = 9
	fMsgRespTimeSec     = 12
	fMsgRespTimeNsec    = 13

	dnstapTypeMessage = 1 // Dnstap.Type MESSAGE
	socketProtoTCP    = 2 // SocketProtocol TCP (DOT, DOH and others are over TCP too)
	socketProtoDOT    = 3
	socketProtoDOH    = 4
)

// ParseDnstap decodes one dnstap data frame (a protobuf Dnstap message).
// It reads the protobuf wire format field by field (protowire), keeping
// nothing but the fields census needs, and allocates nothing: a log of
// millions of frames is decoded at the speed of reading it. A frame that
// is no Dnstap message is ErrMalformed; a message of another type is
// ErrNotClientTraffic or ErrUnknownType.
func ParseDnstap(frame []byte) (DnstapMessage, error) {
	var m DnstapMessage
	var msg []byte
	var outerType uint64
	haveMsg := false
	err := eachField(frame, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch {
		case num == fDnstapIdentity && typ == protowire.BytesType:
			m.Identity = b
		case num == fDnstapMessage && typ == protowire.BytesType:
			msg, haveMsg = b, true
		case num == fDnstapType && typ == protowire.VarintType:
			outerType = v
		}
		return nil
	})
	if err != nil {
		return DnstapMessage{}, err
	}
	if outerType != dnstapTypeMessage || !haveMsg {
		return DnstapMessage{}, fmt.Errorf("%w: no dnstap message in the frame", ErrMalformed)
	}
	var qaddr, raddr []byte
	var qport uint64
	var qsec, qnsec, rsec, rnsec uint64
	var haveQTime, haveRTime, haveType bool
	err = eachField(msg, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch {
		case num == fMsgType && typ == protowire.VarintType:
			m.Type, haveType = DnstapType(int32(v)), true
		case num == fMsgSocketProtocol && typ == protowire.VarintType:
			m.TCP = v == socketProtoTCP || v == socketProtoDOT || v == socketProtoDOH
		case num == fMsgQueryAddress && typ == protowire.BytesType:
			qaddr = b
		case num == fMsgResponseAddress && typ == protowire.BytesType:
			raddr = b
		case num == fMsgQueryPort && typ == protowire.VarintType:
			qport = v
		case num == fMsgQueryTimeSec && typ == protowire.VarintType:
			qsec, haveQTime = v, true
		case num == fMsgQueryTimeNsec && typ == protowire.Fixed32Type:
			qnsec = v
		case num == fMsgRespTimeSec && typ == protowire.VarintType:
			rsec, haveRTime = v, true
		case num == fMsgRespTimeNsec && typ == protowire.Fixed32Type:
			rnsec = v
		}
		return nil
	})
	if err != nil {
		return DnstapMessage{}, err
	}
	if !haveType {
		return DnstapMessage{}, fmt.Errorf("%w: dnstap message without a type", ErrMalformed)
	}
	switch {
	case m.Type < 1 || m.Type > dnstapMaxType:
		return m, fmt.Errorf("%w %d", ErrUnknownType, m.Type)
	case m.Type != DnstapAuthQuery && m.Type != DnstapAuthResponse && m.Type != DnstapClientQuery && m.Type != DnstapClientResponse:
		return m, ErrNotClientTraffic
	}
	client, ok := addrFrom(qaddr)
	if !ok {
		return DnstapMessage{}, fmt.Errorf("%w: query_address of %d bytes", ErrMalformed, len(qaddr))
	}
	if qport > 65535 {
		return DnstapMessage{}, fmt.Errorf("%w: query_port %d", ErrMalformed, qport)
	}
	m.Client = netip.AddrPortFrom(client, uint16(qport))
	if a, ok := addrFrom(raddr); ok {
		m.Server = a
	}
	switch {
	case haveQTime:
		m.Time, err = unixTime(qsec, qnsec)
	case haveRTime:
		m.Time, err = unixTime(rsec, rnsec)
	default:
		err = fmt.Errorf("%w: dnstap message without a time", ErrMalformed)
	}
	if err != nil {
		return DnstapMessage{}, err
	}
	return m, nil
}

// eachField walks the fields of one protobuf message, calling fn with the
// varint or fixed value or the bytes of each; groups are skipped.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var bs []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			v = uint64(v32)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, bs); err != nil {
			return err
		}
	}
	return nil
}

// addrFrom reads a 4- or 16-byte address (an IPv4-mapped IPv6 address is
// the IPv4 address).
func addrFrom(b []byte) (netip.Addr, bool) {
	switch len(b) {
	case 4:
		return netip.AddrFrom4([4]byte(b)), true
	case 16:
		return netip.AddrFrom16([16]byte(b)).Unmap(), true
	}
	return netip.Addr{}, false
}

// maxUnixSec bounds times read from logs (year 9999): a time beyond it is
// a broken record, not a date to compute with.
const maxUnixSec = 253402300799

func unixTime(sec, nsec uint64) (time.Time, error) {
	if sec > maxUnixSec || nsec >= 1e9 {
		return time.Time{}, fmt.Errorf("%w: time %d.%09d", ErrMalformed, sec, nsec)
	}
	return time.Unix(int64(sec), int64(nsec)).UTC(), nil
}
