package report

import (
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/measure"

	"github.com/anycheck/anycheck/probe"
)

// IDTarget is one target of `anycheck id`: every flow probed towards it.
type IDTarget struct {
	Input     string   `json:"input"`                           // the target as the user wrote it
	Target    string   `json:"target" schema:"ip"`              // the address probed
	Port      int      `json:"port" schema:"min=1,max=65535"`   // the DNS port asked
	Transport string   `json:"transport" schema:"enum=udp|tcp"` // "udp" (TCP on truncation) or "tcp"
	Flows     []IDFlow `json:"flows"`                           // one per source port, in the order probed
	// Instances counts, over every flow and run, which instance answered.
	Instances []InstanceCount `json:"instances"`
	// Failed is true when no query to this target got a DNS reply to its
	// question; Error then says why.
	Failed bool   `json:"failed"`
	Error  string `json:"error,omitempty"` // why the target failed
	// Operator runs the target, for members of a named target set (@roots).
	Operator string `json:"operator,omitempty"`
	// FlowSummary is how several flows (--flows N) spread over instances;
	// absent for one flow.
	FlowSummary *IDFlowSplit `json:"flow_summary,omitempty"`
}

// IDFlow is every run over one source port.
type IDFlow struct {
	Flow FlowDTO `json:"flow"` // the flow's 5-tuple: its bound source address and port
	// Instance is what the latest run to name an instance named: a last
	// run whose answers were lost does not make the flow's instance unknown.
	Instance InstanceDTO `json:"instance"`
	Answers  []AnswerDTO `json:"answers"` // the last run's answers
	// Runs are every pass of the query set over the flow (-c N), oldest first.
	Runs    []IDRun       `json:"runs"`
	Summary IDFlowSummary `json:"summary"` // the runs summed up
}

// IDRun is one pass of the query set.
type IDRun struct {
	Started  string      `json:"started" schema:"time"` // when its first query left
	Answers  []AnswerDTO `json:"answers"`               // one per query, in the order asked
	Instance InstanceDTO `json:"instance"`              // what its answers named
}

// IDFlowSummary sums up a flow's runs.
type IDFlowSummary struct {
	Runs      int             `json:"runs"`      // runs made
	Queries   int             `json:"queries"`   // queries sent
	Answered  int             `json:"answered"`  // queries with a DNS reply to their question
	Timeouts  int             `json:"timeouts"`  // queries without a reply in time
	RTT       *RTTStats       `json:"rtt_ms"`    // over queries with a reply; null when none
	Instances []InstanceCount `json:"instances"` // runs per instance named, most first
	// Statuses counts the queries by status (answered, refused, timeout, …).
	Statuses map[string]int `json:"statuses"`
}

// RTTStats are min/avg/max round-trip times in milliseconds.
type RTTStats struct {
	Min float64 `json:"min"` // the smallest
	Avg float64 `json:"avg"` // the mean
	Max float64 `json:"max"` // the largest
}

// InstanceCount is how often an instance answered.
type InstanceCount struct {
	Instance string `json:"instance"` // the instance's name
	Runs     int    `json:"runs"`     // runs whose answers named it
}

// AnswerDTO is one identity query's outcome on the wire.
type AnswerDTO struct {
	Name      string   `json:"name"`                             // the query name, without the trailing dot ("hostname.bind")
	Transport string   `json:"transport" schema:"enum=udp|tcp|"` // "udp" or "tcp": the transport of the final attempt ("" when a RIPE Atlas result does not say)
	Status    string   `json:"status" schema:"ref=status"`       // answered, empty, refused, notimp, servfail, nxdomain, rcode, no_txt, timeout, malformed, error, unreachable
	Rcode     *int     `json:"rcode"`                            // the DNS RCODE; null when no reply was parsed
	TXT       []string `json:"txt"`                              // the TXT strings of the answer section (untrusted)
	NSID      *string  `json:"nsid"`                             // the NSID as text; null when absent or not printable
	NSIDHex   *string  `json:"nsid_hex"`                         // the NSID as hex; null when absent
	RTTMs     *float64 `json:"rtt_ms"`                           // null when there was no reply
	Truncated bool     `json:"truncated"`                        // the UDP reply had TC set (and the query was asked again over TCP)
	// Header is what the reply's header and records say beyond its TXT
	// strings; null when unknown (no reply, or a RIPE Atlas result that
	// kept only the answers).
	Header *HeaderDTO `json:"header"`
	// Suspicions are the answer's own flags — hints that something other
	// than the service answered: ra_set, aa_clear, class_not_ch,
	// ttl_nonzero, question_missing.
	Suspicions []string `json:"suspicions" schema:"ref=hint"`
	Detail     string   `json:"detail,omitempty"` // why, for timeout, error, malformed and other RCODEs
	Size       int      `json:"size"`             // the reply's size in bytes; 0 when none
}

// HeaderDTO is a reply's flags, and the class and smallest TTL of its TXT
// answers: what compare judges against the service's other answers.
type HeaderDTO struct {
	AA    bool    `json:"aa"`    // authoritative answer
	RA    bool    `json:"ra"`    // recursion available
	Class *string `json:"class"` // "CH", "IN", …: the class of the first TXT answer; null without one
	TTL   *int64  `json:"ttl"`   // the smallest TTL of the TXT answers; null without one
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
	if h := a.Header; h.Known {
		d.Header = &HeaderDTO{AA: h.AA, RA: h.RA}
		if h.Class != 0 {
			c := dns.ClassToString[h.Class]
			if c == "" {
				c = fmt.Sprintf("CLASS%d", h.Class)
			}
			d.Header.Class = &c
		}
		if h.TTL >= 0 {
			ttl := h.TTL
			d.Header.TTL = &ttl
		}
	}
	for _, s := range a.Suspicions {
		d.Suspicions = append(d.Suspicions, string(s))
	}
	return d
}

// FromIDRuns builds one target's DTO from its runs, grouped by flow in the
// order given: flows[i] holds every run over source port i. sites places
// the instances' names (nil: no sites).
func FromIDRuns(input string, target netip.AddrPort, tcp bool, flows [][]probe.Result, sites *catchment.Sites) IDTarget {
	t := IDTarget{
		Input:     input,
		Target:    target.Addr().String(),
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
		f := IDFlow{Flow: flowOf(t.Transport, runs[0].Source, target), Runs: []IDRun{}}
		per := map[string]int{}
		var rtts []time.Duration
		f.Summary.Statuses = map[string]int{}
		for _, r := range runs {
			run := IDRun{Started: Time(r.Started), Answers: []AnswerDTO{}, Instance: InstanceOf(r.Identity, target.Addr(), sites)}
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
		f.Instance, f.Answers = f.Runs[namedRun(f.Runs)].Instance, f.Runs[len(f.Runs)-1].Answers
		t.Flows = append(t.Flows, f)
	}
	t.Instances = counts(all)
	return t
}

// namedRun is the index of the latest of runs to name an instance, the
// last one when none did.
func namedRun(runs []IDRun) int {
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Instance.Name != "" {
			return i
		}
	}
	return len(runs) - 1
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
	for _, k := range catchment.Ranked(m) {
		out = append(out, InstanceCount{Instance: k, Runs: m[k]})
	}
	return out
}
