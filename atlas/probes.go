package atlas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/internal/iolimit"
)

// Probe is what the API says about one probe: where it is and in which
// networks. Unknown values are zero (ASN 0, an invalid address, no location).
type Probe struct {
	ID                   int
	ASNv4, ASNv6         uint32
	Country              string // ISO 3166-1 alpha-2, upper case
	AddressV4, AddressV6 netip.Addr
	PrefixV4, PrefixV6   netip.Prefix
	// Latitude and Longitude are valid when HasLocation is set.
	Latitude, Longitude float64
	HasLocation         bool
	// AutoGeo says Atlas placed the probe itself from IP geolocation (its
	// host never did): "country" or "city" (system tags
	// system-auto-geoip-country, -city); "" when the host set it.
	AutoGeo string
	Anchor  bool
}

// ProbeBatch is the most probe ids asked for in one request (the API's
// largest page).
const ProbeBatch = 500

// probeFields are the fields asked of /api/v2/probes/.
const probeFields = "id,asn_v4,asn_v6,country_code,geometry,address_v4,address_v6,prefix_v4,prefix_v6,is_anchor,tags"

// Probes returns the metadata of the given probes, fetched ProbeBatch ids
// per request (id__in) and following the API's pages. Ids the API does not
// know are missing from the result; the order follows the ids.
func (c *Client) Probes(ctx context.Context, ids []int) ([]Probe, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	base, err := c.base()
	if err != nil {
		return nil, err
	}
	found := make(map[int]Probe, len(ids))
	for start := 0; start < len(ids); start += ProbeBatch {
		batch := ids[start:min(start+ProbeBatch, len(ids))]
		q := url.Values{}
		q.Set("id__in", joinInts(batch))
		q.Set("fields", probeFields)
		q.Set("page_size", strconv.Itoa(ProbeBatch))
		r := request{op: fmt.Sprintf("probes %s", summarizeIDs(batch)), method: http.MethodGet, path: "/api/v2/probes/", query: q, retryAll5xx: true}
		for pages := 0; ; pages++ {
			if pages == 100 {
				return nil, &MalformedError{Op: r.op, StatusCode: http.StatusOK, Err: fmt.Errorf("more than %d pages", pages)}
			}
			resp, err := c.send(ctx, r)
			if err != nil {
				return nil, err
			}
			page, err := parseProbePage(io.LimitReader(resp.Body, 64<<20))
			resp.Body.Close()
			if err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("atlas %s: %w", r.op, ctx.Err())
				}
				return nil, &MalformedError{Op: r.op, StatusCode: resp.StatusCode, Err: err}
			}
			for _, p := range page.probes {
				if _, asked := slices.BinarySearch(batch, p.ID); asked {
					found[p.ID] = p
				}
			}
			if page.next == "" {
				break
			}
			// Follow the API's next link, but only on the API itself: the
			// key must never travel to a host a reply names.
			next, err := base.Parse(page.next)
			if err != nil || next.Scheme != base.Scheme || next.Host != base.Host || !strings.HasPrefix(next.Path, "/api/v2/probes") {
				return nil, &MalformedError{Op: r.op, StatusCode: resp.StatusCode, Err: fmt.Errorf("next page %q is not on %s", cleanText(page.next), base.Host)}
			}
			r.path, r.query = next.Path, next.Query()
		}
	}
	out := make([]Probe, 0, len(found))
	for _, id := range ids {
		if p, ok := found[id]; ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// summarizeIDs names a batch of ids in an error message.
func summarizeIDs(ids []int) string {
	switch len(ids) {
	case 0:
		return "(none)"
	case 1:
		return strconv.Itoa(ids[0])
	}
	return fmt.Sprintf("%d…%d (%d ids)", ids[0], ids[len(ids)-1], len(ids))
}

type probePage struct {
	probes []Probe
	next   string
}

// parseProbePage reads one page of /api/v2/probes/: {"count","next",
// "results":[...]}. Values of the wrong shape are dropped, not trusted:
// a malformed address or a location off the globe is unknown.
func parseProbePage(r io.Reader) (probePage, error) {
	var raw struct {
		Next    *string    `json:"next"`
		Results []rawProbe `json:"results"`
	}
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return probePage{}, err
	}
	if raw.Results == nil {
		return probePage{}, fmt.Errorf("no results array")
	}
	page := probePage{next: deref(raw.Next), probes: make([]Probe, 0, len(raw.Results))}
	for i, rp := range raw.Results {
		p, err := rp.probe()
		if err != nil {
			return probePage{}, fmt.Errorf("probe %d of the page: %w", i, err)
		}
		page.probes = append(page.probes, p)
	}
	return page, nil
}

