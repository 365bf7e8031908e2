#!/usr/bin/env bash
# A worker killed under load, and no request lost: `switchyard supervise` in front of `mpiexec -n 3 switchyard
# serve` (1 head + 2 workers on this host, the demo model), N streaming clients for S seconds on loopback
# (Scripts/load/load_test.py), and kill -9 of rank 2 every K seconds. Prints the load test's counts (a request
# is lost when it got no answer at all), the front's counters (restarts, requests retried, outages in seconds)
# and, per kill, the seconds until /health answered 200 again.
# Usage: Scripts/kill-under-load.sh [CLIENTS] [SECONDS] [KILL_EVERY]   (defaults 8 clients, 120 s, every 30 s)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-8}
SECS=${2:-120}
EVERY=${3:-30}
source Scripts/serve-lib.sh
demo_cluster_setup
MARK=kul-$$
"$B" supervise --port 0 -- mpiexec -n 3 -genv SY_KILL_MARK "$MARK" "$PWD/$B" serve --topology "$T/1h2w.yaml" -np 4 2> "$T/sup.log" &
SUP=$!
PORT=""
for _ in $(seq 600); do
    PORT=$(sed -n 's|.*supervise: listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$T/sup.log" | head -1)
    [ -n "$PORT" ] && curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.2
done
echo "kill-under-load: $CLIENTS streaming clients for $SECS s, kill -9 of rank 2 every $EVERY s; host $(nproc) cores; $(git rev-parse --short HEAD)"
rank2() {
    for p in $(pgrep -f "$PWD/$B serve"); do
        tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "SY_KILL_MARK=$MARK" || continue
        tr '\0' '\n' < "/proc/$p/environ" | grep -qx "PMI_RANK=2" && { echo "$p"; return; }
    done
}
START=$(date +%s)
(
    while true; do
        sleep "$EVERY"
        [ "$(( $(date +%s) - START + 15 ))" -lt "$SECS" ] || break  # no kill in the last 15 s
        v=$(rank2)
        [ -n "$v" ] || continue
        t0=$(date +%s.%N)
        kill -9 "$v"
        sleep 0.3
        until curl -sf -m 2 "http://127.0.0.1:$PORT/health" >/dev/null; do sleep 0.1; done
        echo "kill-under-load: killed rank 2 (pid $v); /health 200 again after $(echo "$(date +%s.%N) - $t0" | bc) s"
    done
) &
KILLER=$!
"$V/bin/python" Scripts/load/load_test.py "http://127.0.0.1:$PORT" "$CLIENTS" "$(echo "$SECS / 60" | bc -l)" 24
kill "$KILLER" 2>/dev/null || true
echo "front: $(curl -s "http://127.0.0.1:$PORT/supervisor")"
kill -INT "$SUP"
wait "$SUP" 2>/dev/null || true
grep -E "supervise:|ended on signal" "$T/sup.log" | head -20
