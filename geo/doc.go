// Package geo is where things are: points on the globe and the distance
// between them, what a round-trip time allows (the speed-of-light check),
// an embedded table of places (airports and cities by IATA code), country
// centroids with the "location approximate" test for RIPE Atlas probes,
// latency-based enumeration and geolocation of anycast instances
// (iGreedy), and the land outlines a map is drawn from.
//
// The package is pure: no I/O beyond reading its embedded data (lazily, on
// first use, so a command that never asks where something is pays nothing
// at start-up), no printing, no globals that change. The data files are
// made by gendata (make geodata) from public-domain sources; see
// DATA.md for their origin and licences.
package geo
