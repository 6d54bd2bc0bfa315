package catchment

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/measure"
)

// MinPopulation is the fewest vantage points whose answers say what a
// service answers: below it no answer is judged "unlike the service".
const MinPopulation = 10

// Uniform is the share of vantage points that must agree on a property
// (RA, TTL, class, the shape of the names, a reply with or without TXT)
// before it is taken as the service's and answers without it are judged
// unlike the service. Operators mix server software across sites (K-root
// answers with AA set at some, clear at others; F-root's and E-root's TTLs
// differ by site), so a property they do not agree on is never judged.
const Uniform = 0.9

// nameFitShare is the share of the named vantage points a name's shape
// must reach to be one of the service's naming schemes; nameFitCommon the
// share a common suffix or prefix must reach.
const (
	nameFitShare  = 0.1
	nameFitCommon = 0.5
)

// Service is what a target answers most vantage points: the population its
// answers are judged against.
type Service struct {
	Target     netip.Addr
	Replied    int // vantage points with a DNS reply
	Identified int // of those, vantage points whose answers name an instance
	// Judged is set when Replied reaches MinPopulation; NotJudged says why
	// not otherwise.
	Judged    bool
	NotJudged string
	// NoIdentity says, once, that most vantage points get no identity
	// ("the service does not answer CHAOS hostname.bind: SERVFAIL for
	// 97 % of 8,500 vantage points"); "" otherwise.
	NoIdentity string
	// Traits are the properties of its answers, judged or not.
	Traits []Trait
	// Traced and Reached count the vantage points that traced the target
	// and those whose trace got there. PathInferred is set when the
	// target does not answer traceroute (fewer than 1 in 10 of at least
	// MinPopulation traces reached it): where paths enter the service
	// then stands for the catchment.
	Traced, Reached int
	PathInferred    bool
}

// Trait is one property of a service's answers to one query name.
type Trait struct {
	Query string // query name without the trailing dot ("hostname.bind"); "" for the names
	Name  string // "reply", "ra", "class", "ttl" or "name"
	Value string // the most common value ("SERVFAIL", "RA clear", "class CH", "TTL 60", "b1-lax, b2-lax, …")
	Share float64
	Of    int // vantage points where the property is known
	// Judged is set when Of reaches MinPopulation and Share Uniform:
	// answers that differ count apart.
	Judged bool
}

// traitCount counts the values of one property over the population.
type traitCount struct {
	query, name string
	counts      map[string]int
	order       []string
	of          int
}

func (t *traitCount) add(v string) {
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	if t.counts[v] == 0 {
		t.order = append(t.order, v)
	}
	t.counts[v]++
	t.of++
}

func (t *traitCount) top() (string, int) {
	best, n := "", 0
	for _, v := range t.order {
		if c := t.counts[v]; c > n || (c == n && v < best) {
			best, n = v, c
		}
	}
	return best, n
}

func (t *traitCount) trait() Trait {
	v, n := t.top()
	tr := Trait{Query: t.query, Name: t.name, Value: v, Of: t.of}
	if t.of > 0 {
		tr.Share = float64(n) / float64(t.of)
	}
	tr.Judged = t.of >= MinPopulation && tr.Share >= Uniform
	return tr
}

// answerTraits are the judged properties of one answer: reply, ra, class,
// ttl (exact; the TTL class is derived when the exact values disagree).
func answerTraits(a measure.Answer) map[string]string {
	m := map[string]string{"reply": replyLabel(a)}
	if a.Header.Known {
		m["ra"] = "RA clear"
		if a.Header.RA {
			m["ra"] = "RA set"
		}
		if len(a.TXT) > 0 {
			m["class"] = "class " + className(a.Header.Class)
			if a.Header.TTL >= 0 {
				m["ttl"] = "TTL " + strconv.FormatInt(a.Header.TTL, 10)
			}
		}
	}
	return m
}

func ttlClass(v string) string {
	if v == "TTL 0" {
		return v
	}
	return "TTL above 0"
}

