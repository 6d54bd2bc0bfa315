package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// syncBuffer lets the test read stderr while run writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-table"}, {"-nope"}, {"-table", "x", "extra"}} {
		var errOut bytes.Buffer
		if code := run(context.Background(), args, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"-table", "/nonexistent"}, &errOut); code != 1 || !strings.Contains(errOut.String(), "/nonexistent") {
		t.Errorf("missing table: %d %q", code, errOut.String())
	}
}

func TestRunServes(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "rows.txt")
	os.WriteFile(table, []byte("192.0.2.0/24 | 64500 | ZZ | lab | 2020-01-01 | EXAMPLE-ISP\n2001:db8::/32 | 64520 64521 | ZZ | lab | | ANYDNS\n"), 0o644)
	pfx2as := filepath.Join(dir, "lab.pfx2as")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errOut := &syncBuffer{}
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-dns", "127.0.0.1:0", "-table", table, "-pfx2as", pfx2as}, errOut)
	}()
	dnsAddr := regexp.MustCompile(`dns on (\S+)`)
	var m []string
	for deadline := time.Now().Add(5 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		m = dnsAddr.FindStringSubmatch(errOut.String())
	}
	if m == nil {
		t.Fatalf("no DNS server announced: %q", errOut.String())
	}
	q := new(dns.Msg)
	q.SetQuestion("1.2.0.192.origin.asn.cymru.com.", dns.TypeTXT)
	resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, m[1])
	if err != nil || len(resp.Answer) != 1 || !strings.Contains(resp.Answer[0].String(), "64500 | 192.0.2.0/24 | ZZ | lab | 2020-01-01") {
		t.Errorf("origin TXT: %v %v", resp, err)
	}
	data, err := os.ReadFile(pfx2as)
	if err != nil || string(data) != "192.0.2.0\t24\t64500\n2001:db8::\t32\t64520_64521\n" {
		t.Errorf("pfx2as file %q, %v", data, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop on cancel")
	}
}
