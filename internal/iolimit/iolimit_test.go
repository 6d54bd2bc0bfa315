package iolimit

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	r := &Reader{R: strings.NewReader("0123456789"), Max: 4}
	b, err := io.ReadAll(r)
	if string(b) != "0123" || !errors.Is(err, ErrLimit) || r.N() != 4 {
		t.Errorf("%q %v %d", b, err, r.N())
	}
	r.Max = 0
	if b, err = io.ReadAll(r); string(b) != "456789" || err != nil {
		t.Errorf("unbounded: %q %v", b, err)
	}
}
