package trace

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/trace")

const goldenDir = "../testdata/trace"

var (
	src4 = netip.MustParseAddr("192.0.2.10")
	dst4 = netip.MustParseAddr("192.0.2.53")
	src6 = netip.MustParseAddr("2001:db8::10")
	dst6 = netip.MustParseAddr("2001:db8:53::53")
)

func testFlow(proto Protocol, v6 bool, dport uint16) Flow {
	s, d := src4, dst4
	if v6 {
		s, d = src6, dst6
	}
	f := Flow{Proto: proto, Src: netip.AddrPortFrom(s, 33512), Dst: netip.AddrPortFrom(d, dport), TOS: 0x00}
	if proto == ICMP {
		f.Dst = netip.AddrPortFrom(d, 0)
	}
	if v6 {
		f.FlowLabel = 0x12345
	}
	return f
}

// field is one annotated run of bytes of a golden packet.
type field struct {
	n    int
	what string
}

// dissect annotates a probe field by field. It is written independently of
// the builder (offsets and meanings from the RFCs) so the golden file says
// what each byte is meant to be.
func dissect(t *testing.T, p Probe, v6 bool) []field {
	t.Helper()
	b := p.Packet
	u16 := func(o int) uint16 { return binary.BigEndian.Uint16(b[o:]) }
	var fs []field
	var l4 int
	var proto byte
	if v6 {
		w := binary.BigEndian.Uint32(b)
		fs = append(fs,
			field{4, fmt.Sprintf("IPv6: version %d, traffic class %#02x, flow label %#05x (constant per flow)", w>>28, w>>20&0xff, w&0xfffff)},
			field{2, fmt.Sprintf("payload length %d", u16(4))},
			field{1, fmt.Sprintf("next header %d", b[6])},
			field{1, fmt.Sprintf("hop limit %d (the probe's TTL)", b[7])},
			field{16, "source " + netip.AddrFrom16([16]byte(b[8:24])).String()},
			field{16, "destination " + netip.AddrFrom16([16]byte(b[24:40])).String()},
		)
		l4, proto = 40, b[6]
	} else {
		fs = append(fs,
			field{1, fmt.Sprintf("IPv4: version %d, header length %d words", b[0]>>4, b[0]&0xf)},
			field{1, fmt.Sprintf("TOS %#02x (constant per flow)", b[1])},
			field{2, fmt.Sprintf("total length %d", u16(2))},
			field{2, fmt.Sprintf("identification %#04x = the tag (second copy, survives checksum rewrites)", u16(4))},
			field{2, fmt.Sprintf("flags/fragment offset %#04x", u16(6))},
			field{1, fmt.Sprintf("TTL %d", b[8])},
			field{1, fmt.Sprintf("protocol %d", b[9])},
			field{2, fmt.Sprintf("header checksum %#04x", u16(10))},
			field{4, "source " + netip.AddrFrom4([4]byte(b[12:16])).String()},
			field{4, "destination " + netip.AddrFrom4([4]byte(b[16:20])).String()},
		)
		l4, proto = 20, b[9]
	}
	switch proto {
	case protoUDP:
		fs = append(fs,
			field{2, fmt.Sprintf("UDP: source port %d (fixed: flow)", u16(l4))},
			field{2, fmt.Sprintf("destination port %d (fixed: flow)", u16(l4+2))},
			field{2, fmt.Sprintf("length %d", u16(l4+4))},
			field{2, fmt.Sprintf("checksum %#04x: varies with the payload's tag, never 0", u16(l4+6))},
		)
		pl := b[l4+8:]
		if u16(l4+2) == 53 {
			var m dns.Msg
			if err := m.Unpack(pl); err != nil {
				t.Fatalf("probe payload is not DNS: %v", err)
			}
			fs = append(fs,
				field{2, fmt.Sprintf("DNS: message ID %#04x = the tag", m.Id)},
				field{2, fmt.Sprintf("flags %#04x (RD=%v)", binary.BigEndian.Uint16(pl[2:]), m.RecursionDesired)},
				field{8, "QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 1"},
			)
			qlen := len(dns.Fqdn(m.Question[0].Name)) + 1 + 4
			fs = append(fs, field{qlen, fmt.Sprintf("question %s %s %s", m.Question[0].Name, dns.ClassToString[m.Question[0].Qclass], dns.TypeToString[m.Question[0].Qtype])})
			fs = append(fs, field{len(pl) - 12 - qlen, fmt.Sprintf("EDNS OPT: UDP size %d, NSID option, empty", m.IsEdns0().UDPSize())})
		} else {
			fs = append(fs, field{8, "payload magic \"anycheck\""}, field{2, fmt.Sprintf("tag %#04x", binary.BigEndian.Uint16(pl[8:]))})
		}
	case protoICMP, protoICMPv6:
		fs = append(fs,
			field{1, fmt.Sprintf("ICMP: type %d (echo request)", b[l4])},
			field{1, fmt.Sprintf("code %d", b[l4+1])},
			field{2, fmt.Sprintf("checksum %#04x: constant for the flow", u16(l4+2))},
			field{2, fmt.Sprintf("identifier %d (fixed: flow)", u16(l4+4))},
			field{2, fmt.Sprintf("sequence %#04x = the tag", u16(l4+6))},
			field{2, fmt.Sprintf("compensation %#04x = ^tag: keeps the checksum constant", u16(l4+8))},
			field{len(payloadMagic), "payload magic \"anycheck\""},
			field{len(b) - l4 - 10 - len(payloadMagic), "padding"},
		)
	case protoTCP:
		fs = append(fs,
			field{2, fmt.Sprintf("TCP: source port %d (fixed: flow)", u16(l4))},
			field{2, fmt.Sprintf("destination port %d (fixed: flow)", u16(l4+2))},
			field{4, fmt.Sprintf("sequence %#08x: tag %#04x in the high half, source port in the low half", binary.BigEndian.Uint32(b[l4+4:]), u16(l4+4))},
			field{4, "acknowledgement 0"},
			field{1, fmt.Sprintf("data offset %d words", b[l4+12]>>4)},
			field{1, fmt.Sprintf("flags %#02x (SYN)", b[l4+13])},
			field{2, fmt.Sprintf("window %d", u16(l4+14))},
			field{2, fmt.Sprintf("checksum %#04x", u16(l4+16))},
			field{2, "urgent pointer 0"},
			field{4, fmt.Sprintf("option MSS %d", u16(l4+22))},
		)
	}
	return fs
}

