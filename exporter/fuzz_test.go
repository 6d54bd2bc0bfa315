package exporter

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheckTarget: a /probe request's target is a stranger's bytes. Checking
// one never panics; a target let through is one unicast address within the
// module's prefixes, or a listed host name; a refusal is one line of valid
// UTF-8 without control characters, with a reason.
func FuzzCheckTarget(f *testing.F) {
	for _, s := range []string{"192.0.2.53", "::ffff:192.0.2.1", "2001:db8::53%eth0", "192.0.2.53:53", "[2001:db8::1]:53",
		"ns1.example.net.", "NS1.EXAMPLE.NET:53", "224.0.0.1", "0.0.0.0", "255.255.255.255", "198.51.100.1", "\x1b[2J", "a\u202eb", "\xff\xfe", ""} {
		f.Add(s)
	}
	c, err := ParseConfig(strings.NewReader("modules:\n  id:\n    allowed_targets: [192.0.2.0/24, 2001:db8::/32, ns1.example.net]\n    id: {}\n"), "fuzz.yml", nil)
	if err != nil {
		f.Fatal(err)
	}
	m := c.Modules["id"]
	f.Fuzz(func(t *testing.T, in string) {
		a, name, err := m.CheckTarget(in)
		if err != nil {
			var re *RequestError
			msg := err.Error()
			if !errors.As(err, &re) || re.Reason == "" || !utf8.ValidString(msg) || strings.ContainsFunc(msg, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("%q: refusal %q (%T)", in, msg, err)
			}
			return
		}
		switch {
		case name != "":
			if name != "ns1.example.net" {
				t.Fatalf("%q: let through as the name %q, which is not listed", in, name)
			}
		case !m.allows(a) || notUnicast(a) != "" || a.Zone() != "":
			t.Fatalf("%q: let through as %v, not allowed", in, a)
		}
	})
}

// FuzzParseConfig: reading a configuration never panics, and one that
// reads gives every module an identity or a path part with its limits.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"modules:\n  id: {id: {}}\n",
		"modules:\n  x: {trace: {flows: 64, protocol: icmp}, allowed_targets: [192.0.2.0/24, ns.example]}\n",
		"modules:\n  x:\n    id: {names: [hostname.bind], flows: 3, hints: true}\n    trace: {asn: none}\n",
		"modules: [1, 2]\n", "modules:\n  x: &a {id: *a}\n", "sites_file: /etc/passwd\nmodules: {}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(bytes.NewReader(b), "fuzz.yml", nil)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(err.Error(), "yaml:") {
				t.Fatalf("error on several lines: %q", err)
			}
			return
		}
		for name, m := range c.Modules {
			if m.ID == nil && m.Trace == nil {
				t.Fatalf("module %q probes nothing", name)
			}
			if m.ID != nil && (m.ID.Flows < 1 || m.ID.Flows > maxFlows || m.ID.Port == 0) {
				t.Fatalf("module %q: id %+v", name, m.ID)
			}
			if m.Trace != nil && (m.Trace.Flows < 1 || m.Trace.Flows > maxFlows || m.Trace.MaxHops < 1 || m.Trace.Queries < 1) {
				t.Fatalf("module %q: trace %+v", name, m.Trace)
			}
		}
	})
}
