package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"golang.org/x/sync/errgroup"
)

// convergeTimeout bounds the wait for BGP after start and after session changes.
const convergeTimeout = 30 * time.Second

var birdConf = template.Must(template.New("bird").Parse(`# BIRD 2 config for lab node {{.Node}} (AS{{.AS}})
log "{{.Log}}" all;
router id {{.RouterID}};

protocol device { scan time 2; }

# Only BGP-learned routes go to the kernel; originated prefixes exist only in
# BIRD (as unreachable statics) so the node's own static kernel routes stay.
protocol kernel kernel4 { ipv4 { import none; export where source = RTS_BGP; };{{if .Multipath}} merge paths yes;{{end}} }
protocol kernel kernel6 { ipv6 { import none; export where source = RTS_BGP; };{{if .Multipath}} merge paths yes;{{end}} }

protocol static originate4 {
	ipv4;
{{- range .Announce4}}
	route {{.}} unreachable;
{{- end}}
}
protocol static originate6 {
	ipv6;
{{- range .Announce6}}
	route {{.}} unreachable;
{{- end}}
}

# Short timers: a lab session must come up and fail over in about a second.
template bgp peer {
	connect delay time 0;
	connect retry time 1;
	error wait time 1, 2;
	hold time 6;
	keepalive time 2;
}
{{range .Sessions}}
protocol bgp {{.Name}} from peer {
	local {{.Local}} as {{$.AS}};
	neighbor {{.Remote}} as {{.RemoteAS}};
	{{.Channel}} { import all; export where source ~ [RTS_STATIC{{if not $.NoTransit}}, RTS_BGP{{end}}]; };
}
{{end}}`))

type birdSession struct {
	Name, Channel string
	Local, Remote netip.Addr
	RemoteAS      uint32
	Peer          string
	Family        Family
}

func (l *Lab) birdSock(node string) string { return filepath.Join(l.dir, node+".bird.ctl") }

// sessionName is the BIRD protocol name of node's session to peer.
func sessionName(peer string, f Family) string {
	return strings.NewReplacer("-", "_", ".", "_").Replace(peer) + "_v" + fmt.Sprint(int(f))
}

func (l *Lab) birdSessions(n *Node) ([]birdSession, error) {
	var out []birdSession
	for _, nb := range n.BGP.Neighbors {
		peer := l.nodes[nb.Node]
		if peer == nil || peer.BGP == nil {
			return nil, fmt.Errorf("node %s: BGP neighbour %q is not a BGP node", n.Name, nb.Node)
		}
		for _, f := range []Family{IPv4, IPv6} {
			local, ok1 := l.addrToward(n.Name, nb.Node, f)
			remote, ok2 := l.addrToward(nb.Node, n.Name, f)
			if !ok1 || !ok2 {
				continue // no such family on the link: no session
			}
			ch := "ipv4"
			if f == IPv6 {
				ch = "ipv6"
			}
			out = append(out, birdSession{Name: sessionName(nb.Node, f), Channel: ch, Local: local,
				Remote: remote, RemoteAS: peer.BGP.AS, Peer: nb.Node, Family: f})
		}
	}
	return out, nil
}

func (l *Lab) writeBirdConf(n *Node) (string, error) {
	sessions, err := l.birdSessions(n)
	if err != nil {
		return "", err
	}
	var rid netip.Addr
	if a := l.Addrs(n.Name, IPv4); len(a) > 0 {
		rid = a[0]
	} else {
		return "", fmt.Errorf("node %s: BIRD needs an IPv4 address for its router id", n.Name)
	}
	data := struct {
		Node, Log            string
		AS                   uint32
		RouterID             netip.Addr
		Announce4, Announce6 []netip.Prefix
		Sessions             []birdSession
		Multipath, NoTransit bool
	}{Node: n.Name, Log: filepath.Join(l.dir, n.Name+".bird.log"), AS: n.BGP.AS, RouterID: rid, Sessions: sessions,
		Multipath: n.BGP.Multipath, NoTransit: n.BGP.NoTransit}
	for _, p := range n.BGP.Announce {
		if p.Addr().Is4() {
			data.Announce4 = append(data.Announce4, p.Masked())
		} else {
			data.Announce6 = append(data.Announce6, p.Masked())
		}
	}
	var b bytes.Buffer
	if err := birdConf.Execute(&b, data); err != nil {
		return "", fmt.Errorf("node %s: BIRD config: %w", n.Name, err)
	}
	path := filepath.Join(l.dir, n.Name+".bird.conf")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("node %s: BIRD config: %w", n.Name, err)
	}
	return path, nil
}

// startBGP starts one BIRD per BGP node and waits until each control socket answers.
func (l *Lab) startBGP() error {
	var g errgroup.Group
	for i := range l.topo.Nodes {
		n := &l.topo.Nodes[i]
		if n.BGP == nil {
			continue
		}
		g.Go(func() error {
			conf, err := l.writeBirdConf(n)
			if err != nil {
				return err
			}
			// -f: stay in the foreground so the PID we hold is BIRD's.
			if _, err := l.Spawn(n.Name, "bird", "-f", "-c", conf, "-s", l.birdSock(n.Name),
				"-P", filepath.Join(l.dir, n.Name+".bird.pid")); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return poll(ctx, 50*time.Millisecond, func() error {
				_, err := l.Birdc(ctx, n.Name, "show", "status")
				return err
			})
		})
	}
	return g.Wait()
}

