#!/usr/bin/env bash
# Soak: the load test for MINUTES on one process, then on 1 head + 2 workers under mpiexec (release build, the
# demo model, loopback only, bounded in time). Prints, per setup: each rank's resident memory (VmRSS) at the
# start (after a warm-up minute) and at the end, its growth in percent, and the load test's line per window
# (requests, time to first token and latency p50/p99, failed, lost).
# Usage: Scripts/soak.sh [MINUTES] [CLIENTS] [WINDOW_S] [single|cluster|both]
#        (defaults 60 minutes, 8 clients, 600 s windows, both setups; SOAK_WARMUP_MIN sets the warm-up, 1 minute)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-60}
CLIENTS=${2:-8}
WINDOW=${3:-600}
SETUPS=${4:-both}
case $SETUPS in single|cluster|both) ;; *) echo "soak.sh: setup must be single, cluster or both, not '$SETUPS'" >&2; exit 2;; esac
source Scripts/serve-lib.sh
demo_cluster_setup
MARK=soak-$$

# rss LABEL: "rank R pid P VmRSS kB" for every rank of this soak's server.
rss() {
    for p in $(pgrep -f "$PWD/$B serve"); do
        [ "$(readlink "/proc/$p/exe")" = "$(readlink -f "$B")" ] || continue  # not mpiexec
        tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "SY_SOAK=$MARK" || continue
        r=$(tr '\0' '\n' < "/proc/$p/environ" | sed -n 's/^PMI_RANK=//p')
        echo "$1 rank ${r:-0} pid $p $(awk '/VmRSS/ {print $2}' "/proc/$p/status") kB"
    done | sort
}

run() {
    local label=$1 launcher=$2; shift 2
    SY_SOAK=$MARK start_server "$T/$label.log" "$launcher" "$PWD/$B" -np 4 --max-queue 64 "$@"
    echo "soak: $label, $CLIENTS clients, $MINUTES min, windows of $WINDOW s; host $(nproc) cores; $(git rev-parse --short HEAD)"
    # A warm-up minute first: the first requests grow caches and pools that then stay.
    "$V/bin/python" Scripts/load/load_test.py "http://127.0.0.1:$SERVER_PORT" "$CLIENTS" "${SOAK_WARMUP_MIN:-1}" > /dev/null
    rss start > "$T/start"
    cat "$T/start"
    LOAD_WINDOW_S=$WINDOW "$V/bin/python" Scripts/load/load_test.py "http://127.0.0.1:$SERVER_PORT" "$CLIENTS" "$MINUTES" 24
    rss end > "$T/end"
    cat "$T/end"
    join <(awk '{print $3, $6}' "$T/start") <(awk '{print $3, $6}' "$T/end") \
        | awk '{printf "soak: rank %s: %d kB -> %d kB (%+.1f%%)\n", $1, $2, $3, ($3 - $2) * 100 / $2}'
    kill -INT "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
}
export SY_SOAK=$MARK
[ "$SETUPS" = cluster ] || run "single process" ""
[ "$SETUPS" = single ] || run "1 head + 2 workers" "mpiexec -n 3 -genv SY_SOAK $MARK" --topology "$T/1h2w.yaml"
