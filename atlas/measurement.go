package atlas

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/anycheck/anycheck/internal/wait"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Definition is one entry of a creation request's "definitions": a
// DNSDefinition or a TracerouteDefinition.
type Definition interface {
	// MeasurementType is the API's "type": "dns", "traceroute".
	MeasurementType() string
}

// DNSDefinition is a DNS measurement sent to Target (not to the probe's
// resolver). Every field is written, false ones included, so the request
// says exactly what is asked rather than leaning on the API's defaults.
type DNSDefinition struct {
	AF               int    `json:"af"`
	Target           string `json:"target"`
	Description      string `json:"description"`
	QueryClass       string `json:"query_class"` // "CHAOS", "IN"
	QueryType        string `json:"query_type"`  // "TXT"
	QueryArgument    string `json:"query_argument"`
	Protocol         string `json:"protocol"` // "UDP", "TCP"
	SetNSIDBit       bool   `json:"set_nsid_bit"`
	SetRDBit         bool   `json:"set_rd_bit"`
	UseProbeResolver bool   `json:"use_probe_resolver"`
	IncludeABuf      bool   `json:"include_abuf"`
	ResolveOnProbe   bool   `json:"resolve_on_probe"`
}

// MeasurementType implements Definition.
func (DNSDefinition) MeasurementType() string { return "dns" }

// MarshalJSON writes the definition with its "type".
func (d DNSDefinition) MarshalJSON() ([]byte, error) {
	type plain DNSDefinition
	return json.Marshal(struct {
		Type string `json:"type"`
		plain
	}{"dns", plain(d)})
}

// TracerouteDefinition is a traceroute to Target. Paris is the number of
// Paris flow variations the probes cycle through (0 = classic traceroute);
// Port is the destination port of TCP traceroutes only: the probe firmware
// sends UDP traceroutes to port 33434+paris_id whatever is asked.
type TracerouteDefinition struct {
	AF             int    `json:"af"`
	Target         string `json:"target"`
	Description    string `json:"description"`
	Protocol       string `json:"protocol"` // "UDP", "ICMP", "TCP"
	Paris          int    `json:"paris"`
	Port           int    `json:"port,omitempty"`
	ResolveOnProbe bool   `json:"resolve_on_probe"`
}

// MeasurementType implements Definition.
func (TracerouteDefinition) MeasurementType() string { return "traceroute" }

// MarshalJSON writes the definition with its "type".
func (d TracerouteDefinition) MarshalJSON() ([]byte, error) {
	type plain TracerouteDefinition
	return json.Marshal(struct {
		Type string `json:"type"`
		plain
	}{"traceroute", plain(d)})
}

// ProbeSelection is one entry of a creation request's "probes": Requested
// probes of Type ("area", "country", "asn", "prefix", "probes", "msm")
// matching Value. The API adds up the entries.
type ProbeSelection struct {
	Requested int    `json:"requested"`
	Type      string `json:"type"`
	Value     any    `json:"value"` // a string, or a number for "asn" and "msm"
}

// Probe selection types.
const (
	SelectArea    = "area"
	SelectCountry = "country"
	SelectASN     = "asn"
	SelectPrefix  = "prefix"
	SelectProbes  = "probes"
	SelectMsm     = "msm"
)

// Areas are the values of an "area" selection.
var Areas = []string{"WW", "West", "North-Central", "South-Central", "North-East", "South-East"}

// SameProbesAs selects the probes of an earlier measurement: n is how many
// it asked for.
func SameProbesAs(msm, n int) ProbeSelection {
	return ProbeSelection{Requested: n, Type: SelectMsm, Value: msm}
}

// CreateRequest is the body of POST /api/v2/measurements/. All definitions
// of one request share the probe selection and the start time.
type CreateRequest struct {
	Definitions []Definition     `json:"definitions"`
	Probes      []ProbeSelection `json:"probes"`
	IsOneoff    bool             `json:"is_oneoff"`
}

