package report

import (
	"net/netip"
	"time"
)

// Schema names the JSON contract this anycheck writes. Within a version
// fields are only added; SchemaV1 documents (the first contract) are still
// read by compare.
const (
	Schema   = "anycheck/v2"
	SchemaV1 = "anycheck/v1"
)

// Kinds of document.
const (
	KindID    = "id"
	KindTrace = "trace"
	KindWhois = "whois"
)

// Document is the JSON envelope every command writes.
type Document struct {
	Schema  string  `json:"schema"`                // the contract: "anycheck/v2"
	Kind    string  `json:"kind"`                  // the command that wrote it; it decides what results hold
	Tool    Tool    `json:"tool"`                  // the program and its version
	Started string  `json:"started" schema:"time"` // when the run started
	Vantage Vantage `json:"vantage"`               // where it measured from
	// Results are one object per target (per line of the catchment table
	// for compare, per client prefix for census), by kind: id_target,
	// trace_result, trace_sweep, watch_target, whois_result, compare_row,
	// census_client, census_sent, census_reply.
	Results any `json:"results"`
	// Errors are the failures of the run: a target that could not be
	// measured, a lookup that did not answer.
	Errors []Problem `json:"errors"`
	// Interrupted is true when the run was stopped (Ctrl-C) before it finished;
	// the results hold what was measured until then.
	Interrupted bool `json:"interrupted,omitempty"`
	// Catchment is the summary of a compare document (kind "compare").
	Catchment *CompareSummary `json:"catchment,omitempty"`
	// Census is the summary of a census document (kind "census").
	Census *CensusSummary `json:"census,omitempty"`
	// CensusSend is the summary of a census sender's document (kind
	// "census-send").
	CensusSend *CensusSendSummary `json:"census_send,omitempty"`
	// CensusListen is the summary of a census listener's document (kind
	// "census-listen").
	CensusListen *CensusListenSummary `json:"census_listen,omitempty"`
}

// Tool identifies the program that wrote the document.
type Tool struct {
	Name    string `json:"name"`    // "anycheck"
	Version string `json:"version"` // its version ("dev" for a build from source)
}

// Vantage describes where the measurement was taken from.
type Vantage struct {
	Hostname string `json:"hostname,omitempty"` // the host name of the machine that measured
	// Label is the vantage's name as the operator gave it (--label); absent
	// without it, when the vantage goes by its host name.
	Label string `json:"label,omitempty"`
	// Sources are the bound source addresses of the flows used (never
	// 0.0.0.0 or ::); each flow's port is in its flow.
	Sources  []string  `json:"sources"`
	Location *Location `json:"location,omitempty"` // --location; absent when not given
}

// Location is where a vantage point is, as the operator said (--location).
type Location struct {
	Lat   float64 `json:"lat"`             // latitude, degrees north
	Lon   float64 `json:"lon"`             // longitude, degrees east
	Place string  `json:"place,omitempty"` // the IATA code given instead of coordinates
}

// Problem is a target-level or enrichment-level failure.
type Problem struct {
	Target  string `json:"target,omitempty"` // the target it concerns, as the user wrote it; absent for the run as a whole
	Stage   string `json:"stage"`            // "resolve", "probe", "trace", "whois", "rdns", …
	Message string `json:"message"`          // what went wrong, as said on stderr
}

// New starts a document of the given kind.
func New(kind string, tool Tool, started time.Time, hostname string) *Document {
	return &Document{
		Schema:  Schema,
		Kind:    kind,
		Tool:    tool,
		Started: Time(started),
		Vantage: Vantage{Hostname: hostname, Sources: []string{}},
		Errors:  []Problem{},
	}
}

// AddSource records a flow's local endpoint once.
func (d *Document) AddSource(s string) {
	// A flow's "address:port", or an address: the address is kept, an
	// unspecified one (a socket bound to any address) never.
	if ap, err := netip.ParseAddrPort(s); err == nil {
		s = ap.Addr().Unmap().String()
	}
	if a, err := netip.ParseAddr(s); err != nil || a.IsUnspecified() {
		return
	}
	for _, have := range d.Vantage.Sources {
		if have == s {
			return
		}
	}
	d.Vantage.Sources = append(d.Vantage.Sources, s)
}

// Ms converts a duration to the float milliseconds used on the wire,
// rounded to microseconds.
func Ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}
