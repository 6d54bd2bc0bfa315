package render

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/anycheck/anycheck/internal/report"
)

// IDText writes `anycheck id` results for a terminal.
func IDText(w io.Writer, targets []report.IDTarget) error {
	tw := &errWriter{w: w}
	for i, t := range targets {
		if i > 0 {
			tw.printf("\n")
		}
		idTarget(tw, t)
	}
	return tw.err
}

func idTarget(w *errWriter, t report.IDTarget) {
	host := t.Target
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	title := fmt.Sprintf("id %s:%d", host, t.Port)
	if t.Input != "" && t.Input != t.Target {
		title = fmt.Sprintf("id %s (%s:%d)", Escape(t.Input), host, t.Port)
	}
	op := ""
	if t.Operator != "" {
		op = "  operator " + Escape(t.Operator)
	}
	w.printf("%s, %s%s\n", title, t.Transport, op)
	if len(t.Flows) > 1 {
		// Several flows: one line each, then how they spread (idflows.go).
		idFlowTable(w, t)
	} else {
		for _, f := range t.Flows {
			idFlow(w, f, false)
		}
	}
	if len(t.Flows) == 1 && t.Flows[0].Summary.Runs > 1 {
		w.printf("instances %s\n", instanceList(t.Instances))
	}
	if t.Failed {
		why := t.Error
		if why == "" {
			why = fmt.Sprintf("no DNS answer from %s", t.Target)
		}
		w.printf("failed    %s\n", Escape(why))
	}
}

func idFlow(w *errWriter, f report.IDFlow, many bool) {
	indent := ""
	if many {
		indent = "  "
	}
	w.printf("flow %s\n", flowSource(f.Flow))
	if len(f.Runs) == 0 {
		w.printf("%s(no run finished)\n", indent)
		return
	}
	last := f.Runs[len(f.Runs)-1]
	lastReplied := slices.ContainsFunc(last.Answers, replied)
	switch {
	case last.Instance.Name != "":
		w.printf("%sinstance  %s\n", indent, identityLine(runsIdentity(f, last.Instance)))
	case f.Instance.Name != "":
		// The last run lost its answers (or named nothing): the flow
		// still reached the instance an earlier run named.
		w.printf("%sinstance  %s  named by run %d of %d\n", indent, identityLine(runsIdentity(f, f.Instance)), namedRunNumber(f), len(f.Runs))
	case f.Summary.Answered == 0:
		w.printf("%sinstance  none: no DNS answer came back\n", indent)
	default:
		w.printf("%sinstance  %s\n", indent, identityLine(report.InstanceDTO{}))
	}
	if len(f.Runs) > 1 {
		// The answers below are one run's, not the runs summed up.
		what := ""
		if !lastReplied {
			what = " no DNS answer came back"
		}
		w.printf("%s  last run (%d of %d):%s\n", indent, len(f.Runs), len(f.Runs), what)
	}
	nameW := 4
	for _, a := range last.Answers {
		nameW = max(nameW, len(Escape(a.Name)))
	}
	for _, a := range last.Answers {
		w.printf("%s  %-*s  %-9s  %s\n", indent, nameW, Escape(a.Name), a.Status, answerDetail(a))
	}
	if sus := suspicions(last.Answers); sus != "" {
		w.printf("%s! %s: something other than an authoritative server may have answered\n", indent, sus)
	}
	if f.Summary.Runs > 1 {
		s := f.Summary
		rtt := "rtt -"
		if s.RTT != nil {
			rtt = fmt.Sprintf("rtt min/avg/max %s/%s/%s ms", ms(s.RTT.Min), ms(s.RTT.Avg), ms(s.RTT.Max))
		}
		w.printf("%s  %d runs, %d/%d queries answered, %s, %s, instances %s\n",
			indent, s.Runs, s.Answered, s.Queries, plural(s.Timeouts, "timeout"), rtt, instanceList(s.Instances))
	}
}

// runsIdentity is in with the identity strings it lacks taken from the
// flow's other runs that named the same instance, latest first (a run that
// lost its hostname.bind answer names the instance by its NSID all the
// same).
func runsIdentity(f report.IDFlow, in report.InstanceDTO) report.InstanceDTO {
	for i := len(f.Runs) - 1; i >= 0; i-- {
		if f.Runs[i].Instance.Name == in.Name {
			in = fillIdentity(in, f.Runs[i].Instance)
		}
	}
	return in
}

// namedRunNumber is the number (from 1) of the latest of f's runs that
// named its instance.
func namedRunNumber(f report.IDFlow) int {
	for i := len(f.Runs) - 1; i >= 0; i-- {
		if f.Runs[i].Instance.Name == f.Instance.Name {
			return i + 1
		}
	}
	return len(f.Runs)
}

