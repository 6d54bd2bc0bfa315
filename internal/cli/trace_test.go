package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anycheck/anycheck/internal/report/reporttest"
	"github.com/anycheck/anycheck/trace/tracetest"
)

// traceJSON is the part of `anycheck trace -o json` these tests read.
type traceJSON struct {
	Results []struct {
		Input  string
		Target string
		Flow   struct {
			Protocol, Src string
			Sport, Dport  int
		}
		Reached    bool
		StopReason string `json:"stop_reason"`
		DestTTL    int    `json:"dest_ttl"`
		Hops       []struct {
			TTL    int
			Probes []struct {
				Reply *struct{ From, Kind string }
			}
		}
		Instance *struct {
			Instance, NSID string
			HostnameBind   string `json:"hostname_bind"`
		}
		Answers []struct{ Transport, Status string }
		Notes   []string
	}
	Errors []struct{ Target, Stage, Message string }
}

func decodeTrace(t *testing.T, out string) traceJSON {
	t.Helper()
	reporttest.Check(t, []byte(out), false)
	var doc traceJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return doc
}

// fakePath is a three-router path to an instance of a DNS service.
func fakePath() *tracetest.Net {
	return &tracetest.Net{
		Hops: tracetest.Routers(3, time.Millisecond),
		Dest: tracetest.Dest{RTT: 4 * time.Millisecond, Hostname: "inst-7.lab", NSID: "inst-7"},
	}
}

// fakeDeps wires a fake network into both the trace and the identity
// query that follows a TCP/53 trace, and turns off lookups.
func fakeDeps(n *tracetest.Net) *deps {
	d := testDeps()
	d.traceNet = n
	d.probeNet = n
	return d
}

// TestTraceIdentity: a UDP/53 trace names the instance from its probes'
// own answers; a TCP/53 trace asks it over a real connection from the
// flow's source port once the trace is over. Both show it.
func TestTraceIdentity(t *testing.T) {
	for _, proto := range []string{"udp", "tcp"} {
		for _, target := range []string{"192.0.2.53", "2001:db8:53::53"} {
			t.Run(proto+" "+target, func(t *testing.T) {
				n := fakePath()
				r := runCLI(t, fakeDeps(n), "trace", "-P", proto, "--asn", "none", "-n", "-o", "json", target)
				if r.code != ExitOK {
					t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
				}
				doc := decodeTrace(t, r.stdout)
				p := doc.Results[0]
				if !p.Reached || p.DestTTL != 4 {
					t.Fatalf("reached %v at %d", p.Reached, p.DestTTL)
				}
				if p.Instance == nil || p.Instance.NSID != "inst-7" || p.Instance.HostnameBind != "inst-7.lab" || p.Instance.Instance != "inst-7" {
					t.Fatalf("instance %+v (notes %q), want inst-7 / inst-7.lab", p.Instance, p.Notes)
				}
				dials := n.Dials()
				if proto == "udp" {
					if len(dials) != 0 {
						t.Errorf("a udp/53 trace opened identity connections: %+v", dials)
					}
					return
				}
				if len(dials) != 1 || dials[0].Network != "tcp" || dials[0].Local.Port() != uint16(p.Flow.Sport) || dials[0].Remote.String() != fmt.Sprintf("%s:53", bracket(target)) {
					t.Fatalf("identity connections %+v, want one over tcp from the flow's port %d", dials, p.Flow.Sport)
				}
				if len(p.Answers) != 1 || p.Answers[0].Transport != "tcp" || p.Answers[0].Status != "answered" {
					t.Errorf("answers %+v", p.Answers)
				}

				r = runCLI(t, fakeDeps(fakePath()), "trace", "-P", proto, "--asn", "none", "-n", target)
				if r.code != ExitOK || !strings.Contains(r.stdout, `instance  inst-7  (NSID "inst-7"; hostname.bind "inst-7.lab")  4 hops`) {
					t.Errorf("text output (exit %d) lacks the instance line:\n%s", r.code, r.stdout)
				}
			})
		}
	}
}

func bracket(a string) string {
	if strings.Contains(a, ":") {
		return "[" + a + "]"
	}
	return a
}
