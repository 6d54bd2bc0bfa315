// Package reporttest validates anycheck JSON output against the v2 JSON
// Schema in docs/schema, for tests of every package that writes JSON.
package reporttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	once   sync.Once
	schema *jsonschema.Schema
	errC   error
)

// SchemaPath is the repository path of the v2 schema.
func SchemaPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "docs", "schema", "anycheck-v2.json")
}

func compiled() (*jsonschema.Schema, error) {
	once.Do(func() {
		f, err := os.Open(SchemaPath())
		if err != nil {
			errC = err
			return
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			errC = fmt.Errorf("parse schema: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource("anycheck-v2.json", doc); err != nil {
			errC = err
			return
		}
		schema, errC = c.Compile("anycheck-v2.json")
	})
	return schema, errC
}

// Validate checks one JSON value (a document or a JSONL record).
func Validate(data []byte) error {
	s, err := compiled()
	if err != nil {
		return fmt.Errorf("compile schema: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(v)
}

// Check validates a JSON document (json) or every line of a JSONL stream
// (jsonl = true) and fails the test on the first violation.
func Check(t testing.TB, data []byte, jsonl bool) {
	t.Helper()
	if !jsonl {
		if err := Validate(data); err != nil {
			t.Fatalf("output does not match the v2 schema: %v\n%s", err, data)
		}
		return
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	for i, l := range lines {
		if !json.Valid(l) {
			t.Fatalf("jsonl line %d is not one JSON value: %s", i+1, l)
		}
		if err := Validate(l); err != nil {
			t.Fatalf("jsonl line %d does not match the v2 schema: %v\n%s", i+1, err, l)
		}
	}
}
