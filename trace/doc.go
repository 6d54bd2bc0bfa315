// Package trace is the Paris traceroute engine: probes of one fixed flow
// (5-tuple, TOS, flow label) over UDP, ICMP echo or TCP SYN, IPv4 and IPv6,
// replies matched by the quoted header and the per-probe tag, and a
// scheduler that keeps all TTLs of a flow in flight.
//
// It never prints, exits or reads flags; sockets come through Network
// (HostNetwork on Linux; trace/tracetest is a fake path for tests).
//
// # Probe fields
//
// Only the IP header and the first 8 transport bytes are sure to come back
// in an ICMP error, and per-flow load balancers hash the same bytes, so the
// tag (16 bits, never 0, unique per probe of a run) lives where it is
// quoted but not hashed:
//
//   - UDP: ports fixed; the payload to port 53 is a DNS identity query
//     whose message ID is the tag, so the UDP checksum (always correct,
//     never 0) differs per probe and the engine never reuses a checksum
//     within a flow; other ports get "anycheck" + tag. The IPv4 ID repeats
//     the tag, a second copy that survives NATs rewriting the checksum.
//   - ICMP echo: identifier fixed (the flow's "source port"), sequence =
//     tag, and the first payload word is ^tag, so the ICMP checksum is the
//     same for every probe of the flow.
//   - TCP SYN: ports fixed; sequence number = tag<<16 | source port, so a
//     SYN-ACK's or RST's acknowledgement names the probe too.
//
// BuildProbe returns whole packets, IP header included for both families
// (IPv6 raw sockets are IPPROTO_RAW, header included, so traffic class and
// flow label are ours to set); socket mode sends Probe.SocketPayload.
//
// # Matching
//
// ParseReply (pure, fuzzed) turns received bytes into an Observation; the
// matcher accepts it only when the protocol, destination address and port
// and the tag name a probe this run sent. An ICMP error quoting our exact
// source is matched by checksum (UDP), sequence (ICMP) or sequence number
// (TCP); one quoting another port or identifier from our own address is
// another tracer's and is dropped; one quoting a rewritten source or
// checksum is matched by the IPv4 ID or the quoted payload's tag and
// flagged NAT. Direct replies (DNS answers, echo replies, SYN-ACK/RST) must
// come from the destination to the flow's port. In socket mode the kernel
// has already tied an error to our socket; the payload's tag names the
// probe, and no quoted header is available (Path.Unobserved says so).
//
// # Scheduling
//
// Probes go out in rounds, one per TTL per round, with a strict gap of
// 1/Rate between packets, so the probes to one router are spread in time
// (Linux routers allow a burst of 6 ICMP errors, then 1/s, per
// destination). A window (Options.Window, default 16, traceroute's -N)
// bounds how far ahead of the path's known part probes go: TTL t is sent
// only while t <= frontier+Window, the frontier being the highest TTL with
// a probe answered or given up, so a trace to a destination d hops away
// sends at most about Window-d+1 probes past it in the first round instead
// of every TTL to MaxTTL (each one a query to the service on UDP/53). A
// blocked send waits, without polling, for an answer or the deadline that
// moves the frontier; an all-silent path still reaches MaxTTL, in about
// ceil(MaxTTL/Window) × Wait. Once the destination (or an unreachable)
// answers at TTL d, no TTL above d is sent or waited for. An unanswered probe is given up
// after Wait, or after 5× the RTT of a probe at or above its TTL that did
// answer (at least MinWait). Hops are final, and handed to OnHop, in TTL order.
package trace