// Create posts a creation request and returns the new measurement ids, one
// per definition, in the order of the definitions.
func (c *Client) Create(ctx context.Context, cr CreateRequest) ([]int, error) {
	body, err := json.Marshal(cr)
	if err != nil {
		return nil, fmt.Errorf("atlas create measurements: %w", err)
	}
	const op = "create measurements"
	var out struct {
		Measurements []int `json:"measurements"`
	}
	if err := c.doJSON(ctx, request{op: op, method: http.MethodPost, path: "/api/v2/measurements/", body: body, needsKey: true}, &out); err != nil {
		return nil, err
	}
	if len(out.Measurements) != len(cr.Definitions) {
		return out.Measurements, &MalformedError{Op: op, StatusCode: http.StatusCreated,
			Err: fmt.Errorf("%d measurement ids for %d definitions", len(out.Measurements), len(cr.Definitions))}
	}
	for _, id := range out.Measurements {
		if id <= 0 {
			return out.Measurements, &MalformedError{Op: op, StatusCode: http.StatusCreated, Err: fmt.Errorf("measurement id %d", id)}
		}
	}
	return out.Measurements, nil
}

// Status is a measurement's state as the API names it.
type Status struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// Measurement states (status.id).
const (
	StatusSpecified       = 0
	StatusScheduled       = 1
	StatusOngoing         = 2
	StatusStopped         = 4
	StatusForcedToStop    = 5
	StatusNoSuitableProbe = 6
	StatusFailed          = 7
)

// Done reports a state that will bring no more results: stopped (on
// schedule or by request), forced to stop (out of credits), no suitable
// probes, failed, and the later states (denied, archived).
func (s Status) Done() bool { return s.ID >= StatusStopped }

// Measurement is the status part of GET /api/v2/measurements/ID/.
type Measurement struct {
	ID     int    `json:"id"`
	Type   string `json:"-"`
	AF     int    `json:"af"`
	Target string `json:"target"`
	Status Status `json:"status"`
	// ProbesRequested and ProbesScheduled count the probes asked for and
	// the probes Atlas gave the measurement; Participants counts the
	// probes taking part (Atlas's participant_count).
	ProbesRequested int  `json:"probes_requested"`
	ProbesScheduled int  `json:"probes_scheduled"`
	Participants    int  `json:"participant_count"`
	IsOneoff        bool `json:"is_oneoff"`
	IsPublic        bool `json:"is_public"`
}

