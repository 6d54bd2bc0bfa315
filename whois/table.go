package whois

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gaissmai/bart"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Table formats LoadTable recognises.
const (
	FormatPfx2as  = "pfx2as"
	FormatIPtoASN = "iptoasn"
	FormatMMDB    = "mmdb"
)

// maxTableSize bounds an offline table after decompression; full-table
// files are tens of MiB, so this only stops a runaway or hostile file.
const maxTableSize = 1 << 30

// mmdbMarker starts the metadata section near the end of every MaxMind DB.
var mmdbMarker = []byte("\xab\xcd\xefMaxMind.com")

// tableEntry is what an offline table says about one prefix.
type tableEntry struct {
	ASNs        []uint32
	Country     string
	ASName      string
	Unannounced bool // iptoasn marks unrouted ranges with AS 0
}

// Table is an offline prefix-to-AS table (file:PATH), loaded once and
// answered by longest-prefix match.
type Table struct {
	Path   string
	Format string // FormatPfx2as, FormatIPtoASN or FormatMMDB
	routes *bart.Table[tableEntry]
	mmdb   *maxminddb.Reader
}

// LoadTable reads an offline table, recognising its format by content
// (MaxMind DB metadata marker; gzip is undone first) and, for text tables,
// by the shape of the first data line.
func LoadTable(path string) (*Table, error) {
	data, err := readTableFile(path)
	if err != nil {
		return nil, err
	}
	t := &Table{Path: path}
	if isMMDB(data) || strings.EqualFold(filepath.Ext(path), ".mmdb") {
		r, err := maxminddb.OpenBytes(data)
		if err != nil {
			return nil, fmt.Errorf("open %s as MaxMind DB: %w", path, err)
		}
		t.Format, t.mmdb = FormatMMDB, r
		return t, nil
	}
	format, err := detectTextFormat(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Format = format
	switch format {
	case FormatPfx2as:
		t.routes, err = parsePfx2as(bytes.NewReader(data))
	case FormatIPtoASN:
		t.routes, err = parseIPtoASN(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func readTableFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(io.LimitReader(r, maxTableSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxTableSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxTableSize)
	}
	return data, nil
}

func isMMDB(data []byte) bool {
	tail := data
	if len(tail) > 128<<10 {
		tail = tail[len(tail)-128<<10:]
	}
	return bytes.Contains(tail, mmdbMarker)
}

// detectTextFormat looks at the first data line: pfx2as is
// "prefix<TAB>length<TAB>AS", iptoasn is "start<TAB>end<TAB>AS<TAB>cc<TAB>name".
func detectTextFormat(data []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			break
		}
		if _, err := netip.ParseAddr(f[0]); err != nil {
			break
		}
		if _, err := netip.ParseAddr(f[1]); err == nil {
			return FormatIPtoASN, nil
		}
		if _, err := strconv.ParseUint(f[1], 10, 8); err == nil {
			return FormatPfx2as, nil
		}
		break
	}
	return "", errors.New("unrecognised table format (want CAIDA pfx2as, iptoasn TSV or MaxMind .mmdb)")
}

// maxTableLine bounds one text table line (iptoasn descriptions are short).
const maxTableLine = 64 << 10

// parsePfx2as parses a CAIDA Routeviews prefix-to-AS table:
// "prefix<TAB>length<TAB>AS", where AS may be "64500_64501" (several origins)
// or "64500,64501" (an AS set); both give every AS as an origin. Comment and
// blank lines are skipped; any other malformed line is an error naming it.
func parsePfx2as(r io.Reader) (*bart.Table[tableEntry], error) {
	t := new(bart.Table[tableEntry])
	err := scanLines(r, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("line %d: want 3 fields, got %d", n, len(f))
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		bits, err := strconv.Atoi(f[1])
		if err != nil {
			return fmt.Errorf("line %d: bad prefix length %q", n, f[1])
		}
		p, err := a.Prefix(bits)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		var asns []uint32
		for _, s := range strings.FieldsFunc(f[2], func(r rune) bool { return r == '_' || r == ',' }) {
			asn, ok := parseASN(s)
			if !ok {
				return fmt.Errorf("line %d: bad AS %q", n, s)
			}
			asns = appendASN(asns, asn)
		}
		if len(asns) == 0 {
			return fmt.Errorf("line %d: no AS", n)
		}
		t.Insert(p, tableEntry{ASNs: asns})
		return nil
	})
	return t, err
}

