#!/usr/bin/env bash
# kill -9 of a worker under plain mpiexec, as users launch (no wrapper, no `switchyard launch`): N trials with
# and N without -disable-auto-cleanup. Counts the trials whose stderr names the killed rank, the trials that
# blamed a surviving rank, and how long mpiexec took to end after the kill (issue 16's acceptance: 20 of 20,
# within 30 s). Also checks that no rank or witness/canary process is left.
# Usage: bash Scripts/fault-trials.sh [N=20]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
B=$PWD/.build/release/switchyard
[ -x "$B" ] || swift build -c release >/dev/null
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
printf "experts: 16\nheads: 1\nworkers: 2\nthreads: 1\n" > "$T/t.yaml"

rank_pid() {  # the switchyard rank with PMI_RANK=$1 of this script's job
    for p in $(pgrep -f "switchyard generate -m builtin:tiny --topology $T/t.yaml" || true); do
        if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "PMI_RANK=$1"; then echo "$p"; return; fi
    done
}

echo "host: $(nproc) cores; $(date -u +%FT%TZ); MPICH $(mpichversion 2>/dev/null | sed -n 's/^MPICH Version: *//p' | tr -d '\t'); $N trials per mode"
for mode in "" "-disable-auto-cleanup"; do
    named=0 blamed=0 left=0 slowest=0
    for i in $(seq 1 "$N"); do
        mpiexec $mode -n 3 "$B" generate -m builtin:tiny --topology "$T/t.yaml" -n 1000000 --ignore-eos --print-ids \
            > "$T/out" 2> "$T/err" &
        job=$!
        for _ in $(seq 1 300); do [ "$(wc -l < "$T/out")" -gt 40 ] && break; sleep 0.1; done
        victim=$(rank_pid 2)
        t0=$(date +%s.%N)
        kill -9 "$victim"
        wait "$job" || true
        t1=$(date +%s.%N)
        sleep 0.5
        took=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
        slowest=$(python3 -c "print(max($slowest, $took))")
        grep -qE "rank 2 \(.*\) ended on signal 9|no answer from rank 2" "$T/err" && named=$((named + 1))
        grep -qE "rank [01] \(.*\) ended on signal" "$T/err" && blamed=$((blamed + 1))
        if [ -n "$(rank_pid 0)$(rank_pid 1)$(pgrep -f 'switchyard __(witness|canary)' || true)" ]; then left=$((left + 1)); fi
        echo "  mpiexec ${mode:-(default)} trial $i: ended $took s after the kill; $(grep -m1 -E 'rank 2|no answer' "$T/err" || echo 'NOTHING NAMED')"
    done
    echo "mpiexec ${mode:-(default)}: rank 2 named in $named/$N trials, a survivor blamed in $blamed, processes left after $left, slowest end ${slowest} s after the kill"
done
