#!/usr/bin/env bash
# Instructions and allocations per load through the PostgreSQL backend (`SessionStore.load`
# of a warm session) and per postgres-nio prepared query (the driver floor), counted by
# valgrind's callgrind: the same binary and inputs give about the same count whatever else
# the machine does, so this judges a change to the client's path where requests/s on a
# shared machine cannot. Only the client runs under valgrind; the server's work is not
# counted.
#
#   eval "$(bash .ci/postgres.sh start "$(mktemp -d)" plain)"
#   swift build -c release --traits Postgres --product bench
#   bash Benchmarks/postgres-callgrind.sh "$SESSION_STORE_POSTGRES_URL" [SMALL,LARGE] [OPERATION...]
#
# Each OPERATION (default: hit driver-hit; any of `bench --profile`'s) runs twice as
# `bench --profile OPERATION --iterations N`, with N = SMALL and LARGE (default 400,2000):
# the difference of the two totals over the difference of N is one operation's count, the
# fill, connections and warm-up cancelled. Every thread is counted (the event loop's too).
# Allocations are the calls to malloc. Set KEEP=DIR to keep the callgrind files for
# callgrind_annotate.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
url=${1:?usage: postgres-callgrind.sh URL [SMALL,LARGE] [OPERATION...]}
counts=${2:-400,2000}
shift 2 || shift $#
operations=("$@")
[ ${#operations[@]} -gt 0 ] || operations=(hit driver-hit)
small=${counts%,*}
large=${counts#*,}
binary=$(swift build -c release --traits Postgres --show-bin-path)/bench
[ -x "$binary" ] || { echo "postgres-callgrind.sh: build bench first: swift build -c release --traits Postgres --product bench" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "postgres-callgrind.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Valgrind 3.19 (Debian 12) cannot read the DWARF 5 that Swift 6.3 writes; symbols suffice.
objcopy --strip-debug "$binary" "$work/bench"

# "INSTRUCTIONS MALLOCS" of one run of OPERATION with N iterations.
measure() {
    local out="$work/callgrind.$1.$2"
    # Deterministic hashing: the same dictionary work in every run.
    if ! SWIFT_DETERMINISTIC_HASHING=1 valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$work/bench" --backend postgres --url "$url" --profile "$1" --iterations "$2" >"$out.log" 2>&1; then
        echo "postgres-callgrind.sh: $1 $2 failed:" >&2
        tail -n 20 "$out.log" >&2
        exit 1
    fi
    [ -z "${KEEP:-}" ] || { mkdir -p "$KEEP"; cp "$out" "$KEEP/"; }
    python3 - "$out" <<'PY'
import re, sys
names, total, mallocs, current = {}, 0, 0, None
for line in open(sys.argv[1]):
    if line.startswith(("summary:", "totals:")):
        total = int(line.split()[1])
    elif line.startswith("cfn="):
        m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.strip())
        if m.group(2): names[m.group(1)] = m.group(2)
        current = names.get(m.group(1))
    elif line.startswith("calls=") and current == "malloc":
        mallocs += int(line.split("=")[1].split()[0])
    elif line.startswith("fn="):
        m = re.match(r"fn=\((\d+)\)(?: (.*))?", line.strip())
        if m and m.group(2): names[m.group(1)] = m.group(2)
print(total, mallocs)
PY
}

declare -A per_op allocs
printf '%-12s %18s %18s\n' operation "instructions/op" "mallocs/op"
for operation in "${operations[@]}"; do
    # Assignments, so that a failed run stops the script (set -e).
    first=$(measure "$operation" "$small")
    second=$(measure "$operation" "$large")
    read -r i1 m1 <<<"$first"
    read -r i2 m2 <<<"$second"
    per_op[$operation]=$(( (i2 - i1) / (large - small) ))
    allocs[$operation]=$(awk -v a="$m1" -v b="$m2" -v n="$((large - small))" 'BEGIN { printf "%.1f", (b - a) / n }')
    printf '%-12s %18d %18s\n' "$operation" "${per_op[$operation]}" "${allocs[$operation]}"
done
if [ -n "${per_op[hit]:-}" ] && [ -n "${per_op[driver-hit]:-}" ]; then
    awk -v s="${per_op[hit]}" -v f="${per_op[driver-hit]}" 'BEGIN { printf "\nstore hit ÷ postgres-nio prepared: %.2f× instructions (%d more per load)\n", s / f, s - f }'
fi
