package trace

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/anycheck/anycheck/probe"
)

// IdentityOptions configure IdentifyTCP53.
type IdentityOptions struct {
	QName   string        // CHAOS TXT name; "" = hostname.bind
	Timeout time.Duration // per query; 0 = probe's default
	Limiter *rate.Limiter // the run's packet budget; nil sends at once
	Net     probe.Network // nil = the host's sockets
}

// IdentifyTCP53 asks a TCP/53 trace's destination who it is, over a real
// TCP connection from the trace's own flow (its source port, free again
// once Run has returned), so the identity describes the path just traced:
// a UDP/53 trace's probes are the identity queries themselves, a TCP SYN
// carries none. Other traces, and traces that did not reach their
// destination, are left as they are; a query that cannot be made is a
// note of the path.
func IdentifyTCP53(ctx context.Context, p *Path, o IdentityOptions) {
	if p.Flow.Proto != TCP || p.Flow.Dst.Port() != 53 || !p.Reached || ctx.Err() != nil {
		return
	}
	var names []string
	if o.QName != "" {
		names = []string{dns.Fqdn(o.QName)}
	}
	res, err := probe.Run(ctx, probe.Options{
		Target:  p.Flow.Dst,
		Source:  p.Flow.Src,
		Names:   names,
		TCP:     true,
		Timeout: o.Timeout,
		Net:     o.Net,
		Limiter: o.Limiter,
	})
	if err != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("identity over tcp from %s: %v", p.Flow.Src, err))
		return
	}
	p.Answers = res.Answers
	id := res.Identity
	p.Instance = &id
}
