package whois

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anycheck/anycheck/whois/whoistest"
)

// nestedRows announce a covering /16 and a more-specific /24 inside it.
var nestedRows = func() []whoistest.Row {
	rows, err := whoistest.ParseTable(strings.NewReader(
		"192.0.0.0/16 | 64500 | ZZ | lab | 2026-01-01 | COVERING\n" +
			"192.0.2.0/24 | 64520 | ZZ | lab | 2026-01-01 | SPECIFIC\n" +
			"2001:db8::/32 | 64500 | ZZ | lab | 2026-01-01 | COVERING\n" +
			"2001:db8:53::/48 | 64520 | ZZ | lab | 2026-01-01 | SPECIFIC\n"))
	if err != nil {
		panic(err)
	}
	return rows
}()

// TestCacheNeverLessSpecific is issue 13 item 1: an answer cached for an
// address in the covering prefix must not answer for an address the
// source maps to a more-specific prefix, whichever network source filled
// the cache.
func TestCacheNeverLessSpecific(t *testing.T) {
	sources := map[string]func(t *testing.T) Options{
		"cymru": func(t *testing.T) Options {
			srv := startWhois(t, whoistest.Config{Rows: nestedRows})
			return Options{WhoisServer: srv.Addr()}
		},
		"cymru-dns": func(t *testing.T) Options {
			_, addr := startDNS(t, nestedRows, whoistest.Zones{})
			return Options{DNSServer: addr}
		},
	}
	cases := []struct{ first, then, prefix string }{
		{"192.0.1.1", "192.0.2.1", "192.0.2.0/24"},
		{"2001:db8:1::1", "2001:db8:53::53", "2001:db8:53::/48"},
	}
	for name, start := range sources {
		for _, c := range cases {
			t.Run(name+" "+c.then, func(t *testing.T) {
				opts := start(t)
				opts.Timeout, opts.CacheDir = 5*time.Second, t.TempDir()
				lookup := func(s string) Origin {
					t.Helper()
					r, err := New(name, opts) // a new resolver per run, as per process
					if err != nil {
						t.Fatal(err)
					}
					a := netip.MustParseAddr(s)
					got, err := r.Lookup(context.Background(), []netip.Addr{a})
					if err != nil {
						t.Fatal(err)
					}
					return got[a]
				}
				if o := lookup(c.first); !slices.Equal(o.ASNs, []uint32{64500}) {
					t.Fatalf("%s: %+v, want AS64500", c.first, o)
				}
				o := lookup(c.then)
				if o.Prefix.String() != c.prefix || !slices.Equal(o.ASNs, []uint32{64520}) || o.Cached {
					t.Errorf("%s after %s: AS%v %s cached=%v, want AS64520 %s from the source", c.then, c.first, o.ASNs, o.Prefix, o.Cached, c.prefix)
				}
				// The answer for the first address is still served from the cache.
				if o := lookup(c.first); !o.Cached || !slices.Equal(o.ASNs, []uint32{64500}) {
					t.Errorf("%s again: %+v, want the cached AS64500", c.first, o)
				}
			})
		}
	}
}

// routeResolver answers like a source with a routing table the test edits.
type routeResolver struct {
	mu     sync.Mutex
	routes map[netip.Prefix][]uint32
	asked  [][]netip.Addr
}

func (r *routeResolver) set(p string, asns ...uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(asns) == 0 {
		delete(r.routes, netip.MustParsePrefix(p))
		return
	}
	r.routes[netip.MustParsePrefix(p)] = asns
}

func (r *routeResolver) Lookup(_ context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, slices.Clone(addrs))
	out := map[netip.Addr]Origin{}
	for _, a := range addrs {
		o := Origin{Addr: a, Source: SourceCymru, Unannounced: true}
		for p, asns := range r.routes {
			if p.Contains(a) && (o.Unannounced || p.Bits() > o.Prefix.Bits()) {
				o = Origin{Addr: a, Source: SourceCymru, Prefix: p, ASNs: asns}
			}
		}
		out[a] = o
	}
	return out, nil
}

func (r *routeResolver) last() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.asked[len(r.asked)-1]
}

