package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// Family selects IPv4 or IPv6 where a lab answer depends on it.
type Family int

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

func (f Family) has(a netip.Addr) bool { return a.Is4() == (f == IPv4) }

// Topology describes a lab: namespaces (nodes) and the links between them.
type Topology struct {
	Nodes []Node
	Links []Link
}

// Node is one network namespace.
type Node struct {
	// Name is short and readable ("c1", "r1"); at most 12 characters because
	// it doubles as the interface name its neighbours use for the link to it.
	Name string
	// Router turns on IPv4/IPv6 forwarding and makes ICMP errors come from
	// the interface the offending packet arrived on, as operators' routers do.
	Router bool
	// Service addresses live on lo (anycast addresses, loopbacks); give
	// them as /32 or /128.
	Service []netip.Prefix
	// Routes are static kernel routes; BGP routes come from BIRD.
	Routes []Route
	// Sysctls are applied after the defaults (keys as for sysctl -w).
	Sysctls map[string]string
	// NFT, when set, is an nftables ruleset loaded into the namespace.
	NFT string
	// BGP, when set, runs BIRD 2 in the namespace.
	BGP *BGP
}

// Route is a static route; several Via addresses make an ECMP multipath route.
type Route struct {
	Dst netip.Prefix
	Via []netip.Addr
}

// Link joins two or more nodes. Two ends become one veth pair; more ends are
// joined by a bridge living in its own hidden namespace (one L2 segment, so a
// router on it answers traceroutes from one address whatever neighbour the
// probe came from).
type Link struct {
	// Name of a multi-end segment; it is the interface name on every member.
	// Ignored for two-end links, where each end's interface is named after
	// the node on the other side (so two nodes share at most one such link).
	Name string
	Ends []End
	// Delay, when set, holds every frame crossing the link for this long
	// in each direction (the round trip across it is twice Delay): a
	// stand-in for distance, so that wait policies meet real RTTs. The
	// link is then a pair of TAP devices joined through the test process
	// instead of a veth pair (see wire_linux.go); on a segment, each
	// member's port holds frames for Delay/2 each way, so any two members
	// are Delay apart. At most MaxDelay.
	Delay time.Duration
}

// MaxDelay bounds Link.Delay: a lab is for RTTs of real paths, not for
// timeouts.
const MaxDelay = time.Second

// End is one node's side of a link and its addresses (address with prefix
// length, e.g. 198.51.100.1/30, 2001:db8:100:1::1/64).
type End struct {
	Node  string
	Addrs []netip.Prefix
}

// BGP configures BIRD 2 on a router: one eBGP session per neighbour and
// family, and the prefixes this router originates.
type BGP struct {
	AS        uint32
	Announce  []netip.Prefix
	Neighbors []Neighbor
	// Multipath installs equal BGP routes from several neighbours as one
	// ECMP kernel route (BIRD's "merge paths" in the kernel protocol), so
	// the node balances flows over them by its fib_multipath_hash_policy.
	Multipath bool
	// NoTransit announces only the node's own prefixes, as a customer
	// network does: it learns everyone's routes but carries no traffic
	// between its neighbours.
	NoTransit bool
}

// Neighbor is an eBGP peer: a node with BGP, reached over the direct link
// between the two (the session uses both ends' addresses on that link).
type Neighbor struct {
	Node string
}

// Lab is a running topology. All methods are safe for concurrent use.
type Lab struct {
	t    testing.TB
	id   string // random per run, part of every namespace name
	dir  string // configs, sockets, logs
	topo Topology

	nodes map[string]*Node
	ns    map[string]string // node name -> namespace name

	mu       sync.Mutex
	procs    []*exec.Cmd
	wires    []*wire            // delayed links, closed at teardown
	disabled map[[2]string]bool // BGP sessions stopped with StopBGP
}

const cmdTimeout = 20 * time.Second

