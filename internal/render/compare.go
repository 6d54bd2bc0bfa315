package render

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/internal/report"
)

// CompareOptions are the choices of the compare text report.
type CompareOptions struct {
	// All lists every line of the catchment table; without it the table
	// follows the summary only up to MaxTableRows lines.
	All bool
	// NoTable leaves the table out (the HTML report has its own).
	NoTable bool
	// Lines draws a line from each vantage point to its site on maps.
	Lines bool
}

// MaxTableRows is the most catchment-table lines the text report lists
// without CompareOptions.All; the summary always lists the anomalies.
const MaxTableRows = 50

// CompareText writes the catchment report of `anycheck compare`, summary
// first: per target what the service answers, the catchment by key with
// shares, vantage points split by flow, answers not from the service,
// vantage points without an instance and errors by reason; then
// dual-stack divergence, where paths part, changes over time, and the
// per-vantage table (up to MaxTableRows lines, or all with opts.All). The
// diff of two runs replaces all of it when there is one.
func CompareText(w io.Writer, rows []report.CompareRow, s *report.CompareSummary, opts CompareOptions) error {
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
	for _, t := range s.Targets {
		targetSummary(ew, t)
	}
	identityNotes(ew, rows)

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
			after := "after " + asPath(p.Common)
			if len(p.Common) == 0 {
				after = "from the first AS on"
			}
			ew.printf("  AS%d → %s: %s\n", p.OriginAS, p.Target, after)
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
			if c.EventsOmitted > 0 {
				ew.printf("  %s  %s  %s: %s before these are not kept\n", Escape(c.Vantage), c.Target, c.Kind, plural(c.EventsOmitted, "earlier change"))
			}
		}
	}

	if opts.NoTable {
		return ew.err
	}
	if len(rows) > MaxTableRows && !opts.All {
		ew.printf("\ncatchment table: %s, more than %d: --all lists them (-o csv and -o json hold every line)\n", plural(len(rows), "line"), MaxTableRows)
		return ew.err
	}
	ew.printf("\ncatchment table\n")
	table := [][]string{{"VANTAGE", "AS", "TARGET", "CATCHMENT", "SITE", "UPSTREAM", "AS PATH", "DNS RTT", "PATH RTT", "NOTES"}}
	for _, r := range rows {
		table = append(table, []string{
			Escape(r.Vantage.Label), vantageAS(r.Vantage), targetLabel(r.Target, rowName(r)),
			rowCatchment(r), rowSite(r), upstreamLabel(r.Upstream), asPath(r.ASPath),
			msLabel(r.DNSRTTMs), msLabel(r.PathRTTMs), strings.Join(rowNotes(r), "; "),
		})
	}
	writeTable(ew, table, "")
	return ew.err
}

// identityNotes says once per instance named by its NSID that its
// hostname.bind says something else (operators often set them apart on
// purpose; the instance goes by the NSID), with every hostname.bind seen.
func identityNotes(ew *errWriter, rows []report.CompareRow) {
	var order []string
	hosts := map[string][]string{}
	for _, r := range rows {
		id := plain(r.Instance)
		if id.Instance == "" || id.InstanceSource != "nsid" || id.HostnameBind == "" || id.HostnameBind == id.NSID {
			continue
		}
		in := id.Instance
		if _, ok := hosts[in]; !ok {
			order = append(order, in)
		}
		if !slices.Contains(hosts[in], id.HostnameBind) {
			hosts[in] = append(hosts[in], id.HostnameBind)
		}
	}
	if len(order) == 0 {
		return
	}
	ew.printf("\nidentities named by NSID whose hostname.bind differs:\n")
	for _, in := range order {
		q := make([]string, len(hosts[in]))
		for i, h := range hosts[in] {
			q[i] = Quote(h)
		}
		ew.printf("  %s: NSID %s and hostname.bind %s differ\n", Escape(in), Quote(in), strings.Join(q, ", "))
	}
}

// targetSummary writes one target's part of the summary.
// lightNote is a speed-of-light verdict's numbers: "16487 km away: light
// needs ≥ 164.9 ms, answered in 9.0 ms".
func lightNote(l report.LightDTO) string {
	return fmt.Sprintf("%s km away: light needs ≥ %s ms, answered in %s ms", strconv.FormatFloat(math.Round(l.DistanceKm), 'f', -1, 64),
		strconv.FormatFloat(l.MinRTTMs, 'f', 1, 64), strconv.FormatFloat(l.RTTMs, 'f', 1, 64))
}

