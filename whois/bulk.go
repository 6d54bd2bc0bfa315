package whois

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on a bulk whois exchange. A reply line of the real service is
// under 200 bytes, so these bound the memory a hostile or broken server
// can make us spend: at most maxBulkReply, or bulkBytesPerAddr per address
// asked when that is more. A Lookup of more than maxBulkBatch addresses is
// sent as several requests, one after the other.
const (
	maxBulkReply     = 4 << 20
	maxBulkLine      = 4096
	bulkBytesPerAddr = 1024
	maxBulkBatch     = 10_000
)

// Errors a bulk whois exchange can end with, for errors.Is.
var (
	ErrReplyTooLarge = errors.New("reply too large")
	ErrLineTooLong   = errors.New("reply line too long")
	ErrTruncated     = errors.New("reply truncated")
)

// bulkRow is one data row of a verbose bulk reply:
// AS | IP | BGP Prefix | CC | Registry | Allocated | AS Name.
type bulkRow struct {
	ASNs        []uint32
	Addr        netip.Addr
	Prefix      netip.Prefix
	Country     string
	Registry    string
	Allocated   string
	ASName      string
	Unannounced bool
}

// bulkReply is everything parsed from one bulk reply.
type bulkReply struct {
	Header string    // "Bulk mode; whois.cymru.com [...]" as sent
	Rows   []bulkRow // data rows in reply order; several per address for multi-origin
	Errors []string  // server error lines ("Error: no ASN or IP match on line 3.")
	// Malformed counts lines that were neither header, row nor error.
	Malformed int
	// Dropped counts rows beyond maxRowsPerAddr for one address: a server
	// repeating itself must not grow our memory with the reply.
	Dropped int
	// Rejected counts rows whose prefix does not contain their address (an
	// answer about other space is no answer); FirstRejected describes one.
	Rejected      int
	FirstRejected string

	perAddr map[netip.Addr]int
}

// maxRowsPerAddr bounds the rows kept for one address; real multi-origin
// prefixes have a handful of origins.
const maxRowsPerAddr = 16

// parseBulk parses a Team Cymru bulk whois reply. It reads at most limit
// bytes and lines of at most maxBulkLine bytes; beyond either it
// returns what it parsed so far with ErrReplyTooLarge or ErrLineTooLong. A
// last line without a newline that does not parse as a row is reported as
// ErrTruncated. Text fields are kept raw (they may hold control characters;
// escaping is the renderer's job).
func parseBulk(r io.Reader, limit int64) (bulkReply, error) {
	var rep bulkReply
	lr := &io.LimitedReader{R: r, N: limit + 1}
	br := bufio.NewReaderSize(lr, maxBulkLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if lr.N <= 0 {
				return rep, fmt.Errorf("%w: more than %d bytes", ErrReplyTooLarge, limit)
			}
			return rep, fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, maxBulkLine)
		}
		if lr.N <= 0 {
			return rep, fmt.Errorf("%w: more than %d bytes", ErrReplyTooLarge, limit)
		}
		complete := err == nil
		if err != nil && !errors.Is(err, io.EOF) {
			return rep, err
		}
		if len(line) > 0 {
			ok := rep.addLine(line)
			if !complete && !ok {
				return rep, fmt.Errorf("%w: last line %q", ErrTruncated, line)
			}
		}
		if !complete {
			return rep, nil
		}
	}
}

// addLine classifies one line; it reports false for a malformed line.
func (rep *bulkReply) addLine(raw []byte) bool {
	line := string(bytes.TrimRight(raw, "\r\n"))
	trimmed := strings.TrimSpace(line)
	switch {
	case trimmed == "":
		return true
	case strings.HasPrefix(trimmed, "Bulk mode;"):
		rep.Header = trimmed
		return true
	case strings.HasPrefix(trimmed, "Error:"):
		rep.Errors = append(rep.Errors, trimmed)
		return true
	}
	row, header, ok := parseBulkRow(line)
	switch {
	case header:
		return true
	case ok && row.Prefix.IsValid() && !row.Prefix.Contains(row.Addr):
		if rep.Rejected == 0 {
			rep.FirstRejected = fmt.Sprintf("%s in %s", row.Addr, row.Prefix)
		}
		rep.Rejected++
		return true
	case ok:
		if rep.perAddr == nil {
			rep.perAddr = make(map[netip.Addr]int)
		}
		if rep.perAddr[row.Addr] >= maxRowsPerAddr {
			rep.Dropped++
			return true
		}
		rep.perAddr[row.Addr]++
		rep.Rows = append(rep.Rows, row)
		return true
	}
	rep.Malformed++
	return false
}

