package measure

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestUnescape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{`Soci\195\169t\195\169`, "Société"},
		{`\"q\" \\`, `"q" \`},
		{`a\.b`, "a.b"},
		{`\300`, "300"}, // no byte is 300
		{`\255\000`, "\xff\x00"},
		{`\12`, "12"},
		{`end\`, `end\`},
	} {
		if got := Unescape(c.in); got != c.want {
			t.Errorf("Unescape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzUnescape: whatever bytes a TXT record carries, miekg's presentation
// form unescapes to them again, and no input panics.
func FuzzUnescape(f *testing.F) {
	f.Add([]byte("Soci\xc3\xa9t\xc3\xa9 \"q\" \\"))
	f.Add([]byte{0, 1, 255, '\\', '3'})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 254 {
			raw = raw[:254]
		}
		msg := append([]byte{byte(len(raw))}, raw...)
		buf := make([]byte, 0, 512)
		buf = append(buf, 0, 0, 16, 0, 3, 0, 0, 0, 0, 0, byte(len(msg)))
		buf = append(buf, msg...)
		got, _, err := dns.UnpackRR(buf, 0)
		if err != nil {
			return
		}
		rr := got.(*dns.TXT)
		if s := Unescape(strings.Join(rr.Txt, "")); s != string(raw) {
			t.Errorf("round trip of %q gave %q (presentation %q)", raw, s, rr.Txt)
		}
		_ = Unescape(string(raw))
	})
}
