#!/usr/bin/env bash
# The web UI in headless Chromium against `switchyard serve --draft 1` on loopback: one process, and
# `mpiexec -n 3` (1 head + 2 workers). Needs Debian's chromium and chromium-driver (Scripts/setup.sh
# --browser installs them) and selenium (PyPI, in the shared venv). Screenshots go to Scripts/webui/out/.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=.build/debug/switchyard
[ -x "$B" ] || swift build >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null || bash Scripts/setup.sh --browser
source Scripts/serve-lib.sh
ensure_venv "selenium" "selenium>=4.10"
mkdir -p Scripts/webui/out
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
printf "experts: 16\nheads: 1\nworkers: 2\n" > "$T/1h2w.yaml"
# ui LABEL WORKERS LAUNCHER [ARGS...]: start the server, run the browser test, stop.
ui() {
    local label=$1 workers=$2 launcher=$3; shift 3
    start_server "$T/$label.log" "$launcher" "$B" -m builtin:tiny --api-key ui-key --draft 1 "$@"
    echo "webui: $label (port $SERVER_PORT)"
    "$V/bin/python" Scripts/webui/test_webui.py "http://127.0.0.1:$SERVER_PORT" ui-key "Scripts/webui/out/webui-$label.png" "$workers"
    kill -INT "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
}
ui single 0 ""
ui cluster 2 "mpiexec -n 3" --topology "$T/1h2w.yaml"
