package exporter

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	c := mustConfig(t, `
modules:
  nsid:
    timeout: 3s
    allowed_targets: [198.51.100.0/24, 203.0.113.7, ns1.example.net.]
    id:
      names: [hostname.bind]
      flows: 8
      hints: true
  path:
    ip_protocol: ip6
    trace:
      protocol: icmp
      max_hops: 12
      asn: none
  both:
    id: {protocol: tcp}
    trace: {protocol: tcp, mode: raw, wait: 500ms, whois_server: "192.0.2.43:43"}
`)
	if got := c.ModuleNames(); strings.Join(got, ",") != "both,nsid,path" {
		t.Fatalf("modules %v", got)
	}
	n := c.Modules["nsid"]
	if n.Timeout != 3*time.Second || n.ID.Flows != 8 || !n.ID.Hints || n.ID.Port != 53 || n.ID.Protocol != "udp" || n.ID.QueryTimeout != defaultQueryTimeout {
		t.Errorf("nsid: %+v %+v", n, n.ID)
	}
	if n.ID.Names[0] != "hostname.bind." {
		t.Errorf("names are made fully qualified: %q", n.ID.Names)
	}
	// --allow joins each module's own allowed targets.
	for _, a := range []string{"198.51.100.9", "203.0.113.7", "192.0.2.53"} {
		if !n.allows(netip.MustParseAddr(a)) {
			t.Errorf("nsid does not allow %s", a)
		}
	}
	if n.allows(netip.MustParseAddr("203.0.113.8")) {
		t.Error("nsid allows 203.0.113.8: only .7 is listed")
	}
	if len(n.names) != 1 || n.names[0] != "ns1.example.net" {
		t.Errorf("names %v", n.names)
	}
	p := c.Modules["path"].Trace
	if p.Protocol != "icmp" || p.MaxHops != 12 || p.Queries != 3 || p.Mode != "auto" || p.Wait != 2*time.Second || p.QName != "hostname.bind." {
		t.Errorf("path: %+v", p)
	}
	if b := c.Modules["both"]; b.ID.Protocol != "tcp" || b.Trace.Port != 53 || b.Trace.ASN != "cymru" {
		t.Errorf("both: %+v %+v", b.ID, b.Trace)
	}
}

