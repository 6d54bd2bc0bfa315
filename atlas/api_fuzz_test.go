package atlas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/anycheck/anycheck/geo"
)

func TestParseProbePageDropsBadValues(t *testing.T) {
	page, err := parseProbePage(strings.NewReader(`{"count": 3, "next": null, "results": [
		{"id": 6001, "asn_v4": 64496, "asn_v6": null, "country_code": "nl", "address_v4": "198.51.100.7",
		 "address_v6": "2001:db8::7", "prefix_v4": "198.51.100.0/24", "prefix_v6": "2001:db8::/32",
		 "geometry": {"type": "Point", "coordinates": [4.89, 52.37]}, "is_anchor": true},
		{"id": 6002, "asn_v4": -5, "asn_v6": 4.5, "country_code": "Netherlands", "address_v4": "2001:db8::1",
		 "address_v6": "198.51.100.1", "prefix_v4": "nonsense", "geometry": {"type": "Point", "coordinates": [200, 10]}},
		{"id": 6003, "asn_v4": 4294967296, "geometry": null}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(page.probes) != 3 || page.next != "" {
		t.Fatalf("page %+v", page)
	}
	p := page.probes[0]
	if p.ASNv4 != 64496 || p.ASNv6 != 0 || p.Country != "NL" || p.AddressV4.String() != "198.51.100.7" ||
		p.PrefixV6.String() != "2001:db8::/32" || !p.HasLocation || p.Latitude != 52.37 || p.Longitude != 4.89 || !p.Anchor {
		t.Errorf("probe 6001: %+v", p)
	}
	q := page.probes[1]
	if q.ASNv4 != 0 || q.ASNv6 != 0 || q.Country != "" || q.AddressV4.IsValid() || q.AddressV6.IsValid() || q.PrefixV4.IsValid() || q.HasLocation {
		t.Errorf("probe 6002 kept values of the wrong shape: %+v", q)
	}
	if page.probes[2].ASNv4 != 0 {
		t.Errorf("an AS number past 32 bits was kept: %+v", page.probes[2])
	}
	for _, bad := range []string{`[]`, `{"results": null}`, `{"results": [{"asn_v4": 1}]}`, `{"results": [{"id": "x"}]}`, `{"results": [`} {
		if _, err := parseProbePage(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: parsed without error", bad)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "5": 5 * time.Second, " 120 ": 2 * time.Minute, "-3": 0, "soon": 0, "99999999": 24 * time.Hour,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second, "Wed, 31 Dec 2025 23:00:00 GMT": 0,
		// A date in year 9999 is capped like a number of seconds (it was
		// the longest duration, printed "2562047h47m16s").
		"Fri, 31 Dec 9999 23:59:59 GMT": 24 * time.Hour,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("Retry-After %q: %s, want %s", in, got, want)
		}
	}
}

func TestMeasurementUnmarshalOldAndNewShapes(t *testing.T) {
	var m Measurement
	if err := json.Unmarshal([]byte(`{"id": 7, "type": {"id": 8, "name": "DNS"}, "af": null, "status": {"id": 4, "name": "Stopped"},
		"probes_requested": null, "participant_count": 3}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "dns" || m.AF != 0 || !m.Status.Done() || m.Participants != 3 {
		t.Errorf("%+v", m)
	}
	if err := json.Unmarshal([]byte(`{"id": 7, "type": "traceroute"}`), &m); err != nil || m.Type != "traceroute" || m.Status.Done() {
		t.Errorf("%+v %v: a measurement without a status is not done", m, err)
	}
}

func FuzzParseProbePage(f *testing.F) {
	f.Add([]byte(`{"next": "https://atlas.example/api/v2/probes/?page=2", "results": [{"id": 1, "asn_v4": 64496, "country_code": "NL", "geometry": {"type": "Point", "coordinates": [4.8, 52.3]}}]}`))
	f.Add([]byte(`{"results": [{"id": 2, "address_v6": "2001:db8::1%eth0", "prefix_v6": "2001:db8::/129"}]}`))
	f.Add([]byte(`{"results": [{"id": 1e300, "asn_v4": 1e300, "geometry": {"coordinates": []}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		page, err := parseProbePage(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, p := range page.probes {
			if p.ID <= 0 {
				t.Fatalf("probe id %d accepted", p.ID)
			}
			if p.Country != "" && (len(p.Country) != 2 || strings.ToUpper(p.Country) != p.Country) {
				t.Fatalf("country %q", p.Country)
			}
			if p.AddressV4.IsValid() && !p.AddressV4.Is4() || p.AddressV6.IsValid() && !p.AddressV6.Is6() {
				t.Fatalf("address of the wrong family: %v %v", p.AddressV4, p.AddressV6)
			}
			if p.HasLocation && (p.Latitude < -90 || p.Latitude > 90 || p.Longitude < -180 || p.Longitude > 180) {
				t.Fatalf("location off the globe: %v %v", p.Latitude, p.Longitude)
			}
		}
	})
}

func FuzzParseAPIError(f *testing.F) {
	f.Add([]byte(`{"error": {"status": 400, "code": 104, "detail": "The following fields are invalid: target", "title": "Bad Request",
		"errors": [{"source": {"pointer": "/definitions/0/target"}, "detail": "This field is required."}]}}`))
	f.Add([]byte(`{"detail": "Authentication credentials were not provided."}`))
	f.Add([]byte("<html>502 Bad Gateway\r\n\x1b[0m</html>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := parseAPIError(b)
		e.Op, e.StatusCode = "test", 400
		msg := e.Error()
		for _, r := range msg {
			if unicode.IsControl(r) {
				t.Fatalf("control character %U in %q", r, msg)
			}
		}
		if len(e.Fields) > 9 {
			t.Fatalf("%d field errors kept", len(e.Fields))
		}
	})
}

func FuzzMeasurementJSON(f *testing.F) {
	f.Add([]byte(`{"id": 1001, "type": "dns", "af": 4, "status": {"id": 2, "name": "Ongoing"}, "probes_scheduled": 50, "participant_count": 20}`))
	f.Add([]byte(`{"id": 1, "type": {"name": "traceroute"}, "status": null, "target": "\u001b[2J"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Measurement
		if json.Unmarshal(b, &m) != nil {
			return
		}
		for _, s := range []string{m.Type, m.Target, m.Status.Name} {
			for _, r := range s {
				if unicode.IsControl(r) {
					t.Fatalf("control character in %q", s)
				}
			}
		}
	})
}

func TestWriteProbesReadsBack(t *testing.T) {
	page, err := parseProbePage(strings.NewReader(`{"results": [
		{"id": 6001, "asn_v4": 64496, "asn_v6": 64497, "country_code": "NL", "address_v4": "198.51.100.7",
		 "address_v6": "2001:db8::7", "prefix_v4": "198.51.100.0/24", "prefix_v6": "2001:db8::/32",
		 "geometry": {"type": "Point", "coordinates": [4.89, 52.37]}, "is_anchor": true},
		{"id": 6002}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteProbes(&b, page.probes); err != nil {
		t.Fatal(err)
	}
	back, err := ReadProbes(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[0] != page.probes[0] || back[1] != page.probes[1] {
		t.Errorf("read back %+v, want %+v", back, page.probes)
	}
	// A page of the API reads too.
	api, err := ReadProbes(strings.NewReader(`{"count": 1, "next": null, "results": [{"id": 9, "country_code": "DE"}]}`))
	if err != nil || len(api) != 1 || api[0].Country != "DE" {
		t.Errorf("API page: %+v %v", api, err)
	}
}

func FuzzReadProbes(f *testing.F) {
	f.Add([]byte(`[{"id": 6001, "asn_v4": 64496, "geometry": {"type": "Point", "coordinates": [4.89, 52.37]}}]`))
	f.Add([]byte(`{"results": [{"id": 1}]}`))
	f.Add([]byte(`[{"id": 1}, 7]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		probes, err := ReadProbes(bytes.NewReader(b))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteProbes(&out, probes); err != nil {
			t.Fatal(err)
		}
		again, err := ReadProbes(&out)
		if err != nil || len(again) != len(probes) {
			t.Fatalf("what WriteProbes wrote does not read back: %v", err)
		}
		for i := range probes {
			if again[i] != probes[i] {
				t.Fatalf("probe %d: %+v became %+v", i, probes[i], again[i])
			}
		}
	})
}

func TestIsProbesTellsMetadataFromResults(t *testing.T) {
	var saved bytes.Buffer
	WriteProbes(&saved, []Probe{{ID: 6001, Country: "NL"}})
	for in, want := range map[string]bool{
		saved.String(): true,
		`{"count": 2, "next": null, "previous": null, "results": [{"id": 1, "asn_v4": 3333}]}`: true,
		`[{"fw": 5080, "type": "dns", "prb_id": 6001, "msm_id": 1, "id": 7}]`:                  false,
		`{"fw": 5080, "type": "traceroute", "prb_id": 6001}` + "\n" + `{"type": "dns"}`:        false,
		`{"schema": "anycheck/v1", "kind": "trace", "results": [{"id": 1}]}`:                   false,
		`{"type": "dns", "results": [{"id": 1}]}`:                                              false,
		`[]`: false, `[{"prb_id": 1}]`: false, `not json`: false, ``: false,
	} {
		if got := IsProbes([]byte(in)); got != want {
			t.Errorf("IsProbes(%.60q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzIsProbes(f *testing.F) {
	f.Add([]byte(`[{"id": 1}]`))
	f.Add([]byte(`{"next": null, "results": [{"id": 1}]}`))
	f.Add([]byte(`[{"type": "dns", "prb_id": 1}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if IsProbes(b) && !bytes.Contains(b, []byte(`"id"`)) {
			t.Fatalf("%q taken for probe metadata without an id", b)
		}
	})
}

// Atlas's system tags say how it placed a probe whose host set no location;
// the API writes tags as objects, the daily probe archive as slugs. A probe
// placed at country level, or sitting on its country's centroid, is
// approximate; one its host placed, or Atlas at city level, is not.
func TestProbeLocationApproximate(t *testing.T) {
	nl, _ := geo.Centroid("NL")
	page, err := parseProbePage(strings.NewReader(fmt.Sprintf(`{"results": [
		{"id": 1, "country_code": "NL", "geometry": {"type": "Point", "coordinates": [4.89, 52.37]}, "tags": [{"name": "Home", "slug": "home"}]},
		{"id": 2, "country_code": "NL", "geometry": {"type": "Point", "coordinates": [4.89, 52.37]}, "tags": [{"name": "system: Auto GeoIP country", "slug": "system-auto-geoip-country"}]},
		{"id": 3, "country_code": "NL", "geometry": {"type": "Point", "coordinates": [4.89, 52.37]}, "tags": ["system-v3", "system-auto-geoip-city"]},
		{"id": 4, "country_code": "NL", "geometry": {"type": "Point", "coordinates": [%v, %v]}},
		{"id": 5, "country_code": "NL", "geometry": {"type": "Point", "coordinates": [0, 0]}},
		{"id": 6, "country_code": "NL", "tags": [7, {"slug": 3}, null]}]}`, nl.Lon+0.02, nl.Lat)))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		approx, located bool
		auto            string
	}{{false, true, ""}, {true, true, "country"}, {false, true, "city"}, {true, true, ""}, {false, false, ""}, {false, false, ""}} {
		p := page.probes[i]
		pt, approx := p.Location()
		if approx != want.approx || pt.Valid() != want.located || p.AutoGeo != want.auto {
			t.Errorf("probe %d: %v approximate %v auto %q; want approximate %v located %v auto %q", p.ID, pt, approx, p.AutoGeo, want.approx, want.located, want.auto)
		}
	}
	// The tag survives --save's probes.json.
	var b bytes.Buffer
	WriteProbes(&b, page.probes)
	back, _ := ReadProbes(&b)
	if back[1].AutoGeo != "country" || back[2].AutoGeo != "city" {
		t.Errorf("read back %+v", back[:3])
	}
}

// The probe archive sample of refdata (RIPE NCC's daily dump, 40 real
// probes): every probe has a position; none is approximate (one was placed
// by Atlas at city level, none at country level or on a centroid).
func TestProbeArchiveLocations(t *testing.T) {
	var f *os.File
	for _, d := range []string{os.Getenv("ANYCHECK_REFDATA"), "../../shared/refdata/atlas", "/work/shared/refdata/atlas"} {
		if d == "" {
			continue
		}
		if g, err := os.Open(filepath.Join(d, "probes_archive_sample_20181211.json")); err == nil {
			f = g
			break
		}
	}
	if f == nil {
		t.Skip("no refdata/atlas beside the repository")
	}
	defer f.Close()
	probes, err := ReadProbes(f)
	if err != nil {
		t.Fatal(err)
	}
	city := 0
	for _, p := range probes {
		pt, approx := p.Location()
		if !pt.Valid() || approx {
			t.Errorf("probe %d (%s): %v approximate %v", p.ID, p.Country, pt, approx)
		}
		if p.AutoGeo == "city" {
			city++
		}
	}
	if len(probes) != 40 || city != 1 {
		t.Errorf("%d probes, %d placed by Atlas at city level", len(probes), city)
	}
}
