//go:build unix

package netutil

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSockaddrRoundTrip(t *testing.T) {
	lo := loopbackName(t)
	for _, c := range []struct{ in, want string }{
		{"192.0.2.53:53", "192.0.2.53:53"},
		{"[2001:db8:53::53]:53", "[2001:db8:53::53]:53"},
		{"[::ffff:192.0.2.1]:9", "192.0.2.1:9"},
		{"[fe80::1%" + lo + "]:33434", "[fe80::1%" + lo + "]:33434"},
		{"0.0.0.0:0", "0.0.0.0:0"},
	} {
		ap := netip.MustParseAddrPort(c.in)
		sa := Sockaddr(ap)
		if got := AddrPort(sa).String(); got != c.want {
			t.Errorf("%s: round trip gives %s, want %s", c.in, got, c.want)
		}
	}
	if sa, ok := Sockaddr(netip.MustParseAddrPort("[fe80::1%" + lo + "]:1")).(*unix.SockaddrInet6); !ok || sa.ZoneId == 0 {
		t.Errorf("zone %s: no scope ID in %+v", lo, sa)
	}
	if got := AddrPort(&unix.SockaddrUnix{Name: "/x"}); got.IsValid() {
		t.Errorf("unix socket address converted to %s", got)
	}
}

// TestSockaddrKernel: what bind and getsockname make of the conversion.
func TestSockaddrKernel(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, Sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	got := AddrPort(sa)
	if got.Addr() != netip.MustParseAddr("127.0.0.1") || got.Port() == 0 {
		t.Errorf("bound %s", got)
	}
}

func loopbackName(t *testing.T) string {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Skip(err)
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 {
			return ifi.Name
		}
	}
	t.Skip("no loopback interface")
	return ""
}
