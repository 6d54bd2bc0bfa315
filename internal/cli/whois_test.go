package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/whois/whoistest"
)

func startLabWhois(t *testing.T, table string, mode whoistest.Mode) *whoistest.Server {
	t.Helper()
	rows, err := whoistest.ParseTable(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := whoistest.Start(whoistest.Config{Rows: rows, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

const oneRow = "198.51.100.0/24 | 64500 | ZZ | lab | 2026-01-01 | ISP-ONE\n"

// TestWhoisCacheProblemIsAWarning is issue 13 items 8 and 13: a cache
// directory that cannot be written, or a FIFO where the cache file should
// be, leaves a successful lookup successful (exit 0), says so once on
// stderr, and never blocks.
func TestWhoisCacheProblemIsAWarning(t *testing.T) {
	srv := startLabWhois(t, oneRow, whoistest.Normal)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fifoDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(fifoDir, "anycheck"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"unwritable": blocker, "fifo": fifoDir} {
		t.Run(name, func(t *testing.T) {
			d := testDeps()
			d.cacheDir = func() (string, error) { return dir, nil }
			if name == "fifo" {
				// Every cache file name a whois run could use is a FIFO.
				for _, f := range []string{"whois-cymru_" + strings.NewReplacer(":", "_").Replace(srv.Addr()) + ".cache"} {
					if err := syscall.Mkfifo(filepath.Join(dir, "anycheck", f), 0o600); err != nil {
						t.Skipf("mkfifo: %v", err)
					}
				}
			}
			start := time.Now()
			r := runCLI(t, d, "whois", "--whois-server", srv.Addr(), "-n", "198.51.100.7", "198.51.100.8")
			if r.code != ExitOK {
				t.Errorf("exit %d, want 0; stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, "AS64500") {
				t.Errorf("stdout lacks the answer:\n%s", r.stdout)
			}
			if c := strings.Count(r.stderr, "whois cache"); c != 1 {
				t.Errorf("stderr says the cache problem %d times, want once: %q", c, r.stderr)
			}
			t.Logf("stderr: %s", r.stderr)
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %v", el)
			}
		})
	}
}

// TestWhoisFlagsCheckedWhenParsed is issue 13 item 13: HOST:PORT flags are
// checked when parsed (exit 2, nothing on stdout, the flag named), -4/-6
// apply to the addresses given, and a file error names its path once.
func TestWhoisFlagsCheckedWhenParsed(t *testing.T) {
	for _, flag := range []string{"--whois-server", "--asn-dns-server", "--dns-server"} {
		for _, bad := range []string{"nohostport", ":0", ":99999", "192.0.2.43:0", "192.0.2.43:x", ":53", "bad host!:53", "2001:db8::53"} {
			r := runCLI(t, testDeps(), "whois", "--asn", "none", flag, bad, "192.0.2.1")
			if r.code != ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, flag) || !strings.Contains(r.stderr, bad) {
				t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want exit 2 naming the flag and value", flag, bad, r.code, r.stdout, r.stderr)
			}
		}
	}
	var got *whoisOptions
	cmd := newWhoisCmd(&globalOptions{}, &streams{}, testDeps(), func(_ context.Context, o *whoisOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--whois-server", "[2001:0db8::0043]:43", "--dns-server", "ns.lab.example:5353", "--asn-dns-server", "192.0.2.53:53", "192.0.2.1"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.e.whoisServer != "[2001:db8::43]:43" || got.e.dnsServer != "ns.lab.example:5353" || got.e.asnDNSServer != "192.0.2.53:53" {
		t.Errorf("parsed %q %q %q", got.e.whoisServer, got.e.dnsServer, got.e.asnDNSServer)
	}

	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"-4", "::1"}, "", "::1"},
		{[]string{"-4", "192.0.2.1", "2001:db8::1"}, "", "2001:db8::1"},
		{[]string{"-6", "192.0.2.1"}, "", "192.0.2.1"},
		{[]string{"-4", "-"}, "192.0.2.1\n198.51.100.1 2001:db8::9\n", "2001:db8::9"},
		// A bad word late in a long input: still nothing on stdout.
		{[]string{"-"}, strings.Repeat("192.0.2.1\n", 60_000) + "192.0.2.300\n", "192.0.2.300"},
		{[]string{"-"}, "192.0.2.1 " + strings.Repeat("9", 5000), "longer than"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"whois", "--asn", "none", "-n"}, tc.args...),
			&streams{in: strings.NewReader(tc.stdin), out: &out, err: &errb}, testDeps())
		if code != ExitUsage || out.Len() != 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("whois %v: exit %d, %d bytes on stdout, stderr %q; want exit 2 naming %q", tc.args, code, out.Len(), errb.String(), tc.want)
		}
	}

	missing := filepath.Join(t.TempDir(), "no-such-table.pfx2as")
	broken := filepath.Join(t.TempDir(), "broken.pfx2as")
	os.WriteFile(broken, []byte("192.0.2.0\t24\t64500\n192.0.2.0\tx\t1\n"), 0o600)
	for path, want := range map[string]string{missing: "no such file", broken: "line 2"} {
		r := runCLI(t, testDeps(), "whois", "--asn", "file:"+path, "192.0.2.1")
		if r.code != ExitUsage || strings.Count(r.stderr, path) != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("--asn file:%s: exit %d, stderr %q; want exit 2 naming the path once and %q", path, r.code, r.stderr, want)
		}
	}
}