// parseBulkRow parses one pipe-separated row. header is set for the column
// header line ("AS | IP | BGP Prefix | ...") that some servers send.
func parseBulkRow(line string) (row bulkRow, header, ok bool) {
	f := strings.Split(line, "|")
	if len(f) < 7 {
		return row, false, false
	}
	for i := range 6 {
		f[i] = strings.TrimSpace(f[i])
	}
	// The AS name is the rest of the line: it may itself contain '|'.
	name := strings.TrimSpace(strings.Join(f[6:], "|"))
	if f[0] == "AS" && f[1] == "IP" {
		return row, true, false
	}
	addr, err := netip.ParseAddr(f[1])
	if err != nil {
		return row, false, false
	}
	row.Addr = lookupAddr(addr)
	if f[0] == "NA" {
		row.Unannounced = true
		return row, false, true
	}
	asns, ok := parseASNList(f[0])
	if !ok {
		return row, false, false
	}
	row.ASNs = asns
	if p, err := netip.ParsePrefix(f[2]); err == nil {
		row.Prefix = p.Masked()
	}
	row.Country = naEmpty(f[3])
	row.Registry = naEmpty(f[4])
	row.Allocated = naEmpty(f[5])
	row.ASName = naEmpty(name)
	return row, false, true
}

// parseASNList parses "64500", "AS64500" or space-separated lists of them
// (some sources put every origin of a multi-origin prefix in one field).
func parseASNList(s string) ([]uint32, bool) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, false
	}
	out := make([]uint32, 0, len(fields))
	for _, f := range fields {
		n, ok := parseASN(f)
		if !ok {
			return nil, false
		}
		out = appendASN(out, n)
	}
	return out, true
}

