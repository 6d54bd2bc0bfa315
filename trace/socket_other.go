//go:build !linux

package trace

import (
	"context"
	"errors"
	"runtime"
)

// HostNetwork is the host's sockets. Only Linux is implemented: raw mode
// needs IP_HDRINCL semantics for IPv6 and socket mode needs IP_RECVERR.
func HostNetwork() Network { return hostNetwork{} }

type hostNetwork struct{}

func (hostNetwork) Open(ctx context.Context, f Flow, mode Mode) (Conn, error) {
	return nil, errors.New("tracing is not implemented on " + runtime.GOOS)
}