// Start builds the topology, starts BIRD where BGP is configured, and waits
// (bounded) for BGP to converge. Everything is torn down at test end, also on
// failure: daemons are killed by PID and the namespaces deleted.
func Start(t testing.TB, topo Topology) *Lab {
	t.Helper()
	Require(t)
	l, err := newLab(t, topo)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	if err := l.build(); err != nil {
		t.Fatalf("lab: %v", err)
	}
	if err := l.startBGP(); err != nil {
		t.Fatalf("lab: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	if err := l.WaitConverged(ctx); err != nil {
		t.Fatalf("lab: %v", err)
	}
	return l
}

func newLab(t testing.TB, topo Topology) (*Lab, error) {
	l, err := describe(t, topo)
	if err != nil {
		return nil, err
	}
	if swept := sweepStale(context.Background()); len(swept) > 0 {
		t.Logf("lab: removed labs left by killed test processes: %v", swept)
	}
	if err := l.record(); err != nil {
		return nil, err
	}
	// Registered before anything exists, so a half-built lab is removed too.
	t.Cleanup(l.teardown)
	return l, nil
}

// describe checks a topology and names its namespaces without creating
// anything, so address and path models can be tested without root.
func describe(t testing.TB, topo Topology) (*Lab, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("random lab id: %w", err)
	}
	l := &Lab{
		t:        t,
		id:       "ac" + hex.EncodeToString(b[:]),
		dir:      t.TempDir(),
		topo:     topo,
		nodes:    map[string]*Node{},
		ns:       map[string]string{},
		disabled: map[[2]string]bool{},
	}
	for i := range topo.Nodes {
		n := &topo.Nodes[i]
		if n.Name == "" || len(n.Name) > 12 || strings.ContainsAny(n.Name, " /") {
			return nil, fmt.Errorf("node name %q: want 1-12 characters, no spaces or slashes", n.Name)
		}
		if _, dup := l.nodes[n.Name]; dup {
			return nil, fmt.Errorf("node %q defined twice", n.Name)
		}
		l.nodes[n.Name] = n
		l.ns[n.Name] = l.id + "-" + n.Name
	}
	for _, lk := range topo.Links {
		if len(lk.Ends) < 2 {
			return nil, fmt.Errorf("link %q: needs at least two ends", lk.Name)
		}
		if len(lk.Ends) > 2 && (lk.Name == "" || len(lk.Name) > 12) {
			return nil, fmt.Errorf("segment with %d ends: needs a Name of 1-12 characters", len(lk.Ends))
		}
		if lk.Delay < 0 || lk.Delay > MaxDelay {
			return nil, fmt.Errorf("link %s: delay %v: want 0 to %v", linkName(lk), lk.Delay, MaxDelay)
		}
		for _, e := range lk.Ends {
			if l.nodes[e.Node] == nil {
				return nil, fmt.Errorf("link %q: unknown node %q", lk.Name, e.Node)
			}
		}
	}
	return l, nil
}

// Namespace returns the network namespace name of a node (for `ip netns exec`).
func (l *Lab) Namespace(node string) string { return l.ns[node] }

// segments returns the namespaces used for multi-end links, by link index.
func (l *Lab) segmentNS(i int) string { return fmt.Sprintf("%s-sw%d", l.id, i) }

func (l *Lab) allNamespaces() []string {
	var out []string
	for _, n := range l.topo.Nodes {
		out = append(out, l.ns[n.Name])
	}
	for i, lk := range l.topo.Links {
		if len(lk.Ends) > 2 {
			out = append(out, l.segmentNS(i))
		}
	}
	return out
}

