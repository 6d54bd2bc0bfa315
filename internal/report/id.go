package report

import (
	"encoding/hex"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/probe"
)

// IDTarget is one target of `anycheck id`: every flow probed towards it.
type IDTarget struct {
	Input     string   `json:"input"`   // the target as the user wrote it
	Address   string   `json:"address"` // the address probed
	Port      int      `json:"port"`
	Transport string   `json:"transport"` // "udp" (TCP on truncation) or "tcp"
	Flows     []IDFlow `json:"flows"`
	// Instances counts, over every flow and run, which instance answered.
	Instances []InstanceCount `json:"instances"`
	// Failed is true when no query to this target got a DNS reply to its
	// question; Error then says why.
	Failed bool   `json:"failed"`
	Error  string `json:"error,omitempty"`
	// Operator runs the target, for members of a named target set (@roots).
	Operator string `json:"operator,omitempty"`
	// FlowSummary is how several flows (--flows N) spread over instances;
	// absent for one flow.
	FlowSummary *IDFlowSplit `json:"flow_summary,omitempty"`
}

// IDFlow is every run over one source port.
type IDFlow struct {
	Source   string        `json:"source"` // local address:port
	Identity *IdentityDTO  `json:"identity"`
	Runs     []IDRun       `json:"runs"`
	Summary  IDFlowSummary `json:"summary"`
}

// IDRun is one pass of the query set.
type IDRun struct {
	Started  string      `json:"started"`
	Answers  []AnswerDTO `json:"answers"`
	Identity IdentityDTO `json:"identity"`
}

// IDFlowSummary sums up a flow's runs.
type IDFlowSummary struct {
	Runs      int             `json:"runs"`
	Queries   int             `json:"queries"`
	Answered  int             `json:"answered"` // queries with a DNS reply to their question
	Timeouts  int             `json:"timeouts"`
	RTT       *RTTStats       `json:"rtt_ms"` // over queries with a reply; null when none
	Instances []InstanceCount `json:"instances"`
	Statuses  map[string]int  `json:"statuses"`
}

// RTTStats are min/avg/max round-trip times in milliseconds.
type RTTStats struct {
	Min float64 `json:"min"`
	Avg float64 `json:"avg"`
	Max float64 `json:"max"`
}

// InstanceCount is how often an instance answered.
type InstanceCount struct {
	Instance string `json:"instance"`
	Runs     int    `json:"runs"`
}

// AnswerDTO is one identity query's outcome on the wire.
type AnswerDTO struct {
	Name       string   `json:"name"`
	Transport  string   `json:"transport"`
	Status     string   `json:"status"`
	Rcode      *int     `json:"rcode"` // null when no reply was parsed
	TXT        []string `json:"txt"`
	NSID       *string  `json:"nsid"`     // decoded text; null when absent or not printable
	NSIDHex    *string  `json:"nsid_hex"` // null when absent
	RTTMs      *float64 `json:"rtt_ms"`   // null when there was no reply
	Truncated  bool     `json:"truncated"`
	Suspicions []string `json:"suspicions"`
	Detail     string   `json:"detail,omitempty"`
	Size       int      `json:"size"`
}

// IdentityDTO is what a set of answers says about the instance.
type IdentityDTO struct {
	Instance       string `json:"instance"`
	InstanceSource string `json:"instance_source"`
	NSID           string `json:"nsid,omitempty"`
	NSIDHex        string `json:"nsid_hex,omitempty"`
	HostnameBind   string `json:"hostname_bind,omitempty"`
	IDServer       string `json:"id_server,omitempty"`
	VersionBind    string `json:"version_bind,omitempty"`
	VersionServer  string `json:"version_server,omitempty"`
	Disagree       bool   `json:"nsid_hostname_disagree"`
}

