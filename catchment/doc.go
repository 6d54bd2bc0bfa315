// Package catchment is anycheck's model of an anycast catchment: many
// vantage points, their flows, the paths those flows took and the instances
// they reached. It is pure — no I/O, no printing, no globals — and is shared
// by `anycheck compare` (anycheck documents and RIPE Atlas results from many
// hosts), `trace --flows` (one host, many flows) and `watch` (one host over
// time).
//
// # Model
//
//   - Vantage: where a measurement was taken from (label, source and public
//     address, origin AS, Atlas probe id).
//   - Flow: one Paris flow (fixed 5-tuple): its hops (TTL → responders with
//     RTT and origin ASes), whether it reached the target, and the Identity
//     its probes' DNS answers named.
//   - Observation: what one vantage measured towards one target address:
//     identity Answers (package measure: statuses, header facts, flags),
//     the target's origin, Flows (one for a trace, many for a sweep),
//     errors. One line of the catchment table; Key() is vantage × target.
//   - Row: an Observation resolved by Resolve and judged by Analyse: the
//     instance (what the service says it is: NSID, else hostname.bind,
//     else id.server), the site (where that instance is, from its name:
//     the site-hint table), the Upstream and AS path (PathOf), RTTs, how a
//     sweep's flows spread (Split), the reasons its answers are counted
//     apart (Apart), and its CatchmentKey.
//
// # One definition of the upstream
//
// PathOf and UpstreamOf are the only place the upstream is decided, for
// trace, sweeps, watch, compare and atlas alike: the last AS before the
// service's origin AS on the path, with the hop where the path enters the
// service (the first hop inside the origin AS before the target, else the
// last responding hop before it); without origin ASes, the last responding
// hop before the target.
//
// # Truth on real data: judged against the population
//
// The catchment key of a vantage point is its site when the instance's
// name places it, else its instance, else — traceroute-only data — the
// upstream hop where its path enters the service (labelled as inferred
// from the path; for unreached traces only when the target does not
// answer traceroute at all). Summaries count by that key and say which
// kind it is.
//
// An answer is judged against what the service answers most vantage
// points of its target (judge): the reply (TXT or an RCODE), RA, the TXT
// class and TTL, the shape of the names. A property at least Uniform (90
// %) of at least MinPopulation (10) vantage points agree on is the
// service's; an answer with an identity that differs is counted apart
// ("TXT where the service answers SERVFAIL", "RA set where the service
// clears it", "name unlike the service's (b1-lax, b2-lax, …)"), grouped by
// the vantage's AS, never as an instance or a share. So are answers faster
// than the vantage's own path to the target, and answers the site-hint
// table knows cannot be the operator's. Below MinPopulation nothing is
// judged and the summary says why; the answers' own flags (package
// measure) stay as hints, as in `id` and `watch` (AnswerSigns), where a
// single vantage point has no population. When most vantage points get no
// identity the summary says so once (Service.NoIdentity).
//
// # Analysis
//
//	Analyse(obs, sites) Report           every Row judged per target, then the TargetSummary (keys, splits, apart, errors by reason), DualStackDivergence, PathsPart
//	DualStackDivergence(rows)            vantages whose IPv4 and IPv6 reach different instances
//	PathsPart(rows) []Parting            same origin AS, different instances (a split vantage point on both sides): the first AS (and hop) where paths differ
//	Diff(before, after []Row) []Move     lines that moved (another instance on every flow, or another site), differ by flow only, or changed upstream
//	Collector                            streaming: latest identity and trace part per line, Changes() over time
//
// # Flows (for `trace --flows` and `id --flows`)
//
//	GroupPaths(flows) []Path             flows with identical hop lists (silent hops included) form one path
//	PlacePaths(flows) (paths, unplaced)  the paths flows took, drawn through no hop that did not answer: a flow with holes joins the one path it fits
//	Divergence(paths) []Diamond          TTLs where paths part and join, with the alternatives at each TTL
//	SplitOf(flows) Split                 instances by flow count; Split when more than one
//	MDAStoppingPoint(k, 0.95)            flows needed to rule out a (k+1)-th next hop: 6, 11, 16, 21, 27, 33, …
//	MDAUnsatisfied(flows, 0.95)          vertices (hops) whose next hops need more flows; none = stop
//
// A flow-sweep document will carry its flows in an Observation's Flows, so
// `compare` reads a sweep like any trace: the row's FlowInstances and Split
// say how the flows spread.
//
// # Site hints
//
// Sites is a table of naming patterns (data in sites.txt, embedded; the
// user adds lines with ParseSites and With): operator, kind (auth,
// resolver, nochaos), the prefixes its service lives at, and an RE2
// pattern whose first group is the site code. Hint(identity) gives the
// operator and site of an identity string, or nothing — never a guess.
// Names that are bare IATA codes ("JNB", "LHR") match no pattern: Analyse
// places them only when the population shows the scheme (placeByCodes:
// most of the service's own answers are codes the places table knows).
package catchment
