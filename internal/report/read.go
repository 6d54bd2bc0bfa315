package report

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/internal/iolimit"
)

// maxDocument bounds one anycheck document (or JSONL line) read back.
const maxDocument = 64 << 20

// ReadDoc is one anycheck run read back from its JSON document or JSONL
// stream (v2, or v1 upgraded as it is read): the measurements `compare`
// uses, and where they were taken.
type ReadDoc struct {
	Kind     string
	Started  time.Time
	Hostname string
	Label    string // --label of the run; "" without one
	Sources  []string
	// Location is the vantage's --location; the zero Point when the
	// document has none (or one off the globe, which is dropped).
	Location geo.Point
	IDs      []IDTarget
	Traces   []TraceResult
	Sweeps   []TraceSweep
	// Census is a census document's client prefixes (`census logs`,
	// `census report`), CensusSummary its summary (the services it is the
	// catchment of).
	Census        []CensusClient
	CensusSummary *CensusSummary
	Interrupted   bool
	// Ended is false for a JSONL stream cut before its end record: the
	// vantage (hostname, sources) is then unknown.
	Ended bool
	// Warnings say what was left out of results that were read (values
	// this anycheck does not know); the results themselves are kept.
	Warnings []string
}

// IsDocument tells anycheck output from other JSON by the first
// object's keys within the first bytes of a file: anycheck writes "schema"
// first. It is false for anything else (an Atlas array or result).
func IsDocument(head []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(head))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	t, err := dec.Token()
	return err == nil && t == "schema"
}

// ReadDocuments reads anycheck output (v2, and v1 as the first contract
// wrote it): one JSON document (or several
// in a row) or a JSONL stream (records grouped into runs by their end
// records). Problems with single documents or lines (another schema
// version, a kind without catchment data, a bad line) are returned in
// skipped, naming the document or line; err is for input that cannot be
// read at all.
func ReadDocuments(r io.Reader) (docs []ReadDoc, skipped []error, err error) {
	return readDocuments(r, maxDocument)
}

func readDocuments(r io.Reader, limit int) (docs []ReadDoc, skipped []error, err error) {
	src := &iolimit.Reader{R: r}
	br := bufio.NewReaderSize(src, 64<<10)
	head, _ := br.Peek(4096)
	if isJSONL(head) {
		return readJSONL(br, limit)
	}
	// The decoder reads a whole value before it returns: the source stops
	// giving bytes once this document has had limit of them.
	dec := json.NewDecoder(br)
	for i := 0; ; i++ {
		src.Max = int64(64<<10) + dec.InputOffset() + int64(limit)
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, skipped, nil
		}
		if err != nil || len(raw) > limit {
			switch {
			case errors.Is(err, iolimit.ErrLimit) || err == nil:
				err = fmt.Errorf("larger than %d MB; the rest of the input is not read", limit>>20)
			case errors.Is(err, io.ErrUnexpectedEOF):
				err = errors.New("truncated JSON")
			}
			return docs, skipped, fmt.Errorf("document %d: %w", i, err)
		}
		d, err := ParseDocument(raw)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		docs = append(docs, d)
	}
}

// errTooLarge is a JSONL line longer than the limit.
var errTooLarge = errors.New("too large")

