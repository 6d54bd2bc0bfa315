#!/usr/bin/env bash
# Flow-sweep benchmark (root; `make bench`, issue 7): on the delayed lab,
# `anycheck trace --flows auto` through the ECMP diamond against scamper's
# tracelb on the same path (same branch addresses, at most 0.2× its wall
# time), and the sweep from the split client against a single-flow trace
# (at most 3×). Medians of whole-process runs taken in turns, packets sent.
# It exits non-zero when anycheck itself fails.
# ANYCHECK_BENCH_QUICK=1 leaves out scamper's port-53 tracelb (40 s a run).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bin=${ANYCHECK_BIN:-$PWD/bin/anycheck}
[ -x "$bin" ] || { echo "bench: build first (make build)" >&2; exit 1; }
go test -c -o bin/bench.test ./bench
ANYCHECK_BENCH=1 ANYCHECK_LAB=1 ANYCHECK_BIN="$bin" ./bin/bench.test -test.run '^TestBenchFlows$' -test.count=1 -test.timeout 30m
