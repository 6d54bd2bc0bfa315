package whois

// Why the cache is keyed by address, not by prefix.
//
// A source's answer "a → P" says two things at the time it is given: P is
// announced, and no announced prefix more specific than P covers a. It says
// nothing about any other address b inside P: b may be covered by a more
// specific prefix Q ⊂ P that a's answer never mentions. A cache that
// answered b from P (a covering-prefix hit) would answer less specifically
// than the source (issue 13: 192.0.0.0/16 answering for 192.0.2.1 although
// the source maps it to 192.0.2.0/24). So an answer is only ever reused for
// the address it was given for, until its TTL runs out.
//
// Fresh answers also show older entries stale, and those are dropped (or,
// for entries about to be used, asked again) instead of being served:
//
//   - a fresh "b → P" with a ∈ P: a's longest match is now at least as
//     specific as P, so an entry "a → Q" with Q shorter than P, a cached
//     "a not announced", or "a → P" with other origins is stale;
//   - a fresh "b → P" with b ∈ Q for an entry "a → Q" with Q longer than
//     P: Q covers b but is not b's longest match, so Q is no longer
//     announced;
//   - a fresh "b not announced" with b ∈ Q: Q is no longer announced.
//
// What remains is staleness no answer has shown yet (a route that changed
// since and that no later lookup touched), which the TTL bounds.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/gaissmai/bart"
	"github.com/google/renameio/v2"
)

// cacheHeader is the first line of a cache file; a file with another first
// line (an older format, garbage) is ignored as a whole. Version 1 keyed
// answers by prefix, which is unsound (see above): its files are ignored.
const cacheHeader = "anycheck-whois-cache 2"

// Cache file limits: a cache is untrusted input (another process, a full
// disk, a user's editor may have left anything there).
const (
	maxCacheFile    = 64 << 20
	maxCacheEntries = 200_000
	maxCacheLine    = 4096
)

// ErrCache marks a problem with the cache file itself (not a regular file,
// unreadable, unwritable). It is reported through CacheOptions.OnError,
// never as a lookup failure: the answers are still good.
var ErrCache = errors.New("whois cache")

// CacheOptions configures Cached.
type CacheOptions struct {
	// Path is the cache file. Its directory is created (0700) on first write.
	Path string
	// TTL keeps answers fresh; default DefaultCacheTTL.
	TTL time.Duration
	// NegativeTTL keeps "unannounced" answers fresh; default
	// DefaultNegativeTTL, shorter because new announcements appear.
	NegativeTTL time.Duration
	// Now is the clock; default time.Now. Tests move it to expire entries.
	Now func() time.Time
	// OnError, when set, is told about cache problems (errors wrapping
	// ErrCache): a cache path that is not a regular file, a directory that
	// cannot be written. It may be called from several goroutines.
	OnError func(error)
}

// Kinds of cache entries.
const (
	entryAnswer      = "a" // an announced address: its prefix, origins and names
	entryUnannounced = "n" // an address the source said is not announced
)

// cacheEntry is one line of the cache file: what the source said about one
// address.
type cacheEntry struct {
	Kind      string   `json:"k"`
	Addr      string   `json:"addr"`
	Prefix    string   `json:"pfx,omitempty"`
	Expires   int64    `json:"exp"` // Unix seconds
	ASNs      []uint32 `json:"asns,omitempty"`
	ASName    string   `json:"name,omitempty"`
	Country   string   `json:"cc,omitempty"`
	Registry  string   `json:"reg,omitempty"`
	Allocated string   `json:"alloc,omitempty"`
	Source    string   `json:"src,omitempty"`

	addr   netip.Addr   // parsed Addr
	prefix netip.Prefix // parsed Prefix of an answer
}

// entryFor makes the cache entry for a fresh origin, or reports false for
// one that says too little to be worth keeping (no prefix, no origin) or
// contradicts itself (a prefix that does not contain the address).
func entryFor(a netip.Addr, o Origin, now time.Time, ttl, negTTL time.Duration) (cacheEntry, bool) {
	a = lookupAddr(a)
	if !a.IsValid() || o.Special != "" || o.Cached {
		return cacheEntry{}, false
	}
	if o.Unannounced {
		return cacheEntry{Kind: entryUnannounced, Addr: a.String(), addr: a,
			Expires: now.Add(negTTL).Unix(), Source: o.Source}, true
	}
	if !o.Prefix.IsValid() || len(o.ASNs) == 0 || !o.Prefix.Contains(a) {
		return cacheEntry{}, false
	}
	return cacheEntry{Kind: entryAnswer, Addr: a.String(), addr: a, Prefix: o.Prefix.String(), prefix: o.Prefix,
		Expires: now.Add(ttl).Unix(), ASNs: slices.Clone(o.ASNs), ASName: o.ASName,
		Country: o.Country, Registry: o.Registry, Allocated: o.Allocated, Source: o.Source}, true
}

