package whois

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/gaissmai/bart"
	"github.com/oschwald/maxminddb-golang/v2"
	"go4.org/netipx"
)

// Table formats LoadTable recognises.
const (
	FormatPfx2as  = "pfx2as"
	FormatPyasn   = "pyasn" // pyasn's ipasn.dat: "prefix/len<TAB>asn", ';' comments
	FormatIPtoASN = "iptoasn"
	FormatMMDB    = "mmdb"
)

// Limits on an offline table, which is untrusted input (a download, a
// pipe, a gzip bomb). Full-table files are tens of MiB decompressed, so
// these only stop a runaway or hostile file, and they stop it early:
// text is parsed as it streams, so memory grows with the routes kept, not
// with the file; binary data that is not a MaxMind DB is refused on its
// first bytes.
const (
	// maxTableSize bounds the decompressed bytes of a text table.
	maxTableSize = 512 << 20
	// maxMMDBInMemory bounds a MaxMind DB that cannot be memory-mapped
	// (gzip-compressed or read from a pipe): GeoLite2-ASN is about 10 MiB.
	maxMMDBInMemory = 128 << 20
	// sniffSize is how much of the (decompressed) start is looked at to
	// tell the format; the first data line must end within it.
	sniffSize = 64 << 10
	// maxTableLine bounds one text line (iptoasn descriptions are short).
	maxTableLine = 64 << 10
	// mmdbMetadataMax is the size of a MaxMind DB's metadata section at
	// most: its marker is within this many bytes of the end.
	mmdbMetadataMax = 128 << 10
)

// ErrTableTooLarge is returned for a table beyond the size limits.
var ErrTableTooLarge = errors.New("table too large")

var (
	// mmdbMarker starts the metadata section near the end of every MaxMind DB.
	mmdbMarker = []byte("\xab\xcd\xefMaxMind.com")
	gzipMagic  = []byte{0x1f, 0x8b}
)

// tableEntry is what an offline table says about one prefix. Entries are
// shared: every prefix with the same origins, country and name points at
// one entry, so a table costs a few bytes per prefix plus one entry per
// distinct AS.
type tableEntry struct {
	ASNs        []uint32
	Country     string
	ASName      string
	Unannounced bool // iptoasn marks unrouted ranges with AS 0
}

// routeTable is a parsed text table: prefixes mapped to shared entries.
type routeTable struct {
	routes  bart.Table[uint32] // index into entries
	entries []tableEntry
	index   map[string]uint32 // entry key → index, only while loading
}

func newRouteTable() *routeTable {
	return &routeTable{index: make(map[string]uint32)}
}

// entryIndex returns the index of the entry with key, making it with
// make() when it is new. A lookup with string(key) does not allocate.
func (rt *routeTable) entryIndex(key []byte, make func() tableEntry) uint32 {
	if i, ok := rt.index[string(key)]; ok {
		return i
	}
	i := uint32(len(rt.entries))
	rt.entries = append(rt.entries, make())
	rt.index[string(key)] = i
	return i
}

// lookup returns the longest prefix covering a and its entry.
func (rt *routeTable) lookup(a netip.Addr) (netip.Prefix, tableEntry, bool) {
	p, i, ok := rt.routes.LookupPrefixLPM(netip.PrefixFrom(a, a.BitLen()))
	if !ok {
		return p, tableEntry{}, false
	}
	return p, rt.entries[i], true
}

// Table is an offline prefix-to-AS table (file:PATH), loaded once and
// answered by longest-prefix match.
type Table struct {
	Path   string
	Format string // FormatPfx2as, FormatIPtoASN or FormatMMDB
	routes prefixIndex
	mmdb   *maxminddb.Reader
}

// prefixIndex answers a text table: longest match (pfx2as) or the range
// holding the address (iptoasn).
type prefixIndex interface {
	lookup(a netip.Addr) (netip.Prefix, tableEntry, bool)
}