func className(c uint16) string {
	if s, ok := dns.ClassToString[c]; ok {
		return s
	}
	return "CLASS" + strconv.Itoa(int(c))
}

// replyLabel names what an answer was: TXT, or its RCODE.
func replyLabel(a measure.Answer) string {
	if len(a.TXT) > 0 {
		return "TXT"
	}
	switch a.Status {
	case measure.StatusServFail:
		return "SERVFAIL"
	case measure.StatusRefused:
		return "REFUSED"
	case measure.StatusNotImp:
		return "NOTIMP"
	case measure.StatusNXDomain:
		return "NXDOMAIN"
	case measure.StatusEmpty:
		return "NOERROR without TXT"
	case measure.StatusNoTXT:
		return "no TXT"
	}
	if a.Rcode >= 0 {
		if s, ok := dns.RcodeToString[a.Rcode]; ok {
			return s
		}
		return "rcode " + strconv.Itoa(a.Rcode)
	}
	return string(a.Status)
}

// rowAnswers is the first replied answer of a row per query name.
func rowAnswers(r *Row) map[string]measure.Answer {
	m := map[string]measure.Answer{}
	for _, a := range r.Answers {
		if !a.Replied() {
			continue
		}
		q := strings.ToLower(strings.TrimSuffix(a.Name, "."))
		if _, ok := m[q]; !ok {
			m[q] = a
		}
	}
	return m
}

// judge learns what the service at one target answers from its rows, and
// counts apart the rows whose answers are unlike it. rows all have the
// same target.
func judge(rows []*Row) Service {
	s := Service{}
	if len(rows) == 0 {
		return s
	}
	s.Target = rows[0].Target
	traits := map[[2]string]*traitCount{}
	var traitOrder [][2]string
	count := func(q, name, v string) {
		k := [2]string{q, name}
		t := traits[k]
		if t == nil {
			t = &traitCount{query: q, name: name}
			traits[k] = t
			traitOrder = append(traitOrder, k)
		}
		t.add(v)
	}
	names := newNameStats()
	queries := map[string]int{}
	answers := make([]map[string]measure.Answer, len(rows))
	for i, r := range rows {
		if r.Traced {
			s.Traced++
			if r.Reached {
				s.Reached++
			}
		}
		answers[i] = rowAnswers(r)
		if len(answers[i]) == 0 {
			continue
		}
		s.Replied++
		if r.Instance != "" {
			s.Identified++
			names.add(r.Instance)
		}
		for q, a := range answers[i] {
			queries[q]++
			for name, v := range answerTraits(a) {
				count(q, name, v)
			}
		}
	}
	// A TTL the sites do not agree on exactly may still agree on zero or
	// not: the class is judged then.
	ttlByClass := map[string]bool{}
	for _, k := range traitOrder {
		t := traits[k]
		if k[1] != "ttl" {
			continue
		}
		if _, n := t.top(); float64(n) >= Uniform*float64(t.of) {
			continue
		}
		classes := &traitCount{query: t.query, name: "ttl"}
		for _, v := range t.order {
			for range t.counts[v] {
				classes.add(ttlClass(v))
			}
		}
		traits[k] = classes
		ttlByClass[k[0]] = true
	}
	// The queries asked most first, then by name (a row's answers are a
	// map: the order they were seen in is no order).
	slices.SortStableFunc(traitOrder, func(a, b [2]string) int {
		if a[0] != b[0] {
			if c := queries[b[0]] - queries[a[0]]; c != 0 {
				return c
			}
			return strings.Compare(a[0], b[0])
		}
		return traitRank(a[1]) - traitRank(b[1])
	})
	judged := map[[2]string]Trait{}
	for _, k := range traitOrder {
		tr := traits[k].trait()
		tr.Query = strings.TrimSuffix(tr.Query, ".")
		judged[k] = tr
		s.Traits = append(s.Traits, tr)
	}
	nameTrait := names.trait()
	if nameTrait.Of > 0 {
		s.Traits = append(s.Traits, nameTrait)
	}

	switch {
	case s.Replied == 0:
	case s.Replied < MinPopulation:
		s.NotJudged = fmt.Sprintf("%s replied; fewer than %d cannot tell what the service answers", vantagePoints(s.Replied), MinPopulation)
	default:
		s.Judged = true
	}
	if s.Replied > 0 && s.Identified*2 < s.Replied {
		q := mostCommon(queries)
		if t, ok := traits[[2]string{q, "reply"}]; ok {
			v, n := t.top()
			s.NoIdentity = fmt.Sprintf("the service does not answer CHAOS %s: %s for %s of %s", q, v, percent(n, t.of), vantagePoints(t.of))
		}
	}
	if s.Traced >= MinPopulation && s.Reached*10 < s.Traced {
		s.PathInferred = true
	}

	if !s.Judged {
		return s
	}
	for i, r := range rows {
		if r.Instance == "" {
			continue
		}
		for q, a := range answers[i] {
			for name, v := range answerTraits(a) {
				tr, ok := judged[[2]string{q, name}]
				if name == "ttl" && ttlByClass[q] {
					v = ttlClass(v)
				}
				if !ok || !tr.Judged || v == tr.Value {
					continue
				}
				if name == "reply" && v != "TXT" {
					continue // no identity from it: nothing to count apart
				}
				r.Apart = append(r.Apart, Reason{Code: SuspectUnlikeService, Text: unlikeText(name, v, tr.Value)})
			}
		}
		mismatch := slices.ContainsFunc(r.Apart, func(x Reason) bool { return x.Code == SuspectIdentityMismatch })
		if nameTrait.Judged && !names.fits(r.Instance) && !mismatch {
			r.Apart = append(r.Apart, Reason{Code: SuspectUnlikeService, Text: "name unlike the service's (" + nameTrait.Value + ")"})
		}
		// By code, then text: the answers and their traits are maps, so the
		// order they were judged in is no order.
		slices.SortStableFunc(r.Apart, compareReasons)
		r.Apart = slices.CompactFunc(r.Apart, func(a, b Reason) bool { return a == b })
	}
	return s
}

