package exporter

// Metric is one metric the exporter or a watch exposes: the catalogue the
// README's table, the dashboards and the tests are held to.
type Metric struct {
	Name   string
	Type   string   // gauge, counter or histogram
	Labels []string // beyond Prometheus's own job and instance
	Help   string
	// Where it is exposed: "probe" (/probe), "watch" (watch --metrics),
	// "exporter" (the exporter's /metrics) or "both" (exporter and watch).
	Where string
}

// Label names. The instance of an anycast service is anycast_instance,
// never instance: Prometheus sets instance to the scrape target and would
// rename ours to exported_instance.
const (
	labelInstance     = "anycast_instance"
	labelSite         = "site"
	labelNSID         = "nsid"
	labelHostnameBind = "hostname_bind"
	labelTarget       = "target"
	labelSport        = "sport"
)

// Metric names.
const (
	nameProbeSuccess    = "anycheck_probe_success"
	nameProbeDuration   = "anycheck_probe_duration_seconds"
	nameInstanceInfo    = "anycheck_instance_info"
	nameDNSRTT          = "anycheck_dns_rtt_seconds"
	nameDNSAnswers      = "anycheck_dns_answers"
	nameUnlikeService   = "anycheck_answers_unlike_service"
	nameAnswerSign      = "anycheck_answer_sign_info"
	nameFlows           = "anycheck_flows"
	nameFlowsInstances  = "anycheck_flows_instances"
	nameInstanceFlows   = "anycheck_instance_flows"
	nameCatchmentSplit  = "anycheck_catchment_split"
	namePathReached     = "anycheck_path_reached"
	namePathHops        = "anycheck_path_hops"
	namePathRTT         = "anycheck_path_rtt_seconds"
	namePathInfo        = "anycheck_path_info"
	namePaths           = "anycheck_paths"
	nameSwitches        = "anycheck_instance_switches_total"
	nameLost            = "anycheck_instance_lost_total"
	nameLostNow         = "anycheck_instance_lost"
	nameInstanceSeconds = "anycheck_instance_seconds_total"
	nameUnidentified    = "anycheck_unidentified_seconds_total"
	nameRounds          = "anycheck_watch_rounds_total"
	nameQueries         = "anycheck_dns_queries_total"
	nameTimeouts        = "anycheck_dns_timeouts_total"
	nameBuildInfo       = "anycheck_build_info"
	nameProbesTotal     = "anycheck_exporter_probes_total"
	nameRejected        = "anycheck_exporter_rejected_requests_total"
	nameInFlight        = "anycheck_exporter_probes_in_flight"
	nameConcurrency     = "anycheck_exporter_max_concurrent_probes"
	nameProbeSeconds    = "anycheck_exporter_probe_duration_seconds"
)

var identityLabels = []string{labelInstance, labelSite, labelNSID, labelHostnameBind}

// Metrics is the catalogue of every anycheck_ metric, in the README's order.
var Metrics = []Metric{
	{nameProbeSuccess, "gauge", nil, "1 when the probe measured what its module asks: a DNS reply from the service (id), the path to it (trace)", "probe"},
	{nameProbeDuration, "gauge", nil, "how long the probe took", "probe"},
	{nameInstanceInfo, "gauge", identityLabels, "1 for each instance that answered: its identity (NSID, else hostname.bind, else id.server), site from the site table, NSID and hostname.bind; with `watch --metrics` the flow's current instance, with `target` and `sport`", "probe, watch"},
	{nameDNSRTT, "gauge", nil, "the smallest round-trip time of the identity answers (with `watch --metrics`: of the flow's last round, per `target` and `sport`)", "probe, watch"},
	{nameDNSAnswers, "gauge", []string{"query", "status"}, "identity queries by name and outcome (answered, refused, timeout, …), summed over the flows", "probe"},
	{nameUnlikeService, "gauge", nil, "module with `hints: true`: 1 when the answers show signs that something other than the service answered (resolver flags, a name unlike the operator's naming)", "probe"},
	{nameAnswerSign, "gauge", []string{"sign"}, "module with `hints: true`: 1 for each sign seen (ra_set, ttl_nonzero, class_not_ch, question_missing, identity_mismatch, no_chaos_operator)", "probe"},
	{nameFlows, "gauge", nil, "flows (source ports) the identity was asked over", "probe"},
	{nameFlowsInstances, "gauge", nil, "distinct instances the flows reached", "probe"},
	{nameInstanceFlows, "gauge", []string{labelInstance}, "flows that reached each instance", "probe"},
	{nameCatchmentSplit, "gauge", nil, "1 when the flows reached more than one instance: the catchment depends on the flow (ECMP)", "probe"},
	{namePathReached, "gauge", nil, "1 when the trace reached the target (with `flows`, when a flow did)", "probe"},
	{namePathHops, "gauge", nil, "hops to the target (the TTL it answered at); when not reached, the TTL of the last hop that answered; with `flows`, of the path most flows took", "probe"},
	{namePathRTT, "gauge", nil, "round-trip time to the target along the path (to the last hop before it when not reached)", "probe"},
	{namePathInfo, "gauge", []string{"upstream_asn", "as_path"}, "1 for each path: the upstream AS (the last AS before the service's origin AS) and the AS path, space-separated", "probe"},
	{namePaths, "gauge", nil, "distinct paths the traced flows took (with `flows`: more than 1 behind a per-flow load balancer)", "probe"},
	{nameSwitches, "counter", []string{labelTarget, labelSport}, "instance switches of the watched flow", "watch"},
	{nameLost, "counter", []string{labelTarget, labelSport}, "losses of the watched flow (`--lost-after` rounds in a row without any reply)", "watch"},
	{nameLostNow, "gauge", []string{labelTarget, labelSport}, "1 while the watched flow is lost", "watch"},
	{nameInstanceSeconds, "counter", []string{labelTarget, labelSport, labelInstance}, "time on each instance (each round stands until the next); its rate over a window is the instance's share, the affinity", "watch"},
	{nameUnidentified, "counter", []string{labelTarget, labelSport, "reason"}, "time without an instance: no_answer, suspect (answers with signs of interception) or anonymous (replies naming none)", "watch"},
	{nameRounds, "counter", []string{labelTarget, labelSport}, "rounds of identity queries", "watch"},
	{nameQueries, "counter", []string{labelTarget, labelSport}, "identity queries sent", "watch"},
	{nameTimeouts, "counter", []string{labelTarget, labelSport}, "identity queries that timed out", "watch"},
	{nameBuildInfo, "gauge", []string{"version", "goversion"}, "1, labelled with the anycheck version and the Go version that built it", "exporter, watch"},
	{nameProbesTotal, "counter", []string{"module", "result"}, "probes run, by module and result (success, failure)", "exporter"},
	{nameRejected, "counter", []string{"reason"}, "/probe requests refused: bad_module, bad_target, not_allowed, bad_timeout, busy", "exporter"},
	{nameInFlight, "gauge", nil, "probes running now", "exporter"},
	{nameConcurrency, "gauge", nil, "the most probes that run at once (`--max-concurrent`)", "exporter"},
	{nameProbeSeconds, "histogram", []string{"module"}, "how long probes took", "exporter"},
}
