package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Unreachable is an ICMP error that came back for a flow's query instead
// of an answer: a port, host or network unreachable, an administrative
// prohibition. On Linux the socket's error queue (IP_RECVERR) says which
// message and who sent it; elsewhere only the socket error is known.
type Unreachable struct {
	From       netip.Addr // the sender; invalid when unknown
	Type, Code int        // ICMP or ICMPv6 type and code; -1 when unknown
	V6         bool
	Err        error // the socket error that reported it
}

func (u *Unreachable) Unwrap() error { return u.Err }

// Error says what came back and from whom: "port unreachable from
// 192.0.2.53", "network unreachable (!N) from 198.51.100.1".
func (u *Unreachable) Error() string {
	what := u.what()
	if u.From.IsValid() {
		return what + " from " + u.From.String()
	}
	return what
}

func (u *Unreachable) what() string {
	if u.Type < 0 {
		switch {
		case errors.Is(u.Err, syscall.ECONNREFUSED):
			return "port unreachable (connection refused)"
		case errors.Is(u.Err, syscall.EHOSTUNREACH):
			return "host unreachable"
		case errors.Is(u.Err, syscall.ENETUNREACH):
			return "network unreachable"
		}
		return "unreachable (" + errDetail(u.Err) + ")"
	}
	if u.V6 {
		switch u.Type {
		case 1:
			switch u.Code {
			case 0:
				return "no route to destination (!N)"
			case 1, 5, 6:
				return "administratively prohibited (!X)"
			case 3:
				return "address unreachable (!H)"
			case 4:
				return "port unreachable"
			}
		case 2:
			return "packet too big"
		case 3:
			return "time exceeded (a routing loop?)"
		}
		return fmt.Sprintf("ICMPv6 type %d code %d", u.Type, u.Code)
	}
	switch u.Type {
	case 3:
		switch u.Code {
		case 0, 6:
			return "network unreachable (!N)"
		case 1, 7:
			return "host unreachable (!H)"
		case 2:
			return "protocol unreachable (!P)"
		case 3:
			return "port unreachable"
		case 4:
			return "fragmentation needed (!F)"
		case 9, 10, 13:
			return "administratively prohibited (!X)"
		}
	case 11:
		return "time exceeded (a routing loop?)"
	case 12:
		return "parameter problem"
	}
	return fmt.Sprintf("ICMP type %d code %d", u.Type, u.Code)
}

// unreachableOf turns the socket error an ICMP message caused on the
// flow's UDP socket c into an *Unreachable, with what the socket's error
// queue holds when it can be read.
// Without that, only the errnos ICMP unreachables give are taken for one.
func unreachableOf(c net.Conn, err error) error {
	if from, typ, code, v6, ok := queuedICMP(c); ok {
		return &Unreachable{From: from, Type: typ, Code: code, V6: v6, Err: err}
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return &Unreachable{Type: -1, Code: -1, Err: err}
	}
	return err
}

// Origins of a sock_extended_err (linux/errqueue.h).
const (
	eeOriginICMP  = 2
	eeOriginICMP6 = 3
	eeLen         = 16 // sizeof(struct sock_extended_err)
)

// parseExtendedErr reads the data of an IP_RECVERR or IPV6_RECVERR control
// message: a struct sock_extended_err (errno, origin, type, code, pad,
// info, data) followed by the offender's socket address. ok is false
// unless it reports an ICMP or ICMPv6 message; from is invalid when no
// offender address is there. b comes from the kernel, in its byte order
// for the address family field.
func parseExtendedErr(b []byte) (from netip.Addr, typ, code int, v6, ok bool) {
	if len(b) < eeLen {
		return netip.Addr{}, 0, 0, false, false
	}
	switch b[4] {
	case eeOriginICMP:
	case eeOriginICMP6:
		v6 = true
	default:
		return netip.Addr{}, 0, 0, false, false
	}
	typ, code = int(b[5]), int(b[6])
	off := b[eeLen:]
	if len(off) >= 2 {
		switch binary.NativeEndian.Uint16(off) {
		case syscall.AF_INET:
			if len(off) >= 8 {
				from = netip.AddrFrom4([4]byte(off[4:8]))
			}
		case syscall.AF_INET6:
			if len(off) >= 24 {
				from = netip.AddrFrom16([16]byte(off[8:24])).Unmap()
			}
		}
	}
	return from, typ, code, v6, true
}
