package cli

import (
	"fmt"
	"strings"

	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/spf13/cobra"
)

// locationValue is --location: where the vantage point is, as LAT,LON in
// decimal degrees or an IATA code (an airport or a metropolitan area: AMS,
// LON) that the places table locates. Recorded in the document's vantage,
// it places the vantage on compare's map and in its speed-of-light check.
type locationValue struct {
	set   bool
	point geo.Point
	place string // IATA code, when given as one
}

func (l *locationValue) String() string {
	switch {
	case !l.set:
		return ""
	case l.place != "":
		return l.place
	}
	return l.point.String()
}

func (l *locationValue) Type() string { return "LAT,LON|IATA" }

func (l *locationValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if len(s) == 3 && !strings.Contains(s, ",") {
		p, ok := geo.LookupIATA(s)
		if !ok {
			return fmt.Errorf("%q is not an IATA code of the places table (an airport or city code such as AMS or LON), nor LAT,LON", s)
		}
		*l = locationValue{set: true, point: p.Point, place: p.Code}
		return nil
	}
	p, err := geo.ParsePoint(s)
	if err != nil {
		return fmt.Errorf("%v (or give an IATA code such as AMS)", err)
	}
	*l = locationValue{set: true, point: p}
	return nil
}

// dto is the location as the document records it; nil when not given.
func (l *locationValue) dto() *report.Location {
	if !l.set {
		return nil
	}
	return &report.Location{Lat: l.point.Lat, Lon: l.point.Lon, Place: l.place}
}

// addLocationFlag gives a measuring command --location.
func addLocationFlag(cmd *cobra.Command, g *globalOptions) {
	cmd.Flags().Var(&g.location, "location", "where this vantage point is: LAT,LON or an IATA code (AMS); recorded in the document for compare's map and speed-of-light check")
}