func annotate(t *testing.T, title string, p Probe, v6 bool) string {
	var buf strings.Builder
	fmt.Fprintf(&buf, "# %s\n# Golden probe packet: hex bytes, then '#' and what they are. Only the hex is compared;\n# regenerate with go test ./trace -run TestGoldenProbes -update.\n", title)
	off := 0
	for _, f := range dissect(t, p, v6) {
		if off+f.n > len(p.Packet) {
			t.Fatalf("dissector overruns packet at %q", f.what)
		}
		chunk := p.Packet[off : off+f.n]
		for len(chunk) > 0 {
			n := min(len(chunk), 16)
			h := hex.EncodeToString(chunk[:n])
			var sp []string
			for i := 0; i < len(h); i += 2 {
				sp = append(sp, h[i:i+2])
			}
			line := strings.Join(sp, " ")
			if f.what != "" {
				fmt.Fprintf(&buf, "%-48s # %s\n", line, f.what)
			} else {
				fmt.Fprintf(&buf, "%s\n", line)
			}
			f.what = ""
			chunk = chunk[n:]
		}
		off += f.n
	}
	if off != len(p.Packet) {
		t.Fatalf("dissector covered %d of %d bytes", off, len(p.Packet))
	}
	return buf.String()
}

// readGoldenHex returns the bytes of an annotated hex file.
func readGoldenHex(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		b, err := hex.DecodeString(strings.Join(strings.Fields(line), ""))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, b...)
	}
	return out
}

