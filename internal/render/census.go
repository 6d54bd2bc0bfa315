package render

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/anycheck/anycheck/internal/report"
)

// censusListMax is how many moved or split clients the text lists; the
// rest are in -o csv and json.
const censusListMax = 20

// censusClientsMax: up to this many clients, the text lists them all.
const censusClientsMax = 50

// CensusText writes a census (`census logs`, `census report`): the window,
// each instance's queries and clients (those whose queries went there
// most; ALSO SEEN: clients with some queries there) with their origin ASes
// and countries, affinity (moved and split clients) or, for an active census,
// prefixes at several sites and the unresponsive, and the clients
// themselves when there are few.
func CensusText(w io.Writer, s *report.CensusSummary, rows []report.CensusClient) error {
	ew := &errWriter{w: w}
	active := s.Method == "active"
	unit := "queries"
	if active {
		unit = "replies"
	}
	grouping := fmt.Sprintf("/%d, /%d", s.PrefixLen.IPv4, s.PrefixLen.IPv6)
	of := ""
	if len(s.Services) > 0 {
		of = " of " + strings.Join(s.Services, ", ")
	}
	if active {
		ew.printf("census report%s: census %s, sent by %s to %s; replies at %s", of, deref(s.Census), Escape(deref(s.Sender)),
			plural(s.Targets, "target prefix"), plural(len(s.Instances), "site"))
	} else {
		ew.printf("census logs%s: %s, %s %s from %s (%s)", of, plural(len(s.Instances), "instance"), thousands(s.Queries), unit,
			thousandsPlural(s.Clients, "client"), grouping)
	}
	if s.Start != nil && s.End != nil {
		a, _ := time.Parse(time.RFC3339Nano, *s.Start)
		b, _ := time.Parse(time.RFC3339Nano, *s.End)
		ew.printf(" over %s (%s – %s UTC)", shortDuration(b.Sub(a)), a.Format("2006-01-02 15:04:05"), b.Format("15:04:05"))
	}
	ew.printf("\n\n")

	what, clients := "INSTANCE", "CLIENTS"
	if active {
		what, clients = "SITE", "PREFIXES"
	}
	table := [][]string{{what, strings.ToUpper(unit), "SHARE", clients, "SHARE", "ALSO SEEN", "ASES", "COUNTRIES"}}
	km := false
	for _, in := range s.Instances {
		km = km || in.MedianKm != nil
	}
	if km {
		table[0] = append(table[0], "MEDIAN KM", "NEARER ELSEWHERE")
	}
	for _, in := range s.Instances {
		row := []string{Escape(in.Name), thousands(in.Queries), censusPct(in.QueryShare), thousands(uint64(in.MainClients)), censusPct(in.ClientShare),
			thousands(uint64(in.Clients - in.MainClients)), topCounts(in.ASes), topCounts(in.Countries)}
		if km {
			row = append(row, kmLabel(in.MedianKm), intLabel(in.NotNearest))
		}
		table = append(table, row)
	}
	writeTable(ew, table, "")

	if active {
		censusActive(ew, s, rows)
	} else {
		censusAffinity(ew, s, rows)
	}
	if len(rows) > 0 && len(rows) <= censusClientsMax {
		ew.printf("\nclients\n")
		t := [][]string{{"CLIENT", "AS", strings.ToUpper(instanceWord(active)), strings.ToUpper(unit), "ALSO AT"}}
		for _, r := range rows {
			inst := "-"
			if r.Instance != nil {
				inst = Escape(*r.Instance)
			}
			t = append(t, []string{r.Prefix, originAS(r.Origin), inst, thousands(r.Queries), alsoAt(r)})
		}
		writeTable(ew, t, "  ")
	} else if len(rows) > censusClientsMax {
		ew.printf("\n%s: -o csv or -o json lists them\n", plural(len(rows), "client prefix"))
	}
	return ew.err
}

func instanceWord(active bool) string {
	if active {
		return "site"
	}
	return "instance"
}

