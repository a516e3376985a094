#!/usr/bin/env bash
# perf.sh [RUNS] — the two performance goals, measured the way the closing
# notes measure them: RUNS rounds (default 10), each a city-network month
# (`lockersim run scenarios/city-network.yaml`, goal ≤ 30 s wall on two
# cores) followed by BenchmarkLifecycle/unsealed (goal ≤ 2,000 ns, i.e.
# ≥ 500,000 lifecycles/s per core). Prints every round, then the spread.
#
# lockersim is built as `go build` builds it, with the profile-guided
# optimisation of its default.pgo; the benchmark is built with the same
# profile, so that it measures the core lockersim runs (lifecycle_ns), and
# also without it (nopgo_ns), which is what a plain `go test -bench` gives.
#
# One run says little on a shared host: its speed drifts by a third from one
# minute to the next, so a figure worth quoting is a distribution over many
# rounds taken over a while, with the two measurements interleaved so that
# both see the same phases. `make perf RUNS=40` takes about 20 minutes.
set -euo pipefail

runs=${1:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$root"
go build -o "$tmp/lockersim" ./sim/cmd/lockersim
go test -c -pgo=sim/cmd/lockersim/default.pgo -o "$tmp/controller.test" ./controller
go test -c -pgo=off -o "$tmp/nopgo.test" ./controller

# field NAME FILE: the number after "NAME": in a JSON file.
field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p" "$2" | head -1; }

# lifecycle BINARY: BenchmarkLifecycle/unsealed's ns/op from $tmp/BINARY.test.
lifecycle() {
	"$tmp/$1.test" -test.run '^$' -test.bench '^BenchmarkLifecycle$/^unsealed$' |
		awk '/^BenchmarkLifecycle/ {print $3}'
}

TIMEFORMAT='%U %S' # what `time` prints: user and system CPU seconds
printf '%-8s %12s %12s %16s %12s\n' round city_wall_s city_cpu_s lifecycle_ns nopgo_ns
for i in $(seq "$runs"); do
	if ! { time "$tmp/lockersim" run scenarios/city-network.yaml -json >"$tmp/city.json" 2>"$tmp/err"; } 2>"$tmp/cpu"; then
		cat "$tmp/err" >&2
		exit 1
	fi
	wall=$(field wall_seconds "$tmp/city.json")
	cpu=$(awk '{printf "%.2f", $1 + $2}' "$tmp/cpu")
	# The two builds take turns at running first after the city month.
	if ((i % 2)); then
		ns=$(lifecycle controller)
		nopgo=$(lifecycle nopgo)
	else
		nopgo=$(lifecycle nopgo)
		ns=$(lifecycle controller)
	fi
	printf '%-8s %12s %12s %16s %12s\n' "$i" "$wall" "$cpu" "$ns" "$nopgo"
	echo "$wall $ns $nopgo" >>"$tmp/rounds"
done

# spread COLUMN GOAL UNIT: min, median, max and how many rounds met the goal.
spread() {
	awk -v c="$1" '{print $c}' "$tmp/rounds" | sort -n | awk -v goal="$2" -v unit="$3" '
		{ v[NR] = $1; if ($1 <= goal) met++ }
		END { med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "min %s, median %g, max %s %s; %d of %d rounds within %s %s\n",
			v[1], med, v[NR], unit, met + 0, NR, goal, unit }'
}
echo
echo "city month (engine block wall): $(spread 1 30 s)"
echo "lifecycle (unsealed):           $(spread 2 2000 ns)"
echo "lifecycle (unsealed, no PGO):   $(spread 3 2000 ns)"
