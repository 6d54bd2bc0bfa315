package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/anycheck/anycheck/internal/report"
)

type row struct {
	Input string `json:"input"`
}

func rowsText(w io.Writer, rows []row) error {
	for _, r := range rows {
		fmt.Fprintln(w, r.Input)
	}
	return nil
}

func newTestOutput(format string) (*runOutput, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	s := &streams{in: strings.NewReader(""), out: &out, err: &errb}
	return newRunOutput(s, &globalOptions{output: format}, testDeps(), report.KindID), &out, &errb
}

// Results streamed from many goroutines at once stay whole JSONL lines, and
// the stream ends with exactly one end record.
func TestRunOutputStreamsWholeLinesFromGoroutines(t *testing.T) {
	out, stdout, _ := newTestOutput(formatJSONL)
	var wg sync.WaitGroup
	var rows []row
	for i := range 50 {
		r := row{Input: fmt.Sprintf("target-%02d-%s", i, strings.Repeat("x", 2000))}
		rows = append(rows, r)
		wg.Go(func() { out.result(r.Input, r) })
	}
	wg.Wait()
	if err := finish(out, rows, outcome{}, rowsText); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	types := map[string]int{}
	for sc.Scan() {
		var rec report.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line is not one JSON record: %v: %.80q", err, sc.Text())
		}
		types[rec.Type]++
	}
	if types[report.RecordResult] != 50 || types[report.RecordEnd] != 1 || len(types) != 2 {
		t.Errorf("records by type %v, want 50 results and one end", types)
	}
}

// Nothing measured is "results": [], not null, and a failure is said on
// stderr even when stdout is JSON.
func TestRunOutputEmptyResultsAndProblems(t *testing.T) {
	out, stdout, stderr := newTestOutput(formatJSON)
	out.problem(report.Problem{Target: "192.0.2.53", Stage: "trace", Message: "connect: network is unreachable"})
	err := finish[row](out, nil, outcome{failed: 1}, rowsText)
	if !errors.Is(err, errPartial) || exitCode(err) != ExitPartial {
		t.Errorf("finish = %v, want the partial exit", err)
	}
	var doc struct {
		Results json.RawMessage  `json:"results"`
		Errors  []report.Problem `json:"errors"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if string(doc.Results) != "[]" {
		t.Errorf(`results = %s, want []`, doc.Results)
	}
	if len(doc.Errors) != 1 {
		t.Errorf("errors = %v, want the one problem", doc.Errors)
	}
	if got := stderr.String(); got != "anycheck: 192.0.2.53: connect: network is unreachable\n" {
		t.Errorf("stderr = %q, want one line naming the target", got)
	}
}

func TestRunOutputInterruptedWins(t *testing.T) {
	out, stdout, stderr := newTestOutput(formatText)
	err := finish(out, []row{{"a"}}, outcome{failed: 1, interrupted: true}, rowsText)
	if exitCode(err) != ExitInterrupted {
		t.Errorf("exit %d, want %d", exitCode(err), ExitInterrupted)
	}
	if stdout.String() != "a\n" || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stdout %q stderr %q: want the results and a note", stdout, stderr)
	}
}
