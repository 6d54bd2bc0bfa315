package report

import (
	"net/netip"

	"github.com/anycheck/anycheck/catchment"
)

// IDFlowSplit is how the flows of `anycheck id --flows N` (N > 1) spread
// over instances, each flow counted by the instance of its last run.
type IDFlowSplit struct {
	Flows        int         `json:"flows"`     // flows with a finished run
	Instances    []FlowCount `json:"instances"` // by flow count
	Unidentified int         `json:"unidentified"`
	// Split is true when the flows reached more than one instance: the
	// catchment depends on the flow (source port).
	Split bool `json:"split"`
}

// IDFlowSplitOf counts the instances of a target's flows.
func IDFlowSplitOf(flows []IDFlow) *IDFlowSplit {
	cf := make([]catchment.Flow, len(flows))
	for i, f := range flows {
		src, _ := netip.ParseAddrPort(f.Source)
		cf[i] = catchment.Flow{Source: src}
		if f.Identity != nil {
			cf[i].Identity = identityOf(*f.Identity)
		}
	}
	sp := catchment.SplitOf(cf)
	out := &IDFlowSplit{Flows: len(flows), Instances: []FlowCount{}, Unidentified: sp.Unidentified, Split: sp.Split}
	for _, in := range sp.Instances {
		out.Instances = append(out.Instances, FlowCount{Instance: in.Instance, Flows: in.Count})
	}
	return out
}