// readLine reads one line of at most limit bytes (its newline included);
// a longer line is an error once limit bytes of it are read.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		if len(line)+len(part) > limit {
			return nil, errTooLarge
		}
		line = append(line, part...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// isJSONL: the first line is a complete JSON object that is a record (it
// has "type"). A document's first line is "{" alone.
func isJSONL(head []byte) bool {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	var probe struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(line, &probe) == nil && probe.Type != ""
}

// docHeader is the envelope of a document or a record.
type docHeader struct {
	Schema      string          `json:"schema"`
	Kind        string          `json:"kind"`
	Type        string          `json:"type"`
	Started     string          `json:"started"`
	Vantage     *Vantage        `json:"vantage"`
	Results     json.RawMessage `json:"results"`
	Result      json.RawMessage `json:"result"`
	Interrupted bool            `json:"interrupted"`
	Census      *CensusSummary  `json:"census"`
}

// ParseDocument reads one anycheck v1 JSON document. It is pure and total.
func ParseDocument(data []byte) (ReadDoc, error) {
	var h docHeader
	if err := json.Unmarshal(data, &h); err != nil {
		return ReadDoc{}, fmt.Errorf("not an anycheck document: %w", err)
	}
	d, err := h.start()
	if err != nil {
		return d, err
	}
	if h.Vantage != nil {
		d.Hostname, d.Label, d.Sources, d.Ended = h.Vantage.Hostname, h.Vantage.Label, h.Vantage.Sources, true
		d.Location = h.Vantage.point()
	}
	if len(h.Results) == 0 || string(h.Results) == "null" {
		return d, errors.New("no results")
	}
	if err := decodeResults(&d, h.Schema, h.Results, false); err != nil {
		return d, err
	}
	if d.Kind == KindCensus {
		d.CensusSummary = h.Census
		if h.Census == nil {
			return d, errors.New("no census summary")
		}
	}
	var c inputCheck
	c.check(&d)
	c.into(&d)
	return d, nil
}

// start checks the envelope: schema version, and a kind with catchment data.
func (h *docHeader) start() (ReadDoc, error) {
	if h.Schema == "" {
		return ReadDoc{}, errors.New("no \"schema\": not anycheck output")
	}
	if h.Schema != Schema && h.Schema != SchemaV1 {
		return ReadDoc{}, fmt.Errorf("schema %q: this anycheck reads %s and %s", h.Schema, Schema, SchemaV1)
	}
	d := ReadDoc{Kind: h.Kind, Interrupted: h.Interrupted}
	d.Started, _ = ParseTime(h.Started)
	switch h.Kind {
	case KindID, KindTrace, KindSweep, KindCensus:
		return d, nil
	}
	return d, fmt.Errorf("kind %q holds no identity or trace results", h.Kind)
}

func readJSONL(br *bufio.Reader, limit int) ([]ReadDoc, []error, error) {
	var docs []ReadDoc
	var skipped []error
	var cur *ReadDoc
	var c inputCheck
	for n := 1; ; n++ {
		line, err := readLine(br, limit)
		if errors.Is(err, errTooLarge) {
			return docs, skipped, fmt.Errorf("line %d: larger than %d MB; the rest of the input is not read", n, limit>>20)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if rerr := readRecord(line, &cur, &docs, &c); rerr != nil {
				skipped = append(skipped, fmt.Errorf("line %d: %w", n, rerr))
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, skipped, err
		}
	}
	if cur != nil {
		// Cut before its end record: keep what was measured.
		c.check(cur)
		c.into(cur)
		docs = append(docs, *cur)
	}
	return docs, skipped, nil
}

// readRecord reads one JSONL record into the run *cur (the results' unknown
// values are dropped and counted in c, said when the run ends).
func readRecord(line []byte, cur **ReadDoc, docs *[]ReadDoc, c *inputCheck) error {
	var h docHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	d, err := h.start()
	if err != nil {
		return err
	}
	if *cur == nil || (*cur).Kind != d.Kind {
		if *cur != nil {
			c.check(*cur)
			c.into(*cur)
			*docs = append(*docs, **cur)
		}
		*cur = &d
	}
	run := *cur
	switch h.Type {
	case RecordHop, RecordEvent:
		return nil
	case RecordResult:
		return decodeResults(run, h.Schema, h.Result, true)
	case RecordEnd:
		run.Started = d.Started
		if h.Vantage != nil {
			run.Hostname, run.Label, run.Sources = h.Vantage.Hostname, h.Vantage.Label, h.Vantage.Sources
			run.Location = h.Vantage.point()
		}
		run.Interrupted, run.Ended = h.Interrupted, true
		run.CensusSummary = h.Census
		c.check(run)
		c.into(run)
		*docs = append(*docs, *run)
		*cur = nil
		return nil
	}
	return fmt.Errorf("record type %q", h.Type)
}

// VantageKeys names the vantage of each document (catchment.JoinVantages
// over what each says: label, host name, source addresses, location);
// fallback names a document with neither label nor host name (its file).
func VantageKeys(docs []ReadDoc, fallback []string) []catchment.Vantage {
	runs := make([]catchment.RunVantage, len(docs))
	for i, d := range docs {
		runs[i] = catchment.RunVantage{Label: d.Label, Hostname: d.Hostname, Fallback: fallback[i], Addrs: docAddrs(d), Location: d.Location}
	}
	return catchment.JoinVantages(runs)
}

// point is the vantage's location when it is on the globe (a document is
// untrusted input: NaN cannot be in JSON, but 0,0 and 500,3 can).
func (v *Vantage) point() geo.Point {
	if v.Location == nil {
		return geo.Point{}
	}
	p := geo.Point{Lat: v.Location.Lat, Lon: v.Location.Lon}
	if !p.Valid() {
		return geo.Point{}
	}
	return p
}

func docAddrs(d ReadDoc) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(s string) {
		a, err := netip.ParseAddr(s)
		if ap, perr := netip.ParseAddrPort(s); perr == nil {
			a, err = ap.Addr(), nil
		}
		if err == nil && a.IsValid() && !a.IsUnspecified() && !seen[a.Unmap()] {
			seen[a.Unmap()] = true
			out = append(out, a.Unmap())
		}
	}
	for _, s := range d.Sources {
		add(s)
	}
	for _, t := range d.Traces {
		for _, f := range t.Flows {
			add(string(f.Flow.Src))
		}
	}
	for _, s := range d.Sweeps {
		for _, t := range s.Flows {
			add(string(t.Flow.Src))
		}
	}
	for _, t := range d.IDs {
		for _, f := range t.Flows {
			add(string(f.Flow.Src))
		}
	}
	return out
}

// Observations turns a document's results into catchment observations
// from vantage v; input names the file in messages.
func (d ReadDoc) Observations(v catchment.Vantage, input string) []catchment.Observation {
	var out []catchment.Observation
	for _, t := range d.IDs {
		out = append(out, t.observation(v, d.Started, input))
	}
	for _, t := range d.Traces {
		out = append(out, t.observation(v, input))
	}
	for _, t := range d.Sweeps {
		out = append(out, t.observation(v, input))
	}
	out = append(out, d.censusObservations(input)...)
	return out
}

// censusObservations: every client prefix of a census is a vantage of its
// own ("census 198.51.100.0/24", its origin the row's), towards the
// service address of its family, at the instance most of its queries
// (replies) reached — one flow per instance when it reached several at
// the same time, so compare says it is split. A census that names no
// service of a row's family leaves the row out (nothing to join it to);
// an unresponsive target names no instance and is left out too.
func (d ReadDoc) censusObservations(input string) []catchment.Observation {
	if d.CensusSummary == nil {
		return nil
	}
	var svc4, svc6 netip.Addr
	for _, s := range d.CensusSummary.Services {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
		case a.Unmap().Is4() && !svc4.IsValid():
			svc4 = a.Unmap()
		case a.Is6() && !a.Is4In6() && !svc6.IsValid():
			svc6 = a
		}
	}
	at := d.Started
	if d.CensusSummary.End != nil {
		if t, err := time.Parse(time.RFC3339Nano, *d.CensusSummary.End); err == nil {
			at = t
		}
	}
	var out []catchment.Observation
	for _, c := range d.Census {
		p, err := netip.ParsePrefix(c.Prefix)
		if err != nil || c.Instance == nil || len(c.Instances) == 0 {
			continue
		}
		target := svc6
		if p.Addr().Is4() {
			target = svc4
		}
		if !target.IsValid() {
			continue
		}
		v := catchment.Vantage{Key: "census:" + p.String(), Label: "census " + p.String()}
		v.Source, _ = netip.ParseAddr(c.Sample)
		if c.Origin != nil {
			v.Origin = catchment.Origin{ASNs: c.Origin.ASNs, ASName: c.Origin.ASName, Country: c.Origin.Country}
		}
		o := catchment.Observation{Vantage: v, Target: target, Time: at, Input: input}
		if len(c.Instances) == 1 || !c.Split {
			o.Identity = measure.Identity{Instance: *c.Instance, Source: CensusInstanceSource}
		} else {
			for _, in := range c.Instances {
				o.Flows = append(o.Flows, catchment.Flow{Identity: measure.Identity{Instance: in.Name, Source: CensusInstanceSource}})
			}
		}
		out = append(out, o)
	}
	return out
}

