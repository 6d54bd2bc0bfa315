package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/internal/report/reporttest"
)

// censusDoc is a census document as the lab tests read it.
type censusDoc struct {
	Results []report.CensusClient `json:"results"`
	Census  report.CensusSummary  `json:"census"`
}

func (d censusDoc) client(prefix string) (report.CensusClient, bool) {
	for _, c := range d.Results {
		if c.Prefix == prefix {
			return c, true
		}
	}
	return report.CensusClient{}, false
}

// runHost runs the binary in the host's namespace: census logs and report
// only read files.
func runHost(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lab.Binary(t), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), exitStatus(t, err)
}

func decodeCensus(t *testing.T, out string) censusDoc {
	t.Helper()
	reporttest.Check(t, []byte(out), false)
	var d censusDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("census document: %v\n%s", err, out)
	}
	return d
}

// idInstance is the instance `anycheck id` reaches from a node.
func idInstance(t *testing.T, ac *lab.Anycast, node string, addr netip.Addr) string {
	t.Helper()
	out, errOut, code := labRun(t, ac, node, "id", "-o", "json", addr.String())
	if code != 0 {
		t.Fatalf("id from %s: exit %d: %s", node, code, errOut)
	}
	var d idDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Results) == 0 || len(d.Results[0].Flows) == 0 {
		t.Fatalf("id from %s: %v\n%s", node, err, out)
	}
	return d.Results[0].Flows[0].Instance.Name
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// The passive census from the instances' own logs (dnstap from NSD and
// Knot, and tcpdump captures) agrees with the lab's routing and with
// `anycheck id` from every client, before and after a withdrawal: c1 moves
// from A to B when ra stops announcing to r1 (the move is dated between
// the withdrawal and c1's first answer from B), c2 stays, and c3, whose
// router balances flows over both sites, is split.
func TestLabCensusLogs(t *testing.T) {
	t.Parallel()
	ac := lab.StartAnycastDnstap(t)
	var caps []string
	for _, in := range []lab.Instance{ac.A, ac.B} {
		file, cmd, err := ac.Capture(in.Node)
		if err != nil {
			t.Fatal(err)
		}
		caps = append(caps, in.NSID+"="+file)
		t.Cleanup(func() { ac.StopProcess(cmd) })
	}
	before := map[string]string{}
	for _, c := range ac.Clients() {
		before[c] = idInstance(t, ac, c, ac.ServiceV4)
	}
	// Every client asks every 100 ms, each query from a new port (at most
	// 40 s of queries: the loops are stopped long before).
	var loops []*exec.Cmd
	for _, q := range []struct {
		node string
		addr netip.Addr
	}{{"c1", ac.ServiceV4}, {"c1", ac.ServiceV6}, {"c2", ac.ServiceV4}, {ac.SplitClient(), ac.ServiceV4}} {
		cmd, err := ac.QueryLoop(q.node, q.addr, 100*time.Millisecond, 400)
		if err != nil {
			t.Fatal(err)
		}
		loops = append(loops, cmd)
	}
	time.Sleep(4 * time.Second)
	withdrawn := time.Now()
	if err := ac.StopBGP("ra", "r1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if in, err := ac.WaitInstance(ctx, "c1"); err != nil || in != ac.B {
		t.Fatalf("c1 did not move to B: %v", err)
	}
	moved := time.Now()
	after := map[string]string{}
	for _, c := range ac.Clients() {
		after[c] = idInstance(t, ac, c, ac.ServiceV4)
	}
	if before["c1"] != ac.A.NSID || after["c1"] != ac.B.NSID || before["c2"] != ac.B.NSID || after["c2"] != ac.B.NSID {
		t.Fatalf("anycheck id: before %v, after %v", before, after)
	}
	time.Sleep(4 * time.Second)
	for _, l := range loops {
		ac.StopProcess(l)
	}
	if err := ac.StopDnstap(); err != nil {
		t.Fatal(err)
	}
	taps := []string{ac.Dnstap[ac.A.Name].File, ac.Dnstap[ac.B.Name].File}
	c1, c2, c3 := ac.ClientAddr("c1", lab.IPv4), ac.ClientAddr("c2", lab.IPv4), ac.ClientAddr(ac.SplitClient(), lab.IPv4)
	c16 := ac.ClientAddr("c1", lab.IPv6)
	for name, inputs := range map[string][]string{
		"dnstap":  taps,
		"tcpdump": {"--instance", caps[0], "--instance", caps[1], "--service", ac.ServiceV4.String(), "--service", ac.ServiceV6.String()},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"census", "logs", "--prefix-len", "32,128", "--split-window", "2s", "-o", "json"}, inputs...)
			out, errOut, code := runHost(t, args...)
			if code != 0 {
				t.Fatalf("census logs: exit %d: %s", code, errOut)
			}
			d := decodeCensus(t, out)
			// c2 stays at B, as id says before and after.
			if c, ok := d.client(c2.String() + "/32"); !ok || ptrString(c.Instance) != after["c2"] || len(c.Moves) != 0 || c.Split {
				t.Errorf("c2: %+v, want at %s all along", c, after["c2"])
			}
			// c1 moved from where id reached it before to where it reaches
			// it after, once, between the withdrawal and its first answer from B.
			for _, p := range []string{c1.String() + "/32", c16.String() + "/128"} {
				c, ok := d.client(p)
				if !ok || c.Split || len(c.Moves) != 1 {
					t.Errorf("c1 %s: %+v, want one move", p, c)
					continue
				}
				m := c.Moves[0]
				arrived, _ := time.Parse(time.RFC3339Nano, m.Arrived)
				left, _ := time.Parse(time.RFC3339Nano, m.Left)
				if strings.Join(m.From, ",") != before["c1"] || strings.Join(m.To, ",") != after["c1"] ||
					arrived.Before(withdrawn) || arrived.After(moved.Add(time.Second)) || left.After(arrived) || m.StayedMs < 3000 {
					t.Errorf("c1 %s move %+v; want %s → %s arriving between %s and %s", p, m, before["c1"], after["c1"],
						withdrawn.Format("15:04:05.000"), moved.Format("15:04:05.000"))
				}
			}
			// c3 reaches both instances at the same time.
			if c, ok := d.client(c3.String() + "/32"); !ok || !c.Split || len(c.Instances) != 2 {
				t.Errorf("c3: %+v, want split over both instances", c)
			}
			if a := d.Census.Affinity; a.Split < 1 || a.Moved < 2 {
				t.Errorf("affinity %+v", a)
			}
			if name == "dnstap" {
				// The README's example: the text of the same census.
				text, _, _ := runHost(t, append([]string{"census", "logs", "--prefix-len", "32,128", "--split-window", "2s"}, inputs...)...)
				t.Logf("census logs (%s):\n%s", name, text)
			}
		})
	}
}

