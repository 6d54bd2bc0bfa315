package atlas

import (
	"net/netip"
	"testing"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/geo"
)

// Describe names a probe's vantage by its metadata — the AS of the
// target's family, the country, the position — where the results did not,
// and leaves other vantages and what was known alone.
func TestDescribe(t *testing.T) {
	probes := map[int]Probe{
		6036: {ID: 6036, ASNv4: 64500, ASNv6: 64501, Country: "DE", Latitude: 50.1, Longitude: 8.6, HasLocation: true},
	}
	known := catchment.Origin{ASNs: []uint32{64999}}
	there := geo.Point{Lat: 1, Lon: 2}
	obs := []catchment.Observation{
		{Vantage: catchment.Vantage{ProbeID: 6036}, Target: netip.MustParseAddr("192.0.2.53")},
		{Vantage: catchment.Vantage{ProbeID: 6036}, Target: netip.MustParseAddr("2001:db8::53")},
		{Vantage: catchment.Vantage{ProbeID: 6036, Origin: known, Location: there}, Target: netip.MustParseAddr("192.0.2.53")},
		{Vantage: catchment.Vantage{ProbeID: 7}, Target: netip.MustParseAddr("192.0.2.53")},
		{Vantage: catchment.Vantage{Key: "host:x"}, Target: netip.MustParseAddr("192.0.2.53")},
	}
	Describe(obs, probes)
	if v := obs[0].Vantage; v.Origin.AS() != 64500 || v.Origin.Country != "DE" || v.Location != (geo.Point{Lat: 50.1, Lon: 8.6}) {
		t.Errorf("IPv4 target: %+v", v)
	}
	if v := obs[1].Vantage; v.Origin.AS() != 64501 {
		t.Errorf("IPv6 target: AS %d, want the probe's IPv6 AS", v.Origin.AS())
	}
	if v := obs[2].Vantage; v.Origin.AS() != 64999 || v.Location != there {
		t.Errorf("known origin and place replaced: %+v", v)
	}
	if obs[3].Vantage.Origin.AS() != 0 || obs[4].Vantage.Location.Valid() {
		t.Errorf("a vantage without metadata was described: %+v, %+v", obs[3].Vantage, obs[4].Vantage)
	}
}
