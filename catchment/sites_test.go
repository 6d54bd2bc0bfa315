package catchment

import (
	"compress/gzip"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// Every built-in pattern with real identity strings of its operator: the
// names are CHAOS answers seen by RIPE Atlas probes (the RIPE NCC's
// ripe-atlas-bigquery test fixtures and the Atlas results in refdata), the
// places what the operators publish for those sites.
func TestBuiltinSitesRealIdentities(t *testing.T) {
	s := BuiltinSites()
	for _, tc := range []struct {
		target, identity, operator, site string
		place, country                   string // "" when the site must stay unplaced
	}{
		{"198.41.0.4", "rootns-ams2", "verisign", "ams", "", ""},
		{"192.58.128.30", "nnn1-wie1", "verisign", "wie", "", ""}, // Vienna, not Wiesbaden (IATA WIE)
		{"198.41.0.4", "rootns-elsin2", "verisign", "sin", "", ""},
		{"170.247.170.2", "b1-lax", "b-root", "lax", "LAX", "US"},
		{"2801:1b8:10::b", "b2-ari", "b-root", "ari", "ARI", "CL"},
		{"192.33.4.12", "bts1a.c.root-servers.org", "c-root", "bts", "BTS", "SK"},
		{"192.33.4.12", "par1b.c.root-servers.org", "c-root", "par", "PAR", "FR"},
		{"192.33.4.12", "tyo1a.c.root-servers.org", "c-root", "tyo", "TYO", "JP"},
		{"199.7.91.13", "ffde1.droot.maxgigapop.net", "d-root", "ffde", "", ""},
		{"192.203.230.10", "p01.ams.eroot", "e-root", "ams", "AMS", "NL"},
		{"192.203.230.10", "c01.CGK.eroot", "e-root", "cgk", "CGK", "ID"},
		{"192.203.230.10", "cloudflare-e-root-20190930", "e-root", "", "", ""},
		{"192.5.5.241", "ams1a.f.root-servers.org", "f-root", "ams", "AMS", "NL"},
		{"2001:500:2f::f", "EWR.cf.f.root-servers.org", "f-root", "ewr", "EWR", "US"},
		{"192.5.5.241", "DAR.cf.f.root-servers.org", "f-root", "dar", "DAR", "TZ"},
		{"192.112.36.4", "groot-eur2-3", "g-root", "eur2", "", ""},
		{"198.97.190.53", "001.apg.h.root-servers.org", "h-root", "apg", "APG", "US"},
		{"198.97.190.53", "001.jnb.h.root-servers.org", "h-root", "jnb", "JNB", "ZA"},
		{"192.36.148.17", "s1.pix", "i-root", "pix", "", ""}, // not Pico Island
		{"192.36.148.17", "s1.sth", "i-root", "sth", "", ""},
		{"193.0.14.129", "ns1.fi-hel.k.ripe.net", "k-root", "fi-hel", "HEL", "FI"},
		{"2001:7fd::1", "k3.ams-ix.k.ripe.net", "k-root", "ams-ix", "AMS", "NL"},
		{"193.0.14.129", "ns1.gb-lon.k.ripe.net", "k-root", "gb-lon", "LON", "GB"},
		{"193.0.14.129", "ns1.us-mkc.k.ripe.net", "k-root", "us-mkc", "MKC", "US"},
		{"193.0.14.129", "ns1.de-kae.k.ripe.net", "k-root", "de-kae", "", ""}, // KAE: not in the table
		{"193.0.14.129", "k1.denic.k.ripe.net", "k-root", "denic", "", ""},
		{"199.7.83.42", "us-lax-aa", "l-root", "us-lax", "LAX", "US"},
		{"199.7.83.42", "kz-plx-aa", "l-root", "kz-plx", "PLX", "KZ"},
		{"199.7.83.42", "it-ltn-aa", "l-root", "it-ltn", "", ""}, // LTN is London Luton
		{"199.7.83.42", "ch-mot-aa", "l-root", "ch-mot", "", ""}, // MOT is Minot, US
		{"199.7.83.42", "ca-tor-aa", "l-root", "ca-tor", "", ""}, // Toronto's LOCODE; TOR is not IATA here
		{"199.7.83.42", "am-abo-aa", "l-root", "am-abo", "", ""}, // Abovyan, Armenia
		{"202.12.27.33", "M-NRT-DIXIE-2", "m-root", "nrt", "NRT", "JP"},
		{"2001:dc3::35", "M-CDG-3", "m-root", "cdg", "CDG", "FR"},
		{"9.9.9.9", "res110.mia.rrdns.pch.net", "quad9", "mia", "MIA", "US"},
		{"192.0.2.1", "1.zrh2.pch", "pch", "zrh2", "ZRH", "CH"},
		{"192.0.2.1", "e-03.ams.pch.net", "pch", "ams", "AMS", "NL"},
		{"192.0.2.1", "ns1.at-vie.authdns.ripe.net", "ripe-authdns", "at-vie", "VIE", "AT"},
	} {
		h, ok := s.HintFor(netip.MustParseAddr(tc.target), tc.identity)
		if !ok || h.Operator != tc.operator || h.Site != tc.site || h.Place.Code != tc.place || h.Place.Country != tc.country {
			t.Errorf("%s from %s: hint %+v %v, want %s/%s at %s %s", tc.identity, tc.target, h, ok, tc.operator, tc.site, tc.place, tc.country)
		}
		if !h.Placed() && h.Unplaced == "" {
			t.Errorf("%s: unplaced without a reason", tc.identity)
		}
		if !s.fits(tc.operator, tc.identity) {
			t.Errorf("%s does not fit %s", tc.identity, tc.operator)
		}
	}
	// Every built-in operator is exercised above.
	ops := map[string]bool{}
	for _, p := range s.patterns {
		ops[p.operator] = true
	}
	if len(ops) != 15 || len(s.patterns) != 19 {
		t.Errorf("the table changed (%d operators, %d lines): add real identity strings for each new pattern", len(ops), len(s.patterns))
	}
}

func TestSitesRefusalReasons(t *testing.T) {
	s := BuiltinSites()
	for id, want := range map[string]string{
		"am-abo-aa":             "code ABO is not in the places table", // Aboisso, CI, is a small airfield
		"it-ltn-aa":             "the name says country IT, LTN is in GB",
		"ns1.de-kae.k.ripe.net": "code KAE is not in the places table",
		"s1.sth":                "the operator's names carry no place code",
	} {
		h, ok := s.Hint(id)
		if !ok || h.Placed() || h.Unplaced != want {
			t.Errorf("%s: %+v, want %q", id, h, want)
		}
	}
}

// An answer is read with its target's operator's patterns only: a B-root
// style name from an address nobody in the table owns names no site, and
// a root letter's name from another letter's address neither.
func TestHintForTarget(t *testing.T) {
	s := BuiltinSites()
	for _, tc := range []struct{ target, identity string }{
		{"192.0.2.53", "b1-lax"},
		{"193.0.14.129", "b1-lax"},                  // K-root answering like B-root
		{"192.5.5.241", "res110.mia.rrdns.pch.net"}, // F-root answering like Quad9
	} {
		if h, ok := s.HintFor(netip.MustParseAddr(tc.target), tc.identity); ok {
			t.Errorf("%s from %s: %+v", tc.identity, tc.target, h)
		}
	}
	if h, ok := s.Hint("b1-lax"); !ok || h.Place.Code != "LAX" {
		t.Errorf("Hint without a target tries every pattern: %+v", h)
	}
}

func TestSitesUnknownGivesNoHint(t *testing.T) {
	s := BuiltinSites()
	for _, id := range []string{"", "i1-nsd", "PowerDNS Recursor 3.5.2 $Id$", "ns1.fi-hel.k.ripe.net.evil.example", "xres110.mia.rrdns.pch.net"} {
		if h, ok := s.Hint(id); ok {
			t.Errorf("%q: got hint %+v", id, h)
		}
	}
	var nilSites *Sites
	if _, ok := nilSites.Hint("ns1.fi-hel.k.ripe.net"); ok {
		t.Errorf("nil table gave a hint")
	}
}

func TestSitesOperatorOf(t *testing.T) {
	s := BuiltinSites()
	for addr, want := range map[string]string{"193.0.14.129": "k-root", "2001:7fd::1": "k-root", "9.9.9.9": "quad9", "192.5.5.241": "f-root", "::ffff:9.9.9.9": "quad9"} {
		op, _, ok := s.OperatorOf(netip.MustParseAddr(addr))
		if !ok || op != want {
			t.Errorf("%s: %q %v, want %s", addr, op, ok, want)
		}
	}
	if _, _, ok := s.OperatorOf(netip.MustParseAddr("192.0.2.53")); ok {
		t.Errorf("a documentation address belongs to no operator")
	}
}

func TestParseSitesUserFile(t *testing.T) {
	user, err := ParseSites(strings.NewReader(`
# our own service
lab   auth    192.0.2.0/24   i[0-9]+\.(lab-[a-z]+)
lab   auth    192.0.2.0/24   (i[0-9]+)-(?:nsd|knot)
silent nochaos 198.51.100.53/32 -
`), "sites.txt")
	if err != nil {
		t.Fatal(err)
	}
	s := BuiltinSites().With(user)
	if h, ok := s.Hint("i1.lab-a"); !ok || h.Operator != "lab" || h.Site != "lab-a" || h.Placed() {
		t.Errorf("user pattern: %+v %v", h, ok)
	}
	if h, ok := s.Hint("I2-KNOT"); !ok || h.Site != "i2" {
		t.Errorf("case-insensitive match: %+v %v", h, ok)
	}
	if h, ok := s.Hint("ns1.fi-hel.k.ripe.net"); !ok || h.Operator != "k-root" {
		t.Errorf("builtin kept: %+v", h)
	}
	if _, kind, ok := s.OperatorOf(netip.MustParseAddr("198.51.100.53")); !ok || kind != KindNoChaos {
		t.Errorf("nochaos operator: %v %v", kind, ok)
	}
	// The built-in table is parsed once and shared: a user's file joins a
	// copy, never the table every other caller gets.
	if b := BuiltinSites(); b != BuiltinSites() {
		t.Error("the built-in table was parsed again")
	} else if _, ok := b.Hint("i1.lab-a"); ok {
		t.Error("a user's pattern leaked into the shared built-in table")
	}
}

// An operator places its own site codes ("place" lines): the lab's names
// carry no IATA code, D-root's are its own abbreviations.
func TestSitesPlaceLines(t *testing.T) {
	user, err := ParseSites(strings.NewReader(`
lab      auth   192.0.2.0/24   i[0-9]+\.(lab-[a-z]+)
lab      place  lab-a          FRA
lab      place  LAB-B          41.88,-87.63
d-root   place  ffde           FRA
`), "sites.txt")
	if err != nil {
		t.Fatal(err)
	}
	s := BuiltinSites().With(user)
	target := netip.MustParseAddr("192.0.2.53")
	if h, ok := s.HintFor(target, "i1.lab-a"); !ok || h.Place.Code != "FRA" || h.Unplaced != "" {
		t.Errorf("lab-a: %+v", h)
	}
	if h, _ := s.HintFor(target, "i2.lab-b"); !h.Placed() || h.Place.Code != "" || h.Place.Lat != 41.88 {
		t.Errorf("lab-b at coordinates: %+v", h)
	}
	if h, _ := s.HintFor(target, "i3.lab-c"); h.Placed() || h.Site != "lab-c" {
		t.Errorf("lab-c has no place line: %+v", h)
	}
	if h, _ := s.HintFor(netip.MustParseAddr("199.7.91.13"), "ffde1.droot.maxgigapop.net"); h.Place.Code != "FRA" || h.Operator != "d-root" {
		t.Errorf("a built-in operator's site placed by the user: %+v", h)
	}
	for text, want := range map[string]string{
		"lab place lab-a":                  "want 4 fields (operator place SITE WHERE)",
		"lab place lab-a ZZZ":              `place "ZZZ": not an IATA code`,
		"lab place lab-a 0,0":              "0,0 is where unset",
		"lab place a FRA\nlab place A AMS": "f.txt:2: site a of lab is placed twice",
		"lab place a\u00a0FRA x":           "U+00A0 between fields",
	} {
		if _, err := ParseSites(strings.NewReader(text), "f.txt"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

func TestParseSitesErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"a auth -", "f.txt:1: want 4 fields"},
		{"\n\na weird - x(y)", "f.txt:3: kind \"weird\""},
		{"a auth 300.0.0.0/8 (x)", "target \"300.0.0.0/8\""},
		{"a auth - x(", "f.txt:1: pattern"},
		{"a auth - nogroup", "no group for the site code"},
		{"a nochaos 192.0.2.0/24 (x)", "nochaos operator has no naming pattern"},
		{"a nochaos - -", "needs target prefixes"},
		{"a auth - (?P<city>x)", `group name "city"`},
		{"a auth - (?P<cc>[a-z]{2})", "has no iata group"},
		// Issue 22 item 2: a no-break space or a vertical tab between fields
		// (Fields splits there, the pattern search did not) panicked.
		{"# x\na auth\u00a0- (x)", "f.txt:2: U+00A0 between fields"},
		{"a auth -\v(x)", "f.txt:1: U+000B between fields"},
		{"a\u2003auth - (x)", "f.txt:1: U+2003 between fields"},
	} {
		_, err := ParseSites(strings.NewReader(tc.text), "f.txt")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.text, err, tc.want)
		}
	}
}

