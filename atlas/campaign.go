package atlas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"
)

// A campaign is the measurements of one run, made together (CreateAll) or
// fetched, then waited for (Wait) and downloaded (Download): the engine
// of `anycheck atlas run` and `atlas fetch`, callable without the CLI.

// Created is one measurement of a campaign: its id and what it measures.
type Created struct {
	ID     int
	Type   string // "dns", "traceroute"
	AF     int    // 4 or 6
	Target string
}

func (m Created) String() string {
	if m.Type == "" {
		return strconv.Itoa(m.ID)
	}
	return fmt.Sprintf("%d (%s, IPv%d)", m.ID, m.Type, m.AF)
}

// CreateError is a creation request that failed after earlier ones of the
// campaign had made measurements. Those were stopped (Stopped), or could
// not be (Running, each with its error in StopErrs): they still run.
type CreateError struct {
	Request  int // 1-based
	Err      error
	Stopped  []int
	Running  []int
	StopErrs []error
}

func (e *CreateError) Error() string {
	if len(e.Running) > 0 {
		return fmt.Sprintf("%v (request %d failed; stopping measurements %s failed too: stop them on atlas.ripe.net)", e.Err, e.Request, strings.ReplaceAll(joinInts(e.Running), ",", ", "))
	}
	return fmt.Sprintf("%v (request %d failed, so measurements %s were stopped)", e.Err, e.Request, strings.ReplaceAll(joinInts(e.Stopped), ",", ", "))
}

func (e *CreateError) Unwrap() error { return e.Err }

// stopTimeout bounds stopping a failed campaign's measurements.
const stopTimeout = 30 * time.Second

// CreateAll creates the requests in order, as one campaign. A request
// whose probe selection is SelectMsm runs on the probes of the campaign's
// first measurement (the second family on the first family's probes).
// When a request fails after others made measurements, those are stopped
// (with a fresh, bounded context: the run's may be what failed), so
// nothing is left running that the caller gets no results from, and the
// error is a *CreateError; a first request that fails returns its error.
func (c *Client) CreateAll(ctx context.Context, reqs []CreateRequest) ([]Created, error) {
	var made []Created
	for i, r := range reqs {
		if len(r.Probes) > 0 && r.Probes[0].Type == SelectMsm && len(made) > 0 {
			r.Probes = append([]ProbeSelection(nil), r.Probes...)
			r.Probes[0].Value = made[0].ID
		}
		ids, err := c.Create(ctx, r)
		if err != nil {
			if len(made) == 0 {
				return nil, err
			}
			return nil, c.stopAll(made, i+1, err)
		}
		for j, id := range ids {
			m := Created{ID: id}
			if j < len(r.Definitions) {
				def := r.Definitions[j]
				m.Type = def.MeasurementType()
				switch dd := def.(type) {
				case DNSDefinition:
					m.AF, m.Target = dd.AF, dd.Target
				case TracerouteDefinition:
					m.AF, m.Target = dd.AF, dd.Target
				}
			}
			made = append(made, m)
		}
	}
	return made, nil
}

func (c *Client) stopAll(made []Created, request int, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	e := &CreateError{Request: request, Err: cause}
	for _, m := range made {
		if err := c.Stop(ctx, m.ID); err != nil {
			e.Running = append(e.Running, m.ID)
			e.StopErrs = append(e.StopErrs, err)
			continue
		}
		e.Stopped = append(e.Stopped, m.ID)
	}
	return e
}

// maxUnread is the most Download reads past where its reader stopped, to
// save the file whole.
const maxUnread = 64 << 20

// ErrSave wraps a failure to keep the downloaded results in the save
// directory (the download itself may have been fine).
var ErrSave = errors.New("save")

// Download streams measurement m's results (a JSON array: a measurement
// without results is "[]", never an empty file) into consume and, with a
// saveDir, into saveDir/msm-ID-TYPE-ipvAF.json as they arrive, written
// atomically (renameio: the file appears complete or not at all, and a
// link planted in the directory is never followed). consume gets that
// file's name, or "msm ID" without a saveDir. When consume returns, the
// download ends; with a saveDir what it left unread (after an error it
// stopped at) is still saved, up to 64 MB (a longer rest, and the file is
// not saved).
func (c *Client) Download(ctx context.Context, m Created, q ResultsQuery, saveDir string, consume func(name string, r io.Reader)) error {
	body, err := c.Results(ctx, m.ID, q)
	if err != nil {
		return err
	}
	defer body.Close()
	name := fmt.Sprintf("msm %d", m.ID)
	var src io.Reader = body
	var tmp *renameio.PendingFile
	if saveDir != "" {
		name = filepath.Join(saveDir, fmt.Sprintf("msm-%d-%s-ipv%d.json", m.ID, m.Type, m.AF))
		if tmp, err = renameio.NewPendingFile(name, renameio.WithTempDir(saveDir), renameio.WithPermissions(0o644)); err != nil {
			return fmt.Errorf("%w: %w", ErrSave, err)
		}
		defer tmp.Cleanup() // a no-op once renamed
		src = io.TeeReader(body, tmp)
	}
	consume(name, src)
	// A body given up (too slow, past the deadline) fails the download,
	// whatever the reader made of it.
	if g, ok := body.(interface{ Err() error }); ok && g.Err() != nil {
		return fmt.Errorf("results of measurement %d: %w", m.ID, g.Err())
	}
	if tmp == nil {
		return nil // the reader stopped: so does the download
	}
	// What the reader left (after an error it stopped at) is saved too,
	// up to maxUnread: a body that goes on past it is not saved at all.
	n, err := io.Copy(io.Discard, io.LimitReader(src, maxUnread+1))
	if err != nil {
		return fmt.Errorf("results of measurement %d: %w", m.ID, err)
	}
	if n > maxUnread {
		return fmt.Errorf("%w: results of measurement %d: more than %d MB followed where reading them stopped: not saved", ErrSave, m.ID, maxUnread>>20)
	}
	if err := tmp.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("%w: %w", ErrSave, err)
	}
	return nil
}

// DownloadAll downloads the measurements' results in turn (Download),
// until ctx ends; errs[i] is measurement i's error, nil when it was read
// (and saved) in full or not reached.
func (c *Client) DownloadAll(ctx context.Context, ms []Created, q ResultsQuery, saveDir string, consume func(name string, r io.Reader)) (errs []error) {
	errs = make([]error, len(ms))
	for i, m := range ms {
		if ctx.Err() != nil {
			break
		}
		if err := c.Download(ctx, m, q, saveDir, consume); err != nil && ctx.Err() == nil {
			errs[i] = err
		}
	}
	return errs
}

// SaveProbes writes the probes' metadata next to saved results, as
// dir/probes.json in the shape /api/v2/probes/ serves it (WriteProbes),
// atomically (renameio: a temporary file of a random name created
// exclusively, renamed over probes.json; a link planted at either is never
// followed). It returns the file's name; its errors are ErrSave.
func SaveProbes(dir string, probes []Probe) (string, error) {
	var b bytes.Buffer
	if err := WriteProbes(&b, probes); err != nil {
		return "", err
	}
	name := filepath.Join(dir, ProbesFile)
	if err := renameio.WriteFile(name, b.Bytes(), 0o644, renameio.WithTempDir(dir)); err != nil {
		return "", fmt.Errorf("%w: %w", ErrSave, err)
	}
	return name, nil
}
