// Package census is the catchment of an anycast service seen from its
// instances: which clients each instance serves, and whether they stay.
// It takes the two established methods:
//
//   - Passive, from the instances' own traffic (the method of "Two days in
//     the life of the DNS anycast root servers", Liu et al., PAM 2007):
//     OpenLog reads a dnstap log (Frame Streams, as NSD, Knot, BIND and
//     Unbound write it) or a pcap/pcapng capture of port 53 (Ethernet,
//     Linux cooked capture v1 and v2, raw IP, loopback), plain or gzip,
//     one query at a time; Merge interleaves the instances' logs by time;
//     a Tally counts queries per client prefix (/24, /48 by default) and
//     instance and follows each client's instance over time.
//   - Active (Verfploeter, de Vries et al., IMC 2017): Send sends ICMP echo
//     requests from the anycast address to a hitlist, each carrying a
//     Payload (census id, sender site, target, send time); the reply goes
//     to whichever site's catchment the target's network is in, where
//     Listen captures it. Join turns the listeners' replies into a Census.
//
// Both end in a Census: instances with their queries and clients, each
// client prefix with the instances it reached and, for a passive census,
// its runs over time — at one instance, or at several at the same time
// (split: per-flow load balancing) — from which Moves and Affinity follow.
//
// # Affinity
//
// A client's queries are taken in time order. A change of instance counts
// as a move once the client has kept to the new instance for the split
// window (10 s by default) with no query at another; a client that goes
// back to an instance it had within the window is split, and that
// stretch is one run at several instances. A run at one instance shorter
// than the window just before a split run is part of it.
//
// Untrusted bytes (dnstap frames, captured packets, echo payloads) are
// parsed by pure functions with fuzz targets (ParseDnstap,
// PacketDecoder.Decode, ParsePayload); a record that does not parse is
// counted and skipped, never a crash. The engines take their sockets
// (Conn) from the caller. The package never prints, exits or keeps
// globals.
package census
