//go:build !linux

package lab

import (
	"errors"
	"time"
)

type wire struct{}

func newWire(nsA, nameA, nsB, nameB string, delayAB, delayBA time.Duration) (*wire, error) {
	return nil, errors.New("delayed links need Linux TAP devices")
}

func (w *wire) close() {}
