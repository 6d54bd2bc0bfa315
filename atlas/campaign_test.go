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
// finishedPair is a client of a fake Atlas with the first request of the
// campaign (a DNS and a traceroute measurement) created and finished.
func finishedPair(t *testing.T) (*atlas.Client, []atlas.Created) {
	t.Helper()
	srv := (&atlastest.Server{Key: testKey}).Start(t)
	c := newClient(srv)
	made, err := c.CreateAll(context.Background(), campaign()[:1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(context.Background(), []int{made[0].ID, made[1].ID}, atlas.WaitOptions{Poll: 1}); err != nil {
		t.Fatal(err)
	}
	return c, made
}

func TestDownloadSaves(t *testing.T) {
	c, made := finishedPair(t)
	dir := t.TempDir()
	var name string
	var head []byte
	err := c.Download(context.Background(), made[0], atlas.ResultsQuery{}, dir, func(n string, r io.Reader) {
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

// DownloadAll reads every measurement in turn and says which failed: one
// unknown to the API fails alone, the others are read; once ctx ends no
// other download starts.
func TestDownloadAll(t *testing.T) {
	c, made := finishedPair(t)
	ms := []atlas.Created{made[0], {ID: 99999999, Type: "dns", AF: 4}, made[1]}
	var read []string
	errs := c.DownloadAll(context.Background(), ms, atlas.ResultsQuery{}, "", func(name string, r io.Reader) {
		io.Copy(io.Discard, r)
		read = append(read, name)
	})
	want := []string{"msm " + strconv.Itoa(made[0].ID), "msm " + strconv.Itoa(made[1].ID)}
	if fmt.Sprint(read) != fmt.Sprint(want) || len(errs) != 3 || errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Errorf("read %v, errors %v; want %v read and measurement 99999999 failed", read, errs, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	read = nil
	errs = c.DownloadAll(ctx, made[:2], atlas.ResultsQuery{}, "", func(name string, r io.Reader) {
		read = append(read, name)
		cancel() // Ctrl-C while the first is read
	})
	if len(read) != 1 || errs[0] != nil || errs[1] != nil {
		t.Errorf("after ctx ended: read %v, errors %v; want the first only, and no error", read, errs)
	}
}

// SaveProbes never follows a link planted in the directory: the probes file is
// written to a new temporary file of a random name, then renamed (a
// symlink at probes.json.tmp once had its target overwritten).
func TestSaveProbesFollowsNoPlantedLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, planted := range []string{atlas.ProbesFile + ".tmp", atlas.ProbesFile} {
		if err := os.Symlink(victim, filepath.Join(dir, planted)); err != nil {
			t.Fatal(err)
		}
		name, err := atlas.SaveProbes(dir, []atlas.Probe{{ID: 7, Country: "NL"}})
		if err != nil {
			t.Fatalf("%s planted: %v", planted, err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "keep me" {
			t.Fatalf("%s planted: the link's target was overwritten: %q", planted, b)
		}
		if fi, err := os.Lstat(name); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s planted: %s is not a regular file: %v %v", planted, name, fi, err)
		}
		ps, err := atlas.ReadProbes(mustOpen(t, name))
		if err != nil || len(ps) != 1 || ps[0].ID != 7 {
			t.Errorf("%s planted: saved probes %+v %v", planted, ps, err)
		}
		os.Remove(filepath.Join(dir, planted))
		os.Remove(name)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("left in the directory: %v", left)
	}
}

func mustOpen(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
