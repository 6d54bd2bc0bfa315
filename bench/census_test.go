package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/lab"
)

// censusSendTargets is the size of the rate benchmark's census (issue 21).
const censusSendTargets = 100_000

// TestBenchCensusSend: `census send` holds its --rate within 2 % over
// 100,000 targets, measured twice — by the sender's own summary and by
// tcpdump on the site's router, which sees every echo request leave (the
// first and last packet's capture times and their count). The targets are
// the lab's hosts (c1, c2, c3, svc), over and over: real answers, inside
// the lab. The instance's interface counters say every request left (the
// capture may drop some on a loaded host; its first and last times give
// the rate on the wire). Run by bench/census.sh (ANYCHECK_BENCH=1).
func TestBenchCensusSend(t *testing.T) {
	if os.Getenv("ANYCHECK_BENCH") != "1" {
		t.Skip("a benchmark: bench/census.sh runs it (ANYCHECK_BENCH=1)")
	}
	ac := lab.StartAnycast(t)
	bin := lab.Binary(t)
	hosts := []string{
		ac.ClientAddr("c1", lab.IPv4).String(), ac.ClientAddr("c2", lab.IPv4).String(),
		ac.ClientAddr(ac.SplitClient(), lab.IPv4).String(), ac.ServicesAddr(lab.IPv4).String(),
	}
	hitlist := filepath.Join(t.TempDir(), "hitlist.txt")
	var b strings.Builder
	for i := range censusSendTargets {
		b.WriteString(hosts[i%len(hosts)] + "\n")
	}
	if err := os.WriteFile(hitlist, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	rates := []int{1000, 10000}
	if os.Getenv("ANYCHECK_BENCH_QUICK") == "1" {
		rates = []int{10000}
	}
	fmt.Printf("census send benchmark: %d targets from the anycast address at i1 (load average %s at the start, %d CPUs)\n",
		censusSendTargets, loadAvg(), nproc())
	fmt.Printf("  %-8s %14s %14s %10s %10s %10s\n", "--rate", "sender's rate", "on the wire", "error", "sent (kernel)", "captured")
	for _, rate := range rates {
		pcap := filepath.Join(t.TempDir(), fmt.Sprintf("send-%d.pcap", rate))
		// ra's interface toward i1 is named after it.
		dump, err := ac.Spawn("ra", "tcpdump", "-i", "i1", "-n", "-U", "-Z", "root", "-B", "16384", "-w", pcap, "icmp[icmptype] = icmp-echo and src 192.0.2.53")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // tcpdump's filter in place
		txBefore, err := txPackets(ac, ac.A.Node, ac.A.Origin)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(censusSendTargets/rate+60)*time.Second)
		out, errOut, err := ac.Run(ctx, ac.A.Node, bin, "census", "send", "--anycast", "192.0.2.53", "--site", "i1-nsd",
			"--rate", strconv.Itoa(rate), "--max-targets", strconv.Itoa(censusSendTargets), "--hitlist", hitlist, "-o", "jsonl")
		cancel()
		if err != nil {
			t.Fatalf("census send: %v: %s", err, errOut)
		}
		time.Sleep(500 * time.Millisecond)
		ac.StopProcess(dump)
		txAfter, err := txPackets(ac, ac.A.Node, ac.A.Origin)
		if err != nil {
			t.Fatal(err)
		}
		own, err := summaryRate(string(out))
		if err != nil {
			t.Fatal(err)
		}
		n, first, last, err := pcapTimes(pcap)
		if err != nil {
			t.Fatal(err)
		}
		wire := float64(n-1) / last.Sub(first).Seconds()
		errPct := (wire - float64(rate)) / float64(rate) * 100
		fmt.Printf("  %-8d %12.1f/s %12.1f/s %9.2f%% %10d %10d\n", rate, own, wire, errPct, txAfter-txBefore, n)
		if txAfter-txBefore < censusSendTargets {
			t.Errorf("--rate %d: %d packets left i1, want the %d requests", rate, txAfter-txBefore, censusSendTargets)
		}
		if errPct > 2 || errPct < -2 {
			t.Errorf("--rate %d: %.1f/s on the wire, %.2f%% off", rate, wire, errPct)
		}
	}
}

// summaryRate reads the achieved rate from the end record of `census send
// -o jsonl` (one record per request before it: the sender's record).
func summaryRate(out string) (float64, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var end struct {
		Type       string `json:"type"`
		CensusSend *struct {
			Sent int     `json:"sent"`
			Rate float64 `json:"rate"`
		} `json:"census_send"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &end); err != nil || end.Type != "end" || end.CensusSend == nil {
		return 0, fmt.Errorf("no end record with the summary: %v", err)
	}
	if end.CensusSend.Sent != censusSendTargets || len(lines) != censusSendTargets+1 {
		return 0, fmt.Errorf("%d sent, %d records; want %d", end.CensusSend.Sent, len(lines)-1, censusSendTargets)
	}
	return end.CensusSend.Rate, nil
}

// pcapTimes counts a capture's packets and reads the first and last
// capture times (tcpdump -tt).
func pcapTimes(file string) (n int, first, last time.Time, err error) {
	cmd := exec.Command("tcpdump", "-tt", "-n", "-r", file)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, first, last, err
	}
	if err := cmd.Start(); err != nil {
		return 0, first, last, err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		if n == 0 {
			first = at
		}
		last = at
		n++
	}
	return n, first, last, cmd.Wait()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func nproc() int { return runtime.NumCPU() }

// txPackets is the count of packets a node sent on its interface toward peer.
func txPackets(ac *lab.Anycast, node, peer string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _, err := ac.Run(ctx, node, "ip", "-s", "-j", "link", "show", "dev", peer)
	if err != nil {
		return 0, err
	}
	var links []struct {
		Stats struct {
			TX struct {
				Packets int `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("ip -s -j link show dev %s in %s: %v: %s", peer, node, err, out)
	}
	return links[0].Stats.TX.Packets, nil
}
