package atlas

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/anycheck/anycheck/measure"

	"github.com/valyala/fastjson"
)

// ParseResult decodes one result. It is pure and total: any bytes give a
// Result or an error saying what is wrong; a result of another type (ping,
// http, …) is an error naming that type.
func ParseResult(data []byte) (Result, error) {
	var p fastjson.Parser
	v, err := p.ParseBytes(data)
	if err != nil {
		return Result{}, notJSON(err)
	}
	return decodeResult(v)
}

func notJSON(err error) error { return fmt.Errorf("not JSON: %w", err) }

// The result is decoded from a parsed JSON tree (fastjson: parsed once,
// no reflection), field by field, with the leniency Atlas's firmware
// history needs: numbers that arrive as strings, "err" as a letter or a
// number, RDATA as a string or a list. A field of the wrong kind is an
// error naming the field.

// rawResult is every top-level field of every firmware's layout this
// reader uses; "result" and "resultset" are decoded once the type is known.
type rawResult struct {
	typ, msmName                                 string
	fw, prbID, msmID, timestamp, endtime, af, pf flexNum
	parisID, oldParis, size                      flexNum
	dstAddr, oldAddr, oldAddr2, dstName, oldName string // fw 4400: addr, address, name
	from, srcAddr, oldSrc, proto, mode           string // fw 4400: srcaddr, mode ("UDP4", "ICMP6", …)
	result, resultSet                            *fastjson.Value
	err                                          errorField
}

// flexNum is a number, a numeric string, or absent/null (set false).
type flexNum struct {
	n   int64
	set bool
}

// fields decodes the fields of one object, keeping the first error.
type fields struct{ err error }

func (d *fields) fail(name string, v *fastjson.Value, want string) {
	if d.err == nil {
		d.err = fmt.Errorf("field %q: %s where %s belongs", name, kindOf(v), want)
	}
}

func kindOf(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeObject:
		return "an object"
	case fastjson.TypeArray:
		return "a list"
	case fastjson.TypeString:
		return "text"
	case fastjson.TypeNumber:
		return "a number"
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "a boolean"
	}
	return "null"
}

// str reads text; null is "".
func (d *fields) str(v *fastjson.Value, name string) string {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return text(b)
	case fastjson.TypeNull:
		return ""
	}
	d.fail(name, v, "text")
	return ""
}

// text is b as a string, invalid UTF-8 bytes replaced by U+FFFD each (as
// encoding/json does).
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			sb.WriteString("\uFFFD")
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}

// num reads a number, a numeric string ("dst_port" in some firmware) or null.
func (d *fields) num(v *fastjson.Value, name string) flexNum {
	var s string
	switch v.Type() {
	case fastjson.TypeNull:
		return flexNum{}
	case fastjson.TypeNumber:
		if n, err := v.Int64(); err == nil {
			return flexNum{n, true}
		}
		f, _ := v.Float64()
		return d.float(f, name, v)
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		s = string(b)
	default:
		d.fail(name, v, "a number")
		return flexNum{}
	}
	if s == "" || s == "null" {
		return flexNum{}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return flexNum{n, true}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d.fail(name, v, "a number")
		return flexNum{}
	}
	return d.float(f, name, v)
}

func (d *fields) float(f float64, name string, v *fastjson.Value) flexNum {
	if math.IsNaN(f) || f > 1<<53 || f < -(1<<53) {
		d.fail(name, v, "a number in range")
		return flexNum{}
	}
	return flexNum{int64(f), true}
}

// ms reads an RTT in milliseconds: a number, or null (none).
func (d *fields) ms(v *fastjson.Value, name string) (time.Duration, bool) {
	switch v.Type() {
	case fastjson.TypeNumber:
		f, _ := v.Float64()
		if f >= 0 && f < 1e9 {
			return time.Duration(f * float64(time.Millisecond)), true
		}
		return 0, false
	case fastjson.TypeNull:
		return 0, false
	}
	d.fail(name, v, "a number")
	return 0, false
}

// list reads a list; null is empty.
func (d *fields) list(v *fastjson.Value, name string) []*fastjson.Value {
	switch v.Type() {
	case fastjson.TypeArray:
		a, _ := v.Array()
		return a
	case fastjson.TypeNull:
		return nil
	}
	d.fail(name, v, "a list")
	return nil
}

// object reads an object; null is nil.
func (d *fields) object(v *fastjson.Value, name string) *fastjson.Object {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		return o
	case fastjson.TypeNull:
		return nil
	}
	d.fail(name, v, "an object")
	return nil
}