// LoadTable reads an offline table, recognising its format by content: a
// MaxMind DB by the metadata marker near its end (or, when it cannot be
// read from the end — gzip, a pipe — by a name ending in .mmdb or
// .mmdb.gz), a text table by the shape of its first data line. gzip is
// undone first. Text tables are streamed; a regular MaxMind DB file is
// memory-mapped. Errors name the path once.
func LoadTable(path string) (*Table, error) {
	t, err := loadTable(path)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", path, err)
	}
	return t, nil
}

func loadTable(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, withoutPath(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, withoutPath(err)
	}
	if info.IsDir() {
		return nil, errors.New("is a directory")
	}
	t := &Table{Path: path}
	br := bufio.NewReaderSize(pathless{f}, sniffSize)
	magic, _ := br.Peek(len(gzipMagic))
	gzipped := bytes.Equal(magic, gzipMagic)
	namedMMDB := hasMMDBName(path)
	if info.Mode().IsRegular() && !gzipped && (namedMMDB || hasMMDBMarker(f, info.Size())) {
		r, err := maxminddb.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open as MaxMind DB: %w", withoutPath(err))
		}
		t.Format, t.mmdb = FormatMMDB, r
		return t, nil
	}
	var r io.Reader = br
	if gzipped {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	if namedMMDB {
		data, err := io.ReadAll(io.LimitReader(r, maxMMDBInMemory+1))
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		if len(data) > maxMMDBInMemory {
			return nil, fmt.Errorf("%w: a MaxMind DB that is compressed or not a regular file may be at most %d MiB", ErrTableTooLarge, maxMMDBInMemory>>20)
		}
		db, err := maxminddb.OpenBytes(data)
		if err != nil {
			return nil, fmt.Errorf("open as MaxMind DB: %w", err)
		}
		t.Format, t.mmdb = FormatMMDB, db
		return t, nil
	}
	t.Format, t.routes, err = parseTextTable(&limitReader{r: r, n: maxTableSize})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// parseTextTable detects the format of a text table from its start and
// parses it as it streams.
func parseTextTable(r io.Reader) (string, prefixIndex, error) {
	br := bufio.NewReaderSize(r, maxTableLine)
	head, err := br.Peek(sniffSize)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return "", nil, fmt.Errorf("read: %w", err)
	}
	format, err := detectTextFormat(head)
	if err != nil {
		return "", nil, err
	}
	switch format {
	case FormatPfx2as:
		rt, err := parsePfx2as(br)
		return format, rt, err
	case FormatPyasn:
		rt, err := parsePyasn(br)
		return format, rt, err
	default:
		rt, err := parseIPtoASN(br)
		return format, rt, err
	}
}

// withoutPath drops the *fs.PathError wrapper (whose text repeats the
// path) from a file error: LoadTable names the path once.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// pathless reads a file, dropping the path from its errors.
type pathless struct{ f *os.File }

func (p pathless) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		err = withoutPath(err)
	}
	return n, err
}

// limitReader is io.LimitReader that fails with ErrTableTooLarge instead
// of pretending the data ended.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("%w: more than %d MiB (decompressed)", ErrTableTooLarge, maxTableSize>>20)
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	return n, err
}

func hasMMDBName(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, ".mmdb") || strings.HasSuffix(p, ".mmdb.gz")
}

// hasMMDBMarker looks for the MaxMind DB metadata marker near the end of a
// regular file.
func hasMMDBMarker(f *os.File, size int64) bool {
	n := min(size, mmdbMetadataMax)
	if n <= 0 {
		return false
	}
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, size-n); err != nil {
		return false
	}
	return bytes.Contains(tail, mmdbMarker)
}

