package render

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/measure"
)

// TraceOptions tunes the text trace output.
type TraceOptions struct {
	MaxTTL int // shown in the header; 0 = not shown
	// Rate is the run's --rate (packets per second), so advice never
	// suggests a rate the run already had; 0 = unknown.
	Rate float64
	// Wide shows reverse names and AS names whole (--wide); otherwise they
	// are cut to fit their column, and the output says so.
	Wide bool
}

// cutNote follows a hop table whose names were cut to fit.
const cutNote = "names cut to fit the table (…); --wide shows them whole, -o json always has them"

func traceHeader(w *errWriter, input string, p report.TraceFlow, o TraceOptions) {
	f := p.Flow
	flow := fmt.Sprintf("%s/%d paris flow %s → %s", f.Protocol, f.Dport, endpoint(string(f.Src), f.Sport), endpoint(f.Dst, f.Dport))
	if f.Protocol == "icmp" {
		flow = fmt.Sprintf("icmp paris flow %s → %s id %d", f.Src, f.Dst, f.Sport)
	}
	target := f.Dst
	if input != "" && input != f.Dst {
		target = fmt.Sprintf("%s (%s)", Escape(input), f.Dst)
	}
	line := fmt.Sprintf("trace to %s, %s, %s mode", target, flow, p.Path.Mode)
	if o := p.Path.SourceOrigin; o != nil && len(o.ASNs) > 0 {
		line += ", from " + asLabel(o)
	}
	if o.MaxTTL > 0 {
		line += fmt.Sprintf(", max %d hops", o.MaxTTL)
	}
	w.printf("%s\n", line)
}

// TraceText writes finished traces for a terminal.
func TraceText(w io.Writer, results []report.TraceResult, o TraceOptions) error {
	ew := &errWriter{w: w}
	n := 0
	for _, r := range results {
		for _, p := range r.Flows {
			if n > 0 {
				ew.printf("\n")
			}
			n++
			traceHeader(ew, r.Input, p, o)
			lines, cut := hopTable(p.Path.Hops, o.Wide)
			for _, l := range lines {
				ew.printf("%s\n", l)
			}
			traceFooter(ew, p)
			if cut {
				ew.printf("note      %s\n", cutNote)
			}
		}
	}
	return ew.err
}

// Widest untrusted names shown in the hop table; longer ones are cut.
const (
	maxNameWidth   = 40
	maxASNameWidth = 24
)

// hopTable renders the hops: one row per responder at a hop (address,
// reverse name, origin AS and AS name, then its probes' RTTs and marks),
// a "* * *" line for a silent hop and a label line under a hop whose
// reply carried MPLS labels. The responder rows are aligned by tabwriter
// as one table; the other lines are set between them afterwards, so they
// do not break the columns.
// With wide, names are shown whole; otherwise cut reports whether a name
// was cut to fit its column.
func hopTable(hops []report.HopDTO, wide bool) (lines []string, cut bool) {
	fit := func(s string, w int) string {
		if wide {
			return Escape(s)
		}
		f := escapeFit(s, w)
		cut = cut || f != Escape(s)
		return f
	}
	names, origins := false, false
	for _, h := range hops {
		for _, r := range h.Responders {
			names = names || r.Name != ""
			origins = origins || r.Origin != nil
		}
	}
	// lines: table rows (tab-separated) and plain lines, in order
	var isRow []bool
	add := func(l string, row bool) {
		lines, isRow = append(lines, l), append(isRow, row)
	}
	for _, h := range hops {
		if len(h.Responders) == 0 {
			l := fmt.Sprintf("%2d  %s", h.TTL, strings.TrimSpace(strings.Repeat("* ", len(h.Probes))))
			if h.RateLimited {
				l += "  (rate-limited?)"
			}
			add(l, false)
			continue
		}
		for i, r := range h.Responders {
			ttl := fmt.Sprintf("%2d", h.TTL)
			if i > 0 {
				ttl = "  "
			}
			cells := []string{ttl, r.Address}
			if names {
				cells = append(cells, cmp.Or(fit(r.Name, maxNameWidth), "—"))
			}
			if origins {
				cells = append(cells, asLabel(r.Origin), fit(asName(r.Origin), maxASNameWidth))
			}
			var rtts, marks []string
			var mpls []report.MPLSDTO
			for _, p := range h.Probes {
				switch {
				case p.Reply == nil:
					if i == 0 {
						rtts = append(rtts, "*")
					}
				case p.Reply.From == r.Address:
					rtts = append(rtts, fmt.Sprintf("%s ms", ms(p.Reply.RTTMs)))
					for _, m := range replyMarks(*p.Reply) {
						if !slices.Contains(marks, m) {
							marks = append(marks, m)
						}
					}
					if mpls == nil && len(p.Reply.MPLS) > 0 {
						mpls = p.Reply.MPLS
					}
				}
			}
			last := strings.Join(append(rtts, marks...), "  ")
			if h.RateLimited && i == 0 {
				last += "  (rate-limited?)"
			}
			add(strings.Join(append(cells, last), "\t"), true)
			if mpls != nil {
				add("      "+mplsLine(mpls), false)
			}
		}
	}
	var b strings.Builder
	tw := newTable(&b)
	for i, l := range lines {
		if isRow[i] {
			fmt.Fprintln(tw, l)
		}
	}
	tw.Flush()
	aligned := strings.Split(b.String(), "\n")
	for i := range lines {
		if isRow[i] {
			lines[i], aligned = aligned[0], aligned[1:]
		}
	}
	return lines, cut
}

