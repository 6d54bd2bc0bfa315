package atlas

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/valyala/fastjson"
)

// maxResult bounds one result's size: a hostile file cannot make the
// reader buffer more than this for one value, nor the parse tree grow
// past some 35 times it. The largest result Atlas writes, a traceroute of
// 255 hops of 16 replies with ICMP extensions, is about 1 MB.
const maxResult = 4 << 20

// window is the reader's initial buffer; it grows for a larger result.
const window = 256 << 10

// Reader streams the results of an Atlas result file: a JSON array, one
// result per line (or any sequence of JSON objects), either of them
// gzip-compressed — told from the content, never the name. It holds one
// result at a time: each value is framed in a byte window (strings and
// brackets tracked, nothing decoded), then parsed once (fastjson) and
// decoded field by field.
type Reader struct {
	src    io.Reader
	buf    []byte // buf[r:w] is read and not yet consumed
	r, w   int
	srcErr error // the source's error once it returned one (io.EOF at its end)
	stack  []byte
	p      fastjson.Parser

	array     bool
	gzip      bool
	needComma bool // array: a result was read, a ',' or ']' comes next
	index     int  // index of the next result
	done      bool // the end of the file, or an error that ends it
	closer    io.Closer
}

// ErrNotAtlas is returned by NewReader for input that is no JSON array or
// object stream (empty input included).
var ErrNotAtlas = errors.New("not RIPE Atlas results (a JSON array or objects, optionally gzip-compressed)")

// NewReader sniffs the input: gzip magic, then the first non-space byte
// ('[' an array, '{' a stream of objects).
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{src: r, buf: make([]byte, window)}
	for rd.w < 2 && rd.more() {
	}
	if rd.w >= 2 && rd.buf[0] == 0x1f && rd.buf[1] == 0x8b {
		head := bytes.Clone(rd.buf[:rd.w])
		if rd.srcErr != nil && !errors.Is(rd.srcErr, io.EOF) {
			return nil, rd.srcErr
		}
		zr, err := gzip.NewReader(io.MultiReader(bytes.NewReader(head), r))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		rd.gzip, rd.closer = true, zr
		rd.src, rd.r, rd.w, rd.srcErr = zr, 0, 0, nil
	}
	first, ok := rd.peek()
	if !ok {
		if rd.srcErr != nil && !errors.Is(rd.srcErr, io.EOF) {
			return nil, rd.srcErr
		}
		return nil, fmt.Errorf("%w: empty", ErrNotAtlas)
	}
	switch first {
	case '[':
		rd.array = true
		rd.r++
	case '{':
	default:
		return nil, fmt.Errorf("%w: starts with %q", ErrNotAtlas, first)
	}
	return rd, nil
}

// more reads from the source into the window, moving unconsumed bytes to
// its start or growing it when it is full; false when the source has ended
// (or failed: srcErr).
func (rd *Reader) more() bool {
	if rd.srcErr != nil {
		return false
	}
	if rd.w == len(rd.buf) {
		if rd.r > 0 {
			rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
			rd.r = 0
		} else {
			rd.buf = append(rd.buf, make([]byte, len(rd.buf))...)
		}
	}
	for range 100 {
		n, err := rd.src.Read(rd.buf[rd.w:])
		rd.w += n
		if err != nil {
			rd.srcErr = err
		}
		if n > 0 || err != nil {
			return n > 0
		}
	}
	rd.srcErr = io.ErrNoProgress
	return false
}

// peek skips white space and returns the next byte, unconsumed; false at
// the end of the input.
func (rd *Reader) peek() (byte, bool) {
	for {
		for rd.r < rd.w {
			switch b := rd.buf[rd.r]; b {
			case ' ', '\t', '\n', '\r':
				rd.r++
			default:
				return b, true
			}
		}
		if !rd.more() {
			return 0, false
		}
	}
}

// errSyntax is a framing error: the bytes are no JSON value.
type errSyntax struct{ msg string }

func (e *errSyntax) Error() string { return e.msg }

var (
	errTooLarge = fmt.Errorf("result larger than %d MB", maxResult>>20)
	errCutShort = errors.New("cut short: the next line starts another result")
)

