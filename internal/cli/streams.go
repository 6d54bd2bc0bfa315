package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/anycheck/anycheck/census"
	"github.com/anycheck/anycheck/probe"
	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/whois"
	"golang.org/x/term"
)

// streams are the command's standard streams. Results go to out only.
// Like gh's IOStreams they own the one live status line on a terminal
// stderr, which every command's progress goes through.
type streams struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	errTTY bool // stderr is a terminal: live progress may be shown there

	mu    sync.Mutex // guards shown and writes to err
	shown bool       // a status line is on stderr now
}

// status shows the live line on a terminal stderr, replacing the last one;
// without a terminal it writes nothing. Safe from several goroutines;
// callers escape untrusted text in it.
func (s *streams) status(format string, args ...any) {
	if !s.errTTY {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.err, "\r\033[K"+format, args...)
	s.shown = true
}

// clearStatus removes the live line, if one is shown.
func (s *streams) clearStatus() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
}

func (s *streams) clearLocked() {
	if s.shown {
		fmt.Fprint(s.err, "\r\033[K")
		s.shown = false
	}
}

func newStreams(in io.Reader, out, errOut io.Writer) *streams {
	return &streams{in: in, out: out, err: errOut, errTTY: isTerminal(errOut)}
}

// isTerminal reports whether w is a terminal (x/term asks the tty
// driver: a character device such as /dev/null is none).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// deps are the outside world the commands touch, injected so tests can
// replace each piece.
type deps struct {
	now      func() time.Time
	hostname func() (string, error)
	// lookupHost resolves a target name; network is "ip", "ip4" or "ip6".
	lookupHost func(ctx context.Context, network, host string) ([]netip.Addr, error)
	probeNet   probe.Network // nil = real sockets
	traceNet   trace.Network // nil = real sockets
	whoisDial  func(ctx context.Context, network, addr string) (net.Conn, error)
	// dnsServer is HOST:PORT of the resolver for origin (cymru-dns) and
	// reverse-name lookups when no flag names one; "" = the system's.
	dnsServer string
	cacheDir  func() (string, error)
	// interfacePrefixes lists the host's addresses with their prefix
	// lengths (a target at an attached network's broadcast address is no
	// server); nil = none known.
	interfacePrefixes func() ([]netip.Prefix, error)
	// newResolver builds the ASN source; nil = whois.New.
	newResolver func(spec string, o whois.Options) (whois.Resolver, error)
	// getenv reads the environment (the Atlas API key).
	getenv func(string) string
	// atlasPause is the first pause between Atlas status polls and between
	// retries; 0 = the atlas package's defaults (5s and 1s).
	atlasPause time.Duration
	// censusConn opens a census site's ICMP socket on the anycast address
	// (replies: a listener's, which reads echo replies); nil = the host's
	// raw socket (census.ListenICMP).
	censusConn func(anycast netip.Addr, replies bool) (census.Conn, error)
}

func defaultDeps() *deps {
	return &deps{
		now:      time.Now,
		hostname: os.Hostname,
		lookupHost: func(ctx context.Context, network, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, network, host)
		},
		cacheDir:          os.UserCacheDir,
		interfacePrefixes: interfacePrefixes,
		getenv:            os.Getenv,
	}
}

func interfacePrefixes() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil {
				out = append(out, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
			}
		}
	}
	return out, nil
}

// warn writes one diagnostic line to stderr, on a line of its own: a
// status line shown is cleared first (the next status redraws it).
func warn(s *streams, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
	fmt.Fprintf(s.err, "anycheck: "+format+"\n", args...)
}

// cmdIO is what a command's options hold besides its flags, as gh's
// options hold their IOStreams and factory: the streams the command writes
// and the dependencies it reaches the host through, given by newRootCmd
// (or a test) and never shared as global state.
type cmdIO struct {
	s *streams
	d *deps
}
