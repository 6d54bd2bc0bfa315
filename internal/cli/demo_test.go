package cli_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/internal/lab"
	"github.com/anycheck/anycheck/whois/whoistest"
)

// TestDemo is `make demo`: it brings up the anycast lab and shows, with
// real output, what an operator sees from the two clients. It runs only
// with ANYCHECK_DEMO=1 and prints to standard output.
func TestDemo(t *testing.T) {
	if os.Getenv("ANYCHECK_DEMO") != "1" {
		t.Skip("the demo runs with ANYCHECK_DEMO=1 (make demo)")
	}
	ac := lab.StartAnycast(t)
	whoisAddr, dnsAddr, table := startLabWhois(t, ac)
	pfx2as := writePfx2as(t, table)

	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	show := func(node string, args ...string) {
		say("\n[%s]$ anycheck %s", node, strings.Join(args, " "))
		out, errOut, code := labRun(t, ac, node, args...)
		fmt.Print(out)
		if errOut != "" {
			fmt.Print(errOut)
		}
		if code != 0 {
			say("(exit status %d)", code)
		}
	}

	say("anycheck lab: an anycast DNS service at %s and %s, announced by two instances:", ac.ServiceV4, ac.ServiceV6)
	say("  %s (%s, AS64520 via %s) and %s (%s, AS64521 via %s).", ac.A.Node, ac.A.Server, ac.A.Origin, ac.B.Node, ac.B.Server, ac.B.Origin)
	say("Clients c1 (AS64500, behind an ECMP diamond) and c2 (AS64501, behind a silent hop)")
	say("sit in different catchments; c3 (AS64502) peers with both sites, so its catchment")
	say("is split by flow. Routers are Linux namespaces running BIRD 2 (eBGP).")
	say("\"[c1]$ anycheck …\" runs anycheck inside client c1's namespace; what follows is its output.")

	say("\n# which instance answers: CHAOS TXT hostname.bind and id.server, each with an NSID option")
	show("c1", "id", ac.ServiceV4.String())
	show("c2", "id", "--version", ac.ServiceV6.String())
	show("c1", "id", "--flows", "4", "-c", "2", "--interval", "200ms", ac.ServiceV4.String())
	asn := []string{"--whois-server", whoisAddr, "--dns-server", dnsAddr, "--no-cache"}
	say("\n# the path to the instance, hops named by the lab's whois and reverse-DNS server (in its")
	say("# services namespace). UDP/53 (the default) probes are DNS queries, so the last hop names")
	say("# the instance; ICMP echo (-P icmp) reaches the address but can name no instance; TCP/53")
	say("# (-P tcp) ends in the instance's SYN-ACK, then asks its identity over TCP:")
	show("c1", append([]string{"trace"}, append(asn, ac.ServiceV4.String())...)...)
	show("c2", append([]string{"trace", "-P", "icmp"}, append(asn, ac.ServiceV6.String())...)...)
	show("c2", append([]string{"trace", "-P", "tcp"}, append(asn, ac.ServiceV4.String())...)...)
	demoFlows(t, ac, asn, say, show)
	say("\n# origin AS, prefix, AS name and reverse name of addresses, in one bulk whois request:")
	show("c1", "whois", "--whois-server", whoisAddr, "--dns-server", dnsAddr, "--no-cache", ac.ServiceV4.String(), ac.Addr("r1", "ra", lab.IPv4).String(), ac.ClientAddr("c1", lab.IPv4).String(), ac.ClientAddr("c2", lab.IPv6).String())

	say("\n# the same addresses from the Cymru-style DNS zones and from an offline pfx2as table:")
	probe := []string{ac.ServiceV6.String(), ac.Addr("rt", "r1", lab.IPv4).String(), ac.Addr("rb", "r2", lab.IPv6).String()}
	show("c1", append([]string{"whois", "--asn", "cymru-dns", "--asn-dns-server", dnsAddr, "--no-cache", "-n"}, probe...)...)
	show("c1", append([]string{"whois", "--asn", "file:" + pfx2as, "-n"}, probe...)...)

	demoExporter(t, ac, whoisAddr, say)

	say("\n# withdraw instance A's route towards c1 (birdc disable on %s), then ask again:", ac.A.Origin)
	if err := ac.StopBGP(ac.A.Origin, "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.WaitInstance(t.Context(), "c1"); err != nil {
		t.Fatal(err)
	}
	show("c1", "id", ac.ServiceV4.String())
	show("c1", append([]string{"trace"}, append(asn, ac.ServiceV4.String())...)...)

	demoWatch(t, ac, whoisAddr, say)
}

