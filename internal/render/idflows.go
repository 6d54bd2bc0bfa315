package render

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/anycheck/anycheck/internal/report"
)

// idFlowTable is the compact form of `id --flows N`: a catchment split
// said first, one line per flow (source port, instance, RTT, and what else
// stands out), each instance's identity strings once, then the instances'
// shares of the flows.
func idFlowTable(w *errWriter, t report.IDTarget) {
	sum := t.FlowSummary
	if sum == nil {
		sum = &report.IDFlowSplit{Flows: len(t.Flows)} // the catchment model's summary is not there
	}
	if sum.Split {
		w.printf("catchment split by flow: %s\n", instanceShares(sum.Instances, sum.Flows))
	}
	var b strings.Builder
	tw := newTable(&b)
	fmt.Fprintln(tw, "  PORT\tINSTANCE\tRTT\t")
	identities := map[string]report.InstanceDTO{}
	var order []string
	// By source port: ephemeral ports come in no order of their own.
	flows := slices.Clone(t.Flows)
	slices.SortStableFunc(flows, func(a, b report.IDFlow) int { return cmp.Compare(idFlowPort(a), idFlowPort(b)) })
	for _, f := range flows {
		port := flowSource(f.Flow)
		if p := idFlowPort(f); p > 0 {
			port = strconv.Itoa(p)
		}
		instance := "—"
		if name := string(f.Instance.Name); name != "" {
			instance = escapeFit(name, maxNameWidth)
			if id, ok := identities[name]; ok {
				identities[name] = fillIdentity(id, runsIdentity(f, f.Instance))
			} else {
				identities[name] = runsIdentity(f, f.Instance)
				order = append(order, name)
			}
		}
		rtt := "-"
		if f.Summary.RTT != nil {
			rtt = ms(f.Summary.RTT.Avg) + " ms"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", port, instance, rtt, strings.Join(idFlowNotes(f), "; "))
	}
	tw.Flush()
	for _, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		w.printf("%s\n", strings.TrimRight(l, " "))
	}
	for _, in := range order {
		w.printf("instance  %s\n", identityLine(identities[in]))
	}
	switch {
	case len(sum.Instances) == 0:
		w.printf("instances none identified on %s\n", plural(sum.Flows, "flow"))
	default:
		w.printf("instances %s\n", instancesLine(sum.Instances, sum.Flows, sum.Unidentified, sum.Split))
	}
}

// fillIdentity is id with the identity strings it lacks taken from other,
// another flow's view of the same instance (a flow whose hostname.bind
// answer was lost names the instance by its NSID all the same).
func fillIdentity(id, other report.InstanceDTO) report.InstanceDTO {
	for _, f := range []struct{ to, from *report.OptString }{
		{&id.NSID, &other.NSID}, {&id.NSIDHex, &other.NSIDHex}, {&id.HostnameBind, &other.HostnameBind},
		{&id.IDServer, &other.IDServer}, {&id.VersionBind, &other.VersionBind}, {&id.VersionServer, &other.VersionServer},
	} {
		if *f.to == "" {
			*f.to = *f.from
		}
	}
	id.Disagree = id.Disagree || other.Disagree
	return id
}

// idFlowPort is a flow's source port, 0 when unknown.
func idFlowPort(f report.IDFlow) int { return f.Flow.Sport }

// idFlowNotes is what a flow's line adds to its instance and RTT: runs
// that met other instances, queries that got no answer, suspicion flags.
// (An instance's NSID and hostname.bind disagreeing is said once, under
// its identity.)
func idFlowNotes(f report.IDFlow) []string {
	var out []string
	s := f.Summary
	if s.Runs > 1 {
		out = append(out, fmt.Sprintf("%d runs", s.Runs))
		if len(s.Instances) > 1 {
			out = append(out, "instances "+instanceList(s.Instances))
		}
	}
	if s.Answered < s.Queries {
		var parts []string
		for st, n := range s.Statuses {
			if st != "answered" && st != "empty" && st != "refused" && st != "notimp" && st != "nxdomain" && st != "servfail" && st != "rcode" {
				parts = append(parts, fmt.Sprintf("%d %s", n, st))
			}
		}
		if len(parts) > 0 {
			slices.Sort(parts)
			out = append(out, fmt.Sprintf("%d of %d queries unanswered (%s)", s.Queries-s.Answered, s.Queries, strings.Join(parts, ", ")))
		}
	}
	if len(f.Runs) > 0 {
		last := f.Runs[len(f.Runs)-1]
		if sus := suspicions(last.Answers); sus != "" {
			out = append(out, "! "+sus)
		}
	}
	return out
}
