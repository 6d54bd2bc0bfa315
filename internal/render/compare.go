package render

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/anycheck/anycheck/internal/report"
)

// CompareText writes the catchment report of `anycheck compare`: the
// catchment table, instances per target, dual-stack divergence, where paths
// part, suspect answers, errors, changes over time, and the diff of two
// runs when there is one.
func CompareText(w io.Writer, rows []report.CompareRow, s *report.CompareSummary) error {
	ew := &errWriter{w: w}
	if s == nil {
		s = &report.CompareSummary{}
	}
	if s.Diff != nil {
		diffText(ew, rows, s)
		return ew.err
	}
	vantages := map[string]bool{}
	for _, r := range rows {
		vantages[r.Vantage.Key] = true
	}
	ew.printf("compare: %s, %s, %s, %s\n", plural(len(s.Inputs), "input"), plural(len(rows), "line"),
		plural(len(vantages), "vantage point"), plural(len(s.Targets), "target"))
	if len(rows) == 0 {
		return ew.err
	}
	ew.printf("\ncatchment\n")
	table := [][]string{{"VANTAGE", "AS", "TARGET", "INSTANCE", "SITE", "UPSTREAM", "AS PATH", "DNS RTT", "PATH RTT", "NOTES"}}
	for _, r := range rows {
		table = append(table, []string{
			Escape(r.Vantage.Label), vantageAS(r.Vantage), targetLabel(r.Target, r.TargetName),
			instanceLabel(r), siteLabel(r.Site), upstreamLabel(r.Upstream), asPath(r.ASPath),
			msLabel(r.DNSRTTMs), msLabel(r.PathRTTMs), strings.Join(rowNotes(r), "; "),
		})
	}
	writeTable(ew, table, "")

	for _, t := range s.Targets {
		ew.printf("\ninstances of %s: %s", targetLabel(t.Target, strings.Join(t.Names, ", ")), plural(t.Vantages, "vantage point"))
		var apart []string
		if t.Suspect > 0 {
			apart = append(apart, fmt.Sprintf("%d suspect", t.Suspect))
		}
		if t.Unknown > 0 {
			apart = append(apart, fmt.Sprintf("%d without an instance", t.Unknown))
		}
		if len(apart) > 0 {
			ew.printf(" (%s)", strings.Join(apart, ", "))
		}
		ew.printf("\n")
		var it [][]string
		for _, sh := range t.Instances {
			name := Escape(sh.Instance)
			if sh.Source == "upstream" {
				name = "via " + name
			}
			it = append(it, []string{name, siteLabel(sh.Site), plural(sh.Vantages, "vantage"),
				strconv.FormatFloat(sh.Share*100, 'f', 1, 64) + "%", asList(sh.ASNs, 4), Escape(strings.Join(first(sh.Countries, 4), " ")),
				medianLabel(sh.MedianRTTMs)})
		}
		writeTable(ew, it, "  ")
	}

	ew.printf("\ndual-stack divergence: ")
	if len(s.DualStack) == 0 {
		ew.printf("none\n")
	} else {
		ew.printf("%s\n", plural(len(s.DualStack), "vantage point"))
		var dt [][]string
		for _, d := range s.DualStack {
			note := ""
			if d.SameSite {
				note = "same site " + Escape(d.IPv4.Site.Site)
			}
			dt = append(dt, []string{Escape(d.Vantage), "IPv4 " + Escape(d.IPv4.Instance), "IPv6 " + Escape(d.IPv6.Instance), note})
		}
		writeTable(ew, dt, "  ")
	}

	ew.printf("where paths part:")
	if len(s.PathsPart) == 0 {
		ew.printf(" no origin AS has vantage points reaching different instances\n")
	} else {
		ew.printf("\n")
		for _, p := range s.PathsPart {
			ew.printf("  AS%d → %s: after %s\n", p.OriginAS, p.Target, asPath(p.Common))
			var sides [][]string
			for _, side := range p.Sides {
				at := "the path ends"
				if side.AS != nil {
					at = fmt.Sprintf("AS%d", *side.AS)
					if side.Hop != nil {
						at += fmt.Sprintf(" (hop %d %s)", side.Hop.TTL, side.Hop.Address)
					}
				}
				sides = append(sides, []string{Escape(side.Instance), at, Escape(strings.Join(first(side.Vantages, 5), ", "))})
			}
			writeTable(ew, sides, "    ")
		}
	}

	suspect := 0
	for _, r := range rows {
		if r.Suspect {
			suspect++
		}
	}
	ew.printf("suspect answers: ")
	if suspect == 0 {
		ew.printf("none\n")
	} else {
		ew.printf("%d of %d lines, counted apart from the instances\n", suspect, len(rows))
		var st [][]string
		for _, r := range rows {
			if r.Suspect {
				st = append(st, []string{Escape(r.Vantage.Label), r.Target, quoteOrDash(r.Instance), Escape(strings.Join(r.Suspicions, ", "))})
			}
		}
		writeTable(ew, st, "  ")
	}

	errRows := 0
	for _, r := range rows {
		if len(r.Errors) > 0 || r.Timeouts > 0 {
			errRows++
		}
	}
	ew.printf("errors and timeouts: ")
	if errRows == 0 {
		ew.printf("none\n")
	} else {
		ew.printf("%s\n", plural(errRows, "line"))
		var et [][]string
		for _, r := range rows {
			if len(r.Errors) == 0 && r.Timeouts == 0 {
				continue
			}
			var msgs []string
			if r.Timeouts > 0 {
				msgs = append(msgs, plural(r.Timeouts, "query")+" timed out")
			}
			for _, e := range r.Errors {
				msgs = append(msgs, Escape(e))
			}
			et = append(et, []string{Escape(r.Vantage.Label), r.Target, strings.Join(msgs, "; ")})
		}
		writeTable(ew, et, "  ")
	}

	if len(s.Changes) > 0 {
		ew.printf("changes over time: %s\n", plural(len(s.Changes), "line"))
		for _, c := range s.Changes {
			for _, e := range c.Events {
				when := "(undated)"
				if e.Time != nil {
					when = *e.Time
				}
				ew.printf("  %s  %s  %s %s → %s at %s\n", Escape(c.Vantage), c.Target, c.Kind, Escape(e.From), Escape(e.To), when)
			}
		}
	}
	return ew.err
}

