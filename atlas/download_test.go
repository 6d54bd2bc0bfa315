package atlas_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycheck/anycheck/atlas"
)

// bodyTransport answers every request with 200 and the body body() makes.
type bodyTransport func() io.ReadCloser

func (t bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: t(), Request: r}, nil
}

// countingBody counts what is read of r; it waits pause before each read
// (a trickle) when pause > 0, giving at most chunk bytes a read.
type countingBody struct {
	r     io.Reader
	n     *atomic.Int64
	pause time.Duration
	chunk int
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.pause > 0 {
		time.Sleep(b.pause)
	}
	if b.chunk > 0 && len(p) > b.chunk {
		p = p[:b.chunk]
	}
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return nil }

type fill byte

func (f fill) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f)
	}
	return len(p), nil
}

const oneResult = `{"type":"dns","prb_id":1,"timestamp":1767225600,"dst_addr":"192.0.2.53","result":{"rt":1}}`

// readAtlas is what compare does with a download: read results until the
// reader stops.
func readAtlas(_ string, r io.Reader) {
	rd, err := atlas.NewReader(r)
	if err != nil {
		return
	}
	for {
		_, err := rd.Next()
		var re *atlas.ResultError
		if err != nil && !errors.As(err, &re) {
			return
		}
	}
}

// When the reader stops (the array broke), the download stops too: the
// rest of a body that goes on (and on) is not read. With a save directory
// at most 64 MB more are read to complete the file, then it is not saved.
func TestDownloadStopsWhenTheReaderStops(t *testing.T) {
	for _, save := range []bool{false, true} {
		var n atomic.Int64
		const rest = 256 << 20
		c := &atlas.Client{BaseURL: "http://192.0.2.1", HTTP: &http.Client{Transport: bodyTransport(func() io.ReadCloser {
			return &countingBody{r: io.MultiReader(strings.NewReader("["+oneResult+",x"), io.LimitReader(fill('x'), rest)), n: &n}
		})}}
		dir := ""
		if save {
			dir = t.TempDir()
		}
		err := c.Download(context.Background(), atlas.Created{ID: 1, Type: "dns", AF: 4}, atlas.ResultsQuery{}, dir, readAtlas)
		// The reader itself reads at most a 4 MB result before it stops.
		limit := int64(4<<20 + 1<<20)
		if save {
			limit += 64 << 20
			if !errors.Is(err, atlas.ErrSave) || !strings.Contains(err.Error(), "not saved") {
				t.Errorf("save: %v, want the file not saved", err)
			}
		} else if err != nil {
			t.Errorf("%v", err)
		}
		if n.Load() > limit {
			t.Errorf("save %v: read %d MB of a body whose reader stopped after its first result", save, n.Load()>>20)
		}
	}
}

// A body that trickles (a byte every 20 s keeps a 60 s idle timer from
// ever firing) is given up: it must bring 4 KB in every minute.
func TestDownloadGivesUpATrickle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		c := &atlas.Client{BaseURL: "http://192.0.2.1", HTTP: &http.Client{Transport: bodyTransport(func() io.ReadCloser {
			return &countingBody{r: io.MultiReader(strings.NewReader("["+oneResult+","), io.LimitReader(fill(' '), 100_000)), n: &n, pause: 20 * time.Second, chunk: 1}
		})}}
		start := time.Now()
		err := c.Download(context.Background(), atlas.Created{ID: 1}, atlas.ResultsQuery{}, "", readAtlas)
		if took := time.Since(start); took > 3*time.Minute || err == nil || !strings.Contains(err.Error(), "in 1m0s") {
			t.Errorf("a trickle held the download for %s (%d bytes): %v", took, n.Load(), err)
		}
	})
}

// However steadily a body comes, a download ends at DownloadTimeout.
func TestDownloadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		c := &atlas.Client{BaseURL: "http://192.0.2.1", DownloadTimeout: 10 * time.Minute, HTTP: &http.Client{Transport: bodyTransport(func() io.ReadCloser {
			// 8 KB every 7 s for about 2 hours (several reads in every minute).
			return &countingBody{r: io.MultiReader(strings.NewReader("["+oneResult+","), io.LimitReader(fill(' '), 8<<20)), n: &n, pause: 7 * time.Second, chunk: 8 << 10}
		})}}
		start := time.Now()
		err := c.Download(context.Background(), atlas.Created{ID: 1}, atlas.ResultsQuery{}, "", readAtlas)
		if took := time.Since(start); took > 11*time.Minute || err == nil || !strings.Contains(err.Error(), "longer than 10m0s") {
			t.Errorf("download went on for %s: %v", took, err)
		}
	})
}

// A body that brings nothing is given up, saying so.
func TestDownloadGivesUpSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		c := &atlas.Client{BaseURL: "http://192.0.2.1", HTTP: &http.Client{Transport: bodyTransport(func() io.ReadCloser {
			return &countingBody{r: strings.NewReader("[]"), n: &n, pause: time.Hour}
		})}}
		err := c.Download(context.Background(), atlas.Created{ID: 1}, atlas.ResultsQuery{}, "", readAtlas)
		if err == nil || !strings.Contains(err.Error(), "results of measurement 1: no data for 1m0s") {
			t.Errorf("%v", err)
		}
	})
}
