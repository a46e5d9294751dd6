#!/usr/bin/env bash
# Instructions per hot-path operation, counted by valgrind's callgrind (simulated: the same
# binary and inputs give the same count whatever else the machine does), for the store and
# for the floor (the same statements through the SQLite C API). Issue 11's figure to quote
# for a ratio to the floor across runs and machines.
#
#   bash Benchmarks/callgrind.sh [ITERATIONS] [OPERATION...]
#   bash Benchmarks/callgrind.sh 2000 load-read5 load-read5+sealed save save+sealed   # encryption's share
#
# Each operation runs under callgrind after a fill and a warm-up that are not counted: the
# program zeroes the counters before ITERATIONS (default 2000) operations and dumps them
# after, every thread's work included. Repeat runs of the read operations agree within about
# 1%; save and touch moved by about 15% (their loops include checkpoints, and which WAL
# read-mark a load takes after a commit depends on timing under valgrind). Needs valgrind
# (installed when missing: its package also carries the client requests' header).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
iterations=${1:-2000}
shift || true
operations=("$@")
[ ${#operations[@]} -gt 0 ] || operations=(floor-lookup load load-read5 floor-miss miss floor-upsert save touch)

if ! command -v valgrind >/dev/null; then
    echo "callgrind.sh: installing valgrind" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >&2
fi
swift build -c release --product hot-path-ops >&2
binary=$(swift build -c release --show-bin-path)/hot-path-ops
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Valgrind 3.19 (Debian 12) cannot read the DWARF 5 that Swift 6.3 writes; symbols suffice.
objcopy --strip-debug "$binary" "$work/hot-path-ops"

# Instructions of ITERATIONS runs of OPERATION, from the dump the program asks for.
count() {
    local out="$work/callgrind.$1"
    if ! TMPDIR="$work" valgrind --tool=callgrind --callgrind-out-file="$out" "$work/hot-path-ops" "$1" "$iterations" 2>"$out.log"; then
        echo "callgrind.sh: $1 failed:" >&2
        tail -n 20 "$out.log" >&2
        exit 1
    fi
    local total
    total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out.1" 2>/dev/null || true)
    [ -n "$total" ] || { echo "callgrind.sh: no measured dump ($out.1)" >&2; exit 1; }
    echo "$total"
}

declare -A per_op
printf '%-14s %16s\n' operation "instructions/op"
for operation in "${operations[@]}"; do
    per_op[$operation]=$(( $(count "$operation") / iterations ))
    printf '%-14s %16d\n' "$operation" "${per_op[$operation]}"
done

ratio() { # NAME STORE FLOOR
    if [ -n "${per_op[$2]:-}" ] && [ -n "${per_op[$3]:-}" ] && [ "${per_op[$3]}" -gt 0 ]; then
        awk -v s="${per_op[$2]}" -v f="${per_op[$3]}" -v n="$1" 'BEGIN { printf "%-34s %6.2f×\n", n, s / f }'
    fi
}
echo
ratio "load vs floor lookup" load floor-lookup
ratio "load + 5 attributes vs floor lookup" load-read5 floor-lookup
ratio "miss vs floor miss" miss floor-miss
ratio "save vs floor UPSERT" save floor-upsert
ratio "touch vs floor UPSERT" touch floor-upsert
# OPERATION+sealed: the same on rows sealed with AES-256-GCM (encryption at rest).
ratio "load + 5 attributes, sealed vs plain" load-read5+sealed load-read5
ratio "save, sealed vs plain" save+sealed save
