package probe

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
)

// extErr builds an IP_RECVERR/IPV6_RECVERR payload: a sock_extended_err
// and the offender's socket address, as the kernel writes them.
func extErr(origin, typ, code byte, from netip.Addr) []byte {
	b := make([]byte, eeLen)
	binary.NativeEndian.PutUint32(b, uint32(syscall.ECONNREFUSED))
	b[4], b[5], b[6] = origin, typ, code
	if from.Is4() {
		sa := make([]byte, 16)
		binary.NativeEndian.PutUint16(sa, syscall.AF_INET)
		a := from.As4()
		copy(sa[4:], a[:])
		return append(b, sa...)
	}
	sa := make([]byte, 28)
	binary.NativeEndian.PutUint16(sa, syscall.AF_INET6)
	a := from.As16()
	copy(sa[8:], a[:])
	return append(b, sa...)
}

func TestParseExtendedErr(t *testing.T) {
	r4, r6 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		name string
		b    []byte
		want string // the Unreachable's text; "" = not an ICMP error
	}{
		{"port unreachable", extErr(eeOriginICMP, 3, 3, netip.MustParseAddr("192.0.2.53")), "port unreachable from 192.0.2.53"},
		{"!N", extErr(eeOriginICMP, 3, 0, r4), "network unreachable (!N) from 198.51.100.1"},
		{"!X", extErr(eeOriginICMP, 3, 13, r4), "administratively prohibited (!X) from 198.51.100.1"},
		{"v6 admin", extErr(eeOriginICMP6, 1, 1, r6), "administratively prohibited (!X) from 2001:db8::1"},
		{"v6 port", extErr(eeOriginICMP6, 1, 4, r6), "port unreachable from 2001:db8::1"},
		{"no offender", extErr(eeOriginICMP, 3, 1, r4)[:eeLen], "host unreachable (!H)"},
		{"local error", extErr(1, 0, 0, r4), ""},
		{"short", []byte{1, 2, 3}, ""},
	} {
		from, typ, code, v6, ok := parseExtendedErr(tc.b)
		got := ""
		if ok {
			got = (&Unreachable{From: from, Type: typ, Code: code, V6: v6}).Error()
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// FuzzParseExtendedErr: any control message data parses without panic.
func FuzzParseExtendedErr(f *testing.F) {
	f.Add(extErr(eeOriginICMP, 3, 3, netip.MustParseAddr("192.0.2.53")))
	f.Add(extErr(eeOriginICMP6, 1, 4, netip.MustParseAddr("2001:db8::1")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		from, typ, code, v6, ok := parseExtendedErr(b)
		if !ok {
			return
		}
		u := &Unreachable{From: from, Type: typ, Code: code, V6: v6}
		if u.Error() == "" || typ < 0 || typ > 255 || code < 0 || code > 255 {
			t.Fatalf("%+v", u)
		}
	})
}
