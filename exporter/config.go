package exporter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/internal/netutil"
	"github.com/anycheck/anycheck/measure"
	"github.com/anycheck/anycheck/trace"
)

// maxConfigSize bounds a configuration file: it is read whole.
const maxConfigSize = 1 << 20

// Limits of a module's settings: a probe at scrape time must stay small.
const (
	maxFlows   = 64
	maxNames   = 8
	maxQueries = 10
)

// Config is the exporter's configuration: the modules a /probe request
// may name.
type Config struct {
	// Modules by name, each a kind of probe.
	Modules map[string]*Module `yaml:"modules"`
	// SitesFile is a site-hint table (catchment/sites.txt format) checked
	// before the built-in one: it names the sites of instances
	// (anycheck_instance_info's site label) and the naming the hints of a
	// module with `hints: true` expect.
	SitesFile string `yaml:"sites_file"`

	sites *catchment.Sites
}

// Module is what one probe is: an identity query set (ID), a trace (Trace),
// or both — then the trace runs first and the identity is asked over the
// trace's flow (same source port), so the instance named is the one at the
// end of the path measured.
type Module struct {
	// Timeout bounds a probe of this module; the scrape's own timeout
	// (X-Prometheus-Scrape-Timeout-Seconds, less the exporter's offset)
	// bounds it too. 0: the scrape's alone.
	Timeout time.Duration `yaml:"timeout"`
	// AllowedTargets are the targets a probe may be sent to: addresses,
	// prefixes (192.0.2.0/24) and host names. Nothing else is probed: an
	// exporter must not be an open relay for probing the Internet.
	AllowedTargets []string `yaml:"allowed_targets"`
	// IPProtocol is the family a host-name target is resolved to: ip4,
	// ip6, or "" for the first address the resolver gives.
	IPProtocol string `yaml:"ip_protocol"`

	ID    *IDModule    `yaml:"id"`
	Trace *TraceModule `yaml:"trace"`

	name    string
	allowed []netip.Prefix
	names   []string // lower case, without the trailing dot
}

// IDModule is the identity part of a module: CHAOS TXT queries with EDNS
// NSID over one flow, or several.
type IDModule struct {
	// Names are the CHAOS TXT names asked (hostname.bind, id.server).
	Names []string `yaml:"names"`
	// Version also asks version.bind and version.server.
	Version bool `yaml:"version"`
	// Port is the service's port (53).
	Port uint16 `yaml:"port"`
	// Protocol is udp (TCP when an answer is truncated) or tcp.
	Protocol string `yaml:"protocol"`
	// Flows asks the query set over this many flows (source ports) at
	// once: anycheck_flows_instances and anycheck_catchment_split say
	// whether the catchment depends on the flow (ECMP). Default 1.
	Flows int `yaml:"flows"`
	// QueryTimeout is the wait for each answer (2s), within the probe's.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// Hints judges the answers without a population to compare with:
	// the flags of an answer an authoritative server would not set, and
	// names unlike the naming of the target's operator in the site table
	// (anycheck_answers_unlike_service). An answer unlike the service
	// names no instance and fails the probe.
	Hints bool `yaml:"hints"`
}

// TraceModule is the path part of a module: a Paris traceroute.
type TraceModule struct {
	// Protocol is udp (DNS queries as probes), tcp or icmp.
	Protocol string `yaml:"protocol"`
	// Port is the destination port of udp and tcp probes (53).
	Port uint16 `yaml:"port"`
	// MaxHops is the highest TTL probed (30).
	MaxHops int `yaml:"max_hops"`
	// Queries is the number of probes per hop (3; 1 with flows).
	Queries int `yaml:"queries"`
	// Flows traces this many flows (source ports) at once, a flow sweep
	// as `trace --flows N`: anycheck_paths counts the distinct paths, and
	// a udp/53 sweep's answers say how the flows spread over instances.
	// Default 1.
	Flows int `yaml:"flows"`
	// Mode is auto, raw (CAP_NET_RAW) or socket (unprivileged; udp, icmp).
	Mode string `yaml:"mode"`
	// Wait is the longest wait for a hop's reply (2s), within the probe's.
	Wait time.Duration `yaml:"wait"`
	// QName is the CHAOS TXT name of udp/53 probes (hostname.bind).
	QName string `yaml:"qname"`
	// ASN is the origin-AS source of anycheck_path_info: cymru (bulk
	// whois), cymru-dns, file:PATH (pfx2as, iptoasn, .mmdb) or none.
	ASN string `yaml:"asn"`
	// WhoisServer and ASNDNSServer are other endpoints (HOST:PORT) of
	// cymru and cymru-dns.
	WhoisServer  string `yaml:"whois_server"`
	ASNDNSServer string `yaml:"asn_dns_server"`
}

