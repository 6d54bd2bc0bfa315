package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// HTTPClient is an HTTP client whose connections start in node's
// namespace, so a test can ask a server there (Prometheus's API, an
// exporter) without a process of its own in the lab. Each connection's
// socket is made on a thread that enters the namespace for the dial and
// then returns (a socket keeps the namespace it was made in).
func (l *Lab) HTTPClient(node string) (*http.Client, error) {
	ns, err := l.nsOf(node)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, ns, network, addr)
		},
		DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	// The dialer makes the socket on the namespace's thread, so the socket
	// lives in the namespace.
	c, err := inNetns(ns, func() (net.Conn, error) {
		return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
	}, func(c net.Conn) { c.Close() })
	if err != nil {
		return nil, fmt.Errorf("dial %s in %s: %w", addr, ns, err)
	}
	return c, nil
}
