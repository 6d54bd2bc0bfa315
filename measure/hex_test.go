package measure

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdataDir holds golden packets shared by the module's tests.
const testdataDir = "../testdata/probe"

// readHex reads an annotated hex file: '#' starts a comment, the rest of
// each line is hex bytes separated by spaces.
func readHex(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseHex(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func parseHex(text string) ([]byte, error) {
	var digits strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(digits.String())
}
