package catchment

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/anycheck/anycheck/geo"
)

// builtinSites is the site-hint table shipped with anycheck: data, not code.
//
//go:embed sites.txt
var builtinSites string

// OperatorKind says what an operator's identity answers look like.
type OperatorKind string

// Operator kinds of the site-hint table.
const (
	KindAuthoritative OperatorKind = "auth"     // CH, TTL 0, RA clear
	KindResolver      OperatorKind = "resolver" // RA and TTLs above 0 are normal
	KindNoChaos       OperatorKind = "nochaos"  // never answers identity queries
)

// SiteHint is what the site-hint table says about an identity string.
type SiteHint struct {
	Operator string // operator whose pattern matched; "" when none did
	Site     string // site code (lower case) from the pattern's first group
	// Place is where the site is, when the pattern says the name carries a
	// place code and the places table agrees, or when the operator placed
	// the site code itself (a place line); geo.Place's zero value
	// otherwise. A place given as LAT,LON has no Code.
	Place geo.Place
	// Unplaced says why a site has no place: the operator's names carry
	// no code the table knows, the code is not in the table, or the
	// country in the name is not the place's.
	Unplaced string
}

// Placed reports whether the hint locates its site.
func (h SiteHint) Placed() bool { return h.Place.Valid() }

// sitePattern is one line of a site-hint table.
type sitePattern struct {
	operator string
	kind     OperatorKind
	targets  []netip.Prefix
	re       *regexp.Regexp // nil for nochaos lines
	iata, cc int            // submatch indices of the named groups; 0 when absent
	where    string         // file:line, for error messages
}

// Sites is a site-hint table: naming patterns per operator, the prefixes
// their services live at, and what their identity answers look like.
type Sites struct {
	patterns []sitePattern
	// places are the operators' own placements of their site codes
	// (lines "operator place SITE WHERE"), by operator and site.
	places map[string]map[string]geo.Place
}

// BuiltinSites is the table shipped with anycheck, parsed on the first
// call (about half a millisecond: kept off the start-up path of commands
// that probe first) and shared by every later one: a Sites is never
// changed once parsed (With makes a new one), so it is safe for
// concurrent use.
var BuiltinSites = sync.OnceValue(func() *Sites {
	s, err := ParseSites(strings.NewReader(builtinSites), "builtin sites.txt")
	if err != nil {
		// The shipped table is tested; a parse error is a build defect.
		panic(err)
	}
	return s
})

