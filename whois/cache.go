package whois

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/gaissmai/bart"
)

// cacheHeader is the first line of a cache file; a file with another first
// line (an older format, garbage) is ignored as a whole.
const cacheHeader = "anycheck-whois-cache 1"

// Cache file limits: a cache is untrusted input (another process, a full
// disk, a user's editor may have left anything there).
const (
	maxCacheFile    = 32 << 20
	maxCacheEntries = 200_000
	maxCacheLine    = 4096
)

// CacheOptions configures Cached.
type CacheOptions struct {
	// Path is the cache file. Its directory is created (0700) on first write.
	Path string
	// TTL keeps answers fresh (keyed by prefix); default DefaultCacheTTL.
	TTL time.Duration
	// NegativeTTL keeps "unannounced" answers (keyed by address); default
	// DefaultNegativeTTL, shorter because new announcements appear.
	NegativeTTL time.Duration
	// Now is the clock; default time.Now. Tests move it to expire entries.
	Now func() time.Time
}

// cacheEntry is one line of the cache file. Kind "p" is an answer keyed by
// its prefix; kind "n" is an unannounced address.
type cacheEntry struct {
	Kind      string   `json:"k"`
	Key       string   `json:"key"`
	Expires   int64    `json:"exp"` // Unix seconds
	ASNs      []uint32 `json:"asns,omitempty"`
	ASName    string   `json:"name,omitempty"`
	Country   string   `json:"cc,omitempty"`
	Registry  string   `json:"reg,omitempty"`
	Allocated string   `json:"alloc,omitempty"`
	Source    string   `json:"src,omitempty"`

	prefix netip.Prefix // parsed Key of a "p" entry
	addr   netip.Addr   // parsed Key of an "n" entry
}

// parseCache parses a cache file, keeping every well-formed entry that is
// still fresh at now and skipping anything else line by line, so a partly
// written or corrupted file costs only the damaged lines.
func parseCache(data []byte, now time.Time) []cacheEntry {
	if len(data) > maxCacheFile {
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), maxCacheLine)
	if !sc.Scan() || sc.Text() != cacheHeader {
		return nil
	}
	var out []cacheEntry
	for sc.Scan() && len(out) < maxCacheEntries {
		var e cacheEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Expires <= now.Unix() {
			continue
		}
		switch e.Kind {
		case "p":
			p, err := netip.ParsePrefix(e.Key)
			if err != nil || p != p.Masked() || len(e.ASNs) == 0 || len(e.ASNs) > 64 {
				continue
			}
			e.prefix = p
		case "n":
			a, err := netip.ParseAddr(e.Key)
			if err != nil || a.Zone() != "" || a.Is4In6() {
				continue
			}
			e.addr = a
		default:
			continue
		}
		out = append(out, e)
	}
	return out
}

// formatCache writes entries in the format parseCache reads, sorted so the
// file is stable.
func formatCache(w io.Writer, entries []cacheEntry) error {
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Kind != entries[j].Kind {
			return entries[i].Kind < entries[j].Kind
		}
		return entries[i].Key < entries[j].Key
	})
	bw := bufio.NewWriter(w)
	bw.WriteString(cacheHeader + "\n")
	for _, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if len(line) >= maxCacheLine {
			continue // parseCache would reject it; a huge AS name is not worth keeping
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func (e cacheEntry) origin(a netip.Addr) Origin {
	o := Origin{Addr: a, Source: e.Source, Cached: true}
	if e.Kind == "n" {
		o.Unannounced = true
		return o
	}
	o.ASNs = append([]uint32(nil), e.ASNs...)
	o.Prefix, o.ASName, o.Country, o.Registry, o.Allocated = e.prefix, e.ASName, e.Country, e.Registry, e.Allocated
	return o
}

// cachedResolver answers from an on-disk cache and asks the wrapped
// Resolver, in one batch, only about what the cache lacks.
type cachedResolver struct {
	r    Resolver
	opts CacheOptions
}

// Cached wraps r with an on-disk cache. An address covered by a fresh
// cached prefix is answered from the cache (Origin.Cached set) without
// asking r; that assumes the covering route has not been split since, which
// the TTL bounds. Unannounced answers are cached per address. Two processes
// may share the file: writes go to a temporary file renamed into place, so
// a reader sees the old or the new file, never half of one; the last writer
// wins (merging what it read just before writing).
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

func (c *cachedResolver) load(now time.Time) []cacheEntry {
	f, err := os.Open(c.opts.Path)
	if err != nil {
		return nil // missing or unreadable: start empty
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCacheFile+1))
	if err != nil {
		return nil
	}
	return parseCache(data, now)
}

func (c *cachedResolver) Lookup(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]Origin, error) {
	out, ask := splitSpecial(addrs)
	if len(ask) == 0 {
		return out, nil
	}
	now := c.opts.Now()
	var (
		routes   bart.Table[cacheEntry]
		negative = make(map[netip.Addr]cacheEntry)
	)
	for _, e := range c.load(now) {
		if e.Kind == "p" {
			routes.Insert(e.prefix, e)
		} else {
			negative[e.addr] = e
		}
	}
	var miss []netip.Addr
	for _, a := range ask {
		q := lookupAddr(a)
		if e, ok := routes.Lookup(q); ok {
			out[a] = e.origin(a)
		} else if e, ok := negative[q]; ok {
			out[a] = e.origin(a)
		} else {
			miss = append(miss, a)
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := c.r.Lookup(ctx, miss)
	var fresh []cacheEntry
	for a, o := range got {
		out[a] = o
		if o.Special != "" || o.Cached {
			continue
		}
		switch {
		case o.Unannounced:
			fresh = append(fresh, cacheEntry{Kind: "n", Key: lookupAddr(a).String(),
				Expires: now.Add(c.opts.NegativeTTL).Unix(), Source: o.Source})
		case o.Prefix.IsValid() && len(o.ASNs) > 0 && o.Prefix.Contains(lookupAddr(a)):
			fresh = append(fresh, cacheEntry{Kind: "p", Key: o.Prefix.String(),
				Expires: now.Add(c.opts.TTL).Unix(), ASNs: o.ASNs, ASName: o.ASName,
				Country: o.Country, Registry: o.Registry, Allocated: o.Allocated, Source: o.Source})
		}
	}
	if len(fresh) > 0 {
		if werr := c.store(fresh, now); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return out, err
}

// store merges fresh entries into what is on disk now (another run may have
// written since we read) and replaces the file atomically.
func (c *cachedResolver) store(fresh []cacheEntry, now time.Time) error {
	merged := make(map[string]cacheEntry)
	for _, e := range c.load(now) {
		merged[e.Kind+" "+e.Key] = e
	}
	for _, e := range fresh {
		merged[e.Kind+" "+e.Key] = e
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
	dir := filepath.Dir(c.opts.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("whois cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".whois-cache-*.tmp")
	if err != nil {
		return fmt.Errorf("whois cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := formatCache(tmp, entries); err != nil {
		tmp.Close()
		return fmt.Errorf("whois cache %s: write: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("whois cache %s: write: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), c.opts.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("whois cache %s: %w", c.opts.Path, err)
	}
	return nil
}
