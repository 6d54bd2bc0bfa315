package lab

import (
	"errors"
	"fmt"
	"os"
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

// openTap creates a TAP device in a lab namespace and returns its file: a
// thread enters the namespace (inNetns) only for the two system calls that
// create the device; the device stays in its namespace and the file works
// from any thread.
func openTap(ns, name string) (*os.File, error) {
	f, err := inNetns(ns, func() (*os.File, error) {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("create: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("create: %w", err)
		}
		// Non-blocking, so reads wait in the runtime's poller and Close ends them.
		return os.NewFile(uintptr(fd), name), nil
	}, func(f *os.File) { f.Close() })
	if err != nil {
		return nil, fmt.Errorf("tap %s in %s: %w", name, ns, err)
	}
	return f, nil
}
