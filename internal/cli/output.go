package cli

import (
	"io"
	"strings"
	"sync"

	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
)

// runOutput is the output side of one command run, the same for every
// command: JSONL records are written as results arrive (from any number of
// goroutines), problems are recorded in the document and reported on stderr
// as they happen, and at the end the document is written once in the chosen
// format and the outcome becomes the exit status.
type runOutput struct {
	s      *streams
	format string
	doc    *report.Document

	mu  sync.Mutex // guards doc, writes to s.out and s.err, and err
	err error      // the first failed write of a streamed record
}

// outcome is how a run ended, for its exit status.
type outcome struct {
	failed      int  // targets that failed (exit 3)
	interrupted bool // stopped by a signal (exit 130); what was measured is shown
}

func newRunOutput(s *streams, g *globalOptions, d *deps, kind string) *runOutput {
	doc := report.New(kind, toolInfo(), d.now(), hostname(d))
	doc.Vantage.Location = g.location.dto()
	doc.Vantage.Label = string(g.label)
	return &runOutput{s: s, format: g.output, doc: doc}
}

// streaming reports whether records are written as results arrive (-o jsonl).
func (r *runOutput) streaming() bool { return r.format == formatJSONL }

// record writes one JSONL line when streaming and nothing otherwise. A
// failed write is kept and returned by finish: the run goes on measuring.
func (r *runOutput) record(rec report.Record) {
	if !r.streaming() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = render.JSONL(r.s.out, r.doc.WithVantage(rec))
	}
}

// result streams one finished target (-o jsonl). Every command calls it
// once per target, as soon as that target is done.
func (r *runOutput) result(target string, v any) {
	r.record(r.doc.ResultRecord(target, v))
}

// source records a flow's local endpoint in the document's vantage.
func (r *runOutput) source(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doc.AddSource(s)
}

// problem records a failure (a target that failed, a lookup that did not
// answer) in the document and says it on stderr at once, in every output
// format: stdout carries results only, and a failure must never be silent.
func (r *runOutput) problem(p report.Problem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doc.Errors = append(r.doc.Errors, p)
	r.sayProblem(p)
}

// problemUnsaid records a failure in the document without saying it: the
// caller says it another way (a count of many alike).
func (r *runOutput) problemUnsaid(p report.Problem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doc.Errors = append(r.doc.Errors, p)
}

func (r *runOutput) sayProblem(p report.Problem) {
	msg := p.Message
	if p.Target != "" && !strings.Contains(msg, p.Target) {
		msg = p.Target + ": " + msg
	}
	// Messages quote what inputs and servers said: escaped, as all text is.
	warn(r.s, "%s", render.Escape(oneLine(msg)))
}

// warn says a non-fatal problem (not recorded in the document) on stderr,
// safely from any goroutine.
func (r *runOutput) warn(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	warn(r.s, "%s", oneLine(msg))
}

// finish writes the finished run — the whole document (json), the end
// record (jsonl: results were streamed by result), or the text rendering of
// results — and returns the run's exit status: errInterrupted after a
// signal, errPartial when a target failed, nil otherwise.
func finish[T any](r *runOutput, results []T, oc outcome, text func(io.Writer, []T) error) error {
	if results == nil {
		results = []T{} // JSON "results": [] when nothing was measured
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doc.Results = results
	r.doc.Interrupted = oc.interrupted
	if r.err != nil {
		return r.err
	}
	var err error
	switch r.format {
	case formatJSON:
		err = render.JSON(r.s.out, r.doc)
	case formatJSONL:
		err = render.JSONL(r.s.out, r.doc.EndRecord())
	default:
		err = text(r.s.out, results)
	}
	if err != nil {
		return err
	}
	switch {
	case oc.interrupted:
		warn(r.s, "interrupted; what was measured so far is shown")
		return errInterrupted
	case oc.failed > 0:
		return errPartial
	}
	return nil
}
