#!/usr/bin/env bash
# Benchmark (root; `make bench`): on the delayed lab, anycheck trace against
# traceroute, mtr and scamper on the same paths, anycheck id against one dig,
# and four targets in one run against the slowest single one. It prints
# medians of whole-process runs taken in turns, ratios measured in this run,
# packets sent, hop-list agreement with the lab's routing, and issue 11's
# targets. It exits non-zero when anycheck itself fails.
# ANYCHECK_BENCH_QUICK=1 leaves out mtr and scamper (minutes of the run).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bin=${ANYCHECK_BIN:-$PWD/bin/anycheck}
[ -x "$bin" ] || { echo "bench: build first (make build)" >&2; exit 1; }
go test -c -o bin/bench.test ./bench
ANYCHECK_BENCH=1 ANYCHECK_LAB=1 ANYCHECK_BIN="$bin" ./bin/bench.test -test.run '^TestBench$' -test.count=1 -test.timeout 30m
