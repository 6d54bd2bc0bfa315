// Command fakeatlas serves atlastest's stand-in for the RIPE Atlas API on
// loopback, so anycheck atlas run and atlas fetch can be shown and
// benchmarked without the real service. It prints the base URL (and the
// ids of the finished measurements it holds) and serves until SIGINT,
// SIGTERM or -for runs out.
//
//	fakeatlas -listen 127.0.0.1:8089 -probes 5000 -existing -pfx2as world.txt
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/anycheck/anycheck/atlas/atlastest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run serves until ctx ends or -for passes and returns the exit code.
func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("fakeatlas", flag.ContinueOnError)
	fs.SetOutput(errOut)
	listen := fs.String("listen", "127.0.0.1:0", "loopback `ADDR:PORT` to serve on")
	probes := fs.Int("probes", 60, "probes in the population")
	key := fs.String("key", "", "the only API key accepted for creating and stopping (default: any)")
	polls := fs.Int("polls", 2, "status reads before a created measurement is Stopped")
	existing := fs.Bool("existing", false, "hold a finished DNS and traceroute measurement of every probe (IPv4 and IPv6) and print their ids")
	names := fs.String("names", "", "host names the API resolves, `NAME=ADDR,ADDR;...`")
	pfx2as := fs.String("pfx2as", "", "write the population's routing table (CAIDA pfx2as) to `FILE`")
	life := fs.Duration("for", 30*time.Minute, "stop serving after this long")
	world := fs.Bool("world", false, "place the probes on the globe (atlastest.NewWorldPopulation: positions, countries and RTTs that follow the distance to the sites ams, fra, sin)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *probes < 1 || *probes > 100000 {
		fmt.Fprintf(errOut, "fakeatlas: -probes %d: must be between 1 and 100000\n", *probes)
		return 2
	}
	host, _, err := net.SplitHostPort(*listen)
	if a, perr := netip.ParseAddr(host); err != nil || perr != nil || !a.IsLoopback() {
		fmt.Fprintf(errOut, "fakeatlas: -listen %q: serve on a loopback address only\n", *listen)
		return 2
	}
	pop := atlastest.NewPopulation(*probes)
	if *world {
		pop = atlastest.NewWorldPopulation(*probes)
	}
	srv := &atlastest.Server{Population: pop, Key: *key, Polls: *polls, Names: map[string][]netip.Addr{}}
	for _, entry := range strings.Split(*names, ";") {
		if entry == "" {
			continue
		}
		name, addrs, ok := strings.Cut(entry, "=")
		if !ok {
			fmt.Fprintf(errOut, "fakeatlas: -names %q: want NAME=ADDR,ADDR\n", entry)
			return 2
		}
		for _, s := range strings.Split(addrs, ",") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				fmt.Fprintf(errOut, "fakeatlas: -names %s: %v\n", name, err)
				return 2
			}
			srv.Names[name] = append(srv.Names[name], a)
		}
	}
	if *pfx2as != "" {
		if err := os.WriteFile(*pfx2as, []byte(srv.Population.Pfx2as()), 0o644); err != nil {
			fmt.Fprintf(errOut, "fakeatlas: %v\n", err)
			return 1
		}
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(errOut, "fakeatlas: %v\n", err)
		return 1
	}
	srv.Serve(l)
	defer srv.Close()
	fmt.Fprintln(out, srv.URL)
	if *existing {
		var ids []string
		for _, af := range []int{4, 6} {
			target := "192.0.2.53"
			if af == 6 {
				target = "2001:db8:53::53"
			}
			for _, typ := range []string{"dns", "traceroute"} {
				def := atlastest.Definition{Type: typ, AF: af, Target: target, QName: "hostname.bind", Protocol: "UDP"}
				id := srv.AddFinished(def, srv.Population.Probes)
				ids = append(ids, fmt.Sprintf("%d", id))
			}
		}
		fmt.Fprintln(out, strings.Join(ids, " "))
	}
	t := time.NewTimer(*life)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		fmt.Fprintf(errOut, "fakeatlas: -for %s passed\n", *life)
	}
	return 0
}
