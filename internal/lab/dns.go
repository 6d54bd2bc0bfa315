package lab

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// DNSServer is an authoritative server software the lab can run.
type DNSServer string

const (
	NSD  DNSServer = "nsd"
	Knot DNSServer = "knot"
)

// DNSInstance configures one DNS server in a node.
type DNSInstance struct {
	Server DNSServer
	// Identity answers CH TXT hostname.bind and id.server.
	Identity string
	// NSID is the EDNS NSID payload (RFC 5001), ASCII here.
	NSID string
	// Listen are the addresses it serves on (port 53).
	Listen []netip.Addr
	// Zone is a small zone it serves, with a TXT record naming the instance.
	Zone string
	// DnstapSocket, when set, makes the server log every client query
	// (and NSD its responses too) as dnstap to this Frame Streams unix
	// socket, with the NSID as the dnstap identity (see StartDnstap).
	DnstapSocket string
}

const zoneTmpl = `$ORIGIN {{.Zone}}.
$TTL 300
@	IN SOA	ns.{{.Zone}}. hostmaster.{{.Zone}}. 1 3600 600 86400 300
@	IN NS	ns.{{.Zone}}.
ns	IN A	{{.V4}}
ns	IN AAAA	{{.V6}}
instance	IN TXT	"{{.Identity}}"
`

var nsdConf = template.Must(template.New("nsd").Parse(`# NSD for lab node {{.Node}}
server:
	server-count: 1
{{- range .Listen}}
	ip-address: {{.}}
{{- end}}
	port: 53
	username: ""
	chroot: ""
	zonesdir: "{{.Dir}}"
	database: ""
	pidfile: "{{.Dir}}/nsd.pid"
	xfrdfile: "{{.Dir}}/xfrd.state"
	xfrdir: "{{.Dir}}"
	zonelistfile: "{{.Dir}}/zone.list"
	logfile: "{{.Dir}}/nsd.log"
	identity: "{{.Identity}}"
	nsid: "ascii_{{.NSID}}"
	hide-version: yes
	verbosity: 1
{{- if .DnstapSocket}}
dnstap:
	dnstap-enable: yes
	dnstap-socket-path: "{{.DnstapSocket}}"
	dnstap-send-identity: yes
	dnstap-identity: "{{.NSID}}"
	dnstap-send-version: yes
	dnstap-log-auth-query-messages: yes
	dnstap-log-auth-response-messages: yes
{{- end}}
remote-control:
	control-enable: no
zone:
	name: "{{.Zone}}"
	zonefile: "{{.Dir}}/{{.Zone}}.zone"
`))

var knotConf = template.Must(template.New("knot").Parse(`# Knot DNS for lab node {{.Node}}
server:
    rundir: "{{.Dir}}"
    pidfile: "{{.Dir}}/knot.pid"
    identity: "{{.Identity}}"
    nsid: "{{.NSID}}"
    listen: [{{range $i, $a := .Listen}}{{if $i}}, {{end}}"{{$a}}@53"{{end}}]
control:
    listen: "{{.Dir}}/knot.sock"
database:
    storage: "{{.Dir}}"
log:
  - target: "{{.Dir}}/knot.log"
    any: info
{{- if .DnstapSocket}}
mod-dnstap:
  - id: tap
    sink: "unix:{{.DnstapSocket}}"
    identity: "{{.NSID}}"
    log-queries: on
    log-responses: off
{{- end}}
template:
  - id: default
    storage: "{{.Dir}}"
{{- if .DnstapSocket}}
    global-module: mod-dnstap/tap
{{- end}}
zone:
  - domain: "{{.Zone}}"
    file: "{{.Dir}}/{{.Zone}}.zone"
`))

