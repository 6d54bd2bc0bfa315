// Command labwhoisd serves a prefix table over the bulk whois protocol (and,
// with -dns, the Team Cymru style origin/AS TXT zones) so a network lab can
// run a whois server inside a namespace. It serves until SIGINT or SIGTERM.
//
//	labwhoisd -listen 192.0.2.43:43 -table rows.txt [-dns 192.0.2.43:53] [-pfx2as out.txt]
//
// The table has one "PREFIX | ASN... | CC | REGISTRY | ALLOCATED | NAME" row
// per line (see whoistest.ParseTable).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/anycheck/anycheck/whois/whoistest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run serves until ctx ends and returns the exit code.
func run(ctx context.Context, args []string, errOut io.Writer) int {
	fs := flag.NewFlagSet("labwhoisd", flag.ContinueOnError)
	fs.SetOutput(errOut)
	listen := fs.String("listen", "127.0.0.1:4343", "bulk whois `ADDR:PORT` to listen on")
	table := fs.String("table", "", "prefix table `FILE` (required)")
	dnsListen := fs.String("dns", "", "also serve the origin/AS TXT zones on `ADDR:PORT` (UDP and TCP)")
	originZone := fs.String("origin-zone", "", "IPv4 origin zone (default origin.asn.cymru.com.)")
	origin6Zone := fs.String("origin6-zone", "", "IPv6 origin zone (default origin6.asn.cymru.com.)")
	asnZone := fs.String("asn-zone", "", "AS name zone (default asn.cymru.com.)")
	pfx2as := fs.String("pfx2as", "", "also write the table as a CAIDA pfx2as `FILE` and keep serving")
	names := fs.String("names", "", "with -dns, serve PTR names from `FILE` (\"ADDRESS NAME\" per line)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *table == "" || fs.NArg() > 0 {
		fmt.Fprintln(errOut, "labwhoisd: -table FILE is required and no arguments are taken")
		return 2
	}
	if err := serve(ctx, *listen, *table, *dnsListen, *pfx2as, *names, whoistest.Zones{Origin: *originZone, Origin6: *origin6Zone, ASN: *asnZone}, errOut); err != nil {
		fmt.Fprintf(errOut, "labwhoisd: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, listen, table, dnsListen, pfx2as, names string, zones whoistest.Zones, errOut io.Writer) error {
	f, err := os.Open(table)
	if err != nil {
		return err
	}
	rows, err := whoistest.ParseTable(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", table, err)
	}
	if pfx2as != "" {
		out, err := os.Create(pfx2as)
		if err != nil {
			return err
		}
		err = errors.Join(whoistest.WritePfx2as(out, rows), out.Close())
		if err != nil {
			return fmt.Errorf("%s: %w", pfx2as, err)
		}
	}
	srv, err := whoistest.Start(whoistest.Config{Listen: listen, Rows: rows})
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(errOut, "labwhoisd: whois on %s, %d rows\n", srv.Addr(), len(rows))
	if dnsListen != "" {
		h := whoistest.NewDNS(rows, zones)
		if names != "" {
			if err := loadNames(h, names); err != nil {
				return err
			}
		}
		d, err := whoistest.StartDNS(dnsListen, h)
		if err != nil {
			return err
		}
		defer d.Close()
		fmt.Fprintf(errOut, "labwhoisd: dns on %s\n", d.Addr)
	}
	<-ctx.Done()
	return nil
}

// loadNames reads "ADDRESS NAME" lines into the reverse zone.
func loadNames(h *whoistest.DNS, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if len(f) != 2 || err != nil {
			return fmt.Errorf("%s:%d: want ADDRESS NAME", path, i+1)
		}
		h.SetName(a, f[1])
	}
	return nil
}
