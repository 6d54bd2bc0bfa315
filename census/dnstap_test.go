package census

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"google.golang.org/protobuf/proto"
)

// tapMsg is a dnstap message for fixtures, built with the dnstap
// project's own generated types, so the decoder is checked against the
// reference encoding.
type tapMsg struct {
	typ      dnstap.Message_Type
	identity string
	client   netip.AddrPort
	server   netip.Addr
	tcp      bool
	qtime    time.Time // zero: no query_time
	rtime    time.Time // zero: no response_time
}

func (m tapMsg) marshal(t testing.TB) []byte {
	t.Helper()
	fam, proto6 := dnstap.SocketFamily_INET, dnstap.SocketProtocol_UDP
	if m.client.Addr().Is6() {
		fam = dnstap.SocketFamily_INET6
	}
	if m.tcp {
		proto6 = dnstap.SocketProtocol_TCP
	}
	msg := &dnstap.Message{
		Type:           m.typ.Enum(),
		SocketFamily:   fam.Enum(),
		SocketProtocol: proto6.Enum(),
		QueryAddress:   m.client.Addr().AsSlice(),
		QueryPort:      proto.Uint32(uint32(m.client.Port())),
		QueryMessage:   []byte{0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1},
	}
	if m.server.IsValid() {
		msg.ResponseAddress = m.server.AsSlice()
		msg.ResponsePort = proto.Uint32(53)
	}
	if !m.qtime.IsZero() {
		msg.QueryTimeSec = proto.Uint64(uint64(m.qtime.Unix()))
		msg.QueryTimeNsec = proto.Uint32(uint32(m.qtime.Nanosecond()))
	}
	if !m.rtime.IsZero() {
		msg.ResponseTimeSec = proto.Uint64(uint64(m.rtime.Unix()))
		msg.ResponseTimeNsec = proto.Uint32(uint32(m.rtime.Nanosecond()))
	}
	d := &dnstap.Dnstap{Type: dnstap.Dnstap_MESSAGE.Enum(), Message: msg, Version: []byte("nsd 4.6.1")}
	if m.identity != "" {
		d.Identity = []byte(m.identity)
	}
	b, err := proto.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseDnstap(t *testing.T) {
	when := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	c4 := netip.MustParseAddrPort("198.51.100.10:40000")
	c6 := netip.MustParseAddrPort("[2001:db8:100:1::10]:40001")
	svc := netip.MustParseAddr("192.0.2.53")
	for _, tc := range []struct {
		name string
		msg  tapMsg
		want DnstapMessage
		err  error
	}{
		{"auth query", tapMsg{typ: dnstap.Message_AUTH_QUERY, identity: "i1", client: c4, server: svc, qtime: when},
			DnstapMessage{Type: DnstapAuthQuery, Time: when, Client: c4, Server: svc, Identity: []byte("i1")}, nil},
		{"auth response, IPv6, TCP, response time only", tapMsg{typ: dnstap.Message_AUTH_RESPONSE, client: c6, tcp: true, rtime: when},
			DnstapMessage{Type: DnstapAuthResponse, Time: when, Client: c6, TCP: true}, nil},
		{"resolver's client query", tapMsg{typ: dnstap.Message_CLIENT_QUERY, client: c4, qtime: when},
			DnstapMessage{Type: DnstapClientQuery, Time: when, Client: c4}, nil},
		{"the server's own query", tapMsg{typ: dnstap.Message_RESOLVER_QUERY, client: c4, qtime: when}, DnstapMessage{}, ErrNotClientTraffic},
		{"no time", tapMsg{typ: dnstap.Message_AUTH_QUERY, client: c4}, DnstapMessage{}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDnstap(tc.msg.marshal(t))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tc.want.Type || !got.Time.Equal(tc.want.Time) || got.Client != tc.want.Client ||
				got.Server != tc.want.Server || got.TCP != tc.want.TCP || !bytes.Equal(got.Identity, tc.want.Identity) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseDnstapBroken(t *testing.T) {
	good := tapMsg{typ: dnstap.Message_AUTH_QUERY, client: netip.MustParseAddrPort("198.51.100.10:1"), qtime: t0}.marshal(t)
	for name, frame := range map[string][]byte{
		"empty":                {},
		"cut short":            good[:len(good)-3],
		"garbage":              []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
		"unknown type":         mustMarshal(t, &dnstap.Dnstap{Type: dnstap.Dnstap_MESSAGE.Enum(), Message: &dnstap.Message{Type: dnstap.Message_Type(99).Enum()}}),
		"no message":           mustMarshal(t, &dnstap.Dnstap{Type: dnstap.Dnstap_MESSAGE.Enum()}),
		"address of 5 bytes":   mustMarshal(t, &dnstap.Dnstap{Type: dnstap.Dnstap_MESSAGE.Enum(), Message: &dnstap.Message{Type: dnstap.Message_AUTH_QUERY.Enum(), QueryAddress: []byte{1, 2, 3, 4, 5}, QueryTimeSec: proto.Uint64(1)}}),
		"nanoseconds too many": mustMarshal(t, &dnstap.Dnstap{Type: dnstap.Dnstap_MESSAGE.Enum(), Message: &dnstap.Message{Type: dnstap.Message_AUTH_QUERY.Enum(), QueryAddress: []byte{1, 2, 3, 4}, QueryTimeSec: proto.Uint64(1), QueryTimeNsec: proto.Uint32(2e9)}}),
	} {
		if _, err := ParseDnstap(frame); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParseDnstap: any bytes; where the reference decoder (protobuf's)
// reads a client-traffic message with a valid address and time, ours
// must read the same.
func FuzzParseDnstap(f *testing.F) {
	f.Add(tapMsg{typ: dnstap.Message_AUTH_QUERY, identity: "i1", client: netip.MustParseAddrPort("198.51.100.10:40000"), qtime: t0}.marshal(f))
	f.Add(tapMsg{typ: dnstap.Message_CLIENT_RESPONSE, client: netip.MustParseAddrPort("[2001:db8::1]:53"), tcp: true, rtime: t0}.marshal(f))
	f.Add([]byte{0x78, 0x01, 0x72, 0x00})
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, err := ParseDnstap(frame)
		var ref dnstap.Dnstap
		if proto.Unmarshal(frame, &ref) != nil {
			return
		}
		if err != nil {
			return // we may refuse more (no time, odd address sizes)
		}
		if ref.GetType() != dnstap.Dnstap_MESSAGE || ref.Message == nil {
			t.Fatalf("accepted a frame the reference decoder reads as %v", &ref)
		}
		m := ref.Message
		if DnstapType(m.GetType()) != got.Type {
			t.Fatalf("type %v, reference %v", got.Type, m.GetType())
		}
		if want, _ := addrFrom(m.GetQueryAddress()); got.Client.Addr() != want || uint32(got.Client.Port()) != m.GetQueryPort() {
			t.Fatalf("client %v, reference %v port %d", got.Client, want, m.GetQueryPort())
		}
		if !bytes.Equal(got.Identity, ref.GetIdentity()) {
			t.Fatalf("identity %q, reference %q", got.Identity, ref.GetIdentity())
		}
	})
}
