package render

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/anycheck/anycheck/internal/report"
)

// dotGraph is a Graphviz digraph built up node by node and edge by edge,
// written in a stable order. Parallel edges between the same nodes are one
// edge whose count grows; labels say the count. Graph writers for other
// commands (a flow sweep's hops) use the same helpers.
type dotGraph struct {
	name      string
	attrs     []string
	nodes     map[string][]string
	nodeOrder []string
	edges     map[[2]string]*dotEdge
	edgeOrder [][2]string
}

type dotEdge struct {
	count int
	attrs []string
	label string // what is counted ("vantage", "flow")
}

func newDotGraph(name string, attrs ...string) *dotGraph {
	return &dotGraph{name: name, attrs: attrs, nodes: map[string][]string{}, edges: map[[2]string]*dotEdge{}}
}

// node adds a node once; later calls for the same id are ignored.
func (g *dotGraph) node(id string, attrs ...string) {
	if _, ok := g.nodes[id]; ok {
		return
	}
	g.nodes[id] = attrs
	g.nodeOrder = append(g.nodeOrder, id)
}

// edge adds one to the edge from → to; what names the counted thing.
func (g *dotGraph) edge(from, to, what string, attrs ...string) {
	k := [2]string{from, to}
	e := g.edges[k]
	if e == nil {
		e = &dotEdge{attrs: attrs, label: what}
		g.edges[k] = e
		g.edgeOrder = append(g.edgeOrder, k)
	}
	e.count++
}

func (g *dotGraph) write(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("digraph %s {\n", dotQuote(g.name))
	for _, a := range g.attrs {
		ew.printf("  %s;\n", a)
	}
	for _, id := range g.nodeOrder {
		ew.printf("  %s [%s];\n", dotQuote(id), strings.Join(g.nodes[id], ", "))
	}
	for _, k := range g.edgeOrder {
		e := g.edges[k]
		attrs := append([]string{}, e.attrs...)
		if e.label != "" {
			attrs = append(attrs, dotAttr("label", plural(e.count, e.label)))
		}
		if e.count > 1 {
			attrs = append(attrs, fmt.Sprintf("penwidth=%.1f", min(1+float64(e.count)/4, 6)))
		}
		ew.printf("  %s -> %s", dotQuote(k[0]), dotQuote(k[1]))
		if len(attrs) > 0 {
			ew.printf(" [%s]", strings.Join(attrs, ", "))
		}
		ew.printf(";\n")
	}
	ew.printf("}\n")
	return ew.err
}

// dotQuote makes any string a Graphviz ID: escaped for a terminal first
// (untrusted text), then quoted with '"' and '\' escaped.
func dotQuote(s string) string {
	s = Escape(s)
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + s + `"`
}

// dotAttr is key="value" with the value quoted; "\n" in value becomes a
// line break in the label.
func dotAttr(key, value string) string {
	lines := strings.Split(value, "\n")
	for i, l := range lines {
		q := dotQuote(l)
		lines[i] = q[1 : len(q)-1]
	}
	return key + `="` + strings.Join(lines, `\n`) + `"`
}

// maxDotVantages is the number of vantage points drawn one by one; beyond
// it vantages are drawn per origin AS.
const maxDotVantages = 40

// CompareDot writes the catchment as a Graphviz digraph: vantage points
// (or their origin ASes, for many) → the ASes of their paths → the
// instance they reach, edges labelled with how many vantages took them.
// Suspect answers lead to a node of their own.
func CompareDot(w io.Writer, rows []report.CompareRow, _ *report.CompareSummary) error {
	g := newDotGraph("catchment", "rankdir=LR", `node [shape=box, fontname="Helvetica", fontsize=10]`, `edge [fontname="Helvetica", fontsize=9]`)
	vantages := map[string]bool{}
	for _, r := range rows {
		vantages[r.Vantage.Key] = true
	}
	perAS := len(vantages) > maxDotVantages
	// Instances first, sorted, so the graph reads the same every time.
	type inst struct{ id, label string }
	var insts []inst
	seen := map[string]bool{}
	for _, r := range rows {
		id, label := instanceNode(r)
		if !seen[id] {
			seen[id] = true
			insts = append(insts, inst{id, label})
		}
	}
	sort.Slice(insts, func(i, j int) bool { return insts[i].id < insts[j].id })
	for _, in := range insts {
		attrs := []string{"shape=ellipse", "style=filled", dotAttr("label", in.label)}
		if strings.HasPrefix(in.id, "suspect:") {
			attrs = append(attrs, `fillcolor="mistyrose"`, `color="red"`)
		} else {
			attrs = append(attrs, `fillcolor="lightblue"`)
		}
		g.node(in.id, attrs...)
	}
	for _, r := range rows {
		from := "v:" + r.Vantage.Key
		if perAS {
			as := vantageAS(r.Vantage)
			from = "vas:" + as
			g.node(from, dotAttr("label", "vantages in "+as), "style=rounded")
		} else {
			label := r.Vantage.Label
			if as := vantageAS(r.Vantage); as != "-" {
				label += "\n" + as
			}
			g.node(from, dotAttr("label", label), "style=rounded")
		}
		id, _ := instanceNode(r)
		prev := from
		path := r.ASPath
		if len(path) > 0 && r.Vantage.Origin != nil && len(r.Vantage.Origin.ASNs) > 0 && path[0] == r.Vantage.Origin.ASNs[0] {
			path = path[1:] // the vantage's own AS is on its node
		}
		for _, as := range path {
			n := "as:" + strconv.FormatUint(uint64(as), 10)
			g.node(n, dotAttr("label", "AS"+strconv.FormatUint(uint64(as), 10)), "shape=box")
			g.edge(prev, n, "vantage")
			prev = n
		}
		if len(path) == 0 && r.Upstream != nil && (r.Catchment == nil || r.Catchment.Kind != "upstream") {
			n := "hop:" + r.Upstream.Address
			g.node(n, dotAttr("label", r.Upstream.Address), "shape=box", "style=dashed")
			g.edge(prev, n, "vantage")
			prev = n
		}
		attrs := []string{}
		if r.Suspect {
			attrs = append(attrs, `color="red"`, `style=dashed`)
		}
		g.edge(prev, id, "vantage", attrs...)
	}
	return g.write(w)
}

// instanceNode names the node a row ends at.
func instanceNode(r report.CompareRow) (id, label string) {
	target := r.Target
	switch {
	case r.Suspect:
		return "suspect:" + target, "not from the service\n(" + target + ")"
	case r.Catchment != nil && r.Catchment.Kind == "upstream":
		return "up:" + target + "/" + r.Catchment.Value, "via " + r.Catchment.Value + "\n(" + target + ")"
	case r.Instance.Name == "":
		return "unknown:" + target, "no instance\n(" + target + ")"
	}
	label = string(r.Instance.Name)
	if st := r.Instance.Site; st != nil {
		label += "\n" + siteName(st)
	}
	return "i:" + target + "/" + string(r.Instance.Name), label + "\n(" + target + ")"
}