func decodeResult(v *fastjson.Value) (Result, error) {
	var d fields
	o := d.object(v, "result object")
	if d.err != nil {
		return Result{}, fmt.Errorf("%s, not a result object", kindOf(v))
	}
	if o == nil {
		return Result{}, errors.New("null, not a result object")
	}
	var r rawResult
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "type":
			r.typ = d.str(v, "type")
		case "msm_name":
			r.msmName = d.str(v, "msm_name")
		case "fw":
			r.fw = d.num(v, "fw")
		case "prb_id":
			r.prbID = d.num(v, "prb_id")
		case "msm_id":
			r.msmID = d.num(v, "msm_id")
		case "timestamp":
			r.timestamp = d.num(v, "timestamp")
		case "endtime":
			r.endtime = d.num(v, "endtime")
		case "af":
			r.af = d.num(v, "af")
		case "pf":
			r.pf = d.num(v, "pf")
		case "paris_id":
			r.parisID = d.num(v, "paris_id")
		case "paris-id":
			r.oldParis = d.num(v, "paris-id")
		case "size":
			r.size = d.num(v, "size")
		case "dst_addr":
			r.dstAddr = d.str(v, "dst_addr")
		case "addr":
			r.oldAddr = d.str(v, "addr")
		case "address":
			r.oldAddr2 = d.str(v, "address")
		case "dst_name":
			r.dstName = d.str(v, "dst_name")
		case "name":
			r.oldName = d.str(v, "name")
		case "from":
			r.from = d.str(v, "from")
		case "src_addr":
			r.srcAddr = d.str(v, "src_addr")
		case "srcaddr":
			r.oldSrc = d.str(v, "srcaddr")
		case "proto":
			r.proto = d.str(v, "proto")
		case "mode":
			r.mode = d.str(v, "mode")
		case "result":
			r.result = v
		case "resultset":
			r.resultSet = v
		case "error":
			r.err = d.errorField(v, "error")
		}
	})
	if d.err != nil {
		return Result{}, d.err
	}
	return r.decode()
}

func (r *rawResult) decode() (Result, error) {
	var warn []string
	res, err := r.decodeWith(&warn)
	res.Warnings = warn
	return res, err
}

