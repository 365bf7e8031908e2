#!/usr/bin/env bash
# Load: N concurrent streaming clients for M minutes against `switchyard serve` on loopback, in one process
# and as 1 head + 2 workers under mpiexec (release build, the random-weight tiny model unless -m is given after --).
# Usage: Scripts/load-test.sh [CLIENTS] [MINUTES] [-- SERVE ARGS...]   (defaults 32 clients, 10 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-32}
MINUTES=${2:-10}
shift $(( $# > 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
# The tiny model (16 experts, as the topology below says) unless the serve arguments name one.
case " $* " in *" -m "*|*" --model "*) ;; *) set -- -m builtin:tiny "$@" ;; esac
B=.build/release/switchyard
[ -x "$B" ] || swift build -c release >/dev/null
source Scripts/serve-lib.sh
ensure_venv httpx httpx
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
printf "experts: 16\nheads: 1\nworkers: 2\nthreads: 1\n" > "$T/1h2w.yaml"
run() {
    local label=$1 launcher=$2; shift 2
    start_server "$T/$label.log" "$launcher" "$B" -np 8 --max-queue 64 "$@"
    echo "load: $label, $CLIENTS clients, $MINUTES min, host $(nproc) cores"
    "$V/bin/python" Scripts/load/load_test.py "http://127.0.0.1:$SERVER_PORT" "$CLIENTS" "$MINUTES"
    kill -INT "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
}
run "single process" "" "$@"
run "1 head + 2 workers" "mpiexec -n 3" --topology "$T/1h2w.yaml" "$@"