// rawProbe is a probe object as the API writes it.
type rawProbe struct {
	ID        *int     `json:"id"`
	ASNv4     *float64 `json:"asn_v4"`
	ASNv6     *float64 `json:"asn_v6"`
	Country   *string  `json:"country_code"`
	AddressV4 *string  `json:"address_v4"`
	AddressV6 *string  `json:"address_v6"`
	PrefixV4  *string  `json:"prefix_v4"`
	PrefixV6  *string  `json:"prefix_v6"`
	Anchor    *bool    `json:"is_anchor"`
	// Tags are objects with a slug in the API, slugs in the probe archive.
	Tags     []json.RawMessage `json:"tags"`
	Geometry *struct {
		Type        string    `json:"type"`
		Coordinates []float64 `json:"coordinates"`
	} `json:"geometry"`
	// The probe archive (the daily dump) has plain coordinates instead.
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
}

func (raw rawProbe) probe() (Probe, error) {
	if raw.ID == nil || *raw.ID <= 0 {
		return Probe{}, fmt.Errorf("no probe id")
	}
	p := Probe{ID: *raw.ID, ASNv4: asn(raw.ASNv4), ASNv6: asn(raw.ASNv6), Anchor: deref(raw.Anchor)}
	if cc := strings.ToUpper(deref(raw.Country)); len(cc) == 2 && cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z' {
		p.Country = cc
	}
	p.AddressV4 = addr(raw.AddressV4, true)
	p.AddressV6 = addr(raw.AddressV6, false)
	p.PrefixV4 = prefix(raw.PrefixV4, true)
	p.PrefixV6 = prefix(raw.PrefixV6, false)
	for _, t := range raw.Tags {
		var slug string
		if json.Unmarshal(t, &slug) != nil {
			var o struct{ Slug string }
			json.Unmarshal(t, &o)
			slug = o.Slug
		}
		switch slug {
		case geo.TagAutoGeoCountry:
			p.AutoGeo = "country"
		case geo.TagAutoGeoCity:
			if p.AutoGeo == "" {
				p.AutoGeo = "city"
			}
		}
	}
	// GeoJSON order: longitude, latitude.
	if g := raw.Geometry; g != nil && g.Type == "Point" && len(g.Coordinates) == 2 {
		lon, lat := g.Coordinates[0], g.Coordinates[1]
		if lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 {
			p.Latitude, p.Longitude, p.HasLocation = lat, lon, true
		}
	} else if raw.Latitude != nil && raw.Longitude != nil {
		lat, lon := *raw.Latitude, *raw.Longitude
		if lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 {
			p.Latitude, p.Longitude, p.HasLocation = lat, lon, true
		}
	}
	return p, nil
}

func asn(f *float64) uint32 {
	if f == nil || *f < 1 || *f > math.MaxUint32 || *f != math.Trunc(*f) {
		return 0
	}
	return uint32(*f)
}

func addr(s *string, v4 bool) netip.Addr {
	if s == nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(*s)
	if err != nil || a.Zone() != "" || a.Is4() != v4 {
		return netip.Addr{}
	}
	return a
}

