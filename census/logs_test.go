package census

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// dnstapFile writes messages as a Frame Streams file, as dnstap tools do.
func dnstapFile(t testing.TB, msgs ...tapMsg) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := dnstap.NewWriter(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := w.WriteFrame(m.marshal(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// capPacket is one packet of a capture fixture.
type capPacket struct {
	at       time.Time
	src, dst netip.AddrPort
	tcp      bool
	dns      []byte
}

func pcapFile(t testing.TB, link uint32, pkts ...capPacket) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkType(link)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		data := frame(link, ipPacket(t, p.src, p.dst, p.tcp, p.dns))
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: p.at, CaptureLength: len(data), Length: len(data)}, data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func pcapngFile(t testing.TB, link uint32, pkts ...capPacket) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkType(link))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		data := frame(link, ipPacket(t, p.src, p.dst, p.tcp, p.dns))
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: p.at, CaptureLength: len(data), Length: len(data)}, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t testing.TB, data []byte, o LogOptions) ([]Query, LogStats) {
	t.Helper()
	l, err := OpenLog(bytes.NewReader(data), o)
	if err != nil {
		t.Fatal(err)
	}
	var out []Query
	for {
		q, err := l.Next()
		if errors.Is(err, io.EOF) {
			return out, l.Stats()
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, q)
	}
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

var (
	lc1  = netip.MustParseAddrPort("198.51.100.10:40000")
	lc2  = netip.MustParseAddrPort("[2001:db8:101:1::10]:40001")
	lsvc = netip.MustParseAddrPort("192.0.2.53:53")
	lsv6 = netip.MustParseAddrPort("[2001:db8:53::53]:53")
)

func TestLogDnstap(t *testing.T) {
	data := dnstapFile(t,
		tapMsg{typ: dnstap.Message_AUTH_QUERY, identity: "i1", client: lc1, server: lsvc.Addr(), qtime: at(0)},
		tapMsg{typ: dnstap.Message_AUTH_RESPONSE, identity: "i1", client: lc1, server: lsvc.Addr(), qtime: at(0), rtime: at(0.001)},
		tapMsg{typ: dnstap.Message_AUTH_QUERY, identity: "i1", client: lc2, server: lsv6.Addr(), qtime: at(1)},
		tapMsg{typ: dnstap.Message_RESOLVER_QUERY, identity: "i1", client: lc2, qtime: at(2)},
		tapMsg{typ: dnstap.Message_AUTH_QUERY, identity: "i1", client: lc1, server: netip.MustParseAddr("203.0.113.18"), qtime: at(3)},
	)
	for name, in := range map[string][]byte{"plain": data, "gzip": gz(t, data)} {
		qs, st := readAll(t, in, LogOptions{Services: []netip.Addr{lsvc.Addr(), lsv6.Addr()}})
		if len(qs) != 2 || qs[0].Client != lc1.Addr() || qs[1].Client != lc2.Addr() || qs[0].Time != at(0).UnixNano() || qs[0].Identity != "i1" {
			t.Errorf("%s: queries %+v", name, qs)
		}
		if st.Format != FormatDnstap || st.Records != 5 || st.Queries != 2 || st.Responses != 1 || st.Truncated ||
			st.Skipped["dnstap message of another type"] != 1 || st.Skipped["query to another address"] != 1 || !slices.Equal(st.Identities, []string{"i1"}) {
			t.Errorf("%s: stats %+v", name, st)
		}
	}
	// Cut in the middle of a frame: what came before counts, the cut is said.
	qs, st := readAll(t, data[:len(data)-20], LogOptions{})
	if len(qs) != 2 || !st.Truncated || st.Records != 4 {
		t.Errorf("truncated: %d queries, stats %+v", len(qs), st)
	}
	// A log of responses only counts the responses as the clients' queries.
	qs, _ = readAll(t, dnstapFile(t, tapMsg{typ: dnstap.Message_AUTH_RESPONSE, client: lc1, rtime: at(5)}), LogOptions{})
	if len(qs) != 1 || qs[0].Time != at(5).UnixNano() {
		t.Errorf("responses only: %+v", qs)
	}
}

func TestLogCaptures(t *testing.T) {
	pkts := []capPacket{
		{at(0), lc1, lsvc, false, dnsQuery(t, false)},
		{at(0.001), lsvc, lc1, false, dnsQuery(t, true)}, // the answer names the instance
		{at(1), lc2, lsv6, true, dnsQuery(t, false)},
		{at(2), lc1, netip.MustParseAddrPort("192.0.2.53:123"), false, []byte("not dns, not dns")},
	}
	for _, link := range []uint32{LinkEthernet, LinkLinuxSLL, LinkLinuxSLL2, LinkRaw} {
		for name, data := range map[string][]byte{
			"pcap":       pcapFile(t, link, pkts...),
			"pcapng":     pcapngFile(t, link, pkts...),
			"pcap.gz":    gz(t, pcapFile(t, link, pkts...)),
			"pcap cut":   pcapFile(t, link, pkts...)[:24+16+30],
			"pcapng cut": pcapngFile(t, link, pkts...)[:200],
		} {
			qs, st := readAll(t, data, LogOptions{})
			if strings.HasSuffix(name, "cut") {
				if !st.Truncated || len(qs) > 2 {
					t.Errorf("link %d %s: %d queries, stats %+v", link, name, len(qs), st)
				}
				continue
			}
			if len(qs) != 2 || qs[0].Client != lc1.Addr() || qs[1].Client != lc2.Addr() || qs[1].Time != at(1).UnixNano() {
				t.Errorf("link %d %s: queries %+v", link, name, qs)
			}
			if qs[1].Identity != "i1.lab-a" || !slices.Equal(st.Identities, []string{"i1.lab-a"}) {
				t.Errorf("link %d %s: identity %q, %v", link, name, qs[1].Identity, st.Identities)
			}
			if st.Records != 4 || st.Queries != 2 || st.Responses != 1 || st.Skipped["not DNS on port 53"] != 1 {
				t.Errorf("link %d %s: stats %+v", link, name, st)
			}
		}
	}
}

func TestOpenLogRefuses(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":       nil,
		"json":        []byte(`{"schema":"anycheck/v1"}`),
		"broken gzip": {0x1f, 0x8b, 0, 0},
		"frame streams of another content": func() []byte {
			var b bytes.Buffer
			b.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4, 'j', 's', 'o', 'n'})
			return b.Bytes()
		}(),
	} {
		if _, err := OpenLog(bytes.NewReader(data), LogOptions{}); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func FuzzLog(f *testing.F) {
	f.Add(dnstapFile(f, tapMsg{typ: dnstap.Message_AUTH_QUERY, identity: "i1", client: lc1, qtime: t0}))
	f.Add(pcapFile(f, LinkLinuxSLL2, capPacket{t0, lc1, lsvc, false, dnsQuery(f, false)}))
	f.Add(pcapngFile(f, LinkEthernet, capPacket{t0, lc2, lsv6, true, dnsQuery(f, false)}, capPacket{t0, lsv6, lc2, true, dnsQuery(f, true)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := OpenLog(bytes.NewReader(data), LogOptions{})
		if err != nil {
			return
		}
		for range 10000 {
			q, err := l.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("error from an in-memory log: %v", err)
				}
				return
			}
			if !q.Client.IsValid() {
				t.Fatalf("query without a client: %+v", q)
			}
		}
	})
}

