package report_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestJSONGuideExamples runs every example of docs/json.md — a console
// block of one "$ jq … FILE" line and what it prints — with jq against
// the file in testdata/golden, and compares the output.
func TestJSONGuideExamples(t *testing.T) {
	jq, err := exec.LookPath("jq")
	if err != nil {
		if os.Getenv("ANYCHECK_LAB") != "" {
			t.Fatal("jq is needed (make lab-deps)")
		}
		t.Skip("jq not installed")
	}
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "json.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```console\n(.*?)```").FindAllSubmatch(guide, -1)
	if len(blocks) < 10 {
		t.Fatalf("%d examples in docs/json.md, want the common questions answered", len(blocks))
	}
	golden := filepath.Join("..", "..", "testdata", "golden")
	for _, b := range blocks {
		cmd, want, _ := strings.Cut(string(b[1]), "\n")
		line, ok := strings.CutPrefix(cmd, "$ jq ")
		if !ok {
			t.Errorf("an example that is no jq command: %q", cmd)
			continue
		}
		args, err := shellWords(line)
		if err != nil {
			t.Errorf("%s: %v", cmd, err)
			continue
		}
		c := exec.Command(jq, args...)
		c.Dir = golden
		var stderr bytes.Buffer
		c.Stderr = &stderr
		got, err := c.Output()
		if err != nil {
			t.Errorf("%s: %v: %s", cmd, err, stderr.String())
			continue
		}
		if string(got) != want {
			t.Errorf("%s\nprints\n%s\nthe guide says\n%s", cmd, got, want)
		}
	}
}

// shellWords splits a command line as a POSIX shell would for the quoting
// the guide uses: words, 'single quoted' and "double quoted" (without
// escapes) parts.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				w.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, errUnterminated
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

var errUnterminated = errors.New("unterminated quote")
