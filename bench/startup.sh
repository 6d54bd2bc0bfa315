#!/bin/bash
# Start-up (issue 18 item 8): the time from exec to the first probe of
# `anycheck id` (its first DNS query leaving the UDP socket) against a Go
# hello world's exec to exit, both on this machine, both under strace
# (--seccomp-bpf stops only at the few syscalls traced, so the tracer's
# cost is the same handful of stops for both). Median of STARTUP_RUNS runs
# taken in turns. The target: within 2 ms of the hello world.
set -euo pipefail
BIN=${ANYCHECK_BIN:-$(pwd)/bin/anycheck}
RUNS=${STARTUP_RUNS:-40}
command -v strace >/dev/null || { echo "startup: strace is not installed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/hello"
cat > "$tmp/hello/main.go" <<'GO'
package main

import "fmt"

func main() { fmt.Println("hello, world") }
GO
(cd "$tmp/hello" && printf 'module hello\n\ngo 1.26\n' > go.mod && CGO_ENABLED=0 go build -trimpath -o "$tmp/hello.bin" .)

# elapsed FILE MODE: milliseconds from the first execve to the end (exit)
# or to the first write to a UDP socket the process opened (probe).
elapsed() {
	awk -v mode="$2" '
		{ t = $2 + 0 }
		/ execve\(/ && !t0 { t0 = t }
		mode == "exit" && / exit_group\(/ { printf "%.3f\n", (t - t0) * 1000; exit }
		mode == "probe" && / socket\(AF_INET6?, SOCK_DGRAM/ { split($0, a, "= "); fd[a[2] + 0] = 1 }
		mode == "probe" && /(write|sendto|sendmsg)\([0-9]+,/ {
			s = $0; sub(/.*(write|sendto|sendmsg)\(/, "", s)
			if ((s + 0) in fd) { printf "%.3f\n", (t - t0) * 1000; exit }
		}' "$1"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

trace() { strace -f --seccomp-bpf -ttt -e trace=execve,socket,write,sendto,sendmsg,exit_group -o "$tmp/st" "$@" >/dev/null 2>&1 || true; }

: > "$tmp/hello.ms"
: > "$tmp/anycheck.ms"
for _ in $(seq "$RUNS"); do
	trace "$tmp/hello.bin"
	elapsed "$tmp/st" exit >> "$tmp/hello.ms"
	# A closed port on loopback: the query leaves, the run ends at once.
	trace "$BIN" id --timeout 0.2 --port 9 127.0.0.1
	elapsed "$tmp/st" probe >> "$tmp/anycheck.ms"
done
for f in hello anycheck; do
	if [ "$(grep -c . "$tmp/$f.ms")" != "$RUNS" ]; then echo "startup: $f: no time in some runs (strace output changed?)"; exit 1; fi
done
hello=$(median < "$tmp/hello.ms")
first=$(median < "$tmp/anycheck.ms")
echo "== start-up: exec to the first probe (median of $RUNS runs, strace --seccomp-bpf)"
printf '  Go hello world, exec to exit:          %6.2f ms\n' "$hello"
printf '  anycheck id, exec to the first query:  %6.2f ms\n' "$first"
awk -v a="$first" -v h="$hello" 'BEGIN { d = a - h; printf "  difference: %.2f ms (target: at most 2 ms) — %s\n", d, (d <= 2 ? "met" : "NOT met") }'

# Where the time goes: package initialisation (GODEBUG=inittrace=1), the
# same every command pays, by the libraries that cost most, as the mean
# of 10 runs.
for _ in $(seq 10); do GODEBUG=inittrace=1 "$BIN" version 2>&1 >/dev/null | grep '^init ' || true; done | awk '
	{ g = "the rest"; p = $2
	  if (p ~ /prometheus|protobuf|yaml|go-abnf|^expvar$/) g = "prometheus client (exporter, watch --metrics)"
	  else if (p ~ /gopacket/) g = "gopacket (census logs: pcap)"
	  else if (p ~ /^github.com\/anycheck\//) g = "anycheck'"'"'s own packages"
	  t[g] += $5; all += $5 }
	END { printf "  package init, all packages:  %6.2f ms\n", all / 10
	      for (g in t) printf "    %-48s %5.2f ms\n", g ":", t[g] / 10 }'
