// Package probe asks a DNS server who it is: CHAOS TXT identity queries
// (hostname.bind, id.server, version.bind, version.server) carrying the EDNS
// NSID option, all over one flow (one source port) so every answer describes
// the same path to the same anycast instance.
//
// It owns the exchange over UDP (TCP on truncation or on request; the
// queries of a run in flight at once, matched by DNS ID); the query itself,
// the classification of answers and the identity they name are package
// measure's, shared with the file readers. It never prints, exits, reads flags or
// keeps package state; callers inject sockets through Network and share a
// packet budget through Options.Limiter.
//
// Package probetest beside it runs an in-process CHAOS server for the
// tests of probe and of its callers.
package probe