func TestGoldenProbes(t *testing.T) {
	const ttl, tag = 5, 0x1234
	cases := []struct {
		file  string
		proto Protocol
		port  uint16
	}{
		{"udp53", UDP, 53},
		{"udp-plain", UDP, 33434},
		{"icmp-echo", ICMP, 0},
		{"tcp-syn", TCP, 443},
	}
	for _, c := range cases {
		for _, v6 := range []bool{false, true} {
			fam := "v4"
			if v6 {
				fam = "v6"
			}
			name := c.file + "-" + fam
			t.Run(name, func(t *testing.T) {
				f := testFlow(c.proto, v6, c.port)
				p, err := BuildProbe(f, ttl, tag, "")
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(goldenDir, name+".hex")
				text := annotate(t, fmt.Sprintf("%s %s probe, flow %s -> %s, ttl %d, tag %#04x", c.proto, fam, f.Src, f.Dst, ttl, tag), p, v6)
				if *update {
					if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want := readGoldenHex(t, path)
				if !bytes.Equal(p.Packet, want) {
					t.Fatalf("built packet differs from %s:\n got %x\nwant %x", path, p.Packet, want)
				}
				got, _ := os.ReadFile(path)
				if string(got) != text {
					t.Errorf("%s annotations are stale; rerun with -update", path)
				}
			})
		}
	}
}

// verifyChecksums recomputes every checksum of p from scratch: a correct
// Internet checksum makes the one's complement sum over the covered bytes
// (with the checksum field) 0xffff.
func verifyChecksums(t *testing.T, f Flow, p Probe) {
	t.Helper()
	v6 := f.Dst.Addr().Is6()
	if !v6 && checksum(p.Packet[:ipv4HeaderLen], 0) != 0 {
		t.Errorf("ipv4 header checksum wrong: %x", p.Packet[:ipv4HeaderLen])
	}
	l4 := p.Transport()
	var sum uint32
	proto := byte(protoUDP)
	switch f.Proto {
	case TCP:
		proto = protoTCP
	case ICMP:
		proto = protoICMP
		if v6 {
			proto = protoICMPv6
		}
	}
	if proto != protoICMP {
		sum = pseudoSum(f.Src.Addr(), f.Dst.Addr(), proto, len(l4))
	}
	if c := checksum(l4, sum); c != 0 {
		t.Errorf("%s transport checksum does not verify (residue %#x)", f.Proto, c)
	}
}

func TestProbeInvariants(t *testing.T) {
	for _, proto := range []Protocol{UDP, ICMP, TCP} {
		for _, port := range []uint16{53, 33434} {
			for _, v6 := range []bool{false, true} {
				f := testFlow(proto, v6, port)
				t.Run(fmt.Sprintf("%s-%d-v6=%v", proto, port, v6), func(t *testing.T) {
					var first Probe
					for i, tag := range []uint16{1, 2, 0x1234, 0x8000, 0xfffe, 0xffff} {
						ttl := 1 + i*7
						p, err := BuildProbe(f, ttl, tag, "")
						if err != nil {
							t.Fatal(err)
						}
						verifyChecksums(t, f, p)
						l4 := p.Transport()
						if v6 {
							if p.Packet[7] != byte(ttl) || binary.BigEndian.Uint32(p.Packet)&0xfffff != f.FlowLabel {
								t.Errorf("tag %#x: hop limit %d / flow label %#x, want %d / %#x", tag, p.Packet[7], binary.BigEndian.Uint32(p.Packet)&0xfffff, ttl, f.FlowLabel)
							}
						} else {
							if p.Packet[8] != byte(ttl) || binary.BigEndian.Uint16(p.Packet[4:]) != tag {
								t.Errorf("tag %#x: ttl %d / ip id %#x, want %d / the tag", tag, p.Packet[8], binary.BigEndian.Uint16(p.Packet[4:]), ttl)
							}
						}
						switch proto {
						case UDP, TCP:
							if binary.BigEndian.Uint16(l4) != f.Src.Port() || binary.BigEndian.Uint16(l4[2:]) != f.Dst.Port() {
								t.Errorf("tag %#x: ports %d/%d, want the flow's", tag, binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:]))
							}
						case ICMP:
							if binary.BigEndian.Uint16(l4[4:]) != f.Src.Port() || binary.BigEndian.Uint16(l4[6:]) != tag {
								t.Errorf("tag %#x: identifier %d seq %#x", tag, binary.BigEndian.Uint16(l4[4:]), binary.BigEndian.Uint16(l4[6:]))
							}
						}
						if proto == UDP && port == 53 {
							var m dns.Msg
							if err := m.Unpack(p.SocketPayload()); err != nil || m.Id != tag || m.Question[0].Qclass != dns.ClassCHAOS || m.RecursionDesired {
								t.Errorf("tag %#x: DNS payload id %#x class %v rd %v err %v", tag, m.Id, m.Question, m.RecursionDesired, err)
							}
						}
						if proto == UDP && binary.BigEndian.Uint16(l4[6:]) == 0 {
							t.Errorf("tag %#x: UDP checksum 0", tag)
						}
						if proto == TCP && binary.BigEndian.Uint32(l4[4:])>>16 != uint32(tag) {
							t.Errorf("tag %#x: tcp seq %#x does not carry it", tag, binary.BigEndian.Uint32(l4[4:]))
						}
						if i == 0 {
							first = p
						} else if len(p.Packet) != len(first.Packet) {
							t.Errorf("tag %#x: packet length %d differs from %d within the flow", tag, len(p.Packet), len(first.Packet))
						}
					}
				})
			}
		}
	}
}

