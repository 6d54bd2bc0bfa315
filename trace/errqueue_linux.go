package trace

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/anycheck/anycheck/internal/netutil"
)

// isQueuedICMPError: the errno a send or read reports once for an ICMP
// error that is also waiting in the error queue.
func isQueuedICMPError(err error) bool {
	for _, e := range []error{unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EPROTO, unix.EACCES, unix.EHOSTDOWN, unix.ENONET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// recvErrQueue drains a socket-mode socket: the error queue first (ICMP
// errors with offender, original destination and payload), then ordinary
// datagrams (DNS answers, echo replies).
func recvErrQueue(proto Protocol, fam *family) func(fd int) ([]Packet, bool) {
	buf := make([]byte, 65536)
	oob := make([]byte, 512)
	normal := FromUDP
	if proto == ICMP {
		normal = FromPing
	}
	return func(fd int) ([]Packet, bool) {
		var out []Packet
		for range 64 {
			n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				break
			}
			ttl, se := fam.control(oob[:oobn])
			if se == nil {
				continue // a local error (e.g. EMSGSIZE), not an ICMP reply
			}
			p := Packet{Source: FromErrQueue, V6: fam.v6, Proto: proto, Data: append([]byte(nil), buf[:n]...), TTL: ttl, At: time.Now(), Err: se}
			if from != nil {
				// An error-queue read's address is the original
				// destination from the quoted header, not the sender.
				p.OrigDst = netutil.AddrPort(from)
			}
			out = append(out, p)
		}
		for range 64 {
			n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
			if err == unix.EAGAIN {
				break
			}
			if err != nil {
				if errors.Is(err, unix.EBADF) {
					return out, false
				}
				// The pending ICMP error is reported once as errno on an
				// ordinary read; the error queue holds the details.
				continue
			}
			ttl, _ := fam.control(oob[:oobn])
			p := Packet{Source: normal, V6: fam.v6, Data: append([]byte(nil), buf[:n]...), TTL: ttl, At: time.Now()}
			if from != nil {
				p.From = netutil.AddrPort(from)
			}
			out = append(out, p)
		}
		return out, true
	}
}

// parseExtendedErr reads a sock_extended_err and the offender address that
// follows it; nil unless it reports an ICMP error.
func parseExtendedErr(b []byte) *SockErr {
	const eeLen = int(unsafe.Sizeof(unix.SockExtendedErr{}))
	if len(b) < eeLen {
		return nil
	}
	if origin := b[4]; origin != unix.SO_EE_ORIGIN_ICMP && origin != unix.SO_EE_ORIGIN_ICMP6 {
		return nil
	}
	s := &SockErr{Type: b[5], Code: b[6]}
	// SO_EE_OFFENDER: the socket address right after the struct.
	off := b[eeLen:]
	if len(off) >= 2 {
		switch binary.NativeEndian.Uint16(off) {
		case unix.AF_INET:
			if len(off) >= 8 {
				s.Offender = netip.AddrFrom4([4]byte(off[4:8]))
			}
		case unix.AF_INET6:
			if len(off) >= 24 {
				s.Offender = netip.AddrFrom16([16]byte(off[8:24])).Unmap()
			}
		}
	}
	return s
}
