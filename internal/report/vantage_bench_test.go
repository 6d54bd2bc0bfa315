package report

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/anycheck/anycheck/catchment"
)

// referenceVantageKeys is VantageKeys written the straightforward way,
// every pair of documents compared (as it was until 80,000 documents of
// one host took 69 s): the peer of the benchmark and the check of the
// result.
func referenceVantageKeys(docs []ReadDoc, fallback []string) []catchment.Vantage {
	n := len(docs)
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	name := func(i int) string {
		switch {
		case docs[i].Label != "":
			return "label:" + docs[i].Label
		case docs[i].Hostname != "":
			return docs[i].Hostname
		}
		return fallback[i]
	}
	labelled := func(i int) bool { return docs[i].Label != "" }
	addrs := make([][]netip.Addr, n)
	for i, d := range docs {
		addrs[i] = docAddrs(d)
	}
	overlaps := func(a, b []netip.Addr) bool {
		return slices.ContainsFunc(a, func(x netip.Addr) bool { return slices.Contains(b, x) })
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if name(i) == name(j) && (labelled(i) || len(addrs[i]) == 0 || len(addrs[j]) == 0 || overlaps(addrs[i], addrs[j])) {
				parent[find(j)] = find(i)
			}
		}
	}
	// Group addresses per vantage, then label.
	groupAddrs := map[int][]netip.Addr{}
	groupsOf := map[string]map[int]bool{}
	for i := 0; i < n; i++ {
		g := find(i)
		for _, a := range addrs[i] {
			if !slices.Contains(groupAddrs[g], a) {
				groupAddrs[g] = append(groupAddrs[g], a)
			}
		}
		if groupsOf[name(i)] == nil {
			groupsOf[name(i)] = map[int]bool{}
		}
		groupsOf[name(i)][g] = true
	}
	out := make([]catchment.Vantage, n)
	for i := 0; i < n; i++ {
		g := find(i)
		if labelled(i) {
			out[i] = catchment.Vantage{Key: name(i), Label: docs[i].Label, Location: docs[i].Location}
			continue
		}
		label := name(i)
		as := groupAddrs[g]
		slices.SortFunc(as, func(a, b netip.Addr) int { return a.Compare(b) }) // IPv4 first
		if len(groupsOf[label]) > 1 && len(as) > 0 {
			label += " " + as[0].String()
		}
		out[i] = catchment.Vantage{Key: "host:" + label, Label: label, Location: docs[i].Location}
	}
	return out
}

// randomDocs are n documents from a few hosts with a few addresses each;
// some have none.
func randomDocs(r *rand.Rand, n, hosts, addrs int) ([]ReadDoc, []string) {
	docs := make([]ReadDoc, n)
	names := make([]string, n)
	for i := range docs {
		docs[i].Hostname = fmt.Sprintf("h%d", r.IntN(hosts))
		switch r.IntN(10) {
		case 0:
			docs[i].Hostname = ""
		case 1:
			docs[i].Label = fmt.Sprintf("l%d", r.IntN(2))
		}
		for range r.IntN(3) {
			docs[i].Sources = append(docs[i].Sources, fmt.Sprintf("198.51.100.%d:4000", r.IntN(addrs)))
		}
		if r.IntN(4) == 0 {
			docs[i].Sources = append(docs[i].Sources, fmt.Sprintf("[2001:db8::%x]:53", r.IntN(addrs)))
		}
		names[i] = fmt.Sprintf("f%d.json", r.IntN(3))
	}
	return docs, names
}

// VantageKeys names vantages exactly as the pairwise reference does.
func TestVantageKeysMatchesTheReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		docs, names := randomDocs(r, 1+r.IntN(40), 1+r.IntN(4), 1+r.IntN(12))
		got, want := VantageKeys(docs, names), referenceVantageKeys(docs, names)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("documents %+v:\ngot  %v\nwant %v", docs, got, want)
		}
	}
}

// oneHostDocs are n documents of one host from one address (an id run
// every minute for two months).
func oneHostDocs(n int) ([]ReadDoc, []string) {
	docs := make([]ReadDoc, n)
	names := make([]string, n)
	for i := range docs {
		docs[i] = ReadDoc{Hostname: "vm", Sources: []string{"198.51.100.10:40000"}}
		names[i] = "-"
	}
	return docs, names
}

// BenchmarkVantageKeys: documents of one host, 8,000 and 80,000 (about 10
// times the time for linear work; the reference takes about 100 times).
func BenchmarkVantageKeys(b *testing.B) {
	for _, n := range []int{8_000, 80_000} {
		docs, names := oneHostDocs(n)
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			for b.Loop() {
				VantageKeys(docs, names)
			}
		})
	}
	docs, names := oneHostDocs(8_000)
	b.Run("reference/docs=8000", func(b *testing.B) {
		for b.Loop() {
			referenceVantageKeys(docs, names)
		}
	})
}