func (r *rawResult) decodeWith(warn *[]string) (Result, error) {
	res := Result{
		Firmware: int(r.fw.n),
		ProbeID:  int(r.prbID.n),
		MsmID:    int(r.msmID.n),
		Time:     checkedTime(r.timestamp.n, "timestamp", warn),
		AF:       int(r.af.n),
		DstName:  firstNonEmpty(r.dstName, r.oldName),
		From:     parseIP(r.from),
		Src:      parseIP(firstNonEmpty(r.srcAddr, r.oldSrc)),
		Proto:    strings.ToLower(r.proto),
		Error:    r.err.text,
	}
	res.Dst = parseIP(firstNonEmpty(r.dstAddr, r.oldAddr, r.oldAddr2))
	if res.AF == 0 {
		res.AF = int(r.pf.n)
	}
	if r.mode != "" {
		// fw 4400 "mode": the protocol and the family in one word.
		m := strings.ToLower(r.mode)
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
	resultType := fastjson.TypeNull
	if r.result != nil {
		resultType = r.result.Type()
	}
	hasSet := r.resultSet != nil && r.resultSet.Type() != fastjson.TypeNull
	res.Type = strings.ToLower(r.typ)
	if res.Type == "" {
		// fw 4400 has no "type": tell by the measurement name and shape.
		switch {
		case strings.EqualFold(r.msmName, "traceroute") || resultType == fastjson.TypeArray:
			res.Type = TypeTraceroute
		case strings.EqualFold(r.msmName, "tdig") || resultType == fastjson.TypeObject || hasSet:
			res.Type = TypeDNS
		}
	}
	switch res.Type {
	case TypeTraceroute:
		switch resultType {
		case fastjson.TypeString:
			return res, errors.New("firmware 1 traceroute (plain text output) is not supported")
		case fastjson.TypeArray, fastjson.TypeNull:
		default:
			return res, fmt.Errorf("field %q: %s where a hop list belongs", "result", kindOf(r.result))
		}
		if resultType != fastjson.TypeArray && res.Error == "" {
			return res, errors.New("traceroute without a result list")
		}
		tr := &Traceroute{ParisID: int(r.parisID.n), Size: int(r.size.n), EndTime: checkedTime(r.endtime.n, "endtime", warn)}
		if tr.ParisID == 0 {
			tr.ParisID = int(r.oldParis.n)
		}
		if resultType == fastjson.TypeArray {
			hops, err := decodeHops(r.result, warn)
			if err != nil {
				return res, err
			}
			tr.Hops = hops
		}
		res.Trace = tr
	case TypeDNS:
		var d fields
		top := DNSReply{Dst: res.Dst, AF: res.AF, Proto: res.Proto, Time: res.Time}
		switch {
		case hasSet:
			for i, ev := range d.list(r.resultSet, "resultset") {
				e, err := decodeSetEntry(ev, res.Time, warn)
				if err != nil {
					return res, fmt.Errorf("resultset entry %d: %w", i, err)
				}
				res.DNS = append(res.DNS, e)
			}
		case resultType == fastjson.TypeObject:
			d.dnsResult(r.result, &top)
			res.DNS = append(res.DNS, top)
		case r.err.set:
			r.err.fill(&top)
			res.DNS = append(res.DNS, top)
		case resultType == fastjson.TypeNull:
			return res, errors.New("dns result without result, resultset or error")
		default:
			d.fail("result", r.result, "an object")
		}
		if d.err != nil {
			return res, d.err
		}
	case "":
		return res, errors.New("no result type")
	default:
		return res, fmt.Errorf("a %s result: only traceroute and dns results are read", res.Type)
	}
	return res, nil
}

// maxUnix is the last second of year 9999: a later time has no RFC 3339
// form (the JSON output's date-time).
const maxUnix = 253402300799

// checkedTime is UNIX seconds s as a time; zero for none (0 or less), and
// zero with a warning for one past year 9999.
func checkedTime(s int64, field string, warn *[]string) time.Time {
	switch {
	case s <= 0:
		return time.Time{}
	case s > maxUnix:
		*warn = append(*warn, fmt.Sprintf("%s %d out of range: the result is undated", field, s))
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

// maxHops is the most hops a traceroute has: Atlas numbers them 1…255.
const maxHops = 255

// decodeHops reads the hop list: hops numbered outside 1…255 are left out,
// and hops past the 255th, each with a warning.
func decodeHops(v *fastjson.Value, warn *[]string) ([]TraceHop, error) {
	arr, _ := v.Array()
	hops := make([]TraceHop, 0, min(len(arr), maxHops))
	var last lastAddr
	for i, hv := range arr {
		if len(hops) == maxHops {
			*warn = append(*warn, fmt.Sprintf("%d hops past the %dth left out", len(arr)-i, maxHops))
			break
		}
		h, err := decodeHop(hv, i, &last, warn)
		if err != nil {
			return nil, err
		}
		if h.TTL < 0 {
			continue // out of range, said
		}
		hops = append(hops, h)
	}
	return hops, nil
}

// lastAddr remembers the last address text parsed: the replies of one hop
// mostly come from one address, parsed once.
type lastAddr struct {
	text []byte
	addr netip.Addr
}

func (l *lastAddr) parse(d *fields, v *fastjson.Value, name string) netip.Addr {
	if v.Type() != fastjson.TypeString {
		return parseIP(d.str(v, name))
	}
	b, _ := v.StringBytes()
	if string(b) == string(l.text) && l.text != nil {
		return l.addr
	}
	l.text = append(l.text[:0], b...)
	l.addr = parseIP(string(b))
	return l.addr
}

// decodeHop reads entry i of the hop list; errors name the hop by its TTL,
// or by its place in the list when the hop itself is malformed.
// A hop numbered outside 1…255 comes back with TTL -1 and a warning; reply
// TTLs outside 0…255 are left unknown, with a warning.
func decodeHop(v *fastjson.Value, i int, last *lastAddr, warn *[]string) (TraceHop, error) {
	var d fields
	o := d.object(v, "hop")
	var h TraceHop
	var replies []*fastjson.Value
	if o != nil {
		o.Visit(func(k []byte, v *fastjson.Value) {
			switch string(k) {
			case "hop":
				if n := d.num(v, "hop"); n.set && (n.n < 1 || n.n > maxHops) {
					*warn = append(*warn, fmt.Sprintf("hop %d out of 1…%d: left out", n.n, maxHops))
					h.TTL = -1
				} else {
					h.TTL = int(n.n)
				}
			case "error":
				h.Error = d.str(v, "error")
			case "result":
				replies = d.list(v, "result")
			}
		})
	}
	if d.err != nil {
		return h, fmt.Errorf("hop list entry %d: %w", i, d.err)
	}
	if h.TTL < 0 {
		return h, nil
	}
	if len(replies) > 0 {
		h.Replies = make([]TraceReply, 0, len(replies))
	}
	for _, rv := range replies {
		rep := TraceReply{TTL: -1, ITTL: 1}
		ro := d.object(rv, "reply")
		if ro == nil {
			if d.err != nil {
				return h, fmt.Errorf("hop %d: %w", h.TTL, d.err)
			}
			h.Replies = append(h.Replies, rep)
			continue
		}
		ro.Visit(func(k []byte, v *fastjson.Value) {
			switch string(k) {
			case "x":
				rep.Timeout = d.str(v, "x") == "*"
			case "from":
				rep.From = last.parse(&d, v, "from")
			case "rtt":
				rep.RTT, _ = d.ms(v, "rtt")
			case "late":
				rep.Late = int(d.num(v, "late").n)
			case "err":
				rep.Err = d.letterOrCode(v, "err")
			case "ttl":
				if n := d.num(v, "ttl"); n.set && inTTL(n.n, h.TTL, "reply TTL", warn) {
					rep.TTL = int(n.n)
				}
			case "ittl":
				if n := d.num(v, "ittl"); n.set && inTTL(n.n, h.TTL, "quoted TTL", warn) {
					rep.ITTL = int(n.n)
				}
			case "edst":
				rep.Edst = parseIP(d.str(v, "edst"))
			case "size":
				rep.Size = int(d.num(v, "size").n)
			case "flags":
				rep.Flags = d.str(v, "flags")
			case "error":
				rep.Error = d.str(v, "error")
			case "icmpext":
				rep.MPLS = d.mpls(v)
			}
		})
		if d.err != nil {
			return h, fmt.Errorf("hop %d: %w", h.TTL, d.err)
		}
		h.Replies = append(h.Replies, rep)
	}
	return h, nil
}

// inTTL reports whether n is a TTL (0…255), with a warning when not.
func inTTL(n int64, hop int, what string, warn *[]string) bool {
	if n >= 0 && n <= 255 {
		return true
	}
	*warn = append(*warn, fmt.Sprintf("hop %d: %s %d out of 0…255: left out", hop, what, n))
	return false
}

// letterOrCode reads "err": an ICMP unreachable letter or a code number.
func (d *fields) letterOrCode(v *fastjson.Value, name string) string {
	switch v.Type() {
	case fastjson.TypeNumber:
		return v.String()
	case fastjson.TypeString, fastjson.TypeNull:
		return d.str(v, name)
	}
	d.fail(name, v, "a letter or a number")
	return ""
}

// mpls reads the incoming MPLS label stacks of an "icmpext" (RFC 4950:
// class 1, type 1). An extension without its object list, or an MPLS
// object without its label stack, is a field error naming it: the result
// is one bad result, the file goes on.
func (d *fields) mpls(v *fastjson.Value) []measure.MPLSLabel {
	o := d.object(v, "icmpext")
	if o == nil {
		return nil
	}
	var out []measure.MPLSLabel
	for _, ov := range d.required(o, "obj", "icmpext.obj") {
		obj := d.object(ov, "icmpext.obj")
		if obj == nil {
			continue
		}
		if cv := obj.Get("class"); cv == nil || d.num(cv, "class").n != 1 {
			continue
		}
		for _, lv := range d.required(obj, "mpls", "icmpext.obj.mpls") {
			lo := d.object(lv, "icmpext.obj.mpls")
			if lo == nil {
				continue
			}
			var l measure.MPLSLabel
			lo.Visit(func(k []byte, v *fastjson.Value) {
				switch string(k) {
				case "label":
					l.Label = uint32(d.num(v, "label").n)
				case "exp":
					l.TC = uint8(d.num(v, "exp").n)
				case "s":
					l.S = d.num(v, "s").n != 0
				case "ttl":
					l.TTL = uint8(d.num(v, "ttl").n)
				}
			})
			out = append(out, l)
		}
	}
	return out
}

// required reads the list o[key], which must be there: absent or null is
// an error naming the field.
func (d *fields) required(o *fastjson.Object, key, name string) []*fastjson.Value {
	v := o.Get(key)
	if v == nil {
		if d.err == nil {
			d.err = fmt.Errorf("field %q: absent where a list belongs", name)
		}
		return nil
	}
	if v.Type() == fastjson.TypeNull {
		d.fail(name, v, "a list")
		return nil
	}
	return d.list(v, name)
}

// errorField is "error": {"timeout": 5000}, {"socket": "…"}, or text.
type errorField struct {
	set     bool
	timeout bool
	text    string
}

func (d *fields) errorField(v *fastjson.Value, name string) errorField {
	var f errorField
	switch v.Type() {
	case fastjson.TypeNull:
		return f
	case fastjson.TypeString:
		f.set, f.text = true, d.str(v, name)
		return f
	case fastjson.TypeObject:
	default:
		d.fail(name, v, "text or an object")
		return f
	}
	f.set = true
	o, _ := v.Object()
	m := map[string]string{}
	o.Visit(func(k []byte, v *fastjson.Value) {
		if v.Type() == fastjson.TypeString {
			b, _ := v.StringBytes()
			m[text(k)] = text(b)
		} else {
			m[text(k)] = text(v.MarshalTo(nil))
		}
	})
	var parts []string
	for _, k := range sortedKeys(m) {
		if k == "timeout" {
			f.timeout = true
			parts = append(parts, "timeout after "+m[k]+" ms")
			continue
		}
		parts = append(parts, k+": "+m[k])
	}
	f.text = strings.Join(parts, "; ")
	return f
}

func (f errorField) fill(d *DNSReply) {
	if !f.set {
		return
	}
	d.Error = f.text
	d.Timeout = f.timeout
}

// dnsResult fills a reply from a DNS "result" object.
func (d *fields) dnsResult(v *fastjson.Value, out *DNSReply) {
	o := d.object(v, "result")
	if o == nil {
		return
	}
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "rt":
			out.RTT, _ = d.ms(v, "rt")
		case "size":
			out.Size = int(d.num(v, "size").n)
		case "abuf":
			if s := d.str(v, "abuf"); s != "" {
				if b, err := decodeBase64(s); err == nil {
					out.Abuf = b
				} else {
					out.Error = "abuf: not base64"
				}
			}
		case "answers":
			for _, av := range d.list(v, "answers") {
				ao := d.object(av, "answers")
				if ao == nil {
					continue
				}
				var a AtlasAnswer
				ao.Visit(func(k []byte, v *fastjson.Value) {
					// The probe writes these keys in upper case; match
					// them as encoding/json would, in any case.
					switch {
					case strings.EqualFold(string(k), "TYPE"):
						a.Type = d.str(v, "TYPE")
					case strings.EqualFold(string(k), "NAME"):
						a.Name = d.str(v, "NAME")
					case strings.EqualFold(string(k), "RDATA"):
						a.RDATA = d.stringList(v, "RDATA")
					}
				})
				out.Answers = append(out.Answers, a)
			}
		}
	})
}