// Name is the module's name in the configuration.
func (m *Module) Name() string { return m.name }

// BuiltinConfig is the configuration without a file: a module "id" and a
// module "trace" with the defaults of `anycheck id` and `anycheck trace`,
// allowed to probe the prefixes given (--allow) and nothing else.
func BuiltinConfig(allow []netip.Prefix) *Config {
	c := &Config{Modules: map[string]*Module{
		"id":    {ID: &IDModule{}},
		"trace": {Trace: &TraceModule{}},
	}}
	if err := c.check(allow); err != nil {
		panic(err) // the built-in modules are valid; a failure is a build defect
	}
	return c
}

// LoadConfig reads a configuration file; allow (--allow) is added to every
// module's allowed targets. Errors name the file, and the module and field
// at fault.
func LoadConfig(path string, allow []netip.Prefix) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, err := ParseConfig(f, path, allow)
	if err != nil {
		return nil, err
	}
	if c.SitesFile != "" {
		sf, err := os.Open(c.SitesFile)
		if err != nil {
			return nil, fmt.Errorf("config %s: sites_file: %w", path, err)
		}
		defer sf.Close()
		s, err := catchment.ParseSites(io.LimitReader(sf, maxConfigSize), c.SitesFile)
		if err != nil {
			return nil, fmt.Errorf("config %s: sites_file: %w", path, err)
		}
		c.sites = catchment.BuiltinSites().With(s)
	}
	return c, nil
}

// ParseConfig reads a configuration from r (name is the file's, for
// errors); unknown fields are errors. It does not read the sites file
// (LoadConfig does).
func ParseConfig(r io.Reader, name string, allow []netip.Prefix) (*Config, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	if len(b) > maxConfigSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", name, maxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	c := &Config{}
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: empty; it needs a modules: section", name)
		}
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	if err := c.check(allow); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

// Module returns the module of that name.
func (c *Config) Module(name string) (*Module, bool) {
	m, ok := c.Modules[name]
	return m, ok
}

