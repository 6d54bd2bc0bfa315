#!/usr/bin/env bash
# Compare benchmark (`make bench`): `anycheck compare` on a generated file of
# 10,000 RIPE Atlas traceroute results (bench/genatlas: shaped like the real
# results in shared/refdata, about 40 MB; written to a temporary directory,
# never committed) against jq doing a plain group-by of the same file by
# last-hop address. Both read and parse the whole file.
#
# Each tool runs RUNS times (default 3), taking turns; /usr/bin/time -v gives
# wall time, CPU time (user + sys) and peak RSS of every run. The medians
# give two ratios, anycheck/jq in wall time and in CPU time. anycheck must
# take less time than jq: on an idle machine that is wall time; on a loaded
# one (load average above the number of CPUs, at the start or the end) wall
# time measures the other processes, so the CPU-time ratio decides — both
# tools' CPU time come from the same run, which makes the ratio fair under
# any load. The output says which ratio decided.
# Peak RSS of the default text report and of -o json, csv and dot must stay
# under 200 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bin=${ANYCHECK_BIN:-$PWD/bin/anycheck}
runs=${RUNS:-3}
n=${N:-10000}
[ -x "$bin" ] || { echo "bench: build first (make build)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: jq is needed (make lab-deps)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./bench/genatlas -n "$n" > "$tmp/atlas.json"
size=$(awk -v b="$(stat -c %s "$tmp/atlas.json")" 'BEGIN {printf "%.1f", b/1e6}')

cpus=$(nproc)
. bench/lib.sh
load_start=$(load)

jqfilter='group_by(.result[-1].result[0].from // "*") | map({last_hop: .[0].result[-1].result[0].from, results: length})'
for _ in $(seq "$runs"); do
  measure anycheck "$tmp/out" "$bin" compare --asn none "$tmp/atlas.json"
  measure jq "$tmp/out" jq -c "$jqfilter" "$tmp/atlas.json"
done
for format in json csv dot; do
  measure "$format" "$tmp/out" "$bin" compare --asn none -o "$format" "$tmp/atlas.json"
done
load_end=$(load)

wa=$(median 1 "$tmp/anycheck"); ca=$(median 2 "$tmp/anycheck")
wj=$(median 1 "$tmp/jq"); cj=$(median 2 "$tmp/jq")
wall_ratio=$(awk -v a="$wa" -v j="$wj" 'BEGIN {printf "%.2f", a / j}')
cpu_ratio=$(awk -v a="$ca" -v j="$cj" 'BEGIN {printf "%.2f", a / j}')

printf 'compare benchmark: %s Atlas traceroute results, %s MB; medians of %s runs each (load average %s at the start, %s at the end, %s CPUs)\n' \
  "$n" "$size" "$runs" "$load_start" "$load_end" "$cpus"
printf '  %-26s %8s %8s %10s\n' "" "wall s" "CPU s" "peak RSS"
row() { printf '  %-26s %8s %8s %7d MB\n' "$1" "$2" "$3" $(( $4 / 1024 )); }
row "anycheck compare (text)" "$wa" "$ca" "$(maxcol 3 "$tmp/anycheck")"
row "jq group_by" "$wj" "$cj" "$(maxcol 3 "$tmp/jq")"
for format in json csv dot; do
  row "anycheck compare -o $format" "$(median 1 "$tmp/$format")" "$(median 2 "$tmp/$format")" "$(maxcol 3 "$tmp/$format")"
done
printf '  anycheck/jq: wall time ratio %s, CPU time ratio %s\n' "$wall_ratio" "$cpu_ratio"

fail=0
if awk -v a="$load_start" -v b="$load_end" -v c="$cpus" 'BEGIN {exit !(a > c || b > c)}'; then
  decide=$cpu_ratio
  echo "  the machine is loaded (load average above $cpus): the CPU time ratio decides (must be < 1)"
else
  decide=$wall_ratio
  echo "  the machine is idle: the wall time ratio decides (must be < 1)"
fi
if ! awk -v r="$decide" 'BEGIN {exit !(r < 1)}'; then
  echo "compare benchmark: anycheck is not faster than jq (ratio $decide)" >&2
  fail=1
fi
for name in anycheck json csv dot; do
  rss=$(maxcol 3 "$tmp/$name")
  if [ "$rss" -ge $((200 * 1024)) ]; then
    echo "compare benchmark: $name peak RSS $((rss / 1024)) MB is not under 200 MB" >&2
    fail=1
  fi
done
[ "$fail" = 0 ] && echo "  peak RSS under 200 MB for text, json, csv and dot: ok"
exit "$fail"
