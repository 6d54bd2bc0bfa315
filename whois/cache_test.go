package whois

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeResolver answers from a fixed table and records every batch asked.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[netip.Addr]Origin
	batches [][]netip.Addr
	err     error
}

func (f *fakeResolver) Lookup(_ context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, slices.Clone(addrs))
	out := map[netip.Addr]Origin{}
	for _, a := range addrs {
		if o, ok := f.answers[a]; ok {
			o.Addr = a
			out[a] = o
		}
	}
	return out, f.err
}

func (f *fakeResolver) asked() [][]netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

func fakeAnswers() *fakeResolver {
	p := netip.MustParsePrefix("192.0.2.0/24")
	return &fakeResolver{answers: map[netip.Addr]Origin{
		netip.MustParseAddr("192.0.2.1"):    {ASNs: []uint32{64500}, Prefix: p, ASName: "EXAMPLE-ISP", Country: "ZZ", Registry: "lab", Allocated: "2020-01-01", Source: SourceCymru},
		netip.MustParseAddr("192.0.2.2"):    {ASNs: []uint32{64500}, Prefix: p, ASName: "EXAMPLE-ISP", Country: "ZZ", Registry: "lab", Allocated: "2020-01-01", Source: SourceCymru},
		netip.MustParseAddr("198.51.100.9"): {Unannounced: true, Source: SourceCymru},
		netip.MustParseAddr("2001:db8::1"):  {ASNs: []uint32{64520, 64521}, Prefix: netip.MustParsePrefix("2001:db8::/32"), ASName: "ANY\tDNS\n\x1b[2J", Source: SourceCymru},
		netip.MustParseAddr("203.0.113.1"):  {Source: SourceCymru}, // known address, nothing learned: not cached
	}}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestCached(t *testing.T) {
	fake := fakeAnswers()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "sub", "whois.cache")
	r := Cached(fake, CacheOptions{Path: path, TTL: 24 * time.Hour, NegativeTTL: time.Hour, Now: clk.now})
	ctx := context.Background()
	ask := addrs("192.0.2.1", "198.51.100.9", "2001:db8::1", "203.0.113.1", "10.0.0.1")

	first, err := r.Lookup(ctx, ask)
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.asked(); len(got) != 1 || len(got[0]) != 4 {
		t.Fatalf("first run asked %v, want one batch of the 4 non-special addresses", got)
	}
	for a, o := range first {
		if o.Cached {
			t.Errorf("first run: %s cached", a)
		}
	}

	// Same addresses, plus another in a cached prefix: the cached answers
	// are reused, the uncacheable address and the new one are asked (an
	// answer is never reused for another address of its prefix: the
	// source may map that one to a more specific prefix).
	second, err := r.Lookup(ctx, append(ask, netip.MustParseAddr("192.0.2.200")))
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.asked(); len(got) != 2 || !slices.Equal(got[1], addrs("203.0.113.1", "192.0.2.200")) {
		t.Fatalf("second run asked %v, want 203.0.113.1 and 192.0.2.200", got[1:])
	}
	for _, s := range []string{"192.0.2.1", "198.51.100.9", "2001:db8::1"} {
		o := second[netip.MustParseAddr(s)]
		want := first[netip.MustParseAddr(s)]
		want.Cached = true
		if !reflect.DeepEqual(o, want) {
			t.Errorf("cached %s:\n got %+v\nwant %+v", s, o, want)
		}
	}
	if o := second[netip.MustParseAddr("10.0.0.1")]; o.Special != "private" || o.Cached {
		t.Errorf("special from cache: %+v", o)
	}

	// After the negative TTL the unannounced address is asked again, the
	// answers are not.
	clk.add(2 * time.Hour)
	if _, err := r.Lookup(ctx, ask); err != nil {
		t.Fatal(err)
	}
	if got := fake.asked(); len(got) != 3 || !slices.Equal(got[2], addrs("198.51.100.9", "203.0.113.1")) {
		t.Errorf("after 2h asked %v, want the unannounced and the unknown address", got[2])
	}
	// After the answer TTL everything is asked again.
	clk.add(24 * time.Hour)
	if _, err := r.Lookup(ctx, ask); err != nil {
		t.Fatal(err)
	}
	if got := fake.asked(); len(got[3]) != 4 {
		t.Errorf("after 26h asked %v, want all 4", got[3])
	}
	info, err := os.Stat(filepath.Dir(path))
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("cache dir: %v %v", info.Mode(), err)
	}
}

