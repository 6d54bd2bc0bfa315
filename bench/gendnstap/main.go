// Command gendnstap writes a passive census's input for the benchmark:
// one dnstap file (Frame Streams, as fstrm_capture writes them) per
// instance, AUTH_QUERY messages in time order over an hour, from a client
// population shaped like a root instance's: a few busy resolvers and a long
// tail (Zipf), most clients in one catchment, some moving at half time and
// some split across two instances (per-flow load balancing). The addresses
// are data only: nothing is sent anywhere.
//
//	go run ./bench/gendnstap -n 10000000 -dir /tmp/census
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"
)

func main() {
	n := flag.Int("n", 10_000_000, "queries in all")
	instances := flag.Int("instances", 4, "instances (one file each)")
	clients := flag.Int("clients", 400_000, "client addresses")
	prefixes := flag.Int("prefixes", 100_000, "client /24s")
	dir := flag.String("dir", ".", "where to write i0.dnstap, i1.dnstap, …")
	flag.Parse()
	if err := run(*n, *instances, *clients, *prefixes, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "gendnstap:", err)
		os.Exit(1)
	}
}

type client struct {
	addr  netip.Addr
	home  int // its instance
	other int // where it moves (at half time) or splits to
	kind  int // 0 stable, 1 moves, 2 split
}

func run(n, instances, nclients, nprefixes int, dir string) error {
	rng := rand.New(rand.NewPCG(1, 2))
	// The /24s: random, unique, none in 0/8 or 224/3.
	seen := map[uint32]bool{}
	pfx := make([]uint32, 0, nprefixes)
	for len(pfx) < nprefixes {
		p := rng.Uint32() &^ 0xff
		if p>>24 == 0 || p>>24 >= 224 || seen[p] {
			continue
		}
		seen[p] = true
		pfx = append(pfx, p)
	}
	cs := make([]client, nclients)
	for i := range cs {
		p := pfx[rng.IntN(len(pfx))]
		v := p | uint32(1+rng.IntN(254))
		c := client{addr: netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), home: int(p>>8) % instances}
		c.other = (c.home + 1 + rng.IntN(instances-1)) % instances
		switch r := rng.IntN(1000); {
		case r < 10:
			c.kind = 1
		case r < 15:
			c.kind = 2
		}
		cs[i] = c
	}
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(nclients-1))

	ws := make([]dnstap.Writer, instances)
	for i := range ws {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("i%d.dnstap", i)))
		if err != nil {
			return err
		}
		defer f.Close()
		bw := bufio.NewWriterSize(f, 1<<20)
		defer bw.Flush()
		w, err := dnstap.NewWriter(bw, nil)
		if err != nil {
			return err
		}
		defer w.Close()
		ws[i] = w
	}
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	q.SetEdns0(1232, true)
	wire, err := q.Pack()
	if err != nil {
		return err
	}
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	step := time.Hour / time.Duration(n)
	ids := make([][]byte, instances)
	for i := range ids {
		ids[i] = []byte(fmt.Sprintf("i%d", i))
	}
	typ, fam, udp, mtyp := dnstap.Dnstap_MESSAGE, dnstap.SocketFamily_INET, dnstap.SocketProtocol_UDP, dnstap.Message_AUTH_QUERY
	svc := netip.MustParseAddr("192.0.2.53").AsSlice()
	version := []byte("NSD 4.6.1")
	for i := range n {
		c := &cs[zipf.Uint64()]
		at := start.Add(time.Duration(i) * step)
		inst := c.home
		switch {
		case c.kind == 1 && i >= n/2:
			inst = c.other
		case c.kind == 2 && rng.IntN(2) == 1:
			inst = c.other
		}
		sec, nsec := uint64(at.Unix()), uint32(at.Nanosecond())
		port := uint32(1024 + rng.IntN(64000))
		m := &dnstap.Dnstap{Type: &typ, Identity: ids[inst], Version: version, Message: &dnstap.Message{
			Type: &mtyp, SocketFamily: &fam, SocketProtocol: &udp,
			QueryAddress: c.addr.AsSlice(), ResponseAddress: svc, QueryPort: &port, ResponsePort: proto.Uint32(53),
			QueryTimeSec: &sec, QueryTimeNsec: &nsec, QueryMessage: wire,
		}}
		b, err := proto.Marshal(m)
		if err != nil {
			return err
		}
		if _, err := ws[inst].WriteFrame(b); err != nil {
			return err
		}
	}
	return nil
}