// detectTextFormat looks at the first data line of head: pfx2as is
// "prefix<TAB>length<TAB>AS", pyasn's ipasn.dat "prefix/length<TAB>AS",
// iptoasn is "start<TAB>end<TAB>AS<TAB>cc<TAB>name".
// Binary data is refused here, on its first bytes.
func detectTextFormat(head []byte) (string, error) {
	if i := bytes.IndexFunc(head, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' }); i >= 0 {
		return "", fmt.Errorf("unrecognised table format: binary data (byte %#02x at offset %d); a MaxMind DB that is compressed or read from a pipe must be named *.mmdb or *.mmdb.gz", head[i], i)
	}
	for len(head) > 0 {
		line, rest, complete := bytes.Cut(head, []byte{'\n'})
		head = rest
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' || line[0] == ';' {
			continue
		}
		if !complete && len(rest) == 0 && len(line) >= sniffSize-1 {
			return "", fmt.Errorf("unrecognised table format: no line ends in the first %d KiB", sniffSize>>10)
		}
		f := strings.Fields(string(line))
		if len(f) == 2 {
			if _, err := netip.ParsePrefix(f[0]); err == nil {
				return FormatPyasn, nil
			}
		}
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
	return "", errors.New("unrecognised table format (want CAIDA pfx2as, pyasn ipasn.dat, iptoasn TSV or MaxMind .mmdb)")
}

// parsePyasn parses pyasn's ipasn.dat (what pyasn_util_convert.py writes
// from a RIB dump): "prefix/length<TAB>AS" with ';' comment lines. An AS
// may be an AS set ("64500,64501") or several origins ("64500_64501").
func parsePyasn(r io.Reader) (*routeTable, error) {
	rt := newRouteTable()
	var fields [][]byte
	err := scanLines(r, func(n int, line []byte) error {
		fields = appendFields(fields[:0], line, isSpace)
		if len(fields) != 2 {
			return fmt.Errorf("line %d: want 2 fields (prefix/length and AS), got %d", n, len(fields))
		}
		p, err := netip.ParsePrefix(string(fields[0]))
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		i, err := rt.asEntry(n, fields[1])
		if err != nil {
			return err
		}
		rt.routes.Insert(p.Masked(), i)
		return nil
	})
	rt.index = nil
	return rt, err
}

// asEntry is the entry of an AS field: one AS, several origins joined by
// '_', or an AS set joined by ','.
func (rt *routeTable) asEntry(n int, field []byte) (uint32, error) {
	var bad error
	i := rt.entryIndex(field, func() tableEntry {
		var asns []uint32
		for _, s := range strings.FieldsFunc(string(field), func(r rune) bool { return r == '_' || r == ',' }) {
			asn, ok := parseASN(s)
			if !ok {
				bad = fmt.Errorf("line %d: bad AS %q", n, s)
				return tableEntry{}
			}
			asns = appendASN(asns, asn)
		}
		if len(asns) == 0 {
			bad = fmt.Errorf("line %d: no AS", n)
		}
		return tableEntry{ASNs: asns}
	})
	return i, bad
}

// parsePfx2as parses a CAIDA Routeviews prefix-to-AS table:
// "prefix<TAB>length<TAB>AS", where AS may be "64500_64501" (several origins)
// or "64500,64501" (an AS set); both give every AS as an origin. Comment and
// blank lines are skipped; any other malformed line is an error naming it.
func parsePfx2as(r io.Reader) (*routeTable, error) {
	rt := newRouteTable()
	var fields [][]byte
	err := scanLines(r, func(n int, line []byte) error {
		fields = appendFields(fields[:0], line, isSpace)
		if len(fields) != 3 {
			return fmt.Errorf("line %d: want 3 fields, got %d", n, len(fields))
		}
		a, err := netip.ParseAddr(string(fields[0]))
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		bits, err := strconv.Atoi(string(fields[1]))
		if err != nil {
			return fmt.Errorf("line %d: bad prefix length %q", n, fields[1])
		}
		p, err := a.Prefix(bits)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		i, err := rt.asEntry(n, fields[2])
		if err != nil {
			return err
		}
		rt.routes.Insert(p, i)
		return nil
	})
	rt.index = nil
	return rt, err
}

