package catchment

import (
	"net/netip"

	"github.com/anycheck/anycheck/geo"
)

// RunVantage is what one run (an anycheck document) says about where it
// was measured from.
type RunVantage struct {
	Label    string       // the operator's --label; "" when none
	Hostname string       // the host's name; "" when the document gives none
	Fallback string       // names a run with neither (its file)
	Addrs    []netip.Addr // the source addresses of its flows
	Location geo.Point
}

// JoinVantages names the vantage point of each run. A run with a label is
// the vantage of that name, whatever its addresses (the operator named
// it). Runs with the same host name that share a source address are one
// vantage point (an id run and a trace run from one host); a host name
// used by vantage points with different addresses (network namespaces,
// hosts with one name) is told apart by the smallest source address (IPv4
// first). Linear in the runs and their addresses.
func JoinVantages(runs []RunVantage) []Vantage {
	// Runs of one name join through a shared address (a map from address
	// to the first run with it); a run without addresses, or with a
	// label, joins every run of its name.
	n := len(runs)
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		root := i
		for parent[root] != root {
			root = parent[root]
		}
		for parent[i] != root {
			parent[i], i = root, parent[i]
		}
		return root
	}
	union := func(i, j int) { parent[find(j)] = find(i) }
	name := func(i int) string {
		switch {
		case runs[i].Label != "":
			return "label:" + runs[i].Label
		case runs[i].Hostname != "":
			return runs[i].Hostname
		}
		return runs[i].Fallback
	}
	labelled := func(i int) bool { return runs[i].Label != "" }
	byName := map[string][]int{}
	var names []string
	for i := range runs {
		if byName[name(i)] == nil {
			names = append(names, name(i))
		}
		byName[name(i)] = append(byName[name(i)], i)
	}
	for _, nm := range names {
		group := byName[nm]
		first := map[netip.Addr]int{}
		all := -1 // a run every run of the name joins
		for _, i := range group {
			if labelled(i) || len(runs[i].Addrs) == 0 {
				if all < 0 {
					all = i
				}
				continue
			}
			for _, a := range runs[i].Addrs {
				if j, ok := first[a]; ok {
					union(j, i)
				} else {
					first[a] = i
				}
			}
		}
		if all >= 0 {
			for _, i := range group {
				union(all, i)
			}
		}
	}
	lowest := map[int]netip.Addr{}
	groupsOf := map[string]map[int]bool{}
	for i := range n {
		g := find(i)
		for _, a := range runs[i].Addrs {
			if l, ok := lowest[g]; !ok || a.Less(l) {
				lowest[g] = a
			}
		}
		if groupsOf[name(i)] == nil {
			groupsOf[name(i)] = map[int]bool{}
		}
		groupsOf[name(i)][g] = true
	}
	out := make([]Vantage, n)
	for i := range n {
		if labelled(i) {
			out[i] = Vantage{Key: name(i), Label: runs[i].Label, Location: runs[i].Location}
			continue
		}
		label := name(i)
		if l, ok := lowest[find(i)]; ok && len(groupsOf[label]) > 1 {
			label += " " + l.String()
		}
		out[i] = Vantage{Key: "host:" + label, Label: label, Location: runs[i].Location}
	}
	return out
}
