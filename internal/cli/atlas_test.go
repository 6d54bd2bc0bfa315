package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycheck/anycheck/atlas/atlastest"
	"github.com/anycheck/anycheck/internal/report/reporttest"
)

const atlasTestKey = "0b7c1e2d-aaaa-4bbb-8ccc-5ec2e7ac0de5"

// atlasDeps are test dependencies with the given environment (no real
// ATLAS_API_KEY leaks in) and fast status polls.
func atlasDeps(env map[string]string) *deps {
	d := testDeps()
	d.getenv = func(k string) string { return env[k] }
	d.atlasPause = time.Millisecond
	// Reports look up origins: only a loopback whois server may answer,
	// never the public one.
	d.whoisDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() {
			return nil, fmt.Errorf("test: refusing to dial %s", addr)
		}
		return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
	}
	return d
}

func runAtlasCLI(ctx context.Context, t *testing.T, d *deps, errTTY bool, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, &streams{in: strings.NewReader(""), out: &out, err: &errb, errTTY: errTTY}, d)
	if strings.Contains(out.String()+errb.String(), atlasTestKey) {
		t.Errorf("the API key appears in the output of %v", args)
	}
	return result{code, out.String(), errb.String()}
}

func decodeBodies(t *testing.T, out string) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var docs []map[string]any
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("dry run output is not JSON documents: %v\n%s", err, out)
		}
		docs = append(docs, m)
	}
	return docs
}

func wantFields(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			t.Errorf("%s: %s = %v, want %v", what, k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected field %s = %v", what, k, got[k])
		}
	}
}

func TestAtlasRunDryRunPrintsTheExactBodies(t *testing.T) {
	srv := (&atlastest.Server{}).Start(t)
	d := atlasDeps(nil)
	r := runAtlasCLI(context.Background(), t, d, false, "atlas", "run", "--dry-run", "--atlas-url", srv.URL, "--from-asn", "AS64500", "--probes", "20", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("a dry run sent %d requests", n)
	}
	docs := decodeBodies(t, r.stdout)
	if len(docs) != 1 {
		t.Fatalf("%d bodies, want 1", len(docs))
	}
	body := docs[0]
	defs := body["definitions"].([]any)
	wantFields(t, "dns definition", defs[0].(map[string]any), map[string]any{
		"type": "dns", "af": 4, "target": "192.0.2.53", "description": "anycheck: CHAOS TXT hostname.bind (NSID) to 192.0.2.53",
		"query_class": "CHAOS", "query_type": "TXT", "query_argument": "hostname.bind", "protocol": "UDP",
		"set_nsid_bit": true, "set_rd_bit": false, "use_probe_resolver": false, "include_abuf": true, "resolve_on_probe": false,
	})
	wantFields(t, "traceroute definition", defs[1].(map[string]any), map[string]any{
		"type": "traceroute", "af": 4, "target": "192.0.2.53", "description": "anycheck: Paris traceroute (udp) to 192.0.2.53",
		"protocol": "UDP", "paris": 16, "resolve_on_probe": false,
	})
	wantFields(t, "probes", body["probes"].([]any)[0].(map[string]any), map[string]any{"requested": 20, "type": "asn", "value": 64500})
	if body["is_oneoff"] != true || len(body) != 3 {
		t.Errorf("request fields %v", body)
	}
	if !strings.Contains(r.stderr, "dry run: would POST "+srv.URL+"/api/v2/measurements/") {
		t.Errorf("stderr %q should say where the body would go", r.stderr)
	}

	// Both families, DNS over TCP, a TCP traceroute to port 53, a host name.
	r = runAtlasCLI(context.Background(), t, d, false, "atlas", "run", "--dry-run", "--af", "both", "--tcp", "-P", "tcp", "--qname", "id.server", "--from-country", "nl", "ns.example.net")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	docs = decodeBodies(t, r.stdout)
	if len(docs) != 2 {
		t.Fatalf("%d bodies, want 2", len(docs))
	}
	for i, af := range []int{4, 6} {
		defs := docs[i]["definitions"].([]any)
		dns, tr := defs[0].(map[string]any), defs[1].(map[string]any)
		if dns["af"] != float64(af) || tr["af"] != float64(af) || dns["protocol"] != "TCP" || dns["query_argument"] != "id.server" ||
			dns["target"] != "ns.example.net" || tr["protocol"] != "TCP" || tr["port"] != 53.0 {
			t.Errorf("request %d: %v", i+1, defs)
		}
	}
	wantFields(t, "first probes", docs[0]["probes"].([]any)[0].(map[string]any), map[string]any{"requested": 50, "type": "country", "value": "NL"})
	wantFields(t, "second probes", docs[1]["probes"].([]any)[0].(map[string]any), map[string]any{"requested": 50, "type": "msm", "value": nil})
	if !strings.Contains(r.stderr, `reuses the probes of request 1's DNS measurement`) {
		t.Errorf("stderr %q should explain the second selection", r.stderr)
	}

	// Explicit probe ids: both requests name them.
	r = runAtlasCLI(context.Background(), t, d, false, "atlas", "run", "--dry-run", "--af", "both", "--from-probes", "6001, 6005,6001", "ns.example.net")
	docs = decodeBodies(t, r.stdout)
	for i := range docs {
		wantFields(t, "probe ids", docs[i]["probes"].([]any)[0].(map[string]any), map[string]any{"requested": 2, "type": "probes", "value": "6001,6005"})
	}
}

