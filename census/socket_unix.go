//go:build unix

package census

import (
	"errors"
	"syscall"
)

func isAddrNotAvail(err error) bool { return errors.Is(err, syscall.EADDRNOTAVAIL) }