// frame finds the end of the value starting at buf[r] (a non-space byte)
// and returns its length: strings and brackets are tracked, nothing is
// decoded. io.ErrUnexpectedEOF when the input ends inside the value.
func (rd *Reader) frame() (int, error) {
	stack := rd.stack[:0]
	defer func() { rd.stack = stack }()
	first := rd.buf[rd.r]
	scalar := first != '{' && first != '[' && first != '"'
	inStr, esc, nl := false, false, false
	for i := 0; ; {
		if rd.r+i >= rd.w {
			if i >= maxResult {
				return i, errTooLarge
			}
			if !rd.more() {
				if scalar {
					return i, nil
				}
				return i, io.ErrUnexpectedEOF
			}
			continue
		}
		b := rd.buf[rd.r+i]
		i++
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case b == '\\':
				esc = true
			case b == '"':
				inStr = false
				if len(stack) == 0 {
					return i, nil
				}
			case b < 0x20:
				return i, &errSyntax{fmt.Sprintf("control character %q in a string", b)}
			}
		case scalar:
			switch b {
			case ' ', '\t', '\r', '\n', ',', ']', '}', '[', '{', '"':
				return i - 1, nil
			}
		default:
			if b == '{' && nl && len(stack) > 0 && !rd.array {
				// A result starts at the beginning of a line inside
				// this one: this one was cut short.
				return i - 1, errCutShort
			}
			nl = b == '\n'
			switch b {
			case '"':
				inStr = true
			case '{':
				stack = append(stack, '}')
			case '[':
				stack = append(stack, ']')
			case '}', ']':
				if len(stack) == 0 || stack[len(stack)-1] != b {
					return i, &errSyntax{fmt.Sprintf("unexpected %q", b)}
				}
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return i, nil
				}
			}
			if len(stack) > fastjson.MaxDepth {
				return i, &errSyntax{"nested too deeply"}
			}
		}
	}
}

// resync skips to the next line that starts with '{': where the next
// result begins in a file of one result per line (or of pretty-printed
// results, whose inner lines are indented). It reports whether there is one.
func (rd *Reader) resync() bool {
	nl := false
	for {
		for ; rd.r < rd.w; rd.r++ {
			b := rd.buf[rd.r]
			if nl && b == '{' {
				return true
			}
			nl = b == '\n'
		}
		if !rd.more() {
			return false
		}
	}
}

// endErr says why the input ended inside result idx.
func (rd *Reader) endErr(idx int) error {
	if rd.srcErr == nil || errors.Is(rd.srcErr, io.EOF) || errors.Is(rd.srcErr, io.ErrUnexpectedEOF) {
		return fmt.Errorf("result %d: truncated JSON", idx)
	}
	return fmt.Errorf("result %d: %w", idx, rd.srcErr)
}

// Format names what was read: "json array" or "json lines", "+gzip".
func (rd *Reader) Format() string {
	f := "json lines"
	if rd.array {
		f = "json array"
	}
	if rd.gzip {
		f += "+gzip"
	}
	return f
}

// Index is the position in the file of the result Next returned last.
func (rd *Reader) Index() int { return rd.index - 1 }

// Close releases the gzip reader, if any (not the underlying reader).
func (rd *Reader) Close() error {
	if rd.closer != nil {
		return rd.closer.Close()
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
// bad result (a ping result, a field of the wrong type, a line that is no
// JSON): call Next again. Any other error (truncated JSON, a broken array)
// ends the file; it names the result where reading stopped.
func (rd *Reader) Next() (Result, error) {
	if rd.done {
		return Result{}, io.EOF
	}
	idx := rd.index
	c, ok := rd.peek()
	switch {
	case !ok && (rd.array || !errors.Is(rd.srcErr, io.EOF)):
		rd.done = true
		return Result{}, rd.endErr(idx)
	case !ok:
		rd.done = true
		return Result{}, io.EOF
	case rd.array && c == ']' && rd.needComma:
		rd.r++
		rd.done = true
		return Result{}, io.EOF
	case rd.array && rd.needComma && c != ',':
		rd.done = true
		return Result{}, fmt.Errorf("result %d: not JSON: %q after a result; the rest of the file is not read", idx, c)
	case rd.array && rd.needComma:
		rd.r++
		if c, ok = rd.peek(); !ok {
			rd.done = true
			return Result{}, rd.endErr(idx)
		}
	}
	if rd.array && c == ']' {
		rd.r++
		rd.done = true
		if idx > 0 {
			return Result{}, fmt.Errorf("result %d: not JSON: ']' after ','; the rest of the file is not read", idx)
		}
		return Result{}, io.EOF // []
	}
	rd.index++
	rd.needComma = true
	n, err := rd.frame()
	if err != nil {
		if rd.array {
			rd.done = true
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return Result{}, rd.endErr(idx)
			}
			return Result{}, fmt.Errorf("result %d: not JSON: %w; the rest of the file is not read", idx, err)
		}
		// Objects one per line: go on at the next line that starts a
		// result; a value cut by the end of the input ends the file.
		if errors.Is(err, errCutShort) {
			rd.r += n
			return Result{}, &ResultError{Index: idx, Err: notJSON(err)}
		}
		rd.r++
		if !rd.resync() {
			rd.done = true
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return Result{}, rd.endErr(idx)
			}
		}
		return Result{}, &ResultError{Index: idx, Err: notJSON(err)}
	}
	v, err := rd.p.ParseBytes(rd.buf[rd.r : rd.r+n])
	if err != nil {
		if rd.array {
			rd.r += n
		} else {
			rd.r++
			rd.resync()
		}
		return Result{}, &ResultError{Index: idx, Err: notJSON(err)}
	}
	rd.r += n
	res, err := decodeResult(v)
	if err != nil {
		return Result{}, &ResultError{Index: idx, Err: err}
	}
	return res, nil
}
