package census

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, target := range []string{"198.51.100.10", "2001:db8:100:1::10"} {
		p := Payload{Census: 0x0123456789abcdef, Site: "i1-fra", Target: netip.MustParseAddr(target), Sent: t0.Add(123456789)}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParsePayload(append(b, 0, 0, 0)) // padding after the site is ignored
		if err != nil {
			t.Fatal(err)
		}
		if got.Census != p.Census || got.Site != p.Site || got.Target != p.Target || !got.Sent.Equal(p.Sent) {
			t.Errorf("round trip %+v, want %+v", got, p)
		}
	}
}

// The layout is the contract between sender and listeners of different
// versions: a golden payload, annotated field by field.
func TestPayloadGolden(t *testing.T) {
	golden := strings.Join([]string{
		"61636373",                         // magic "accs"
		"01",                               // version
		"02",                               // site name length
		"0000",                             // zero
		"00000000000000ff",                 // census id 255
		"18ed18e56a424000",                 // sent: 2026-12-01T10:00:00Z in Unix ns
		"00000000000000000000ffffc6336414", // target 198.51.100.20 (IPv4-mapped)
		"6331",                             // site "c1"
	}, "")
	p := Payload{Census: 255, Site: "c1", Target: netip.MustParseAddr("198.51.100.20"), Sent: t0}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(b) != golden {
		t.Errorf("payload\n%x\nwant\n%s", b, golden)
	}
}

func TestParsePayloadRefuses(t *testing.T) {
	good, _ := Payload{Census: 1, Site: "a", Target: netip.MustParseAddr("192.0.2.1"), Sent: t0}.Marshal()
	for name, tc := range map[string]struct {
		b   []byte
		err error
	}{
		"a ping's payload":  {[]byte("abcdefghijklmnopqrstuvwabcdefghi"), ErrNoPayload},
		"empty":             {nil, ErrNoPayload},
		"cut short":         {good[:30], ErrMalformed},
		"site cut short":    {good[:40], ErrMalformed},
		"another version":   {append([]byte("accs\x02"), good[5:]...), ErrMalformed},
		"site with a space": {append(good[:40:40], ' '), ErrMalformed},
	} {
		if _, err := ParsePayload(tc.b); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", name, err, tc.err)
		}
	}
	for _, bad := range []string{"", "a b", strings.Repeat("x", 64), "a,b", "\x1b[31m", "a=b"} {
		if _, err := (Payload{Site: bad, Target: netip.MustParseAddr("192.0.2.1")}).Marshal(); err == nil {
			t.Errorf("site %q accepted", bad)
		}
	}
}

func FuzzParsePayload(f *testing.F) {
	good, _ := Payload{Census: 1, Site: "site-a", Target: netip.MustParseAddr("2001:db8::1"), Sent: t0}.Marshal()
	f.Add(good)
	f.Add([]byte("accs"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePayload(b)
		if err != nil {
			return
		}
		again, err := p.Marshal()
		if err != nil {
			t.Fatalf("parsed %+v does not marshal: %v", p, err)
		}
		p2, err := ParsePayload(again)
		if err != nil || p2 != p {
			t.Fatalf("round trip of %+v gave %+v, %v", p, p2, err)
		}
	})
}
