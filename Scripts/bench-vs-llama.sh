#!/usr/bin/env bash
# Switchyard against llama.cpp's own tools (llama-bench, llama-batched-bench) on the same GGUF files, same
# threads, interleaved rounds: decode tg128, prefill pp512, batched decode at B = 1, 4, 8; llama.cpp default
# and --repack 0; medians with min-max; the probe's read bandwidth and F32 peak (Scripts/bench/vs_llama.py).
# Not part of CI. llama.cpp's tools come from ../shared/tools/llama-tools.sh (or LLAMA_BIN=dir).
# Models: bench-1gb synthetic at Q8_0 and Q4_0 (written by `switchyard synth`), and Q4_K_S quantized from
# the F16 synthetic by llama-quantize; or give GGUF paths.
#
# usage: Scripts/bench-vs-llama.sh [--threads N] [--rounds N] [MODEL.gguf ...]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2; rounds=3; models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) models+=("$1"); shift ;;
    esac
done
lb=${LLAMA_BIN:-$(bash ../shared/tools/llama-tools.sh | sed -n 's/^LLAMA_BIN=//p')}
swift build -c release --product switchyard >/dev/null
bin=.build/release/switchyard
if [ ${#models[@]} -eq 0 ]; then
    dir=${BENCH_DIR:-models}
    mkdir -p "$dir"
    for t in q8_0 q4_0; do
        [ -f "$dir/b1g-$t.gguf" ] || "$bin" synth --preset bench-1gb --type "$t" --out "$dir/b1g-$t.gguf" >/dev/null
        models+=("$dir/b1g-$t.gguf")
    done
    if [ ! -f "$dir/b1g-Q4_K_S.gguf" ]; then
        [ -f "$dir/b1g-f16.gguf" ] || "$bin" synth --preset bench-1gb --type f16 --out "$dir/b1g-f16.gguf" >/dev/null
        "$lb/llama-quantize" "$dir/b1g-f16.gguf" "$dir/b1g-Q4_K_S.gguf" Q4_K_S "$threads" >/dev/null 2>&1
    fi
    models+=("$dir/b1g-Q4_K_S.gguf")
fi
python3 Scripts/bench/vs_llama.py "$bin" "$lb" "$threads" "$rounds" "${models[@]}"