func TestAtlasBadInputIsUsageError(t *testing.T) {
	d := atlasDeps(nil)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"udp port", []string{"run", "--port", "53", "192.0.2.53"}, "--port 53 with -P udp"},
		{"family mismatch", []string{"run", "--af", "6", "192.0.2.53"}, "not an IPv6 address"},
		{"both with a literal", []string{"run", "--af", "both", "2001:db8:53::53"}, "not an IPv4 address"},
		{"-4 and --af 6", []string{"run", "-4", "--af", "6", "ns.example.net"}, "--af 6 with -4"},
		{"bad af", []string{"run", "--af", "7", "192.0.2.53"}, `--af 7: must be 4, 6 or both`},
		{"two selections", []string{"run", "--from-country", "NL", "--from-asn", "3333", "192.0.2.53"}, "choose one probe selection"},
		{"bad country", []string{"run", "--from-country", "Netherlands", "192.0.2.53"}, `--from-country "Netherlands"`},
		{"bad area", []string{"run", "--from-area", "Mars", "192.0.2.53"}, `--from-area "Mars"`},
		{"bad asn", []string{"run", "--from-asn", "ASX", "192.0.2.53"}, `--from-asn "ASX"`},
		{"bad prefix", []string{"run", "--from-prefix", "192.0.2/24", "192.0.2.53"}, `--from-prefix "192.0.2/24"`},
		{"bad probe id", []string{"run", "--from-probes", "1,x", "192.0.2.53"}, `"x" is not a probe id`},
		{"probes and ids", []string{"run", "--probes", "3", "--from-probes", "1,2", "192.0.2.53"}, "--probes with --from-probes"},
		{"zero probes", []string{"run", "--probes", "0", "192.0.2.53"}, "--probes 0"},
		{"private target", []string{"run", "10.1.2.3"}, "10.1.2.3: not a global unicast"},
		{"loopback target", []string{"run", "::1"}, "::1: not a global unicast"},
		{"bad target", []string{"run", "not a name"}, `"not a name"`},
		{"bad qname", []string{"run", "--qname", "a..b", "192.0.2.53"}, `--qname "a..b"`},
		{"bad protocol", []string{"run", "-P", "sctp", "192.0.2.53"}, `-P sctp: must be udp, tcp or icmp`},
		{"bad wait", []string{"run", "--wait", "0s", "192.0.2.53"}, "--wait 0s"},
		{"bad url", []string{"run", "--atlas-url", "atlas.example/api", "192.0.2.53"}, `--atlas-url "atlas.example/api"`},
		{"no target", []string{"run"}, "arg"},
		{"fetch bad id", []string{"fetch", "12a"}, `measurement id "12a"`},
		{"fetch no download time", []string{"fetch", "--download-timeout", "0", "1"}, "--download-timeout 0"},
		{"fetch bad start", []string{"fetch", "--start", "yesterday", "1"}, `--start "yesterday"`},
		{"fetch stop before start", []string{"fetch", "--start", "2026-01-02", "--stop", "2026-01-01", "1"}, "--stop 2026-01-01 is before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runAtlasCLI(context.Background(), t, d, false, append([]string{"atlas"}, tc.args...)...)
			if r.code != ExitUsage || r.stdout != "" {
				t.Errorf("exit %d, stdout %q (stderr %q): want a usage error", r.code, r.stdout, r.stderr)
			}
			first := strings.SplitN(r.stderr, "\n", 2)[0]
			if !strings.HasPrefix(first, "anycheck: ") || !strings.Contains(first, tc.want) {
				t.Errorf("first stderr line %q should name %q", first, tc.want)
			}
		})
	}
}

