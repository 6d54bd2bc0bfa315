package measure_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestLayers checks the import graph this package exists for: measure is a
// leaf, and the file readers and the catchment model link neither the
// prober nor the raw-socket tracer.
func TestLayers(t *testing.T) {
	const mod = "github.com/anycheck/anycheck/"
	deps := func(pkg string) []string {
		t.Helper()
		out, err := exec.Command("go", "list", "-deps", mod+pkg).Output()
		if err != nil {
			t.Skipf("go list: %v", err)
		}
		var own []string
		for _, p := range strings.Fields(string(out)) {
			if strings.HasPrefix(p, mod) && p != mod+pkg {
				own = append(own, strings.TrimPrefix(p, mod))
			}
		}
		return own
	}
	if d := deps("measure"); len(d) > 0 {
		t.Errorf("measure imports %v; it must stay a leaf", d)
	}
	for _, pkg := range []string{"catchment", "atlas"} {
		d := deps(pkg)
		for _, banned := range []string{"probe", "trace", "whois", "internal/report"} {
			if slices.Contains(d, banned) {
				t.Errorf("%s depends on %s (all: %v)", pkg, banned, d)
			}
		}
	}
}
