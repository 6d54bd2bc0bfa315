package whoistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Mode selects how a Server behaves.
type Mode int

const (
	// Normal answers the bulk protocol like the real service.
	Normal Mode = iota
	// Silent accepts and reads the request but never answers.
	Silent
	// Slow answers correctly one byte at a time, SlowDelay apart.
	Slow
	// Flood answers with FloodBytes of plausible rows, never ending early.
	Flood
	// LongLine answers with FloodBytes without a single newline.
	LongLine
	// ANSI answers correctly but every AS name carries terminal escape
	// sequences (colour, title change, cursor movement).
	ANSI
	// CloseEarly sends the header, the first row and half of the next,
	// then closes the connection.
	CloseEarly
	// ForeignPrefix answers every address with the first row's prefix and
	// origins, whether or not that prefix contains the address.
	ForeignPrefix
)

// ANSIPrefix is what ANSI mode puts in front of every AS name.
const ANSIPrefix = "\x1b[31m\x1b]0;owned\x07\x1b[2J"

// Config configures a Server.
type Config struct {
	Listen     string // default "127.0.0.1:0"
	Rows       []Row
	Mode       Mode
	SlowDelay  time.Duration // Slow: pause between bytes; default 50ms
	FloodBytes int           // Flood, LongLine: bytes to send; default 64 MiB
	// Header is the first reply line; default like the real service's.
	Header string
}

// Server is an in-process bulk whois server.
type Server struct {
	cfg    Config
	routes *routes
	ln     net.Listener

	mu      sync.Mutex
	conns   int
	queried []netip.Addr
	open    map[net.Conn]struct{}
	closed  bool
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// Start listens on cfg.Listen and serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.SlowDelay <= 0 {
		cfg.SlowDelay = 50 * time.Millisecond
	}
	if cfg.FloodBytes <= 0 {
		cfg.FloodBytes = 64 << 20
	}
	if cfg.Header == "" {
		cfg.Header = "Bulk mode; whois.lab.example [2026-01-01 00:00:00 +0000]"
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("whoistest: listen %s: %w", cfg.Listen, err)
	}
	s := &Server{cfg: cfg, routes: newRoutes(cfg.Rows), ln: ln, open: make(map[net.Conn]struct{}), done: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the HOST:PORT the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Connections counts the connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Queried returns every address asked about so far, in arrival order.
func (s *Server) Queried() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netip.Addr(nil), s.queried...)
}

// Close stops listening, drops open connections and waits for handlers.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns++
		s.open[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		}()
	}
}

// maxRequestLines bounds one request, so a runaway client cannot make the
// test server grow without end.
const maxRequestLines = 100_000

func (s *Server) serve(c net.Conn) {
	// A client that never finishes its request is dropped.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	lines, err := readRequest(c)
	if err != nil {
		return
	}
	var addrs []netip.Addr
	for _, l := range lines {
		if a, err := netip.ParseAddr(l); err == nil {
			addrs = append(addrs, a)
		}
	}
	s.mu.Lock()
	s.queried = append(s.queried, addrs...)
	s.mu.Unlock()

	switch s.cfg.Mode {
	case Silent:
		// Hold the connection open, even after the client's half-close,
		// until Close.
		<-s.done
		return
	case Flood:
		row := fmt.Sprintf("%-8d| %-16s| %-20s| %-3s| %-9s| %-11s| %s\n", 64500, "192.0.2.1", "192.0.2.0/24", "ZZ", "lab", "2020-01-01", "FLOOD")
		writeRepeated(c, s.cfg.Header+"\n", row, s.cfg.FloodBytes)
		return
	case LongLine:
		writeRepeated(c, "", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", s.cfg.FloodBytes)
		return
	}
	reply := s.Reply(lines)
	switch s.cfg.Mode {
	case Slow:
		for i := range reply {
			if _, err := c.Write(reply[i : i+1]); err != nil {
				return
			}
			time.Sleep(s.cfg.SlowDelay)
		}
	case CloseEarly:
		first := bytes.IndexByte(reply, '\n')
		second := first + 1 + bytes.IndexByte(reply[first+1:], '\n')
		cut := min(len(reply), second+1+(len(reply)-second)/4)
		c.Write(reply[:cut])
	default:
		c.Write(reply)
	}
}

func writeRepeated(w io.Writer, head, unit string, total int) {
	if _, err := io.WriteString(w, head); err != nil {
		return
	}
	buf := bytes.Repeat([]byte(unit), max(1, (64<<10)/len(unit)))
	for sent := len(head); sent < total; {
		n, err := w.Write(buf)
		sent += n
		if err != nil {
			return
		}
	}
}

// readRequest reads lines up to and including "end" (or EOF).
func readRequest(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), 4096)
	var lines []string
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "end" {
			return lines, nil
		}
		lines = append(lines, l)
		if len(lines) > maxRequestLines {
			return nil, errors.New("request too long")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return lines, nil
}

// Reply is the bulk reply to a request's lines (without "end"): a header,
// one row per origin of each address's covering prefix, an NA row for
// uncovered addresses and an error line for anything that is no address.
func (s *Server) Reply(lines []string) []byte {
	var b bytes.Buffer
	b.WriteString(s.cfg.Header + "\n")
	for i, l := range lines {
		switch l {
		case "begin", "verbose", "noverbose", "header", "noheader", "asnumber", "noasname", "":
			continue
		}
		a, err := netip.ParseAddr(l)
		if err != nil {
			fmt.Fprintf(&b, "Error: no ASN or IP match on line %d.\n", i+1)
			continue
		}
		row, ok := s.routes.lookup(a)
		if s.cfg.Mode == ForeignPrefix && len(s.cfg.Rows) > 0 {
			row, ok = s.cfg.Rows[0], true
		}
		if !ok {
			fmt.Fprintf(&b, "%-8s| %-16s| %-20s| %-3s| %-9s| %-11s| %s\n", "NA", a, "NA", "NA", "NA", "NA", "NA")
			continue
		}
		name := row.ASName
		if s.cfg.Mode == ANSI {
			name = ANSIPrefix + name
		}
		for _, asn := range row.ASNs {
			fmt.Fprintf(&b, "%-8d| %-16s| %-20s| %-3s| %-9s| %-11s| %s\n", asn, a, row.Prefix,
				orNA(row.Country), orNA(row.Registry), orNA(row.Allocated), orNA(name))
		}
	}
	return b.Bytes()
}

func orNA(s string) string {
	if s == "" {
		return "NA"
	}
	return s
}