// parseIPtoASN parses an iptoasn.com TSV table:
// "range_start<TAB>range_end<TAB>AS<TAB>country<TAB>description"; AS 0
// ("Not routed") marks unannounced space. The ranges are kept as ranges
// (a few bytes each, no prefix conversion at load); ranges that overlap
// are an error, since the answer for an address in both would be a guess.
func parseIPtoASN(r io.Reader) (*rangeTable, error) {
	rt := &rangeTable{index: make(map[string]uint32)}
	var (
		fields [][]byte
		key    []byte
	)
	err := scanLines(r, func(n int, line []byte) error {
		fields = appendFields(fields[:0], line, func(c byte) bool { return c == '\t' })
		if len(fields) > 5 {
			// The description may hold tabs: it is the rest of the line.
			fields[4] = bytes.Join(fields[4:], []byte{'\t'})
			fields = fields[:5]
		}
		if len(fields) < 3 {
			fields = appendFields(fields[:0], line, isSpace)
		}
		if len(fields) < 3 {
			return fmt.Errorf("line %d: want at least 3 fields", n)
		}
		from, err1 := netip.ParseAddr(string(bytes.TrimSpace(fields[0])))
		to, err2 := netip.ParseAddr(string(bytes.TrimSpace(fields[1])))
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		asn, ok := parseASN(string(bytes.TrimSpace(fields[2])))
		if !ok {
			return fmt.Errorf("line %d: bad AS %q", n, fields[2])
		}
		var cc, name []byte
		if len(fields) > 3 {
			cc = bytes.TrimSpace(fields[3])
		}
		if len(fields) > 4 && asn != 0 {
			name = bytes.TrimSpace(fields[4])
		}
		key = strconv.AppendUint(key[:0], uint64(asn), 10)
		key = append(append(append(append(key, 0), cc...), 0), name...)
		i := rt.entryIndex(key, func() tableEntry {
			e := tableEntry{Country: naEmpty(string(cc))}
			if asn == 0 {
				e.Unannounced = true
				return e
			}
			e.ASNs = []uint32{asn}
			if s := string(name); s != "None" && s != "Not routed" {
				e.ASName = s
			}
			return e
		})
		if err := rt.add(from, to, i); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		return nil
	})
	rt.index = nil
	if err != nil {
		return rt, err
	}
	return rt, rt.finish()
}

// addrRange is one table range as two 128-bit numbers (IPv4 addresses as
// IPv4-mapped), 36 bytes.
type addrRange struct {
	fromHi, fromLo, toHi, toLo uint64
	entry                      uint32
}

