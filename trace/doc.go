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
// parseReply (pure, fuzzed) turns received bytes into an observation; the
// matcher accepts it only when the protocol, destination address and port
// and the tag name a probe this run sent. An ICMP error quoting our exact
// source is matched by checksum (UDP), sequence (ICMP) or sequence number
// (TCP); one quoting another port or identifier from our own address is
// another tracer's and is dropped; one quoting a rewritten source or
// checksum is matched by the IPv4 ID or the quoted payload's tag and
// flagged NAT; a quote holding the payload's tag must carry the tag the
// header fields name. Direct replies (DNS answers, echo replies,
// SYN-ACK/RST) must come from the destination to the flow's port; a bare
// (challenge) ACK acknowledges the probe whose half-open connection the
// destination holds and is credited to the later probe that caused it. In
// socket mode the kernel ties an error to our socket by the source port
// alone: the error must name our destination (the kernel reports the
// quoted one) and its payload's tag names the probe; no quoted header is
// available (Path.Unobserved says so).
//
// # Scheduling
//
// Probes go out in rounds, one probe per TTL per round: every TTL in the
// window gets its first probe before any gets its second. Probes to
// different TTLs reach different routers and leave back to back; the
// probes of one TTL (one router) stay at least 1 ms apart, so a router sees
// at most 1000 of our probes a second. The whole run's packets come out of
// one token bucket, Options.Budget (NewBudget(Rate): Rate per second on
// average, a quarter second's worth at once), shared by every trace of a
// run, so --rate caps the host's sending without serialising a trace. A
// trace where every hop answers thus ends about one round trip to the
// destination after it starts. TCP is the exception at the destination: a
// SYN that reaches it leaves a half-open connection until the RST our
// kernel sends on its SYN-ACK gets there, and the server answers another
// SYN on the 4-tuple meanwhile with a challenge ACK or nothing. So the next
// TCP probe to a TTL that may reach the destination waits for the previous
// one's answer (or for it to be given up); its SYN then follows that RST.
// A TCP trace ends about three round trips to the destination after it
// starts, and leaves no half-open connection behind for the identity
// query the caller sends from the same port.
//
// A window (Options.Window, default 16, traceroute's -N) bounds how far
// ahead of the path's known part probes go: TTL t is sent only while
// t <= frontier+Window, the frontier being the highest TTL with a probe
// answered or given up. Before the destination (at TTL d) answers, the
// frontier is below d, so at most Window-1 TTLs past it are probed, each
// with its -q probes (each one a query to the service on UDP/53); once it
// (or an unreachable) answers, no TTL above d is sent or waited for. On a
// path whose round trip is shorter than the time to send the window's
// probes fewer of them leave before the answer. A blocked send waits,
// without polling, for an answer or the deadline that moves the frontier;
// an all-silent path still reaches MaxTTL, in about ceil(MaxTTL/Window) ×
// Wait. Hops are final, and handed to OnHop, in TTL order.
//
// # Silent hops
//
// An unanswered probe at TTL t is waited for Wait, unless the destination
// (or an unreachable) has answered and every TTL above t up to it has
// answered or been given up: then it is given up 2 × the largest RTT seen
// at or beyond t after it was sent, never sooner than MinWait (25 ms) and
// never later than Wait. A router's ICMP error crosses less of the path
// than the replies from beyond it that already came back, so when it was
// sent at all it should have arrived by then; a rate-limited router sends
// nothing to wait for (Linux: a burst of 6 errors per destination, then 1
// a second), and its hop shows "*", or answered and silent probes (Hop's
// RateLimited). The factor comes from data: in the delayed lab and in real
// RIPE Atlas traceroutes a hop's reply came back within 1.03 × the largest
// RTT beyond it. The rule can drop a reply that would still come when the
// router is slower than that: when it builds ICMP errors in a busy slow
// path for longer than max(MinWait, 2 × the RTT beyond) (a real M-Lab
// trace shows a hop answering in 23 ms where every later hop took under
// 5 ms: MinWait covers that one), when its reply returns over a path more
// than twice as long as the replies from beyond it, or when it delays
// (queues) errors instead of dropping them when rate limiting. Such a
// probe shows as "*".
//
// # Lost answers
//
// Every probe at or past the destination's distance reaches it, so a
// silent TTL between the last router that answered and the destination
// may be the destination itself, its answer lost on the way (a lossy path,
// a busy service; on UDP/53 a DNS answer). With one probe per hop, as a
// flow sweep sends, one lost answer would put the destination a TTL
// further on, behind a "*". Once the destination has answered, each such
// TTL (at most 8 below it) is probed again until it has 3 probes, what a
// single trace sends, each retry given up like any silent probe (2 × the
// RTT beyond it); one the destination answers ends the trace there.
// Until then those TTLs are not handed to OnHop, nor, before the
// destination answers, is any silent TTL with no router answering beyond
// it and probes still out. TCP is not retried (half-open connections).
package trace