func TestBuiltinConfig(t *testing.T) {
	c := BuiltinConfig([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	id, tr := c.Modules["id"], c.Modules["trace"]
	if id == nil || tr == nil || len(c.Modules) != 2 {
		t.Fatalf("built-in modules: %v", c.ModuleNames())
	}
	if id.ID.Flows != 1 || id.ID.Port != 53 || id.Trace != nil || tr.Trace.MaxHops != 30 || tr.Trace.ASN != "cymru" || tr.ID != nil {
		t.Errorf("built-in modules are not the commands' defaults: %+v %+v", id.ID, tr.Trace)
	}
	if !id.allows(target) || id.allows(netip.MustParseAddr("198.51.100.1")) {
		t.Error("built-in modules allow exactly --allow")
	}
	// Without --allow nothing may be probed.
	if m := BuiltinConfig(nil).Modules["id"]; len(m.allowed) != 0 || len(m.names) != 0 {
		t.Errorf("built-in id without --allow allows %v %v", m.allowed, m.names)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yml, want string }{
		{``, "empty; it needs a modules: section"},
		{`modules: {}`, "no modules"},
		{"modules:\n  x:\n", `module "x": empty`},
		{"modules:\n  x: {timeout: 1s}", `module "x": neither id: nor trace:`},
		{"modules:\n  x: {id: {}, prober: dns}", "field prober not found"},
		{"modules:\n  x: {id: {flows: 65}}", `module "x": id: flows 65: must be between 1 and 64`},
		{"modules:\n  x: {id: {protocol: quic}}", `id: protocol "quic": must be udp or tcp`},
		{"modules:\n  x: {id: {names: [\"a..b\"]}}", `names: "a..b": not a DNS name`},
		{"modules:\n  x: {id: {}, allowed_targets: [192.0.2.1/24]}", "host bits set; did you mean 192.0.2.0/24?"},
		{"modules:\n  x: {id: {}, allowed_targets: [\"not a host\"]}", "not an address, a prefix or a host name"},
		{"modules:\n  x: {id: {}, ip_protocol: ipx}", `ip_protocol "ipx"`},
		{"modules:\n  x: {trace: {protocol: sctp}}", `trace: protocol "sctp": must be udp, tcp or icmp`},
		{"modules:\n  x: {trace: {protocol: tcp, mode: socket}}", "protocol tcp needs mode raw or auto"},
		{"modules:\n  x: {trace: {protocol: icmp, port: 33434}}", "icmp probes have no port"},
		{"modules:\n  x: {trace: {max_hops: 300}}", "max_hops 300"},
		{"modules:\n  x: {trace: {asn: ripe}}", `asn "ripe": must be cymru, cymru-dns, file:PATH or none`},
		{"modules:\n  x: {trace: {whois_server: whois.example}}", `whois_server "whois.example": want HOST:PORT`},
		{"modules:\n  x: {id: {}, timeout: soon}", "cannot unmarshal"},
	} {
		_, err := ParseConfig(strings.NewReader(tc.yml), "bad.yml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config bad.yml: ") {
			t.Errorf("%q: error %v, want one naming the file and saying %q", tc.yml, err, tc.want)
		}
	}
}

func TestLoadConfigSitesFile(t *testing.T) {
	dir := t.TempDir()
	sites := filepath.Join(dir, "sites.txt")
	// An operator names its own sites: lab-a is Frankfurt.
	if err := os.WriteFile(sites, []byte("labdns  auth  192.0.2.0/24  ^i\\d+\\.(lab-[a-z])$\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "anycheck.yml")
	if err := os.WriteFile(cfg, []byte("sites_file: "+sites+"\nmodules:\n  id: {id: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := c.Sites().HintFor(target, "i1.lab-a"); !ok || h.Site != "lab-a" {
		t.Errorf("the sites file is not used: %+v %v", h, ok)
	}
	if err := os.WriteFile(cfg, []byte("sites_file: "+filepath.Join(dir, "absent.txt")+"\nmodules:\n  id: {id: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(cfg, nil); err == nil || !strings.Contains(err.Error(), "sites_file") {
		t.Errorf("a missing sites file: %v", err)
	}
}

func TestCheckTarget(t *testing.T) {
	c := mustConfig(t, "modules:\n  id:\n    allowed_targets: [ns1.example.net, 198.51.100.53]\n    id: {}\n")
	m := c.Modules["id"]
	for _, tc := range []struct {
		in, addr, name, reason, msg string
	}{
		{in: "192.0.2.53", addr: "192.0.2.53"},
		{in: "::ffff:192.0.2.53", addr: "192.0.2.53"},
		{in: "2001:db8::53", addr: "2001:db8::53"},
		{in: "198.51.100.53", addr: "198.51.100.53"},
		{in: "NS1.Example.NET.", name: "ns1.example.net"},
		{in: "", reason: RejectBadTarget, msg: "target missing"},
		{in: "198.51.100.54", reason: RejectNotAllowed, msg: `target "198.51.100.54": not allowed by module "id" (it allows 192.0.2.0/24, 2001:db8::/32, 198.51.100.53/32, ns1.example.net)`},
		{in: "8.8.8.8", reason: RejectNotAllowed, msg: "add it to the module's allowed_targets or to --allow"},
		{in: "ns2.example.net", reason: RejectNotAllowed, msg: "host name not listed"},
		{in: "192.0.2.53:53", reason: RejectBadTarget, msg: "give the address alone (192.0.2.53); the port is the module's"},
		{in: "[2001:db8::53]:53", reason: RejectBadTarget, msg: "give the address alone (2001:db8::53)"},
		{in: "ns1.example.net:53", reason: RejectBadTarget, msg: "give the host name alone (ns1.example.net)"},
		{in: "224.0.0.1", reason: RejectBadTarget, msg: "a multicast address, not one server"},
		{in: "0.0.0.0", reason: RejectBadTarget, msg: "the unspecified address"},
		{in: "fe80::1%eth0", reason: RejectBadTarget, msg: "zone"},
		{in: "bad name!", reason: RejectBadTarget, msg: `target "bad name!": not an IP address or a host name`},
		{in: "a\x1b]0;x\x07", reason: RejectBadTarget, msg: `"a\x1b]0;x\a"`},
		{in: strings.Repeat("a", 300), reason: RejectBadTarget, msg: "longer than 256 characters"},
	} {
		a, name, err := m.CheckTarget(tc.in)
		if tc.reason == "" {
			if err != nil || (tc.addr != "" && a != netip.MustParseAddr(tc.addr)) || name != tc.name {
				t.Errorf("%q: %v %q %v; want %s %q", tc.in, a, name, err, tc.addr, tc.name)
			}
			continue
		}
		re, ok := err.(*RequestError)
		if !ok || re.Reason != tc.reason || !strings.Contains(re.Error(), tc.msg) || strings.ContainsAny(re.Error(), "\n\x1b") {
			t.Errorf("%q: %v, want a one-line %s error saying %q", tc.in, err, tc.reason, tc.msg)
		}
	}
}