func prefix(s *string, v4 bool) netip.Prefix {
	if s == nil {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(*s)
	if err != nil || p.Addr().Is4() != v4 {
		return netip.Prefix{}
	}
	return p.Masked()
}

// ProbesFile is the name of the probes' metadata among saved results.
const ProbesFile = "probes.json"

// WriteProbes writes probes as a JSON array of objects in the shape
// /api/v2/probes/ serves them (the fields Probes asks for), so a saved
// file reads back with ReadProbes, or with any tool that reads the API.
func WriteProbes(w io.Writer, probes []Probe) error {
	out := make([]map[string]any, 0, len(probes))
	for _, p := range probes {
		o := map[string]any{"id": p.ID, "asn_v4": nullASN(p.ASNv4), "asn_v6": nullASN(p.ASNv6),
			"country_code": nullString(p.Country), "address_v4": nullAddr(p.AddressV4), "address_v6": nullAddr(p.AddressV6),
			"prefix_v4": nullPrefix(p.PrefixV4), "prefix_v6": nullPrefix(p.PrefixV6), "is_anchor": p.Anchor, "geometry": nil}
		switch p.AutoGeo {
		case "country":
			o["tags"] = []map[string]string{{"slug": geo.TagAutoGeoCountry}}
		case "city":
			o["tags"] = []map[string]string{{"slug": geo.TagAutoGeoCity}}
		}
		if p.HasLocation {
			o["geometry"] = map[string]any{"type": "Point", "coordinates": []float64{p.Longitude, p.Latitude}}
		}
		out = append(out, o)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

// Limits of a probes file: RIPE Atlas has tens of thousands of probes, a
// probe object is some hundred bytes. A file past them is refused while it
// is read.
const (
	maxProbesFile  = 64 << 20
	maxProbeObject = 64 << 10
	maxProbes      = 200_000
)

// ReadProbes reads probe metadata: a JSON array of /api/v2/probes/ objects
// (what WriteProbes writes), one page of that endpoint ({"results": [...]}),
// or the RIPE Atlas probe archive's daily dump ({"meta": …, "objects":
// [...]}, with latitude and longitude instead of a geometry). It is
// streamed, one object at a time; a probe listed twice is kept once (the
// last one read, where the first was).
func ReadProbes(r io.Reader) ([]Probe, error) {
	src := &iolimit.Reader{R: r, Max: maxProbesFile}
	dec := json.NewDecoder(src)
	pr := probeReader{src: src, dec: dec, index: map[int]int{}}
	tok, err := dec.Token()
	if err != nil {
		return nil, pr.err(err)
	}
	switch tok {
	case json.Delim('['):
		return pr.array()
	case json.Delim('{'):
	default:
		return nil, fmt.Errorf("%v where a list or a page of probes belongs", tok)
	}
	// A page of the API: "results" holds the probes; the archive's dump:
	// "objects". Other values are skipped.
	found := false
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, pr.err(err)
		}
		if key == "results" || key == "objects" {
			if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
				return nil, fmt.Errorf("%s: not a list", key)
			}
			if _, err := pr.array(); err != nil {
				return nil, err
			}
			found = true
			continue
		}
		var skip json.RawMessage
		pr.limit(maxProbeObject)
		if err := dec.Decode(&skip); err != nil {
			return nil, pr.err(err)
		}
	}
	if !found {
		return nil, errors.New("no results (API page) or objects (probe archive) array")
	}
	return pr.out, nil
}

type probeReader struct {
	src   *iolimit.Reader
	dec   *json.Decoder
	out   []Probe
	index map[int]int // probe id → place in out
	n     int         // objects read
}

// limit lets the decoder read at most n more bytes past its position
// (within the file's limit).
func (pr *probeReader) limit(n int64) {
	pr.src.Max = min(pr.dec.InputOffset()+n, maxProbesFile)
}

// err names the limit a read ran into.
func (pr *probeReader) err(err error) error {
	if !errors.Is(err, iolimit.ErrLimit) {
		return err
	}
	if pr.src.Max >= maxProbesFile {
		return fmt.Errorf("larger than %d MB: not RIPE Atlas probe metadata", maxProbesFile>>20)
	}
	return fmt.Errorf("probe %d: larger than %d KB: not RIPE Atlas probe metadata", pr.n, maxProbeObject>>10)
}