// A user's --sites file is parsed without panics, whatever it holds.
func FuzzParseSites(f *testing.F) {
	f.Add(builtinSites)
	f.Add("a nochaos 192.0.2.0/24 -\nb auth - (x)\n")
	f.Add("a auth 2001:db8::/32,192.0.2.1/32 ^(a|b)[0-9]+$")
	f.Add("a auth\u00a0- (x)\nb\vauth - (y)")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseSites(strings.NewReader(text), "fuzz")
		if err != nil {
			return
		}
		s.Hint(text)
		s.OperatorOf(netip.MustParseAddr("192.0.2.1"))
	})
}

// The real instance names of refdata (~1,000 CHAOS answers of every root
// letter, from the RIPE NCC's ripe-atlas-bigquery fixtures): how many the
// built-in table places, how many it names without a place and why, and
// how many it leaves alone. The counts are pinned so that a change of the
// table shows up here; every placement is checked against the name's own
// country where it carries one.
func TestSitesRefdataNames(t *testing.T) {
	f, err := os.Open(refdata("names/ripencc_bigquery_abuf_fixtures.json.gz"))
	if err != nil {
		t.Skip("refdata not here:", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var fixtures map[string]struct {
		Payload []struct {
			Section, Name string
			Type, Class   any
			Data          any
		}
	}
	if err := json.NewDecoder(zr).Decode(&fixtures); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fx := range fixtures {
		for _, p := range fx.Payload {
			data, _ := p.Data.(string)
			switch {
			case p.Section == "answer" && p.Type == "TXT" && p.Class == "CH" && (p.Name == "hostname.bind." || p.Name == "id.server."):
				names = append(names, strings.Trim(data, `"`))
			case p.Type == "OPT" && p.Name == "NSID" && !strings.Contains(data, ","):
				names = append(names, data)
			}
		}
	}
	answers := len(names)
	slices.Sort(names)
	names = slices.Compact(names)
	s := BuiltinSites()
	placed, unplaced, none := 0, map[string]int{}, 0
	for _, n := range names {
		h, ok := s.Hint(n)
		switch {
		case !ok:
			none++
		case h.Placed():
			placed++
			// A name with a country (UN/LOCODE) is placed in it.
			if cc, _, found := strings.Cut(h.Site, "-"); found && len(cc) == 2 && countryCode(cc) != h.Place.Country {
				t.Errorf("%s placed at %v", n, h.Place)
			}
		default:
			reason := h.Unplaced
			if strings.HasPrefix(reason, "code ") {
				reason = "code not in the places table"
			} else if strings.HasPrefix(reason, "the name says country") {
				reason = "country in the name disagrees"
			}
			unplaced[reason]++
		}
	}
	// Bare codes are placed only where a service's population of answers
	// shows the scheme: the real names, as the answers of one service,
	// show none.
	var obs []Observation
	for i, n := range names {
		obs = append(obs, answerObs(i+1, 64500, reply(0, false, true, 0, dns.ClassCHAOS, n)))
	}
	for _, r := range Analyse(obs, nil).Rows {
		if r.Site.Site != "" {
			t.Errorf("%s: read as the bare site code of a scheme: %+v", r.Instance, r.Site)
		}
	}
	t.Logf("%d answers, %d distinct names: %d placed, %d named without a place %v, %d without a hint", answers, len(names), placed, sum(unplaced), unplaced, none)
	if len(names) != 483 || placed != 220 || sum(unplaced) != 183 || none != 80 {
		t.Errorf("the counts moved: %d names, %d placed, %d unplaced %v, %d without a hint", len(names), placed, sum(unplaced), unplaced, none)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// refdata finds a file of the shared reference data: $ANYCHECK_REFDATA,
// shared/ beside the repository (CI), or the workplace's copy.
func refdata(name string) string {
	for _, d := range []string{os.Getenv("ANYCHECK_REFDATA"), "../../shared/refdata", "/work/shared/refdata"} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name)
		}
	}
	return filepath.Join("../../shared/refdata", name)
}