// CensusInstanceSource is where a census line's instance comes from: the
// instance's own log or listener named it.
const CensusInstanceSource = "census"

func targetName(input string) string {
	if _, err := netip.ParseAddr(strings.Trim(input, "[]")); err == nil {
		return ""
	}
	return input
}

// source is a flow's bound source, invalid when the flow does not say.
func (f FlowDTO) source() netip.AddrPort {
	a, err := netip.ParseAddr(string(f.Src))
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(f.Sport))
}

func (t IDTarget) observation(v catchment.Vantage, started time.Time, input string) catchment.Observation {
	target, _ := netip.ParseAddr(t.Target)
	o := catchment.Observation{Vantage: v, Target: target.Unmap(), TargetName: targetName(t.Input), Time: started, Input: input}
	for _, f := range t.Flows {
		src := f.Flow.source()
		if src.IsValid() && !o.Vantage.Source.IsValid() {
			o.Vantage.Source = src.Addr()
		}
		if len(f.Runs) == 0 {
			continue
		}
		last := f.Runs[len(f.Runs)-1]
		if ts, err := ParseTime(last.Started); err == nil && ts.After(o.Time) {
			o.Time = ts
		}
		// The flow reached the instance its latest run to name one named
		// (a last run whose answers were lost names none), and those
		// answers are what is judged.
		named := f.Runs[namedRun(f.Runs)]
		id := named.Instance.Identity()
		answers := make([]measure.Answer, 0, len(named.Answers))
		for _, a := range named.Answers {
			answers = append(answers, answerOf(a))
		}
		if len(t.Flows) > 1 {
			// Several flows: each flow's instance counts; the row names
			// the most common and says when they differ.
			o.Flows = append(o.Flows, catchment.Flow{Proto: t.Transport, Source: src, Dport: uint16(t.Port), Identity: id, Answers: answers})
		} else {
			o.Identity, o.DNSSource = id, src
		}
		o.Answers = append(o.Answers, answers...)
	}
	if t.Failed {
		o.Errors = append(o.Errors, "no DNS reply")
	}
	return o
}