// listener is a census listener running in a lab node.
type listener struct {
	cmd  *exec.Cmd
	file string
}

// startListener runs census listen in an instance's node until duration,
// its JSONL in a file; it returns once the listener has its socket.
func startListener(t *testing.T, ac *lab.Anycast, in lab.Instance, anycast netip.Addr, id string, duration time.Duration) listener {
	t.Helper()
	file := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%s.jsonl", in.NSID, anycast))
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+30*time.Second)
	t.Cleanup(cancel)
	cmd := ac.Command(ctx, in.Node, lab.Binary(t), "census", "listen", "--anycast", anycast.String(), "--site", in.NSID,
		"--census", id, "--duration", duration.String())
	cmd.Stdout = f
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "listening at") {
				select {
				case ready <- "":
				default:
				}
			}
		}
		select {
		case ready <- strings.Join(lines, "\n"):
		default:
		}
	}()
	select {
	case msg := <-ready:
		if msg != "" {
			t.Fatalf("listener at %s: %s", in.Node, msg)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("listener at %s did not start", in.Node)
	}
	return listener{cmd: cmd, file: file}
}

// activeCensus sends one census from an instance to the targets and
// returns the report: listeners at both instances, the sender's record,
// joined.
func activeCensus(t *testing.T, ac *lab.Anycast, sender lab.Instance, id string, anycast netip.Addr, targets []netip.Addr, reportArgs ...string) (censusDoc, string) {
	t.Helper()
	var ls []listener
	for _, in := range []lab.Instance{ac.A, ac.B} {
		ls = append(ls, startListener(t, ac, in, anycast, id, 4*time.Second))
	}
	args := []string{"census", "send", "--anycast", anycast.String(), "--site", sender.NSID, "--census", id, "--rate", "100", "-o", "jsonl"}
	for _, a := range targets {
		args = append(args, a.String())
	}
	sent, errOut, code := labRun(t, ac, sender.Node, args...)
	if code != 0 {
		t.Fatalf("census send: exit %d: %s", code, errOut)
	}
	reporttest.Check(t, []byte(sent), true)
	sentFile := filepath.Join(t.TempDir(), "sent.jsonl")
	os.WriteFile(sentFile, []byte(sent), 0o644)
	files := []string{sentFile}
	for _, l := range ls {
		if err := l.cmd.Wait(); err != nil {
			t.Fatalf("listener: %v", err)
		}
		data, _ := os.ReadFile(l.file)
		reporttest.Check(t, data, true)
		files = append(files, l.file)
	}
	out, errOut, code := runHost(t, append(append([]string{"census", "report", "--prefix-len", "32,128", "-o", "json"}, reportArgs...), files...)...)
	if code != 0 {
		t.Fatalf("census report: exit %d: %s", code, errOut)
	}
	text, _, _ := runHost(t, append([]string{"census", "report", "--prefix-len", "32,128"}, files...)...)
	t.Logf("census report %s:\n%s", id, text)
	return decodeCensus(t, out), out
}

