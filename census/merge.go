package census

import (
	"container/heap"
	"context"
	"errors"
	"io"
)

// QuerySource is where Merge reads queries: a LogReader, or anything that
// returns queries in (roughly) time order and io.EOF at the end.
type QuerySource interface {
	Next() (Query, error)
}

const mergeBatch = 4096

// Merge reads the sources at once, each in its own goroutine, and calls fn
// with every query of all of them in time order (a k-way merge: each
// source is taken to be in time order, as a server writes its log). fn
// runs in the caller's goroutine. Merge returns when every source is
// done or ctx is cancelled (the queries so far have been passed on); errs
// holds each source's read error (nil for one read to its end).
func Merge(ctx context.Context, sources []QuerySource, fn func(src int, q Query)) (errs []error) {
	errs = make([]error, len(sources))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feeds := make([]*feed, len(sources))
	for i, s := range sources {
		f := &feed{src: i, ch: make(chan []Query, 2), free: make(chan []Query, 3)}
		feeds[i] = f
		go f.run(ctx, s)
	}
	h := make(mergeHeap, 0, len(feeds))
	for _, f := range feeds {
		if f.next() {
			h = append(h, f)
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		if ctx.Err() != nil {
			break
		}
		f := h[0]
		fn(f.src, f.cur[f.pos])
		f.pos++
		if f.pos < len(f.cur) || f.next() {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	cancel()
	for i, f := range feeds {
		// Drain, so the goroutine ends and its error is final.
		for range f.ch {
		}
		errs[i] = f.err
	}
	return errs
}

type feed struct {
	src  int
	ch   chan []Query
	free chan []Query
	cur  []Query
	pos  int
	err  error // set by run before it closes ch
}

// run reads the source in batches until its end, an error or ctx is done.
func (f *feed) run(ctx context.Context, s QuerySource) {
	defer close(f.ch)
	for {
		var b []Query
		select {
		case b = <-f.free:
			b = b[:0]
		default:
			b = make([]Query, 0, mergeBatch)
		}
		var err error
		for len(b) < mergeBatch {
			var q Query
			q, err = s.Next()
			if err != nil {
				break
			}
			b = append(b, q)
		}
		if len(b) > 0 {
			select {
			case f.ch <- b:
			case <-ctx.Done():
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				f.err = err
			}
			return
		}
	}
}

// next takes the feed's next batch; false when the feed is done.
func (f *feed) next() bool {
	if f.cur != nil {
		select {
		case f.free <- f.cur:
		default:
		}
		f.cur = nil
	}
	b, ok := <-f.ch
	if !ok {
		return false
	}
	f.cur, f.pos = b, 0
	return true
}

type mergeHeap []*feed

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	a, b := h[i].cur[h[i].pos], h[j].cur[h[j].pos]
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	return h[i].src < h[j].src
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*feed)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Log is one input of a passive census: an instance's log and the
// instance it is (Instance ""), or a log that names its instance itself
// (each dnstap message's identity, a capture's answer to hostname.bind).
type Log struct {
	Source   QuerySource
	Instance string
}

// LogsTally is what TallyLogs read.
type LogsTally struct {
	Census *Census
	// Unnamed counts, per log, the queries left out because the log named
	// no instance for them (give the log its Instance).
	Unnamed []uint64
	// Errs are the logs' read errors (nil for one read to its end).
	Errs []error
}

// TallyLogs is a passive census: it merges the instances' logs by time
// and counts every client query for its instance — the log's Instance, or
// else the identity the log gave — with the instances named by the logs
// first, in order. onQuery, when set, is called for every query (progress).
// It returns when every log is read or ctx ends (with what was read).
func TallyLogs(ctx context.Context, logs []Log, o TallyOptions, onQuery func()) LogsTally {
	tally := NewTally(o)
	for _, l := range logs {
		if l.Instance != "" {
			tally.Instance(l.Instance) // instances in the order given
		}
	}
	sources := make([]QuerySource, len(logs))
	for i := range logs {
		sources[i] = logs[i].Source
	}
	// Per log, the instance index of the identity last seen.
	lastID := make([]string, len(logs))
	lastIdx := make([]int, len(logs))
	res := LogsTally{Unnamed: make([]uint64, len(logs))}
	res.Errs = Merge(ctx, sources, func(src int, q Query) {
		if onQuery != nil {
			onQuery()
		}
		name := logs[src].Instance
		if name == "" {
			name = q.Identity
		}
		if name == "" {
			res.Unnamed[src]++
			return
		}
		if name != lastID[src] {
			lastID[src], lastIdx[src] = name, tally.Instance(name)
		}
		tally.AddNanos(lastIdx[src], q.Time, q.Client)
	})
	res.Census = tally.Result()
	return res
}