// latencySummary is a target's enumeration by latency next to what the
// names say.
func latencySummary(ew *errWriter, l *report.LatencyDTO) {
	if l == nil || l.Used == 0 {
		return
	}
	n := len(l.Instances)
	ew.printf("  latency: ")
	if n <= 1 {
		// One instance is all the RTTs show, not proof that there is no
		// second one (the names may give more).
		ew.printf("≥ 1 instance by RTT from %s (their RTT disks overlap: none proves a second)", plural(l.Used, "located vantage point"))
	} else {
		ew.printf("≥ %d instances by RTT from %s", n, plural(l.Used, "located vantage point"))
	}
	if l.Named > 0 {
		ew.printf("; the names give %s", plural(l.Named, "site"))
	}
	if l.Approximate > 0 {
		ew.printf("; %d of the %d rest on a vantage point with an approximate position", l.Approximate, n)
	}
	var ignored []string
	if l.NoPlace > 0 {
		ignored = append(ignored, plural(l.NoPlace, "vantage point")+" without a position")
	}
	if l.BadRTT > 0 {
		ignored = append(ignored, plural(l.BadRTT, "unusable RTT"))
	}
	if len(ignored) > 0 {
		ew.printf(" (left out: %s)", strings.Join(ignored, ", "))
	}
	ew.printf("\n")
	var it [][]string
	for _, in := range l.Instances {
		where := "no city in the disk"
		if p := in.Place; p != nil {
			where = Escape(strings.TrimSpace(p.Code + " " + p.City + ", " + p.Country))
		}
		note := ""
		if in.Approximate {
			note = "approximate position"
		}
		it = append(it, []string{where, "within " + strconv.FormatFloat(math.Round(in.RadiusKm), 'f', -1, 64) + " km of " + Escape(in.Vantage),
			strconv.FormatFloat(in.RTTMs, 'f', 1, 64) + " ms", plural(in.Vantages, "vantage point") + " in reach", note})
	}
	writeTable(ew, it, "    ")
}