func diffText(ew *errWriter, rows []report.CompareRow, s *report.CompareSummary) {
	moved := 0
	for _, m := range s.Diff.Moves {
		if m.Kind == "moved" {
			moved++
		}
	}
	ew.printf("diff: %s moved instance, %s changed in all, of %s after\n", plural(moved, "line"), plural(len(s.Diff.Moves), "line"), plural(len(rows), "line"))
	if len(s.Diff.Moves) == 0 {
		return
	}
	t := [][]string{{"VANTAGE", "TARGET", "CHANGE", "BEFORE", "AFTER", "UPSTREAM BEFORE", "UPSTREAM AFTER"}}
	for _, m := range s.Diff.Moves {
		t = append(t, []string{Escape(m.Vantage), m.Target, m.Kind, stateInstance(m.Before), stateInstance(m.After), stateUpstream(m.Before), stateUpstream(m.After)})
	}
	writeTable(ew, t, "")
}

func stateInstance(s *report.MoveState) string {
	if s == nil {
		return "-"
	}
	return quoteOrDash(s.Instance)
}

func stateUpstream(s *report.MoveState) string {
	if s == nil {
		return "-"
	}
	return upstreamLabel(s.Upstream)
}

// writeTable pads columns; the last column is not padded.
func writeTable(ew *errWriter, rows [][]string, indent string) {
	if len(rows) == 0 {
		return
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], width(c))
			}
		}
	}
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = pad(c, widths[i])
		}
		ew.printf("%s%s\n", indent, strings.TrimRight(strings.Join(cells, "  "), " "))
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	switch {
	case strings.HasSuffix(what, "y"):
		what = what[:len(what)-1] + "ies"
	default:
		what += "s"
	}
	return strconv.Itoa(n) + " " + what
}

func vantageAS(v report.CompareVantage) string {
	if v.Origin == nil || len(v.Origin.ASNs) == 0 {
		return "-"
	}
	return "AS" + strconv.FormatUint(uint64(v.Origin.ASNs[0]), 10)
}

func targetLabel(target, name string) string {
	if name == "" {
		return target
	}
	return Escape(name) + " " + target
}

func instanceLabel(r report.CompareRow) string {
	switch {
	case r.Instance == nil:
		return "-"
	case r.InstanceSource == "upstream":
		return "via " + Escape(*r.Instance)
	}
	s := Escape(*r.Instance)
	if r.Split {
		var parts []string
		for _, f := range r.FlowInstances {
			parts = append(parts, fmt.Sprintf("%s %d", Escape(f.Instance), f.Flows))
		}
		s += " (split: " + strings.Join(parts, ", ") + " flows)"
	}
	return s
}

func quoteOrDash(s *string) string {
	if s == nil {
		return "-"
	}
	return Quote(*s)
}

func siteLabel(s *report.SiteDTO) string {
	if s == nil {
		return "-"
	}
	return Escape(s.Operator + " " + s.Site)
}

func upstreamLabel(u *report.UpstreamDTO) string {
	if u == nil {
		return "-"
	}
	if len(u.ASNs) > 0 {
		return u.Address + " " + asList(u.ASNs, 2)
	}
	return u.Address
}

func asList(asns []uint32, n int) string {
	if len(asns) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(asns))
	for i, a := range asns {
		if i == n {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, "AS"+strconv.FormatUint(uint64(a), 10))
	}
	return strings.Join(parts, " ")
}

