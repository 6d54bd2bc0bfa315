//go:build unix

package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// In a directory, a link to a regular file is read as that file named on
// the command line would be; a link to a directory is not followed (a
// loop, or files outside the tree), and a broken link or a special file
// (a FIFO would block) is named, never left out without a word.
func TestReadAllDirectoryLinks(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	id := read(t, "../../testdata/golden/id.json")
	os.WriteFile(filepath.Join(dir, "a.json"), id, 0o644)
	os.WriteFile(filepath.Join(outside, "b.json"), id, 0o644)
	os.Symlink(filepath.Join(outside, "b.json"), filepath.Join(dir, "b.json"))
	os.Symlink(outside, filepath.Join(dir, "c-dir"))
	os.Symlink(filepath.Join(outside, "gone.json"), filepath.Join(dir, "d.json"))
	if err := syscall.Mkfifo(filepath.Join(dir, "e.fifo"), 0o644); err != nil { // a FIFO: unix only
		t.Fatal(err)
	}
	var r recorder
	var inputs []string
	ReadAll(context.Background(), []string{dir}, nil, &r, func(in Input) { inputs = append(inputs, filepath.Base(in.Name)) })
	if fmt.Sprint(inputs) != "[a.json b.json]" {
		t.Errorf("read %q, want a.json and the file b.json links to", inputs)
	}
	want := []string{"skip c-dir: a link to a directory: not followed", "skip d.json: a link to nothing", "skip e.fifo: not a regular file"}
	var skips []string
	for _, g := range r.got {
		if strings.HasPrefix(g, "skip ") {
			skips = append(skips, g)
		}
	}
	if fmt.Sprint(skips) != fmt.Sprint(want) {
		t.Errorf("skips %q, want %q", skips, want)
	}
}