// stringList reads one string or a list of strings (RDATA before and after
// firmware 4750).
func (d *fields) stringList(v *fastjson.Value, name string) []string {
	switch v.Type() {
	case fastjson.TypeString:
		return []string{d.str(v, name)}
	case fastjson.TypeNull:
		return nil
	case fastjson.TypeArray:
		a, _ := v.Array()
		out := make([]string, 0, len(a))
		for _, x := range a {
			out = append(out, d.str(x, name))
		}
		return out
	}
	d.fail(name, v, "text or a list of text")
	return nil
}

// decodeSetEntry reads one resultset entry; its time defaults to the
// result's.
func decodeSetEntry(v *fastjson.Value, t time.Time, warn *[]string) (DNSReply, error) {
	var d fields
	o := d.object(v, "resultset")
	if o == nil {
		return DNSReply{Time: t}, d.err
	}
	var dst, old string
	var out DNSReply
	var res *fastjson.Value
	var ef errorField
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "af":
			out.AF = int(d.num(v, "af").n)
		case "dst_addr":
			dst = d.str(v, "dst_addr")
		case "addr":
			old = d.str(v, "addr")
		case "proto":
			out.Proto = strings.ToLower(d.str(v, "proto"))
		case "time":
			out.Time = checkedTime(d.num(v, "time").n, "resultset time", warn)
		case "result":
			res = v
		case "error":
			ef = d.errorField(v, "error")
		}
	})
	out.Dst = parseIP(firstNonEmpty(dst, old))
	if out.Time.IsZero() {
		out.Time = t
	}
	if res != nil {
		d.dnsResult(res, &out)
	}
	ef.fill(&out)
	return out, d.err
}