func answerOf(a AnswerDTO) measure.Answer {
	// A v1 answer carries its flags only as suspicions: its header is
	// unknown (Known false) and it is judged by RCODE, TXT and name.
	c := measure.Answer{Name: dns.Fqdn(a.Name), Transport: measure.Transport(a.Transport), Status: measure.Status(a.Status),
		Rcode: -1, Header: measure.Header{TTL: -1}, TXT: a.TXT, Detail: a.Detail, Truncated: a.Truncated, Size: a.Size}
	if a.Rcode != nil {
		c.Rcode = *a.Rcode
	}
	if h := a.Header; h != nil {
		c.Header = measure.Header{Known: true, AA: h.AA, RA: h.RA, TTL: -1}
		if h.Class != nil {
			c.Header.Class = dns.StringToClass[*h.Class]
		}
		if h.TTL != nil && *h.TTL >= 0 {
			c.Header.TTL = *h.TTL
		}
	}
	switch {
	case a.NSIDHex != nil:
		c.NSID, _ = hex.DecodeString(*a.NSIDHex)
	case a.NSID != nil:
		c.NSID = []byte(*a.NSID)
	}
	if a.RTTMs != nil {
		c.RTT = fromMs(*a.RTTMs)
	}
	for _, s := range a.Suspicions {
		c.Suspicions = append(c.Suspicions, measure.Suspicion(s))
	}
	return c
}

func fromMs(ms float64) time.Duration {
	if ms < 0 || ms > 1e9 {
		return 0
	}
	return time.Duration(ms * float64(time.Millisecond))
}

func (r TraceResult) observation(v catchment.Vantage, input string) catchment.Observation {
	target, _ := netip.ParseAddr(r.Target)
	o := catchment.Observation{Vantage: v, Target: target.Unmap(), TargetName: targetName(r.Input), Input: input}
	for _, t := range r.Flows {
		fo := t.observation(v, o.Target, input)
		if !o.Vantage.Source.IsValid() || o.Vantage.Origin.AS() == 0 {
			o.Vantage = fo.Vantage
		}
		if fo.Time.After(o.Time) {
			o.Time = fo.Time
		}
		if o.Identity.Instance == "" {
			o.Identity = fo.Identity
		}
		o.Flows = append(o.Flows, fo.Flows...)
		o.Answers = append(o.Answers, fo.Answers...)
		o.Errors = append(o.Errors, fo.Errors...)
	}
	return o
}

