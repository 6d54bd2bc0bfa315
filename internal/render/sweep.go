package render

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/anycheck/anycheck/internal/report"
)

// SweepText writes flow sweeps for a terminal: per target a header, a
// catchment split called out first, each distinct path once with the
// flows that took it and the instance they reached, then the summary.
func SweepText(w io.Writer, sweeps []report.TraceSweep, o TraceOptions) error {
	ew := &errWriter{w: w}
	for i, s := range sweeps {
		if i > 0 {
			ew.printf("\n")
		}
		sweepText(ew, s, o)
	}
	return ew.err
}

func sweepText(w *errWriter, s report.TraceSweep, o TraceOptions) {
	w.printf("%s\n", sweepHeader(s, o))
	sum := s.Summary
	if sum.Split {
		w.printf("catchment split by flow: %s\n", instanceShares(sum.Instances, sum.Flows))
	}
	cut := false
	for i, p := range s.Paths {
		w.printf("\npath %d of %d  %s  %s\n", i+1, len(s.Paths), flowsLabel(s.Protocol, p.Sports), pathEnd(s, p))
		f := pathFlow(s, p)
		lines, c := hopTable(pathHops(p, f), o.Wide)
		cut = cut || c
		for _, l := range lines {
			w.printf("%s\n", l)
		}
		if len(p.ASPath) > 0 {
			w.printf("as path   %s\n", asPath(p.ASPath))
		}
		if p.Upstream != nil {
			w.printf("upstream  %s\n", upstreamLine(p.Upstream))
		}
	}
	if len(s.Paths) > 0 {
		w.printf("\n")
	}
	over := plural(sum.Flows, "flow")
	if len(sum.Unplaced) > 0 {
		over = fmt.Sprintf("%d of %s", sum.Flows-len(sum.Unplaced), over)
	}
	w.printf("paths     %s over %s; %d reached the target\n", plural(sum.Paths, "distinct path"), over, sum.Reached)
	if fits, silent := unplacedFlows(s); len(fits)+len(silent) > 0 {
		var parts []string
		if len(fits) > 0 {
			parts = append(parts, fmt.Sprintf("%s (%s) silent where the paths differ: each fits more than one", plural(len(fits), "flow"), flowsWord(s.Protocol, fits)))
		}
		if len(silent) > 0 {
			parts = append(parts, fmt.Sprintf("%s (%s) without any reply", plural(len(silent), "flow"), flowsWord(s.Protocol, silent)))
		}
		w.printf("unplaced  %s\n", strings.Join(parts, "; "))
	}
	for _, d := range sum.Diamonds {
		w.printf("diamond   %s\n", diamondLine(d))
		for _, a := range d.Alternatives {
			parts := make([]string, len(a.Addresses))
			for j, x := range a.Addresses {
				parts[j] = fmt.Sprintf("%s on %s", x.Address, plural(x.Flows, "flow"))
			}
			w.printf("          ttl %d: %s\n", a.TTL, strings.Join(parts, ", "))
		}
	}
	switch {
	case s.Identity == report.SweepIdentityNone:
		w.printf("instances unknown: %s\n", noIdentityReason(s))
	case len(sum.Instances) == 0:
		w.printf("instances none identified\n")
	default:
		w.printf("instances %s\n", instancesLine(sum.Instances, sum.Flows, sum.Unidentified, sum.Split))
	}
	w.printf("flows     %s\n", stopLine(sum))
	for _, f := range s.FailedFlows {
		w.printf("failed    flow %d: %s\n", f.Sport, Escape(f.Message))
	}
	for _, n := range sweepNotes(s, o) {
		w.printf("note      %s\n", n)
	}
	if cut {
		w.printf("note      %s\n", cutNote)
	}
}

