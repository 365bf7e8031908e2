# Sourced by Scripts/sdk/run.sh and Scripts/load-test.sh: start `switchyard serve` on a free loopback port.
# start_server LOG LAUNCHER BINARY [SERVE ARGS...]: runs `LAUNCHER BINARY serve --port 0 ARGS` in the
# background, waits (60 s at most) for the port it prints, and sets SERVER_PID and SERVER_PORT.
start_server() {
    local log=$1 launcher=$2 bin=$3; shift 3
    $launcher "$bin" serve --port 0 "$@" 2> "$log" &
    SERVER_PID=$!
    SERVER_PORT=""
    for _ in $(seq 600); do
        SERVER_PORT=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\).*|\1|p' "$log" | head -1)
        [ -n "$SERVER_PORT" ] && return 0
        sleep 0.1
    done
    cat "$log" >&2
    echo "switchyard serve did not start" >&2
    return 1
}

# The Python venv the SDK and load scripts share (git-ignored).
V=Scripts/sdk/.venv
# ensure_venv "MOD1, MOD2" PACKAGE...: creates the venv if missing and installs PACKAGEs unless the modules import.
ensure_venv() {
    local imports=$1; shift
    [ -x "$V/bin/python" ] || python3 -m venv "$V"
    "$V/bin/python" -c "import $imports" 2>/dev/null || "$V/bin/pip" install --quiet "$@"
}

# demo_cluster_setup: for the scripts that serve the demo model on 1 head + 2 workers (kill-under-load, soak):
# the release binary as B (built if stale), the venv with httpx, a scratch directory T removed at exit with
# the script's background jobs, and T/1h2w.yaml (the demo model's 8 experts on two workers).
demo_cluster_setup() {
    B=.build/release/switchyard
    bash Scripts/setup.sh
    # Quiet when it builds; the compiler's errors (on stdout) are shown when it does not.
    local log
    log=$(mktemp)
    if ! swift build -c release --product switchyard > "$log" 2>&1; then
        grep -E "error" "$log" | head -20 >&2
        echo "serve-lib: the release build failed (log: $log)" >&2
        return 1
    fi
    rm -f "$log"
    ensure_venv httpx httpx
    T=$(mktemp -d)
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
    printf "experts: 8\nheads: 1\nworkers: 2\nthreads: 1\n" > "$T/1h2w.yaml"
}