// UnmarshalJSON reads a measurement; "type" is a string in API v2 and an
// object {"id","name"} in older replies, numbers may be null.
func (m *Measurement) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID              int             `json:"id"`
		Type            json.RawMessage `json:"type"`
		AF              *int            `json:"af"`
		Target          *string         `json:"target"`
		Status          *Status         `json:"status"`
		ProbesRequested *int            `json:"probes_requested"`
		ProbesScheduled *int            `json:"probes_scheduled"`
		Participants    *int            `json:"participant_count"`
		IsOneoff        *bool           `json:"is_oneoff"`
		IsPublic        *bool           `json:"is_public"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = Measurement{ID: raw.ID, AF: deref(raw.AF), Target: cleanText(deref(raw.Target)),
		ProbesRequested: deref(raw.ProbesRequested), ProbesScheduled: deref(raw.ProbesScheduled),
		Participants: deref(raw.Participants), IsOneoff: deref(raw.IsOneoff), IsPublic: deref(raw.IsPublic)}
	if raw.Status != nil {
		m.Status = Status{ID: raw.Status.ID, Name: cleanText(raw.Status.Name)}
	} else {
		m.Status = Status{ID: -1, Name: "unknown"}
	}
	var s string
	var obj struct {
		Name string `json:"name"`
	}
	switch {
	case json.Unmarshal(raw.Type, &s) == nil:
		m.Type = strings.ToLower(cleanText(s))
	case json.Unmarshal(raw.Type, &obj) == nil:
		m.Type = strings.ToLower(cleanText(obj.Name))
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Measurement returns the state of measurement id.
func (c *Client) Measurement(ctx context.Context, id int) (Measurement, error) {
	op := fmt.Sprintf("measurement %d", id)
	var m Measurement
	err := c.doJSON(ctx, request{op: op, method: http.MethodGet, path: fmt.Sprintf("/api/v2/measurements/%d/", id), retryAll5xx: true}, &m)
	if err == nil && m.ID != id {
		return m, &MalformedError{Op: op, StatusCode: http.StatusOK, Err: fmt.Errorf("reply describes measurement %d", m.ID)}
	}
	return m, err
}

// WaitOptions tune Wait. The zero value polls after 5s, then backs off to
// one poll a minute.
type WaitOptions struct {
	Poll    time.Duration // first pause between polls (5s)
	MaxPoll time.Duration // longest pause (60s)
	// OnPoll, if set, gets the state of every measurement after each poll.
	OnPoll func([]Measurement)
}

// Wait polls the measurements until each one is Done, with pauses that
// grow from Poll to MaxPoll. It returns the last states seen; when ctx ends
// first (a deadline, an interrupt) they come with ctx's error.
func (c *Client) Wait(ctx context.Context, ids []int, o WaitOptions) ([]Measurement, error) {
	pause, maxPause := o.Poll, o.MaxPoll
	if pause <= 0 {
		pause = 5 * time.Second
	}
	if maxPause <= 0 {
		maxPause = time.Minute
	}
	pause = min(pause, maxPause)
	states := make([]Measurement, len(ids))
	for i, id := range ids {
		states[i] = Measurement{ID: id, Status: Status{ID: -1, Name: "unknown"}}
	}
	for {
		done := true
		for i, id := range ids {
			if states[i].Status.Done() {
				continue
			}
			m, err := c.Measurement(ctx, id)
			if err != nil {
				return states, err
			}
			states[i] = m
			done = done && m.Status.Done()
		}
		if o.OnPoll != nil {
			o.OnPoll(append([]Measurement(nil), states...))
		}
		if done {
			return states, nil
		}
		if err := wait.Sleep(ctx, pause); err != nil {
			return states, fmt.Errorf("atlas wait for measurements %s: %w", joinInts(ids), err)
		}
		pause = min(pause*2, maxPause)
	}
}

// Stop ends a measurement (DELETE /api/v2/measurements/ID/).
func (c *Client) Stop(ctx context.Context, id int) error {
	return c.doJSON(ctx, request{op: fmt.Sprintf("stop measurement %d", id), method: http.MethodDelete,
		path: fmt.Sprintf("/api/v2/measurements/%d/", id), needsKey: true, retryAll5xx: true}, nil)
}

// ResultsQuery narrows a results download. Zero values leave the API's
// defaults (every result, a JSON array).
type ResultsQuery struct {
	Start, Stop time.Time
	// Format is "json" (one array) or "txt" (one result per line).
	Format string
}

// Results opens the results of measurement id as the API streams them; the
// caller reads and closes the body. A failure before the first byte is
// retried like any read; one in the middle of the stream surfaces from Read.
func (c *Client) Results(ctx context.Context, id int, q ResultsQuery) (io.ReadCloser, error) {
	v := url.Values{}
	if !q.Start.IsZero() {
		v.Set("start", strconv.FormatInt(q.Start.Unix(), 10))
	}
	if !q.Stop.IsZero() {
		v.Set("stop", strconv.FormatInt(q.Stop.Unix(), 10))
	}
	if q.Format != "" {
		v.Set("format", q.Format)
	}
	resp, err := c.send(ctx, request{op: fmt.Sprintf("results of measurement %d", id), method: http.MethodGet,
		path: fmt.Sprintf("/api/v2/measurements/%d/results/", id), query: v, retryAll5xx: true, download: true})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func joinInts(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}