func sweepHeader(s report.TraceSweep, o TraceOptions) string {
	target := s.Target
	if s.Input != "" && s.Input != s.Target {
		target = fmt.Sprintf("%s (%s)", Escape(s.Input), s.Target)
	}
	proto := fmt.Sprintf("%s/%d", s.Protocol, s.Dport)
	if s.Protocol == "icmp" {
		proto = "icmp"
	}
	n := len(s.Flows) + len(s.FailedFlows)
	line := fmt.Sprintf("sweep to %s, %s, %s", target, proto, plural(n, "paris flow"))
	if len(s.Flows) > 0 {
		f := s.Flows[0]
		var ports []int
		for _, fl := range s.Flows {
			ports = append(ports, fl.Flow.Sport)
		}
		for _, fl := range s.FailedFlows {
			ports = append(ports, fl.Sport)
		}
		slices.Sort(ports)
		what := "ports"
		if s.Protocol == "icmp" {
			what = "ids"
		}
		dst := endpoint(f.Flow.Dst, f.Flow.Dport)
		if s.Protocol == "icmp" {
			dst = f.Flow.Dst
		}
		line += fmt.Sprintf(" from %s %s %s → %s, %s mode", f.Flow.Src, what, portRanges(ports, 0), dst, f.Path.Mode)
		if so := f.Path.SourceOrigin; so != nil && len(so.ASNs) > 0 {
			line += ", from " + asLabel(so)
		}
	}
	if o.MaxTTL > 0 {
		line += fmt.Sprintf(", max %d hops", o.MaxTTL)
	}
	return line
}

// flowsLabel names the flows of a path: "9 flows: ports 50120-50122 50125".
func flowsLabel(proto string, ports []int) string {
	what := "port"
	if proto == "icmp" {
		what = "id"
	}
	if len(ports) != 1 {
		what += "s"
	}
	return fmt.Sprintf("%s: %s %s", plural(len(ports), "flow"), what, portRanges(ports, 0))
}

// PortRanges writes ports as sorted ranges: "50120-50122 50125".
func PortRanges(ports []int) string { return portRanges(ports, 0) }

// flowsWord names flows by port ("port 40012", "ports 40012-40013").
func flowsWord(proto string, ports []int) string {
	what := "port"
	if proto == "icmp" {
		what = "id"
	}
	if len(ports) != 1 {
		what += "s"
	}
	return what + " " + portRanges(ports, 0)
}

// unplacedFlows splits a sweep's unplaced flows into those that fit more
// than one path and those that got no reply at all.
func unplacedFlows(s report.TraceSweep) (fits, silent []int) {
	for _, port := range s.Summary.Unplaced {
		if f := flowByPort(s, port); f != nil && !f.Path.Reached && !slices.ContainsFunc(f.Path.Hops, func(h report.HopDTO) bool { return len(h.Responders) > 0 }) {
			silent = append(silent, port)
			continue
		}
		fits = append(fits, port)
	}
	return fits, silent
}

func flowByPort(s report.TraceSweep, port int) *report.TraceFlow {
	for i := range s.Flows {
		if s.Flows[i].Flow.Sport == port {
			return &s.Flows[i]
		}
	}
	return nil
}

// portRanges writes sorted ports as ranges ("50120-50122 50125"); with
// limit > 0 it stops after about limit characters with "…".
func portRanges(ports []int, limit int) string {
	ps := slices.Clone(ports)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	var parts []string
	n := 0
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		part := strconv.Itoa(ps[i])
		if j > i {
			part += "-" + strconv.Itoa(ps[j])
		}
		if limit > 0 && n+len(part) > limit && len(parts) > 0 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, part)
		n += len(part) + 1
		i = j + 1
	}
	return strings.Join(parts, " ")
}

// pathEnd says where a path's flows ended: the instance(s) they reached.
func pathEnd(s report.TraceSweep, p report.SweepPath) string {
	switch {
	case len(p.Instances) == 1 && p.Instances[0].Flows == len(p.Sports):
		return "→ " + Escape(p.Instances[0].Instance)
	case len(p.Instances) > 0:
		parts := make([]string, len(p.Instances))
		for i, in := range p.Instances {
			parts[i] = fmt.Sprintf("%s on %d", Escape(in.Instance), in.Flows)
		}
		if rest := len(p.Sports) - countFlows(p.Instances); rest > 0 {
			parts = append(parts, fmt.Sprintf("no identity on %d", rest))
		}
		return "→ " + strings.Join(parts, ", ")
	case p.Reached == len(p.Sports):
		return "→ reached " + s.Target
	case p.Reached > 0:
		return fmt.Sprintf("→ %d of %d reached %s", p.Reached, len(p.Sports), s.Target)
	}
	if f := firstFlow(s, p); f != nil {
		return "→ not reached: " + strings.ReplaceAll(f.Path.StopReason, "-", " ")
	}
	return "→ not reached"
}

