package render

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/anycheck/anycheck/internal/report"
)

// TraceOptions tunes the text trace output.
type TraceOptions struct {
	MaxTTL int // shown in the header; 0 = not shown
}

func traceHeader(w *errWriter, p report.TracePath, o TraceOptions) {
	f := p.Flow
	flow := fmt.Sprintf("%s/%d paris flow %s → %s", f.Protocol, f.Dport, hostPort(f.Src, f.Sport), hostPort(f.Dst, f.Dport))
	if f.Protocol == "icmp" {
		flow = fmt.Sprintf("icmp paris flow %s → %s id %d", f.Src, f.Dst, f.Sport)
	}
	target := p.Target
	if p.Input != "" && p.Input != p.Target {
		target = fmt.Sprintf("%s (%s)", Escape(p.Input), p.Target)
	}
	line := fmt.Sprintf("trace to %s, %s, %s mode", target, flow, p.Mode)
	if o := p.SourceOrigin; o != nil && len(o.ASNs) > 0 {
		line += ", from " + asLabel(o)
	}
	if o.MaxTTL > 0 {
		line += fmt.Sprintf(", max %d hops", o.MaxTTL)
	}
	w.printf("%s\n", line)
}

// TraceText writes finished traces for a terminal.
func TraceText(w io.Writer, paths []report.TracePath, o TraceOptions) error {
	ew := &errWriter{w: w}
	for i, p := range paths {
		if i > 0 {
			ew.printf("\n")
		}
		traceHeader(ew, p, o)
		cols := hopColumns(p.Hops)
		for _, h := range p.Hops {
			hopLines(ew, h, cols)
		}
		traceFooter(ew, p)
	}
	return ew.err
}

type columns struct {
	addr, name, asn, asName int
}

func hopColumns(hops []report.HopDTO) columns {
	var c columns
	for _, h := range hops {
		for _, r := range h.Responders {
			c.addr = max(c.addr, width(r.Address))
			c.name = max(c.name, width(Escape(r.Name)))
			if r.Origin != nil {
				c.asn = max(c.asn, width(asLabel(r.Origin)))
				c.asName = max(c.asName, width(Escape(asName(r.Origin))))
			}
		}
	}
	c.asName = min(c.asName, 24)
	c.name = min(c.name, 40)
	return c
}

// hopLines prints one line per responder at the hop; silent probes show as
// "*" on the first line, in probe order.
func hopLines(w *errWriter, h report.HopDTO, c columns) {
	if len(h.Responders) == 0 {
		stars := make([]string, len(h.Probes))
		for i := range stars {
			stars[i] = "*"
		}
		note := ""
		if h.RateLimited {
			note = "  (rate-limited?)"
		}
		w.printf("%2d  %s%s\n", h.TTL, strings.Join(stars, " "), note)
		return
	}
	for i, r := range h.Responders {
		ttl := fmt.Sprintf("%2d", h.TTL)
		if i > 0 {
			ttl = "  "
		}
		var cells []string
		cells = append(cells, pad(r.Address, c.addr))
		if c.name > 0 {
			n := Escape(r.Name)
			if n == "" {
				n = "—"
			}
			cells = append(cells, pad(truncate(n, c.name), c.name))
		}
		if c.asn > 0 {
			cells = append(cells, pad(asLabel(r.Origin), c.asn), pad(truncate(Escape(asName(r.Origin)), c.asName), c.asName))
		}
		var rtts []string
		var marks []string
		for _, p := range h.Probes {
			switch {
			case p.Reply == nil:
				if i == 0 {
					rtts = append(rtts, "*")
				}
			case p.Reply.From == r.Address:
				rtts = append(rtts, fmt.Sprintf("%s ms", ms(p.Reply.RTTMs)))
				marks = appendOnce(marks, replyMarks(*p.Reply)...)
			}
		}
		line := fmt.Sprintf("%s  %s  %s", ttl, strings.Join(cells, "  "), strings.Join(rtts, "  "))
		if len(marks) > 0 {
			line += "  " + strings.Join(marks, " ")
		}
		if h.RateLimited && i == 0 {
			line += "  (rate-limited?)"
		}
		w.printf("%s\n", strings.TrimRight(line, " "))
		for _, p := range h.Probes {
			if p.Reply != nil && p.Reply.From == r.Address && len(p.Reply.MPLS) > 0 {
				w.printf("      %s\n", mplsLine(p.Reply.MPLS))
				break
			}
		}
	}
}

