package atlas

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxResult bounds one result's size: a hostile file cannot make the
// reader buffer more than this for one value.
const maxResult = 32 << 20

// Reader streams the results of an Atlas result file: a JSON array, one
// result per line (or any sequence of JSON objects), either of them
// gzip-compressed — told from the content, never the name. It holds one
// result at a time.
type Reader struct {
	src    io.Reader // what the decoder reads from
	dec    *json.Decoder
	array  bool
	gzip   bool
	index  int  // index of the next result
	done   bool // the array's closing bracket was read
	closer io.Closer
}

// ErrNotAtlas is returned by NewReader for input that is no JSON array or
// object stream (empty input included).
var ErrNotAtlas = errors.New("not RIPE Atlas results (a JSON array or objects, optionally gzip-compressed)")

// NewReader sniffs the input: gzip magic, then the first non-space byte
// ('[' an array, '{' a stream of objects).
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{}
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		rd.gzip, rd.closer = true, zr
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	rd.src = br
	first, err := firstByte(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty", ErrNotAtlas)
		}
		return nil, err
	}
	switch first {
	case '[':
		rd.array = true
		rd.dec = json.NewDecoder(rd.src)
		if _, err := rd.dec.Token(); err != nil {
			return nil, err
		}
	case '{':
		rd.dec = json.NewDecoder(rd.src)
	default:
		return nil, fmt.Errorf("%w: starts with %q", ErrNotAtlas, first)
	}
	return rd, nil
}

// firstByte returns the first non-space byte without consuming it.
func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\t' && b != '\n' && b != '\r' {
			return b, br.UnreadByte()
		}
	}
}

// Format names what was read: "json array" or "json lines", "+gzip".
func (r *Reader) Format() string {
	f := "json lines"
	if r.array {
		f = "json array"
	}
	if r.gzip {
		f += "+gzip"
	}
	return f
}

// Index is the position in the file of the result Next returned last.
func (r *Reader) Index() int { return r.index - 1 }

// Close releases the gzip reader, if any (not the underlying reader).
func (r *Reader) Close() error {
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// ResultError is one result that could not be read; Next can go on.
type ResultError struct {
	Index int // 0-based position of the result in the file
	Err   error
}

func (e *ResultError) Error() string { return fmt.Sprintf("result %d: %v", e.Index, e.Err) }
func (e *ResultError) Unwrap() error { return e.Err }

// Next returns the next result; io.EOF at the end. A *ResultError is one
// bad result (a ping result, a field of the wrong type): call Next again.
// Any other error (truncated or invalid JSON) ends the file; it names the
// result where reading stopped.
func (r *Reader) Next() (Result, error) {
	if r.done {
		return Result{}, io.EOF
	}
	idx := r.index
	if r.array && !r.dec.More() {
		r.done = true
		if _, err := r.dec.Token(); err != nil {
			return Result{}, fmt.Errorf("result %d: %w", idx, truncated(err))
		}
		return Result{}, io.EOF
	}
	var raw rawResult
	err := r.decode(&raw)
	if errors.Is(err, io.EOF) && !r.array {
		r.done = true
		return Result{}, io.EOF
	}
	r.index++
	var te *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &te) {
		if r.array {
			r.done = true
			return Result{}, fmt.Errorf("result %d: %w; the rest of the file is not read", idx, truncated(err))
		}
		// Objects one per line: skip to the next line and go on;
		// a value cut by the end of the input ends the file.
		if errors.Is(err, io.ErrUnexpectedEOF) {
			r.done = true
			return Result{}, fmt.Errorf("result %d: truncated JSON", idx)
		}
		if rerr := r.resync(); rerr != nil {
			r.done = true
			return Result{}, fmt.Errorf("result %d: %w", idx, truncated(err))
		}
		return Result{}, &ResultError{Index: idx, Err: fmt.Errorf("not JSON: %w", err)}
	}
	if err != nil {
		return Result{}, &ResultError{Index: idx, Err: jsonError(err)}
	}
	res, err := raw.result()
	if err != nil {
		return Result{}, &ResultError{Index: idx, Err: err}
	}
	return res, nil
}

// decode reads one value, refusing values beyond maxResult.
func (r *Reader) decode(v any) error {
	start := r.dec.InputOffset()
	err := r.dec.Decode(v)
	if err == nil && r.dec.InputOffset()-start > maxResult {
		return fmt.Errorf("result larger than %d MB", maxResult>>20)
	}
	return err
}

// resync drops the rest of the bad line and restarts decoding after it.
// The new source is what the decoder had buffered (after the newline)
// followed by the old source, so no byte is read twice or lost.
func (r *Reader) resync() error {
	buf, _ := io.ReadAll(r.dec.Buffered())
	// The buffer starts where the bad value's scan started, which may be
	// the white space before it.
	buf = bytes.TrimLeft(buf, " \t\r\n")
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		r.src = io.MultiReader(bytes.NewReader(buf[i+1:]), r.src)
	} else {
		if err := skipLine(r.src); err != nil {
			return err
		}
	}
	r.dec = json.NewDecoder(r.src)
	return nil
}

// skipLine reads up to and including the next newline.
func skipLine(src io.Reader) error {
	var b [1]byte
	for n := 0; n < maxResult; n++ {
		if _, err := io.ReadFull(src, b[:]); err != nil {
			return err
		}
		if b[0] == '\n' {
			return nil
		}
	}
	return errors.New("line too long")
}

func truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("truncated JSON")
	}
	return err
}