func countFlows(cs []report.FlowCount) int {
	n := 0
	for _, c := range cs {
		n += c.Flows
	}
	return n
}

// firstFlow is the first flow of a path.
func firstFlow(s report.TraceSweep, p report.SweepPath) *report.TraceFlow {
	if len(p.Sports) == 0 {
		return nil
	}
	return flowByPort(s, p.Sports[0])
}

// pathFlow is the flow that shows a path best, for its AS path and reply
// marks: the one that got the most replies (the first of those by port),
// so a flow with silent hops does not stand for the path.
func pathFlow(s report.TraceSweep, p report.SweepPath) *report.TraceFlow {
	var best *report.TraceFlow
	most := -1
	for _, port := range p.Sports {
		f := flowByPort(s, port)
		if f == nil {
			continue
		}
		n := 0
		for _, h := range f.Path.Hops {
			if len(h.Responders) > 0 {
				n++
			}
		}
		if n > most {
			best, most = f, n
		}
	}
	return best
}

// pathHops are a path's hops as the hop table shows them: its responders,
// one probe carrying the median RTT over the path's flows (and the marks
// of the first flow's reply), "*" when silent.
func pathHops(p report.SweepPath, first *report.TraceFlow) []report.HopDTO {
	out := make([]report.HopDTO, len(p.Hops))
	for i, h := range p.Hops {
		d := report.HopDTO{TTL: h.TTL, Responders: h.Responders, RateLimited: h.RateLimited > 0, Probes: []report.ProbeDTO{{}}}
		if len(h.Responders) > 0 && h.RTTMs != nil {
			r := report.ReplyDTO{From: h.Responders[0].Address, RTTMs: *h.RTTMs}
			if first != nil && i < len(first.Path.Hops) {
				for _, pr := range first.Path.Hops[i].Probes {
					if pr.Reply != nil && pr.Reply.From == r.From {
						r = *pr.Reply
						r.RTTMs = *h.RTTMs
						break
					}
				}
			}
			d.Probes[0].Reply = &r
		}
		out[i] = d
	}
	return out
}

// instancesLine is how a target's flows spread over instances (a sweep's,
// an id --flows run's): "i1-nsd on 13 of 32 flows, i2-knot on 19; 1 flow
// without an identity  — catchment split by flow".
func instancesLine(in []report.FlowCount, flows, unidentified int, split bool) string {
	line := instanceShares(in, flows)
	if unidentified > 0 {
		line += fmt.Sprintf("; %s without an identity", plural(unidentified, "flow"))
	}
	if split {
		line += "  — catchment split by flow"
	}
	return line
}

// instanceShares is "i1-nsd on 13 of 32 flows, i2-knot on 19".
func instanceShares(in []report.FlowCount, flows int) string {
	parts := make([]string, len(in))
	for i, c := range in {
		if i == 0 {
			parts[i] = fmt.Sprintf("%s on %d of %s", Escape(c.Instance), c.Flows, plural(flows, "flow"))
			continue
		}
		parts[i] = fmt.Sprintf("%s on %d", Escape(c.Instance), c.Flows)
	}
	return strings.Join(parts, ", ")
}

func diamondLine(d report.DiamondDTO) string {
	part := "paths differ from the first hop"
	if d.PartTTL > 0 {
		part = fmt.Sprintf("paths part after ttl %d", d.PartTTL)
		if d.PartAddress != nil {
			part += fmt.Sprintf(" (%s)", *d.PartAddress)
		}
	}
	if d.JoinTTL == nil {
		return part + " and do not join again"
	}
	join := fmt.Sprintf(" and join at ttl %d", *d.JoinTTL)
	if d.JoinAddress != nil {
		join += fmt.Sprintf(" (%s)", *d.JoinAddress)
	}
	return part + join
}

