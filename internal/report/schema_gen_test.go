package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/internal/report/reporttest"
	"github.com/anycheck/anycheck/measure"
)

var updateSchema = flag.Bool("update-schema", false, "rewrite docs/schema/anycheck-v2.json from the types")

// TestSchemaV2IsTheTypes: the published v2 schema is what the types of
// this package write, field for field, each described by its doc comment
// (go test ./internal/report -update-schema rewrites it). A field without
// a comment fails the test: every field of the contract is documented.
func TestSchemaV2IsTheTypes(t *testing.T) {
	g, err := newSchemaGen(".")
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.schema()
	if err != nil {
		t.Fatal(err)
	}
	if len(g.missing) > 0 {
		t.Errorf("fields of the contract without a description (add a doc comment):\n  %s", strings.Join(g.missing, "\n  "))
	}
	path := reporttest.SchemaPath()
	if *updateSchema {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the types say: go test ./internal/report -update-schema", path)
	}
}

// ordered is a JSON object that keeps its keys in the order they were set.
type ordered struct {
	keys []string
	vals map[string]any
}

func obj(kv ...any) *ordered {
	o := &ordered{vals: map[string]any{}}
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

func (o *ordered) set(k string, v any) *ordered {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
	return o
}

func (o *ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := marshalNoEscape(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// typeDocs are a type's doc comment and its fields'.
type typeDocs struct {
	doc    string
	fields map[string]string
}

// schemaGen builds the schema of the contract from this package's types.
type schemaGen struct {
	docs    map[string]typeDocs
	defs    *ordered
	done    map[reflect.Type]string // def name of each struct type
	names   map[string]reflect.Type
	missing []string
}

func newSchemaGen(dir string) (*schemaGen, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	g := &schemaGen{docs: map[string]typeDocs{}, defs: obj(), done: map[reflect.Type]string{}, names: map[string]reflect.Type{}}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				ts := s.(*ast.TypeSpec)
				doc := ts.Doc.Text()
				if doc == "" {
					doc = gd.Doc.Text()
				}
				td := typeDocs{doc: doc, fields: map[string]string{}}
				if st, ok := ts.Type.(*ast.StructType); ok {
					for _, fl := range st.Fields.List {
						text := strings.TrimSpace(fl.Doc.Text() + " " + fl.Comment.Text())
						for _, n := range fl.Names {
							td.fields[n.Name] = text
						}
					}
				}
				g.docs[ts.Name.Name] = td
			}
		}
	}
	return g, nil
}

var spaces = regexp.MustCompile(`\s+`)

// describe makes a doc comment a description: one paragraph, the Go name
// it starts with replaced by the JSON one.
func describe(text, goName, jsonName string) string {
	text = strings.TrimSpace(spaces.ReplaceAllString(text, " "))
	if goName != "" {
		if rest, ok := strings.CutPrefix(text, goName+" "); ok {
			text = jsonName + " " + rest
		} else if rest, ok := strings.CutPrefix(text, goName+": "); ok {
			text = jsonName + ": " + rest
		} else if rest, ok := strings.CutPrefix(text, goName+", "); ok {
			text = jsonName + ", " + rest
		}
	}
	return text
}

// defName is the schema name of a struct type: snake case, without DTO.
func defName(t reflect.Type) string {
	n := strings.TrimSuffix(t.Name(), "DTO")
	var b strings.Builder
	rs := []rune(n)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func ref(name string) *ordered { return obj("$ref", "#/$defs/"+name) }

func nullable(s *ordered) *ordered {
	return obj("anyOf", []any{s, obj("type", "null")})
}

var (
	optStringType = reflect.TypeFor[OptString]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	compareLine   = reflect.TypeFor[CompareLine]()
)

// tagged reads a field's schema tag: "ip", "time", "enum=a|b|c",
// "min=N", "max=N", joined by commas.
func tagged(s *ordered, tag string) *ordered {
	if tag == "" {
		return s
	}
	for _, part := range strings.Split(tag, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "ip":
			s = ref("ip")
		case "time":
			s = ref("time")
		case "prefix":
			s = ref("prefix")
		case "ref":
			s = ref(v)
		case "enum":
			var vals []any
			for _, x := range strings.Split(v, "|") {
				vals = append(vals, x)
			}
			s = obj("enum", vals)
		case "min", "max":
			var n json.Number = json.Number(v)
			if k == "min" {
				s.set("minimum", n)
			} else {
				s.set("maximum", n)
			}
		}
	}
	return s
}

