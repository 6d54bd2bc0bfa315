package census

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestReadHitlist(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"addresses and prefixes", "# targets\n198.51.100.10\n\n2001:db8::1\n203.0.113.0/24\n198.51.100.0/23\n",
			[]string{"198.51.100.10", "2001:db8::1", "203.0.113.1", "198.51.100.1", "198.51.101.1"}},
		{"a /32 and a /128 are themselves", "192.0.2.7/32\n2001:db8::7/128\n", []string{"192.0.2.7", "2001:db8::7"}},
		{"IPv6 prefixes by /48", "2001:db8::/47\n", []string{"2001:db8::1", "2001:db8:1::1"}},
		{"ISI hitlist with a header", "#fsdb -F t score ip\n99\tc6336401\n-2\tcb007109\n# | /usr/bin/hitlist\n",
			[]string{"198.51.100.1", "203.0.113.9"}},
		{"ISI history format", "#fsdb -F t hex_ip history score\nc0000201\t1ffffffff\t99\n", []string{"192.0.2.1"}},
		{"a score before the address", "99 198.51.100.7\n", []string{"198.51.100.7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			n, err := ReadHitlist(strings.NewReader(tc.in), 24, 48, 0, func(a netip.Addr) { got = append(got, a.String()) })
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) || n != len(tc.want) {
				t.Errorf("targets %v (%d), want %v", got, n, tc.want)
			}
		})
	}
}

func TestReadHitlistRefuses(t *testing.T) {
	if _, err := ReadHitlist(strings.NewReader("198.51.100.1\nfoo.example\n"), 24, 48, 0, func(netip.Addr) {}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a name: %v, want an error naming line 2", err)
	}
	// A /8 is 65,536 targets: the limit stops it without expanding it all.
	n, err := ReadHitlist(strings.NewReader("10.0.0.0/8\n"), 24, 48, 1000, func(netip.Addr) {})
	if !errors.Is(err, ErrTooMany) || n != 1000 {
		t.Errorf("%d targets, %v; want ErrTooMany at 1000", n, err)
	}
	// A /0 of IPv6 is no endless loop.
	n, err = ReadHitlist(strings.NewReader("::/0\n"), 24, 48, 10, func(netip.Addr) {})
	if !errors.Is(err, ErrTooMany) || n != 10 {
		t.Errorf("::/0: %d, %v", n, err)
	}
	if _, err := ReadHitlist(strings.NewReader(strings.Repeat("1", 5000)), 24, 48, 0, func(netip.Addr) {}); err == nil {
		t.Error("a 5000-byte line was read")
	}
}

func FuzzReadHitlist(f *testing.F) {
	f.Add("#fsdb -F t score ip\n99\tc6336401\n198.51.100.0/22\n2001:db8::/46\n")
	f.Fuzz(func(t *testing.T, in string) {
		n := 0
		ReadHitlist(strings.NewReader(in), 24, 48, 5000, func(a netip.Addr) {
			if !a.IsValid() || a.Is4In6() {
				t.Fatalf("target %v", a)
			}
			n++
		})
		if n > 5000 {
			t.Fatalf("%d targets past the limit", n)
		}
	})
}