func parseASN(s string) (uint32, bool) {
	if len(s) > 2 && (s[:2] == "AS" || s[:2] == "as") {
		s = s[2:]
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// appendASN appends n unless it is already there, keeping first-seen order.
func appendASN(list []uint32, n uint32) []uint32 {
	if slices.Contains(list, n) {
		return list
	}
	return append(list, n)
}

func naEmpty(s string) string {
	if s == "NA" {
		return ""
	}
	return s
}

// bulkResolver asks a Team Cymru style bulk whois server: one TCP
// connection per Lookup carrying every address, as the service asks of
// its users.
type bulkResolver struct {
	server  string
	timeout time.Duration
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newBulkResolver(opts Options) *bulkResolver {
	r := &bulkResolver{server: withPort(opts.WhoisServer, "43"), timeout: opts.timeout(), dial: opts.Dial}
	if r.server == "" {
		r.server = DefaultWhoisServer
	}
	if r.dial == nil {
		var d net.Dialer
		r.dial = d.DialContext
	}
	return r
}

// bulkRequest is the request body for addrs.
func bulkRequest(addrs []netip.Addr) []byte {
	var b bytes.Buffer
	b.WriteString("begin\nverbose\n")
	for _, a := range addrs {
		b.WriteString(lookupAddr(a).String())
		b.WriteByte('\n')
	}
	b.WriteString("end\n")
	return b.Bytes()
}

// Lookup sends all non-special addresses in one bulk request (several for
// more than maxBulkBatch addresses, one after the other, each bounded by
// the timeout). The map holds what was learned even when the error is not
// nil (a server error line, a reply that ended early).
func (r *bulkResolver) Lookup(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
	out, ask := splitSpecial(addrs)
	for batch := range slices.Chunk(ask, maxBulkBatch) {
		if err := r.lookupBatch(ctx, batch, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (r *bulkResolver) lookupBatch(ctx context.Context, ask []netip.Addr, out map[netip.Addr]Origin) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	rep, err := r.exchange(ctx, ask)
	mergeBulk(out, ask, rep)
	subject := "whois " + r.server
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			// The connection deadline is ctx's and ctx's end closes the
			// connection, so either means ctx ran out, even when its timer
			// has not fired yet.
			err = fmt.Errorf("%w (%w)", err, cmp.Or(ctx.Err(), context.DeadlineExceeded))
		}
		return fmt.Errorf("%s: %w", subject, err)
	}
	var missing int
	for _, a := range ask {
		if _, ok := out[a]; !ok {
			missing++
		}
	}
	switch {
	case rep.Rejected > 0:
		return fmt.Errorf("%s: %d row(s) named a prefix that does not contain their address (%s): no answer for %d of %d addresses", subject, rep.Rejected, rep.FirstRejected, missing, len(ask))
	case len(rep.Errors) > 0:
		return fmt.Errorf("%s: server reported %d error(s), first: %q", subject, len(rep.Errors), rep.Errors[0])
	case missing > 0:
		return fmt.Errorf("%s: %w: no answer for %d of %d addresses", subject, ErrTruncated, missing, len(ask))
	}
	return nil
}

// exchange runs one bulk request over one connection, under ctx's deadline.
func (r *bulkResolver) exchange(ctx context.Context, ask []netip.Addr) (bulkReply, error) {
	conn, err := r.dial(ctx, "tcp", r.server)
	if err != nil {
		return bulkReply{}, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	// The deadline bounds the whole exchange, so a server that trickles one
	// byte at a time cannot keep us past it; closing on cancel unblocks reads.
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return bulkReply{}, fmt.Errorf("set deadline: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	// Write concurrently with reading: a server that answers while we are
	// still sending a long request must not deadlock on full buffers.
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(bulkRequest(ask))
		if cw, ok := conn.(interface{ CloseWrite() error }); ok && err == nil {
			// Ignored: some servers want the connection half-open, and the
			// request already ends with "end".
			_ = cw.CloseWrite()
		}
		werr <- err
	}()
	rep, err := parseBulk(conn, max(maxBulkReply, int64(len(ask))*bulkBytesPerAddr))
	if err != nil {
		return rep, fmt.Errorf("read reply: %w", err)
	}
	if err := <-werr; err != nil {
		return rep, fmt.Errorf("send request: %w", err)
	}
	return rep, nil
}

// mergeBulk folds reply rows into origins keyed by the addresses asked
// (rows name the address as the server printed it, which may differ in
// form). Several rows for one address are a multi-origin prefix; when rows
// disagree on the prefix, the most specific one is the route taken.
func mergeBulk(out map[netip.Addr]Origin, ask []netip.Addr, rep bulkReply) {
	byAddr := make(map[netip.Addr][]bulkRow)
	for _, row := range rep.Rows {
		byAddr[row.Addr] = append(byAddr[row.Addr], row)
	}
	for _, a := range ask {
		rows := byAddr[lookupAddr(a)]
		if len(rows) == 0 {
			continue
		}
		best := -1
		for i, row := range rows {
			if row.Unannounced {
				continue
			}
			if best < 0 || prefixBits(row.Prefix) > prefixBits(rows[best].Prefix) {
				best = i
			}
		}
		if best < 0 {
			out[a] = Origin{Addr: a, Source: SourceCymru, Unannounced: true}
			continue
		}
		b := rows[best]
		o := Origin{Addr: a, Source: SourceCymru, Prefix: b.Prefix, Country: b.Country,
			Registry: b.Registry, Allocated: b.Allocated, ASName: b.ASName}
		for _, row := range rows {
			if row.Unannounced || row.Prefix != b.Prefix {
				continue
			}
			for _, n := range row.ASNs {
				o.ASNs = appendASN(o.ASNs, n)
			}
		}
		out[a] = o
	}
}

// prefixBits orders prefixes by specificity; an unknown prefix is least specific.
func prefixBits(p netip.Prefix) int {
	if !p.IsValid() {
		return -1
	}
	return p.Bits()
}