// observation is one traced flow towards target as a catchment line.
func (t TraceFlow) observation(v catchment.Vantage, target netip.Addr, input string) catchment.Observation {
	if src := t.Flow.source(); src.IsValid() {
		v.Source = src.Addr()
	}
	if o := t.Path.SourceOrigin; o != nil {
		v.Origin = catchment.Origin{ASNs: o.ASNs, ASName: o.ASName, Country: o.Country}
	}
	o := catchment.Observation{Vantage: v, Target: target, Input: input}
	o.Time, _ = ParseTime(t.Path.Started)
	f := t.CatchmentFlow(target)
	o.Identity = f.Identity
	o.Flows = []catchment.Flow{f}
	o.Answers = f.Answers
	if !t.Path.Reached && t.Path.StopReason != "" {
		o.Errors = append(o.Errors, "not reached: "+t.Path.StopReason)
	}
	return o
}

// CatchmentFlow is the traced flow towards target in the catchment model
// (the JSON contract's adapter, as live.Flow is the live trace's): its hop
// list (responders with their smallest RTT, origin ASes and unreachable
// marks), the instance its answers named and the answers.
func (t TraceFlow) CatchmentFlow(target netip.Addr) catchment.Flow {
	target = target.Unmap()
	f := catchment.Flow{Proto: t.Flow.Protocol, Source: t.Flow.source(), Dport: uint16(t.Flow.Dport), Reached: t.Path.Reached, Identity: t.Instance.Identity()}
	for _, a := range t.Answers {
		f.Answers = append(f.Answers, answerOf(a))
	}
	for _, h := range t.Path.Hops {
		hop := catchment.Hop{TTL: h.TTL, RateLimited: h.RateLimited}
		for _, r := range h.Responders {
			a, err := netip.ParseAddr(r.Address)
			if err != nil {
				continue
			}
			resp := catchment.Responder{Addr: a.Unmap()}
			if r.Origin != nil {
				resp.ASNs = r.Origin.ASNs
			}
			for _, p := range h.Probes {
				if p.Reply == nil || p.Reply.From != r.Address {
					continue
				}
				if rtt := fromMs(p.Reply.RTTMs); rtt > 0 && (resp.RTT == 0 || rtt < resp.RTT) {
					resp.RTT = rtt
				}
				if p.Reply.Kind == "unreachable" && p.Reply.ICMPType != nil && p.Reply.ICMPCode != nil && resp.Addr != target && resp.Unreachable == "" {
					resp.Unreachable = measure.UnreachableMark(*p.Reply.ICMPType, *p.Reply.ICMPCode)
				}
			}
			hop.Responders = append(hop.Responders, resp)
		}
		f.Hops = append(f.Hops, hop)
	}
	return f
}

// observation is a flow sweep as one catchment-table line: every flow's
// hops and instance (the row names the most common instance and says
// when flows differ), every flow's answers, and the flows that failed or
// did not reach the target as errors.
func (s TraceSweep) observation(v catchment.Vantage, input string) catchment.Observation {
	target, _ := netip.ParseAddr(s.Target)
	o := catchment.Observation{Vantage: v, Target: target.Unmap(), TargetName: targetName(s.Input), Input: input}
	for _, t := range s.Flows {
		fo := t.observation(v, o.Target, input)
		if !o.Vantage.Source.IsValid() {
			o.Vantage = fo.Vantage
		}
		if fo.Time.After(o.Time) {
			o.Time = fo.Time
		}
		o.Flows = append(o.Flows, fo.Flows...)
		o.Answers = append(o.Answers, fo.Answers...)
		for _, e := range fo.Errors {
			o.Errors = append(o.Errors, fmt.Sprintf("flow %d: %s", t.Flow.Sport, e))
		}
	}
	for _, f := range s.FailedFlows {
		o.Errors = append(o.Errors, fmt.Sprintf("flow %d: %s", f.Sport, f.Message))
	}
	return o
}
