package census

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ErrTooMany stops a hitlist that holds more targets than allowed.
var ErrTooMany = errors.New("more targets than allowed")

// Target parses one hitlist entry: an address ("198.51.100.1",
// "2001:db8::1"), an address in hex as the ISI hitlist writes IPv4 ones
// ("c6336401"), or a prefix, which stands for one address in every
// grouping prefix (prefixLen4, prefixLen6) it holds: network + 1 (the
// address itself for a /32 or /128). fn is called for each address; the
// expansion of a large prefix stops when fn returns an error.
func Target(word string, prefixLen4, prefixLen6 int, fn func(netip.Addr) error) error {
	if p, err := netip.ParsePrefix(word); err == nil {
		return expand(p.Masked(), prefixLen4, prefixLen6, fn)
	}
	if a, err := netip.ParseAddr(word); err == nil && a.Zone() == "" {
		return fn(a.Unmap())
	}
	if len(word) == 8 {
		if v, err := strconv.ParseUint(word, 16, 32); err == nil {
			return fn(netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, uint32(v)))))
		}
	}
	return fmt.Errorf("%q is no address or prefix", word)
}

func expand(p netip.Prefix, prefixLen4, prefixLen6 int, fn func(netip.Addr) error) error {
	group := prefixLen6
	if p.Addr().Is4() {
		group = prefixLen4
	}
	if p.Bits() >= group {
		return fn(pick(p))
	}
	// One address per group prefix: step through the group prefixes by
	// adding 1 at the group's last bit.
	n := group - p.Bits()
	if n > 62 {
		n = 62 // the caller's limit stops it long before
	}
	cur := netip.PrefixFrom(p.Addr(), group)
	for i := uint64(0); i < 1<<n; i++ {
		if err := fn(pick(cur)); err != nil {
			return err
		}
		next, ok := addAt(cur.Addr(), group)
		if !ok {
			return nil
		}
		cur = netip.PrefixFrom(next, group)
	}
	return nil
}

// pick is the address a census sends to for a prefix: network + 1,
// unless the prefix is one address.
func pick(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if p.Bits() == a.BitLen() {
		return a
	}
	return a.Next()
}

// addAt adds 1 at bit position bits (1-based from the top) of a.
func addAt(a netip.Addr, bits int) (netip.Addr, bool) {
	b := a.As16()
	off := 0
	if a.Is4() {
		off = 96
	}
	pos := off + bits - 1 // the bit to add 1 at
	for i := pos; i >= off; i-- {
		byteI, mask := i/8, byte(1)<<(7-i%8)
		if b[byteI]&mask == 0 {
			b[byteI] |= mask
			out := netip.AddrFrom16(b)
			if a.Is4() {
				out = out.Unmap()
			}
			return out, true
		}
		b[byteI] &^= mask
	}
	return netip.Addr{}, false
}

// ReadHitlist reads a hitlist: one entry per line (see Target), '#'
// comments and blank lines skipped. In the ISI hitlist format (tab
// separated, a "#fsdb" header naming the columns) the address is the
// column named ip, hex_ip, ipv4 or address; without a header the first
// field that is an address is taken (a score before it is skipped). A
// line without an address is an error naming it. It stops at max
// targets with ErrTooMany (max ≤ 0: no limit).
func ReadHitlist(r io.Reader, prefixLen4, prefixLen6, max int, fn func(netip.Addr)) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	col := -1
	n, line := 0, 0
	add := func(a netip.Addr) error {
		if max > 0 && n >= max {
			return ErrTooMany
		}
		n++
		fn(a)
		return nil
	}
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#fsdb") {
			col = -1
			fields := fsdbColumns(text)
			for i, f := range fields {
				switch strings.ToLower(f) {
				case "ip", "hex_ip", "ipv4", "address", "addr", "saddr":
					col = i
				}
			}
			continue
		}
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		var err error
		switch {
		case col >= 0 && col < len(fields):
			err = Target(fields[col], prefixLen4, prefixLen6, add)
		case col >= 0:
			err = fmt.Errorf("no column %d", col+1)
		default:
			err = fmt.Errorf("%q is no address or prefix", text)
			for _, f := range fields {
				if e := Target(f, prefixLen4, prefixLen6, add); e == nil || errors.Is(e, ErrTooMany) {
					err = e
					break
				}
			}
		}
		if errors.Is(err, ErrTooMany) {
			return n, err
		}
		if err != nil {
			return n, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return n, fmt.Errorf("line %d: longer than 4096 bytes: not a hitlist", line+1)
	}
	return n, sc.Err()
}

// fsdbColumns are the column names of a "#fsdb -F t col1 col2" header
// (options and their arguments left out).
func fsdbColumns(header string) []string {
	fields := strings.Fields(header)[1:]
	var out []string
	for i := 0; i < len(fields); i++ {
		if strings.HasPrefix(fields[i], "-") {
			i++ // the option's argument
			continue
		}
		out = append(out, fields[i])
	}
	return out
}
