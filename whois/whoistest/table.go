package whoistest

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gaissmai/bart"
)

// Row is what the test services say about one announced prefix.
type Row struct {
	Prefix    netip.Prefix
	ASNs      []uint32 // several for a multi-origin prefix
	Country   string
	Registry  string
	Allocated string
	ASName    string
}

// ParseTable reads rows in the bulk whois column order, one per line:
//
//	192.0.2.0/24 | 64500 | ZZ | lab | 2020-01-01 | EXAMPLE-ISP
//
// with several space-separated ASNs for multi-origin prefixes. Blank lines
// and lines starting with '#' are skipped.
func ParseTable(r io.Reader) ([]Row, error) {
	var rows []Row
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.SplitN(line, "|", 6)
		if len(f) < 2 {
			return nil, fmt.Errorf("table line %d: want PREFIX | ASN [| CC | REGISTRY | ALLOCATED | NAME]", n)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			return nil, fmt.Errorf("table line %d: %w", n, err)
		}
		row := Row{Prefix: p.Masked()}
		for _, s := range strings.Fields(f[1]) {
			asn, err := strconv.ParseUint(strings.TrimPrefix(s, "AS"), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("table line %d: bad AS %q", n, s)
			}
			row.ASNs = append(row.ASNs, uint32(asn))
		}
		if len(row.ASNs) == 0 {
			return nil, fmt.Errorf("table line %d: no AS", n)
		}
		fields := []*string{&row.Country, &row.Registry, &row.Allocated, &row.ASName}
		for i, dst := range fields {
			if len(f) > i+2 {
				*dst = f[i+2]
			}
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("table line %d: %w", n+1, err)
	}
	return rows, nil
}

// WritePfx2as writes rows as a CAIDA pfx2as table (prefix, length, origins
// joined by '_'), the format whois.LoadTable reads.
func WritePfx2as(w io.Writer, rows []Row) error {
	bw := bufio.NewWriter(w)
	for _, r := range rows {
		asns := make([]string, len(r.ASNs))
		for i, a := range r.ASNs {
			asns[i] = strconv.FormatUint(uint64(a), 10)
		}
		fmt.Fprintf(bw, "%s\t%d\t%s\n", r.Prefix.Addr(), r.Prefix.Bits(), strings.Join(asns, "_"))
	}
	return bw.Flush()
}

// routes is a longest-prefix-match view of rows.
type routes struct{ t bart.Table[Row] }

func newRoutes(rows []Row) *routes {
	r := new(routes)
	for _, row := range rows {
		row.ASNs = slices.Clone(row.ASNs)
		r.t.Insert(row.Prefix.Masked(), row)
	}
	return r
}

func (r *routes) lookup(a netip.Addr) (Row, bool) {
	return r.t.Lookup(a.Unmap())
}

// names returns the row of the first prefix originated by asn, for AS
// name records.
func (r *routes) byASN(asn uint32) (Row, bool) {
	// A row is the AS's own when the AS is its first origin; a
	// multi-origin row names only its first AS, so it is the fallback.
	var fallback *Row
	for _, row := range r.t.AllSorted() {
		if len(row.ASNs) > 0 && row.ASNs[0] == asn {
			return row, true
		}
		if fallback == nil && slices.Contains(row.ASNs, asn) {
			fallback = &row
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return Row{}, false
}
