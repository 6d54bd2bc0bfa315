// Package ingest reads the inputs of a catchment report — anycheck
// documents (census documents too), RIPE Atlas results and Atlas probe
// metadata — told from
// their content (gzip undone on the way), from files, directories and
// standard input, streaming into a Sink. It prints nothing and decides
// nothing about what is read: the sink turns documents, results and
// probes into catchment lines, and says what could not be read.
package ingest

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/anycheck/anycheck/atlas"
	"github.com/anycheck/anycheck/internal/report"
)

// Sink receives what Read finds in one input, in order.
type Sink interface {
	// Document is one anycheck document of the input.
	Document(name string, doc report.ReadDoc)
	// Probes is RIPE Atlas probe metadata (a probes.json).
	Probes(name string, probes []atlas.Probe)
	// Result is one RIPE Atlas result; index is its place in the input
	// (from 0, bad results counted too), for its catchment line's input.
	Result(name string, index int, res *atlas.Result)
	// Skip is something of the input that could not be read: the input
	// itself, or one document or result in it (the rest is read on).
	Skip(name string, err error)
}

// Input says what one input held.
type Input struct {
	Name    string
	Format  string // "anycheck", "atlas probes", "atlas …" (the Atlas reader's format), "gzip" when it was not gzip after all
	Results int    // results read
	Skipped int    // documents, results or the whole input skipped
}

// ErrUnknownFormat: an input that is neither an anycheck document, Atlas
// probe metadata nor Atlas results.
var ErrUnknownFormat = errors.New("neither anycheck v1 output nor RIPE Atlas results")

// Read reads one input (gzip undone): anycheck documents (JSON, several in
// a row, JSONL), Atlas probe metadata, or Atlas results (a JSON array or
// one per line), told from its first bytes, into sink. It stops early when
// ctx ends.
func Read(ctx context.Context, name string, r io.Reader, sink Sink) Input {
	in := Input{Name: name}
	skip := func(err error) {
		in.Skipped++
		sink.Skip(name, err)
	}
	src := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := src.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(src)
		if err != nil {
			in.Format = "gzip"
			skip(fmt.Errorf("gzip: %w", err))
			return in
		}
		defer zr.Close()
		src = bufio.NewReaderSize(zr, 64<<10)
	}
	head, _ := src.Peek(4096)
	switch {
	case len(head) == 0:
		skip(errors.New("empty file"))
	case report.IsDocument(head):
		in.Format = "anycheck"
		docs, bad, err := report.ReadDocuments(src)
		for _, e := range bad {
			skip(e)
		}
		if err != nil {
			skip(err)
		}
		for _, dc := range docs {
			in.Results += len(dc.IDs) + len(dc.Traces) + len(dc.Sweeps) + len(dc.Census)
			sink.Document(name, dc)
		}
	case atlas.IsProbes(head):
		in.Format = "atlas probes"
		probes, err := atlas.ReadProbes(src)
		if err != nil {
			skip(fmt.Errorf("probe metadata: %w", err))
			break
		}
		sink.Probes(name, probes)
	default:
		readAtlas(ctx, name, src, sink, &in, skip)
	}
	return in
}

func readAtlas(ctx context.Context, name string, src io.Reader, sink Sink, in *Input, skip func(error)) {
	rd, err := atlas.NewReader(src)
	if err != nil {
		if errors.Is(err, atlas.ErrNotAtlas) {
			err = ErrUnknownFormat
		}
		skip(err)
		return
	}
	in.Format = "atlas " + rd.Format()
	for ctx.Err() == nil {
		res, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		var re *atlas.ResultError
		if errors.As(err, &re) {
			skip(err) // one bad result; the next may be fine
			continue
		}
		if err != nil {
			skip(err)
			return
		}
		in.Results++
		sink.Result(name, rd.Index(), &res)
	}
}

// ReadAll reads every argument in order: "-" is stdin, a directory is its
// regular files (Files), anything else one file; done gets the Input of
// each one read. A file or directory that cannot be opened is a Skip. It
// stops at the next input once ctx ends.
func ReadAll(ctx context.Context, args []string, stdin io.Reader, sink Sink, done func(Input)) {
	for _, arg := range args {
		if ctx.Err() != nil {
			return
		}
		if arg == "-" {
			done(Read(ctx, "-", stdin, sink))
			continue
		}
		files, left, err := Files(arg)
		if err != nil {
			sink.Skip(arg, err)
			continue
		}
		for _, l := range left {
			sink.Skip(l.Path, errors.New(l.Why))
		}
		for _, name := range files {
			if ctx.Err() != nil {
				return
			}
			f, err := os.Open(name)
			if err != nil {
				sink.Skip(name, err)
				continue
			}
			done(Read(ctx, name, f, sink))
			f.Close()
		}
	}
}

// Files lists a file, or the regular files under a directory (sorted;
// hidden files and directories left out). In a directory, a link to a
// regular file is listed (as that file named on the command line would
// be read); a link to a directory is not followed (a loop, or files
// outside the tree), and it, a broken link and a special file (a FIFO
// would block the read) are in left, each saying why.
func Files(arg string) (files []string, left []LeftOut, err error) {
	st, err := os.Stat(arg)
	if err != nil {
		return nil, nil, err
	}
	if !st.IsDir() {
		return []string{arg}, nil, nil
	}
	err = filepath.WalkDir(arg, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != arg && de.Name()[0] == '.' {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch t := de.Type(); {
		case t.IsRegular():
			files = append(files, p)
		case t.IsDir():
		case t&fs.ModeSymlink != 0:
			st, err := os.Stat(p)
			switch {
			case err != nil:
				left = append(left, LeftOut{p, "a link to nothing"})
			case st.Mode().IsRegular():
				files = append(files, p)
			case st.IsDir():
				left = append(left, LeftOut{p, "a link to a directory: not followed"})
			default:
				left = append(left, LeftOut{p, "a link to something not a regular file"})
			}
		default:
			left = append(left, LeftOut{p, "not a regular file"})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(files) == 0 && len(left) == 0 {
		return nil, nil, errors.New("directory holds no files")
	}
	sort.Strings(files)
	return files, left, nil
}

// LeftOut is an entry of a directory that Files does not list, and why.
type LeftOut struct {
	Path, Why string
}