// parseCacheLine parses one entry line; it reports false for anything
// malformed or expired at now.
func parseCacheLine(line []byte, now time.Time) (cacheEntry, bool) {
	var e cacheEntry
	if err := json.Unmarshal(line, &e); err != nil || e.Expires <= now.Unix() {
		return e, false
	}
	a, err := netip.ParseAddr(e.Addr)
	if err != nil || a.Zone() != "" || a.Is4In6() || a.String() != e.Addr {
		return e, false
	}
	e.addr = a
	switch e.Kind {
	case entryAnswer:
		p, err := netip.ParsePrefix(e.Prefix)
		if err != nil || p != p.Masked() || !p.Contains(a) || len(e.ASNs) == 0 || len(e.ASNs) > 64 {
			return e, false
		}
		e.prefix = p
	case entryUnannounced:
		if e.Prefix != "" || len(e.ASNs) > 0 {
			return e, false
		}
	default:
		return e, false
	}
	return e, true
}

// readCache reads a cache file, keeping every well-formed entry that is
// still fresh at now (the last one per address) and skipping anything else
// line by line, so a partly written or corrupted file costs only the
// damaged lines. It reads at most maxCacheFile bytes and maxCacheEntries
// entries.
func readCache(r io.Reader, now time.Time) (map[netip.Addr]cacheEntry, error) {
	out := make(map[netip.Addr]cacheEntry)
	br := bufio.NewReaderSize(io.LimitReader(r, maxCacheFile), maxCacheLine)
	first := true
	for len(out) < maxCacheEntries {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if first {
				return nil, nil // not our header: ignore the file
			}
			// An overlong line: skip to its end.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				return out, ignoreEOF(err)
			}
			continue
		case err != nil && !errors.Is(err, io.EOF):
			return out, err
		}
		complete := err == nil
		if first {
			if string(line) != cacheHeader+"\n" {
				return nil, nil // another format or garbage: ignore the file
			}
			first = false
		} else if complete {
			if e, ok := parseCacheLine(line, now); ok {
				out[e.addr] = e
			}
		}
		if !complete {
			return out, nil // EOF; a last line without newline is a cut write
		}
	}
	return out, nil
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// formatCache writes entries in the format readCache reads, sorted so the
// file is stable.
func formatCache(w io.Writer, entries []cacheEntry) error {
	sort.Slice(entries, func(i, j int) bool { return entries[i].addr.Less(entries[j].addr) })
	bw := bufio.NewWriter(w)
	bw.WriteString(cacheHeader + "\n")
	for _, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if len(line) >= maxCacheLine {
			continue // readCache would skip it; a huge AS name is not worth keeping
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func (e cacheEntry) origin(a netip.Addr) Origin {
	o := Origin{Addr: a, Source: e.Source, Cached: true}
	if e.Kind == entryUnannounced {
		o.Unannounced = true
		return o
	}
	o.ASNs = slices.Clone(e.ASNs)
	o.Prefix, o.ASName, o.Country, o.Registry, o.Allocated = e.prefix, e.ASName, e.Country, e.Registry, e.Allocated
	return o
}

// staleness indexes fresh answers to find the older entries they show stale
// (see the comment at the top of this file).
type staleness struct {
	byPrefix bart.Table[[]cacheEntry] // fresh answers by their prefix
	byAddr   bart.Table[cacheEntry]   // every fresh entry by its address (host route)
	any      bool
}

func newStaleness(fresh []cacheEntry) *staleness {
	s := new(staleness)
	for _, f := range fresh {
		s.any = true
		s.byAddr.Insert(netip.PrefixFrom(f.addr, f.addr.BitLen()), f)
		if f.Kind == entryAnswer {
			list, _ := s.byPrefix.Get(f.prefix)
			s.byPrefix.Insert(f.prefix, append(list, f))
		}
	}
	return s
}

// stale reports whether the fresh answers show e out of date.
func (s *staleness) stale(e cacheEntry) bool {
	if !s.any {
		return false
	}
	if f, ok := s.byAddr.Get(netip.PrefixFrom(e.addr, e.addr.BitLen())); ok {
		return !sameAnswer(e, f)
	}
	// Rule 1: a fresh prefix covering e's address.
	for p, fs := range s.byPrefix.Supernets(netip.PrefixFrom(e.addr, e.addr.BitLen())) {
		switch {
		case e.Kind == entryUnannounced:
			return true
		case e.prefix.Bits() < p.Bits():
			return true
		case e.prefix == p:
			for _, f := range fs {
				if !sameOrigins(e.ASNs, f.ASNs) {
					return true
				}
			}
		}
	}
	// Rules 2 and 3: a fresh answer for an address inside e's prefix that
	// e's prefix does not win.
	if e.Kind == entryAnswer && s.byAddr.OverlapsPrefix(e.prefix) {
		for _, f := range s.byAddr.Subnets(e.prefix) {
			if f.Kind == entryUnannounced || f.prefix.Bits() < e.prefix.Bits() {
				return true
			}
		}
	}
	return false
}

// sameAnswer reports whether two entries for one address say the same thing.
func sameAnswer(a, b cacheEntry) bool {
	return a.Kind == b.Kind && a.prefix == b.prefix && sameOrigins(a.ASNs, b.ASNs)
}

func sameOrigins(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// cachedResolver answers from an on-disk cache and asks the wrapped
// Resolver, in one batch, only about what the cache lacks.
type cachedResolver struct {
	r    Resolver
	opts CacheOptions
}

// Cached wraps r with an on-disk cache of r's answers, one per address
// (never reused for another address in the same prefix: see the comment
// at the top of cache.go). An address with a fresh cached answer is
// answered from the cache (Origin.Cached set) without asking r, unless
// r's answers for the other addresses of the same Lookup show it stale;
// then it is asked again. Two processes may share the file: writes go to a
// temporary file renamed into place, so a reader sees the old or the new
// file, never half of one; the last writer wins (merging what it read just
// before writing). A cache path that is not a regular file is neither read
// nor replaced.
func Cached(r Resolver, opts CacheOptions) Resolver {
	if opts.TTL <= 0 {
		opts.TTL = DefaultCacheTTL
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = DefaultNegativeTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &cachedResolver{r: r, opts: opts}
}

func (c *cachedResolver) warn(err error) {
	if c.opts.OnError != nil {
		c.opts.OnError(err)
	}
}

// openCacheFile opens path for reading without blocking (a FIFO without a
// writer would otherwise block the open forever) and refuses anything but
// a regular file. A missing file is (nil, nil).
func openCacheFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCache, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %w", ErrCache, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w %s: not a regular file (%s); not using it", ErrCache, path, fileKind(info.Mode()))
	}
	return f, nil
}

// fileKind names a file type for an error message.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return m.Type().String()
}