// TestICMPChecksumConstant: every possible tag gives the flow's one ICMP
// checksum, so per-flow load balancers hashing it keep the path.
func TestICMPChecksumConstant(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		f := testFlow(ICMP, v6, 0)
		p0, err := BuildProbe(f, 1, 1, "")
		if err != nil {
			t.Fatal(err)
		}
		for tag := 2; tag <= 0xffff; tag++ {
			p, err := BuildProbe(f, 1+tag%30, uint16(tag), "")
			if err != nil {
				t.Fatal(err)
			}
			if p.Checksum != p0.Checksum {
				t.Fatalf("v6=%v: tag %#x checksum %#x, tag 1 has %#x", v6, tag, p.Checksum, p0.Checksum)
			}
		}
	}
}

// TestUDPTagUniqueChecksums: the tags the engine hands out give every probe
// of a flow its own UDP checksum (the primary match key), DNS or not.
func TestUDPTagUniqueChecksums(t *testing.T) {
	for _, port := range []uint16{53, 33434} {
		for _, v6 := range []bool{false, true} {
			f := testFlow(UDP, v6, port)
			e := &engine{opts: Options{QName: "hostname.bind.", FirstTTL: 1, MaxTTL: 255, Queries: 10}, flow: f, nextTag: 0xfff0, byTag: map[uint16][2]int{}, match: newMatcher(f)}
			seen := map[uint16]uint16{}
			for i := range 2550 {
				p, err := e.build(1 + i%255)
				if err != nil {
					t.Fatal(err)
				}
				if prev, dup := seen[p.Checksum]; dup {
					t.Fatalf("port %d v6=%v: tags %#x and %#x share checksum %#x", port, v6, prev, p.Tag, p.Checksum)
				}
				if p.Tag == 0 {
					t.Fatal("tag 0 handed out")
				}
				seen[p.Checksum] = p.Tag
				e.byTag[p.Tag] = [2]int{}
				e.match.add(p)
			}
			// Without the engine's clash check, consecutive tags still
			// give distinct checksums: the tag enters the sum linearly.
			a, _ := BuildProbe(f, 1, 0x100, "")
			b, _ := BuildProbe(f, 1, 0x101, "")
			if a.Checksum == b.Checksum {
				t.Errorf("port %d v6=%v: tags 0x100 and 0x101 share a checksum", port, v6)
			}
		}
	}
}

func TestBuildProbeErrors(t *testing.T) {
	good := testFlow(UDP, false, 53)
	mixed := good
	mixed.Dst = netip.AddrPortFrom(dst6, 53)
	noSrc := good
	noSrc.Src = netip.AddrPortFrom(netip.Addr{}, 1)
	badProto := good
	badProto.Proto = "sctp"
	cases := []struct {
		name string
		f    Flow
		ttl  int
		tag  uint16
		want string
	}{
		{"ttl 0", good, 0, 1, "ttl 0"},
		{"ttl 256", good, 256, 1, "ttl 256"},
		{"tag 0", good, 1, 0, "tag 0"},
		{"mixed families", mixed, 1, 1, "different families"},
		{"no source", noSrc, 1, 1, "source and destination"},
		{"unknown protocol", badProto, 1, 1, "sctp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := BuildProbe(c.f, c.ttl, c.tag, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