// TestWhoisStdinInBatches: a long standard input is looked up batch by
// batch, in order, and every address gets its row.
func TestWhoisStdinInBatches(t *testing.T) {
	table := filepath.Join(t.TempDir(), "t.pfx2as")
	os.WriteFile(table, []byte("192.0.2.0\t24\t64500\n198.51.100.0\t24\t64510\n"), 0o600)
	var in strings.Builder
	n := whoisBatch*2 + 7
	for i := range n {
		fmt.Fprintf(&in, "%s.%d\n", []string{"192.0.2", "198.51.100", "203.0.113"}[i%3], i%250+1)
	}
	for _, format := range []string{"text", "jsonl"} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"whois", "--asn", "file:" + table, "-n", "-o", format, "-"},
			&streams{in: strings.NewReader(in.String()), out: &out, err: &errb}, testDeps())
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", format, code, errb.String())
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		want := n + 1 // a header line, or the end record
		if len(lines) != want {
			t.Errorf("%s: %d lines, want %d", format, len(lines), want)
		}
		if format == "text" && (!strings.HasPrefix(lines[0], "ADDRESS") || strings.Count(out.String(), "ADDRESS") != 1 ||
			!strings.HasPrefix(lines[1], "192.0.2.1 ") || !strings.Contains(lines[2], "AS64510") || !strings.Contains(lines[3], "NA")) {
			t.Errorf("text output starts %q", lines[:4])
		}
	}
}

// FuzzReadAddrWords is the stdin address reader: any input either fails
// with an error or yields exactly its white-space separated words, each
// at most maxInputWord bytes.
func FuzzReadAddrWords(f *testing.F) {
	f.Add([]byte("192.0.2.1\n 198.51.100.2\t[2001:db8::1]\r\n"))
	f.Add([]byte("\x00\xff 192.0.2.1\u00a0x"))
	f.Add([]byte(strings.Repeat("1", maxInputWord+1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []string
		err := readAddrWords(bytes.NewReader(data), func(w string) error {
			if len(w) == 0 || len(w) > maxInputWord {
				t.Fatalf("word of %d bytes", len(w))
			}
			got = append(got, w)
			_, _ = parseAddrWord(w)
			return nil
		})
		if err == nil && !slices.Equal(got, strings.Fields(string(data))) && utf8.Valid(data) {
			t.Fatalf("words %q, want %q", got, strings.Fields(string(data)))
		}
	})
}

// TestTraceCacheNeverLessSpecific is issue 13 item 1 inside trace: an
// answer cached for an address of the covering 198.51.0.0/16 must not
// answer for the hops in the more-specific 198.51.100.0/24.
func TestTraceCacheNeverLessSpecific(t *testing.T) {
	srv := startLabWhois(t, "198.51.0.0/16 | 64500 | ZZ | lab | 2026-01-01 | COVERING\n"+
		"198.51.100.0/24 | 64510 | ZZ | lab | 2026-01-01 | SPECIFIC\n"+
		"192.0.2.0/24 | 64520 | ZZ | lab | 2026-01-01 | ANYDNS\n", whoistest.Normal)
	d := fakeDeps(fakePath())
	cache := t.TempDir()
	d.cacheDir = func() (string, error) { return cache, nil }
	if r := runCLI(t, d, "whois", "--whois-server", srv.Addr(), "-n", "198.51.7.1"); r.code != ExitOK || !strings.Contains(r.stdout, "AS64500") {
		t.Fatalf("whois: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r := runCLI(t, d, "trace", "--whois-server", srv.Addr(), "-n", "-o", "json", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("trace: exit %d, stderr %q", r.code, r.stderr)
	}
	var doc struct{ Results []report.TraceResult }
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Results) != 1 || len(doc.Results[0].Flows) != 1 || len(doc.Results[0].Flows[0].Path.Hops) == 0 {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	for _, h := range doc.Results[0].Flows[0].Path.Hops {
		for _, resp := range h.Responders {
			if strings.HasPrefix(resp.Address, "198.51.100.") && (resp.Origin == nil || resp.Origin.Prefix != "198.51.100.0/24" || resp.Origin.Cached) {
				t.Errorf("hop %d %s: origin %+v, want 198.51.100.0/24 from the source", h.TTL, resp.Address, resp.Origin)
			}
		}
	}
}