func targetSummary(ew *errWriter, t report.CompareTarget) {
	ew.printf("\n%s: %s\n", targetLabel(t.Target, strings.Join(t.Names, ", ")), plural(t.Vantages, "vantage point"))
	svc := t.Service
	if svc.NoIdentity != "" {
		ew.printf("  %s\n", Escape(svc.NoIdentity))
	}
	if svc.PathInferred {
		ew.printf("  the target does not answer traceroute: %d of %d traces end before it; the catchment is inferred from where paths enter the service\n",
			svc.Traced-svc.Reached, svc.Traced)
	}
	if svc.NotJudged != "" {
		ew.printf("  answers not judged: %s\n", Escape(svc.NotJudged))
	}
	if svc.Judged {
		var judged []string
		for _, tr := range svc.Traits {
			if tr.Judged {
				judged = append(judged, traitLabel(tr))
			}
		}
		if len(judged) > 0 {
			ew.printf("  the service answers %s\n", strings.Join(judged, "; "))
		}
	}

	named := 0
	kinds := map[string]int{}
	for _, k := range t.Instances {
		named += k.Vantages
		kinds[k.Source]++
	}
	ew.printf("  catchment: ")
	if len(t.Instances) == 0 {
		ew.printf("no vantage point names an instance, a site or an upstream\n")
	} else {
		var parts []string
		for _, k := range []string{"site", "instance", "upstream"} {
			if n := kinds[k]; n > 0 {
				parts = append(parts, plural(n, k))
			}
		}
		by := strings.Join(parts, ", ")
		if kinds["upstream"] > 0 {
			by += " (inferred from the path)"
		}
		ew.printf("%s by %s\n", plural(named, "vantage point"), by)
		var it [][]string
		for _, sh := range t.Instances {
			it = append(it, []string{shareLabel(sh), plural(sh.Vantages, "vantage point"),
				strconv.FormatFloat(sh.Share*100, 'f', 1, 64) + "%", asList(sh.ASNs, 4), Escape(strings.Join(first(sh.Countries, 4), " ")),
				medianLabel(sh.MedianRTTMs)})
		}
		writeTable(ew, it, "    ")
	}

	latencySummary(ew, t.Latency)

	ew.printf("  split by flow: ")
	if len(t.Split) == 0 {
		ew.printf("none\n")
	} else {
		n := 0
		for _, g := range t.Split {
			n += len(g.Vantages)
		}
		ew.printf("%s\n", plural(n, "vantage point"))
		var st [][]string
		for _, g := range t.Split {
			st = append(st, []string{asLabelOf(g.AS), Escape(strings.Join(first(g.Vantages, 5), ", ")), "flows to " + countsLabel(g.Instances)})
		}
		writeTable(ew, st, "    ")
	}

	ew.printf("  not from the service: ")
	if len(t.Apart) == 0 {
		ew.printf("none\n")
	} else {
		ew.printf("%s, counted apart\n", plural(t.Suspect, "vantage point"))
		var at [][]string
		for _, g := range t.Apart {
			var why []string
			for _, r := range g.Reasons {
				why = append(why, Escape(r.What))
			}
			by := countsLabel(g.Identities)
			if len(g.Identities) == 1 {
				by = Quote(g.Identities[0].Instance)
			}
			at = append(at, []string{asLabelOf(g.AS), plural(len(g.Vantages), "vantage point") + " answered by " + by,
				strings.Join(why, "; ")})
			if len(g.Vantages) <= 5 {
				at[len(at)-1] = append(at[len(at)-1], "("+Escape(strings.Join(g.Vantages, ", "))+")")
			}
		}
		writeTable(ew, at, "    ")
	}

	if t.Unknown > 0 {
		var why []string
		for _, u := range t.UnknownReasons {
			why = append(why, fmt.Sprintf("%s: %d", u.What, u.Count))
		}
		ew.printf("  without an instance: %s (%s)\n", plural(t.Unknown, "vantage point"), strings.Join(why, "; "))
	}
	ew.printf("  errors: ")
	if t.Errors == 0 {
		ew.printf("none\n")
	} else {
		ew.printf("%s\n", plural(t.Errors, "line"))
		var et [][]string
		for _, e := range t.ErrorReasons {
			et = append(et, []string{strconv.Itoa(e.Count), Escape(e.What)})
		}
		writeTable(ew, et, "    ")
	}
}

func traitLabel(tr report.TraitDTO) string {
	q := ""
	if tr.Query != "" && tr.Name != "name" {
		q = tr.Query + " "
	}
	v := tr.Value
	if tr.Name == "name" {
		v = "names like " + Escape(v)
	}
	return fmt.Sprintf("%s%s (%s of %d)", q, v, percentLabel(tr.Share), tr.Of)
}

