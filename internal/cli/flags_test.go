package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// Every duration flag takes a bare number as seconds (traceroute's -w 1,
// ping's -i 0.2) as well as a Go duration.
func TestDurationFlagsTakeSeconds(t *testing.T) {
	var got *traceOptions
	g := &globalOptions{}
	s := &streams{out: &bytes.Buffer{}, err: &bytes.Buffer{}}
	cmd := newTraceCmd(g, s, testDeps(), func(_ context.Context, o *traceOptions) error { got = o; return nil })
	g.register(cmd)
	cmd.SetArgs([]string{"-w", "1", "192.0.2.53"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.wait != time.Second || got.g.timeout != time.Second {
		t.Errorf("-w 1: wait %v, timeout %v; want 1s", got.wait, got.g.timeout)
	}
	if g.timeout == time.Second {
		t.Error("-w wrote the shared options' --timeout")
	}
	var w *watchOptions
	cmd = newWatchCmd(g, s, testDeps(), func(_ context.Context, o *watchOptions) error { w = o; return nil })
	g.register(cmd)
	cmd.SetArgs([]string{"--interval", "0.25", "--duration", "90", "--timeout", "1.5", "192.0.2.53"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if w.interval != 250*time.Millisecond || w.duration != 90*time.Second || g.timeout != 1500*time.Millisecond {
		t.Errorf("interval %v, duration %v, timeout %v; want 250ms, 1m30s, 1.5s", w.interval, w.duration, g.timeout)
	}
	for _, bad := range []string{"soon", "1 hour", "1e300"} {
		r := runCLI(t, testDeps(), "watch", "--interval", bad, "192.0.2.53")
		if r.code != ExitUsage || !strings.Contains(r.stderr, "--interval") {
			t.Errorf("--interval %q: exit %d, stderr %q", bad, r.code, r.stderr)
		}
	}
}

// A mistyped flag gets the close names as a hint, as cobra does for
// commands; a far one gets none.
func TestFlagSuggestions(t *testing.T) {
	for _, c := range []struct {
		args []string
		hint string
	}{
		{[]string{"id", "--flow", "2", "192.0.2.53"}, "hint: did you mean --flows?"},
		{[]string{"trace", "--max-flow", "8", "192.0.2.53"}, "hint: did you mean --max-flows?"},
		{[]string{"watch", "--intervall", "1s", "192.0.2.53"}, "hint: did you mean --interval?"},
		{[]string{"trace", "--timout", "1", "192.0.2.53"}, "hint: did you mean --timeout?"},
		{[]string{"id", "--frobnicate", "192.0.2.53"}, ""},
	} {
		r := runCLI(t, testDeps(), c.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, "unknown flag: "+c.args[1]) {
			t.Errorf("%v: exit %d, stderr %q", c.args, r.code, r.stderr)
		}
		if c.hint != "" && !strings.Contains(r.stderr, c.hint+"\n") {
			t.Errorf("%v: stderr %q lacks %q", c.args, r.stderr, c.hint)
		}
		if c.hint == "" && strings.Contains(r.stderr, "did you mean") {
			t.Errorf("%v: stderr %q suggests a far name", c.args, r.stderr)
		}
	}
}

// Enum and rate flags are checked where parsed, in the same words in
// every command; --rate has a floor (1e-300 never ended).
func TestTypedFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"trace", "-P", "sctp"}, "-P sctp: must be udp, tcp or icmp"},
		{[]string{"watch", "--mode", "magic"}, "--mode magic: must be auto, raw or socket"},
		{[]string{"trace", "--mode", "magic"}, "--mode magic: must be auto, raw or socket"},
		{[]string{"trace", "--rate", "1e-300"}, "--rate 1e-300: must be a number from 1 to 10000 per second"},
		{[]string{"id", "--rate", "0.5"}, "--rate 0.5: must be a number from 1 to 10000 per second"},
		{[]string{"watch", "--rate", "Inf"}, "--rate Inf: must be a number from 1 to 10000 per second"},
		{[]string{"id", "-o", "dot"}, "-o dot: must be text, json or jsonl"},
		{[]string{"watch", "-o", " x"}, `-o " x": must be text, json or jsonl`},
	} {
		r := runCLI(t, testDeps(), append(c.args, "192.0.2.53")...)
		if first, _, _ := strings.Cut(r.stderr, "\n"); r.code != ExitUsage || first != "anycheck: "+c.want {
			t.Errorf("%v: exit %d, first stderr line %q; want %q", c.args, r.code, first, "anycheck: "+c.want)
		}
	}
}

// Each command's help lists its own output formats.
func TestHelpListsOwnFormats(t *testing.T) {
	for cmd, want := range map[string]string{
		"id":      "output format: text, json or jsonl",
		"trace":   "output format: text, json, jsonl or dot",
		"compare": "output format: text, json, jsonl, csv, dot, svg or html",
		"watch":   "output format: text, json or jsonl",
	} {
		r := runCLI(t, testDeps(), cmd, "--help")
		if !strings.Contains(r.stdout, want) {
			t.Errorf("%s --help lacks %q:\n%s", cmd, want, r.stdout)
		}
	}
	if r := runCLI(t, testDeps(), "version", "-o", "json"); r.code != ExitUsage {
		t.Errorf("version -o json: exit %d; version has no output formats", r.code)
	}
}

// Completion offers values: formats, protocols, modes, ASN sources and
// the named target sets.
func TestCompletionValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "trace", "-o", ""}, []string{"text", "json", "jsonl", "dot"}},
		{[]string{"__complete", "compare", "-o", ""}, []string{"csv", "dot"}},
		{[]string{"__complete", "trace", "-P", ""}, []string{"udp", "tcp", "icmp"}},
		{[]string{"__complete", "watch", "--mode", ""}, []string{"auto", "raw", "socket"}},
		{[]string{"__complete", "whois", "--asn", ""}, []string{"cymru", "cymru-dns", "none", "file:"}},
		{[]string{"__complete", "atlas", "run", "--asn", ""}, []string{"cymru-dns", "none"}},
		{[]string{"__complete", "id", "@"}, []string{"@roots"}},
	} {
		r := runCLI(t, testDeps(), c.args...)
		for _, w := range c.want {
			if !strings.Contains("\n"+r.stdout, "\n"+w+"\n") {
				t.Errorf("%v: completions %q lack %q", c.args[1:], r.stdout, w)
			}
		}
	}
}
