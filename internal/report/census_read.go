package report

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/anycheck/anycheck/census"
	"github.com/anycheck/anycheck/whois"
)

// CensusRecord is one record of an active census read back: a reply a
// listener kept, or a request the sender sent.
type CensusRecord struct {
	Reply *census.Reply
	// Sent is a request of census SentCensus sent by SentSite.
	Sent       *census.Sent
	SentCensus uint64
	SentSite   string
	// Origin is the reply source's AS and country where the file says it
	// (Verfploeter's CSV does).
	Origin *whois.Origin
	// Anycast is the census's anycast address, from a sender's or
	// listener's end record (no reply or request with it).
	Anycast netip.Addr
}

// Formats of census files.
const (
	CensusFileJSON        = "anycheck json"
	CensusFileJSONL       = "anycheck jsonl"
	CensusFileCSV         = "anycheck csv"
	CensusFileVerfploeter = "verfploeter csv"
)

// maxCensusLine bounds one line (a JSONL record, a CSV row).
const maxCensusLine = 1 << 20

// ReadCensusFile reads the records of an active census from a listener's
// or sender's file: anycheck's JSONL or JSON (`census listen`, `census
// send`), their CSV, or the CSV of Verfploeter / MAnycastR (task_id,
// client_id, transmit_time, receive_time, …, source_address_asn), told
// from the content. fn is called for every record; a record that does not
// parse is an error naming its line, and reading stops.
func ReadCensusFile(r io.Reader, fn func(CensusRecord) error) (format string, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	trimmed := bytes.TrimLeft(head, " \t\r\n\ufeff")
	switch {
	case len(trimmed) == 0:
		return "", errors.New("empty file")
	case trimmed[0] == '{':
		return readCensusJSON(br, fn)
	}
	line, _, _ := bytes.Cut(head, []byte("\n"))
	header := strings.Split(strings.TrimSpace(string(line)), ",")
	switch {
	case len(header) >= 4 && header[0] == "task_id" && header[1] == "client_id":
		return CensusFileVerfploeter, readVerfploeter(br, fn)
	case equalHeader(header, censusReplyHeader), equalHeader(header, censusSentHeader):
		return CensusFileCSV, readCensusCSV(br, fn)
	}
	return "", fmt.Errorf("starts with %q: not a census file (anycheck census listen/send JSON, JSONL or CSV, or Verfploeter CSV)", truncate(string(line), 40))
}

var (
	censusReplyHeader = []string{"site", "census", "sender", "target", "from", "seq", "ttl", "sent", "received", "elapsed_ms"}
	censusSentHeader  = []string{"census", "site", "seq", "target", "at", "error"}
)

