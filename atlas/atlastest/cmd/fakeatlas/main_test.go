package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServesExistingMeasurementsUntilStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	table := filepath.Join(t.TempDir(), "world.txt")
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"-probes", "20", "-existing", "-pfx2as", table}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatal("no URL printed")
	}
	url := sc.Text()
	if !sc.Scan() || len(strings.Fields(sc.Text())) != 4 {
		t.Fatalf("ids line %q: want four measurement ids", sc.Text())
	}
	ids := strings.Fields(sc.Text())
	go io.Copy(io.Discard, pr)
	resp, err := http.Get(url + "/api/v2/measurements/" + ids[1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Type   string `json:"type"`
		Status struct {
			Name string `json:"name"`
		} `json:"status"`
	}
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if m.Type != "traceroute" || m.Status.Name != "Stopped" {
		t.Errorf("measurement %s: %+v, want a finished traceroute", ids[1], m)
	}
	if b, err := os.ReadFile(table); err != nil || !strings.Contains(string(b), "192.0.2.0\t24\t64511") {
		t.Errorf("pfx2as table %q, %v", b, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still serving after the signal")
	}
}

func TestServesOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8089", "192.0.2.1:8089", "localhost:8089"} {
		var errb strings.Builder
		if code := run(context.Background(), []string{"-listen", addr}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "loopback") {
			t.Errorf("-listen %s: exit %d, %q", addr, code, errb.String())
		}
	}
}