// Merge interleaves the instances' logs by time.
func TestMerge(t *testing.T) {
	a := &sliceSource{qs: []Query{{Time: 1}, {Time: 4}, {Time: 5}}}
	b := &sliceSource{qs: []Query{{Time: 2}, {Time: 3}, {Time: 6}}}
	var got []int64
	var srcs []int
	errs := Merge(context.Background(), []QuerySource{a, b}, func(src int, q Query) {
		got = append(got, q.Time)
		srcs = append(srcs, src)
	})
	if !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6}) || !slices.Equal(srcs, []int{0, 1, 1, 0, 0, 1}) {
		t.Errorf("merged %v from %v", got, srcs)
	}
	if errs[0] != nil || errs[1] != nil {
		t.Errorf("errors %v", errs)
	}
	// Many batches, and an error from one source.
	long := &sliceSource{}
	for i := range 3*mergeBatch + 7 {
		long.qs = append(long.qs, Query{Time: int64(2 * i)})
	}
	broken := &sliceSource{qs: []Query{{Time: 1}}, err: errors.New("disk on fire")}
	n := 0
	errs = Merge(context.Background(), []QuerySource{long, broken}, func(int, Query) { n++ })
	if n != 3*mergeBatch+8 || errs[0] != nil || errs[1] == nil {
		t.Errorf("%d queries, errors %v", n, errs)
	}
}

// A cancelled merge stops (Ctrl-C) and leaves no goroutine behind.
func TestMergeCancel(t *testing.T) {
	endless := &sliceSource{endless: true}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	Merge(ctx, []QuerySource{endless}, func(int, Query) {
		n++
		if n == 10000 {
			cancel()
		}
	})
	if n < 10000 || n > 10000+mergeBatch {
		t.Errorf("%d queries after cancel at 10000", n)
	}
}

type sliceSource struct {
	qs      []Query
	i       int
	err     error
	endless bool
}

func (s *sliceSource) Next() (Query, error) {
	if s.endless {
		s.i++
		return Query{Time: int64(s.i)}, nil
	}
	if s.i < len(s.qs) {
		s.i++
		return s.qs[s.i-1], nil
	}
	if s.err != nil {
		return Query{}, s.err
	}
	return Query{}, io.EOF
}

// TallyLogs counts each query for its log's instance, or the identity a
// log without one names; the instances given come first; queries a log
// names no instance for are counted apart, per log.
func TestTallyLogs(t *testing.T) {
	c1, c2 := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")
	fra := &sliceSource{qs: []Query{{Time: 1, Client: c1}, {Time: 5, Client: c2}}}
	mixed := &sliceSource{qs: []Query{{Time: 2, Client: c1, Identity: "ams"}, {Time: 3, Client: c2}, {Time: 4, Client: c2, Identity: "lhr"}}, err: errors.New("cut")}
	n := 0
	got := TallyLogs(context.Background(), []Log{{Source: mixed}, {Source: fra, Instance: "fra"}}, TallyOptions{}, func() { n++ })
	var names []string
	for _, in := range got.Census.Instances {
		names = append(names, fmt.Sprintf("%s:%d", in.Name, in.Queries))
	}
	if fmt.Sprint(names) != "[fra:2 ams:1 lhr:1]" || got.Census.Queries != 4 || n != 5 {
		t.Errorf("instances %v, %d queries tallied, %d seen; want fra's 2 first, ams and lhr 1 each, 4 of 5", names, got.Census.Queries, n)
	}
	if fmt.Sprint(got.Unnamed) != "[1 0]" || got.Errs[0] == nil || got.Errs[1] != nil {
		t.Errorf("unnamed %v, errors %v", got.Unnamed, got.Errs)
	}
}
