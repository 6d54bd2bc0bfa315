// Package trace is the Paris traceroute engine: probes of one fixed flow
// (5-tuple, TOS, flow label) over UDP, ICMP echo or TCP SYN, IPv4 and IPv6,
// replies matched by the quoted header and the per-probe tag, and a
// scheduler that keeps all TTLs of a flow in flight.
//
// It never prints, exits or reads flags; sockets come through Network.
package trace