func equalHeader(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// censusLine is what a JSONL line or a JSON document of the census
// streams may hold.
type censusLine struct {
	Schema       string               `json:"schema"`
	Kind         string               `json:"kind"`
	Type         string               `json:"type"`
	Reply        *CensusReply         `json:"reply"`
	Sent         *CensusSent          `json:"sent"`
	Results      []json.RawMessage    `json:"results"`
	CensusSend   *CensusSendSummary   `json:"census_send"`
	CensusListen *CensusListenSummary `json:"census_listen"`
}

// anycast is the address an end record or a document's summary names.
func (l censusLine) anycast() (netip.Addr, bool) {
	s := ""
	switch {
	case l.CensusSend != nil:
		s = l.CensusSend.Anycast
	case l.CensusListen != nil:
		s = l.CensusListen.Anycast
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err == nil
}

func readCensusJSON(br *bufio.Reader, fn func(CensusRecord) error) (string, error) {
	dec := json.NewDecoder(io.LimitReader(br, 1<<40))
	format := CensusFileJSONL
	for n := 1; ; n++ {
		var l censusLine
		err := dec.Decode(&l)
		if errors.Is(err, io.EOF) {
			return format, nil
		}
		if err != nil {
			return format, fmt.Errorf("record %d: %w", n, err)
		}
		if l.Schema != Schema && l.Schema != SchemaV1 {
			// Census records are the same in both versions.
			return format, fmt.Errorf("record %d: schema %q, not %s", n, l.Schema, Schema)
		}
		if l.Kind != KindCensusListen && l.Kind != KindCensusSend {
			return format, fmt.Errorf("record %d: a %q document, not census listen or send output", n, l.Kind)
		}
		var recs []CensusRecord
		if a, ok := l.anycast(); ok {
			recs = append(recs, CensusRecord{Anycast: a})
		}
		switch {
		case l.Type == "" && l.Results != nil: // a whole document
			format = CensusFileJSON
			for i, raw := range l.Results {
				var rec CensusRecord
				var err error
				if l.Kind == KindCensusListen {
					var r CensusReply
					if err = json.Unmarshal(raw, &r); err == nil {
						rec, err = r.record()
					}
				} else {
					var s CensusSent
					if err = json.Unmarshal(raw, &s); err == nil {
						rec, err = s.record()
					}
				}
				if err != nil {
					return format, fmt.Errorf("result %d: %w", i+1, err)
				}
				recs = append(recs, rec)
			}
		case l.Type == RecordReply && l.Reply != nil:
			rec, err := l.Reply.record()
			if err != nil {
				return format, fmt.Errorf("record %d: %w", n, err)
			}
			recs = append(recs, rec)
		case l.Type == RecordSent && l.Sent != nil:
			rec, err := l.Sent.record()
			if err != nil {
				return format, fmt.Errorf("record %d: %w", n, err)
			}
			recs = append(recs, rec)
		case l.Type == RecordEnd:
		default:
			return format, fmt.Errorf("record %d: type %q without its record", n, l.Type)
		}
		for _, rec := range recs {
			if err := fn(rec); err != nil {
				return format, err
			}
		}
	}
}

func parseTime(what, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: not an RFC 3339 time", what, truncate(s, 40))
	}
	return t.UTC(), nil
}

func parseAddr(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s %q: not an IP address", what, truncate(s, 40))
	}
	return a.Unmap(), nil
}

func (r CensusReply) record() (CensusRecord, error) {
	id, err := ParseCensusID(r.Census)
	if err != nil {
		return CensusRecord{}, err
	}
	if err := census.CheckSite(r.Site); err != nil {
		return CensusRecord{}, fmt.Errorf("listener %v", err)
	}
	out := census.Reply{Site: r.Site, Census: id, Sender: r.Sender, Seq: r.Seq, TTL: -1}
	if out.Target, err = parseAddr("target", r.Target); err != nil {
		return CensusRecord{}, err
	}
	if r.From != "" {
		if out.From, err = parseAddr("from", r.From); err != nil {
			return CensusRecord{}, err
		}
	}
	if r.TTL != nil {
		out.TTL = *r.TTL
	}
	if out.Sent, err = parseTime("sent", r.Sent); err != nil {
		return CensusRecord{}, err
	}
	if out.Received, err = parseTime("received", r.Received); err != nil {
		return CensusRecord{}, err
	}
	return CensusRecord{Reply: &out}, nil
}

func (s CensusSent) record() (CensusRecord, error) {
	id, err := ParseCensusID(s.Census)
	if err != nil {
		return CensusRecord{}, err
	}
	out := census.Sent{Seq: s.Seq}
	if out.Target, err = parseAddr("target", s.Target); err != nil {
		return CensusRecord{}, err
	}
	if out.At, err = parseTime("at", s.At); err != nil {
		return CensusRecord{}, err
	}
	if s.Error != nil {
		out.Err = errors.New(*s.Error)
	}
	return CensusRecord{Sent: &out, SentCensus: id, SentSite: s.Site}, nil
}

func newCSVReader(r io.Reader) *csv.Reader {
	cr := csv.NewReader(&limitedLines{r: bufio.NewReader(r)})
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	return cr
}

// limitedLines fails a read when a line grows past maxCensusLine, so a
// file without newlines cannot make the CSV reader hold all of it.
type limitedLines struct {
	r   *bufio.Reader
	run int
}

