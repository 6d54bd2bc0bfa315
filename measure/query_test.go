package measure

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestNewQuery(t *testing.T) {
	tests := []struct {
		name string
		id   uint16
		want string // question name on the wire
	}{
		{NameHostnameBind, 0x1234, "hostname.bind."},
		{NameIDServer, 0, "id.server."},
		{NameVersionBind, 0xffff, "version.bind."},
		{NameVersionServer, 7, "version.server."},
		{"hostname.bind", 1, "hostname.bind."}, // not fully qualified: made so
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire, err := NewQuery(tt.name, tt.id).Pack()
			if err != nil {
				t.Fatalf("pack: %v", err)
			}
			// Check the bytes, not the Msg fields: what matters is what
			// leaves the machine.
			if got := uint16(wire[0])<<8 | uint16(wire[1]); got != tt.id {
				t.Errorf("ID on the wire = %#04x, want %#04x", got, tt.id)
			}
			if wire[2]&0x80 != 0 {
				t.Error("QR set in a query")
			}
			if wire[2]&0x01 != 0 {
				t.Error("RD set: a resolver on the path would be invited to answer")
			}
			if wire[2]&0x78 != 0 {
				t.Errorf("opcode %d, want QUERY", wire[2]>>3&0xf)
			}
			var m dns.Msg
			if err := m.Unpack(wire); err != nil {
				t.Fatalf("unpack own query: %v", err)
			}
			if len(m.Question) != 1 {
				t.Fatalf("%d questions, want 1", len(m.Question))
			}
			q := m.Question[0]
			if q.Name != tt.want || q.Qtype != dns.TypeTXT || q.Qclass != dns.ClassCHAOS {
				t.Errorf("question = %s %s %s, want %s CH TXT", q.Name, dns.ClassToString[q.Qclass], dns.TypeToString[q.Qtype], tt.want)
			}
			opt := m.IsEdns0()
			if opt == nil {
				t.Fatal("no EDNS0 OPT record")
			}
			if opt.UDPSize() != 1232 || opt.Version() != 0 || opt.Do() {
				t.Errorf("OPT udp size %d version %d DO %v, want 1232, 0, false", opt.UDPSize(), opt.Version(), opt.Do())
			}
			var nsid int
			for _, o := range opt.Option {
				if n, ok := o.(*dns.EDNS0_NSID); ok {
					nsid++
					if n.Nsid != "" {
						t.Errorf("NSID option carries %q, want empty (a request)", n.Nsid)
					}
				}
			}
			if nsid != 1 {
				t.Errorf("%d NSID options, want 1", nsid)
			}
			if len(m.Answer)+len(m.Ns) != 0 {
				t.Error("query carries answer or authority records")
			}
		})
	}
}

// TestNewQueryGolden pins the exact bytes of the hostname.bind query, the
// probe every UDP/53 trace also sends.
func TestNewQueryGolden(t *testing.T) {
	const golden = "query_hostname_bind_id1234.hex"
	wire, err := NewQuery(NameHostnameBind, 0x1234).Pack()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		text, err := annotateQuery(wire)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(testdataDir, golden), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readHex(t, golden)
	if !bytes.Equal(wire, want) {
		t.Errorf("query bytes differ from %s (run with -update after checking why)\n got %x\nwant %x", golden, wire, want)
	}
}

// annotateQuery writes the hostname.bind query as annotated hex, one field
// per line, so a reviewer can check every bit against RFC 1035/6891/5001.
func annotateQuery(wire []byte) (string, error) {
	type field struct {
		n    int
		what string
	}
	fields := []field{
		{2, "ID 0x1234"},
		{2, "flags: QR=0 opcode=QUERY AA=0 TC=0 RD=0 (no recursion wanted) RA=0 Z=0 RCODE=0"},
		{2, "QDCOUNT 1"},
		{2, "ANCOUNT 0"},
		{2, "NSCOUNT 0"},
		{2, "ARCOUNT 1 (the OPT pseudo-RR)"},
		{9, `QNAME label "hostname"`},
		{5, `QNAME label "bind"`},
		{1, "QNAME root label"},
		{2, "QTYPE TXT (16)"},
		{2, "QCLASS CH (3), not IN: identity names live in the CHAOS class"},
		{1, "OPT owner: root"},
		{2, "TYPE OPT (41)"},
		{2, "CLASS = EDNS UDP payload size 1232"},
		{1, "extended RCODE 0"},
		{1, "EDNS version 0"},
		{2, "EDNS flags: DO=0"},
		{2, "RDLENGTH 4"},
		{2, "option code 3: NSID (RFC 5001)"},
		{2, "option length 0: an empty NSID asks the server for its NSID"},
	}
	var b strings.Builder
	b.WriteString("# CHAOS TXT hostname.bind query built by probe.NewQuery(\"hostname.bind.\", 0x1234).\n")
	b.WriteString("# Regenerate with: go test ./probe -run TestNewQueryGolden -update\n")
	off := 0
	for _, f := range fields {
		if off+f.n > len(wire) {
			return "", fmt.Errorf("query is %d bytes, annotation expects more", len(wire))
		}
		fmt.Fprintf(&b, "%-27s # %s\n", spaced(wire[off:off+f.n]), f.what)
		off += f.n
	}
	if off != len(wire) {
		return "", fmt.Errorf("query is %d bytes, annotation covers %d", len(wire), off)
	}
	return b.String(), nil
}

func spaced(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, " ")
}