func TestCachedKeepsAnswersOnError(t *testing.T) {
	fake := fakeAnswers()
	fake.err = errors.New("server went away")
	path := filepath.Join(t.TempDir(), "c")
	r := Cached(fake, CacheOptions{Path: path})
	got, err := r.Lookup(context.Background(), addrs("192.0.2.1"))
	if err == nil || len(got) != 1 {
		t.Fatalf("got %v, %v; want the answer and the error", got, err)
	}
	fake.err = nil
	if _, err := r.Lookup(context.Background(), addrs("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.asked()); n != 1 {
		t.Errorf("partial answer was not cached: %d batches", n)
	}
}

func TestCachedCorruptFile(t *testing.T) {
	now := time.Now()
	good := fmt.Sprintf(`{"k":"a","addr":"192.0.2.1","pfx":"192.0.2.0/24","exp":%d,"asns":[64500],"name":"CACHED","src":"cymru"}`, now.Add(time.Hour).Unix())
	tests := []struct {
		name   string
		data   string
		cached bool // 192.0.2.1 answered from the file
	}{
		{"good", cacheHeader + "\n" + good + "\n", true},
		{"wrong header", "anycheck-whois-cache 0\n" + good + "\n", false},
		{"version 1 (keyed by prefix)", "anycheck-whois-cache 1\n" + `{"k":"p","key":"192.0.2.0/24","exp":9999999999,"asns":[64500],"name":"CACHED"}` + "\n", false},
		{"overlong first line", strings.Repeat("x", 2*maxCacheLine) + "\n" + good + "\n", false},
		{"garbage", "\x00\xff\xfe garbage", false},
		{"empty", "", false},
		{"truncated mid-line after a good line", cacheHeader + "\n" + good + "\n{\"k\":\"a\",\"addr\":\"198.51", true},
		{"bad lines around a good one", cacheHeader + "\n{}\nnot json\n" + strings.Repeat("y", 3*maxCacheLine) + "\n" +
			`{"k":"a","addr":"192.0.2.1","pfx":"192.0.2.1/24","exp":9999999999,"asns":[1]}` + "\n" +
			`{"k":"a","addr":"192.0.2.1","pfx":"198.51.100.0/24","exp":9999999999,"asns":[1]}` + "\n" + good + "\n", true},
		{"answer for the address only", cacheHeader + "\n" + strings.Replace(good, `"192.0.2.1"`, `"192.0.2.2"`, 1) + "\n", false},
		{"expired", cacheHeader + "\n" + strings.Replace(good, fmt.Sprint(now.Add(time.Hour).Unix()), fmt.Sprint(now.Add(-time.Hour).Unix()), 1) + "\n", false},
		{"no ASNs", cacheHeader + "\n" + strings.Replace(good, "[64500]", "[]", 1) + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c")
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			fake := fakeAnswers()
			got, err := Cached(fake, CacheOptions{Path: path}).Lookup(context.Background(), addrs("192.0.2.1"))
			if err != nil {
				t.Fatal(err)
			}
			o := got[netip.MustParseAddr("192.0.2.1")]
			if fromFile := o.ASName == "CACHED"; fromFile != tt.cached || o.Cached != tt.cached {
				t.Errorf("answer %+v, want from the file: %v", o, tt.cached)
			}
			// Whatever was there, the file is valid afterwards (rewritten
			// when something new was learned).
			data, _ := os.ReadFile(path)
			if entries, _ := readCache(bytes.NewReader(data), now); !tt.cached && len(entries) == 0 {
				t.Errorf("cache not repaired: %q", data)
			}
		})
	}
}

