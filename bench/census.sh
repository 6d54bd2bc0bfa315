#!/usr/bin/env bash
# Census benchmark (`make bench`, issue 21).
#
# Passive: `anycheck census logs` on 10 million generated dnstap queries
# (bench/gendnstap: four instances' Frame Streams files, about 1 GB in a
# temporary directory, never committed) against the pipeline an operator
# would write with the dnstap tools: `dnstap -r FILE -j | jq -r
# .message.query_address | awk` counting queries per instance and /24. Both
# compute the same per-instance /24 table, and the bench checks that they
# do (the tables are compared line by line). /usr/bin/time -v gives wall
# time, CPU time and peak RSS; the peer runs once (minutes), anycheck RUNS
# times (3). anycheck must be faster (CPU time decides on a loaded machine,
# as in bench/compare.sh) and stay under 300 MB.
#
# Active (root, the lab): `census send` holds --rate within 2 % over
# 100,000 targets, measured by the sender and by tcpdump on the site's
# router (bench/census_test.go).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bin=${ANYCHECK_BIN:-$PWD/bin/anycheck}
runs=${RUNS:-3}
n=${N:-10000000}
[ -x "$bin" ] || { echo "bench: build first (make build)" >&2; exit 1; }
for tool in jq dnstap; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed (apt-get install jq golang-github-dnstap-golang-dnstap-cli)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./bench/gendnstap -n "$n" -dir "$tmp"
size=$(du -cm "$tmp"/i*.dnstap | tail -1 | cut -f1)
cpus=$(nproc)
. bench/lib.sh
load_start=$(load)

args=()
for f in "$tmp"/i*.dnstap; do
  i=$(basename "$f" .dnstap)
  args+=(--instance "$i=$f")
done
for _ in $(seq "$runs"); do
  measure anycheck "$tmp/anycheck.csv" "$bin" census logs -o csv "${args[@]}"
done
measure text "$tmp/anycheck.txt" "$bin" census logs "${args[@]}"
cat > "$tmp/peer.sh" <<PEER
for f in $tmp/i*.dnstap; do
  i=\$(basename "\$f" .dnstap)
  dnstap -r "\$f" -j 2>/dev/null | jq -r '.message.query_address' |
    awk -v inst="\$i" -F. '{c[\$1 "." \$2 "." \$3 ".0/24"]++} END {for (k in c) print inst, k, c[k]}'
done
PEER
measure peer "$tmp/peer.out" bash "$tmp/peer.sh"
load_end=$(load)

# The same table: instance, /24, queries.
awk -F, 'NR > 1 {print $6, $1, $7}' "$tmp/anycheck.csv" | sort > "$tmp/a.sorted"
sort "$tmp/peer.out" > "$tmp/p.sorted"
if ! cmp -s "$tmp/a.sorted" "$tmp/p.sorted"; then
  echo "bench: anycheck's per-instance /24 table differs from the pipeline's:" >&2
  diff "$tmp/a.sorted" "$tmp/p.sorted" | head >&2
  exit 1
fi
rows=$(wc -l < "$tmp/a.sorted")

wa=$(median 1 "$tmp/anycheck"); ca=$(median 2 "$tmp/anycheck")
wp=$(median 1 "$tmp/peer"); cp=$(median 2 "$tmp/peer")
printf 'census logs benchmark: %s dnstap queries in 4 files, %s MB; the same per-instance /24 table (%s rows) from both; anycheck: median of %s runs, pipeline: 1 run (load average %s at the start, %s at the end, %s CPUs)\n' \
  "$n" "$size" "$rows" "$runs" "$load_start" "$load_end" "$cpus"
printf '  %-44s %8s %8s %10s\n' "" "wall s" "CPU s" "peak RSS"
row() { printf '  %-44s %8s %8s %7d MB\n' "$1" "$2" "$3" $(( $4 / 1024 )); }
row "anycheck census logs -o csv" "$wa" "$ca" "$(maxcol 3 "$tmp/anycheck")"
row "anycheck census logs (text)" "$(median 1 "$tmp/text")" "$(median 2 "$tmp/text")" "$(maxcol 3 "$tmp/text")"
row "dnstap -j | jq | awk (per-instance /24 table)" "$wp" "$cp" "$(maxcol 3 "$tmp/peer")"
awk -v wa="$wa" -v wp="$wp" -v ca="$ca" -v cp="$cp" -v la="$load_start" -v lb="$load_end" -v c="$cpus" 'BEGIN {
  printf "  ratio anycheck/pipeline: wall %.3f, CPU %.3f", wa / wp, ca / cp
  if (la > c || lb > c) printf " (loaded machine: CPU time decides)"
  printf "\n"
}'
rss=$(maxcol 3 "$tmp/anycheck"); rss_text=$(maxcol 3 "$tmp/text")
status=0
if [ $(( (rss > rss_text ? rss : rss_text) / 1024 )) -ge 300 ]; then
  echo "bench: census logs peaked above 300 MB" >&2; status=1
fi
if awk -v a="$ca" -v p="$cp" 'BEGIN {exit !(a >= p)}'; then
  echo "bench: census logs was not faster than the pipeline" >&2; status=1
fi

# The active census's send rate, in the lab (root).
if [ "$(id -u)" = 0 ]; then
  go test -c -o bin/bench.test ./bench
  ANYCHECK_BENCH=1 ANYCHECK_LAB=1 ANYCHECK_BIN="$bin" ./bin/bench.test -test.run '^TestBenchCensusSend$' -test.count=1 -test.timeout 10m | grep -v '^PASS$' || status=1
else
  echo "census send benchmark: needs root (the lab)"
fi
exit $status