// array reads the objects of a list whose '[' was read, and its ']'.
func (pr *probeReader) array() ([]Probe, error) {
	for pr.dec.More() {
		var raw rawProbe
		pr.limit(maxProbeObject)
		if err := pr.dec.Decode(&raw); err != nil {
			return nil, pr.err(err)
		}
		p, err := raw.probe()
		if err != nil {
			return nil, fmt.Errorf("probe %d: %w", pr.n, err)
		}
		pr.n++
		if i, ok := pr.index[p.ID]; ok {
			pr.out[i] = p
			continue
		}
		if len(pr.out) == maxProbes {
			return nil, fmt.Errorf("more than %d probes: not RIPE Atlas probe metadata", maxProbes)
		}
		pr.index[p.ID] = len(pr.out)
		pr.out = append(pr.out, p)
	}
	if _, err := pr.dec.Token(); err != nil { // ']'
		return nil, pr.err(err)
	}
	return pr.out, nil
}

func nullASN(a uint32) any {
	if a == 0 {
		return nil
	}
	return a
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullAddr(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}

func nullPrefix(p netip.Prefix) any {
	if !p.IsValid() {
		return nil
	}
	return p.String()
}

// Origin is the probe's network as the catchment model names a vantage's:
// the AS of its address of family f (none when Atlas does not know it) and
// the country the probe is in.
func (p Probe) Origin(f catchment.Family) catchment.Origin {
	asn := p.ASNv4
	if f == catchment.IPv6 {
		asn = p.ASNv6
	}
	o := catchment.Origin{Country: p.Country}
	if asn != 0 {
		o.ASNs = []uint32{asn}
	}
	return o
}

// Location is where the probe is, and whether that position is
// approximate (geo.Approximate: Atlas placed it at country level, or it
// sits on its country's centroid); the zero Point when unknown or not
// Valid (0,0).
func (p Probe) Location() (geo.Point, bool) {
	pt := geo.Point{Lat: p.Latitude, Lon: p.Longitude}
	if !p.HasLocation || !pt.Valid() {
		return geo.Point{}, false
	}
	var tags []string
	if p.AutoGeo == "country" {
		tags = []string{geo.TagAutoGeoCountry}
	}
	approx, _ := geo.Approximate(p.Country, pt, tags)
	return pt, approx
}

// IsProbes tells probe metadata (what WriteProbes writes: an array of
// /api/v2/probes/ objects, one page of that endpoint, or the probe
// archive's dump) from measurement results by the start of the content:
// the first object has an "id" and none of the fields every result
// carries ("type", "prb_id", "msm_id").
func IsProbes(head []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(head))
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	switch tok {
	case json.Delim('['):
	case json.Delim('{'):
		// An API page: find "results", then its first element; the
		// archive's dump: "objects" after "meta".
		for {
			key, err := dec.Token()
			if err != nil {
				return false
			}
			if key == "results" || key == "objects" {
				if t, err := dec.Token(); err != nil || t != json.Delim('[') {
					return false
				}
				break
			}
			// A page or a dump has nothing but these keys.
			if k, ok := key.(string); !ok || (k != "count" && k != "next" && k != "previous" && k != "meta") {
				return false
			}
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return false
			}
		}
	default:
		return false
	}
	var first map[string]json.RawMessage
	if dec.Decode(&first) != nil {
		return false
	}
	_, id := first["id"]
	_, typ := first["type"]
	_, prb := first["prb_id"]
	_, msm := first["msm_id"]
	return id && !typ && !prb && !msm
}

// Describe fills in the vantages of observations from RIPE Atlas probes'
// metadata (their ids to probes): a probe's AS of the target's family and
// its country where no origin is known, its position where none is known.
// Observations of other vantage points are left alone.
func Describe(obs []catchment.Observation, probes map[int]Probe) {
	for i := range obs {
		v := &obs[i].Vantage
		p, ok := probes[v.ProbeID]
		if !ok || v.ProbeID == 0 {
			continue
		}
		if len(v.Origin.ASNs) == 0 {
			v.Origin = p.Origin(obs[i].Family())
		}
		if !v.Location.Valid() {
			v.Location, v.LocationApproximate = p.Location()
		}
	}
}
