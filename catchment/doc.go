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
//     identity Answers (statuses and suspicion flags in package probe's
//     vocabulary), Flows (one for a trace, many for a sweep), errors. One
//     line of the catchment table; Key() is vantage × target.
//   - Row: an Observation resolved by Resolve: the instance (identity —
//     NSID, else hostname.bind, else id.server — or, for traceroute-only
//     data, the Upstream: the last responding hop before the target), the
//     site hint, the AS path, RTTs and the Suspicions that count the row
//     apart from the instances.
//
// # Analysis
//
//	Analyse(obs, sites) Report           every Row, then Shares, DualStackDivergence, PathsPart
//	Shares(rows) []TargetSummary         per target: instances by vantage count, share, ASes, countries, median RTT
//	DualStackDivergence(rows)            vantages whose IPv4 and IPv6 reach different instances
//	PathsPart(rows) []Parting            same origin AS, different instances: the first AS (and hop) where paths differ
//	Diff(before, after []Row) []Move     lines that moved instance or upstream between two runs
//	Collector                            streaming: latest identity and trace part per line, Changes() over time
//
// Suspect answers follow "Who Is Answering My Queries" (USENIX Security
// 2018): the answer flags of package probe (ra_set, class_not_ch,
// ttl_nonzero, question_missing; aa_clear alone is not counted, as NSD and
// Knot clear AA on CHAOS answers), an identity that does not fit the
// target operator's naming (identity_mismatch), an answer from an operator
// that never answers identity queries (no_chaos_operator), and an answer
// faster than the vantage's own path to the last hop before the target
// (faster_than_path). Operators of kind "resolver" set RA and cache their
// answers, so those two flags are not counted against them.
//
// # Flows (for `trace --flows` and `id --flows`)
//
//	GroupPaths(flows) []Path             flows with identical hop lists (silent hops included) form one path
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
package catchment