// ModuleNames lists the modules, sorted.
func (c *Config) ModuleNames() []string {
	out := make([]string, 0, len(c.Modules))
	for n := range c.Modules {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Sites is the site-hint table of the configuration: sites_file's
// patterns first, then the built-in table. It is made when the
// configuration is read, so probes at once only read it.
func (c *Config) Sites() *catchment.Sites { return c.sites }

// check validates every module and fills in the defaults.
func (c *Config) check(allow []netip.Prefix) error {
	c.sites = catchment.BuiltinSites()
	if len(c.Modules) == 0 {
		return errors.New("no modules: the file needs a modules: section with at least one module")
	}
	for _, name := range c.ModuleNames() {
		m := c.Modules[name]
		if m == nil {
			return fmt.Errorf("module %q: empty; give it id:, trace: or both", name)
		}
		m.name = name
		if err := m.check(allow); err != nil {
			return fmt.Errorf("module %q: %w", name, err)
		}
	}
	return nil
}

func (m *Module) check(allow []netip.Prefix) error {
	if m.ID == nil && m.Trace == nil {
		return errors.New("neither id: nor trace:; a module probes the identity, the path or both")
	}
	if m.Timeout < 0 {
		return fmt.Errorf("timeout %s: must not be negative", m.Timeout)
	}
	switch m.IPProtocol {
	case "", "ip4", "ip6":
	default:
		return fmt.Errorf("ip_protocol %q: must be ip4 or ip6", m.IPProtocol)
	}
	m.allowed = slices.Clone(allow)
	m.names = nil
	for _, t := range m.AllowedTargets {
		p, name, err := parseAllowed(t)
		if err != nil {
			return fmt.Errorf("allowed_targets: %w", err)
		}
		if name != "" {
			m.names = append(m.names, name)
		} else {
			m.allowed = append(m.allowed, p)
		}
	}
	if m.ID != nil {
		if err := m.ID.check(); err != nil {
			return fmt.Errorf("id: %w", err)
		}
	}
	if m.Trace != nil {
		if err := m.Trace.check(); err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		if m.ID != nil && m.Trace.Flows > 1 {
			return errors.New("trace: flows with id: the identity is asked over one traced flow; give id.flows for the instances of many flows, or trace alone (its udp/53 probes name each flow's instance)")
		}
	}
	return nil
}

// parseAllowed reads one allowed target: an address, a prefix or a host name.
func parseAllowed(s string) (netip.Prefix, string, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		if p != p.Masked() {
			return netip.Prefix{}, "", fmt.Errorf("%q: host bits set; did you mean %s?", s, p.Masked())
		}
		return p, "", nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, "", fmt.Errorf("%q: an address with a zone cannot be probed", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), "", nil
	}
	if netutil.ValidHostname(s) {
		return netip.Prefix{}, canonicalName(s), nil
	}
	return netip.Prefix{}, "", fmt.Errorf("%q: not an address, a prefix or a host name", s)
}

func (id *IDModule) check() error {
	if len(id.Names) > maxNames {
		return fmt.Errorf("names: %d names; at most %d", len(id.Names), maxNames)
	}
	for i, n := range id.Names {
		if _, ok := dns.IsDomainName(n); !ok || n == "" {
			return fmt.Errorf("names: %q: not a DNS name", n)
		}
		id.Names[i] = dns.Fqdn(n)
	}
	if id.Port == 0 {
		id.Port = 53
	}
	switch id.Protocol {
	case "":
		id.Protocol = "udp"
	case "udp", "tcp":
	default:
		return fmt.Errorf("protocol %q: must be udp or tcp", id.Protocol)
	}
	if id.Flows == 0 {
		id.Flows = 1
	}
	if id.Flows < 1 || id.Flows > maxFlows {
		return fmt.Errorf("flows %d: must be between 1 and %d", id.Flows, maxFlows)
	}
	if id.QueryTimeout < 0 {
		return fmt.Errorf("query_timeout %s: must not be negative", id.QueryTimeout)
	}
	if id.QueryTimeout == 0 {
		id.QueryTimeout = defaultQueryTimeout
	}
	return nil
}

func (t *TraceModule) check() error {
	switch trace.Protocol(t.Protocol) {
	case "":
		t.Protocol = string(trace.UDP)
	case trace.UDP, trace.TCP, trace.ICMP:
	default:
		return fmt.Errorf("protocol %q: must be udp, tcp or icmp", t.Protocol)
	}
	if t.Port == 0 {
		t.Port = trace.DefaultPort
	}
	if t.Protocol == string(trace.ICMP) && t.Port != trace.DefaultPort {
		return fmt.Errorf("port %d: icmp probes have no port", t.Port)
	}
	if t.MaxHops == 0 {
		t.MaxHops = trace.DefaultMaxTTL
	}
	if t.MaxHops < 1 || t.MaxHops > 255 {
		return fmt.Errorf("max_hops %d: must be between 1 and 255", t.MaxHops)
	}
	if t.Flows == 0 {
		t.Flows = 1
	}
	if t.Flows < 1 || t.Flows > maxFlows {
		return fmt.Errorf("flows %d: must be between 1 and %d", t.Flows, maxFlows)
	}
	if t.Queries == 0 {
		t.Queries = trace.DefaultQueries
		if t.Flows > 1 {
			// Each flow is another probe of every shared hop (as trace --flows).
			t.Queries = 1
		}
	}
	if t.Queries < 1 || t.Queries > maxQueries {
		return fmt.Errorf("queries %d: must be between 1 and %d", t.Queries, maxQueries)
	}
	switch trace.Mode(t.Mode) {
	case "":
		t.Mode = string(trace.ModeAuto)
	case trace.ModeAuto, trace.ModeRaw, trace.ModeSocket:
	default:
		return fmt.Errorf("mode %q: must be auto, raw or socket", t.Mode)
	}
	if t.Mode == string(trace.ModeSocket) && t.Protocol == string(trace.TCP) {
		return errors.New("protocol tcp needs mode raw or auto: socket mode cannot send tcp probes")
	}
	if t.Wait < 0 {
		return fmt.Errorf("wait %s: must not be negative", t.Wait)
	}
	if t.Wait == 0 {
		t.Wait = trace.DefaultWait
	}
	if t.QName == "" {
		t.QName = measure.NameHostnameBind
	}
	if _, ok := dns.IsDomainName(t.QName); !ok {
		return fmt.Errorf("qname %q: not a DNS name", t.QName)
	}
	t.QName = dns.Fqdn(t.QName)
	if t.ASN == "" {
		t.ASN = "cymru"
	}
	switch {
	case t.ASN == "cymru", t.ASN == "cymru-dns", t.ASN == "none":
	case strings.HasPrefix(t.ASN, "file:") && len(t.ASN) > len("file:"):
	default:
		return fmt.Errorf("asn %q: must be cymru, cymru-dns, file:PATH or none", t.ASN)
	}
	for field, v := range map[string]string{"whois_server": t.WhoisServer, "asn_dns_server": t.ASNDNSServer} {
		if v == "" {
			continue
		}
		if err := checkHostPort(v); err != nil {
			return fmt.Errorf("%s %q: %w", field, v, err)
		}
	}
	return nil
}

func checkHostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return errors.New("want HOST:PORT")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q: must be a number from 1 to 65535", port)
	}
	if _, err := netip.ParseAddr(host); err != nil && !netutil.ValidHostname(host) {
		return fmt.Errorf("host %q: not an IP address or a host name", host)
	}
	return nil
}

func canonicalName(s string) string {
	return strings.ToLower(strings.TrimSuffix(s, "."))
}
