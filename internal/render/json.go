package render

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/anycheck/anycheck/internal/report"
)

// JSON writes the whole document, indented, with a trailing newline.
func JSON(w io.Writer, doc *report.Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// JSONL writes one record as a single line.
func JSONL(w io.Writer, rec report.Record) error {
	if err := json.NewEncoder(w).Encode(rec); err != nil {
		return fmt.Errorf("write jsonl: %w", err)
	}
	return nil
}