// parseIPtoASN parses an iptoasn.com TSV table:
// "range_start<TAB>range_end<TAB>AS<TAB>country<TAB>description". Ranges
// become the prefixes that cover them exactly; AS 0 ("Not routed") marks
// unannounced space.
func parseIPtoASN(r io.Reader) (*bart.Table[tableEntry], error) {
	t := new(bart.Table[tableEntry])
	err := scanLines(r, func(n int, line string) error {
		f := strings.SplitN(line, "\t", 5)
		if len(f) < 3 {
			f = strings.Fields(line)
		}
		if len(f) < 3 {
			return fmt.Errorf("line %d: want at least 3 fields", n)
		}
		from, err1 := netip.ParseAddr(strings.TrimSpace(f[0]))
		to, err2 := netip.ParseAddr(strings.TrimSpace(f[1]))
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		asn, ok := parseASN(strings.TrimSpace(f[2]))
		if !ok {
			return fmt.Errorf("line %d: bad AS %q", n, f[2])
		}
		e := tableEntry{}
		if asn == 0 {
			e.Unannounced = true
		} else {
			e.ASNs = []uint32{asn}
		}
		if len(f) > 3 {
			e.Country = naEmpty(strings.TrimSpace(f[3]))
		}
		if len(f) > 4 && asn != 0 {
			e.ASName = strings.TrimSpace(f[4])
			if e.ASName == "None" || e.ASName == "Not routed" {
				e.ASName = ""
			}
		}
		prefixes, err := rangePrefixes(from, to)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		for _, p := range prefixes {
			t.Insert(p, e)
		}
		return nil
	})
	return t, err
}

// scanLines calls fn for every non-blank, non-comment line (1-based n).
func scanLines(r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxTableLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	return nil
}

// rangePrefixes returns the fewest prefixes covering exactly from..to.
func rangePrefixes(from, to netip.Addr) ([]netip.Prefix, error) {
	from, to = from.Unmap(), to.Unmap()
	if from.Is4() != to.Is4() {
		return nil, fmt.Errorf("range %s-%s mixes address families", from, to)
	}
	if to.Less(from) {
		return nil, fmt.Errorf("range %s-%s ends before it starts", from, to)
	}
	bitLen := from.BitLen()
	lo := new(big.Int).SetBytes(from.AsSlice())
	hi := new(big.Int).SetBytes(to.AsSlice())
	one := big.NewInt(1)
	var out []netip.Prefix
	for lo.Cmp(hi) <= 0 {
		// The largest block starting at lo (alignment) that does not pass hi.
		size := 0
		for size < bitLen && lo.Bit(size) == 0 {
			next := new(big.Int).Lsh(one, uint(size+1))
			next.Add(next, lo).Sub(next, one)
			if next.Cmp(hi) > 0 {
				break
			}
			size++
		}
		a := addrFromInt(lo, bitLen)
		out = append(out, netip.PrefixFrom(a, bitLen-size))
		lo.Add(lo, new(big.Int).Lsh(one, uint(size)))
		if len(out) > 2*bitLen {
			return nil, fmt.Errorf("range %s-%s: too many prefixes", from, to)
		}
	}
	return out, nil
}

func addrFromInt(n *big.Int, bitLen int) netip.Addr {
	b := make([]byte, bitLen/8)
	n.FillBytes(b)
	a, _ := netip.AddrFromSlice(b)
	return a
}

// mmdbASN is the GeoLite2-ASN record.
type mmdbASN struct {
	ASN uint32 `maxminddb:"autonomous_system_number"`
	Org string `maxminddb:"autonomous_system_organization"`
}

// Lookup answers from the table; an address the table does not cover is
// reported as unannounced, since these tables are full routing snapshots.
func (t *Table) Lookup(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
	out, ask := splitSpecial(addrs)
	var errs []error
	for _, a := range ask {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("table %s: %w", t.Path, err)
		}
		o, err := t.lookup(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[a] = o
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("table %s: %w", t.Path, errors.Join(errs...))
	}
	return out, nil
}

func (t *Table) lookup(a netip.Addr) (Origin, error) {
	o := Origin{Addr: a, Source: SourceFile}
	q := lookupAddr(a)
	if t.mmdb != nil {
		res := t.mmdb.Lookup(q)
		if err := res.Err(); err != nil {
			return o, fmt.Errorf("%s: %w", a, err)
		}
		if !res.Found() {
			o.Unannounced = true
			return o, nil
		}
		var rec mmdbASN
		if err := res.Decode(&rec); err != nil {
			return o, fmt.Errorf("%s: %w", a, err)
		}
		if rec.ASN == 0 {
			o.Unannounced = true
			return o, nil
		}
		o.ASNs, o.ASName = []uint32{rec.ASN}, rec.Org
		if p := res.Prefix(); p.IsValid() && p.Addr().Is4() == q.Is4() {
			o.Prefix = p.Masked()
		}
		return o, nil
	}
	p, e, ok := t.routes.LookupPrefixLPM(netip.PrefixFrom(q, q.BitLen()))
	if !ok || e.Unannounced {
		o.Unannounced = true
		return o, nil
	}
	o.Prefix, o.ASNs, o.Country, o.ASName = p, e.ASNs, e.Country, e.ASName
	return o, nil
}
