// Package lab is a test-only harness that builds Linux network-namespace
// topologies with real routers (kernel forwarding, BIRD 2 speaking eBGP) and
// real DNS servers (NSD, Knot), so anycheck can be tested against the things
// it measures: catchments, paths, ECMP, silent hops, failover.
//
// Lab tests need root and the Debian packages iproute2, bird2, nsd, knot,
// bind9-dnsutils, ethtool, nftables (and traceroute for the trace tests).
// Require skips a test with the reason when something is missing, and fails
// it instead when ANYCHECK_LAB=1 (CI). Run them with
//
//	sudo ANYCHECK_LAB=1 go test ./internal/lab/...
//
// # Safety
//
// Every namespace name carries a random per-run id ("ac1f2e3d-c1"), so two
// runs cannot collide. No namespace is connected to the host namespace; there
// is no default route, no NAT; every address and route is in the
// documentation ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and
// 2001:db8::/32. Daemons run inside the namespaces with config, pid, socket
// and log files in the test's temp dir (Lab.Dir; when the test failed, the
// tail of every log is copied into the test output). At test end (t.Cleanup, also after t.Fatal) every process the
// lab started is killed by PID (its process group) and the namespaces are
// deleted.
//
// # The standard anycast lab
//
// StartAnycast builds this (IPv4 and IPv6 everywhere):
//
//	c1 ── e1 ──┬── m1 ──┬── r1 (AS64500) ── ra (AS64520) ── i1  instance A: NSD
//	           └── m2 ──┘   │   "core" segment
//	                        rt (AS64510) ── svc   services host
//	                        │
//	c2 ── s2 ──────────── r2 (AS64501) ── rb (AS64521) ── i2   instance B: Knot
//	                                        │
//	c3 ── r3 (AS64502) ─── ra and rb ───────┘   private peering with both sites
//
// What tests can rely on:
//   - i1 and i2 both hold 192.0.2.53 and 2001:db8:53::53 (service prefix
//     192.0.2.0/24, 2001:db8:53::/48, announced by ra and rb over eBGP).
//     A answers hostname.bind "i1.lab-a", NSID "i1-nsd", REFUSED for
//     version.bind; B answers "i2.lab-b", NSID "i2-knot".
//   - c1 (198.51.100.10, 2001:db8:100:1::10) lands on A, c2 (198.51.100.74,
//     2001:db8:101:1::10) on B. StopBGP("ra", "r1") moves c1 to B via
//     r1 → rt → r2 → rb.
//   - e1 balances everything beyond it over m1 and m2 by a hash of the
//     5-tuple (fib_multipath_hash_policy 3, fields 0x37): one flow always
//     takes one branch, different source ports spread over both.
//   - s2 forwards but never sends time-exceeded: it shows as "*".
//   - c3 (198.51.100.202, 2001:db8:102:1::10; SplitClient, not one of
//     Clients) has a catchment split by flow: its router r3 peers with ra
//     and rb, installs their equal routes as one ECMP route (BIRD "merge
//     paths") and hashes the 5-tuple like e1, so the source port decides
//     whether A or B answers (SplitPaths; IdentifyFromPort asks with dig
//     from a given port). r3 announces only its own prefixes: no path
//     between the sites crosses it.
//   - Routers send ICMP errors from the interface the probe came in on; the
//     kernel's default ICMP rate limits stay on (DisableICMPRateLimit lifts
//     them on one router when a test needs every reply).
//   - svc (198.51.100.130, 2001:db8:110:1::10, AS64510) is empty: tests
//     start their own whois or DNS servers there with Spawn.
//   - Other sysctls are the kernel's defaults, e.g. ping_group_range "1 0"
//     (no unprivileged ping sockets): SetSysctl on a client to allow them.
//
// Each AS numbers its links from its own block (ASes lists them): AS64500
// 198.51.100.0/26 2001:db8:100::/48, AS64501 198.51.100.64/26
// 2001:db8:101::/48, AS64510 198.51.100.128/26 2001:db8:110::/48, AS64520
// 203.0.113.0/26 2001:db8:120::/48, AS64521 203.0.113.64/26 2001:db8:121::/48,
// AS64502 198.51.100.192/26 2001:db8:102::/48.
//
// # Example
//
//	func TestLabIDReportsInstance(t *testing.T) {
//		ac := lab.StartAnycast(t) // skips or fails via lab.Require
//		bin := lab.Binary(t)      // $ANYCHECK_BIN or go build ./cmd/anycheck
//		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
//		defer cancel()
//		for _, client := range ac.Clients() {
//			want, _ := ac.InstanceOf(client)
//			out, _, err := ac.RunAs(ctx, client, lab.Nobody, bin, "id", ac.ServiceV4.String(), "-o", "json")
//			if err != nil {
//				t.Fatal(err)
//			}
//			// ... decode out, compare its NSID with want.NSID
//		}
//		if err := ac.StopBGP("ra", "r1"); err != nil {
//			t.Fatal(err)
//		}
//		if in, err := ac.WaitInstance(ctx, "c1"); err != nil || in != ac.B {
//			t.Fatalf("c1 did not move to B: %v", err)
//		}
//		for i, hop := range ac.ExpectedPath("c1", lab.IPv4) {
//			// hop.Silent(), hop.Has(addr), hop.Nodes for messages
//			_, _ = i, hop
//		}
//	}
//
// # Delays
//
// Link.Delay holds every frame crossing a link for that long each way
// (netem and nftables' queue expression are missing from this kernel): the
// link becomes two TAP devices, one in each namespace, joined through the
// test process, which copies frames across once they are due. Lab tests
// that measure waits or speed use StartAnycastDelayed, the standard lab with
// the round trips of real paths (c1 → A 36 ms, c2 → B 62 ms; each wire
// crossing adds a few tenths of a millisecond of scheduling on top).
//
// Start builds any other Topology the same way (see AnycastTopology for a
// complete description to copy from).
package lab