// TestCacheDropsWhatFreshAnswersContradict: answers learned later show
// older cached answers stale; those are asked again, never served.
func TestCacheDropsWhatFreshAnswersContradict(t *testing.T) {
	src := &routeResolver{routes: map[netip.Prefix][]uint32{}}
	src.set("192.0.0.0/16", 64500)
	src.set("198.51.100.0/24", 64510)
	src.set("203.0.113.0/24", 64520)
	src.set("2001:db8::/32", 64530)
	path := filepath.Join(t.TempDir(), "c")
	r := Cached(src, CacheOptions{Path: path})
	ctx := context.Background()
	lookup := func(ss ...string) map[netip.Addr]Origin {
		t.Helper()
		got, err := r.Lookup(ctx, addrs(ss...))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	lookup("192.0.2.1", "192.0.2.9", "198.51.100.1", "203.0.113.1", "2001:db8::1")
	src.set("203.0.113.0/24") // withdrawn
	lookup("203.0.113.5")     // unannounced now: cached as such, and 203.0.113.1 dropped
	src.set("203.0.113.0/24", 64520)

	// A more specific /24 appears inside the cached /16, and the /24s
	// elsewhere are withdrawn or replaced by a covering /16.
	src.set("192.0.2.0/24", 64521)
	src.set("198.51.100.0/24")
	src.set("198.51.0.0/16", 64511)

	// In one batch: 192.0.2.7 (new) shows the cached 192.0.2.1 stale, so
	// 192.0.2.1 is asked again in the same Lookup.
	got := lookup("192.0.2.1", "192.0.2.7")
	if o := got[netip.MustParseAddr("192.0.2.1")]; o.Cached || o.Prefix.String() != "192.0.2.0/24" {
		t.Errorf("192.0.2.1: %+v, want the fresh /24", o)
	}
	if asked := src.last(); !slices.Equal(asked, addrs("192.0.2.1")) {
		t.Errorf("second batch %v, want 192.0.2.1 again", asked)
	}
	// 198.51.100.2 → the /16 shows the cached /24 of 198.51.100.1 withdrawn;
	// 203.0.113.6 → the /24 shows the cached "unannounced" 203.0.113.5 stale.
	lookup("198.51.100.2", "203.0.113.6")

	// Every stale entry was dropped from the file: asked again.
	got = lookup("192.0.2.9", "198.51.100.1", "203.0.113.5", "203.0.113.1", "2001:db8::1")
	if asked := src.last(); !slices.Equal(asked, addrs("192.0.2.9", "198.51.100.1", "203.0.113.5", "203.0.113.1")) {
		t.Errorf("asked %v, want the four stale addresses", asked)
	}
	want := map[string]string{"192.0.2.9": "192.0.2.0/24", "198.51.100.1": "198.51.0.0/16", "203.0.113.5": "203.0.113.0/24", "203.0.113.1": "203.0.113.0/24", "2001:db8::1": "2001:db8::/32"}
	for s, p := range want {
		if o := got[netip.MustParseAddr(s)]; o.Prefix.String() != p {
			t.Errorf("%s: %+v, want %s", s, o, p)
		}
	}
	if o := got[netip.MustParseAddr("2001:db8::1")]; !o.Cached {
		t.Errorf("2001:db8::1 (nothing contradicts it) not from the cache: %+v", o)
	}

	// Unannounced now: a cached answer whose prefix covers it is stale.
	src.set("203.0.113.0/24")
	lookup("203.0.113.99")
	lookup("203.0.113.1")
	if asked := src.last(); !slices.Equal(asked, addrs("203.0.113.1")) {
		t.Errorf("asked %v, want 203.0.113.1 (its prefix was withdrawn)", asked)
	}
}

// TestCacheNotRegularFile is issue 13 item 8: a FIFO (or a device) at the
// cache path must neither block the lookup nor be replaced; it is reported
// as a cache problem, not a lookup failure.
func TestCacheNotRegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, path := range []string{fifo, os.DevNull} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var mu sync.Mutex
			var warnings []error
			r := Cached(fakeAnswers(), CacheOptions{Path: path, OnError: func(err error) {
				mu.Lock()
				defer mu.Unlock()
				warnings = append(warnings, err)
			}})
			type result struct {
				got map[netip.Addr]Origin
				err error
			}
			done := make(chan result, 1)
			go func() {
				got, err := r.Lookup(context.Background(), addrs("192.0.2.1"))
				done <- result{got, err}
			}()
			var res result
			select {
			case res = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Lookup blocked on %s", path)
			}
			if res.err != nil || res.got[netip.MustParseAddr("192.0.2.1")].ASName != "EXAMPLE-ISP" {
				t.Errorf("got %v, %v; want the source's answer and no error", res.got, res.err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(warnings) == 0 || !errors.Is(warnings[0], ErrCache) || !strings.Contains(warnings[0].Error(), "not a regular file") {
				t.Errorf("warnings %v, want one saying it is not a regular file", warnings)
			}
			if info, err := os.Lstat(path); err != nil || info.Mode().IsRegular() {
				t.Errorf("%s replaced by a regular file", path)
			}
		})
	}
}

// TestCacheUnwritable is issue 13 item 13 (library side): a cache that
// cannot be written is a warning; the lookup itself succeeded.
func TestCacheUnwritable(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var warned error
	r := Cached(fakeAnswers(), CacheOptions{Path: filepath.Join(blocker, "sub", "c"), OnError: func(err error) { warned = err }})
	got, err := r.Lookup(context.Background(), addrs("192.0.2.1"))
	if err != nil || len(got) != 1 {
		t.Errorf("got %v, %v; want the answer and no error", got, err)
	}
	if !errors.Is(warned, ErrCache) || strings.Count(warned.Error(), blocker) != 1 {
		t.Errorf("warning %v, want a cache error naming the path once", warned)
	}
}
