package catchment

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anycheck/anycheck/geo"
)

// minCodes is the fewest distinct codes a service's answers must use
// before bare codes are read as its sites: one name for every vantage
// point is no naming scheme ("LAN" from everyone is a name, not a place).
const minCodes = 2

// placeByCodes places the sites of a service whose instances are named by
// bare IATA codes ("JNB", "LHR", as some authoritative operators answer
// id.server), which no pattern of the site-hint table can do without
// guessing: three letters are a code a quarter of the time. The service's
// population decides, never one name: at least MinPopulation vantage
// points with an answer of the service (not counted apart), Uniform of
// them a bare code the places table knows, minCodes distinct codes. Then
// every such answer of the service is placed at its code (a bare name the
// table does not know is a site without a place, saying why), and checked
// against the speed of light. A target whose operator the table knows is
// left to that operator's patterns; rows counted apart and rows the table
// already gave a site stay as they are. rows all have the same target.
func placeByCodes(rows []*Row, sites *Sites) {
	if len(rows) == 0 {
		return
	}
	if _, _, known := sites.OperatorOf(rows[0].Target); known {
		return
	}
	genuine, coded := 0, 0
	codes := map[string]bool{}
	for _, r := range rows {
		if !r.Identified() {
			continue
		}
		genuine++
		if c, ok := bareCode(r.Instance); ok && r.Site.Site == "" {
			if _, known := geo.LookupIATA(c); known {
				coded++
				codes[c] = true
			}
		}
	}
	if genuine < MinPopulation || float64(coded) < Uniform*float64(genuine) || len(codes) < minCodes {
		return
	}
	for _, r := range rows {
		c, ok := bareCode(r.Instance)
		if !ok || !r.Identified() || r.Site.Site != "" {
			continue
		}
		r.Site = SiteHint{Site: strings.ToLower(c)}
		if p, known := geo.LookupIATA(c); known {
			r.Site.Place = p
		} else {
			r.Site.Unplaced = fmt.Sprintf("code %s is not in the places table", c)
		}
		r.Light = nil
		if l, ok := LightOf(r); ok {
			r.Light = &l
		}
		if x, ok := lightReason(r); ok {
			r.Apart = append(r.Apart, x)
			slices.SortStableFunc(r.Apart, compareReasons)
		}
	}
}

// bareCode is a name that is nothing but three ASCII letters ("JNB",
// "lhr"), upper case. A code inside a longer name is not one: "k2.ams-ix"
// is no bare code.
func bareCode(name string) (string, bool) {
	if len(name) != 3 {
		return "", false
	}
	for i := 0; i < 3; i++ {
		if c := name[i] | 0x20; c < 'a' || c > 'z' {
			return "", false
		}
	}
	return strings.ToUpper(name), true
}