// host runs a command in the host namespace (only ever `ip` to manage
// namespaces and links; nothing is configured on the host itself).
func host(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func cmdOutput(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	return string(out), err
}

// inNS runs argv inside a namespace and returns an error carrying stderr.
func (l *Lab) inNS(ctx context.Context, ns string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("in %s: %s: %w: %s", ns, strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func (l *Lab) build() error {
	ctx := context.Background()
	// 1. Namespaces with loopback up and sysctls set before any interface
	// exists, so every interface inherits the "default" values.
	var g errgroup.Group
	for _, ns := range l.allNamespaces() {
		g.Go(func() error {
			if err := host(ctx, "ip", "netns", "add", ns); err != nil {
				return err
			}
			return host(ctx, "ip", "-n", ns, "link", "set", "lo", "up")
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, n := range l.topo.Nodes {
		g.Go(func() error { return l.nodeSysctls(ctx, n) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// 2. Links. Interface names only need to be unique inside a namespace.
	for i, lk := range l.topo.Links {
		g.Go(func() error { return l.makeLink(ctx, i, lk) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// 3. Per node: service addresses, routes, firewall.
	for _, n := range l.topo.Nodes {
		g.Go(func() error { return l.configureNode(ctx, n) })
	}
	return g.Wait()
}

func (l *Lab) nodeSysctls(ctx context.Context, n Node) error {
	kv := map[string]string{
		// Return paths may be asymmetric (the ECMP diamond): never drop them.
		"net.ipv4.conf.all.rp_filter":     "0",
		"net.ipv4.conf.default.rp_filter": "0",
		"net.ipv6.conf.all.accept_ra":     "0",
		"net.ipv6.conf.default.accept_ra": "0",
		// No duplicate address detection, link-local addresses included:
		// while fe80:: is tentative, neighbour discovery on a fresh link
		// stalls for about a second and the first IPv6 packets are lost.
		"net.ipv6.conf.all.accept_dad":     "0",
		"net.ipv6.conf.default.accept_dad": "0",
	}
	if n.Router {
		kv["net.ipv4.ip_forward"] = "1"
		kv["net.ipv6.conf.all.forwarding"] = "1"
		kv["net.ipv4.icmp_errors_use_inbound_ifaddr"] = "1"
	}
	for k, v := range n.Sysctls {
		kv[k] = v
	}
	return l.sysctl(ctx, l.ns[n.Name], kv)
}

func (l *Lab) sysctl(ctx context.Context, ns string, kv map[string]string) error {
	args := []string{"sysctl", "-q", "-w"}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys) // forwarding before per-interface keys it would reset
	for _, k := range keys {
		args = append(args, k+"="+kv[k])
	}
	_, err := l.inNS(ctx, ns, args...)
	return err
}

// SetSysctl sets one sysctl inside a node's namespace, e.g.
// SetSysctl("m1", "net.ipv4.icmp_ratelimit", "0").
func (l *Lab) SetSysctl(node, key, value string) error {
	ns, err := l.nsOf(node)
	if err != nil {
		return err
	}
	return l.sysctl(context.Background(), ns, map[string]string{key: value})
}

// DisableICMPRateLimit sets the IPv4 and IPv6 ICMP error rate limits of a
// router to 0, for tests that need every reply in a burst of probes.
func (l *Lab) DisableICMPRateLimit(node string) error {
	ns, err := l.nsOf(node)
	if err != nil {
		return err
	}
	return l.sysctl(context.Background(), ns, map[string]string{
		"net.ipv4.icmp_ratelimit": "0", "net.ipv6.icmp.ratelimit": "0",
	})
}

func (l *Lab) nsOf(node string) (string, error) {
	ns, ok := l.ns[node]
	if !ok {
		return "", fmt.Errorf("lab: unknown node %q", node)
	}
	return ns, nil
}

// linkName names a link in messages: its segment name or its two ends.
func linkName(lk Link) string {
	if len(lk.Ends) != 2 {
		return lk.Name
	}
	return lk.Ends[0].Node + "-" + lk.Ends[1].Node
}

// pair joins devices nameA in nsA and nameB in nsB: a veth pair, or a
// wire holding frames for delay each way.
func (l *Lab) pair(ctx context.Context, nsA, nameA, nsB, nameB string, delay time.Duration) error {
	if delay == 0 {
		return host(ctx, "ip", "-n", nsA, "link", "add", "name", nameA, "type", "veth",
			"peer", "name", nameB, "netns", nsB)
	}
	w, err := newWire(nsA, nameA, nsB, nameB, delay, delay)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.wires = append(l.wires, w)
	l.mu.Unlock()
	return nil
}

func (l *Lab) makeLink(ctx context.Context, i int, lk Link) error {
	if len(lk.Ends) == 2 {
		a, b := lk.Ends[0], lk.Ends[1]
		if err := l.pair(ctx, l.ns[a.Node], b.Node, l.ns[b.Node], a.Node, lk.Delay); err != nil {
			return fmt.Errorf("link %s-%s: %w", a.Node, b.Node, err)
		}
		if err := l.upEnd(ctx, a, b.Node); err != nil {
			return err
		}
		return l.upEnd(ctx, b, a.Node)
	}
	sw := l.segmentNS(i)
	// No STP, no multicast snooping: ports forward at once and neighbour
	// discovery is flooded like on a dumb switch.
	if err := host(ctx, "ip", "-n", sw, "link", "add", "name", "br0", "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return fmt.Errorf("segment %s: %w", lk.Name, err)
	}
	if err := host(ctx, "ip", "-n", sw, "link", "set", "br0", "up"); err != nil {
		return fmt.Errorf("segment %s: %w", lk.Name, err)
	}
	for _, e := range lk.Ends {
		if err := l.pair(ctx, sw, e.Node, l.ns[e.Node], lk.Name, lk.Delay/2); err != nil {
			return fmt.Errorf("segment %s, port %s: %w", lk.Name, e.Node, err)
		}
		if err := host(ctx, "ip", "-n", sw, "link", "set", e.Node, "master", "br0"); err != nil {
			return fmt.Errorf("segment %s, port %s: %w", lk.Name, e.Node, err)
		}
		if _, err := l.inNS(ctx, sw, "ethtool", "-K", e.Node, "tx", "off"); err != nil {
			return err
		}
		if err := host(ctx, "ip", "-n", sw, "link", "set", e.Node, "up"); err != nil {
			return err
		}
		if err := l.upEnd(ctx, e, lk.Name); err != nil {
			return err
		}
	}
	return nil
}

// upEnd configures one end of a link: checksum offload off, addresses, up.
func (l *Lab) upEnd(ctx context.Context, e End, dev string) error {
	ns := l.ns[e.Node]
	// With tx checksum offload a veth hands unfinished checksums across, and
	// ICMP errors then quote them: probes tagged by checksum would not match.
	if _, err := l.inNS(ctx, ns, "ethtool", "-K", dev, "tx", "off"); err != nil {
		return err
	}
	for _, p := range e.Addrs {
		if err := addAddr(ctx, ns, dev, p); err != nil {
			return err
		}
	}
	return host(ctx, "ip", "-n", ns, "link", "set", dev, "up")
}

func addAddr(ctx context.Context, ns, dev string, p netip.Prefix) error {
	args := []string{"-n", ns, "addr", "add", p.String(), "dev", dev}
	if p.Addr().Is6() {
		// No duplicate address detection: the address is usable at once
		// (BIRD binds to it, daemons listen on it) instead of after ~2 s.
		args = append(args, "nodad")
	}
	return host(ctx, "ip", args...)
}

func (l *Lab) configureNode(ctx context.Context, n Node) error {
	ns := l.ns[n.Name]
	// Service addresses go on lo: this kernel has no dummy interfaces.
	for _, p := range n.Service {
		if err := addAddr(ctx, ns, "lo", p); err != nil {
			return err
		}
	}
	for _, r := range n.Routes {
		args := []string{"-n", ns}
		if r.Dst.Addr().Is6() {
			args = append(args, "-6")
		}
		args = append(args, "route", "add", r.Dst.String())
		switch len(r.Via) {
		case 0:
			return fmt.Errorf("node %s: route %s has no next hop", n.Name, r.Dst)
		case 1:
			args = append(args, "via", r.Via[0].String())
		default:
			for _, v := range r.Via {
				args = append(args, "nexthop", "via", v.String())
			}
		}
		if err := host(ctx, "ip", args...); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	if n.NFT != "" {
		f := filepath.Join(l.dir, n.Name+".nft")
		if err := os.WriteFile(f, []byte(n.NFT), 0o644); err != nil {
			return fmt.Errorf("node %s: nftables ruleset: %w", n.Name, err)
		}
		if _, err := l.inNS(ctx, ns, "nft", "-f", f); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// Addr returns node's address of the given family on its link to peer (for
// a segment, peer is the segment's Name). It fails the test when there is none.
func (l *Lab) Addr(node, peer string, f Family) netip.Addr {
	l.t.Helper()
	if a, ok := l.addrToward(node, peer, f); ok {
		return a
	}
	l.t.Fatalf("lab: node %s has no %v address toward %s", node, f, peer)
	return netip.Addr{}
}

func (l *Lab) addrToward(node, peer string, f Family) (netip.Addr, bool) {
	for _, lk := range l.topo.Links {
		for i, e := range lk.Ends {
			if e.Node != node {
				continue
			}
			if len(lk.Ends) == 2 && lk.Ends[1-i].Node != peer {
				continue
			}
			if len(lk.Ends) > 2 && lk.Name != peer {
				continue
			}
			for _, p := range e.Addrs {
				if f.has(p.Addr()) {
					return p.Addr(), true
				}
			}
		}
	}
	return netip.Addr{}, false
}

// Addrs returns every address of a node of the given family, link addresses
// first in topology order, then service addresses.
func (l *Lab) Addrs(node string, f Family) []netip.Addr {
	var out []netip.Addr
	for _, lk := range l.topo.Links {
		for _, e := range lk.Ends {
			if e.Node != node {
				continue
			}
			for _, p := range e.Addrs {
				if f.has(p.Addr()) {
					out = append(out, p.Addr())
				}
			}
		}
	}
	if n := l.nodes[node]; n != nil {
		for _, p := range n.Service {
			if f.has(p.Addr()) {
				out = append(out, p.Addr())
			}
		}
	}
	return out
}

// NodeOf names the node that owns an address ("" if none): handy in failure
// messages ("hop 2: 198.51.100.18 (m1)").
func (l *Lab) NodeOf(a netip.Addr) string {
	for _, n := range l.topo.Nodes {
		if slices.Contains(l.Addrs(n.Name, IPv4), a) || slices.Contains(l.Addrs(n.Name, IPv6), a) {
			return n.Name
		}
	}
	return ""
}

// User is a uid/gid pair for commands that must not run as root.
type User struct{ UID, GID int }

// Nobody is the conventional unprivileged user.
var Nobody = User{UID: 65534, GID: 65534}

// Command returns a command that runs inside node's namespace as root.
// It is not started; the caller owns it.
func (l *Lab) Command(ctx context.Context, node, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.mustNS(node), name}, args...)...)
}

// CommandAs is Command run as an unprivileged user (setpriv drops root after
// entering the namespace, with no supplementary groups and no capabilities).
func (l *Lab) CommandAs(ctx context.Context, node string, u User, name string, args ...string) *exec.Cmd {
	argv := []string{"netns", "exec", l.mustNS(node), "setpriv",
		fmt.Sprintf("--reuid=%d", u.UID), fmt.Sprintf("--regid=%d", u.GID), "--clear-groups",
		"--inh-caps=-all", "--", name}
	return exec.CommandContext(ctx, "ip", append(argv, args...)...)
}

func (l *Lab) mustNS(node string) string {
	ns, ok := l.ns[node]
	if !ok {
		// An unknown node is a bug in the test; the command then fails
		// visibly in ip netns exec with this name.
		return "unknown-lab-node-" + node
	}
	return ns
}

// Run runs argv inside node's namespace as root and returns its output; err
// is non-nil when it could not run or exited non-zero.
func (l *Lab) Run(ctx context.Context, node string, argv ...string) (stdout, stderr []byte, err error) {
	if len(argv) == 0 {
		return nil, nil, fmt.Errorf("lab: Run on %s: empty command", node)
	}
	return runCmd(l.Command(ctx, node, argv[0], argv[1:]...), node, argv)
}

// RunAs is Run as an unprivileged user.
func (l *Lab) RunAs(ctx context.Context, node string, u User, argv ...string) (stdout, stderr []byte, err error) {
	if len(argv) == 0 {
		return nil, nil, fmt.Errorf("lab: RunAs on %s: empty command", node)
	}
	return runCmd(l.CommandAs(ctx, node, u, argv[0], argv[1:]...), node, argv)
}

func runCmd(cmd *exec.Cmd, node string, argv []string) ([]byte, []byte, error) {
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return o.Bytes(), e.Bytes(), fmt.Errorf("on %s: %s: %w", node, strings.Join(argv, " "), err)
	}
	return o.Bytes(), e.Bytes(), nil
}

// Spawn starts argv in the background inside node's namespace, with output
// to the lab directory, <node>-<argv0>.log. It is killed (by PID, SIGTERM then SIGKILL,
// with its process group) at test end.
func (l *Lab) Spawn(node string, argv ...string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("lab: Spawn on %s: empty command", node)
	}
	ns, err := l.nsOf(node)
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(l.dir, node+"-"+filepath.Base(argv[0])+".log"),
		os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: Spawn on %s: %w", node, err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group, so daemons' worker children are stopped with them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: Spawn on %s: %s: %w", node, strings.Join(argv, " "), err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, cmd)
	l.mu.Unlock()
	return cmd, nil
}

// teardown kills spawned processes (newest first) and deletes namespaces.
func (l *Lab) teardown() {
	start := time.Now()
	if l.t.Failed() {
		l.dumpLogs()
	}
	l.mu.Lock()
	procs := slices.Clone(l.procs)
	l.procs = nil
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, cmd := range slices.Backward(procs) {
		wg.Go(func() { stopProcess(cmd) })
	}
	wg.Wait()
	// An open TAP device keeps its namespace alive: close the wires first.
	l.mu.Lock()
	wires := l.wires
	l.wires = nil
	l.mu.Unlock()
	for _, w := range wires {
		wg.Go(w.close)
	}
	wg.Wait()
	var g errgroup.Group
	for _, ns := range l.allNamespaces() {
		g.Go(func() error {
			err := host(context.Background(), "ip", "netns", "del", ns)
			if err != nil && !strings.Contains(err.Error(), "No such file") {
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		l.t.Errorf("lab teardown: %v", err)
	} else {
		_ = os.Remove(l.stateFile())
	}
	l.t.Logf("lab %s: teardown took %v", l.id, time.Since(start).Round(time.Millisecond))
}

// dumpLogs puts the tail of every daemon log into the test log: the temp
// dir holding them is removed right after teardown.
func (l *Lab) dumpLogs() {
	logs, _ := filepath.Glob(filepath.Join(l.dir, "*.log"))
	more, _ := filepath.Glob(filepath.Join(l.dir, "*", "*.log"))
	for _, f := range append(logs, more...) {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		l.t.Logf("lab %s: tail of %s:\n%s", l.id, strings.TrimPrefix(f, l.dir+"/"), strings.Join(lines, "\n"))
	}
}

func stopProcess(cmd *exec.Cmd) {
	pid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
	// Children that outlived their parent's TERM handling.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// LoseAnswers makes about percent of the DNS answers a node sends get lost
// on the way (UDP from port 53, both families, chosen at random per packet
// by nftables' numgen): an instance that answers 7 of 10 queries
// (LoseAnswers("i1", 30)) as a lossy access or an overloaded server does.
// 0 takes the rule away again.
//
// The answers are dropped where they arrive at the node's neighbours (a
// netdev ingress rule on the interface facing the node, in the neighbour's
// namespace or the segment's), not on their way out of the node: a drop in
// the node's own output hook fails the server's send with EPERM, and NSD
// then gives up the rest of the answers it was sending in one sendmmsg
// batch, so a burst of queries lost all its answers together instead of
// each answer on its own.
func (l *Lab) LoseAnswers(node string, percent int) error {
	if _, err := l.nsOf(node); err != nil {
		return err
	}
	if percent < 0 || percent > 100 {
		return fmt.Errorf("lab: LoseAnswers on %s: %d %% is no share", node, percent)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	table := "lossy_" + node
	for _, ns := range l.neighbourSides(node) {
		// Taking the table away first makes the call idempotent; it may
		// not exist yet.
		_, _ = l.inNS(ctx, ns, "nft", "delete", "table", "netdev", table)
		if percent == 0 {
			continue
		}
		// The interface facing node is named after it, on a neighbour
		// and on a segment's bridge alike.
		rules := fmt.Sprintf(`table netdev %s {
	chain answers {
		type filter hook ingress device %q priority 0; policy accept;
		udp sport 53 numgen random mod 100 < %d drop
	}
}
`, table, node, percent)
		f := filepath.Join(l.dir, fmt.Sprintf("%s.lossy.%s.nft", node, ns))
		if err := os.WriteFile(f, []byte(rules), 0o644); err != nil {
			return fmt.Errorf("lab: LoseAnswers on %s: %w", node, err)
		}
		if _, err := l.inNS(ctx, ns, "nft", "-f", f); err != nil {
			return fmt.Errorf("lab: LoseAnswers on %s: %w", node, err)
		}
	}
	return nil
}

// neighbourSides are the namespaces holding the far side of node's links:
// the other end of a two-end link, a segment's bridge. In each, the
// interface facing node is named after it.
func (l *Lab) neighbourSides(node string) []string {
	var out []string
	for i, lk := range l.topo.Links {
		for j, e := range lk.Ends {
			if e.Node != node {
				continue
			}
			if len(lk.Ends) == 2 {
				out = append(out, l.ns[lk.Ends[1-j].Node])
			} else {
				out = append(out, l.segmentNS(i))
			}
		}
	}
	return out
}
