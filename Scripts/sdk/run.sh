#!/usr/bin/env bash
# The openai and anthropic SDKs (PyPI, in Scripts/sdk/.venv) against `switchyard serve` on loopback: one
# process, and `mpiexec -n 3` (1 head + 2 workers). Builds the debug binary if needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=.build/debug/switchyard
[ -x "$B" ] || swift build >/dev/null
source Scripts/serve-lib.sh
ensure_venv "openai, anthropic" "openai>=1.50" "anthropic>=0.40"
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
printf "experts: 16\nheads: 1\nworkers: 2\n" > "$T/1h2w.yaml"
# serve LABEL LAUNCHER [ARGS...]: start (under LAUNCHER, e.g. "mpiexec -n 3"), run the SDK tests, stop.
serve() {
    local label=$1 launcher=$2; shift 2
    start_server "$T/$label.log" "$launcher" "$B" -m builtin:tiny --api-key sdk-key "$@"
    echo "sdk: $label (port $SERVER_PORT)"
    "$V/bin/python" Scripts/sdk/test_sdk.py "http://127.0.0.1:$SERVER_PORT" sdk-key
    kill -INT "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
}
serve single ""
serve cluster "mpiexec -n 3" --topology "$T/1h2w.yaml"