// The active census (echo requests from the anycast address at one
// instance, replies captured at both) maps every client to the instance `anycheck
// id` reaches from it, before and after a withdrawal; a target that does
// not answer is listed as unresponsive.
func TestLabCensusActive(t *testing.T) {
	t.Parallel()
	ac := lab.StartAnycast(t)
	nodes := []string{"c1", "c2", "svc"}
	table := pfx2as(t, ac)
	nobody := netip.MustParseAddr("198.51.100.99") // in the lab's space, held by no node
	for phase, id := range []string{"a1", "a2"} {
		// The census is sent from A; once ra stops announcing to r1, A
		// reaches only r3's customer, so the second is sent from B.
		sender := ac.A
		if phase == 1 {
			sender = ac.B
			if err := ac.StopBGP("ra", "r1"); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if in, err := ac.WaitInstance(ctx, "c1"); err != nil || in != ac.B {
				t.Fatalf("c1 did not move to B: %v", err)
			}
			cancel()
		}
		for _, f := range []lab.Family{lab.IPv4, lab.IPv6} {
			var targets []netip.Addr
			want := map[string]string{}
			for _, n := range nodes {
				a := ac.Addr(n, map[string]string{"c1": "e1", "c2": "s2", "svc": "rt"}[n], f)
				targets = append(targets, a)
				want[netip.PrefixFrom(a, a.BitLen()).String()] = idInstance(t, ac, n, ac.ServiceAddr(f))
			}
			split := ac.ClientAddr(ac.SplitClient(), f)
			targets = append(targets, split)
			if f == lab.IPv4 {
				targets = append(targets, nobody)
			}
			d, doc := activeCensus(t, ac, sender, fmt.Sprintf("%s%d", id, f), ac.ServiceAddr(f), targets, "--asn", "file:"+table)
			if phase == 0 && f == lab.IPv4 {
				censusNextToVantages(t, ac, table, doc)
			}
			for p, inst := range want {
				if c, ok := d.client(p); !ok || ptrString(c.Instance) != inst || c.Split {
					t.Errorf("census %s %v: %s at %q, anycheck id says %s", id, f, p, ptrString(c.Instance), inst)
				}
			}
			// The split client's echo reply is one flow: it reaches one site.
			if c, ok := d.client(netip.PrefixFrom(split, split.BitLen()).String()); !ok || c.Instance == nil || len(c.Instances) != 1 {
				t.Errorf("census %s %v: c3 %+v, want its reply at one site", id, f, c)
			}
			if f == lab.IPv4 {
				if c, ok := d.client(nobody.String() + "/32"); !ok || c.Instance != nil || d.Census.Unresponsive != 1 {
					t.Errorf("census %s: %s %+v, %d unresponsive; want it unresponsive", id, nobody, c, d.Census.Unresponsive)
				}
			}
		}
	}
}

