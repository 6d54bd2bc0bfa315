package trace

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// extErr is a sock_extended_err followed by the offender's sockaddr.
func extErr(origin, typ, code uint8, offender netip.Addr) []byte {
	ee := make([]byte, int(unsafe.Sizeof(unix.SockExtendedErr{})))
	binary.NativeEndian.PutUint32(ee[0:], uint32(unix.EHOSTUNREACH))
	ee[4], ee[5], ee[6] = origin, typ, code
	if offender.Is4() {
		sa := make([]byte, 16)
		binary.NativeEndian.PutUint16(sa, unix.AF_INET)
		a := offender.As4()
		copy(sa[4:], a[:])
		return append(ee, sa...)
	}
	sa := make([]byte, 28)
	binary.NativeEndian.PutUint16(sa, unix.AF_INET6)
	a := offender.As16()
	copy(sa[8:], a[:])
	return append(ee, sa...)
}

func ttlData(ttl int) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, uint32(ttl))
	return b
}

func TestControlMessages(t *testing.T) {
	cases := []struct {
		name     string
		fam      *family
		oob      []byte
		want     *SockErr
		wantTTL  int
		wantNone bool
	}{
		{"v4 time exceeded with ttl", inet4, append(cmsg(unix.IPPROTO_IP, unix.IP_TTL, ttlData(253)), cmsg(unix.IPPROTO_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_ICMP, 11, 0, router4))...),
			&SockErr{Type: 11, Offender: router4}, 253, false},
		{"v6 port unreachable", inet6, cmsg(unix.IPPROTO_IPV6, unix.IPV6_RECVERR, extErr(unix.SO_EE_ORIGIN_ICMP6, 1, 4, router6)),
			&SockErr{Type: 1, Code: 4, Offender: router6}, -1, false},
		{"v6 hop limit", inet6, cmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, ttlData(61)), nil, 61, true},
		{"another family's level is not ours", inet6, cmsg(unix.IPPROTO_IP, unix.IP_TTL, ttlData(64)), nil, -1, true},
		{"local error is no reply", inet4, cmsg(unix.IPPROTO_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_LOCAL, 0, 0, src4)), nil, -1, true},
		{"truncated extended error", inet4, cmsg(unix.IPPROTO_IP, unix.IP_RECVERR, []byte{1, 2, 3}), nil, -1, true},
		{"garbage", inet4, []byte{0xff, 0xff, 0, 0}, nil, -1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ttl, se := c.fam.control(c.oob)
			if ttl != c.wantTTL {
				t.Errorf("ttl %d, want %d", ttl, c.wantTTL)
			}
			if c.wantNone {
				if se != nil {
					t.Fatalf("got %+v, want none", se)
				}
				return
			}
			if se == nil || *se != *c.want {
				t.Fatalf("got %+v, want %+v", se, c.want)
			}
		})
	}
}

// FuzzControlMessages: ancillary data comes from the kernel, but its
// parser must still never read out of bounds.
func FuzzControlMessages(f *testing.F) {
	f.Add(false, cmsg(unix.IPPROTO_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_ICMP, 11, 0, router4)))
	f.Add(true, cmsg(unix.IPPROTO_IPV6, unix.IPV6_RECVERR, extErr(unix.SO_EE_ORIGIN_ICMP6, 3, 0, router6)))
	f.Add(false, cmsg(unix.IPPROTO_IP, unix.IP_TTL, ttlData(64)))
	f.Fuzz(func(t *testing.T, v6 bool, oob []byte) {
		fam := inet4
		if v6 {
			fam = inet6
		}
		_, se := fam.control(oob)
		if se != nil && se.Offender.IsValid() && !se.Offender.Is4() && !se.Offender.Is6() {
			t.Fatalf("offender %v", se.Offender)
		}
	})
}