// TestCachedTwoRuns runs two resolvers (two "processes") on one cache file
// at once: neither may fail or see a broken file, and the file ends valid.
func TestCachedTwoRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				a := netip.AddrFrom4([4]byte{198, 51, byte(w), byte(i)})
				fake := &fakeResolver{answers: map[netip.Addr]Origin{a: {ASNs: []uint32{uint32(64500 + w)}, Prefix: netip.PrefixFrom(a, 32), Source: SourceCymru}}}
				got, err := Cached(fake, CacheOptions{Path: path}).Lookup(context.Background(), []netip.Addr{a})
				if err != nil {
					errs <- err
					return
				}
				if o := got[a]; !slices.Equal(o.ASNs, []uint32{uint32(64500 + w)}) {
					errs <- fmt.Errorf("%s: %+v", a, o)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := readCache(bytes.NewReader(data), time.Now())
	if err != nil || len(entries) == 0 || !bytes.HasPrefix(data, []byte(cacheHeader+"\n")) {
		t.Errorf("cache file after concurrent runs: %d entries (%v)", len(entries), err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".whois-cache-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestCacheRoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	in := []cacheEntry{
		{Kind: entryAnswer, Addr: "192.0.2.1", Prefix: "192.0.2.0/24", Expires: now.Unix() + 10, ASNs: []uint32{64500, 64501}, ASName: "A|B\t\"C\"\n\x1b[31m Soci\u00e9t\u00e9", Country: "ZZ", Registry: "lab", Allocated: "2020-01-01", Source: "cymru"},
		{Kind: entryUnannounced, Addr: "2001:db8::1", Expires: now.Unix() + 10, Source: "cymru-dns"},
		{Kind: entryAnswer, Addr: "198.51.100.1", Prefix: "198.51.100.0/24", Expires: now.Unix() + 10, ASNs: []uint32{1}, ASName: strings.Repeat("x", maxCacheLine)}, // too long to keep
	}
	for i := range in {
		in[i].addr = netip.MustParseAddr(in[i].Addr)
	}
	var b bytes.Buffer
	if err := formatCache(&b, slices.Clone(in)); err != nil {
		t.Fatal(err)
	}
	out, err := readCache(&b, now)
	if err != nil || len(out) != 2 {
		t.Fatalf("parsed %d entries (%v) from %q", len(out), err, b.String())
	}
	if e := out[netip.MustParseAddr("192.0.2.1")]; e.ASName != in[0].ASName || e.prefix.String() != "192.0.2.0/24" || !slices.Equal(e.ASNs, in[0].ASNs) {
		t.Errorf("answer entry %+v", e)
	}
	if e := out[netip.MustParseAddr("2001:db8::1")]; e.Kind != entryUnannounced {
		t.Errorf("unannounced entry %+v", e)
	}
}

// FuzzReadCache is the cache loader: whatever the file holds, every entry
// kept is well formed, fresh and keyed by its own address, and an answer's
// prefix contains that address.
func FuzzReadCache(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	var b bytes.Buffer
	formatCache(&b, []cacheEntry{
		{Kind: entryAnswer, Addr: "192.0.2.1", addr: netip.MustParseAddr("192.0.2.1"), Prefix: "192.0.2.0/24", Expires: now.Unix() + 10, ASNs: []uint32{64500}, ASName: "X", Source: "cymru"},
		{Kind: entryUnannounced, Addr: "2001:db8::1", addr: netip.MustParseAddr("2001:db8::1"), Expires: now.Unix() + 10},
	})
	f.Add(b.Bytes())
	f.Add([]byte(cacheHeader + "\n{\"k\":\"a\",\"addr\":\"::\",\"pfx\":\"::/0\",\"exp\":1e30,\"asns\":[0]}\n"))
	f.Add([]byte(cacheHeader + "\n{\"k\":\"n\",\"addr\":\"fe80::1%eth0\",\"exp\":9999999999}\n{\"k\":\"n\",\"addr\":\"::ffff:1.2.3.4\",\"exp\":9999999999}\n"))
	f.Add([]byte(cacheHeader + "\n{\"k\":\"a\",\"addr\":\"192.0.2.1\",\"pfx\":\"192.0.2.1/24\",\"exp\":9999999999,\"asns\":[1]}\n{"))
	f.Add([]byte(cacheHeader + "\n" + strings.Repeat("z", maxCacheLine+1) + "\n{\"k\":\"n\",\"addr\":\"192.0.2.9\",\"exp\":9999999999}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := readCache(bytes.NewReader(data), now)
		if err != nil {
			t.Fatalf("reading from memory failed: %v", err)
		}
		for a, e := range entries {
			if e.addr != a || !a.IsValid() || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("entry %+v under %s", e, a)
			}
			switch e.Kind {
			case entryAnswer:
				if !e.prefix.IsValid() || e.prefix != e.prefix.Masked() || !e.prefix.Contains(a) || len(e.ASNs) == 0 {
					t.Fatalf("bad answer entry %+v", e)
				}
			case entryUnannounced:
				if e.prefix.IsValid() || len(e.ASNs) != 0 {
					t.Fatalf("bad unannounced entry %+v", e)
				}
			default:
				t.Fatalf("entry of kind %q", e.Kind)
			}
			if e.Expires <= now.Unix() {
				t.Fatalf("expired entry kept: %+v", e)
			}
		}
	})
}
