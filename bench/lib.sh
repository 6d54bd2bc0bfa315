# Shared by the benchmarks that time whole processes (sourced; the caller
# sets tmp, a scratch directory).

load() { cut -d' ' -f1 /proc/loadavg; }

# measure NAME OUT CMD...: runs CMD once under /usr/bin/time -v, its stdout
# to OUT, and appends "wall cpu rss_kb" to $tmp/NAME; a failing CMD stops
# the benchmark with its stderr.
measure() {
  local name=$1 out=$2
  shift 2
  if ! /usr/bin/time -v -o "$tmp/time" "$@" > "$out" 2> "$tmp/err"; then
    echo "bench: $name failed:" >&2
    cat "$tmp/err" "$tmp/time" >&2
    exit 1
  fi
  awk -F': ' '
    /Elapsed \(wall clock\)/ {n = split($2, p, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + p[i]}
    /User time \(seconds\)/ {u = $2}
    /System time \(seconds\)/ {s = $2}
    /Maximum resident set size/ {r = $2}
    END {printf "%.2f %.2f %d\n", w, u + s, r}' "$tmp/time" >> "$tmp/$name"
}

# median COLUMN FILE, maxcol COLUMN FILE
median() { cut -d' ' -f"$1" "$2" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
maxcol() { cut -d' ' -f"$1" "$2" | sort -n | tail -1; }
