package report

// Record types of the JSONL stream (-o jsonl). Every line is one Record.
const (
	RecordHop    = "hop"    // a trace hop that just became final
	RecordResult = "result" // one finished target
	RecordEnd    = "end"    // the run is over: vantage, errors, interruption
)

// Record is one line of `-o jsonl`: self-describing (schema, kind, type,
// and the vantage point it was measured from) so a consumer can process
// lines as they arrive, one at a time.
type Record struct {
	Schema string `json:"schema"` // the contract: "anycheck/v2"
	Kind   string `json:"kind"`   // the command that wrote it
	// Type is what the line carries: hop (a trace hop as soon as it is
	// final), event (a watch event as it happens), result (one finished
	// target, the same object as in a document's results), sent, reply
	// (census), end (the last line).
	Type string `json:"type"`
	// Vantage is where the run measures from, on every line: its label,
	// host name and location from the first line on, its sources as
	// they are known (all of them on the end line).
	Vantage *Vantage `json:"vantage" schema:"nonnull"`
	// Target is the target the line belongs to, as the user wrote it
	// (hop, event, result lines).
	Target string `json:"target,omitempty"`
	// Flow is the flow a sweep's hop belongs to.
	Flow *FlowDTO `json:"flow,omitempty"`
	Hop  *HopDTO  `json:"hop,omitempty"` // a hop line's hop
	// Result is a result line's result: the kind's result object.
	Result  any    `json:"result,omitempty"`
	Tool    *Tool  `json:"tool,omitempty"`                  // the end line's program and version
	Started string `json:"started,omitempty" schema:"time"` // the end line's start of the run
	// Errors are the end line's failures of the run (as a document's).
	Errors *[]Problem `json:"errors,omitempty"`
	// Interrupted is set on the end line of a run stopped by a signal.
	Interrupted bool `json:"interrupted,omitempty"`
	// Catchment is the compare summary, on a compare stream's end record.
	Catchment *CompareSummary `json:"catchment,omitempty"`

	// Event is one `watch` event, written as it happens (type "event").
	Event *WatchEvent `json:"event,omitempty"`

	// Sent is one echo request of `census send` (type "sent"), Reply one
	// echo reply of `census listen` (type "reply"), written as they happen.
	Sent  *CensusSent  `json:"sent,omitempty"`
	Reply *CensusReply `json:"reply,omitempty"` // a reply line's echo reply (census listen)
	// Census is the census summary, on the end line of a census stream.
	Census *CensusSummary `json:"census,omitempty"`
	// CensusSend is the sender's summary, on the end line of census send.
	CensusSend *CensusSendSummary `json:"census_send,omitempty"`
	// CensusListen is the listener's summary, on the end line of census
	// listen.
	CensusListen *CensusListenSummary `json:"census_listen,omitempty"`
}

// record starts a line of the stream: its envelope. The writer adds the
// vantage as known when the line is written (WithVantage).
func (d *Document) record(typ string) Record {
	return Record{Schema: d.Schema, Kind: d.Kind, Type: typ}
}

// WithVantage is r with the document's vantage as known now (a copy), if
// r has none; the writer of the stream calls it as it writes each line.
func (d *Document) WithVantage(r Record) Record {
	if r.Vantage == nil {
		v := d.Vantage
		v.Sources = append([]string{}, v.Sources...)
		r.Vantage = &v
	}
	return r
}

// HopRecord is the streaming line for one hop of a trace.
func (d *Document) HopRecord(target string, h HopDTO) Record {
	r := d.record(RecordHop)
	r.Target, r.Hop = target, &h
	return r
}

// FlowHopRecord is the streaming line for one hop of one flow of a sweep.
func (d *Document) FlowHopRecord(target string, f FlowDTO, h HopDTO) Record {
	r := d.HopRecord(target, h)
	r.Flow = &f
	return r
}

// ResultRecord is the streaming line for one finished target.
func (d *Document) ResultRecord(target string, result any) Record {
	r := d.record(RecordResult)
	r.Target, r.Result = target, result
	return r
}

// EndRecord closes a stream.
func (d *Document) EndRecord() Record {
	r := d.WithVantage(d.record(RecordEnd))
	tool := d.Tool
	errs := append([]Problem{}, d.Errors...)
	r.Tool, r.Started, r.Errors, r.Interrupted = &tool, d.Started, &errs, d.Interrupted
	r.Catchment, r.Census, r.CensusSend, r.CensusListen = d.Catchment, d.Census, d.CensusSend, d.CensusListen
	return r
}
