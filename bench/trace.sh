#!/usr/bin/env bash
# Trace benchmark: anycheck against traceroute, mtr and scamper on the same
# lab paths (root; `make bench`). It prints, per path and tool, the median
# wall time of 3 traces, the ratio to anycheck's, and how many runs' hop
# lists agreed with the lab's routing (plus the last hop list seen).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bin=${ANYCHECK_BIN:-$PWD/bin/anycheck}
[ -x "$bin" ] || { echo "bench: build first (make build)" >&2; exit 1; }
go test -c -o bin/bench.test ./bench
ANYCHECK_BENCH=1 ANYCHECK_LAB=1 ANYCHECK_BIN="$bin" ./bin/bench.test -test.run '^TestBenchTrace$' -test.count=1 -test.timeout 20m