// replyMarks are traceroute's annotations: !H !N !P !X for unreachables,
// plus NAT when the quoted header was rewritten.
func replyMarks(r report.ReplyDTO) []string {
	var out []string
	if r.Kind == "unreachable" && r.ICMPCode != nil && r.ICMPType != nil {
		out = append(out, unreachMark(*r.ICMPType, *r.ICMPCode))
	}
	if r.Kind == "rst" {
		out = append(out, "[rst]")
	}
	if r.Kind == "syn-ack" {
		out = append(out, "[syn-ack]")
	}
	if r.NAT {
		out = append(out, "!NAT")
	}
	return out
}

func unreachMark(typ, code int) string {
	if typ == 1 { // ICMPv6 destination unreachable
		switch code {
		case 0:
			return "!N"
		case 1:
			return "!X"
		case 3:
			return "!H"
		case 4:
			return "!P"
		}
		return fmt.Sprintf("!<%d>", code)
	}
	switch code {
	case 0:
		return "!N"
	case 1:
		return "!H"
	case 2, 3:
		return "!P"
	case 13:
		return "!X"
	}
	return fmt.Sprintf("!<%d>", code)
}

func mplsLine(ls []report.MPLSDTO) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("[MPLS: Lbl %d, TC %d, S %d, TTL %d]", l.Label, l.TC, b2i(l.S), l.TTL)
	}
	return strings.Join(parts, " ")
}

func traceFooter(w *errWriter, p report.TracePath) {
	switch {
	case p.Instance != nil && p.Instance.Instance != "":
		w.printf("instance  %s  %d hops, %s ms\n", identityLine(*p.Instance), p.DestTTL, ms(destRTT(p)))
		if p.Instance.Disagree {
			w.printf("note      NSID %s and hostname.bind %s differ\n", Quote(p.Instance.NSID), Quote(p.Instance.HostnameBind))
		}
	case p.Reached:
		w.printf("reached   %s at %d hops, %s ms\n", p.Target, p.DestTTL, ms(destRTT(p)))
	default:
		w.printf("not reached: %s\n", strings.ReplaceAll(p.StopReason, "-", " "))
	}
	if len(p.ASPath) > 0 {
		as := make([]string, len(p.ASPath))
		for i, a := range p.ASPath {
			as[i] = fmt.Sprint(a)
		}
		w.printf("as path   %s\n", strings.Join(as, " → "))
	}
	if p.Upstream != nil {
		w.printf("upstream  %s  %s\n", asLabel(p.Upstream), Escape(asName(p.Upstream)))
	}
	for _, n := range p.Notes {
		w.printf("note      %s\n", Escape(n))
	}
	if len(p.Unobserved) > 0 {
		w.printf("note      %s mode cannot observe: %s\n", p.Mode, strings.Join(p.Unobserved, ", "))
	}
}

// destRTT is the smallest RTT of the destination's replies.
func destRTT(p report.TracePath) float64 {
	best := -1.0
	for _, h := range p.Hops {
		if h.TTL != p.DestTTL {
			continue
		}
		for _, pr := range h.Probes {
			if pr.Reply != nil && pr.Reply.From == p.Target && (best < 0 || pr.Reply.RTTMs < best) {
				best = pr.Reply.RTTMs
			}
		}
	}
	return max(best, 0)
}

func asLabel(o *report.OriginDTO) string {
	switch {
	case o == nil:
		return ""
	case o.Special != "":
		return o.Special
	case len(o.ASNs) == 0:
		return "AS?"
	}
	parts := make([]string, len(o.ASNs))
	for i, a := range o.ASNs {
		parts[i] = fmt.Sprintf("AS%d", a)
	}
	return strings.Join(parts, "_")
}

func asName(o *report.OriginDTO) string {
	if o == nil {
		return ""
	}
	return o.ASName
}

func hostPort(addr string, port int) string {
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

func width(s string) int { return utf8.RuneCountInString(s) }

func pad(s string, w int) string {
	n := width(s)
	if n >= w {
		return s
	}
	return s + strings.Repeat(" ", w-n)
}

func truncate(s string, w int) string {
	r := []rune(s)
	if len(r) <= w {
		return s
	}
	return string(r[:w-1]) + "…"
}

func appendOnce(list []string, items ...string) []string {
	for _, it := range items {
		found := false
		for _, have := range list {
			if have == it {
				found = true
				break
			}
		}
		if !found {
			list = append(list, it)
		}
	}
	return list
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
