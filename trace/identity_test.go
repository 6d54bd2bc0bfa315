package trace_test

import (
	"context"
	"testing"
	"time"

	"github.com/anycheck/anycheck/trace"
	"github.com/anycheck/anycheck/trace/tracetest"
)

// A TCP/53 trace names its instance over a connection from its own flow,
// once the trace is over; other traces are left as they are.
func TestIdentifyTCP53(t *testing.T) {
	t.Run("tcp/53", inBubble(func(t *testing.T) {
		n := &tracetest.Net{Hops: tracetest.Routers(2, time.Millisecond), Dest: tracetest.Dest{RTT: 3 * time.Millisecond, Hostname: "tcp-inst", NSID: "tcp-nsid", HalfOpen: true}}
		p, _ := runFake(t, n, trace.Options{Proto: trace.TCP, Port: 53, Wait: time.Second})
		if p.Instance != nil {
			t.Fatalf("a TCP trace named %+v before the identity query", p.Instance)
		}
		trace.IdentifyTCP53(context.Background(), &p, trace.IdentityOptions{Net: n})
		if p.Instance == nil || p.Instance.NSID != "tcp-nsid" || p.Instance.HostnameBind != "tcp-inst" {
			t.Fatalf("instance %+v, want tcp-nsid / tcp-inst", p.Instance)
		}
		d := n.Dials()
		if len(d) != 1 || d[0].Network != "tcp" || d[0].Local != p.Flow.Src || d[0].Collided {
			t.Errorf("dials %+v: want one TCP connection from the flow %s, after its SYNs' half-open connections ended", d, p.Flow.Src)
		}
	}))
	t.Run("refused", inBubble(func(t *testing.T) {
		n := &tracetest.Net{Hops: tracetest.Routers(1, time.Millisecond), Dest: tracetest.Dest{RTT: time.Millisecond}}
		p, _ := runFake(t, n, trace.Options{Proto: trace.TCP, Port: 53, Wait: time.Second})
		n.Dest.Closed = true // the service went away after the trace
		trace.IdentifyTCP53(context.Background(), &p, trace.IdentityOptions{Net: n})
		// A refused connection is what the queries met, not a set-up
		// failure: answers that say so, and no instance named.
		if p.Instance == nil || p.Instance.Instance != "" || len(p.Answers) != 2 || p.Answers[0].Replied() || p.Answers[1].Replied() {
			t.Errorf("instance %+v answers %+v: want the refusal, no instance", p.Instance, p.Answers)
		}
	}))
	t.Run("other traces", inBubble(func(t *testing.T) {
		n := &tracetest.Net{Hops: tracetest.Routers(1, time.Millisecond), Dest: tracetest.Dest{RTT: time.Millisecond}}
		p, _ := runFake(t, n, trace.Options{Proto: trace.TCP, Port: 443, Wait: time.Second})
		trace.IdentifyTCP53(context.Background(), &p, trace.IdentityOptions{Net: n})
		if p.Instance != nil || len(n.Dials()) != 0 {
			t.Errorf("tcp/443: instance %+v, %d dials; want none", p.Instance, len(n.Dials()))
		}
	}))
}