// StartDNS starts a DNS server in node and waits (bounded) until it answers
// CH TXT hostname.bind with its identity on each listen address, queried
// from inside the node itself so no routing is needed yet.
func (l *Lab) StartDNS(node string, d DNSInstance) error {
	if _, err := l.nsOf(node); err != nil {
		return err
	}
	if len(d.Listen) == 0 {
		return fmt.Errorf("lab: DNS on %s: no listen addresses", node)
	}
	if d.Zone == "" {
		d.Zone = "service.example"
	}
	dir := filepath.Join(l.dir, node+"."+string(d.Server))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lab: DNS on %s: %w", node, err)
	}
	data := struct {
		DNSInstance
		Node, Dir string
		V4, V6    netip.Addr
	}{DNSInstance: d, Node: node, Dir: dir, V4: netip.MustParseAddr("192.0.2.53"), V6: netip.MustParseAddr("2001:db8:53::53")}
	for _, a := range d.Listen {
		if a.Is4() {
			data.V4 = a
		} else {
			data.V6 = a
		}
	}
	var zone, conf bytes.Buffer
	if err := template.Must(template.New("zone").Parse(zoneTmpl)).Execute(&zone, data); err != nil {
		return fmt.Errorf("lab: DNS on %s: zone: %w", node, err)
	}
	if err := os.WriteFile(filepath.Join(dir, d.Zone+".zone"), zone.Bytes(), 0o644); err != nil {
		return fmt.Errorf("lab: DNS on %s: zone: %w", node, err)
	}
	var argv []string
	confPath := filepath.Join(dir, string(d.Server)+".conf")
	switch d.Server {
	case NSD:
		if err := nsdConf.Execute(&conf, data); err != nil {
			return fmt.Errorf("lab: NSD on %s: %w", node, err)
		}
		argv = []string{"nsd", "-d", "-c", confPath} // -d: foreground, our PID is NSD's
	case Knot:
		if err := knotConf.Execute(&conf, data); err != nil {
			return fmt.Errorf("lab: Knot on %s: %w", node, err)
		}
		argv = []string{"knotd", "-c", confPath} // foreground by default
	default:
		return fmt.Errorf("lab: DNS on %s: unknown server %q", node, d.Server)
	}
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("lab: DNS on %s: %w", node, err)
	}
	if _, err := l.Spawn(node, argv...); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, a := range d.Listen {
		err := poll(ctx, 100*time.Millisecond, func() error {
			id, err := l.Identify(ctx, node, a)
			if err != nil {
				return err
			}
			if id.Hostname != d.Identity || id.NSID != d.NSID {
				return fmt.Errorf("answered %+v, want hostname.bind %q and NSID %q", id, d.Identity, d.NSID)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("lab: %s on %s did not answer on %s (log in %s): %w", d.Server, node, a, dir, err)
		}
	}
	return nil
}

// Identity is what a DNS server says about itself.
type Identity struct {
	Hostname string // CH TXT hostname.bind
	NSID     string // EDNS NSID, as text
}

var (
	digTXT  = regexp.MustCompile(`(?m)^hostname\.bind\.\s+\d+\s+CH\s+TXT\s+"([^"]*)"`)
	digNSID = regexp.MustCompile(`(?m)^; NSID: [0-9a-f ]+\("([^"]*)"\)`)
)

// Identify asks addr for CH TXT hostname.bind with NSID, using dig inside
// node's namespace (one try, 1 s timeout).
func (l *Lab) Identify(ctx context.Context, node string, addr netip.Addr) (Identity, error) {
	out, stderr, err := l.Run(ctx, node, "dig", "@"+addr.String(), "+time=1", "+tries=1",
		"+norecurse", "+nsid", "CH", "TXT", "hostname.bind")
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s%s", err, bytes.TrimSpace(out), bytes.TrimSpace(stderr))
	}
	return parseDig(out)
}

// IdentifyFromPort is Identify from a given source address and port (dig
// -b ADDR#PORT): the flow a load balancer hashes is then the one a tracer
// used from that port.
func (l *Lab) IdentifyFromPort(ctx context.Context, node string, src netip.AddrPort, addr netip.Addr) (Identity, error) {
	out, stderr, err := l.Run(ctx, node, "dig", "-b", fmt.Sprintf("%s#%d", src.Addr(), src.Port()), "@"+addr.String(),
		"+time=1", "+tries=1", "+norecurse", "+nsid", "CH", "TXT", "hostname.bind")
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s%s", err, bytes.TrimSpace(out), bytes.TrimSpace(stderr))
	}
	return parseDig(out)
}

func parseDig(out []byte) (Identity, error) {
	var id Identity
	if m := digTXT.FindSubmatch(out); m != nil {
		id.Hostname = string(m[1])
	}
	if m := digNSID.FindSubmatch(out); m != nil {
		id.NSID = string(m[1])
	}
	if id.Hostname == "" && id.NSID == "" {
		return id, fmt.Errorf("no hostname.bind or NSID in dig output: %s", strings.TrimSpace(string(out)))
	}
	return id, nil
}
