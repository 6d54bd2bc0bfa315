package atlas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/anycheck/anycheck/trace"
)

// Result types this reader understands.
const (
	TypeTraceroute = "traceroute"
	TypeDNS        = "dns"
)

// Result is one RIPE Atlas measurement result (one probe, one run), in any
// firmware's layout, decoded. Unknown values are zero; addresses that do
// not parse are invalid netip.Addr.
type Result struct {
	Type     string     // TypeTraceroute or TypeDNS
	Firmware int        // "fw"
	ProbeID  int        // "prb_id"
	MsmID    int        // "msm_id"
	Time     time.Time  // "timestamp" (UTC)
	AF       int        // 4 or 6
	Dst      netip.Addr // "dst_addr" (fw 4400: "addr"/"address")
	DstName  string     // "dst_name" (fw 4400: "name"); untrusted
	From     netip.Addr // the probe's public address as the controller saw it
	Src      netip.Addr // "src_addr": the probe's own source address (often private)
	Proto    string     // "udp", "icmp" or "tcp" (lower case)
	Error    string     // a result-level error ("timeout 5000 ms", socket errors)
	Trace    *Traceroute
	DNS      []DNSReply // one for "result", one per "resultset" entry
}

// Traceroute is the traceroute part of a result.
type Traceroute struct {
	ParisID int // the Paris flow id; 0 = classic traceroute (a new flow per probe)
	Size    int
	EndTime time.Time
	Hops    []TraceHop
}

// TraceHop is one TTL of an Atlas traceroute.
type TraceHop struct {
	TTL int // 1…; Atlas's final probe to the target has TTL 255
	// Error replaces the replies when the probe could not even send
	// ("connect failed: Network is unreachable").
	Error   string
	Replies []TraceReply
}

// TraceReply is one probe's outcome at a hop.
type TraceReply struct {
	Timeout bool       // {"x":"*"}: no reply
	From    netip.Addr // invalid when absent or empty
	RTT     time.Duration
	// Late is set (> 0) when the reply came after later probes were sent
	// and has no RTT: it belongs to the probe that many places earlier.
	Late int
	// Err is the ICMP unreachable code letter ("N", "H", "A", "P", "p",
	// "h") or number; "" for time exceeded and destination replies.
	Err   string
	TTL   int        // TTL of the reply packet; -1 when absent
	ITTL  int        // TTL of the probe as quoted by the router: 1 unless the router says otherwise
	Edst  netip.Addr // the destination the quoted probe carried, when it differs from the target
	Size  int
	Flags string // TCP flags of a TCP reply ("SA", "R")
	Error string // a per-probe error (bind or send failure)
	MPLS  []trace.MPLSLabel
}

// DNSReply is one DNS query's outcome: the result, or one resultset entry.
type DNSReply struct {
	Dst     netip.Addr // the server asked (a resultset entry's own dst_addr)
	AF      int
	Proto   string
	Time    time.Time
	Timeout bool   // error {"timeout": N}
	Error   string // any error, timeouts included
	RTT     time.Duration
	Size    int
	Abuf    []byte        // the raw answer; nil when the probe kept only "answers"
	Answers []AtlasAnswer // the probe's own parse of the answer section
}

// AtlasAnswer is one entry of the probe-parsed "answers" list.
type AtlasAnswer struct {
	Type  string
	Name  string
	RDATA []string // fw < 4750: one string; later: a list
}

// ParseResult decodes one result. It is pure and total: any bytes give a
// Result or an error saying what is wrong; a result of another type (ping,
// http, …) is an error naming that type.
func ParseResult(data []byte) (Result, error) {
	var raw rawResult
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return Result{}, jsonError(err)
	}
	if dec.More() {
		return Result{}, errors.New("more than one JSON value")
	}
	return raw.result()
}

// jsonError turns decoder errors into messages that name the field.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q: %s where %s belongs", te.Field, te.Value, te.Type)
	}
	return fmt.Errorf("not JSON: %w", err)
}

// rawResult is every field of every firmware's layout this reader uses.
type rawResult struct {
	Type      string           `json:"type"`
	MsmName   string           `json:"msm_name"`
	Fw        flexInt          `json:"fw"`
	PrbID     flexInt          `json:"prb_id"`
	MsmID     flexInt          `json:"msm_id"`
	Timestamp flexInt          `json:"timestamp"`
	Endtime   flexInt          `json:"endtime"`
	AF        flexInt          `json:"af"`
	PF        flexInt          `json:"pf"` // fw 4400
	DstAddr   string           `json:"dst_addr"`
	OldAddr   string           `json:"addr"`    // fw 4400
	OldAddr2  string           `json:"address"` // fw 4400
	DstName   string           `json:"dst_name"`
	OldName   string           `json:"name"` // fw 4400
	From      string           `json:"from"`
	SrcAddr   string           `json:"src_addr"`
	OldSrc    string           `json:"srcaddr"` // fw 4400
	Proto     string           `json:"proto"`
	Mode      string           `json:"mode"` // fw 4400: "UDP4", "ICMP6", …
	ParisID   flexInt          `json:"paris_id"`
	OldParis  flexInt          `json:"paris-id"` // fw 4400
	Size      flexInt          `json:"size"`
	Result    resultField      `json:"result"`
	ResultSet []rawDNSSetEntry `json:"resultset"`
	Error     errorField       `json:"error"`
}