func TestAtlasRunChecksTheReportSourcesBeforeCreating(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey}).Start(t)
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--asn", "bogus"}, `--asn: unknown asn source "bogus"`},
		{[]string{"--sites", filepath.Join(t.TempDir(), "missing.txt")}, "--sites"},
		{[]string{"--save", filepath.Join(file, "sub")}, "--save"},
	} {
		r := runAtlasCLI(context.Background(), t, d, false, append(append([]string{"atlas", "run", "--atlas-url", srv.URL}, tc.args...), "192.0.2.53")...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q: want a usage error naming %s", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent although the report could not have been made", n)
	}
}

func TestAtlasRunNeedsAKey(t *testing.T) {
	srv := (&atlastest.Server{}).Start(t)
	r := runAtlasCLI(context.Background(), t, atlasDeps(nil), false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "192.0.2.53")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "ATLAS_API_KEY") || !strings.Contains(r.stderr, "--key-file") {
		t.Errorf("exit %d, stderr %q: want a usage error naming both key sources", r.code, r.stderr)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests without a key", n)
	}
}

func TestAtlasKeyFromFileOrEnvironment(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey}).Start(t)
	dir := t.TempDir()
	kf := filepath.Join(dir, "key")
	if err := os.WriteFile(kf, []byte(atlasTestKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runAtlasCLI(context.Background(), t, atlasDeps(nil), false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--key-file", kf, "--probes", "5", "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	post := srv.Requests()[0]
	if post.Method != "POST" || post.Authorization != "Key "+atlasTestKey {
		t.Errorf("first request %s with Authorization %q", post.Method, post.Authorization)
	}
	if strings.Contains(r.stderr, "can be read by other users") {
		t.Errorf("a 0600 key file was warned about: %s", r.stderr)
	}

	// The environment works too; a group-readable file is warned about.
	os.Chmod(kf, 0o644)
	r = runAtlasCLI(context.Background(), t, atlasDeps(nil), false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--key-file", kf, "--probes", "5", "192.0.2.53")
	if r.code != ExitOK || !strings.Contains(r.stderr, "can be read by other users (mode 0644)") {
		t.Errorf("exit %d, stderr %q: want a warning about the mode", r.code, r.stderr)
	}
	r = runAtlasCLI(context.Background(), t, atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey}), false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--probes", "5", "192.0.2.53")
	if r.code != ExitOK {
		t.Errorf("key from the environment: exit %d: %s", r.code, r.stderr)
	}

	// A file that is not one token is refused without showing it.
	os.WriteFile(kf, []byte("secret part\nother line\n"), 0o600)
	r = runAtlasCLI(context.Background(), t, atlasDeps(nil), false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--key-file", kf, "192.0.2.53")
	if r.code != ExitUsage || strings.Contains(r.stderr, "secret") || !strings.Contains(r.stderr, kf) {
		t.Errorf("exit %d, stderr %q: want a usage error naming the file, not its content", r.code, r.stderr)
	}
	r = runAtlasCLI(context.Background(), t, atlasDeps(nil), false, "atlas", "run", "--key-file", filepath.Join(dir, "missing"), "192.0.2.53")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "missing") {
		t.Errorf("missing key file: exit %d, stderr %q", r.code, r.stderr)
	}
}

var testNames = map[string][]netip.Addr{"ns.example.net": {netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8:53::53")}}

func TestAtlasRunSecondRequestFailureStopsTheFirst(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey, Names: testNames}).Start(t)
	srv.Inject(atlastest.Fault{Method: "POST", Path: "/api/v2/measurements/", Skip: 1, Status: 400,
		Detail: "You do not have enough credit to schedule this measurement."})
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	r := runAtlasCLI(context.Background(), t, d, false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--af", "both", "--probes", "5", "ns.example.net")
	if r.code != ExitError || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q (stderr %q): want 1 and nothing on stdout", r.code, r.stdout, r.stderr)
	}
	var created []int
	var deleted []string
	for _, q := range srv.Requests() {
		if q.Method == "DELETE" {
			deleted = append(deleted, q.Path)
		}
	}
	for id := 70000001; id <= 70000002; id++ {
		if _, probes := srv.Created(id); len(probes) == 5 {
			created = append(created, id)
		}
		if !srv.Stopped(id) {
			t.Errorf("measurement %d of the first request was not stopped", id)
		}
	}
	if len(created) != 2 || len(deleted) != 2 || deleted[0] != "/api/v2/measurements/70000001/" || deleted[1] != "/api/v2/measurements/70000002/" {
		t.Errorf("created %v, deleted %v: want the first pair created, then both stopped", created, deleted)
	}
	first := strings.SplitN(r.stderr, "\n", 2)[0]
	for _, want := range []string{"HTTP 400", "You do not have enough credit to schedule this measurement.", "measurements 70000001, 70000002 were stopped"} {
		if !strings.Contains(first, want) {
			t.Errorf("error line %q should say %q", first, want)
		}
	}
	if !strings.Contains(r.stderr, "hint: the account's credits") {
		t.Errorf("stderr %q: want the quota hint", r.stderr)
	}
}

func TestAtlasRunAPIErrors(t *testing.T) {
	env := map[string]string{"ATLAS_API_KEY": atlasTestKey}
	for _, tc := range []struct {
		name  string
		fault atlastest.Fault
		code  int
		want  []string
	}{
		{"bad key", atlastest.Fault{Method: "POST", Path: "/api/v2/measurements/", Status: 403, Detail: "The provided API key is not valid."},
			ExitError, []string{"create measurements: HTTP 403: The provided API key is not valid.", "hint: check the API key"}},
		{"no permission", atlastest.Fault{Method: "POST", Path: "/api/v2/measurements/", Status: 401, Detail: "Authentication credentials were not provided."},
			ExitError, []string{"HTTP 401: Authentication credentials were not provided."}},
		{"rate limited for long", atlastest.Fault{Method: "POST", Path: "/api/v2/measurements/", Status: 429, RetryAfter: "900", Detail: "Request was throttled."},
			ExitError, []string{"HTTP 429: Request was throttled. (Retry-After 15m0s, longer than the 2m0s waited for)", "hint: RIPE Atlas is rate limiting"}},
		{"server error, then fine", atlastest.Fault{Method: "GET", Path: "/api/v2/measurements/*", Status: 502, Times: 2},
			ExitOK, nil},
		{"status reply malformed", atlastest.Fault{Method: "GET", Path: "/api/v2/measurements/*", Status: 200, Body: `{"id": 70000001, "status": `},
			ExitError, []string{"measurement 70000001: malformed reply (HTTP 200)"}},
		{"results down", atlastest.Fault{Method: "GET", Path: "/api/v2/measurements/*/results/", Status: 500, Detail: "Internal error"},
			ExitError, []string{"HTTP 500: Internal error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := (&atlastest.Server{Key: atlasTestKey}).Start(t)
			if strings.Contains(tc.fault.Path, "*/results") {
				tc.fault.Path = "/api/v2/measurements/70000001/results/"
				srv.Inject(tc.fault)
				tc.fault.Path = "/api/v2/measurements/70000002/results/"
			}
			srv.Inject(tc.fault)
			r := runAtlasCLI(context.Background(), t, atlasDeps(env), false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--probes", "5", "192.0.2.53")
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			for _, want := range tc.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr %q should say %q", r.stderr, want)
				}
			}
			if tc.code == ExitError && !strings.HasPrefix(lines[len(lines)-1], "hint:") && !strings.HasPrefix(lines[len(lines)-1], "anycheck: atlas") {
				t.Errorf("stderr %q: the failure should end on one error line (and a hint)", r.stderr)
			}
		})
	}
}

func TestAtlasRunInterruptedWhileWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := (&atlastest.Server{Key: atlasTestKey, Polls: 1 << 20, OnRequest: func(q atlastest.Request) {
		if q.Method == "GET" {
			cancel() // Ctrl-C once the measurements are being waited for
		}
	}}).Start(t)
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	r := runAtlasCLI(ctx, t, d, false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--probes", "5", "-o", "json", "192.0.2.53")
	if r.code != ExitInterrupted {
		t.Fatalf("exit %d, want 130 (stderr %q)", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	if !strings.Contains(r.stdout, `"interrupted": true`) || !strings.Contains(r.stdout, `"results": []`) {
		t.Errorf("stdout %s: want an empty report marked interrupted", r.stdout)
	}
	want := "anycheck atlas fetch --atlas-url " + srv.URL + " 70000001 70000002"
	if !strings.Contains(r.stderr, "interrupted while waiting") || !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q should name the measurements and %q", r.stderr, want)
	}
	for _, q := range srv.Requests() {
		if q.Method == "DELETE" {
			t.Errorf("Ctrl-C stopped a measurement: %s", q.Path)
		}
	}
}

func TestAtlasProgressOnlyOnATerminal(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey, Polls: 3}).Start(t)
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	r := runAtlasCLI(context.Background(), t, d, true, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--probes", "6", "192.0.2.53")
	if r.code != ExitOK || !strings.Contains(r.stderr, "70000001 dns: Ongoing, 2 of 6 probes reporting") {
		t.Errorf("exit %d, stderr %q: want live progress", r.code, r.stderr)
	}
	r = runAtlasCLI(context.Background(), t, d, false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--probes", "6", "192.0.2.53")
	if r.code != ExitOK || strings.Contains(r.stderr, "reporting") || strings.Contains(r.stderr, "\r") {
		t.Errorf("exit %d, stderr %q: no progress when stderr is not a terminal", r.code, r.stderr)
	}
}

// writeTestPfx2as writes the fake population's routing table for an
// offline ASN source.
func writeTestPfx2as(t *testing.T, pop *atlastest.Population) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "pfx2as.txt")
	if err := os.WriteFile(name, []byte(pop.Pfx2as()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestAtlasRunRendersWhatCompareReadsFromTheSavedFiles(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey, Names: testNames}).Start(t)
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	table := writeTestPfx2as(t, srv.Population)
	dir := filepath.Join(t.TempDir(), "saved")
	for _, format := range []string{"text", "json", "csv", "dot"} {
		t.Run(format, func(t *testing.T) {
			os.RemoveAll(dir)
			run := runAtlasCLI(context.Background(), t, d, false, "atlas", "run", "--atlas-url", srv.URL, "--asn", "file:"+table,
				"--af", "both", "--probes", "30", "--save", dir, "-o", format, "ns.example.net")
			if run.code != ExitOK {
				t.Fatalf("atlas run: exit %d: %s", run.code, run.stderr)
			}
			cmp := runAtlasCLI(context.Background(), t, d, false, "compare", "--asn", "file:"+table, "-o", format, dir)
			if cmp.code != ExitOK {
				t.Fatalf("compare: exit %d: %s", cmp.code, cmp.stderr)
			}
			if format == "json" {
				reporttest.Check(t, []byte(run.stdout), false)
				// The documents differ only in when they were made.
				var a, b map[string]any
				json.Unmarshal([]byte(run.stdout), &a)
				json.Unmarshal([]byte(cmp.stdout), &b)
				delete(a, "started")
				delete(b, "started")
				run.stdout, cmp.stdout = fmt.Sprint(a), fmt.Sprint(b)
			}
			if run.stdout != cmp.stdout {
				t.Errorf("atlas run rendered\n%s\ncompare over the saved files rendered\n%s", run.stdout, cmp.stdout)
			}
			if format == "text" {
				t.Logf("\n%s", run.stdout)
			}
		})
	}
}

func TestAtlasFetchExistingMeasurements(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey}).Start(t)
	pop := srv.Population
	dnsDef := atlastest.Definition{Type: "dns", AF: 4, Target: "192.0.2.53", QName: "hostname.bind", Protocol: "UDP"}
	trDef := atlastest.Definition{Type: "traceroute", AF: 4, Target: "192.0.2.53", Protocol: "UDP"}
	dnsID := srv.AddFinished(dnsDef, pop.Probes)
	trID := srv.AddFinished(trDef, pop.Probes)
	pingID := srv.AddMeasurement(atlastest.Definition{Type: "ping", AF: 4, Target: "192.0.2.53"}, nil)

	// Public measurements need no key; a window goes to the API as UNIX seconds.
	r := runAtlasCLI(context.Background(), t, atlasDeps(nil), false, "atlas", "fetch", "--atlas-url", srv.URL, "--asn", "none",
		"--start", "2026-01-01T00:00:10Z", "--stop", "1767225629", "-o", "json", fmt.Sprint(dnsID), fmt.Sprint(trID))
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Kind    string `json:"kind"`
		Results []struct {
			Vantage struct {
				ProbeID int `json:"probe_id"`
				Origin  *struct {
					ASNs    []uint32 `json:"asns"`
					Country string   `json:"country"`
				} `json:"origin"`
			} `json:"vantage"`
			Instance struct{ Name *string } `json:"instance"`
			Traced   bool                   `json:"traced"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	// Results are spread over the first minute: 20 s of it hold about a third.
	if doc.Kind != "compare" || len(doc.Results) < 15 || len(doc.Results) > 25 {
		t.Fatalf("kind %q with %d rows, want a compare document with the window's probes", doc.Kind, len(doc.Results))
	}
	for _, row := range doc.Results {
		want, _ := pop.Probe(row.Vantage.ProbeID)
		if row.Vantage.Origin == nil || fmt.Sprint(row.Vantage.Origin.ASNs) != fmt.Sprintf("[%d]", want.ASNv4) || row.Vantage.Origin.Country != want.Country {
			t.Errorf("probe %d: origin %+v, want AS%d in %s from the probe's metadata", row.Vantage.ProbeID, row.Vantage.Origin, want.ASNv4, want.Country)
		}
		if want.Behaviour == atlastest.Answers && (row.Instance.Name == nil || *row.Instance.Name != pop.Sites[want.Site4].NSID || !row.Traced) {
			t.Errorf("probe %d: instance %v traced %v, want %s and a trace", row.Vantage.ProbeID, row.Instance.Name, row.Traced, pop.Sites[want.Site4].NSID)
		}
	}
	for _, q := range srv.Requests() {
		if q.Authorization != "" {
			t.Errorf("%s %s sent a key; none was given", q.Method, q.Path)
		}
		if strings.HasSuffix(q.Path, "/results/") && (q.Query.Get("start") != "1767225610" || q.Query.Get("stop") != "1767225629") {
			t.Errorf("results query %v: want start=1767225610 stop=1767225629", q.Query)
		}
	}

	// A key in the environment is sent (private measurements).
	r = runAtlasCLI(context.Background(), t, atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey}), false, "atlas", "fetch", "--atlas-url", srv.URL, "--asn", "none", fmt.Sprint(dnsID))
	if last := srv.Requests()[len(srv.Requests())-1]; r.code != ExitOK || last.Authorization != "Key "+atlasTestKey {
		t.Errorf("exit %d, last request's Authorization %q", r.code, last.Authorization)
	}

	// Other measurement types are refused before anything is downloaded.
	r = runAtlasCLI(context.Background(), t, atlasDeps(nil), false, "atlas", "fetch", "--atlas-url", srv.URL, "--asn", "none", fmt.Sprint(dnsID), fmt.Sprint(pingID))
	if r.code != ExitUsage || !strings.Contains(r.stderr, fmt.Sprintf("measurement %d is a ping measurement", pingID)) {
		t.Errorf("exit %d, stderr %q: want a usage error naming the ping measurement", r.code, r.stderr)
	}
	// An unknown measurement is the API's 404.
	r = runAtlasCLI(context.Background(), t, atlasDeps(nil), false, "atlas", "fetch", "--atlas-url", srv.URL, "--asn", "none", "99")
	if r.code != ExitError || !strings.Contains(r.stderr, "measurement 99: HTTP 404") {
		t.Errorf("exit %d, stderr %q: want the API's 404", r.code, r.stderr)
	}
}

func TestAtlasRunWaitRunsOut(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey, Polls: 1 << 20}).Start(t)
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	r := runAtlasCLI(context.Background(), t, d, false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--wait", "100ms", "--probes", "6", "192.0.2.53")
	if r.code != ExitPartial {
		t.Fatalf("exit %d, want 3 (stderr %q)", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "still running after --wait 100ms") || !strings.Contains(r.stderr, "anycheck atlas fetch --atlas-url "+srv.URL+" 70000001 70000002") {
		t.Errorf("stderr %q should say the wait ran out and how to fetch later", r.stderr)
	}
	if !strings.Contains(r.stdout, "catchment") || !strings.Contains(r.stdout, "probe 6001") {
		t.Errorf("the results so far should be rendered:\n%s", r.stdout)
	}
}

func TestAtlasRunNoSuitableProbes(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey}).Start(t)
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	r := runAtlasCLI(context.Background(), t, d, false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--from-asn", "AS65000", "192.0.2.53")
	if r.code != ExitError || r.stdout != "" || !strings.Contains(r.stderr, `no suitable probes for --from-asn 65000: RIPE Atlas found no connected probe to run measurements 70000001,70000002`) {
		t.Errorf("exit %d, stdout %q, stderr %q: want an error naming the selection", r.code, r.stdout, r.stderr)
	}
}

func TestAtlasRunInterruptedWhileDownloading(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Ctrl-C while the traceroute results download (the DNS results were
	// read before it began).
	srv := (&atlastest.Server{Key: atlasTestKey, OnRequest: func(q atlastest.Request) {
		if q.Path == "/api/v2/measurements/70000002/results/" {
			cancel()
		}
	}}).Start(t)
	srv.Inject(atlastest.Fault{Path: "/api/v2/measurements/70000002/results/", Truncate: 1, Hang: true})
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	r := runAtlasCLI(ctx, t, d, false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--probes", "6", "-o", "json", "192.0.2.53")
	if r.code != ExitInterrupted {
		t.Fatalf("exit %d, want 130 (stderr %q)", r.code, r.stderr)
	}
	reporttest.Check(t, []byte(r.stdout), false)
	var doc struct {
		Interrupted bool              `json:"interrupted"`
		Results     []json.RawMessage `json:"results"`
	}
	json.Unmarshal([]byte(r.stdout), &doc)
	if !doc.Interrupted || len(doc.Results) != 6 {
		t.Errorf("interrupted %v with %d rows: want the DNS results read before Ctrl-C, marked interrupted", doc.Interrupted, len(doc.Results))
	}
}

func TestAtlasRunSendsWhatTheDryRunShows(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey, Names: testNames}).Start(t)
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	args := []string{"atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--af", "both", "--probes", "8", "--from-country", "NL", "-P", "tcp", "ns.example.net"}
	dry := runAtlasCLI(context.Background(), t, d, false, append(args, "--dry-run")...)
	if dry.code != ExitOK {
		t.Fatalf("dry run: exit %d: %s", dry.code, dry.stderr)
	}
	want := decodeBodies(t, dry.stdout)
	r := runAtlasCLI(context.Background(), t, d, false, args...)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got []map[string]any
	for _, q := range srv.Requests() {
		if q.Method == "POST" {
			var m map[string]any
			if err := json.Unmarshal(q.Body, &m); err != nil {
				t.Fatal(err)
			}
			got = append(got, m)
		}
	}
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("%d requests sent, %d shown", len(got), len(want))
	}
	// The second request names the first's DNS measurement, unknown to the dry run.
	want[1]["probes"].([]any)[0].(map[string]any)["value"] = 70000001.0
	for i := range got {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Errorf("request %d sent\n%v\nthe dry run showed\n%v", i+1, got[i], want[i])
		}
	}
	_, v4 := srv.Created(70000001)
	_, v6 := srv.Created(70000004)
	if len(v4) == 0 || fmt.Sprint(v4) != fmt.Sprint(v6) {
		t.Errorf("IPv4 probes %v, IPv6 probes %v: want the same", v4, v6)
	}
}

// Credentials in --atlas-url (http://user:password@host) are never printed:
// not in the dry run's line, the "results later with" hint, nor a usage error.
func TestAtlasURLCredentialsNeverPrint(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey}).Start(t)
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	withUser := strings.Replace(srv.URL, "://", "://operator:s3cret@", 1)
	for _, args := range [][]string{
		{"atlas", "run", "--dry-run", "--atlas-url", withUser, "192.0.2.53"},
		{"atlas", "run", "--atlas-url", withUser, "--asn", "none", "--probes", "5", "192.0.2.53"},
		{"atlas", "fetch", "--atlas-url", withUser + "/path", "1"},
		{"atlas", "fetch", "--atlas-url", strings.Replace(withUser, "http", "gopher", 1), "1"},
	} {
		r := runAtlasCLI(context.Background(), t, d, false, args...)
		if out := r.stdout + r.stderr; strings.Contains(out, "s3cret") || strings.Contains(out, "operator") {
			t.Errorf("%v printed the URL's credentials:\n%s", args, r.stderr)
		}
		if args[2] == "--dry-run" && !strings.Contains(r.stderr, "would POST http://xxxxx@127.0.0.1") {
			t.Errorf("dry run: %s", r.stderr)
		}
		if args[2] != "--dry-run" && args[1] == "run" && !strings.Contains(r.stderr, "results later with: anycheck atlas fetch --atlas-url http://xxxxx@127.0.0.1") {
			t.Errorf("atlas run: exit %d: %s", r.code, r.stderr)
		}
	}
}

// --save writes the results files atomically too: a link planted at a
// results file's name is replaced, never followed.
func TestAtlasSaveResultsFollowsNoPlantedLink(t *testing.T) {
	srv := (&atlastest.Server{Key: atlasTestKey}).Start(t)
	d := atlasDeps(map[string]string{"ATLAS_API_KEY": atlasTestKey})
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(dir, "msm-70000001-dns-ipv4.json")
	if err := os.Symlink(victim, planted); err != nil {
		t.Fatal(err)
	}
	r := runAtlasCLI(context.Background(), t, d, false, "atlas", "run", "--asn", "none", "--atlas-url", srv.URL, "--probes", "4", "--save", dir, "192.0.2.53")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep me" {
		t.Errorf("the link's target was overwritten: %q", b)
	}
	if fi, err := os.Lstat(planted); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644&^umask() {
		t.Errorf("%s: %v %v, want a regular file, mode 0644 less the umask", planted, fi, err)
	}
}

func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

// --key-file reads at most a few KB: a large file (or /dev/zero, which
// once ran the process out of memory) is refused, naming the file, after
// at most that much.
func TestAtlasKeyFileIsReadBounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20) // sparse: 64 MB of zeros
	f.Close()
	for _, name := range []string{big, "/dev/zero"} {
		if _, err := os.Stat(name); err != nil {
			continue
		}
		var r result
		n := bytesAllocated(func() {
			r = runAtlasCLI(context.Background(), t, atlasDeps(nil), false, "atlas", "run", "--key-file", name, "192.0.2.53")
		})
		if r.code != ExitUsage || !strings.Contains(r.stderr, "--key-file "+name+": larger than 4 KB") {
			t.Errorf("%s: exit %d, stderr %q", name, r.code, r.stderr)
		}
		if n > 1<<20 {
			t.Errorf("%s: %d MB allocated reading a key", name, n>>20)
		}
	}
}
