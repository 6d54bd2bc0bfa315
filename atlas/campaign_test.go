package atlas_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/anycheck/anycheck/atlas"
	"github.com/anycheck/anycheck/atlas/atlastest"
)

func campaign() []atlas.CreateRequest {
	return []atlas.CreateRequest{
		{Definitions: pair("192.0.2.53", 4), Probes: []atlas.ProbeSelection{{Requested: 6, Type: atlas.SelectArea, Value: "WW"}}, IsOneoff: true},
		{Definitions: pair("2001:db8:53::53", 6), Probes: []atlas.ProbeSelection{atlas.SameProbesAs(0, 6)}, IsOneoff: true},
	}
}

// CreateAll makes a campaign's measurements in order, the second family's
// on the probes of the first's first measurement.
func TestCreateAll(t *testing.T) {
	srv := (&atlastest.Server{Key: testKey}).Start(t)
	made, err := newClient(srv).CreateAll(context.Background(), campaign())
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 4 || made[0].Type != "dns" || made[0].AF != 4 || made[1].Type != "traceroute" || made[2].AF != 6 || made[3].Target != "2001:db8:53::53" {
		t.Fatalf("made %+v", made)
	}
	_, v4 := srv.Created(made[0].ID)
	_, v6 := srv.Created(made[2].ID)
	if len(v4) == 0 || fmt.Sprint(v4) != fmt.Sprint(v6) {
		t.Errorf("IPv4 probes %v, IPv6 probes %v: want the same", v4, v6)
	}
}

// A later request that fails stops what the campaign made: nothing is left
// running that the caller gets no results from.
func TestCreateAllStopsAfterFailure(t *testing.T) {
	srv := (&atlastest.Server{Key: testKey}).Start(t)
	srv.Inject(atlastest.Fault{Method: "POST", Path: "/api/v2/measurements/", Skip: 1, Status: 400, Detail: "no more credits"})
	_, err := newClient(srv).CreateAll(context.Background(), campaign())
	var ce *atlas.CreateError
	if !errors.As(err, &ce) || ce.Request != 2 || len(ce.Stopped) != 2 || len(ce.Running) != 0 {
		t.Fatalf("err %v (%+v): want request 2 failed and its two predecessors stopped", err, ce)
	}
	for _, id := range ce.Stopped {
		if !srv.Stopped(id) {
			t.Errorf("measurement %d was not stopped on the server", id)
		}
	}
	var ae *atlas.APIError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "were stopped") {
		t.Errorf("err %q: want the API's error, saying what was stopped", err)
	}
}

// Download streams the results to the reader and keeps them, whole, in
// the save directory, even when the reader stops early.
func TestDownloadSaves(t *testing.T) {
	srv := (&atlastest.Server{Key: testKey}).Start(t)
	c := newClient(srv)
	made, err := c.CreateAll(context.Background(), campaign()[:1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(context.Background(), []int{made[0].ID, made[1].ID}, atlas.WaitOptions{Poll: 1}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var name string
	var head []byte
	err = c.Download(context.Background(), made[0], atlas.ResultsQuery{}, dir, func(n string, r io.Reader) {
		name = n
		head = make([]byte, 10)
		io.ReadFull(r, head) // a reader that stops early
	})
	if err != nil {
		t.Fatal(err)
	}
	if name != filepath.Join(dir, "msm-"+strconv.Itoa(made[0].ID)+"-dns-ipv4.json") {
		t.Errorf("saved as %q", name)
	}
	saved, err := os.ReadFile(name)
	if err != nil || !strings.HasPrefix(string(saved), string(head)) || !strings.HasSuffix(strings.TrimSpace(string(saved)), "]") {
		t.Errorf("saved file (%v): %.80q… want the whole JSON array", err, saved)
	}
	err = c.Download(context.Background(), made[0], atlas.ResultsQuery{}, filepath.Join(dir, "missing", "sub"), func(string, io.Reader) {})
	if !errors.Is(err, atlas.ErrSave) {
		t.Errorf("an unusable save directory: %v, want ErrSave", err)
	}
}
