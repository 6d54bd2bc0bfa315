package render

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anycheck/anycheck/internal/report"
)

// WatchOptions shape the text of `anycheck watch`.
type WatchOptions struct {
	// Loc is the time zone times are shown in; nil = UTC.
	Loc *time.Location
}

func (o WatchOptions) clock(stamp string) string {
	t, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		return "-"
	}
	loc := o.Loc
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("15:04:05.000")
}

// dur formats a duration in milliseconds for a reader: whole seconds
// above a minute, tenths of a second below.
func dur(msv float64) string {
	d := time.Duration(msv * float64(time.Millisecond))
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// flowPort is a flow's source port ("?" unknown).
func flowPort(f report.FlowDTO) string {
	if f.Sport == 0 {
		return "?"
	}
	return strconv.Itoa(f.Sport)
}

func instanceName(s string) string {
	if s == "" {
		return "(no identity)"
	}
	return Escape(s)
}

// WatchEventText writes one event of `anycheck watch` as it happens: one
// line, plus one line per changed hop for a path event.
func WatchEventText(w io.Writer, e report.WatchEvent, o WatchOptions) error {
	ew := &errWriter{w: w}
	target := e.Target
	if e.Input != "" {
		target = e.Input
	}
	ew.printf("%s  %s :%s  %-7s  %s\n", o.clock(e.Time), Escape(target), flowPort(e.Flow), e.Type, eventDetail(e, o))
	switch {
	case e.Path == nil:
	case e.Path.Previous == nil:
		for i := range e.Path.Trace.Path.Hops {
			h := &e.Path.Trace.Path.Hops[i]
			ew.printf("    %3d  %s\n", h.TTL, hopAddrs(h))
		}
	default:
		changedHops(ew, *e.Path)
	}
	return ew.err
}

func rttOf(v *float64) string {
	if v == nil {
		return "-"
	}
	return ms(*v)
}

func eventDetail(e report.WatchEvent, o WatchOptions) string {
	in := string(e.Instance.Name)
	from := ""
	if e.From != nil {
		from = string(e.From.Name)
	}
	switch e.Type {
	case "start":
		return fmt.Sprintf("%s  rtt %s ms", instanceName(in), rttOf(e.RTTAfterMs))
	case "switch":
		return fmt.Sprintf("%s → %s  rtt %s → %s ms", instanceName(from), instanceName(in), rttOf(e.RTTBeforeMs), rttOf(e.RTTAfterMs))
	case "lost":
		s := fmt.Sprintf("no reply since %s (%d rounds)", o.clock(e.Since), e.Misses)
		if in != "" {
			s += ", last on " + Escape(in)
		}
		return s
	case "back":
		return fmt.Sprintf("%s after %s without a reply (%d rounds)  rtt %s ms", instanceName(in), sinceDur(e.Since, e.Time), e.Misses, rttOf(e.RTTAfterMs))
	case "suspect":
		who := "an answer"
		if in != "" {
			who = Quote(in)
		}
		return fmt.Sprintf("%s with %s: something other than the service may have answered  rtt %s ms", who, strings.Join(e.Suspicions, ", "), rttOf(e.RTTAfterMs))
	case "error":
		return Escape(e.Detail)
	case report.WatchEventPath:
		if e.Path == nil {
			return ""
		}
		return pathSummary(e)
	}
	return ""
}

func sinceDur(since, now string) string {
	a, err1 := time.Parse(time.RFC3339Nano, since)
	b, err2 := time.Parse(time.RFC3339Nano, now)
	if err1 != nil || err2 != nil {
		return "?"
	}
	return dur(float64(b.Sub(a)) / float64(time.Millisecond))
}

// asPathNote is "  (as path 64500 → 64520)", or nothing without ASes.
func asPathNote(p []uint32) string {
	if len(p) == 0 {
		return ""
	}
	return "  (as path " + asPath(p) + ")"
}

func pathSummary(e report.WatchEvent) string {
	p := e.Path
	to := "to " + instanceName(string(e.Instance.Name))
	if !p.Trace.Path.Reached {
		to = "not reaching " + Escape(p.Trace.Flow.Dst) + " (" + p.Trace.Path.StopReason + ")"
	}
	if p.Previous == nil {
		return fmt.Sprintf("%s, %d hops", to, len(p.Trace.Path.Hops)) + asPathNote(p.Trace.Path.ASPath) + upstreamNote(p.Trace.Path.Upstream)
	}
	if len(p.Changed) == 0 {
		return fmt.Sprintf("%s: unchanged (%d hops)", to, len(p.Trace.Path.Hops))
	}
	where := "differs from the first hop"
	if p.Common != nil {
		where = fmt.Sprintf("leaves the old path after ttl %d %s", p.PartTTL, responderLabel(*p.Common))
	}
	return fmt.Sprintf("%s %s; %d hops differ", to, where, len(p.Changed)) + asPathNote(p.Trace.Path.ASPath) + upstreamNote(p.Trace.Path.Upstream)
}

// upstreamNote is "  upstream 203.0.113.1 from AS64500", or nothing.
func upstreamNote(u *report.UpstreamDTO) string {
	if u == nil {
		return ""
	}
	return "  upstream " + upstreamLabel(u)
}

func responderLabel(r report.ResponderDTO) string {
	s := r.Address
	if l := asLabel(r.Origin); l != "" {
		s += " " + l
	}
	return s
}

// hopAddrs is a hop's responders ("*" when silent, "-" when absent).
func hopAddrs(h *report.HopDTO) string {
	if h == nil {
		return "-"
	}
	if len(h.Responders) == 0 {
		return "*"
	}
	parts := make([]string, len(h.Responders))
	for i, r := range h.Responders {
		parts[i] = responderLabel(r)
	}
	return strings.Join(parts, ",")
}

func hopAt(hops []report.HopDTO, ttl int) *report.HopDTO {
	for i := range hops {
		if hops[i].TTL == ttl {
			return &hops[i]
		}
	}
	return nil
}

func changedHops(w *errWriter, p report.WatchPath) {
	oldW := 1
	for _, ttl := range p.Changed {
		oldW = max(oldW, width(hopAddrs(hopAt(p.Previous.Path.Hops, ttl))))
	}
	for _, ttl := range p.Changed {
		w.printf("    %3d  %s  →  %s\n", ttl, pad(hopAddrs(hopAt(p.Previous.Path.Hops, ttl)), oldW), hopAddrs(hopAt(p.Trace.Path.Hops, ttl)))
	}
}

// WatchText writes the summary of `anycheck watch`: per target, the
// instances with their share of the watched time, then the counts; a
// target watched over several flows gets one summary of them all.
func WatchText(w io.Writer, targets []report.WatchTarget, o WatchOptions) error {
	ew := &errWriter{w: w}
	n := 0
	for _, t := range targets {
		if len(t.Flows) == 0 {
			continue
		}
		if n > 0 {
			ew.printf("\n")
		}
		n++
		if len(t.Flows) == 1 {
			watchFlow(ew, t, t.Flows[0], o)
			continue
		}
		watchFlows(ew, t, o)
	}
	return ew.err
}

// watchTarget is a watched target as the text names it.
func watchTarget(t report.WatchTarget) string {
	target := endpoint(t.Target, t.Port)
	if t.Input != "" && t.Input != t.Target {
		target = fmt.Sprintf("%s (%s)", Escape(t.Input), target)
	}
	return target
}

// everyRound: the longest stable run is one round of many answered ones,
// so no instance answered two rounds in a row.
func percent(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }

func watchFlow(ew *errWriter, t report.WatchTarget, f report.WatchFlow, o WatchOptions) {
	src := "(no socket)"
	if f.Flow.Sport != 0 {
		src = flowSource(f.Flow)
	}
	ew.printf("watch %s %s from %s: %s every %s over %s (%s – %s)\n",
		watchTarget(t), t.Transport, src, nOf(f.Rounds, "round", "rounds"), dur(f.IntervalMs), dur(f.DurationMs), o.clock(f.Started), o.clock(f.Ended))
	tw := newTable(ew.w)
	tabw := &errWriter{w: tw}
	if ew.err == nil {
		tabw.printf("  instance\tshare\ttime\trounds\trtt ms min/p50/p90/p99/max\n")
		for _, in := range f.Instances {
			rtt := "-"
			if r := in.RTT; r != nil {
				rtt = strings.Join([]string{ms(r.Min), ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max)}, "/")
			}
			tabw.printf("  %s\t%s\t%s\t%d\t%s\n", Escape(string(in.Instance.Name)), percent(in.Share), dur(in.TimeMs), in.Rounds, rtt)
		}
		for _, x := range []struct {
			name string
			s    report.WatchShare
		}{{"suspect answers", f.Suspect.WatchShare}, {"no identity", f.Anonymous}, {"no answer", f.NoAnswer}} {
			if x.s.Rounds > 0 {
				tabw.printf("  %s\t%s\t%s\t%d\n", x.name, percent(x.s.Share), dur(x.s.TimeMs), x.s.Rounds)
			}
		}
		if tabw.err == nil {
			tabw.err = tw.Flush()
		}
		ew.err = tabw.err
	}
	ew.printf("  %s, %s, %d of %d queries timed out", nOf(f.Switches, "switch", "switches"), nOf(f.Losses, "loss", "losses"), f.Timeouts, f.Queries)
	if f.Lost {
		ew.printf("; lost at the end")
	}
	ew.printf("\n")
	if r := f.LongestStable; r != nil {
		if f.ChangedEveryRound {
			ew.printf("  no stable run: the instance changed on every round\n")
		} else {
			ew.printf("  longest stable run: %s for %s (%s, %s – %s)\n", Escape(r.Instance), dur(r.DurationMs), nOf(r.Rounds, "round", "rounds"), o.clock(r.Start), o.clock(r.End))
		}
	}
	if f.Suspect.Rounds > 0 {
		ids := make([]string, len(f.Suspect.Identities))
		for i, s := range f.Suspect.Identities {
			ids[i] = Quote(s)
		}
		ew.printf("  ! suspect answers (%s)", strings.Join(f.Suspect.Suspicions, ", "))
		if len(ids) > 0 {
			ew.printf(" naming %s", strings.Join(ids, ", "))
		}
		ew.printf(": something other than the service may have answered\n")
	}
	if f.EventsOmitted > 0 {
		ew.printf("  (%d earlier events are not kept in the summary)\n", f.EventsOmitted)
	}
}

