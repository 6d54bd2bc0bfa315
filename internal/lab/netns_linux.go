package lab

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetns runs fn in the lab namespace ns, on one locked OS thread that
// enters the namespace for fn alone: what fn makes there (a socket, a TAP
// device) stays in the namespace and works from any thread. Should the
// thread fail to return to its own namespace, undo releases what fn made,
// and the thread stays locked and exits with its goroutine, so no other
// code ever runs in the lab namespace by accident.
func inNetns[T any](ns string, fn func() (T, error), undo func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		v, restored, err := onThreadIn(ns, fn, undo)
		if restored {
			runtime.UnlockOSThread()
		} // else the thread ends with this goroutine, its namespace with it
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}

// onThreadIn runs on a locked thread; restored says whether the thread is
// back in the namespace it started in.
func onThreadIn[T any](ns string, fn func() (T, error), undo func(T)) (v T, restored bool, err error) {
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return v, true, fmt.Errorf("own namespace: %w", err)
	}
	defer unix.Close(self)
	target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return v, true, fmt.Errorf("namespace: %w", err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return v, true, fmt.Errorf("enter namespace: %w", err)
	}
	v, err = fn()
	if rerr := unix.Setns(self, unix.CLONE_NEWNET); rerr != nil {
		if err == nil {
			undo(v)
		}
		var zero T
		return zero, false, fmt.Errorf("return to own namespace: %w", rerr)
	}
	return v, true, err
}