// Birdc runs a birdc command against node's BIRD and returns its output.
func (l *Lab) Birdc(ctx context.Context, node string, args ...string) ([]byte, error) {
	ns, err := l.nsOf(node)
	if err != nil {
		return nil, err
	}
	out, err := l.inNS(ctx, ns, append([]string{"birdc", "-s", l.birdSock(node)}, args...)...)
	if err != nil {
		return out, fmt.Errorf("birdc on %s: %w", node, err)
	}
	return out, nil
}

// StopBGP disables router's BGP sessions (IPv4 and IPv6) to peer, as an
// operator's "neighbor shutdown": the peer withdraws what it learned at once.
func (l *Lab) StopBGP(router, peer string) error { return l.setBGP(router, peer, false) }

// StartBGP re-enables sessions stopped with StopBGP.
func (l *Lab) StartBGP(router, peer string) error { return l.setBGP(router, peer, true) }

func (l *Lab) setBGP(router, peer string, up bool) error {
	n := l.nodes[router]
	if n == nil || n.BGP == nil {
		return fmt.Errorf("lab: %s is not a BGP router", router)
	}
	sessions, err := l.birdSessions(n)
	if err != nil {
		return err
	}
	verb := "disable"
	if up {
		verb = "enable"
	}
	found := false
	for _, s := range sessions {
		if s.Peer != peer {
			continue
		}
		found = true
		if _, err := l.Birdc(context.Background(), router, verb, s.Name); err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("lab: %s has no BGP session to %s", router, peer)
	}
	l.mu.Lock()
	key := [2]string{router, peer}
	if up {
		delete(l.disabled, key)
	} else {
		l.disabled[key] = true
	}
	l.mu.Unlock()
	return nil
}

// SessionUp reports whether the lab expects the BGP session between a and b
// to be established (both sides configured, neither stopped with StopBGP).
func (l *Lab) SessionUp(a, b string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.disabled[[2]string{a, b}] && !l.disabled[[2]string{b, a}]
}

// WaitConverged waits until every BGP router has a kernel route for every
// prefix announced by another BGP router it can reach over established
// sessions (IPv4 and IPv6), or ctx ends.
func (l *Lab) WaitConverged(ctx context.Context) error {
	start := time.Now()
	var g errgroup.Group
	for _, n := range l.topo.Nodes {
		if n.BGP == nil {
			continue
		}
		want, gone := l.reachablePrefixes(n.Name)
		g.Go(func() error {
			err := poll(ctx, 100*time.Millisecond, func() error {
				have, err := l.birdKernelRoutes(ctx, n.Name)
				if err != nil {
					return err
				}
				var missing, stale []netip.Prefix
				for _, p := range want {
					if !have[p] {
						missing = append(missing, p)
					}
				}
				for _, p := range gone {
					if have[p] {
						stale = append(stale, p)
					}
				}
				if len(missing) > 0 || len(stale) > 0 {
					return fmt.Errorf("%s lacks BGP routes for %v and still has %v", n.Name, missing, stale)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("BGP did not converge within %v (see %s/*.bird.log): %w",
					time.Since(start).Round(time.Millisecond), l.dir, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// reachablePrefixes lists prefixes originated by other BGP routers that
// node should learn over the sessions that are up (want), and those it must
// not have because their every origin is cut off (gone); its own are in neither.
func (l *Lab) reachablePrefixes(node string) (want, gone []netip.Prefix) {
	seen := map[string]bool{node: true}
	queue := []string{node}
	var out []netip.Prefix
	own := map[netip.Prefix]bool{}
	for _, p := range l.nodes[node].BGP.Announce {
		own[p.Masked()] = true
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur != node && l.nodes[cur].BGP.NoTransit {
			continue // its own prefixes only: it passes on nobody's routes
		}
		for _, nb := range l.nodes[cur].BGP.Neighbors {
			if seen[nb.Node] || !l.SessionUp(cur, nb.Node) {
				continue
			}
			seen[nb.Node] = true
			queue = append(queue, nb.Node)
			for _, p := range l.nodes[nb.Node].BGP.Announce {
				if !own[p.Masked()] && !slices.Contains(out, p.Masked()) {
					out = append(out, p.Masked())
				}
			}
		}
	}
	for _, n := range l.topo.Nodes {
		if n.BGP == nil {
			continue
		}
		for _, p := range n.BGP.Announce {
			p = p.Masked()
			if !own[p] && !slices.Contains(out, p) && !slices.Contains(gone, p) {
				gone = append(gone, p)
			}
		}
	}
	return out, gone
}

func (l *Lab) birdKernelRoutes(ctx context.Context, node string) (map[netip.Prefix]bool, error) {
	have := map[netip.Prefix]bool{}
	for _, fam := range []string{"-4", "-6"} {
		out, err := l.inNS(ctx, l.ns[node], "ip", fam, "route", "show", "proto", "bird")
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 {
				continue
			}
			if p, err := netip.ParsePrefix(f[0]); err == nil {
				have[p] = true
			}
		}
	}
	return have, nil
}

// poll calls f every interval until it returns nil or ctx ends; the error
// then names what f last reported.
func poll(ctx context.Context, interval time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