// typeSchema is the schema of a value of type t (a field's, with its
// schema tag and whether nil/empty is left out).
func (g *schemaGen) typeSchema(t reflect.Type, tag string, omit bool) *ordered {
	switch t {
	case optStringType:
		return nullable(tagged(obj("type", "string"), tag))
	case rawType:
		return obj()
	case compareLine:
		return g.structRef(reflect.TypeFor[CompareRow]())
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := g.typeSchema(t.Elem(), tag, false)
		if omit || slices.Contains(strings.Split(tag, ","), "nonnull") {
			return s
		}
		return nullable(s)
	case reflect.Slice:
		return obj("type", "array", "items", g.typeSchema(t.Elem(), tag, false))
	case reflect.Map:
		return obj("type", "object", "additionalProperties", g.typeSchema(t.Elem(), tag, false))
	case reflect.Struct:
		return g.structRef(t)
	case reflect.Interface:
		return obj()
	case reflect.String:
		return tagged(obj("type", "string"), tag)
	case reflect.Bool:
		return obj("type", "boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return tagged(obj("type", "integer"), tag)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		s := obj("type", "integer", "minimum", 0)
		switch t.Kind() {
		case reflect.Uint8:
			s.set("maximum", 255)
		case reflect.Uint16:
			s.set("maximum", 65535)
		case reflect.Uint32:
			s.set("maximum", uint64(4294967295))
		}
		return tagged(s, tag)
	case reflect.Float32, reflect.Float64:
		return tagged(obj("type", "number"), tag)
	}
	panic(fmt.Sprintf("schema: no mapping for %s", t))
}

// structRef defines a struct type once and refers to it.
func (g *schemaGen) structRef(t reflect.Type) *ordered {
	if name, ok := g.done[t]; ok {
		return ref(name)
	}
	name := defName(t)
	if other, ok := g.names[name]; ok && other != t {
		name += "_dto" // Location and LocationDTO
		if _, ok := g.names[name]; ok {
			panic(fmt.Sprintf("schema: %s and %s both named %s", t, other, name))
		}
	}
	g.done[t], g.names[name] = name, t
	def := obj()
	g.defs.set(name, def) // placeholder first: recursion refers to it
	if d := describe(g.docs[t.Name()].doc, t.Name(), name); d != "" {
		def.set("description", d)
	} else {
		g.missing = append(g.missing, t.Name()+" (type)")
	}
	def.set("type", "object")
	props, required := obj(), []string{}
	g.fields(t, props, &required)
	def.set("required", required)
	def.set("properties", props)
	return ref(name)
}

// fields adds t's JSON fields (embedded structs flattened).
func (g *schemaGen) fields(t reflect.Type, props *ordered, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		jtag := f.Tag.Get("json")
		if jtag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(jtag, ",")
		if f.Anonymous && name == "" {
			g.fields(f.Type, props, required)
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := slices.Contains(strings.Split(opts, ","), "omitempty")
		s := g.typeSchema(f.Type, f.Tag.Get("schema"), omit)
		if strings.HasSuffix(name, "_ms") && f.Type.Kind() == reflect.Float64 {
			s.set("minimum", 0)
		}
		desc := describe(g.docs[t.Name()].fields[f.Name], f.Name, name)
		if desc == "" {
			g.missing = append(g.missing, t.Name()+"."+f.Name)
		}
		if _, isRef := s.vals["$ref"]; isRef {
			s = obj("description", desc, "allOf", []any{s})
		} else {
			s = withFirst(s, "description", desc)
		}
		props.set(name, s)
		if !omit {
			*required = append(*required, name)
		}
	}
}

// withFirst is s with key k set first.
func withFirst(s *ordered, k string, v any) *ordered {
	o := obj(k, v)
	for _, key := range s.keys {
		if key != k {
			o.set(key, s.vals[key])
		}
	}
	return o
}

// resultTypes are the result objects of each kind of document.
var resultTypes = []struct {
	kind    string
	typ     reflect.Type
	summary string // the document field that must carry its summary
}{
	{KindID, reflect.TypeFor[IDTarget](), ""},
	{KindTrace, reflect.TypeFor[TraceResult](), ""},
	{KindSweep, reflect.TypeFor[TraceSweep](), ""},
	{KindWatch, reflect.TypeFor[WatchTarget](), ""},
	{KindWhois, reflect.TypeFor[WhoisResult](), ""},
	{KindCompare, reflect.TypeFor[CompareRow](), "catchment"},
	{KindCensus, reflect.TypeFor[CensusClient](), "census"},
	{KindCensusSend, reflect.TypeFor[CensusSent](), "census_send"},
	{KindCensusListen, reflect.TypeFor[CensusReply](), "census_listen"},
}

// conditions are what a def's fields require of each other, beyond the
// types: keyed by def name.
var conditions = map[string][]any{
	"watch_event": {
		obj("if", obj("properties", obj("type", obj("const", "switch"))), "then", obj("required", []any{"from"})),
		obj("if", obj("properties", obj("type", obj("enum", []any{"lost", "back"}))), "then", obj("required", []any{"since", "misses"})),
		obj("if", obj("properties", obj("type", obj("const", "suspect"))), "then", obj("required", []any{"suspicions"})),
		obj("if", obj("properties", obj("type", obj("const", "error"))), "then", obj("required", []any{"detail"})),
		obj("if", obj("properties", obj("type", obj("const", WatchEventPath))), "then", obj("required", []any{"path"})),
	},
}

func enumOf[T ~string](vals ...T) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

// schema is the whole schema, pretty-printed.
func (g *schemaGen) schema() ([]byte, error) {
	var kinds []any
	for _, r := range resultTypes {
		kinds = append(kinds, r.kind)
	}
	hints := []measure.Suspicion{measure.SuspectRA, measure.SuspectAAClear, measure.SuspectClassNotCH, measure.SuspectTTLNonZero, measure.SuspectQuestionMissing}
	g.defs.set("status", obj("description", "What came back for one query: answered (NOERROR with TXT), empty (NOERROR without), refused, notimp, servfail, nxdomain, "+
		"rcode (another RCODE: see rcode), timeout, malformed (not a reply to the query), error (a local failure), unreachable (an ICMP error: see detail), "+
		"no_txt (an Atlas result whose answer held no TXT).",
		"enum", enumOf(measure.StatusAnswered, measure.StatusEmpty, measure.StatusRefused, measure.StatusNotImp, measure.StatusServFail, measure.StatusNXDomain,
			measure.StatusOtherRcode, measure.StatusTimeout, measure.StatusMalformed, measure.StatusError, measure.StatusUnreachable, measure.StatusNoTXT)))
	g.defs.set("hint", obj("description", "A sign in one answer that it may not come from the service's own CHAOS zone: ra_set (recursion available), "+
		"aa_clear (not authoritative), class_not_ch (an RR or the question not class CH), ttl_nonzero (a TXT with TTL > 0), question_missing (no or another question). "+
		"A hint is not a verdict: compare judges answers against the population (see suspicion).",
		"enum", enumOf(hints...)))
	g.defs.set("suspicion", obj("description", "Why a line is counted apart from the service: a hint, or a judgement: unlike_service (its answers differ from what most vantage points get), "+
		"identity_mismatch (its name fits none of the service's naming), no_chaos_operator (the operator answers no CHAOS queries), "+
		"faster_than_path (the answer came back faster than the path to the hop before the target), faster_than_light (faster than light from the vantage point to the site).",
		"enum", append(enumOf(hints...), enumOf(catchment.SuspectUnlikeService, catchment.SuspectIdentityMismatch, catchment.SuspectNoChaosOperator,
			catchment.SuspectFasterThanPath, catchment.SuspectFasterThanLight)...)))
	g.defs.set("ip", obj("description", "An IPv4 or IPv6 address, in its canonical text form.",
		"type", "string", "anyOf", []any{obj("format", "ipv4"), obj("format", "ipv6")}))
	g.defs.set("time", obj("description", "A time: RFC 3339, UTC, with exactly three decimals (milliseconds). jq: sub(\"\\\\.[0-9]+Z$\"; \"Z\") | fromdate.",
		"type", "string", "format", "date-time", "pattern", `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$`))
	g.defs.set("prefix", obj("description", "An IP prefix: address/length.", "type", "string", "pattern", `^[0-9a-fA-F.:]+/[0-9]{1,3}$`))

	doc := g.structRef(reflect.TypeFor[Document]())
	rec := g.structRef(reflect.TypeFor[Record]())
	for _, r := range resultTypes {
		g.structRef(r.typ)
	}
	for name, c := range conditions {
		d, ok := g.defs.vals[name].(*ordered)
		if !ok {
			return nil, fmt.Errorf("conditions for %s, which is no def", name)
		}
		d.set("allOf", c)
	}
	patch := func(name string) *ordered {
		d := g.defs.vals[name].(*ordered)
		props := d.vals["properties"].(*ordered)
		props.set("schema", withFirst(obj("const", Schema), "description", props.vals["schema"].(*ordered).vals["description"]))
		props.set("kind", withFirst(obj("enum", kinds), "description", props.vals["kind"].(*ordered).vals["description"]))
		return d
	}
	var docIf, recIf []any
	for _, r := range resultTypes {
		then := obj("properties", obj("results", obj("items", g.structRef(r.typ))))
		if r.summary != "" {
			then.set("required", []any{r.summary})
		}
		docIf = append(docIf, obj("if", obj("properties", obj("kind", obj("const", r.kind))), "then", then))
		recIf = append(recIf, obj(
			"if", obj("properties", obj("type", obj("const", RecordResult), "kind", obj("const", r.kind)), "required", []any{"type", "kind"}),
			"then", obj("properties", obj("result", g.structRef(r.typ)))))
		if r.summary != "" {
			recIf = append(recIf, obj(
				"if", obj("properties", obj("type", obj("const", RecordEnd), "kind", obj("const", r.kind)), "required", []any{"type", "kind"}),
				"then", obj("required", []any{r.summary})))
		}
	}
	for _, req := range []struct {
		typ    string
		fields []any
	}{
		{RecordHop, []any{"target", "hop"}},
		{RecordEvent, []any{"target", "event"}},
		{RecordResult, []any{"target", "result"}},
		{RecordEnd, []any{"tool", "started", "errors"}},
		{RecordSent, []any{"sent"}},
		{RecordReply, []any{"reply"}},
	} {
		recIf = append(recIf, obj("if", obj("properties", obj("type", obj("const", req.typ))), "then", obj("required", req.fields)))
	}
	d := patch("document")
	d.set("allOf", docIf)
	r := patch("record")
	r.vals["properties"].(*ordered).set("type", obj("description", r.vals["properties"].(*ordered).vals["type"].(*ordered).vals["description"],
		"enum", []any{RecordHop, RecordResult, RecordEnd, RecordEvent, RecordSent, RecordReply}))
	r.set("allOf", recIf)

	root := obj(
		"$schema", "https://json-schema.org/draft/2020-12/schema",
		"$id", "https://anycheck.example/schema/anycheck-v2.json",
		"title", "anycheck v2 output",
		"description", "The document written by `anycheck -o json` (any command), or one line of `-o jsonl`. "+
			"Generated from the Go types of internal/report (go test ./internal/report -update-schema); docs/json.md is the field guide. "+
			"Within v2 fields are only added, never removed or changed in meaning; consumers must ignore fields they do not know. "+
			"A field listed as required is always there; null is written where there is nothing to say.",
		"oneOf", []any{doc, rec},
		"$defs", g.defs,
	)
	b, err := marshalNoEscape(root)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
