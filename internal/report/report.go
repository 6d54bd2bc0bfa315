package report

import (
	"time"
)

// Schema names the JSON contract. Within v1 fields are only added.
const Schema = "anycheck/v1"

// Kinds of document.
const (
	KindID    = "id"
	KindTrace = "trace"
	KindWhois = "whois"
)

// Document is the JSON envelope every command writes.
type Document struct {
	Schema  string    `json:"schema"`
	Kind    string    `json:"kind"`
	Tool    Tool      `json:"tool"`
	Started string    `json:"started"` // RFC 3339, UTC
	Vantage Vantage   `json:"vantage"`
	Results any       `json:"results"` // []IDTarget, []TracePath or []WhoisOrigin, by Kind
	Errors  []Problem `json:"errors"`
	// Interrupted is true when the run was stopped (Ctrl-C) before it finished;
	// the results hold what was measured until then.
	Interrupted bool `json:"interrupted,omitempty"`
	// Catchment is the summary of a compare document (kind "compare").
	Catchment *CompareSummary `json:"catchment,omitempty"`
	// Census, CensusSend and CensusListen are the summaries of the census
	// commands' documents (kinds "census", "census-send", "census-listen").
	Census       *CensusSummary       `json:"census,omitempty"`
	CensusSend   *CensusSendSummary   `json:"census_send,omitempty"`
	CensusListen *CensusListenSummary `json:"census_listen,omitempty"`
}

// Tool identifies the program that wrote the document.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Vantage describes where the measurement was taken from.
type Vantage struct {
	Hostname string `json:"hostname,omitempty"`
	// Label is the vantage's name as the operator gave it (--label); absent
	// without it, when the vantage goes by its host name.
	Label    string    `json:"label,omitempty"`
	Sources  []string  `json:"sources"`            // local address:port of every flow used
	Location *Location `json:"location,omitempty"` // --location; absent when not given
}

// Location is where a vantage point is, as the operator said (--location).
type Location struct {
	Lat   float64 `json:"lat"`
	Lon   float64 `json:"lon"`
	Place string  `json:"place,omitempty"` // the IATA code given instead of coordinates
}

// Problem is a target-level or enrichment-level failure.
type Problem struct {
	Target  string `json:"target,omitempty"`
	Stage   string `json:"stage"` // "resolve", "probe", "trace", "whois", "rdns"
	Message string `json:"message"`
}

// New starts a document of the given kind.
func New(kind string, tool Tool, started time.Time, hostname string) *Document {
	return &Document{
		Schema:  Schema,
		Kind:    kind,
		Tool:    tool,
		Started: started.UTC().Format(time.RFC3339),
		Vantage: Vantage{Hostname: hostname, Sources: []string{}},
		Errors:  []Problem{},
	}
}

// AddSource records a flow's local endpoint once.
func (d *Document) AddSource(s string) {
	if s == "" {
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
