#!/usr/bin/env bash
# Decode-time attention cost against context on the embedded tiny model (window 64): full-attention layers
# read every cached position, sliding-window layers a fixed ring. Real prefill to each context, then 32
# decode steps; prints one row per context. Usage: Scripts/attention-context.sh [threads] [contexts...]
set -euo pipefail
cd "$(dirname "$0")/.."
B=.build/release/switchyard
[ -x "$B" ] || swift build -c release >/dev/null
T=${1:-1}; shift || true
CTX=("${@:-512 1024 2048 4096 8192}")
[ $# -gt 0 ] && CTX=("$@") || CTX=(512 1024 2048 4096 8192)
echo "| context | decode tok/s | full-attention layer, us/token | sliding-window layer, us/token |"
echo "|---|---|---|---|"
for c in "${CTX[@]}"; do
    P=$(python3 -c "print(','.join(str((i*37+5)%500) for i in range($c)))")
    out=$("$B" generate --prompt-tokens "$P" -n 33 --print-ids --ignore-eos -t "$T" --verbose -c $((c + 64)) 2>&1 >/dev/null)
    tps=$(echo "$out" | sed -n 's/.*decode: .*(\([0-9.]*\) tokens\/s).*/\1/p')
    full=$(echo "$out" | sed -n 's/.*full layers \([0-9.]*\) us.*/\1/p')
    swa=$(echo "$out" | sed -n 's/.*sliding-window layers \([0-9.]*\) us.*/\1/p')
    echo "| $c | $tps | $full | $swa |"
done