// compareReasons orders a row's reasons by code, then text.
func compareReasons(a, b Reason) int {
	if c := strings.Compare(string(a.Code), string(b.Code)); c != 0 {
		return c
	}
	return strings.Compare(a.Text, b.Text)
}

func traitRank(name string) int {
	switch name {
	case "reply":
		return 0
	case "ra":
		return 1
	case "class":
		return 2
	case "ttl":
		return 3
	}
	return 4
}

func unlikeText(name, v, service string) string {
	switch name {
	case "reply":
		return v + " where the service answers " + service
	case "ra":
		if v == "RA set" {
			return "RA set where the service clears it"
		}
		return "RA clear where the service sets it"
	case "class":
		return v + " where the service answers " + service
	case "ttl":
		return v + " where the service answers with " + service
	}
	return v + " where the service has " + service
}

func mostCommon(m map[string]int) string {
	best, n := "", -1
	for k, c := range m {
		if c > n || (c == n && k < best) {
			best, n = k, c
		}
	}
	return best
}

func percent(n, of int) string {
	if of == 0 {
		return "0 %"
	}
	p := float64(n) * 100 / float64(of)
	if p > 99 && n < of {
		return strconv.FormatFloat(p, 'f', 1, 64) + " %"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + " %"
}

func vantagePoints(n int) string {
	if n == 1 {
		return "1 vantage point"
	}
	return strconv.Itoa(n) + " vantage points"
}

// nameStats are the instance names of a target's vantage points, by the
// shapes and common parts that tell an operator's naming scheme: the shape
// (letters, digits and separators; "b1-lax" and "b4-mia" share one), the
// last labels of a dotted name ("k.ripe.net"), the leading letters ("M"
// of "M-CDG-3" and "M-NRT-JPNAP-4").
type nameStats struct {
	n                         int
	shapes, suffixes, leading map[string]int
	examples                  map[string]int // vantage points per name
}

func newNameStats() *nameStats {
	return &nameStats{shapes: map[string]int{}, suffixes: map[string]int{}, leading: map[string]int{}, examples: map[string]int{}}
}

func (s *nameStats) add(name string) {
	s.n++
	s.shapes[nameShape(name)]++
	if x := nameSuffix(name); x != "" {
		s.suffixes[x]++
	}
	if x := nameLeading(name); x != "" {
		s.leading[x]++
	}
	s.examples[name]++
}

// fits reports whether a name follows one of the service's naming schemes:
// its shape is common (a tenth of the names), or it shares the suffix or
// the leading letters of half of them.
func (s *nameStats) fits(name string) bool {
	if s.n == 0 {
		return true
	}
	if float64(s.shapes[nameShape(name)]) >= nameFitShare*float64(s.n) {
		return true
	}
	if x := nameSuffix(name); x != "" && float64(s.suffixes[x]) >= nameFitCommon*float64(s.n) {
		return true
	}
	if x := nameLeading(name); x != "" && float64(s.leading[x]) >= nameFitCommon*float64(s.n) {
		return true
	}
	return false
}

// trait says how uniform the names are (the share that fits) with the most
// common names as examples.
func (s *nameStats) trait() Trait {
	t := Trait{Name: "name", Of: s.n}
	if s.n == 0 {
		return t
	}
	fit := 0
	type ex struct {
		name string
		n    int
	}
	var exs []ex
	for name, n := range s.examples {
		exs = append(exs, ex{name, n})
	}
	slices.SortFunc(exs, func(a, b ex) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return strings.Compare(a.name, b.name)
	})
	var shown []string
	for _, e := range exs {
		if s.fits(e.name) {
			fit += e.n
			if len(shown) < 3 {
				shown = append(shown, e.name)
			}
		}
	}
	t.Share = float64(fit) / float64(s.n)
	t.Value = strings.Join(shown, ", ")
	if len(shown) == 3 {
		t.Value += ", …"
	}
	t.Judged = s.n >= MinPopulation && t.Share >= Uniform
	return t
}