func censusAffinity(ew *errWriter, s *report.CensusSummary, rows []report.CensusClient) {
	a := s.Affinity
	window := "-"
	if s.SplitWindowMs != nil {
		window = shortDuration(time.Duration(*s.SplitWindowMs * float64(time.Millisecond)))
	}
	ew.printf("\naffinity: %s: %s stable, %s moved, %s split; %s (a move counts after %s at the new instance)\n",
		thousandsPlural(a.Clients, "client"), thousands(uint64(a.Stable)), thousands(uint64(a.Moved)), thousands(uint64(a.Split)),
		thousandsPlural(a.Moves, "move"), window)
	var moved, split [][]string
	nMoved, nSplit := 0, 0
	for _, r := range rows {
		if r.Split {
			nSplit++
			if nSplit <= censusListMax {
				split = append(split, []string{r.Prefix, originAS(r.Origin), shares(r), shortDuration(msDuration(r.SplitMs)), timeline(r)})
			}
			continue
		}
		if len(r.Moves) > 0 {
			nMoved++
			if nMoved > censusListMax {
				continue
			}
			for i, m := range r.Moves {
				c, as := r.Prefix, originAS(r.Origin)
				if i > 0 {
					c, as = "", ""
				}
				moved = append(moved, []string{c, as, joinNames(m.From) + " → " + joinNames(m.To), clock(m.Left), clock(m.Arrived),
					shortDuration(msDuration(m.StayedMs))})
			}
		}
	}
	if len(moved) > 0 {
		ew.printf("moved\n")
		writeTable(ew, append([][]string{{"CLIENT", "AS", "FROM → TO", "LEFT", "ARRIVED", "STAYED BEFORE"}}, moved...), "  ")
		if nMoved > censusListMax {
			ew.printf("  … and %d more\n", nMoved-censusListMax)
		}
	}
	if len(split) > 0 {
		ew.printf("split (queries at several instances at the same time)\n")
		writeTable(ew, append([][]string{{"CLIENT", "AS", "QUERIES", "SPLIT FOR", "TIMELINE"}}, split...), "  ")
		if nSplit > censusListMax {
			ew.printf("  … and %d more\n", nSplit-censusListMax)
		}
	}
}

func censusActive(ew *errWriter, s *report.CensusSummary, rows []report.CensusClient) {
	var multi [][]string
	n := 0
	for _, r := range rows {
		if len(r.Instances) > 1 {
			n++
			if n <= censusListMax {
				multi = append(multi, []string{r.Prefix, originAS(r.Origin), shares(r)})
			}
		}
	}
	ew.printf("\nat several sites: %s\n", plural(n, "prefix"))
	writeTable(ew, multi, "  ")
	if n > censusListMax {
		ew.printf("  … and %d more\n", n-censusListMax)
	}
	ew.printf("unresponsive: %s of %d sent to\n", plural(s.Unresponsive, "prefix"), s.Targets)
	if s.Elsewhere > 0 {
		ew.printf("replies from another address than the target: %d\n", s.Elsewhere)
	}
}

// shares is "a 51% · b 49%" for a client's instances.
func shares(r report.CensusClient) string {
	parts := make([]string, len(r.Instances))
	for i, in := range r.Instances {
		parts[i] = fmt.Sprintf("%s %s", Escape(in.Name), censusPct(float64(in.Queries)/float64(max(r.Queries, 1))))
	}
	return strings.Join(parts, " · ")
}

// timeline is "a → a+b → b" for a client's runs (at most 6 shown).
func timeline(r report.CensusClient) string {
	var parts []string
	for i, run := range r.Runs {
		if i == 6 {
			parts = append(parts, fmt.Sprintf("… (%d runs)", len(r.Runs)))
			break
		}
		parts = append(parts, joinNames(run.Instances))
	}
	return strings.Join(parts, " → ")
}

func alsoAt(r report.CensusClient) string {
	var parts []string
	for i, in := range r.Instances {
		if i > 0 {
			parts = append(parts, fmt.Sprintf("%s (%s)", Escape(in.Name), thousands(in.Queries)))
		}
	}
	out := strings.Join(parts, ", ")
	if r.Split {
		out = strings.TrimSpace("split " + out)
	} else if len(r.Moves) > 0 {
		out = strings.TrimSpace(fmt.Sprintf("%s, %s", plural(len(r.Moves), "move"), out))
		out = strings.TrimSuffix(out, ",")
	}
	if out == "" {
		return "-"
	}
	return out
}

func joinNames(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = Escape(n)
	}
	return strings.Join(out, "+")
}

func originAS(o *report.CensusOrigin) string {
	if o == nil || len(o.ASNs) == 0 {
		return "-"
	}
	parts := make([]string, len(o.ASNs))
	for i, a := range o.ASNs {
		parts[i] = "AS" + strconv.FormatUint(uint64(a), 10)
	}
	return strings.Join(parts, "_")
}

func topCounts(cs []report.CensusCount) string {
	if len(cs) == 0 {
		return "-"
	}
	var parts []string
	for i, c := range cs {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("+%d", len(cs)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", Escape(c.Key), c.Clients))
	}
	return strings.Join(parts, " ")
}

func censusPct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

func kmLabel(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 0, 64)
}

func intLabel(v *int) string {
	if v == nil {
		return "-"
	}
	return strconv.Itoa(*v)
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// shortDuration is a duration rounded for reading: 1h2m, 3m4s, 5.2s, 340ms.
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// clock is the time of day of an RFC 3339 time, to the millisecond.
func clock(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Escape(s)
	}
	return t.UTC().Format("15:04:05.000")
}