// nOf is "1 switch", "2 switches".
func nOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// watchFlows is the summary of one target watched over several flows: as
// for id --flows, a catchment split is said first, then a line per flow
// (its main instance — the one it spent most time on — share, switches,
// losses, timeouts), the instances over all flows (share of the flows'
// watched time), the totals, and the instances' shares of the flows.
func watchFlows(ew *errWriter, t report.WatchTarget, o WatchOptions) {
	flows := t.Flows
	f0 := flows[0]
	target := watchTarget(t)
	src, ports := "", []int{}
	minRounds, maxRounds := f0.Rounds, f0.Rounds
	var started, ended time.Time
	var total float64
	for _, f := range flows {
		if f.Flow.Sport != 0 {
			src = cmp.Or(src, string(f.Flow.Src))
			ports = append(ports, f.Flow.Sport)
		}
		minRounds, maxRounds = min(minRounds, f.Rounds), max(maxRounds, f.Rounds)
		if t, err := time.Parse(time.RFC3339Nano, f.Started); err == nil && (started.IsZero() || t.Before(started)) {
			started = t
		}
		if t, err := time.Parse(time.RFC3339Nano, f.Ended); err == nil && t.After(ended) {
			ended = t
		}
		total += f.DurationMs
	}
	from := "(no socket)"
	if src != "" {
		from = fmt.Sprintf("%s ports %s", src, portRanges(ports, 0))
	}
	rounds := fmt.Sprintf("%d rounds each", minRounds)
	if minRounds != maxRounds {
		rounds = fmt.Sprintf("%d–%d rounds per flow", minRounds, maxRounds)
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return o.clock(t.Format(time.RFC3339Nano))
	}
	ew.printf("watch %s %s, %d flows from %s: %s every %s over %s (%s – %s)\n",
		target, t.Transport, len(flows), from, rounds, dur(f0.IntervalMs), dur(float64(ended.Sub(started))/float64(time.Millisecond)), stamp(started), stamp(ended))

	// Each flow counts for the instance it spent most time on (the
	// catchment model's summary).
	sum := t.FlowSummary
	if sum == nil {
		sum = &report.IDFlowSplit{Flows: len(flows)}
	}
	shares, unidentified, split := sum.Instances, sum.Unidentified, sum.Split
	if split {
		ew.printf("catchment split by flow: %s\n", instanceShares(shares, len(flows)))
	}

	byPort := slices.Clone(flows)
	slices.SortStableFunc(byPort, func(a, b report.WatchFlow) int { return cmp.Compare(a.Flow.Sport, b.Flow.Sport) })
	var rows strings.Builder
	tw := newTable(&rows)
	tabw := &errWriter{w: tw}
	{
		tabw.printf("  PORT\tINSTANCE\tSHARE\tSWITCHES\tLOSSES\tTIMEOUTS\t\n")
		for _, f := range byPort {
			instance, share := "—", "-"
			var notes []string
			if len(f.Instances) > 0 {
				instance, share = escapeFit(string(f.Instances[0].Instance.Name), maxNameWidth), percent(f.Instances[0].Share)
				for _, in := range f.Instances[1:] {
					notes = append(notes, fmt.Sprintf("also %s %s", Escape(string(in.Instance.Name)), percent(in.Share)))
				}
			}
			if f.Suspect.Rounds > 0 {
				notes = append(notes, fmt.Sprintf("! suspect answers %s", percent(f.Suspect.Share)))
			}
			if f.Lost {
				notes = append(notes, "lost at the end")
			}
			tabw.printf("  %s\t%s\t%s\t%d\t%d\t%d of %d\t%s\n", flowPort(f.Flow), instance, share, f.Switches, f.Losses, f.Timeouts, f.Queries, strings.Join(notes, "; "))
		}
		_ = tw.Flush() // into memory
		for _, l := range strings.Split(strings.TrimRight(rows.String(), "\n"), "\n") {
			ew.printf("%s\n", strings.TrimRight(l, " "))
		}
	}

	// The instances over all flows, as shares of their watched time.
	type agg struct {
		name          string
		timeMs        float64
		flows, rounds int
		min, max      float64
		rtt           bool
	}
	var order []*agg
	by := map[string]*agg{}
	var suspect, anonymous, noAnswer report.WatchShare
	var suspicions, identities []string
	switches, losses, timeouts, queries, lost, omitted := 0, 0, 0, 0, 0, 0
	everyRound := false // a flow's instance changed every round
	var longest *report.WatchRun
	longestPort := ""
	for _, f := range flows {
		for _, in := range f.Instances {
			name := string(in.Instance.Name)
			a := by[name]
			if a == nil {
				a = &agg{name: name}
				by[name] = a
				order = append(order, a)
			}
			a.timeMs += in.TimeMs
			a.flows++
			a.rounds += in.Rounds
			if r := in.RTT; r != nil {
				if !a.rtt || r.Min < a.min {
					a.min = r.Min
				}
				a.max = max(a.max, r.Max)
				a.rtt = true
			}
		}
		for _, x := range []struct{ dst, src *report.WatchShare }{{&suspect, &f.Suspect.WatchShare}, {&anonymous, &f.Anonymous}, {&noAnswer, &f.NoAnswer}} {
			x.dst.Rounds += x.src.Rounds
			x.dst.TimeMs += x.src.TimeMs
		}
		for _, sus := range f.Suspect.Suspicions {
			if !slices.Contains(suspicions, sus) {
				suspicions = append(suspicions, sus)
			}
		}
		for _, id := range f.Suspect.Identities {
			if !slices.Contains(identities, id) {
				identities = append(identities, id)
			}
		}
		switches += f.Switches
		everyRound = everyRound || f.ChangedEveryRound
		losses += f.Losses
		timeouts += f.Timeouts
		queries += f.Queries
		omitted += f.EventsOmitted
		if f.Lost {
			lost++
		}
		if r := f.LongestStable; r != nil && (longest == nil || r.DurationMs > longest.DurationMs) {
			longest, longestPort = r, flowPort(f.Flow)
		}
	}
	share := func(ms float64) string {
		if total <= 0 {
			return "-"
		}
		return percent(ms / total)
	}
	slices.SortStableFunc(order, func(a, b *agg) int { return cmp.Compare(b.timeMs, a.timeMs) })
	tw = newTable(ew.w)
	tabw = &errWriter{w: tw}
	if ew.err == nil {
		// An instance's time is summed over its flows (4 flows watched for
		// 1.5 s make 6 s): "flow time", not longer than the watch.
		tabw.printf("  instance\tshare\tflow time\tflows\trounds\trtt ms min/max\n")
		for _, a := range order {
			rtt := "-"
			if a.rtt {
				rtt = ms(a.min) + "/" + ms(a.max)
			}
			tabw.printf("  %s\t%s\t%s\t%d\t%d\t%s\n", Escape(a.name), share(a.timeMs), dur(a.timeMs), a.flows, a.rounds, rtt)
		}
		for _, x := range []struct {
			name string
			s    report.WatchShare
		}{{"suspect answers", suspect}, {"no identity", anonymous}, {"no answer", noAnswer}} {
			if x.s.Rounds > 0 {
				tabw.printf("  %s\t%s\t%s\t\t%d\n", x.name, share(x.s.TimeMs), dur(x.s.TimeMs), x.s.Rounds)
			}
		}
		if tabw.err == nil {
			tabw.err = tw.Flush()
		}
		ew.err = tabw.err
	}
	ew.printf("  %s, %s, %d of %d queries timed out", nOf(switches, "switch", "switches"), nOf(losses, "loss", "losses"), timeouts, queries)
	if lost > 0 {
		ew.printf("; %s lost at the end", nOf(lost, "flow", "flows"))
	}
	ew.printf("\n")
	if r := longest; r != nil {
		// No flow kept an instance two rounds in a row, and one changed on
		// every round of its own.
		if everyRound && r.Rounds <= 1 {
			ew.printf("  no stable run: the instance changed on every round\n")
		} else {
			ew.printf("  longest stable run: %s for %s (%s, %s – %s), port %s\n", Escape(r.Instance), dur(r.DurationMs), nOf(r.Rounds, "round", "rounds"), o.clock(r.Start), o.clock(r.End), longestPort)
		}
	}
	if suspect.Rounds > 0 {
		ids := make([]string, len(identities))
		for i, s := range identities {
			ids[i] = Quote(s)
		}
		ew.printf("  ! suspect answers (%s)", strings.Join(suspicions, ", "))
		if len(ids) > 0 {
			ew.printf(" naming %s", strings.Join(ids, ", "))
		}
		ew.printf(": something other than the service may have answered\n")
	}
	if omitted > 0 {
		ew.printf("  (%d earlier events are not kept in the summary)\n", omitted)
	}
	switch {
	case len(shares) == 0:
		ew.printf("instances none identified on %s\n", plural(len(flows), "flow"))
	default:
		line := instanceShares(shares, len(flows))
		if unidentified > 0 {
			line += fmt.Sprintf("; %s without an identity", plural(unidentified, "flow"))
		}
		if split {
			line += "  — catchment split by flow"
		}
		ew.printf("instances %s\n", line)
	}
}
