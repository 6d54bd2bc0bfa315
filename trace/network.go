package trace

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrPermission is wrapped by errors caused by missing privilege (no
// CAP_NET_RAW for raw sockets, ping sockets outside
// net.ipv4.ping_group_range). errors.Is(err, ErrPermission) lets the CLI
// exit 4 with its setcap hint.
var ErrPermission = errors.New("permission denied")

// permError is a failure caused by missing privilege; it is both the
// system's error and ErrPermission, and reads as the system's error.
type permError struct {
	what string
	err  error
}

func (e *permError) Error() string   { return e.what + ": " + e.err.Error() }
func (e *permError) Unwrap() []error { return []error{ErrPermission, e.err} }

// Network opens the sockets of one flow. The host implementation is
// HostNetwork; tests inject fakes.
type Network interface {
	// Open prepares sending f's probes and receiving their replies in the
	// given mode (ModeAuto lets the implementation choose). The returned
	// Conn reports the mode it actually uses.
	Open(ctx context.Context, f Flow, mode Mode) (Conn, error)
}

// Conn is the socket seam of one flow.
type Conn interface {
	// Mode is ModeRaw or ModeSocket: what this Conn really does.
	Mode() Mode
	// Flow is the flow with what Open chose filled in: the source address
	// (routing's choice when none was given) and the source port or ICMP
	// identifier (a free one when 0 was asked).
	Flow() Flow
	// Send transmits p (raw: p.Packet as is; socket: p.SocketPayload()
	// with the TTL set on the socket) and returns when it left.
	Send(p Probe) (time.Time, error)
	// Recv blocks until a packet arrives that may answer a probe, or the
	// Conn is closed (then it returns an error).
	Recv() (Packet, error)
	Close() error
}

// Source says how a received Packet reached us, which decides how its bytes
// are read.
type Source int

const (
	// FromICMP: a raw ICMP socket. IPv4 Data is the whole IP packet;
	// IPv6 Data is the ICMPv6 message (the kernel strips the header), with
	// From and TTL taken from the socket address and IPV6_HOPLIMIT.
	FromICMP Source = iota + 1
	// FromTCP: a raw TCP socket, same layout rules as FromICMP.
	FromTCP
	// FromUDP: a UDP socket bound to the flow's source port: Data is the
	// UDP payload, From the sender.
	FromUDP
	// FromErrQueue: socket mode's IP_RECVERR error queue: Data is the
	// original payload of our probe (the kernel strips the quoted
	// headers), Err describes the ICMP error, From is the offender.
	FromErrQueue
	// FromPing: a ping socket (socket-mode ICMP): Data is the ICMP
	// message without IP header.
	FromPing
)

// Packet is one received datagram as the socket layer delivers it, before
// parsing. Everything in it is untrusted.
type Packet struct {
	Source Source
	V6     bool
	// Proto is the flow protocol of the socket for FromErrQueue (the
	// error queue's payload does not say); ignored otherwise.
	Proto Protocol
	Data  []byte
	From  netip.AddrPort // sender when the socket layer knows it (IPv6 raw, UDP, ping)
	TTL   int            // TTL / hop limit from ancillary data; -1 when unknown
	At    time.Time      // receive time
	// Err is set for FromErrQueue.
	Err *SockErr
	// OrigDst, for FromErrQueue, is the destination of the datagram the
	// error is about, as the kernel read it from the quoted header
	// (msg_name of the error-queue read; port 0 for ping sockets).
	OrigDst netip.AddrPort
}

// SockErr is the kernel's sock_extended_err for an ICMP error.
type SockErr struct {
	Type, Code uint8
	Offender   netip.Addr
}