func (r *rawResult) result() (Result, error) {
	res := Result{
		Firmware: int(r.Fw.n),
		ProbeID:  int(r.PrbID.n),
		MsmID:    int(r.MsmID.n),
		Time:     unixTime(r.Timestamp.n),
		AF:       int(r.AF.n),
		DstName:  firstNonEmpty(r.DstName, r.OldName),
		From:     parseIP(r.From),
		Src:      parseIP(firstNonEmpty(r.SrcAddr, r.OldSrc)),
		Proto:    strings.ToLower(r.Proto),
		Error:    r.Error.text,
	}
	res.Dst = parseIP(firstNonEmpty(r.DstAddr, r.OldAddr, r.OldAddr2))
	if res.AF == 0 {
		res.AF = int(r.PF.n)
	}
	if r.Mode != "" {
		// fw 4400 "mode": the protocol and the family in one word.
		m := strings.ToLower(r.Mode)
		if res.Proto == "" {
			res.Proto = strings.TrimRight(m, "46")
		}
		if res.AF == 0 && (strings.HasSuffix(m, "4") || strings.HasSuffix(m, "6")) {
			res.AF = int(m[len(m)-1] - '0')
		}
	}
	if res.AF == 0 {
		switch {
		case res.Dst.Is4():
			res.AF = 4
		case res.Dst.Is6():
			res.AF = 6
		}
	}
	if res.ProbeID <= 0 {
		return res, errors.New("no prb_id: not an Atlas result")
	}
	res.Type = strings.ToLower(r.Type)
	if res.Type == "" {
		// fw 4400 has no "type": tell by the measurement name and shape.
		switch {
		case strings.EqualFold(r.MsmName, "traceroute") || r.Result.hops != nil:
			res.Type = TypeTraceroute
		case strings.EqualFold(r.MsmName, "tdig") || r.Result.dns != nil || r.ResultSet != nil:
			res.Type = TypeDNS
		}
	}
	switch res.Type {
	case TypeTraceroute:
		if r.Result.text != "" {
			return res, errors.New("firmware 1 traceroute (plain text output) is not supported")
		}
		if r.Result.hops == nil && res.Error == "" {
			return res, errors.New("traceroute without a result list")
		}
		tr := &Traceroute{ParisID: int(r.ParisID.n), Size: int(r.Size.n), EndTime: unixTime(r.Endtime.n)}
		if tr.ParisID == 0 {
			tr.ParisID = int(r.OldParis.n)
		}
		for _, h := range r.Result.hops {
			tr.Hops = append(tr.Hops, h.hop())
		}
		res.Trace = tr
	case TypeDNS:
		top := DNSReply{Dst: res.Dst, AF: res.AF, Proto: res.Proto, Time: res.Time}
		switch {
		case r.ResultSet != nil:
			for _, e := range r.ResultSet {
				d := DNSReply{Dst: parseIP(firstNonEmpty(e.DstAddr, e.OldAddr)), AF: int(e.AF.n), Proto: strings.ToLower(e.Proto), Time: unixTime(e.Time.n)}
				if d.Time.IsZero() {
					d.Time = res.Time
				}
				e.Result.fill(&d)
				e.Error.fill(&d)
				res.DNS = append(res.DNS, d)
			}
		case r.Result.dns != nil:
			r.Result.dns.fill(&top)
			res.DNS = append(res.DNS, top)
		case r.Error.set:
			r.Error.fill(&top)
			res.DNS = append(res.DNS, top)
		default:
			return res, errors.New("dns result without result, resultset or error")
		}
	case "":
		return res, errors.New("no result type")
	default:
		return res, fmt.Errorf("a %s result: only traceroute and dns results are read", res.Type)
	}
	return res, nil
}

func unixTime(s int64) time.Time {
	if s <= 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// parseIP reads an address field; anything else (empty, "*", a name) is
// the invalid address.
func parseIP(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a.Unmap()
}

// flexInt accepts a number, a numeric string or null (Atlas writes
// "dst_port" as a string in some firmware).
type flexInt struct {
	n   int64
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		f.n, f.set = n, true
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != v || v > 1<<53 || v < -(1<<53) {
		return fmt.Errorf("not a number: %.40s", b)
	}
	f.n, f.set = int64(v), true
	return nil
}

// flexString accepts a string or a number ("err" is a letter or an ICMP code).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	if _, err := strconv.ParseFloat(string(b), 64); err != nil {
		return fmt.Errorf("not a string or number: %.40s", b)
	}
	*f = flexString(b)
	return nil
}

// stringList accepts one string or a list of strings (RDATA before and
// after firmware 4750).
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		var s []string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = s
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*l = []string{s}
	return nil
}

// resultField is "result": a hop list (traceroute), an object (dns), or
// text (firmware 1 traceroute).
type resultField struct {
	hops []rawHop
	dns  *rawDNSResult
	text string
}