func noIdentityReason(s report.TraceSweep) string {
	if s.Protocol == "icmp" {
		return "icmp probes carry no identity query (trace udp or tcp to port 53 to name the instance of each flow)"
	}
	return fmt.Sprintf("%s probes to port %d carry no identity query (only port 53 names the instance of each flow)", s.Protocol, s.Dport)
}

func stopLine(sum report.SweepSummary) string {
	st := sum.Stop
	n := sum.Flows + sum.Failed
	rounds := plural(st.Rounds, "round")
	switch st.Reason {
	case report.SweepStopFlows:
		line := fmt.Sprintf("%d traced (--flows %d)", n, st.MaxFlows)
		if len(st.Unsatisfied) == 0 {
			return line + fmt.Sprintf("; enough for the MDA stopping rule at %s", pct(st.Confidence))
		}
		return line + fmt.Sprintf("; the MDA stopping rule at %s wants more: %s", pct(st.Confidence), unsatisfied(st.Unsatisfied))
	case report.SweepStopMDA:
		return fmt.Sprintf("%d of at most %d (--flows auto, %s): no hop needs more flows to rule out another next hop (MDA stopping rule, %s)", n, st.MaxFlows, rounds, pct(st.Confidence))
	case report.SweepStopMaxFlows:
		return fmt.Sprintf("%d of at most %d (--flows auto, %s): stopped at --max-flows; still short of the MDA stopping rule (%s): %s", n, st.MaxFlows, rounds, pct(st.Confidence), unsatisfied(st.Unsatisfied))
	case report.SweepStopStalled:
		return fmt.Sprintf("%d of at most %d (--flows auto, %s): stopped, the last round brought no reply to the hops that wanted flows (ICMP rate limits?); still short of the MDA stopping rule (%s): %s",
			n, st.MaxFlows, rounds, pct(st.Confidence), unsatisfied(st.Unsatisfied))
	case report.SweepStopFailed:
		return fmt.Sprintf("%d (--flows auto, %s): stopped, no flow of the last round could be traced", n, rounds)
	case report.SweepStopInterrupted:
		return fmt.Sprintf("%d traced before the interruption", sum.Flows)
	}
	return fmt.Sprintf("%d traced", n)
}

func pct(c float64) string { return strconv.FormatFloat(c*100, 'f', -1, 64) + " %" }

// unsatisfied lists the hops that want more flows.
func unsatisfied(vs []report.MDAVertexDTO) string {
	var parts []string
	for i, v := range vs {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(vs)-3))
			break
		}
		at := "the vantage"
		if v.Address != nil {
			at = fmt.Sprintf("ttl %d %s", v.TTL, *v.Address)
		}
		// The next hops its flows showed, and the flows that rule out one more.
		parts = append(parts, fmt.Sprintf("%s (%s over %s, %d needed)", at, plural(v.NextHops, "next hop"), plural(v.Flows, "flow"), v.Needed))
	}
	return strings.Join(parts, ", ")
}

