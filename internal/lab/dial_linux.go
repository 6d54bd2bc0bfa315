package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
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
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, restored, err := dialOnThread(ctx, ns, network, addr)
		if restored {
			runtime.UnlockOSThread()
		} // else the thread ends with this goroutine, its namespace with it
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("dial %s in %s: %w", addr, ns, r.err)
	}
	return r.c, nil
}

// dialOnThread runs on a locked thread; restored says whether the thread
// is back in the namespace it started in.
func dialOnThread(ctx context.Context, ns, network, addr string) (c net.Conn, restored bool, err error) {
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, fmt.Errorf("own namespace: %w", err)
	}
	defer unix.Close(self)
	target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, fmt.Errorf("namespace: %w", err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("enter namespace: %w", err)
	}
	// The dialer makes the socket on this thread (the goroutine is locked
	// to it), so the socket lives in the namespace.
	c, err = (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
	if rerr := unix.Setns(self, unix.CLONE_NEWNET); rerr != nil {
		if c != nil {
			c.Close()
		}
		return nil, false, fmt.Errorf("return to own namespace: %w", rerr)
	}
	return c, true, err
}
