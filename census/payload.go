package census

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"
)

// Payload is what an active census's echo request carries and its echo
// reply brings back: enough for any site that captures the reply to say
// which census it belongs to, who sent it, to which target and when.
//
// Layout (big endian), 40 bytes and the site name:
//
//	0   4  magic "accs" (anycheck census)
//	4   1  version (1)
//	5   1  length n of the sender's site name (1–63)
//	6   2  zero
//	8   8  census id
//	16  8  send time, Unix nanoseconds
//	24  16 target address (IPv4 as IPv4-mapped IPv6)
//	40  n  sender's site name (UTF-8)
type Payload struct {
	Census uint64
	Site   string
	Target netip.Addr
	Sent   time.Time
}

const (
	payloadMagic   = "accs"
	payloadVersion = 1
	payloadHeader  = 40
	// MaxSiteName bounds a site name (bytes).
	MaxSiteName = 63
)

// ErrNoPayload is an echo reply that carries no census payload (another
// program's ping, a census of another tool).
var ErrNoPayload = errors.New("no census payload")

// CheckSite checks a site name: 1 to MaxSiteName bytes of printable UTF-8
// without spaces, so it reads the same in every output format.
func CheckSite(name string) error {
	if name == "" || len(name) > MaxSiteName {
		return fmt.Errorf("site name %q: must be 1 to %d bytes", name, MaxSiteName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("site name %q: not UTF-8", name)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == ',' || r == '"' || r == '=' {
			return fmt.Errorf("site name %q: no spaces, control characters, commas, quotes or '='", name)
		}
	}
	return nil
}

// Marshal encodes the payload; the site must pass CheckSite and the target
// be a valid address.
func (p Payload) Marshal() ([]byte, error) {
	if err := CheckSite(p.Site); err != nil {
		return nil, err
	}
	if !p.Target.IsValid() {
		return nil, errors.New("census payload: no target address")
	}
	b := make([]byte, payloadHeader+len(p.Site))
	copy(b, payloadMagic)
	b[4] = payloadVersion
	b[5] = byte(len(p.Site))
	binary.BigEndian.PutUint64(b[8:], p.Census)
	binary.BigEndian.PutUint64(b[16:], uint64(p.Sent.UnixNano()))
	t := p.Target.As16()
	copy(b[24:40], t[:])
	copy(b[40:], p.Site)
	return b, nil
}

// ParsePayload decodes the data of an echo reply. Data that does not start
// with the magic is ErrNoPayload; a payload cut short, of another version
// or with a site name that is no valid name is ErrMalformed. Bytes after
// the site name (padding some hosts add) are ignored.
func ParsePayload(b []byte) (Payload, error) {
	if len(b) < len(payloadMagic) || string(b[:len(payloadMagic)]) != payloadMagic {
		return Payload{}, ErrNoPayload
	}
	if len(b) < payloadHeader {
		return Payload{}, fmt.Errorf("%w: census payload of %d bytes", ErrMalformed, len(b))
	}
	if b[4] != payloadVersion {
		return Payload{}, fmt.Errorf("%w: census payload version %d", ErrMalformed, b[4])
	}
	n := int(b[5])
	if n == 0 || n > MaxSiteName || len(b) < payloadHeader+n {
		return Payload{}, fmt.Errorf("%w: census payload site name of %d bytes in %d", ErrMalformed, n, len(b))
	}
	p := Payload{
		Census: binary.BigEndian.Uint64(b[8:]),
		Sent:   time.Unix(0, int64(binary.BigEndian.Uint64(b[16:]))).UTC(),
		Target: netip.AddrFrom16([16]byte(b[24:40])).Unmap(),
		Site:   string(b[40 : 40+n]),
	}
	if err := CheckSite(p.Site); err != nil {
		return Payload{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return p, nil
}
