package trace

import (
	"context"
	"net/netip"
)

// RunCountingLoops is Run that also returns how many times the scheduler
// loop ran, so the external tests can tell sleeping from busy waiting.
func RunCountingLoops(ctx context.Context, o Options) (Path, int, error) {
	o, err := withDefaults(o)
	if err != nil {
		return Path{}, 0, err
	}
	f := Flow{Proto: o.Proto, Src: netip.AddrPortFrom(o.Source, o.SrcPort), Dst: netip.AddrPortFrom(o.Target, o.Port)}
	conn, err := o.Net.Open(ctx, f, o.Mode)
	if err != nil {
		return Path{}, 0, err
	}
	e := newEngine(o, conn)
	p := e.run(ctx)
	conn.Close()
	e.wg.Wait()
	return p, e.loops, nil
}

// The scheduler's constants, for the external tests.
const (
	TTLSpread      = ttlSpread
	SilentFactor   = silentFactor
	ReadGrace      = readGrace
	DefaultMinWait = defaultMinWait
)