// sweepNotes are the flows' notes (each once), then what silent probes
// mean: a probe that reached the destination (at or past its TTL on the
// flow's path) and got nothing is a lost answer — a lossy path or a busy
// service, not a router's limit; a TTL before it silent on some flows
// where others got a router's reply is a router's ICMP rate limit.
func sweepNotes(s report.TraceSweep, o TraceOptions) []string {
	var out []string
	for _, f := range s.Flows {
		for _, n := range f.Path.Notes {
			if n := Escape(n); !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		if n := fmt.Sprintf("%s mode cannot observe: %s", f.Path.Mode, strings.Join(f.Path.Unobserved, ", ")); len(f.Path.Unobserved) > 0 && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	// Where each flow's destination is: the TTL its path ends at (a flow
	// placed on a path whose answers were lost reached it later).
	dest := map[int]int{}
	for _, p := range s.Paths {
		if p.Reached == 0 || len(p.Hops) == 0 {
			continue
		}
		for _, port := range p.Sports {
			dest[port] = p.Hops[len(p.Hops)-1].TTL
		}
	}
	type tally struct{ silent, answered int }
	by := map[int]*tally{}
	var ttls []int
	lost, sent, lostFlows := 0, 0, 0
	for _, f := range s.Flows {
		d, ok := dest[f.Flow.Sport]
		if !ok && f.Path.Reached {
			d, ok = f.Path.DestTTL, true
		}
		flowLost := false
		for _, h := range f.Path.Hops {
			if ok && h.TTL >= d {
				for _, pr := range h.Probes {
					sent++
					if pr.Reply == nil {
						lost++
						flowLost = true
					}
				}
				continue
			}
			t := by[h.TTL]
			if t == nil {
				t = &tally{}
				by[h.TTL] = t
				ttls = append(ttls, h.TTL)
			}
			if len(h.Responders) == 0 {
				t.silent++
			} else {
				t.answered++
			}
		}
		if flowLost {
			lostFlows++
		}
	}
	if lost > 0 {
		what := "the destination did not answer"
		if s.Identity == report.SweepIdentityUDP {
			what = "the service did not answer"
		}
		out = append(out, fmt.Sprintf("%s %d of %d probes that reached it (on %s): answers lost on the way, a lossy path or a busy service, not routers' rate limits; the flows are placed where their other hops put them",
			what, lost, sent, plural(lostFlows, "flow")))
	}
	slices.Sort(ttls)
	var limited []string
	for _, ttl := range ttls {
		if t := by[ttl]; t.silent > 0 && t.answered > 0 {
			if len(limited) == 0 {
				limited = append(limited, fmt.Sprintf("ttl %d on %d of %s", ttl, t.silent, plural(t.silent+t.answered, "flow")))
				continue
			}
			limited = append(limited, fmt.Sprintf("ttl %d on %d", ttl, t.silent))
		}
	}
	if len(limited) > 0 {
		advice := "fewer flows, or --rate 5 (about one probe a second for each router), let every reply come"
		if o.Rate > 0 && o.Rate <= 5 {
			advice = fmt.Sprintf("at --rate %g they still do: fewer flows let more replies come", o.Rate)
		}
		out = append(out, fmt.Sprintf("routers did not answer every flow: %s, where other flows got a reply; routers rate-limit ICMP errors (Linux: 6 at once, then 1 a second to each source), and a flow silent there is placed on the path its other hops fit; %s",
			strings.Join(limited, ", "), advice))
	}
	return out
}

// TraceDot writes single-flow traces as a Graphviz digraph: the vantage,
// the hops (address, name, origin AS) and the instance at the end, each
// edge labelled with the flow that used it.
func TraceDot(w io.Writer, results []report.TraceResult) error {
	g := flowGraph()
	var fg flowEdges
	for _, r := range results {
		fg.addFlows(g, r.Target, r.Flows)
	}
	fg.write(g)
	return g.write(w)
}

// SweepDot writes flow sweeps as one Graphviz digraph: the vantage → hops
// → the instance each flow reached; every edge is labelled with the flows
// (source ports) that used it, so an ECMP diamond shows as parallel
// branches and a catchment split as two instances.
//
// Each flow is drawn along the path it was placed on (report.SweepPath),
// so a flow silent where others answered adds no branch of "*"; flows on
// no path are left out.
func SweepDot(w io.Writer, sweeps []report.TraceSweep) error {
	g := flowGraph()
	var fg flowEdges
	for _, s := range sweeps {
		var flows []report.TraceFlow
		for _, p := range s.Paths {
			hops := make([]report.HopDTO, len(p.Hops))
			for i, h := range p.Hops {
				hops[i] = report.HopDTO{TTL: h.TTL, Responders: h.Responders}
			}
			for _, port := range p.Sports {
				if f := flowByPort(s, port); f != nil {
					placed := *f
					placed.Path.Hops = hops
					flows = append(flows, placed)
				}
			}
		}
		fg.addFlows(g, s.Target, flows)
	}
	fg.write(g)
	return g.write(w)
}

func flowGraph() *dotGraph {
	return newDotGraph("paths", "rankdir=LR", `node [shape=box, fontname="Helvetica", fontsize=10]`, `edge [fontname="Helvetica", fontsize=9]`)
}

// flowEdges collects the flows of every edge before the edges are
// written, so each edge is drawn once with all of its flows.
type flowEdges struct {
	order [][2]string
	ports map[[2]string][]int
	proto map[[2]string]string
}

func (fg *flowEdges) add(from, to string, port int, proto string) {
	if fg.ports == nil {
		fg.ports, fg.proto = map[[2]string][]int{}, map[[2]string]string{}
	}
	k := [2]string{from, to}
	if _, ok := fg.ports[k]; !ok {
		fg.order = append(fg.order, k)
		fg.proto[k] = proto
	}
	fg.ports[k] = append(fg.ports[k], port)
}

// addFlows draws each flow from the vantage through its hops to the
// instance (or the target, when the flow carried no identity).
func (fg *flowEdges) addFlows(g *dotGraph, target string, flows []report.TraceFlow) {
	for _, f := range flows {
		src := "vantage:" + string(f.Flow.Src)
		label := "vantage\n" + string(f.Flow.Src)
		if so := f.Path.SourceOrigin; so != nil && len(so.ASNs) > 0 {
			label += "\n" + asLabel(so)
		}
		g.node(src, dotAttr("label", label), "style=rounded")
		prev := src
		for i, h := range f.Path.Hops {
			last := i == len(f.Path.Hops)-1
			var id string
			switch {
			case len(h.Responders) == 0:
				// A silent hop stays on its branch: one "*" per hop before it.
				id = fmt.Sprintf("silent:%d:%s", h.TTL, prev)
				g.node(id, dotAttr("label", fmt.Sprintf("*\nttl %d", h.TTL)), "style=dashed")
			case last && f.Path.Reached && h.Responders[0].Address == target:
				id, label = instanceDotNode(f, target)
				attrs := []string{"shape=ellipse", "style=filled", `fillcolor="lightblue"`, dotAttr("label", label)}
				if f.Instance.Name == "" {
					attrs[2] = `fillcolor="lightgrey"`
				}
				g.node(id, attrs...)
			default:
				r := h.Responders[0]
				id = "hop:" + r.Address
				g.node(id, dotAttr("label", hopDotLabel(r)))
			}
			fg.add(prev, id, f.Flow.Sport, f.Flow.Protocol)
			prev = id
		}
	}
}

func (fg *flowEdges) write(g *dotGraph) {
	for _, k := range fg.order {
		ports := fg.ports[k]
		what := "port"
		if fg.proto[k] == "icmp" {
			what = "id"
		}
		if len(ports) > 1 {
			what += "s"
		}
		label := fmt.Sprintf("%s\n%s %s", plural(len(ports), "flow"), what, portRanges(ports, 36))
		attrs := []string{dotAttr("label", label)}
		if len(ports) > 1 {
			attrs = append(attrs, fmt.Sprintf("penwidth=%.1f", min(1+float64(len(ports))/4, 6)))
		}
		g.edge(k[0], k[1], "", attrs...)
	}
}

// instanceDotNode is the node a flow that reached the target ends at: its
// instance, or the target itself when the flow carried no identity.
func instanceDotNode(f report.TraceFlow, target string) (id, label string) {
	if name := string(f.Instance.Name); name != "" {
		return "instance:" + target + "/" + name, name + "\n" + target
	}
	return "target:" + target, target + "\n(no identity)"
}

func hopDotLabel(r report.ResponderDTO) string {
	label := r.Address
	if r.Name != "" {
		label += "\n" + r.Name
	}
	if r.Origin != nil {
		as := asLabel(r.Origin)
		if n := asName(r.Origin); n != "" {
			as += " " + n
		}
		label += "\n" + as
	}
	return label
}