// ParseSites reads a site-hint table (the format of catchment/sites.txt):
// lines "operator kind targets pattern", '#' comments and blank lines.
// Errors name the file and line.
func ParseSites(r io.Reader, name string) (*Sites, error) {
	s := &Sites{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, n)
		if f := strings.FieldsFunc(line, isFieldSep); len(f) >= 2 && f[1] == kindPlace {
			if err := s.parsePlaceLine(f, where); err != nil {
				return nil, err
			}
			continue
		}
		p, err := parseSiteLine(line, where)
		if err != nil {
			return nil, err
		}
		s.patterns = append(s.patterns, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

func parseSiteLine(line, where string) (sitePattern, error) {
	// Fields are separated by spaces and tabs only: another white-space
	// character (a no-break space pasted from a web page, a vertical tab)
	// between them is an error that names it, never a split.
	f := strings.FieldsFunc(line, isFieldSep)
	for _, field := range f[:min(3, len(f))] {
		if i := strings.IndexFunc(field, unicode.IsSpace); i >= 0 {
			r, _ := utf8.DecodeRuneInString(field[i:])
			return sitePattern{}, fmt.Errorf("%s: %U between fields (in %q): separate fields with spaces or tabs", where, r, field)
		}
	}
	if len(f) < 4 {
		return sitePattern{}, fmt.Errorf("%s: want 4 fields (operator kind targets pattern), got %d", where, len(f))
	}
	p := sitePattern{operator: f[0], kind: OperatorKind(f[1]), where: where}
	switch p.kind {
	case KindAuthoritative, KindResolver, KindNoChaos:
	default:
		return p, fmt.Errorf("%s: kind %q: must be auth, resolver, nochaos or place", where, f[1])
	}
	if f[2] != "-" {
		for _, t := range strings.Split(f[2], ",") {
			pfx, err := netip.ParsePrefix(t)
			if err != nil {
				return p, fmt.Errorf("%s: target %q: not a prefix", where, t)
			}
			p.targets = append(p.targets, pfx.Masked())
		}
	}
	// The pattern is the rest of the line after the third field.
	rest := line
	for range 3 {
		rest = strings.TrimLeftFunc(rest, isFieldSep)
		rest = rest[strings.IndexFunc(rest, isFieldSep):]
	}
	pat := strings.TrimSpace(rest)
	if p.kind == KindNoChaos {
		if pat != "-" {
			return p, fmt.Errorf("%s: a nochaos operator has no naming pattern (write -)", where)
		}
		if len(p.targets) == 0 {
			return p, fmt.Errorf("%s: a nochaos operator needs target prefixes", where)
		}
		return p, nil
	}
	re, err := regexp.Compile("(?i)^(?:" + pat + ")$")
	if err != nil {
		return p, fmt.Errorf("%s: pattern: %w", where, err)
	}
	if re.NumSubexp() < 1 {
		return p, fmt.Errorf("%s: pattern %q has no group for the site code", where, pat)
	}
	for i, name := range re.SubexpNames() {
		switch name {
		case "":
		case "iata":
			p.iata = i
		case "cc":
			p.cc = i
		default:
			return p, fmt.Errorf("%s: group name %q: the names a pattern may use are iata and cc", where, name)
		}
	}
	if p.cc > 0 && p.iata == 0 {
		return p, fmt.Errorf("%s: a cc group checks an iata group's place; the pattern has no iata group", where)
	}
	p.re = re
	return p, nil
}

func isFieldSep(r rune) bool { return r == ' ' || r == '\t' }

// kindPlace is the kind of a line that places an operator's site code
// itself: "operator place SITE WHERE", WHERE an IATA code of the places
// table or LAT,LON. The operator's word is taken over any code in the name.
const kindPlace = "place"

func (s *Sites) parsePlaceLine(f []string, where string) error {
	for _, field := range f {
		if i := strings.IndexFunc(field, unicode.IsSpace); i >= 0 {
			r, _ := utf8.DecodeRuneInString(field[i:])
			return fmt.Errorf("%s: %U between fields (in %q): separate fields with spaces or tabs", where, r, field)
		}
	}
	if len(f) != 4 {
		return fmt.Errorf("%s: want 4 fields (operator place SITE WHERE), got %d", where, len(f))
	}
	var pl geo.Place
	if p, ok := geo.LookupIATA(f[3]); ok && !strings.Contains(f[3], ",") {
		pl = p
	} else {
		pt, err := geo.ParsePoint(f[3])
		if err != nil {
			return fmt.Errorf("%s: place %q: not an IATA code of the places table nor LAT,LON (%v)", where, f[3], err)
		}
		pl = geo.Place{Point: pt}
	}
	if s.places == nil {
		s.places = map[string]map[string]geo.Place{}
	}
	if s.places[f[0]] == nil {
		s.places[f[0]] = map[string]geo.Place{}
	}
	site := strings.ToLower(f[2])
	if _, dup := s.places[f[0]][site]; dup {
		return fmt.Errorf("%s: site %s of %s is placed twice", where, site, f[0])
	}
	s.places[f[0]][site] = pl
	return nil
}

// placed applies the operator's own placement of the hint's site, if any.
func (s *Sites) placed(h SiteHint) SiteHint {
	if pl, ok := s.places[h.Operator][h.Site]; ok {
		h.Place, h.Unplaced = pl, ""
	}
	return h
}

// With returns a table that checks extra's patterns first, then s's.
func (s *Sites) With(extra *Sites) *Sites {
	if extra == nil {
		return s
	}
	out := &Sites{patterns: append(append([]sitePattern{}, extra.patterns...), s.patterns...)}
	for _, from := range []*Sites{s, extra} { // extra's placements win
		for op, sites := range from.places {
			if out.places == nil {
				out.places = map[string]map[string]geo.Place{}
			}
			if out.places[op] == nil {
				out.places[op] = map[string]geo.Place{}
			}
			for site, pl := range sites {
				out.places[op][site] = pl
			}
		}
	}
	return out
}

// Hint extracts a site code from an identity string: the first pattern
// that matches names the operator and the site. No match, no hint.
func (s *Sites) Hint(identity string) (SiteHint, bool) {
	if s == nil || identity == "" {
		return SiteHint{}, false
	}
	for _, p := range s.patterns {
		if h, ok := p.hint(identity); ok {
			return s.placed(h), true
		}
	}
	return SiteHint{}, false
}

// HintFor is Hint for an answer from target: when the target belongs to an
// operator of the table, only that operator's patterns are tried (another
// operator's naming scheme says nothing about this one's names); otherwise
// only the patterns of operators listed without target prefixes (a hosting
// operator such as PCH, whose names appear at many addresses).
func (s *Sites) HintFor(target netip.Addr, identity string) (SiteHint, bool) {
	if s == nil || identity == "" {
		return SiteHint{}, false
	}
	operator, _, known := s.OperatorOf(target)
	for _, p := range s.patterns {
		if known && p.operator != operator || !known && len(p.targets) > 0 {
			continue
		}
		if h, ok := p.hint(identity); ok {
			return s.placed(h), true
		}
	}
	return SiteHint{}, false
}

// hint matches one pattern and places the site: a code is placed only where
// the pattern marks it as one (group iata), only when the places table has
// it, and only when a country in the name (group cc) is the place's: UN/LOCODE
// names such as am-abo (Abovyan, Armenia) share their letters with IATA
// codes elsewhere (ABO is in Côte d'Ivoire). Anything else leaves the site
// without a place, never a guess.
func (p *sitePattern) hint(identity string) (SiteHint, bool) {
	if p.re == nil {
		return SiteHint{}, false
	}
	m := p.re.FindStringSubmatch(identity)
	if m == nil {
		return SiteHint{}, false
	}
	h := SiteHint{Operator: p.operator, Site: strings.ToLower(m[1])}
	if p.iata == 0 {
		h.Unplaced = "the operator's names carry no place code"
		return h, true
	}
	code := strings.ToUpper(m[p.iata])
	place, ok := geo.LookupIATA(code)
	switch {
	case !ok:
		h.Unplaced = fmt.Sprintf("code %s is not in the places table", code)
	case p.cc > 0 && countryCode(m[p.cc]) != place.Country:
		h.Unplaced = fmt.Sprintf("the name says country %s, %s is in %s", strings.ToUpper(m[p.cc]), code, place.Country)
	default:
		h.Place = place
	}
	return h, true
}

// countryCode is a name's country as ISO 3166-1 alpha-2 (UK, common in
// names, is GB).
func countryCode(cc string) string {
	cc = strings.ToUpper(cc)
	if cc == "UK" {
		return "GB"
	}
	return cc
}

// OperatorOf names the operator whose service lives at target, and its kind.
func (s *Sites) OperatorOf(target netip.Addr) (string, OperatorKind, bool) {
	if s == nil {
		return "", "", false
	}
	target = target.Unmap()
	for _, p := range s.patterns {
		for _, pfx := range p.targets {
			if pfx.Contains(target) {
				return p.operator, p.kind, true
			}
		}
	}
	return "", "", false
}

// fits reports whether identity matches one of operator's patterns.
func (s *Sites) fits(operator, identity string) bool {
	for _, p := range s.patterns {
		if p.operator == operator && p.re != nil && p.re.MatchString(identity) {
			return true
		}
	}
	return false
}