// flowSource is a flow's source as "address:port" (the port alone when the
// address is unknown).
func flowSource(f report.FlowDTO) string {
	if f.Src == "" {
		return fmt.Sprintf(":%d", f.Sport)
	}
	return endpoint(string(f.Src), f.Sport)
}

// identity is an instance object with plain strings.
type identity struct {
	Instance, InstanceSource, NSID, NSIDHex, HostnameBind, IDServer, VersionBind, VersionServer string
	Disagree                                                                                    bool
}

func plain(in report.InstanceDTO) identity {
	return identity{Instance: string(in.Name), InstanceSource: in.Source, NSID: string(in.NSID), NSIDHex: string(in.NSIDHex),
		HostnameBind: string(in.HostnameBind), IDServer: string(in.IDServer), VersionBind: string(in.VersionBind),
		VersionServer: string(in.VersionServer), Disagree: in.Disagree}
}

// identityLine puts the instance first, then every identity string seen.
func identityLine(in report.InstanceDTO) string {
	id := plain(in)
	if id.Instance == "" {
		return "unknown (no NSID, hostname.bind or id.server)"
	}
	var parts []string
	if id.NSIDHex != "" {
		parts = append(parts, nsidText(in))
	}
	if id.HostnameBind != "" {
		parts = append(parts, "hostname.bind "+Quote(id.HostnameBind))
	}
	if id.IDServer != "" {
		parts = append(parts, "id.server "+Quote(id.IDServer))
	}
	if id.VersionBind != "" {
		parts = append(parts, "version.bind "+Quote(id.VersionBind))
	}
	if id.VersionServer != "" {
		parts = append(parts, "version.server "+Quote(id.VersionServer))
	}
	return fmt.Sprintf("%s  (%s)", Escape(id.Instance), strings.Join(parts, "; "))
}

// nsidText shows an NSID as text when it is printable, else as hex (a
// binary NSID has no text to quote).
func nsidText(id report.InstanceDTO) string {
	if id.NSID != "" {
		return "NSID " + Quote(string(id.NSID))
	}
	return "NSID hex " + string(id.NSIDHex)
}

// replied says whether a DNS reply to the query came back (any RCODE), as
// measure.Answer.Replied does.
func replied(a report.AnswerDTO) bool {
	switch a.Status {
	case "timeout", "error", "malformed", "unreachable", "":
		return false
	}
	return true
}

func answerDetail(a report.AnswerDTO) string {
	var parts []string
	if len(a.TXT) > 0 {
		q := make([]string, len(a.TXT))
		for i, s := range a.TXT {
			q[i] = Quote(s)
		}
		parts = append(parts, strings.Join(q, " "))
	}
	if a.NSID != nil {
		parts = append(parts, "nsid "+Quote(*a.NSID))
	} else if a.NSIDHex != nil {
		parts = append(parts, "nsid hex "+*a.NSIDHex)
	}
	if a.RTTMs != nil {
		parts = append(parts, ms(*a.RTTMs)+" ms")
	}
	if a.Transport == "tcp" {
		if a.Truncated {
			parts = append(parts, "tcp (udp answer truncated)")
		} else {
			parts = append(parts, "tcp")
		}
	}
	if a.Rcode != nil && a.Status == "rcode" && !strings.HasPrefix(a.Detail, "rcode ") {
		parts = append(parts, fmt.Sprintf("rcode %d", *a.Rcode))
	}
	if a.Detail != "" {
		parts = append(parts, Escape(a.Detail))
	}
	return strings.Join(parts, "  ")
}

// suspicions lists the answers' suspicion flags for the warning line. A
// clear AA bit alone is no sign of interception (NSD and Knot both answer
// CHAOS queries without it), so it is only shown next to a stronger sign;
// the JSON output keeps every flag.
func suspicions(answers []report.AnswerDTO) string {
	var out []string
	seen := map[string]bool{}
	strong := false
	for _, a := range answers {
		for _, s := range a.Suspicions {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
				strong = strong || s != "aa_clear"
			}
		}
	}
	if !strong {
		return ""
	}
	return strings.Join(out, ", ")
}

func instanceList(cs []report.InstanceCount) string {
	if len(cs) == 0 {
		return "none identified"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s ×%d", Escape(c.Instance), c.Runs)
	}
	return strings.Join(parts, ", ")
}

// ms formats milliseconds the way traceroute does: two decimals.
func ms(v float64) string {
	return fmt.Sprintf("%.2f", v)
}

// errWriter keeps the first write error so the renderers read straight.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