func percentLabel(share float64) string {
	p := share * 100
	if p > 99 && p < 100 {
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + "%"
}

// shareLabel names a catchment key: the site (with its instances), the
// instance, or "via" the upstream hop and its AS.
func shareLabel(sh report.ShareDTO) string {
	switch sh.Source {
	case "site":
		s := strings.ToUpper(Escape(sh.Instance))
		if where := placeLabel(sh.Site); where != "" {
			s += " " + where
		}
		// A bare code counted under itself ("FRA" at site fra) says
		// nothing more.
		if len(sh.Members) > 0 && !(len(sh.Members) == 1 && strings.EqualFold(sh.Members[0].Instance, sh.Instance)) {
			s += " (" + membersLabel(sh.Members) + ")"
		}
		return s
	case "upstream":
		s := "via " + sh.Instance
		if sh.UpstreamAS != nil {
			s += fmt.Sprintf(" from AS%d", *sh.UpstreamAS)
		}
		return s
	}
	return Escape(sh.Instance)
}

// placeLabel is where a site is: "Frankfurt am Main, DE" from the places
// table, "at LAT,LON" where its operator placed it by coordinates; "" when
// it has no place.
func placeLabel(s *report.SiteDTO) string {
	if s == nil || s.Place == nil {
		return ""
	}
	p := s.Place
	if p.City == "" || p.Country == "" {
		return "at " + geo.Point{Lat: p.Lat, Lon: p.Lon}.String()
	}
	return Escape(p.City + ", " + p.Country)
}

// membersLabel lists names, with their counts when there are several.
func membersLabel(cs []report.FlowCount) string {
	if len(cs) == 1 {
		return Escape(cs[0].Instance)
	}
	return countsList(cs, Escape)
}

// countsLabel lists names, quoted, with their counts, at most five.
func countsLabel(cs []report.FlowCount) string { return countsList(cs, Quote) }

// countsList is "a 3, b 2, 4 more": at most five names (as name writes
// them) with their counts.
func countsList(cs []report.FlowCount, name func(string) string) string {
	var parts []string
	for i, c := range cs {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("%d more", len(cs)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", name(c.Instance), c.Flows))
	}
	return strings.Join(parts, ", ")
}

func asLabelOf(as *uint32) string {
	if as == nil {
		return "AS?"
	}
	return "AS" + strconv.FormatUint(uint64(*as), 10)
}

func diffText(ew *errWriter, rows []report.CompareRow, s *report.CompareSummary) {
	kinds := map[string]int{}
	for _, m := range s.Diff.Moves {
		kinds[m.Kind]++
	}
	ew.printf("diff: %s moved", plural(kinds["moved"], "line"))
	if n := kinds["flows"]; n > 0 {
		ew.printf(", %d differ by flow only (split by flow: no move)", n)
	}
	ew.printf(", %s changed in all, of %s after\n", plural(len(s.Diff.Moves), "line"), plural(len(rows), "line"))
	if len(s.Diff.Moves) == 0 {
		return
	}
	t := [][]string{{"VANTAGE", "TARGET", "CHANGE", "BEFORE", "AFTER", "UPSTREAM BEFORE", "UPSTREAM AFTER"}}
	for _, m := range s.Diff.Moves {
		kind := m.Kind
		if m.SameSite {
			kind += " (same site)"
		}
		t = append(t, []string{Escape(m.Vantage), m.Target, kind, stateInstance(m.Before), stateInstance(m.After), stateUpstream(m.Before), stateUpstream(m.After)})
	}
	writeTable(ew, t, "")
}

func stateInstance(s *report.MoveState) string {
	switch {
	case s == nil:
		return "-"
	case len(s.FlowInstances) > 1:
		var parts []string
		for _, f := range s.FlowInstances {
			parts = append(parts, fmt.Sprintf("%s %d", Quote(f.Instance), f.Flows))
		}
		return "split: " + strings.Join(parts, ", ")
	}
	return quoteOrDash(optName(s.Instance.Name))
}

// optName is an instance's name, nil for none.
func optName(n report.OptString) *string {
	if n == "" {
		return nil
	}
	s := string(n)
	return &s
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
	// Rows may differ in length (a group of answers counted apart lists
	// its vantage points only when there are few): widths over them all,
	// but a row's last cell is not padded, so it widens no column (a long
	// last cell would push the next cells of longer rows far right).
	n := 0
	for _, r := range rows {
		n = max(n, len(r))
	}
	widths := make([]int, n)
	for _, r := range rows {
		for i, c := range r {
			if i < len(r)-1 {
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
	case strings.HasSuffix(what, "x"):
		what += "es"
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

// rowName is the name a line's target was measured by; "" when it was
// given as an address.
func rowName(r report.CompareRow) string {
	if r.Input == r.Target {
		return ""
	}
	return r.Input
}

func targetLabel(target, name string) string {
	if name == "" {
		return target
	}
	return Escape(name) + " " + target
}

// rowCatchment names what a line counts for: its key, its split, or why
// it counts for nothing.
func rowCatchment(r report.CompareRow) string {
	switch {
	case r.Split:
		var parts []string
		for _, f := range r.FlowInstances {
			parts = append(parts, fmt.Sprintf("%s %d", Escape(f.Instance), f.Flows))
		}
		return "split: " + strings.Join(parts, ", ") + " flows"
	case r.Suspect && r.Instance.Name != "":
		return "apart: " + Quote(string(r.Instance.Name))
	case r.Suspect:
		return "apart"
	case r.Catchment == nil:
		return "-"
	case r.Catchment.Kind == "upstream":
		return "via " + r.Catchment.Value
	}
	if r.Instance.Name != "" {
		return Escape(string(r.Instance.Name))
	}
	return Escape(r.Catchment.Value)
}

func quoteOrDash(s *string) string {
	if s == nil {
		return "-"
	}
	return Quote(*s)
}

// rowSite is a line's site; a line split by flow has none of its own, so
// the site of its most common instance says for how many of its flows it
// stands.
func rowSite(r report.CompareRow) string {
	label := siteLabel(r.Instance.Site)
	if !r.Split || r.Instance.Site == nil {
		return label
	}
	on, all := 0, 0
	for _, f := range r.FlowInstances {
		all += f.Flows
		if f.Instance == string(r.Instance.Name) {
			on = f.Flows
		}
	}
	return fmt.Sprintf("%s on %d of %d flows", label, on, all)
}

func siteLabel(s *report.SiteDTO) string {
	if s == nil {
		return "-"
	}
	label := siteName(s)
	if p := s.Place; p != nil && p.Code != "" {
		label += " (" + p.Code + ")"
	}
	return Escape(label)
}

// siteName is a site's operator and code ("b-root lax"); the code alone
// for a bare code the service's answers use.
func siteName(s *report.SiteDTO) string {
	if s.Operator == "" {
		return s.Site
	}
	return s.Operator + " " + s.Site
}

// upstreamLabel is where a path enters the service: the hop, and the
// upstream AS it comes from when the origins told it.
func upstreamLabel(u *report.UpstreamDTO) string {
	if u == nil {
		return "-"
	}
	if u.AS != nil {
		return fmt.Sprintf("%s from AS%d", u.Address, *u.AS)
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

// asPath is an AS path as every text output shows it: "64500 → 64520",
// "-" when there is none.
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
	for _, a := range r.Apart {
		notes = append(notes, Escape(a.Text))
	}
	if l := r.Light; l != nil && l.Impossible {
		notes = append(notes, lightNote(*l))
	}
	if len(r.Apart) == 0 && len(r.Hints) > 0 {
		notes = append(notes, "hints: "+Escape(strings.Join(r.Hints, ",")))
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
				ib, ub = string(m.Before.Instance.Name), upstreamAddr(m.Before.Upstream)
			}
			if m.After != nil {
				ia, ua = string(m.After.Instance.Name), upstreamAddr(m.After.Upstream)
			}
			cw.Write([]string{cell(m.Vantage), cell(m.VantageKey), cell(m.Target), cell(m.Family), cell(m.Kind), cell(ib), cell(ia), cell(ub), cell(ua),
				strconv.FormatBool(m.InstanceChanged), strconv.FormatBool(m.UpstreamChanged)})
		}
		cw.Flush()
		return cw.Error()
	}
	cw.Write([]string{"vantage", "vantage_key", "probe_id", "source", "public", "origin_as", "country", "target", "target_name", "family",
		"time", "instance", "instance_source", "catchment_kind", "catchment", "site_operator", "site", "upstream", "upstream_as", "as_path", "traced", "reached",
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
		if st := r.Instance.Site; st != nil {
			op, site = st.Operator, st.Site
		}
		upAS := ""
		if r.Upstream != nil && r.Upstream.AS != nil {
			upAS = strconv.FormatUint(uint64(*r.Upstream.AS), 10)
		}
		kind, key := "", ""
		if r.Catchment != nil {
			kind, key = r.Catchment.Kind, r.Catchment.Value
		}
		path := make([]string, len(r.ASPath))
		for i, a := range r.ASPath {
			path[i] = strconv.FormatUint(uint64(a), 10)
		}
		// Every cell of text goes through cell, the ones the report
		// made itself too: a value read from a file may be anything.
		cw.Write([]string{cell(v.Label), cell(v.Key), probeID, cell(deref(v.Source)), cell(deref(v.Public)), as, cell(cc), cell(r.Target), cell(rowName(r)), cell(r.Family),
			cell(deref(r.Time)), cell(string(r.Instance.Name)), cell(r.Instance.Source), cell(kind), cell(key), cell(op), cell(site), cell(upstreamAddr(r.Upstream)), upAS, strings.Join(path, " "),
			strconv.FormatBool(r.Traced), strconv.FormatBool(r.Reached), msCSV(r.DNSRTTMs), msCSV(r.PathRTTMs),
			strconv.FormatBool(r.Suspect), cell(strings.Join(r.Suspicions, " ")), strconv.Itoa(r.Timeouts), cell(strings.Join(r.Errors, "; ")),
			strconv.FormatBool(r.Split), cell(r.ReadFrom)})
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
