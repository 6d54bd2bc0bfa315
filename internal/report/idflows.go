package report

import (
	"github.com/anycheck/anycheck/catchment"
)

// IDFlowSplit is how the flows of `anycheck id --flows N` (N > 1) spread
// over instances, each flow counted by the instance of its last run.
type IDFlowSplit struct {
	Flows        int         `json:"flows"`        // flows with a finished run
	Instances    []FlowCount `json:"instances"`    // by flow count
	Unidentified int         `json:"unidentified"` // flows whose answers named no instance
	// Split is true when the flows reached more than one instance: the
	// catchment depends on the flow (source port).
	Split bool `json:"split"`
}

// FromSplit converts how a target's flows spread over instances
// (catchment.SplitOf over live.IDFlows).
func FromSplit(flows int, sp catchment.Split) *IDFlowSplit {
	out := &IDFlowSplit{Flows: flows, Instances: []FlowCount{}, Unidentified: sp.Unidentified, Split: sp.Split}
	for _, in := range sp.Instances {
		out.Instances = append(out.Instances, FlowCount{Instance: in.Instance, Flows: in.Count})
	}
	return out
}
