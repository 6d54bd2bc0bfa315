package report

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/anycheck/anycheck/measure"
	"github.com/anycheck/anycheck/trace"
)

// A document read back is untrusted input like any other file: it may come
// from another host, another version, or someone who wrote it by hand.
// Strings stay what they are (text output escapes them, as it escapes what
// a DNS server sent); a value of an enumeration this anycheck does not know
// is dropped, counted, and said once per document in ReadDoc.Warnings.
//
// Dropped, not refused: within a version a newer anycheck may add values (a new
// suspicion), and one unknown word should not cost every other result of
// the document. What is dropped never reaches a report, so a report's
// enumerations are always those of the schema.

// inputCheck collects what was dropped from one document.
type inputCheck struct {
	fields []string // in the order of their first drop
	count  map[string]int
	first  map[string]string // the first value dropped, per field
}

func (c *inputCheck) drop(field, value string) {
	if c.count == nil {
		c.count, c.first = map[string]int{}, map[string]string{}
	}
	if c.count[field] == 0 {
		c.fields = append(c.fields, field)
		c.first[field] = value
	}
	c.count[field]++
}

// warning says what was dropped; "" when nothing was. Values are cut
// short, not escaped: whoever prints the warning escapes it, as any text.
func (c *inputCheck) warning() string {
	if len(c.fields) == 0 {
		return ""
	}
	parts := make([]string, 0, len(c.fields))
	for _, f := range c.fields {
		v := c.first[f]
		if r := []rune(v); len(r) > 40 {
			v = string(r[:40]) + "…"
		}
		p := fmt.Sprintf("%s \"%s\"", f, v)
		if n := c.count[f]; n > 1 {
			p += fmt.Sprintf(" (and %d more)", n-1)
		}
		parts = append(parts, p)
	}
	return "values this anycheck does not know were left out: " + strings.Join(parts, ", ")
}

// into adds the warning, if any, to d and starts over.
func (c *inputCheck) into(d *ReadDoc) {
	if w := c.warning(); w != "" {
		d.Warnings = append(d.Warnings, w)
	}
	*c = inputCheck{}
}

// knownStatus: the statuses a document holds (no_txt is a RIPE Atlas
// result's, never written to a document).
func knownStatus(s string) bool {
	switch measure.Status(s) {
	case measure.StatusAnswered, measure.StatusEmpty, measure.StatusRefused, measure.StatusNotImp, measure.StatusServFail,
		measure.StatusNXDomain, measure.StatusOtherRcode, measure.StatusTimeout, measure.StatusMalformed, measure.StatusError,
		measure.StatusUnreachable:
		return true
	}
	return false
}

func knownSuspicion(s string) bool {
	switch measure.Suspicion(s) {
	case measure.SuspectRA, measure.SuspectAAClear, measure.SuspectClassNotCH, measure.SuspectTTLNonZero, measure.SuspectQuestionMissing:
		return true
	}
	return false
}

func knownInstanceSource(s string) bool {
	switch s {
	case "", "nsid", "hostname.bind", "id.server":
		return true
	}
	return false
}

func (c *inputCheck) identity(field string, id *InstanceDTO) {
	if !knownInstanceSource(id.Source) {
		c.drop(field+".source", id.Source)
		id.Source = ""
	}
}

// answers keeps the answers of a known status, and of each its known
// suspicions.
func (c *inputCheck) answers(field string, as []AnswerDTO) []AnswerDTO {
	out := as[:0]
	for _, a := range as {
		if !knownStatus(a.Status) {
			c.drop(field+"[].status", a.Status)
			continue
		}
		if a.Transport != "" && a.Transport != string(measure.UDP) && a.Transport != string(measure.TCP) {
			c.drop(field+"[].transport", a.Transport)
			a.Transport = ""
		}
		sus := a.Suspicions[:0]
		for _, s := range a.Suspicions {
			if knownSuspicion(s) {
				sus = append(sus, s)
			} else {
				c.drop(field+"[].suspicions", s)
			}
		}
		a.Suspicions = sus
		out = append(out, a)
	}
	return out
}

// idTarget checks t in place; false when t has no target address.
func (c *inputCheck) idTarget(t *IDTarget) bool {
	if !c.address("target", t.Target) {
		return false
	}
	for i := range t.Flows {
		f := &t.Flows[i]
		c.flow("flows[].", &f.Flow)
		c.identity("flows[].instance", &f.Instance)
		f.Answers = c.answers("flows[].answers", f.Answers)
		for j := range f.Runs {
			r := &f.Runs[j]
			c.identity("flows[].runs[].instance", &r.Instance)
			r.Answers = c.answers("flows[].runs[].answers", r.Answers)
		}
	}
	return true
}

// flow checks a flow's protocol in place.
func (c *inputCheck) flow(field string, f *FlowDTO) {
	switch f.Protocol {
	case "", "udp", "tcp", "icmp":
	default:
		c.drop(field+"flow.protocol", f.Protocol)
		f.Protocol = ""
	}
}

// traceFlow checks t in place.
func (c *inputCheck) traceFlow(field string, t *TraceFlow) {
	c.flow(field, &t.Flow)
	p := &t.Path
	if p.StopReason != "" && !trace.StopReason(p.StopReason).Known() {
		c.drop(field+"path.stop_reason", p.StopReason)
		p.StopReason = ""
	}
	c.identity(field+"instance", &t.Instance)
	t.Answers = c.answers(field+"answers", t.Answers)
	p.Hops = keep(p.Hops, func(h *HopDTO) bool {
		if h.TTL < 0 || h.TTL > 255 {
			c.drop(field+"path.hops[].ttl (a hop: out of 0…255)", fmt.Sprint(h.TTL))
			return false
		}
		return true
	})
	for i := range p.Hops {
		for j := range p.Hops[i].Probes {
			if r := p.Hops[i].Probes[j].Reply; r != nil && !trace.ReplyKind(r.Kind).Known() {
				c.drop(field+"path.hops[].probes[].reply.kind", r.Kind)
				r.Kind = ""
			}
		}
	}
}

// traceResult checks t in place; false when t has no target address.
func (c *inputCheck) traceResult(t *TraceResult) bool {
	if !c.address("target", t.Target) {
		return false
	}
	for i := range t.Flows {
		c.traceFlow("flows[].", &t.Flows[i])
	}
	return true
}

// sweep checks s in place; false when s has no target address.
func (c *inputCheck) sweep(s *TraceSweep) bool {
	if !c.address("target", s.Target) {
		return false
	}
	for i := range s.Flows {
		c.traceFlow("flows[].", &s.Flows[i])
	}
	return true
}

// check drops the unknown values of every result of d, and the results
// without a target address (a catchment line is of one address).
func (c *inputCheck) check(d *ReadDoc) {
	d.IDs = keep(d.IDs, c.idTarget)
	d.Traces = keep(d.Traces, c.traceResult)
	d.Sweeps = keep(d.Sweeps, c.sweep)
}

// keep checks each element of s in place and keeps those ok accepts.
func keep[T any](s []T, ok func(*T) bool) []T {
	out := s[:0]
	for i := range s {
		if ok(&s[i]) {
			out = append(out, s[i])
		}
	}
	return out
}

// address reports whether s is an IP address, dropping it (as field) when not.
func (c *inputCheck) address(field, s string) bool {
	if _, err := netip.ParseAddr(s); err != nil {
		c.drop(field+" (a result: not an IP address)", s)
		return false
	}
	return true
}