// thousands writes n with thin grouping commas.
func thousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// CensusCSV writes a census's client table: one row per client prefix and
// instance it reached (an unresponsive target of an active census: one
// row without an instance).
func CensusCSV(w io.Writer, rows []report.CensusClient) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"prefix", "sample", "family", "origin_as", "country", "instance", "queries", "first", "last", "main", "client_queries", "split", "moves"})
	for _, r := range rows {
		as, cc := "", ""
		if r.Origin != nil {
			if len(r.Origin.ASNs) > 0 {
				as = strconv.FormatUint(uint64(r.Origin.ASNs[0]), 10)
			}
			cc = cell(r.Origin.Country)
		}
		common := func(inst, q, first, last string, main bool) []string {
			return []string{r.Prefix, r.Sample, r.Family, as, cc, inst, q, first, last, strconv.FormatBool(main),
				strconv.FormatUint(r.Queries, 10), strconv.FormatBool(r.Split), strconv.Itoa(len(r.Moves))}
		}
		if len(r.Instances) == 0 {
			cw.Write(common("", "0", "", "", false))
		}
		for i, in := range r.Instances {
			cw.Write(common(cell(in.Name), strconv.FormatUint(in.Queries, 10), in.First, in.Last, i == 0))
		}
	}
	cw.Flush()
	return cw.Error()
}

// CensusSentHeader and CensusSentRecord are `census send -o csv`.
var CensusSentHeader = []string{"census", "site", "seq", "target", "at", "error"}

// CensusSentRecord is one sent request as a CSV record.
func CensusSentRecord(s report.CensusSent) []string {
	return []string{s.Census, cell(s.Site), strconv.Itoa(s.Seq), s.Target, s.At, cell(deref(s.Error))}
}

// CensusReplyHeader and CensusReplyRecord are `census listen -o csv`.
var CensusReplyHeader = []string{"site", "census", "sender", "target", "from", "seq", "ttl", "sent", "received", "elapsed_ms"}

// CensusReplyRecord is one reply as a CSV record.
func CensusReplyRecord(r report.CensusReply) []string {
	ttl := ""
	if r.TTL != nil {
		ttl = strconv.Itoa(*r.TTL)
	}
	return []string{cell(r.Site), r.Census, cell(r.Sender), r.Target, r.From, strconv.Itoa(r.Seq), ttl, r.Sent, r.Received,
		strconv.FormatFloat(r.ElapsedMs, 'f', -1, 64)}
}

// CensusReplyLine is one reply as a text line (`census listen -o text`).
func CensusReplyLine(r report.CensusReply) string {
	from := ""
	if r.From != r.Target {
		from = " from " + r.From
	}
	ttl := "-"
	if r.TTL != nil {
		ttl = strconv.Itoa(*r.TTL)
	}
	return fmt.Sprintf("%s  %s  reply for %s%s  census %s sent by %s  ttl %s  %.2f ms", clock(r.Received), Escape(r.Site), r.Target, from,
		r.Census, Escape(r.Sender), ttl, r.ElapsedMs)
}

// CensusListenText is a listener's summary.
func CensusListenText(w io.Writer, s *report.CensusListenSummary) error {
	ew := &errWriter{w: w}
	id := "any census"
	if s.Census != nil {
		id = "census " + *s.Census
	}
	ew.printf("listened at %s on %s for %s: %s kept", Escape(s.Site), s.Anycast, id, plural(int(s.Replies), "reply"))
	var ignored []string
	for _, x := range []struct {
		n    uint64
		what string
	}{{s.NoPayload, "without a census payload"}, {s.OtherCensus, "of another census"}, {s.Malformed, "with a broken payload"}} {
		if x.n > 0 {
			ignored = append(ignored, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	if len(ignored) > 0 {
		ew.printf("; ignored %s", strings.Join(ignored, ", "))
	}
	ew.printf("\n")
	return ew.err
}

// CensusSendText is a sender's summary.
func CensusSendText(w io.Writer, s *report.CensusSendSummary) error {
	ew := &errWriter{w: w}
	ew.printf("census %s from %s (%s): %d of %s sent", s.Census, s.Anycast, Escape(s.Site), s.Sent, plural(s.Targets, "target"))
	if s.Failed > 0 {
		ew.printf(", %d failed", s.Failed)
	}
	if s.Start != nil && s.End != nil {
		a, _ := time.Parse(time.RFC3339Nano, *s.Start)
		b, _ := time.Parse(time.RFC3339Nano, *s.End)
		ew.printf(" in %s (%.0f/s)", shortDuration(b.Sub(a)), s.RateHz)
	}
	if s.Interrupted {
		ew.printf("; interrupted")
	}
	ew.printf("\nlisteners' files: anycheck census report FILE...\n")
	return ew.err
}

// thousandsPlural is plural with grouping commas.
func thousandsPlural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return thousands(uint64(n)) + " " + plural(2, what)[2:]
}