// escapeFit escapes untrusted text for the terminal and cuts it to at most
// w columns with an ellipsis, never through an escape sequence.
func escapeFit(s string, w int) string {
	e := Escape(s)
	if width(e) <= w {
		return e
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		er := Escape(string(r))
		k := width(er)
		if n+k > w-1 {
			break
		}
		b.WriteString(er)
		n += k
	}
	return b.String() + "…"
}

// replyMarks are traceroute's annotations: !H !N !P !X for unreachables
// (none for port unreachable, the normal end of a UDP trace), the TCP
// answer, and !NAT when the quoted header was rewritten.
func replyMarks(r report.ReplyDTO) []string {
	var out []string
	if r.Kind == "unreachable" && r.ICMPCode != nil && r.ICMPType != nil {
		if m := measure.UnreachableMark(*r.ICMPType, *r.ICMPCode); m != "" {
			out = append(out, m)
		}
	}
	switch r.Kind {
	case "rst", "syn-ack", "ack":
		out = append(out, "["+r.Kind+"]")
	}
	if r.NAT {
		out = append(out, "!NAT")
	}
	return out
}

func mplsLine(ls []report.MPLSDTO) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("[MPLS: Lbl %d, TC %d, S %d, TTL %d]", l.Label, l.TC, b2i(l.S), l.TTL)
	}
	return strings.Join(parts, " ")
}

func traceFooter(w *errWriter, f report.TraceFlow) {
	p := f.Path
	switch {
	case f.Instance.Name != "":
		w.printf("instance  %s  %d hops, %s ms\n", identityLine(f.Instance), p.DestTTL, ms(destRTT(f)))
	case p.Reached:
		w.printf("reached   %s at %d hops, %s ms\n", f.Flow.Dst, p.DestTTL, ms(destRTT(f)))
	default:
		w.printf("not reached: %s\n", strings.ReplaceAll(p.StopReason, "-", " "))
	}
	if len(p.ASPath) > 0 {
		w.printf("as path   %s\n", asPath(p.ASPath))
	}
	if p.Upstream != nil {
		w.printf("upstream  %s\n", upstreamLine(p.Upstream))
	}
	for _, n := range p.Notes {
		w.printf("note      %s\n", Escape(n))
	}
	if len(p.Unobserved) > 0 {
		w.printf("note      %s mode cannot observe: %s\n", p.Mode, strings.Join(p.Unobserved, ", "))
	}
}

// upstreamLine is where a path enters the service, as every command prints
// it: the hop and the upstream AS it comes from (upstreamLabel, compare's
// column), the AS's name when the origin lookup gave one, and the hop's TTL.
func upstreamLine(u *report.UpstreamDTO) string {
	s := upstreamLabel(u)
	if u.ASName != "" {
		s += "  " + Escape(u.ASName)
	}
	return s + fmt.Sprintf("  (hop %d)", u.TTL)
}

// destRTT is the smallest RTT of the destination's replies.
func destRTT(f report.TraceFlow) float64 {
	p := f.Path
	best := -1.0
	for _, h := range p.Hops {
		if h.TTL != p.DestTTL {
			continue
		}
		for _, pr := range h.Probes {
			if pr.Reply != nil && pr.Reply.From == f.Flow.Dst && (best < 0 || pr.Reply.RTTMs < best) {
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

// endpoint is address and port as netip writes them ("[2001:db8::1]:53").
func endpoint(addr string, port int) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return fmt.Sprintf("%s:%d", addr, port)
	}
	return netip.AddrPortFrom(a, uint16(port)).String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