// load reads the cache; ok is false when the path holds something that is
// not a cache file we may replace.
func (c *cachedResolver) load(now time.Time) (entries map[netip.Addr]cacheEntry, ok bool) {
	f, err := openCacheFile(c.opts.Path)
	if err != nil {
		c.warn(err)
		return nil, false
	}
	if f == nil {
		return nil, true
	}
	defer f.Close()
	entries, err = readCache(f, now)
	if err != nil {
		c.warn(fmt.Errorf("%w: %w", ErrCache, err))
	}
	return entries, true
}

func (c *cachedResolver) Lookup(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
	out, ask := splitSpecial(addrs)
	if len(ask) == 0 {
		return out, nil
	}
	now := c.opts.Now()
	cached, writable := c.load(now)
	hits := make(map[netip.Addr]cacheEntry)
	var miss []netip.Addr
	for _, a := range ask {
		if e, ok := cached[lookupAddr(a)]; ok {
			hits[a] = e
		} else {
			miss = append(miss, a)
		}
	}
	var (
		fresh []cacheEntry
		err   error
	)
	learn := func(batch []netip.Addr) error {
		got, err := c.r.Lookup(ctx, batch)
		for a, o := range got {
			out[a] = o
			if e, ok := entryFor(a, o, now, c.opts.TTL, c.opts.NegativeTTL); ok {
				fresh = append(fresh, e)
			}
		}
		return err
	}
	if len(miss) > 0 {
		err = learn(miss)
		// Hits the fresh answers show stale are asked again, once.
		st := newStaleness(fresh)
		var again []netip.Addr
		for _, a := range ask {
			if e, ok := hits[a]; ok && st.stale(e) {
				delete(hits, a)
				again = append(again, a)
			}
		}
		if len(again) > 0 && ctx.Err() == nil {
			err = errors.Join(err, learn(again))
		}
	}
	for a, e := range hits {
		out[a] = e.origin(a)
	}
	if len(fresh) > 0 && writable {
		c.store(fresh, now)
	}
	return out, err
}

// store merges fresh entries into what is on disk now (another run may have
// written since we read), drops what they show stale, and replaces the
// file atomically. Problems go to OnError.
func (c *cachedResolver) store(fresh []cacheEntry, now time.Time) {
	disk, ok := c.load(now)
	if !ok {
		return
	}
	st := newStaleness(fresh)
	merged := make(map[netip.Addr]cacheEntry, len(disk)+len(fresh))
	for a, e := range disk {
		if !st.stale(e) {
			merged[a] = e
		}
	}
	for _, e := range fresh {
		merged[e.addr] = e
	}
	entries := make([]cacheEntry, 0, len(merged))
	for _, e := range merged {
		entries = append(entries, e)
	}
	if len(entries) > maxCacheEntries {
		// Keep the entries that live longest.
		sort.Slice(entries, func(i, j int) bool { return entries[i].Expires > entries[j].Expires })
		entries = entries[:maxCacheEntries]
	}
	if err := writeFileAtomic(c.opts.Path, func(w io.Writer) error { return formatCache(w, entries) }); err != nil {
		c.warn(err)
	}
}

// writeFileAtomic writes path (its directory created 0700) atomically
// with renameio: a temporary file of a random name, created exclusively
// beside it, renamed over it (a link planted at either is never followed).
func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrCache, err)
	}
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCache, err)
	}
	defer f.Cleanup() // a no-op once renamed
	if err := write(f); err != nil {
		return fmt.Errorf("%w: %w", ErrCache, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("%w: %w", ErrCache, err)
	}
	return nil
}