// nameShape writes a name as runs of letters (a, with the run's length up
// to 3, else a+) and digits (9), separated by a space where they touch, and
// the other characters as they are, ignoring case: "b1-lax" → "a1 9-a3",
// "JNB" → "a3", "c01.FRA.eroot" → "a1 9.a3.a+".
func nameShape(name string) string {
	kind := func(r rune) byte {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			return 'a'
		case r >= '0' && r <= '9':
			return '9'
		}
		return 0
	}
	var b strings.Builder
	runes := []rune(name)
	prevRun := false
	for i := 0; i < len(runes); {
		k := kind(runes[i])
		if k == 0 {
			b.WriteRune(runes[i])
			prevRun = false
			i++
			continue
		}
		j := i
		for j < len(runes) && kind(runes[j]) == k {
			j++
		}
		if prevRun {
			b.WriteByte(' ')
		}
		b.WriteByte(k)
		if k == 'a' {
			if n := j - i; n <= 3 {
				b.WriteByte(byte('0' + n))
			} else {
				b.WriteByte('+')
			}
		}
		prevRun = true
		i = j
	}
	return b.String()
}

// nameSuffix is the last two labels of a name of three labels or more
// ("ripe.net" of "ns1.fi-hel.k.ripe.net"), lower case; "" otherwise.
func nameSuffix(name string) string {
	labels := strings.Split(strings.ToLower(strings.TrimSuffix(name, ".")), ".")
	if len(labels) < 3 {
		return ""
	}
	return strings.Join(labels[len(labels)-2:], ".")
}

// nameLeading is the letters a name starts with, lower case, when a digit
// or a separator follows them ("b" of "b1-lax", "m" of "M-CDG-3"); "" for
// a name of letters only or one that starts otherwise.
func nameLeading(name string) string {
	i := 0
	for i < len(name) && (name[i] >= 'a' && name[i] <= 'z' || name[i] >= 'A' && name[i] <= 'Z') {
		i++
	}
	if i == 0 || i == len(name) {
		return ""
	}
	return strings.ToLower(name[:i])
}