func asPath(p []uint32) string {
	if len(p) == 0 {
		return "-"
	}
	parts := make([]string, len(p))
	for i, a := range p {
		parts[i] = strconv.FormatUint(uint64(a), 10)
	}
	return strings.Join(parts, " → ")
}

func msLabel(v *float64) string {
	if v == nil {
		return "-"
	}
	return ms(*v) + " ms"
}

func medianLabel(v *float64) string {
	if v == nil {
		return ""
	}
	return "median " + ms(*v) + " ms"
}

func first(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string{}, s[:n]...), "…")
}

func rowNotes(r report.CompareRow) []string {
	var notes []string
	if r.Suspect {
		notes = append(notes, "suspect: "+Escape(strings.Join(r.Suspicions, ",")))
	}
	if r.Traced && !r.Reached {
		notes = append(notes, "target not reached")
	}
	if r.Timeouts > 0 {
		notes = append(notes, plural(r.Timeouts, "timeout"))
	}
	if len(r.Errors) > 0 && r.Timeouts == 0 {
		notes = append(notes, plural(len(r.Errors), "error"))
	}
	return notes
}

// CompareCSV writes the catchment table (or, for a diff, the moves) as
// CSV. Untrusted text is escaped as in text output, and a cell a
// spreadsheet would run as a formula is prefixed with a quote.
func CompareCSV(w io.Writer, rows []report.CompareRow, s *report.CompareSummary) error {
	cw := csv.NewWriter(w)
	if s != nil && s.Diff != nil {
		cw.Write([]string{"vantage", "vantage_key", "target", "family", "change", "instance_before", "instance_after", "upstream_before", "upstream_after", "instance_changed", "upstream_changed"})
		for _, m := range s.Diff.Moves {
			var ib, ia, ub, ua string
			if m.Before != nil {
				ib, ub = deref(m.Before.Instance), upstreamAddr(m.Before.Upstream)
			}
			if m.After != nil {
				ia, ua = deref(m.After.Instance), upstreamAddr(m.After.Upstream)
			}
			cw.Write([]string{cell(m.Vantage), cell(m.VantageKey), cell(m.Target), cell(m.Family), cell(m.Kind), cell(ib), cell(ia), cell(ub), cell(ua),
				strconv.FormatBool(m.InstanceChanged), strconv.FormatBool(m.UpstreamChanged)})
		}
		cw.Flush()
		return cw.Error()
	}
	cw.Write([]string{"vantage", "vantage_key", "probe_id", "source", "public", "origin_as", "country", "target", "target_name", "family",
		"time", "instance", "instance_source", "site_operator", "site", "upstream", "upstream_as", "as_path", "traced", "reached",
		"dns_rtt_ms", "path_rtt_ms", "suspect", "suspicions", "timeouts", "errors", "split", "input"})
	for _, r := range rows {
		v := r.Vantage
		probeID, as, cc := "", "", ""
		if v.ProbeID != nil {
			probeID = strconv.Itoa(*v.ProbeID)
		}
		if v.Origin != nil {
			if len(v.Origin.ASNs) > 0 {
				as = strconv.FormatUint(uint64(v.Origin.ASNs[0]), 10)
			}
			cc = v.Origin.Country
		}
		site, op := "", ""
		if r.Site != nil {
			op, site = r.Site.Operator, r.Site.Site
		}
		upAS := ""
		if r.Upstream != nil && len(r.Upstream.ASNs) > 0 {
			upAS = strconv.FormatUint(uint64(r.Upstream.ASNs[0]), 10)
		}
		path := make([]string, len(r.ASPath))
		for i, a := range r.ASPath {
			path[i] = strconv.FormatUint(uint64(a), 10)
		}
		// Every cell of text goes through cell, the ones the report
		// made itself too: a value read from a file may be anything.
		cw.Write([]string{cell(v.Label), cell(v.Key), probeID, cell(deref(v.Source)), cell(deref(v.Public)), as, cell(cc), cell(r.Target), cell(r.TargetName), cell(r.Family),
			cell(deref(r.Time)), cell(deref(r.Instance)), cell(r.InstanceSource), cell(op), cell(site), cell(upstreamAddr(r.Upstream)), upAS, strings.Join(path, " "),
			strconv.FormatBool(r.Traced), strconv.FormatBool(r.Reached), msCSV(r.DNSRTTMs), msCSV(r.PathRTTMs),
			strconv.FormatBool(r.Suspect), cell(strings.Join(r.Suspicions, " ")), strconv.Itoa(r.Timeouts), cell(strings.Join(r.Errors, "; ")),
			strconv.FormatBool(r.Split), cell(r.Input)})
	}
	cw.Flush()
	return cw.Error()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func upstreamAddr(u *report.UpstreamDTO) string {
	if u == nil {
		return ""
	}
	return u.Address
}

func msCSV(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

// cell makes untrusted text safe for a CSV cell opened in a spreadsheet.
func cell(s string) string {
	s = Escape(s)
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}
