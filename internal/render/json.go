package render

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/anycheck/anycheck/internal/report"
)

// resultsKey is where the results list sits in an indented document: a
// key at depth 1. Untrusted text cannot fake it: quotes inside strings are
// escaped.
var resultsKey = []byte("\n  \"results\": []")

// JSON writes the whole document, indented, with a trailing newline. The
// results list is streamed: the envelope is encoded around an empty list,
// then each result is encoded and written on its own, so a document with
// thousands of results (a compare of 10,000 Atlas traceroutes) is never
// held as one buffer. The bytes are those of encoding the document in one
// go.
func JSON(w io.Writer, doc *report.Document) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := writeJSON(bw, doc); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

func writeJSON(w *bufio.Writer, doc *report.Document) error {
	results := reflect.ValueOf(doc.Results)
	if results.Kind() != reflect.Slice || results.IsNil() {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	envelope := *doc
	envelope.Results = json.RawMessage("[]")
	var env bytes.Buffer
	enc := json.NewEncoder(&env)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&envelope); err != nil {
		return err
	}
	at := bytes.Index(env.Bytes(), resultsKey)
	if at < 0 {
		return errors.New("no results list in the document")
	}
	cut := at + len(resultsKey) - len("[]")
	w.Write(env.Bytes()[:cut])
	if results.Len() == 0 {
		w.WriteString("[]")
	} else {
		w.WriteString("[")
		for i := range results.Len() {
			b, err := json.MarshalIndent(results.Index(i).Interface(), "    ", "  ")
			if err != nil {
				return err
			}
			if i > 0 {
				w.WriteString(",")
			}
			w.WriteString("\n    ")
			if _, err := w.Write(b); err != nil {
				return err // the reader went away: stop encoding
			}
		}
		w.WriteString("\n  ]")
	}
	_, err := w.Write(env.Bytes()[cut+len("[]"):])
	return err
}

// JSONL writes one record as a single line.
func JSONL(w io.Writer, rec report.Record) error {
	if err := json.NewEncoder(w).Encode(rec); err != nil {
		return fmt.Errorf("write jsonl: %w", err)
	}
	return nil
}