func u128(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func less128(aHi, aLo, bHi, bLo uint64) bool { return aHi < bHi || aHi == bHi && aLo < bLo }

func addrFrom128(hi, lo uint64, is4 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	a := netip.AddrFrom16(b)
	if is4 {
		return a.Unmap()
	}
	return a
}

// rangeTable is a parsed iptoasn table: sorted, non-overlapping ranges
// mapped to shared entries, answered by binary search.
type rangeTable struct {
	v4, v6  []addrRange
	sorted4 bool
	sorted6 bool
	entries []tableEntry
	index   map[string]uint32 // only while loading
}

func (rt *rangeTable) entryIndex(key []byte, make func() tableEntry) uint32 {
	if i, ok := rt.index[string(key)]; ok {
		return i
	}
	i := uint32(len(rt.entries))
	rt.entries = append(rt.entries, make())
	rt.index[string(key)] = i
	return i
}

func (rt *rangeTable) add(from, to netip.Addr, entry uint32) error {
	from, to = from.Unmap().WithZone(""), to.Unmap().WithZone("")
	if from.Is4() != to.Is4() {
		return fmt.Errorf("range %s-%s mixes address families", from, to)
	}
	if to.Less(from) {
		return fmt.Errorf("range %s-%s ends before it starts", from, to)
	}
	r := addrRange{entry: entry}
	r.fromHi, r.fromLo = u128(from)
	r.toHi, r.toLo = u128(to)
	list, sorted := &rt.v6, &rt.sorted6
	if from.Is4() {
		list, sorted = &rt.v4, &rt.sorted4
	}
	if len(*list) == 0 {
		*sorted = true
	} else if last := (*list)[len(*list)-1]; !less128(last.fromHi, last.fromLo, r.fromHi, r.fromLo) {
		*sorted = false
	}
	*list = append(*list, r)
	return nil
}

// finish sorts the ranges (iptoasn files are sorted already) and refuses
// overlaps.
func (rt *rangeTable) finish() error {
	for fam, list := range [][]addrRange{rt.v4, rt.v6} {
		is4 := fam == 0
		if sorted := (is4 && rt.sorted4) || (!is4 && rt.sorted6); !sorted {
			slices.SortFunc(list, func(a, b addrRange) int {
				switch {
				case less128(a.fromHi, a.fromLo, b.fromHi, b.fromLo):
					return -1
				case less128(b.fromHi, b.fromLo, a.fromHi, a.fromLo):
					return 1
				}
				return 0
			})
		}
		for i := 1; i < len(list); i++ {
			prev, cur := list[i-1], list[i]
			if !less128(prev.toHi, prev.toLo, cur.fromHi, cur.fromLo) {
				return fmt.Errorf("ranges %s-%s and %s-%s overlap",
					addrFrom128(prev.fromHi, prev.fromLo, is4), addrFrom128(prev.toHi, prev.toLo, is4),
					addrFrom128(cur.fromHi, cur.fromLo, is4), addrFrom128(cur.toHi, cur.toLo, is4))
			}
		}
	}
	rt.v4, rt.v6 = slices.Clip(rt.v4), slices.Clip(rt.v6)
	return nil
}

// lookup returns the range holding a, as the largest prefix inside the
// range that holds a (what the range's exact prefix cover would give),
// and its entry.
func (rt *rangeTable) lookup(a netip.Addr) (netip.Prefix, tableEntry, bool) {
	a = a.Unmap().WithZone("")
	list := rt.v6
	if a.Is4() {
		list = rt.v4
	}
	hi, lo := u128(a)
	// The first range starting after a; the one before it may hold a.
	i, _ := slices.BinarySearchFunc(list, a, func(r addrRange, _ netip.Addr) int {
		if less128(hi, lo, r.fromHi, r.fromLo) {
			return 1
		}
		return -1
	})
	if i == 0 {
		return netip.Prefix{}, tableEntry{}, false
	}
	r := list[i-1]
	if less128(r.toHi, r.toLo, hi, lo) {
		return netip.Prefix{}, tableEntry{}, false
	}
	var buf [256]netip.Prefix
	for _, p := range netipx.IPRangeFrom(addrFrom128(r.fromHi, r.fromLo, a.Is4()), addrFrom128(r.toHi, r.toLo, a.Is4())).AppendPrefixes(buf[:0]) {
		if p.Contains(a) {
			return p, rt.entries[r.entry], true
		}
	}
	return netip.Prefix{}, tableEntry{}, false // unreachable: the cover holds every address of the range
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// appendFields appends the non-empty fields of line separated by sep
// bytes; for a tab separator empty fields are kept (TSV).
func appendFields(dst [][]byte, line []byte, sep func(byte) bool) [][]byte {
	keepEmpty := !sep(' ')
	start := -1
	for i, c := range line {
		switch {
		case sep(c):
			if start >= 0 {
				dst = append(dst, line[start:i])
				start = -1
			} else if keepEmpty {
				dst = append(dst, line[i:i])
			}
		case start < 0:
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, line[start:])
	}
	return dst
}

// scanLines calls fn for every non-blank, non-comment line (1-based n,
// without its line ending). A line longer than maxTableLine is an error.
func scanLines(r io.Reader, fn func(n int, line []byte) error) error {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < maxTableLine {
		br = bufio.NewReaderSize(r, maxTableLine)
	}
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("line %d: longer than %d KiB", n, maxTableLine>>10)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 && trimmed[0] != '#' && trimmed[0] != ';' {
			if ferr := fn(n, bytes.TrimRight(line, "\r\n")); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return nil // EOF
		}
	}
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
	p, e, ok := t.routes.lookup(q)
	if !ok || e.Unannounced {
		o.Unannounced = true
		return o, nil
	}
	o.Prefix, o.ASNs, o.Country, o.ASName = p, append([]uint32(nil), e.ASNs...), e.Country, e.ASName
	return o, nil
}