// demoFlows shows flow sweeps: 16 flows through c1's ECMP diamond, and
// the split client c3, whose router has equal routes to both sites.
func demoFlows(t *testing.T, ac *lab.Anycast, asn []string, say func(string, ...any), show func(string, ...string)) {
	say("\n# flow sweeps: flows that differ only in the source port, traced at once.")
	say("# (The lab's routers answer every probe from here on: with Linux's default ICMP")
	say("# rate limit, 6 errors at once and then 1 a second, most flows would see \"*\".)")
	for _, r := range []string{"e1", "m1", "m2", "r1", "ra", "rb", "r3"} {
		if err := ac.DisableICMPRateLimit(r); err != nil {
			t.Fatal(err)
		}
	}
	show("c1", append([]string{"trace", "--flows", "16"}, append(asn, ac.ServiceV4.String())...)...)
	say("\n# c3's router peers with both sites and balances flows over their equal routes:")
	show("c3", append([]string{"trace", "--flows", "auto"}, append(asn, ac.ServiceV4.String())...)...)
	show("c3", "id", "--flows", "8", ac.ServiceV6.String())
	show("c3", "watch", "--flows", "4", "-c", "3", "--interval", "500ms", "--label", "c3", ac.ServiceV4.String())

	say("\n# instance A (%s) loses 30 %% of its answers, each on its own (an nftables rule drops them", ac.A.Node)
	say("# at random where they reach its router %s): one flow asked 5 times, a sweep, 8 flows:", ac.A.Origin)
	if err := ac.LoseAnswers(ac.A.Node, 30); err != nil {
		t.Fatal(err)
	}
	show("c1", "id", "-c", "5", "--interval", "200ms", ac.ServiceV4.String())
	show("c1", append([]string{"trace", "--flows", "16"}, append(asn, ac.ServiceV4.String())...)...)
	show("c1", "id", "--flows", "8", ac.ServiceV4.String())
	if err := ac.LoseAnswers(ac.A.Node, 0); err != nil {
		t.Fatal(err)
	}

	say("\n# what comes back instead of an answer: a prohibit route on r1, a port the instance does not")
	say("# serve; then a target written with its port, which is bad input (exit 2) with a hint:")
	if _, errOut, err := ac.Run(t.Context(), "r1", "ip", "route", "add", "prohibit", "192.0.2.99"); err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	show("c1", "id", "192.0.2.99")
	show("c1", "id", "--port", "5353", ac.ServiceV4.String())
	show("c1", "id", "192.0.2.53:53")
}

// labRouters are the lab's forwarding nodes: their interface addresses get
// reverse names "NODE.lab.example" from the lab DNS server.
var labRouters = []string{"e1", "m1", "m2", "r1", "ra", "rt", "r2", "rb", "s2", "r3"}

func labNames(ac *lab.Anycast) string {
	var b strings.Builder
	for _, n := range labRouters {
		for _, f := range []lab.Family{lab.IPv4, lab.IPv6} {
			for _, a := range ac.Addrs(n, f) {
				fmt.Fprintf(&b, "%s %s.lab.example\n", a, n)
			}
		}
	}
	return b.String()
}

// startLabWhois runs a bulk whois and origin-zone DNS server (labwhoisd, a
// separate process) in the lab's services namespace, serving the lab's own
// prefix table and reverse names for the routers; it returns the whois and DNS addresses and the table file.
func startLabWhois(t *testing.T, ac *lab.Anycast) (whoisAddr, dnsAddr, table string) {
	t.Helper()
	dir := t.TempDir()
	table = filepath.Join(dir, "table.txt")
	if err := os.WriteFile(table, []byte(labTable(ac)), 0o644); err != nil {
		t.Fatal(err)
	}
	whoisd := filepath.Join(dir, "labwhoisd")
	if out, err := exec.Command("go", "build", "-o", whoisd, "github.com/anycheck/anycheck/whois/whoistest/cmd/labwhoisd").CombinedOutput(); err != nil {
		t.Fatalf("build labwhoisd: %v: %s", err, out)
	}
	svc := ac.ServicesAddr(lab.IPv4)
	names := filepath.Join(dir, "names.txt")
	if err := os.WriteFile(names, []byte(labNames(ac)), 0o644); err != nil {
		t.Fatal(err)
	}
	whoisAddr = netip.AddrPortFrom(svc, 43).String()
	dnsAddr = netip.AddrPortFrom(svc, 53).String()
	if _, err := ac.Spawn("svc", whoisd, "-listen", whoisAddr, "-dns", dnsAddr, "-table", table, "-names", names); err != nil {
		t.Fatal(err)
	}
	waitTCP(t, ac, "c1", svc, 43)
	return whoisAddr, dnsAddr, table
}

// labTable is the lab's prefix-to-origin table in labwhoisd's format, one row
// per prefix; the anycast service prefix lists every AS that originates it,
// as a real multi-origin (MOAS) prefix does.
func labTable(ac *lab.Anycast) string {
	type row struct {
		asns []string
		name string
	}
	rows := map[netip.Prefix]*row{}
	var order []netip.Prefix
	for _, as := range ac.ASes() {
		for _, pf := range as.Prefixes {
			r, ok := rows[pf]
			if !ok {
				r = &row{name: as.Name}
				rows[pf] = r
				order = append(order, pf)
			}
			r.asns = append(r.asns, fmt.Sprint(as.Number))
		}
	}
	var b strings.Builder
	for _, pf := range order {
		fmt.Fprintf(&b, "%s | %s | ZZ | lab | 2026-01-01 | %s\n", pf, strings.Join(rows[pf].asns, " "), rows[pf].name)
	}
	return b.String()
}

// writePfx2as converts a labwhoisd table into a CAIDA pfx2as file, as an
// operator would download one.
func writePfx2as(t *testing.T, table string) string {
	t.Helper()
	data, err := os.ReadFile(table)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := whoistest.ParseTable(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pfx2as.txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(whoistest.WritePfx2as(f, rows), f.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}