// FromAnswer converts one answer.
func FromAnswer(a measure.Answer) AnswerDTO {
	d := AnswerDTO{
		Name:       strings.TrimSuffix(a.Name, "."),
		Transport:  string(a.Transport),
		Status:     string(a.Status),
		TXT:        append([]string{}, a.TXT...),
		Truncated:  a.Truncated,
		Suspicions: []string{},
		Detail:     a.Detail,
		Size:       a.Size,
	}
	if a.Rcode >= 0 {
		rc := a.Rcode
		d.Rcode = &rc
	}
	if a.NSID != nil {
		h := hex.EncodeToString(a.NSID)
		d.NSIDHex = &h
		if t := measure.DecodeNSID(a.NSID); t != "" {
			d.NSID = &t
		}
	}
	if a.Replied() || a.RTT > 0 {
		// Bytes that came back unparsable still have an arrival time; a
		// message that was no reply to the question (a reflected query)
		// has none.
		ms := Ms(a.RTT)
		d.RTTMs = &ms
	}
	for _, s := range a.Suspicions {
		d.Suspicions = append(d.Suspicions, string(s))
	}
	return d
}

// FromIdentity converts an identity summary.
func FromIdentity(id measure.Identity) IdentityDTO {
	return IdentityDTO{
		Instance:       id.Instance,
		InstanceSource: id.Source,
		NSID:           id.NSID,
		NSIDHex:        id.NSIDHex,
		HostnameBind:   id.HostnameBind,
		IDServer:       id.IDServer,
		VersionBind:    id.VersionBind,
		VersionServer:  id.VersionServer,
		Disagree:       id.Disagree,
	}
}

// FromIDRuns builds one target's DTO from its runs, grouped by flow in the
// order given: flows[i] holds every run over source port i.
func FromIDRuns(input string, target netip.AddrPort, tcp bool, flows [][]probe.Result) IDTarget {
	t := IDTarget{
		Input:     input,
		Address:   target.Addr().String(),
		Port:      int(target.Port()),
		Transport: "udp",
		Flows:     []IDFlow{},
		Instances: []InstanceCount{},
		Failed:    true,
	}
	if tcp {
		t.Transport = "tcp"
	}
	all := map[string]int{}
	for _, runs := range flows {
		if len(runs) == 0 {
			continue
		}
		f := IDFlow{Source: runs[0].Source.String(), Runs: []IDRun{}}
		per := map[string]int{}
		var rtts []time.Duration
		f.Summary.Statuses = map[string]int{}
		for _, r := range runs {
			run := IDRun{Started: r.Started.UTC().Format(time.RFC3339Nano), Answers: []AnswerDTO{}, Identity: FromIdentity(r.Identity)}
			for _, a := range r.Answers {
				run.Answers = append(run.Answers, FromAnswer(a))
				f.Summary.Queries++
				f.Summary.Statuses[string(a.Status)]++
				if a.Replied() {
					f.Summary.Answered++
					rtts = append(rtts, a.RTT)
					t.Failed = false
				}
				if a.Status == measure.StatusTimeout {
					f.Summary.Timeouts++
				}
			}
			if r.Identity.Instance != "" {
				per[r.Identity.Instance]++
				all[r.Identity.Instance]++
			}
			f.Runs = append(f.Runs, run)
		}
		f.Summary.Runs = len(runs)
		f.Summary.RTT = rttStats(rtts)
		f.Summary.Instances = counts(per)
		last := FromIdentity(runs[len(runs)-1].Identity)
		f.Identity = &last
		t.Flows = append(t.Flows, f)
	}
	t.Instances = counts(all)
	return t
}

func rttStats(ds []time.Duration) *RTTStats {
	if len(ds) == 0 {
		return nil
	}
	minD, maxD, sum := time.Duration(math.MaxInt64), time.Duration(0), time.Duration(0)
	for _, d := range ds {
		minD = min(minD, d)
		maxD = max(maxD, d)
		sum += d
	}
	return &RTTStats{Min: Ms(minD), Avg: Ms(sum / time.Duration(len(ds))), Max: Ms(maxD)}
}

// counts orders instances by how often they answered, then by name, so the
// output is stable.
func counts(m map[string]int) []InstanceCount {
	out := make([]InstanceCount, 0, len(m))
	for k, v := range m {
		out = append(out, InstanceCount{Instance: k, Runs: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Runs != out[j].Runs {
			return out[i].Runs > out[j].Runs
		}
		return out[i].Instance < out[j].Instance
	})
	return out
}
