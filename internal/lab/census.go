package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Dnstap is a Frame Streams collector (fstrm_capture) running in a node:
// DNS servers log to Socket, the collector writes File.
type Dnstap struct {
	Node   string
	Socket string
	File   string
	cmd    *exec.Cmd
}

// StartDnstap starts a dnstap collector in node and waits (bounded) for
// its socket. Give Socket to the node's DNS server (DNSInstance.DnstapSocket);
// StopProcess on the returned collector closes File cleanly.
func (l *Lab) StartDnstap(node string) (*Dnstap, error) {
	d := &Dnstap{Node: node, Socket: filepath.Join(l.dir, node+".dnstap.sock"), File: filepath.Join(l.dir, node+".dnstap")}
	cmd, err := l.Spawn(node, "fstrm_capture", "-t", "protobuf:dnstap.Dnstap", "-u", d.Socket, "-w", d.File)
	if err != nil {
		return nil, err
	}
	d.cmd = cmd
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = poll(ctx, 20*time.Millisecond, func() error {
		if _, err := os.Stat(d.Socket); err != nil {
			return fmt.Errorf("no dnstap socket %s yet", d.Socket)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lab: dnstap collector on %s: %w", node, err)
	}
	return d, nil
}

// DnstapFlush is how long a DNS server may hold dnstap messages before
// they reach the collector: NSD's and Knot's Frame Streams writers
// (libfstrm) flush their queues once a second; twice that, for a loaded host.
const DnstapFlush = 2 * time.Second

// Stop ends the collector (SIGTERM: it finishes the file with the Frame
// Streams STOP frame) and waits for it. Wait DnstapFlush after the last
// query first, or its message may still be in the server's queue.
func (d *Dnstap) Stop(l *Lab) error { return l.StopProcess(d.cmd) }

// StopDnstap waits DnstapFlush, so every query asked so far is in the
// logs, then stops both instances' collectors.
func (ac *Anycast) StopDnstap() error {
	time.Sleep(DnstapFlush)
	var errs []error
	for _, d := range ac.Dnstap {
		errs = append(errs, d.Stop(ac.Lab))
	}
	return errors.Join(errs...)
}

// WaitProcess waits (bounded by ctx) for a process started with Spawn to
// end by itself (a bounded QueryLoop), which is then no longer the lab's to stop.
func (l *Lab) WaitProcess(ctx context.Context, cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		l.mu.Lock()
		if i := slices.Index(l.procs, cmd); i >= 0 {
			l.procs = slices.Delete(l.procs, i, i+1)
		}
		l.mu.Unlock()
		return err
	case <-ctx.Done():
		return fmt.Errorf("lab: %s did not end: %w", cmd.Args, ctx.Err())
	}
}

// StopProcess stops one process started with Spawn before the lab ends:
// SIGTERM to its process group, SIGKILL after 3 s, then it is waited for
// and no longer the lab's to stop.
func (l *Lab) StopProcess(cmd *exec.Cmd) error {
	l.mu.Lock()
	i := slices.Index(l.procs, cmd)
	if i >= 0 {
		l.procs = slices.Delete(l.procs, i, i+1)
	}
	l.mu.Unlock()
	if i < 0 {
		return errors.New("lab: not a running process of this lab")
	}
	stopProcess(cmd)
	return nil
}

// Capture records the DNS traffic of a node with tcpdump on every
// interface ("any": Linux cooked capture) into a pcap file, each packet
// written as it comes (-U). Stop it with StopProcess.
func (l *Lab) Capture(node string) (file string, cmd *exec.Cmd, err error) {
	file = filepath.Join(l.dir, node+".pcap")
	cmd, err = l.Spawn(node, "tcpdump", "-i", "any", "-n", "-U", "-Z", "root", "-w", file, "port", "53")
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = poll(ctx, 20*time.Millisecond, func() error {
		if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
			return errors.New("tcpdump has not started writing")
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("lab: tcpdump on %s: %w", node, err)
	}
	return file, cmd, nil
}

// QueryLoop makes a client ask addr for CH TXT hostname.bind every
// interval, count times (bounded), each query from a new source port (a
// dig per query): a client as a stub resolver would be. Stop it early
// with StopProcess.
func (l *Lab) QueryLoop(node string, addr netip.Addr, interval time.Duration, count int) (*exec.Cmd, error) {
	if count <= 0 || count > 100000 || interval < 10*time.Millisecond {
		return nil, fmt.Errorf("lab: QueryLoop: %d queries every %v: keep it bounded", count, interval)
	}
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do dig +tries=1 +time=1 +norecurse @%s CH TXT hostname.bind >/dev/null 2>&1; i=$((i+1)); sleep %s; done`,
		count, addr, strconv.FormatFloat(interval.Seconds(), 'f', 3, 64))
	return l.Spawn(node, "sh", "-c", script)
}
