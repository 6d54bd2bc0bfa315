package report

// Record types of the JSONL stream (-o jsonl). Every line is one Record.
const (
	RecordHop    = "hop"    // a trace hop that just became final
	RecordResult = "result" // one finished target
	RecordEnd    = "end"    // the run is over: vantage, errors, interruption
)

// Record is one line of `-o jsonl`: self-describing (schema, kind, type) so
// a consumer can process lines as they arrive.
type Record struct {
	Schema      string    `json:"schema"`
	Kind        string    `json:"kind"`
	Type        string    `json:"type"`
	Target      string    `json:"target,omitempty"`
	Sport       int       `json:"sport,omitempty"` // a sweep's hop: the flow's source port (icmp: echo identifier)
	Hop         *HopDTO   `json:"hop,omitempty"`
	Result      any       `json:"result,omitempty"`
	Tool        *Tool     `json:"tool,omitempty"`
	Started     string    `json:"started,omitempty"`
	Vantage     *Vantage  `json:"vantage,omitempty"`
	Errors      []Problem `json:"errors,omitempty"`
	Interrupted bool      `json:"interrupted,omitempty"`
	// Catchment is the compare summary, on a compare stream's end record.
	Catchment *CompareSummary `json:"catchment,omitempty"`

	// Event is one `watch` event, written as it happens (type "event").
	Event *WatchEvent `json:"event,omitempty"`

	// Sent is one echo request of `census send` (type "sent"), Reply one
	// echo reply of `census listen` (type "reply"), written as they happen.
	Sent  *CensusSent  `json:"sent,omitempty"`
	Reply *CensusReply `json:"reply,omitempty"`
	// The census summaries, on the end record of their streams.
	Census       *CensusSummary       `json:"census,omitempty"`
	CensusSend   *CensusSendSummary   `json:"census_send,omitempty"`
	CensusListen *CensusListenSummary `json:"census_listen,omitempty"`
}

// HopRecord is the streaming line for one hop of a trace.
func (d *Document) HopRecord(target string, h HopDTO) Record {
	return Record{Schema: d.Schema, Kind: d.Kind, Type: RecordHop, Target: target, Hop: &h}
}

// FlowHopRecord is the streaming line for one hop of one flow of a sweep.
func (d *Document) FlowHopRecord(target string, sport int, h HopDTO) Record {
	r := d.HopRecord(target, h)
	r.Sport = sport
	return r
}

// ResultRecord is the streaming line for one finished target.
func (d *Document) ResultRecord(target string, result any) Record {
	return Record{Schema: d.Schema, Kind: d.Kind, Type: RecordResult, Target: target, Result: result}
}

// EndRecord closes a stream.
func (d *Document) EndRecord() Record {
	tool, vantage := d.Tool, d.Vantage
	return Record{Schema: d.Schema, Kind: d.Kind, Type: RecordEnd, Tool: &tool, Started: d.Started,
		Vantage: &vantage, Errors: append([]Problem{}, d.Errors...), Interrupted: d.Interrupted, Catchment: d.Catchment,
		Census: d.Census, CensusSend: d.CensusSend, CensusListen: d.CensusListen}
}