func (f *resultField) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '[':
		f.hops = []rawHop{}
		return json.Unmarshal(b, &f.hops)
	case '{':
		f.dns = &rawDNSResult{}
		return json.Unmarshal(b, f.dns)
	case '"':
		return json.Unmarshal(b, &f.text)
	case 'n':
		return nil
	}
	return fmt.Errorf("result is neither a list, an object nor text")
}

// errorField is "error": {"timeout": 5000}, {"socket": "…"}, or text.
type errorField struct {
	set     bool
	timeout bool
	text    string
}

func (f *errorField) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	f.set = true
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &f.text)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("error is neither text nor an object")
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		v := strings.Trim(string(m[k]), `"`)
		if k == "timeout" {
			f.timeout = true
			parts = append(parts, "timeout after "+v+" ms")
			continue
		}
		parts = append(parts, k+": "+v)
	}
	f.text = strings.Join(parts, "; ")
	return nil
}

func (f errorField) fill(d *DNSReply) {
	if !f.set {
		return
	}
	d.Error = f.text
	d.Timeout = f.timeout
}

type rawHop struct {
	Hop    flexInt    `json:"hop"`
	Error  string     `json:"error"`
	Result []rawReply `json:"result"`
}

type rawReply struct {
	X       string      `json:"x"`
	From    string      `json:"from"`
	RTT     *float64    `json:"rtt"`
	Late    flexInt     `json:"late"`
	Err     flexString  `json:"err"`
	TTL     flexInt     `json:"ttl"`
	ITTL    flexInt     `json:"ittl"`
	Edst    string      `json:"edst"`
	Size    flexInt     `json:"size"`
	Flags   string      `json:"flags"`
	Error   string      `json:"error"`
	ICMPExt *rawICMPExt `json:"icmpext"`
}

type rawICMPExt struct {
	Obj []struct {
		Class flexInt `json:"class"`
		Type  flexInt `json:"type"`
		MPLS  []struct {
			Label flexInt `json:"label"`
			Exp   flexInt `json:"exp"`
			S     flexInt `json:"s"`
			TTL   flexInt `json:"ttl"`
		} `json:"mpls"`
	} `json:"obj"`
}

func (h rawHop) hop() TraceHop {
	out := TraceHop{TTL: int(h.Hop.n), Error: h.Error}
	for _, r := range h.Result {
		rep := TraceReply{
			Timeout: r.X == "*",
			From:    parseIP(r.From),
			Late:    int(r.Late.n),
			Err:     string(r.Err),
			TTL:     -1,
			ITTL:    1,
			Edst:    parseIP(r.Edst),
			Size:    int(r.Size.n),
			Flags:   r.Flags,
			Error:   r.Error,
		}
		if r.RTT != nil && *r.RTT >= 0 && *r.RTT < 1e9 {
			rep.RTT = time.Duration(*r.RTT * float64(time.Millisecond))
		}
		if r.TTL.set {
			rep.TTL = int(r.TTL.n)
		}
		if r.ITTL.set {
			rep.ITTL = int(r.ITTL.n)
		}
		if r.ICMPExt != nil {
			for _, o := range r.ICMPExt.Obj {
				// RFC 4950: class 1 (MPLS label stack), type 1 (incoming stack).
				if o.Class.n != 1 {
					continue
				}
				for _, l := range o.MPLS {
					rep.MPLS = append(rep.MPLS, trace.MPLSLabel{Label: uint32(l.Label.n), TC: uint8(l.Exp.n), S: l.S.n != 0, TTL: uint8(l.TTL.n)})
				}
			}
		}
		out.Replies = append(out.Replies, rep)
	}
	return out
}

type rawDNSResult struct {
	RT      *float64       `json:"rt"`
	Size    flexInt        `json:"size"`
	Abuf    string         `json:"abuf"`
	Answers []rawDNSAnswer `json:"answers"`
}

type rawDNSAnswer struct {
	Type  string     `json:"TYPE"`
	Name  string     `json:"NAME"`
	RDATA stringList `json:"RDATA"`
}

type rawDNSSetEntry struct {
	AF      flexInt       `json:"af"`
	DstAddr string        `json:"dst_addr"`
	OldAddr string        `json:"addr"`
	Proto   string        `json:"proto"`
	Time    flexInt       `json:"time"`
	Result  *rawDNSResult `json:"result"`
	Error   errorField    `json:"error"`
}

func (r *rawDNSResult) fill(d *DNSReply) {
	if r == nil {
		return
	}
	if r.RT != nil && *r.RT >= 0 && *r.RT < 1e9 {
		d.RTT = time.Duration(*r.RT * float64(time.Millisecond))
	}
	d.Size = int(r.Size.n)
	if r.Abuf != "" {
		if b, err := decodeBase64(r.Abuf); err == nil {
			d.Abuf = b
		} else {
			d.Error = "abuf: not base64"
		}
	}
	for _, a := range r.Answers {
		d.Answers = append(d.Answers, AtlasAnswer{Type: a.Type, Name: a.Name, RDATA: a.RDATA})
	}
}
