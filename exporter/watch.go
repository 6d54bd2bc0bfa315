package exporter

import (
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/watch"
)

// watchFlow is what a watch knows about one watched flow after a round:
// the flow's labels and the state its catchment.Watcher has reached.
type watchFlow struct {
	target netip.Addr // the address watched (anycheck_instance_info's site comes from it)
	input  string     // the target as given: the target label
	sport  uint16     // the flow's source port: the sport label (0 until known)
	// summary is the watcher's summary at the round's own time
	// (watch.Round.Summary): the time of every earlier round credited,
	// the last round's not yet. So every counter made from it only grows
	// from round to round: a scrape between two rounds sees the earlier
	// round's values, never a guess the next round takes back.
	summary catchment.WatchSummary
	current string // the instance the flow is on ("" before the first, or while lost)
	lost    bool
	rtt     time.Duration // the round's smallest answer RTT (0: no reply)
}

// WatchMetrics exposes the state of watched flows (watch --metrics): a
// prometheus.Collector that the watch engine's rounds update (Round, as
// watch.Options.OnRound, with RoundSummaries). Counters come from the watcher's own counts, which never go back;
// a restarted watch starts them again from zero, as Prometheus expects.
type WatchMetrics struct {
	sites *catchment.Sites

	mu    sync.Mutex
	flows map[int]watchFlow
	order []int

	switches, lost, lostNow, seconds, unidentified, rounds, queries, timeouts, info, rtt *prometheus.Desc
}

// NewWatchMetrics makes the collector; sites names the instances' sites
// (nil: the built-in table).
func NewWatchMetrics(sites *catchment.Sites) *WatchMetrics {
	if sites == nil {
		sites = catchment.BuiltinSites()
	}
	flow := []string{labelTarget, labelSport}
	desc := func(name string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, helpOf(name), append(append([]string{}, flow...), extra...), nil)
	}
	return &WatchMetrics{
		sites:        sites,
		flows:        map[int]watchFlow{},
		switches:     desc(nameSwitches),
		lost:         desc(nameLost),
		lostNow:      desc(nameLostNow),
		seconds:      desc(nameInstanceSeconds, labelInstance),
		unidentified: desc(nameUnidentified, "reason"),
		rounds:       desc(nameRounds),
		queries:      desc(nameQueries),
		timeouts:     desc(nameTimeouts),
		info:         desc(nameInstanceInfo, identityLabels...),
		rtt:          desc(nameDNSRTT),
	}
}

// Round records a flow's state after one of its rounds; a round without
// a summary (watch.Options.RoundSummaries unset) is ignored. Safe from
// any goroutine.
func (m *WatchMetrics) Round(r watch.Round) {
	if r.Summary == nil {
		return
	}
	f := watchFlow{target: r.Flow.Target.Addr.Addr(), input: r.Flow.Target.Input, sport: r.Flow.Port,
		summary: *r.Summary, current: r.Instance, lost: r.Lost, rtt: r.RTT}
	id := r.Flow.Index
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.flows[id]; !ok {
		m.order = append(m.order, id)
	}
	m.flows[id] = f
}

// Describe implements prometheus.Collector.
func (m *WatchMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.switches, m.lost, m.lostNow, m.seconds, m.unidentified, m.rounds, m.queries, m.timeouts, m.info, m.rtt} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *WatchMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range m.order {
		f := m.flows[id]
		s := f.summary
		lv := []string{labelValue(f.input), ""}
		if f.sport != 0 {
			lv[1] = strconv.Itoa(int(f.sport))
		}
		counter := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append(append([]string{}, lv...), extra...)...)
		}
		gauge := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(append([]string{}, lv...), extra...)...)
		}
		counter(m.switches, float64(s.Switches))
		counter(m.lost, float64(s.Losses))
		gauge(m.lostNow, b2f(f.lost))
		counter(m.rounds, float64(s.Rounds))
		counter(m.queries, float64(s.Queries))
		counter(m.timeouts, float64(s.Timeouts))
		for _, in := range s.Instances {
			counter(m.seconds, in.Time.Seconds(), labelValue(in.Identity.Instance))
		}
		counter(m.unidentified, s.NoAnswer.Time.Seconds(), "no_answer")
		counter(m.unidentified, s.Suspect.Time.Seconds(), "suspect")
		counter(m.unidentified, s.Anonymous.Time.Seconds(), "anonymous")
		if f.current != "" && !f.lost {
			for _, in := range s.Instances {
				if id := in.Identity; id.Instance == f.current {
					site, _ := m.sites.HintFor(f.target, id.Instance)
					gauge(m.info, 1, labelValue(id.Instance), labelValue(site.Site), labelValue(id.NSID), labelValue(id.HostnameBind))
					break
				}
			}
		}
		if f.rtt > 0 {
			gauge(m.rtt, f.rtt.Seconds())
		}
	}
}
