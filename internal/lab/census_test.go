package lab

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/anycheck/anycheck/census"
)

// Both instances log their clients' queries as dnstap, named by their
// NSID, and tcpdump on an instance captures them too.
func TestLabDnstap(t *testing.T) {
	t.Parallel()
	ac := StartAnycastDnstap(t)
	pcap, tcpdump, err := ac.Capture(ac.A.Node)
	if err != nil {
		t.Fatal(err)
	}
	var loops []*exec.Cmd
	for _, c := range ac.Clients() {
		cmd, err := ac.QueryLoop(c, ac.ServiceV4, 50*time.Millisecond, 10)
		if err != nil {
			t.Fatal(err)
		}
		loops = append(loops, cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, l := range loops {
		if err := ac.WaitProcess(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := ac.StopDnstap(); err != nil {
		t.Fatal(err)
	}
	ac.StopProcess(tcpdump)
	for name, want := range map[string]struct {
		file, identity, client string
	}{
		"A":    {ac.Dnstap["A"].File, ac.A.NSID, "c1"},
		"B":    {ac.Dnstap["B"].File, ac.B.NSID, "c2"},
		"pcap": {pcap, ac.A.Identity, "c1"},
	} {
		f, err := os.Open(want.file)
		if err != nil {
			t.Fatal(err)
		}
		l, err := census.OpenLog(f, census.LogOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n, mine := 0, 0
		for {
			q, err := l.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
			if q.Client == ac.ClientAddr(want.client, IPv4) {
				mine++
			}
			if q.Identity != "" && q.Identity != want.identity {
				t.Errorf("%s: query %+v, want identity %q", name, q, want.identity)
			}
		}
		st := l.Stats()
		t.Logf("%s: %d queries (%d from %s), stats %+v", name, n, mine, want.client, st)
		if mine < 8 || st.Truncated || len(st.Identities) != 1 || st.Identities[0] != want.identity {
			t.Errorf("%s: %d queries from %s (truncated %v), want its 10", name, mine, want.client, st.Truncated)
		}
		// ANYCHECK_LAB_KEEP=DIR keeps the logs (testdata/census was made so).
		if dir := os.Getenv("ANYCHECK_LAB_KEEP"); dir != "" {
			data, _ := os.ReadFile(want.file)
			os.WriteFile(filepath.Join(dir, "lab-"+name+filepath.Ext(want.file)), data, 0o644)
		}
		f.Close()
	}
}
