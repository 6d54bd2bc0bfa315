// Package iolimit bounds how much of a reader is read: a parser that
// buffers a whole value (encoding/json's Decoder) is given no more bytes
// than a value may have, so a hostile input is refused once it is too
// large rather than after it has been read into memory.
package iolimit

import (
	"errors"
	"io"
)

// ErrLimit is returned by Reader.Read once Max bytes were read.
var ErrLimit = errors.New("read limit reached")

// Reader reads from R until Max bytes in all were read (Max 0: no limit),
// then fails with ErrLimit. Max may be moved while reading (a limit per
// value: the decoder's offset at its start plus the value's limit).
type Reader struct {
	R   io.Reader
	Max int64
	n   int64
}

func (r *Reader) Read(p []byte) (int, error) {
	if r.Max > 0 {
		if r.n >= r.Max {
			return 0, ErrLimit
		}
		if rest := r.Max - r.n; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := r.R.Read(p)
	r.n += int64(n)
	return n, err
}

// N is the number of bytes read so far.
func (r *Reader) N() int64 { return r.n }
