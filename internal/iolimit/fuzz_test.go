package iolimit

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader: whatever the reads' sizes, the bytes handed out are the
// input's first min(len, Max) bytes, N counts them, and a reader past Max
// fails with ErrLimit, never handing out more.
func FuzzReader(f *testing.F) {
	f.Add([]byte("hello, world"), int64(5), []byte{1, 3, 0, 7})
	f.Add([]byte{}, int64(0), []byte{4})
	f.Add(bytes.Repeat([]byte("x"), 100), int64(100), []byte{64, 64})
	f.Fuzz(func(t *testing.T, data []byte, limit int64, sizes []byte) {
		if limit < 0 || len(sizes) == 0 {
			return
		}
		r := &Reader{R: bytes.NewReader(data), Max: limit}
		var got []byte
		var err error
		for i := 0; err == nil && i < 10*len(data)+10; i++ {
			p := make([]byte, int(sizes[i%len(sizes)]))
			var n int
			n, err = r.Read(p)
			got = append(got, p[:n]...)
		}
		want := data
		if limit > 0 && int64(len(data)) > limit {
			want = data[:limit]
		}
		if !bytes.Equal(got, want[:min(len(got), len(want))]) || len(got) > len(want) {
			t.Fatalf("read %q, want a prefix of %q", got, want)
		}
		if r.N() != int64(len(got)) {
			t.Errorf("N %d, %d bytes read", r.N(), len(got))
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, ErrLimit) {
			t.Errorf("error %v", err)
		}
		if errors.Is(err, ErrLimit) && len(got) != len(want) {
			t.Errorf("ErrLimit after %d bytes, limit %d", len(got), limit)
		}
	})
}
