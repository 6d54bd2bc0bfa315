package report

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// The first contract, anycheck/v1, as compare still reads it: the results
// of id, trace and sweep documents, each upgraded to its v2 form when it is
// read (one reader of results after that). Only what compare uses is
// decoded; v1 wrote the instance at a different path in every command.

// v1Identity is v1's identity object.
type v1Identity struct {
	Instance       string `json:"instance"`
	InstanceSource string `json:"instance_source"`
	NSID           string `json:"nsid"`
	NSIDHex        string `json:"nsid_hex"`
	HostnameBind   string `json:"hostname_bind"`
	IDServer       string `json:"id_server"`
	VersionBind    string `json:"version_bind"`
	VersionServer  string `json:"version_server"`
	Disagree       bool   `json:"nsid_hostname_disagree"`
}

func (id *v1Identity) v2() InstanceDTO {
	if id == nil {
		return InstanceDTO{}
	}
	return InstanceDTO{Name: OptString(id.Instance), Source: id.InstanceSource, NSID: OptString(id.NSID), NSIDHex: OptString(id.NSIDHex),
		HostnameBind: OptString(id.HostnameBind), IDServer: OptString(id.IDServer), VersionBind: OptString(id.VersionBind),
		VersionServer: OptString(id.VersionServer), Disagree: id.Disagree}
}

type v1IDTarget struct {
	Input     string `json:"input"`
	Address   string `json:"address"`
	Port      int    `json:"port"`
	Transport string `json:"transport"`
	Flows     []struct {
		Source   string      `json:"source"` // address:port
		Identity *v1Identity `json:"identity"`
		Runs     []struct {
			Started  string      `json:"started"`
			Answers  []AnswerDTO `json:"answers"`
			Identity v1Identity  `json:"identity"`
		} `json:"runs"`
	} `json:"flows"`
	Failed bool `json:"failed"`
}

func (t v1IDTarget) v2() IDTarget {
	out := IDTarget{Input: t.Input, Target: t.Address, Port: t.Port, Transport: t.Transport, Flows: []IDFlow{}, Failed: t.Failed}
	dst, _ := netip.ParseAddr(t.Address)
	for _, f := range t.Flows {
		src, _ := netip.ParseAddrPort(f.Source)
		nf := IDFlow{Flow: flowOf(t.Transport, src, netip.AddrPortFrom(dst, uint16(t.Port))), Instance: f.Identity.v2()}
		for _, r := range f.Runs {
			nf.Runs = append(nf.Runs, IDRun{Started: r.Started, Answers: r.Answers, Instance: r.Identity.v2()})
		}
		if n := len(nf.Runs); n > 0 {
			nf.Answers = nf.Runs[n-1].Answers
			if f.Identity == nil {
				nf.Instance = nf.Runs[namedRun(nf.Runs)].Instance
			}
		}
		out.Flows = append(out.Flows, nf)
	}
	return out
}

type v1TracePath struct {
	Input      string       `json:"input"`
	Target     string       `json:"target"`
	Flow       FlowDTO      `json:"flow"`
	Mode       string       `json:"mode"`
	Started    string       `json:"started"`
	ElapsedMs  float64      `json:"elapsed_ms"`
	Reached    bool         `json:"reached"`
	StopReason string       `json:"stop_reason"`
	DestTTL    int          `json:"dest_ttl"`
	Hops       []HopDTO     `json:"hops"`
	Instance   *v1Identity  `json:"instance"`
	Answers    []AnswerDTO  `json:"answers"`
	ASPath     []uint32     `json:"as_path"`
	Upstream   *UpstreamDTO `json:"upstream"`
	Notes      []string     `json:"notes"`
	Source     *OriginDTO   `json:"source_origin"`
}

func (t v1TracePath) v2() TraceFlow {
	return TraceFlow{Flow: t.Flow, Instance: t.Instance.v2(), Answers: t.Answers, Path: PathDTO{
		Mode: t.Mode, Started: t.Started, ElapsedMs: t.ElapsedMs, Reached: t.Reached, StopReason: t.StopReason, DestTTL: t.DestTTL,
		Hops: t.Hops, ASPath: t.ASPath, Upstream: t.Upstream, Notes: t.Notes, SourceOrigin: t.Source,
	}}
}

func (t v1TracePath) result() TraceResult {
	return TraceResult{Input: t.Input, Target: t.Target, Flows: []TraceFlow{t.v2()}}
}

type v1TraceSweep struct {
	Input       string        `json:"input"`
	Target      string        `json:"target"`
	Protocol    string        `json:"protocol"`
	Dport       int           `json:"dport"`
	Identity    string        `json:"identity"`
	Flows       []v1TracePath `json:"flows"`
	FailedFlows []FailedFlow  `json:"failed_flows"`
}

func (s v1TraceSweep) v2() TraceSweep {
	out := TraceSweep{Input: s.Input, Target: s.Target, Protocol: s.Protocol, Dport: s.Dport, Identity: s.Identity, FailedFlows: s.FailedFlows}
	for _, f := range s.Flows {
		out.Flows = append(out.Flows, f.v2())
	}
	return out
}

// decodeResults reads a document's results (or one record's result) of
// the given kind and schema into d.
func decodeResults(d *ReadDoc, schema string, raw json.RawMessage, one bool) error {
	wrap := func(err error) error {
		switch {
		case err == nil:
			return nil
		case one:
			return fmt.Errorf("%s result: %w", d.Kind, err)
		}
		return fmt.Errorf("%s results: %w", d.Kind, err)
	}
	if schema == SchemaV1 {
		switch d.Kind {
		case KindID:
			var ts []v1IDTarget
			if err := decodeList(raw, one, &ts); err != nil {
				return wrap(err)
			}
			for _, t := range ts {
				d.IDs = append(d.IDs, t.v2())
			}
		case KindTrace:
			var ts []v1TracePath
			if err := decodeList(raw, one, &ts); err != nil {
				return wrap(err)
			}
			for _, t := range ts {
				d.Traces = append(d.Traces, t.result())
			}
		case KindSweep:
			var ts []v1TraceSweep
			if err := decodeList(raw, one, &ts); err != nil {
				return wrap(err)
			}
			for _, t := range ts {
				d.Sweeps = append(d.Sweeps, t.v2())
			}
		case KindCensus:
			return wrap(decodeList(raw, one, &d.Census))
		}
		return nil
	}
	switch d.Kind {
	case KindID:
		return wrap(decodeList(raw, one, &d.IDs))
	case KindTrace:
		return wrap(decodeList(raw, one, &d.Traces))
	case KindSweep:
		return wrap(decodeList(raw, one, &d.Sweeps))
	case KindCensus:
		return wrap(decodeList(raw, one, &d.Census))
	}
	return nil
}

// decodeList decodes a list of results (or, with one, a single result) and
// appends them to *out.
func decodeList[T any](raw json.RawMessage, one bool, out *[]T) error {
	if one {
		var t T
		if err := json.Unmarshal(raw, &t); err != nil {
			return err
		}
		*out = append(*out, t)
		return nil
	}
	var ts []T
	if err := json.Unmarshal(raw, &ts); err != nil {
		return err
	}
	*out = append(*out, ts...)
	return nil
}