func (l *limitedLines) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			l.run = 0
		} else if l.run++; l.run > maxCensusLine {
			return 0, fmt.Errorf("a line longer than %d bytes", maxCensusLine)
		}
	}
	return n, err
}

func readCensusCSV(r io.Reader, fn func(CensusRecord) error) error {
	cr := newCSVReader(r)
	header, err := cr.Read()
	if err != nil {
		return err
	}
	reply := len(header) == len(censusReplyHeader)
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		var out CensusRecord
		switch {
		case reply && len(rec) == len(censusReplyHeader):
			r := CensusReply{Site: rec[0], Census: rec[1], Sender: rec[2], Target: rec[3], From: rec[4], Sent: rec[7], Received: rec[8]}
			r.Seq, _ = strconv.Atoi(rec[5])
			if ttl, err := strconv.Atoi(rec[6]); err == nil {
				r.TTL = &ttl
			}
			out, err = r.record()
		case !reply && len(rec) == len(censusSentHeader):
			s := CensusSent{Census: rec[0], Site: rec[1], Target: rec[3], At: rec[4]}
			s.Seq, _ = strconv.Atoi(rec[2])
			if rec[5] != "" {
				e := rec[5]
				s.Error = &e
			}
			out, err = s.record()
		default:
			err = fmt.Errorf("%d fields, want %d", len(rec), len(header))
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := fn(out); err != nil {
			return err
		}
	}
}

// readVerfploeter reads the CSV Verfploeter and MAnycastR write: one row
// per reply, with the receiving site (client_id), the pinged address
// (meta_destination_address, else source_address), times in Unix
// nanoseconds and, where the tool added them, the replier's country and AS.
func readVerfploeter(r io.Reader, fn func(CensusRecord) error) error {
	cr := newCSVReader(r)
	header, err := cr.Read()
	if err != nil {
		return err
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, need := range []string{"task_id", "client_id", "source_address"} {
		if _, ok := col[need]; !ok {
			return fmt.Errorf("header: no %s column", need)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		bad := func(err error) error { return fmt.Errorf("line %d: %w", line, err) }
		task, err := strconv.ParseUint(get(rec, "task_id"), 10, 64)
		if err != nil {
			return bad(fmt.Errorf("task_id %q: not a number", truncate(get(rec, "task_id"), 20)))
		}
		out := census.Reply{Census: task, Site: get(rec, "client_id"), TTL: -1}
		if err := census.CheckSite(out.Site); err != nil {
			return bad(fmt.Errorf("client_id: %v", err))
		}
		if out.From, err = parseAddr("source_address", get(rec, "source_address")); err != nil {
			return bad(err)
		}
		out.Target = out.From
		if t := get(rec, "meta_destination_address"); t != "" {
			if out.Target, err = parseAddr("meta_destination_address", t); err != nil {
				return bad(err)
			}
		}
		for _, x := range []struct {
			name string
			to   *time.Time
		}{{"transmit_time", &out.Sent}, {"receive_time", &out.Received}} {
			if v := get(rec, x.name); v != "" {
				ns, err := strconv.ParseInt(v, 10, 64)
				if err != nil || ns < 0 {
					return bad(fmt.Errorf("%s %q: not Unix nanoseconds", x.name, truncate(v, 30)))
				}
				*x.to = time.Unix(0, ns).UTC()
			}
		}
		if v := get(rec, "ttl"); v != "" {
			if ttl, err := strconv.Atoi(v); err == nil && ttl >= 0 && ttl <= 255 {
				out.TTL = ttl
			}
		}
		cr := CensusRecord{Reply: &out}
		asn, cc := get(rec, "source_address_asn"), get(rec, "source_address_country")
		if n, err := strconv.ParseUint(asn, 10, 32); err == nil && n > 0 {
			cr.Origin = &whois.Origin{Addr: out.From, ASNs: []uint32{uint32(n)}, Country: cc, Source: "file"}
		} else if cc != "" && len(cc) <= 3 {
			cr.Origin = &whois.Origin{Addr: out.From, Country: cc, Source: "file"}
		}
		if err := fn(cr); err != nil {
			return err
		}
	}
}
