// Package measure holds the value types every layer of anycheck shares —
// what a DNS identity answer is (Status, Suspicion, Answer), what a set of
// answers says about the instance (Identity), an MPLS label a router
// quoted — and the pure functions that define them: ClassifyReply reads
// a DNS reply into an Answer, Summarise names the instance of a set of
// answers.
//
// It is a leaf: it imports no other package of anycheck, opens no socket
// and keeps no state, so the prober (probe, trace), the file readers
// (atlas, the JSON contract) and the catchment model all speak one
// vocabulary without a file reader linking the raw-socket tracer.
package measure
