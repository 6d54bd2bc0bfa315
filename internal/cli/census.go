package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/anycheck/anycheck/census"
	"github.com/anycheck/anycheck/geo"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/whois"
)

// newCensusCmd is the `census` group: the catchment seen from the
// instances, passive (logs) and active (send, listen, report).
func newCensusCmd(g *globalOptions, s *streams, d *deps) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "census",
		Short: "The catchment seen from the instances: query logs, or an active census",
		Long: `Which clients land on which instance of my service, and do they stay?

  census logs     the instances' dnstap logs or pcap captures of port 53:
                  clients per instance, affinity (moves), split clients
  census listen   at every site: capture the census's echo replies (JSONL)
  census send     at one site: echo requests from the anycast address to a
                  hitlist, each carrying the census payload (Verfploeter)
  census report   join the listeners' files: the catchment of every /24

There is no orchestrator: run listen at every site (ssh, Ansible, systemd),
send at one, and bring the files together for report.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newCensusLogsCmd(g, s, d, nil),
		newCensusSendCmd(g, s, d, nil),
		newCensusListenCmd(g, s, d, nil),
		newCensusReportCmd(g, s, d, nil),
	)
	return cmd
}

// prefixLen is --prefix-len V4[,V6]: how client addresses are grouped.
type prefixLen struct{ v4, v6 int }

func (p *prefixLen) String() string { return fmt.Sprintf("%d,%d", p.v4, p.v6) }
func (p *prefixLen) Type() string   { return "V4[,V6]" }

func (p *prefixLen) Set(v string) error {
	a, b, two := strings.Cut(v, ",")
	v4, err := strconv.Atoi(a)
	if err != nil || v4 < 1 || v4 > 32 {
		return fmt.Errorf("IPv4 prefix length %q: want 1 to 32 (e.g. 24, or 24,48 with the IPv6 length)", a)
	}
	p.v4 = v4
	if two {
		v6, err := strconv.Atoi(b)
		if err != nil || v6 < 1 || v6 > 128 {
			return fmt.Errorf("IPv6 prefix length %q: want 1 to 128", b)
		}
		p.v6 = v6
	}
	return nil
}

func registerPrefixLen(f *pflag.FlagSet, p *prefixLen) {
	*p = prefixLen{census.DefaultPrefixLen4, census.DefaultPrefixLen6}
	f.Var(p, "prefix-len", "group clients by prefix: IPv4 length[,IPv6 length] (24,48; 32 or 32,128 keeps single addresses)")
}

// censusSite checks a --site name.
func censusSite(name string) error {
	if name == "" {
		return usageErr("--site: name this site (it is written in every payload and reply)")
	}
	if err := census.CheckSite(name); err != nil {
		return usageErr("--site: %v", err)
	}
	return nil
}

// censusAnycast parses --anycast.
func censusAnycast(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, usageErr("--anycast: give the anycast service address (the census's replies go to it)")
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, usageErr("--anycast %q: not an IP address", s)
	}
	a = a.Unmap()
	if !a.IsGlobalUnicast() && !a.IsPrivate() {
		return netip.Addr{}, usageErr("--anycast %s: not a unicast address", a)
	}
	return a, nil
}

// censusIDFlag parses --census (hex); "" is 0 (none given).
func censusIDFlag(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	id, err := report.ParseCensusID(s)
	if err != nil {
		return 0, usageErr("--census: %v", err)
	}
	return id, nil
}

// censusConn opens the site's raw ICMP socket on the anycast address,
// turning a missing privilege into exit 4 with the hint.
func censusConn(d *deps, anycast netip.Addr, replies bool) (census.Conn, error) {
	open := census.ListenICMP
	if d.censusConn != nil {
		open = d.censusConn
	}
	c, err := open(anycast, replies)
	switch {
	case errors.Is(err, os.ErrPermission):
		return nil, permissionErr(err, "a census needs raw ICMP sockets; grant them once with: setcap cap_net_raw+ep "+executablePath())
	case errors.Is(err, census.ErrNotLocal):
		return nil, usageErr("--anycast %s: this host does not hold that address; a census is sent and captured only on an address the host holds (e.g. on lo)", anycast)
	case err != nil:
		return nil, err
	}
	return c, nil
}

// holdsAddr reports whether the host holds a (on any interface).
func holdsAddr(d *deps, a netip.Addr) (bool, error) {
	if d.interfacePrefixes == nil {
		return false, nil
	}
	ps, err := d.interfacePrefixes()
	if err != nil {
		return false, fmt.Errorf("list this host's addresses: %w", err)
	}
	for _, p := range ps {
		if p.Addr() == a {
			return true, nil
		}
	}
	return false, nil
}

// censusOrigins looks up the origin of every client's sample address in
// one bulk request (none with --asn none); a failed lookup is a problem in
// the document and on stderr, and the census goes on without origins.
func censusOrigins(ctx context.Context, c *census.Census, r whois.Resolver, out *runOutput) map[int]whois.Origin {
	res := map[int]whois.Origin{}
	if r == nil || len(c.Clients) == 0 {
		return res
	}
	addrs := make([]netip.Addr, 0, len(c.Clients))
	for _, cl := range c.Clients {
		addrs = append(addrs, cl.Sample)
	}
	got, err := r.Lookup(ctx, addrs)
	if err != nil {
		out.problem(report.Problem{Stage: "whois", Message: "origin lookup of the clients: " + err.Error()})
	}
	for i, cl := range c.Clients {
		if og, ok := got[cl.Sample]; ok {
			res[i] = og
		}
	}
	return res
}

// censusPlaces is --site-location NAME=LAT,LON|IATA (instances) and
// --client-locations FILE.
type censusPlaces struct {
	sites   []string
	clients string
}

func (p *censusPlaces) register(f *pflag.FlagSet) {
	f.StringArrayVar(&p.sites, "site-location", nil, "NAME=LAT,LON or NAME=IATA: where an instance (site) is, for client distances (repeat per instance)")
	f.StringVar(&p.clients, "client-locations", "", "FILE of PREFIX,LAT,LON lines: where clients are, for the distance to their instance")
}

// distances computes client distances when places are given.
func (p *censusPlaces) distances(c *census.Census) (map[int]census.Distance, error) {
	if len(p.sites) == 0 && p.clients == "" {
		return nil, nil
	}
	if len(p.sites) == 0 || p.clients == "" {
		return nil, usageErr("--site-location and --client-locations go together (instances' and clients' places)")
	}
	inst := map[int]geo.Point{}
	for _, s := range p.sites {
		name, ll, ok := strings.Cut(s, "=")
		var loc locationValue
		if !ok {
			return nil, usageErr("--site-location %q: want NAME=LAT,LON or NAME=IATA, e.g. fra=50.03,8.57 or fra=FRA", s)
		}
		if err := loc.Set(ll); err != nil {
			return nil, usageErr("--site-location %q: %v", s, err)
		}
		pl := loc.point
		found := false
		for i, in := range c.Instances {
			if in.Name == name {
				inst[i], found = pl, true
			}
		}
		if !found {
			return nil, usageErr("--site-location %q: no instance %q in the census", s, name)
		}
	}
	f, err := os.Open(p.clients)
	if err != nil {
		return nil, usageErr("--client-locations: %v", err)
	}
	defer f.Close()
	table, err := readClientPlaces(f)
	if err != nil {
		return nil, usageErr("--client-locations %s: %v", p.clients, err)
	}
	return c.Distances(inst, table.locate), nil
}

// clientPlaces maps prefixes to places; the most specific prefix wins.
type clientPlaces struct {
	byBits map[int]map[netip.Prefix]geo.Point
	bits   []int
}

func (t *clientPlaces) locate(a netip.Addr) (geo.Point, bool) {
	for _, b := range t.bits {
		if p, err := a.Prefix(b); err == nil {
			if pl, ok := t.byBits[b][p]; ok {
				return pl, true
			}
		}
	}
	return geo.Point{}, false
}

// readClientPlaces reads PREFIX,LAT,LON lines ('#' comments, blank lines).
func readClientPlaces(r io.Reader) (*clientPlaces, error) {
	t := &clientPlaces{byBits: map[int]map[netip.Prefix]geo.Point{}}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pfx, ll, _ := strings.Cut(line, ",")
		p, err := netip.ParsePrefix(strings.TrimSpace(pfx))
		if err != nil {
			a, err2 := netip.ParseAddr(strings.TrimSpace(pfx))
			if err2 != nil {
				return nil, fmt.Errorf("line %d: %q is no prefix or address", n, pfx)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		pl, err := geo.ParsePoint(ll)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		p = p.Masked()
		if t.byBits[p.Bits()] == nil {
			t.byBits[p.Bits()] = map[netip.Prefix]geo.Point{}
			t.bits = append(t.bits, p.Bits())
		}
		t.byBits[p.Bits()][p] = pl
	}
	// Most specific first.
	for i := range t.bits {
		for j := i + 1; j < len(t.bits); j++ {
			if t.bits[j] > t.bits[i] {
				t.bits[i], t.bits[j] = t.bits[j], t.bits[i]
			}
		}
	}
	return t, sc.Err()
}

// writeCensus renders a finished census in the chosen format (the tail
// of `census logs` and `census report`).
func writeCensus(ctx context.Context, c *census.Census, o censusOutput) error {
	origins := censusOrigins(ctx, c, o.resolver, o.out)
	dist, err := o.places.distances(c)
	if err != nil {
		return err
	}
	sum := report.NewCensusSummary(c, origins, dist)
	sum.Inputs = o.inputs
	sum.Census, sum.Sender = o.id, o.sender
	for _, a := range o.services {
		sum.Services = append(sum.Services, a.String())
	}
	o.out.doc.Census = &sum
	rows := make([]report.CensusClient, len(c.Clients))
	for i, cl := range c.Clients {
		var og *whois.Origin
		if x, ok := origins[i]; ok {
			og = &x
		}
		var d *census.Distance
		if x, ok := dist[i]; ok {
			d = &x
		}
		rows[i] = report.FromCensusClient(c, cl, og, d)
		o.out.result(rows[i].Prefix, rows[i])
	}
	return finish(o.out, rows, outcome{failed: o.failed, interrupted: o.interrupted}, func(w io.Writer, rows []report.CensusClient) error {
		if o.out.format == formatCSV {
			return render.CensusCSV(w, rows)
		}
		return render.CensusText(w, &sum, rows)
	})
}

// censusOutput is what writeCensus needs besides the census.
type censusOutput struct {
	out         *runOutput
	resolver    whois.Resolver
	places      *censusPlaces
	inputs      []report.CensusInput
	id, sender  *string
	services    []netip.Addr // what the census is the catchment of
	failed      int
	interrupted bool
}

// censusResolver is the ASN source of a census: none unless --asn names one
// (a census has thousands of clients: looking them all up is a choice).
func censusResolver(e *enrichOptions, g *globalOptions, d *deps) (whois.Resolver, error) {
	if e.asn == "none" {
		return nil, nil
	}
	return e.resolver(g, d)
}

// registerCensusEnrich registers the ASN flags with "none" as the default.
func registerCensusEnrich(f *pflag.FlagSet, e *enrichOptions) {
	e.register(f)
	e.asn = "none"
	fl := f.Lookup("asn")
	fl.DefValue = "none"
	fl.Usage = "origin AS source for the clients: none (default), cymru (bulk whois), cymru-dns, or file:PATH (pfx2as, iptoasn TSV or .mmdb)"
}

// sinceStart is a short elapsed time for progress lines.
func sinceStart(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
