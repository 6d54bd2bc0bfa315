#!/usr/bin/env bash
# Compare benchmark (`make bench`): `anycheck compare` on a generated file of
# 10,000 RIPE Atlas traceroute results (about 60 MB, written to a temporary
# directory, never committed) against jq doing a plain group-by of the same
# file by last-hop address. Median wall time of 3 runs each and the peak
# RSS (/usr/bin/time -v) of the default (text) report; anycheck must take less time than jq and stay
# under 200 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bin=${ANYCHECK_BIN:-$PWD/bin/anycheck}
[ -x "$bin" ] || { echo "bench: build first (make build)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: jq is needed (make lab-deps)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./bench/genatlas -n "${N:-10000}" > "$tmp/atlas.json"
size=$(du -m "$tmp/atlas.json" | cut -f1)

# measure NAME CMD...: prints "seconds max_rss_kb" of one run.
measure() {
  /usr/bin/time -v -o "$tmp/time" "$@" > "$tmp/out" 2>/dev/null
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$tmp/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")
  echo "$wall $rss"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A wall rss
for tool in anycheck jq; do
  : > "$tmp/$tool.w"; : > "$tmp/$tool.r"
  for _ in 1 2 3; do
    if [ "$tool" = anycheck ]; then
      read -r w r < <(measure "$bin" compare --asn none "$tmp/atlas.json")
    else
      read -r w r < <(measure jq -c 'group_by(.result[-1].result[0].from // "*") | map({last_hop: .[0].result[-1].result[0].from, results: length})' "$tmp/atlas.json")
    fi
    echo "$w" >> "$tmp/$tool.w"; echo "$r" >> "$tmp/$tool.r"
  done
  wall[$tool]=$(median < "$tmp/$tool.w")
  rss[$tool]=$(sort -n "$tmp/$tool.r" | tail -1)
done
"$bin" compare --asn none "$tmp/atlas.json" | sed -n '1p'
ratio=$(awk -v a="${wall[anycheck]}" -v j="${wall[jq]}" 'BEGIN {printf "%.2f", a/j}')
printf 'compare benchmark: %s MB, %s results\n' "$size" "${N:-10000}"
printf '  %-9s %8s s  %6d MB peak RSS\n' anycheck "${wall[anycheck]}" $(( ${rss[anycheck]} / 1024 ))
printf '  %-9s %8s s  %6d MB peak RSS\n' jq "${wall[jq]}" $(( ${rss[jq]} / 1024 ))
printf '  anycheck/jq wall time ratio: %s (must be < 1); anycheck peak RSS must be < 200 MB\n' "$ratio"
awk -v a="${wall[anycheck]}" -v j="${wall[jq]}" -v r="${rss[anycheck]}" 'BEGIN {exit !(a < j && r < 200*1024)}' || { echo "compare benchmark: target missed" >&2; exit 1; }
