#!/usr/bin/env bash
# Atlas rendering benchmark (`make bench`): 5,000 probes' DNS and traceroute
# results with their metadata, served by the fake RIPE Atlas API on loopback,
# rendered by anycheck atlas fetch and by anycheck compare over the saved
# files, timed against jq grouping the same results by probe. It prints the
# median wall time of 5 runs, the ratio to jq and the peak resident set.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bin=${ANYCHECK_BIN:-$PWD/bin/anycheck}
[ -x "$bin" ] || { echo "bench: build first (make build)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: jq is needed (make lab-deps)" >&2; exit 1; }
go test -c -o bin/bench.test ./bench
ANYCHECK_BENCH=1 ANYCHECK_BIN="$bin" ./bin/bench.test -test.run '^TestBenchAtlas$' -test.count=1 -test.timeout 20m
