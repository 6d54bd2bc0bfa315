package lab

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A wire is a delayed link: a TAP device in each of two namespaces and,
// between them, this process copying Ethernet frames across after holding
// each one for the link's delay. It stands in for netem, which this
// kernel lacks (as it lacks nftables' queue expression): frames of every
// protocol, neighbour discovery included, see the same delay, in order,
// in both directions, and the kernels on either side see an ordinary
// Ethernet interface (addresses, routes, ICMP errors from it).
type wire struct {
	name  string
	ends  [2]*os.File
	delay [2]time.Duration // delay[i]: frames read from ends[i], written to the other end
	done  chan struct{}
	wg    sync.WaitGroup
	drops atomic.Int64 // frames dropped because a direction's queue was full
}

// wireQueue bounds the frames in flight per direction, as a router's
// interface queue would: a burst larger than this within one delay is
// dropped, not buffered without limit.
const wireQueue = 4096

// frameMax is larger than any frame a TAP device without offloads hands
// over (MTU 1500 plus headers; no GSO super-frames are enabled).
const frameMax = 65536

type frame struct {
	data []byte
	due  time.Time
}

// newWire creates TAP device nameA in namespace nsA and nameB in nsB and
// starts copying frames between them: A→B after delayAB, B→A after delayBA.
func newWire(nsA, nameA, nsB, nameB string, delayAB, delayBA time.Duration) (*wire, error) {
	a, err := openTap(nsA, nameA)
	if err != nil {
		return nil, err
	}
	b, err := openTap(nsB, nameB)
	if err != nil {
		a.Close()
		return nil, err
	}
	w := &wire{
		name:  fmt.Sprintf("%s:%s-%s:%s", nsA, nameA, nsB, nameB),
		ends:  [2]*os.File{a, b},
		delay: [2]time.Duration{delayAB, delayBA},
		done:  make(chan struct{}),
	}
	for i := range 2 {
		q := make(chan frame, wireQueue)
		w.wg.Add(2)
		go w.read(w.ends[i], w.delay[i], q)
		go w.write(w.ends[1-i], q)
	}
	return w, nil
}

// read stamps every frame with the time it is due on the other side.
func (w *wire) read(from *os.File, delay time.Duration, q chan<- frame) {
	defer w.wg.Done()
	defer close(q)
	buf := make([]byte, frameMax)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return // closed: the lab is being torn down
		}
		f := frame{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}
		select {
		case q <- f:
		default:
			w.drops.Add(1)
		}
	}
}

// write hands frames over in order once they are due. The delay is the
// same for every frame of a direction, so order and due times agree.
func (w *wire) write(to *os.File, q <-chan frame) {
	defer w.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for f := range q {
		if d := time.Until(f.due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-w.done:
				return
			}
		}
		if _, err := to.Write(f.data); err != nil && errors.Is(err, os.ErrClosed) {
			return
		}
	}
}

// close removes both TAP devices (they live as long as their file) and
// stops the copying.
func (w *wire) close() {
	close(w.done)
	for _, f := range w.ends {
		f.Close()
	}
	w.wg.Wait()
}

// openTap creates a TAP device in a lab namespace and returns its file.
// Only one locked OS thread enters the namespace, and only for the two
// system calls that create the device; the device stays in its namespace
// and the file works from any thread. Should the thread fail to return to
// its own namespace, it stays locked and exits with its goroutine, so no
// other code ever runs in the lab namespace by accident.
func openTap(ns, name string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, restored, err := openTapIn(ns, name)
		if restored {
			runtime.UnlockOSThread()
		}
		ch <- result{f, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("tap %s in %s: %w", name, ns, r.err)
	}
	return r.f, nil
}

// openTapIn runs on a locked thread; restored says whether the thread is
// back in the namespace it started in.
func openTapIn(ns, name string) (f *os.File, restored bool, err error) {
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
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == nil {
		var ifr *unix.Ifreq
		if ifr, err = unix.NewIfreq(name); err == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
		}
	}
	if rerr := unix.Setns(self, unix.CLONE_NEWNET); rerr != nil {
		if err == nil {
			unix.Close(fd)
		}
		return nil, false, fmt.Errorf("return to own namespace: %w", rerr)
	}
	if err != nil {
		return nil, true, fmt.Errorf("create: %w", err)
	}
	// Non-blocking, so reads wait in the runtime's poller and Close ends them.
	return os.NewFile(uintptr(fd), name), true, nil
}