// pfx2as writes the lab's prefix-to-AS table (CAIDA's pfx2as format).
func pfx2as(t *testing.T, ac *lab.Anycast) string {
	t.Helper()
	origins := map[netip.Prefix][]string{}
	var order []netip.Prefix
	for _, as := range ac.ASes() {
		for _, p := range as.Prefixes {
			if origins[p] == nil {
				order = append(order, p)
			}
			origins[p] = append(origins[p], fmt.Sprint(as.Number))
		}
	}
	var b strings.Builder
	for _, p := range order {
		fmt.Fprintf(&b, "%s\t%d\t%s\n", p.Addr(), p.Bits(), strings.Join(origins[p], "_"))
	}
	file := filepath.Join(t.TempDir(), "pfx2as.txt")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// censusNextToVantages: compare reads the census document next to
// anycheck id's from the clients, and the census lines of an AS land
// where that AS's vantage points say ("the census says AS64501 lands on
// i2-knot; the vantage point in AS64501 says i2-knot").
func censusNextToVantages(t *testing.T, ac *lab.Anycast, table, censusJSON string) {
	t.Helper()
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "census.json")}
	os.WriteFile(files[0], []byte(censusJSON), 0o644)
	for _, c := range ac.Clients() {
		out, errOut, code := labRun(t, ac, c, "id", "--label", c, "-o", "json", ac.ServiceV4.String())
		if code != 0 {
			t.Fatalf("id from %s: %s", c, errOut)
		}
		f := filepath.Join(dir, c+".json")
		os.WriteFile(f, []byte(out), 0o644)
		files = append(files, f)
	}
	out, errOut, code := runHost(t, append([]string{"compare", "--asn", "file:" + table, "-o", "json"}, files...)...)
	if code != 0 {
		t.Fatalf("compare: exit %d: %s", code, errOut)
	}
	reporttest.Check(t, []byte(out), false)
	var doc struct {
		Results []struct {
			Vantage struct {
				Label  string
				Origin *struct{ ASNs []uint32 }
			}
			Instance struct {
				Name   *string
				Source string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	census, vantages := map[uint32]string{}, map[uint32]string{}
	for _, r := range doc.Results {
		if r.Vantage.Origin == nil || len(r.Vantage.Origin.ASNs) == 0 || r.Instance.Name == nil {
			continue
		}
		as := r.Vantage.Origin.ASNs[0]
		if r.Instance.Source == "census" {
			census[as] = *r.Instance.Name
		} else {
			vantages[as] = *r.Instance.Name
		}
	}
	for _, as := range []uint32{64500, 64501} {
		if census[as] == "" || census[as] != vantages[as] {
			t.Errorf("compare: the census puts AS%d at %q, its vantage point at %q", as, census[as], vantages[as])
		}
	}
	t.Logf("compare, census next to the clients' id: census %v, vantage points %v", census, vantages)
}
