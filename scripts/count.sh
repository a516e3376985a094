#!/usr/bin/env bash
# count.sh [TOP] — the work of one deposit+pickup lifecycle, counted in
# instructions rather than timed: BenchmarkLifecycle (unsealed and sealed)
# under valgrind's cachegrind at two iteration counts, whose difference
# divided by the extra lifecycles is the count per lifecycle (the setup
# and the benchmark's warm-up cancel out). With TOP, it also lists the TOP
# functions of the unsealed lifecycle by their own instructions.
#
# A timing on this host drifts by a third from one minute to the next
# (`make perf` shows the spread); the count repeats to within 0.1 %. The
# collector is off (GOGC=off) so that its timing adds nothing, and
# asynchronous preemption too, whose signals valgrind's call graphs do not
# survive. RDTSCP is off as well: valgrind 3.19 cannot decode it, and the
# runtime reads the clock with it when a lock is contended (sysmon against
# the benchmark), which killed one run in a few with SIGILL; with it off the
# runtime uses LFENCE+RDTSC, which valgrind runs. A change that saves 2 % of
# a lifecycle is lost in the noise of `make perf` and plain here.
#
# The count is not the time: it weighs a cache miss or a slow instruction
# like any other. And valgrind hides the CPU's SHA extensions, so the
# hashing (the code HMACs; in the sealed core also each event's link in
# the chain) runs on crypto/sha256's AVX2 path instead of the SHA-NI one
# the benchmark uses natively, at several times the instructions. So the
# hashing (functions of crypto/ and internal/digest) is shown apart from
# the rest, which is the same code either way but for the copies the
# AVX2 path makes through runtime.memmove (about 400 of the unsealed
# lifecycle's rest).
#
# The benchmark is built as the perf rounds build it, with lockersim's
# profile for profile-guided optimisation (PGO=off in the environment: without).
set -euo pipefail

top=${1:-0}
pgo=${PGO:-sim/cmd/lockersim/default.pgo}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command -v valgrind >/dev/null || { echo "count: needs valgrind (make count installs it)" >&2; exit 1; }
cd "$root"
go test -c -pgo="$pgo" -o "$tmp/controller.test" ./controller

lo=10000 hi=30000

# profile VARIANT N: cachegrind's per-function counts for N lifecycles, as
# "count function" lines.
profile() {
	GOGC=off GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=cachegrind --cache-sim=no \
		--cachegrind-out-file="$tmp/cg.$1.$2" "$tmp/controller.test" -test.run '^$' \
		-test.bench "^BenchmarkLifecycle\$/^$1\$" -test.benchtime "$2x" -test.cpu 1 \
		>"$tmp/log.$1.$2" 2>&1 || { cat "$tmp/log.$1.$2" >&2; exit 1; }
	cg_annotate --auto=no "$tmp/cg.$1.$2" |
		awk '$1 ~ /^[0-9,]+$/ && $2 ~ /^\(/ && $NF != "TOTALS" { gsub(",", "", $1); print $1, $NF }'
}

# perlife VARIANT: per-lifecycle counts by function, "count function".
perlife() {
	profile "$1" "$lo" >"$tmp/a"
	profile "$1" "$hi" >"$tmp/b"
	awk -v n=$((hi - lo)) 'NR == FNR { a[$2] += $1; next } { b[$2] += $1 }
		END { for (f in b) printf "%.1f %s\n", (b[f] - a[f]) / n, f }' "$tmp/a" "$tmp/b"
}

printf '%-10s %12s %12s %12s\n' lifecycle total hashing rest
for v in unsealed sealed; do
	perlife "$v" >"$tmp/per.$v"
	awk -v v="$v" '{ t += $1 } $2 ~ /crypto\/|internal\/digest/ { h += $1 }
		END { printf "%-10s %12.0f %12.0f %12.0f\n", v, t, h, t - h }' "$tmp/per.$v"
done

if [ "$top" -gt 0 ]; then
	echo
	echo "unsealed: the $top functions with the most instructions of their own (hashing included), per lifecycle"
	# awk stops printing, not reading, at TOP: head would close the pipe
	# early, and sort's SIGPIPE fails the script under pipefail.
	sort -rn "$tmp/per.unsealed" | awk -v n="$top" 'NR <= n' |
		sed 's#github.com/lockertwin/lockertwin/##g; s#'"$root"'/##; s#/usr/local/go/src/##' |
		awk '{ printf "%9.0f  %s\n", $1, $2 }'
fi
