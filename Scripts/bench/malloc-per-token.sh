#!/usr/bin/env bash
# Allocations per decoded token in steady state: two greedy generations of N1 and N2 tokens under the malloc
# counter (Scripts/bench/malloc-count.c); (calls(N2) - calls(N1)) / (N2 - N1). Model loading and prefill cancel.
# usage: Scripts/bench/malloc-per-token.sh MODEL.gguf [THREADS] [N1] [N2]
set -euo pipefail
cd "$(dirname "$0")/../.."
m=$1; t=${2:-2}; n1=${3:-16}; n2=${4:-80}
so=$(mktemp -d)/malloc-count.so
cc -O2 -shared -fPIC Scripts/bench/malloc-count.c -o "$so" -ldl
swift build -c release --product switchyard >/dev/null
count() {
    LD_PRELOAD=$so .build/release/switchyard generate -m "$m" --prompt-tokens 1,2,3,4 -n "$1" -t "$t" --ignore-eos 2>&1 >/dev/null |
        sed -n 's/^malloc-counter: \([0-9]*\) calls, \([0-9]*\) bytes$/\1 \2/p'
}
read -r c1 b1 < <(count "$n1"); read -r c2 b2 < <(count "$n2")
echo "model $m, $t threads: $(( (c2 - c1) / (n2 - n1) )) allocations and $(( (b2 - b1) / (n2 - n1) )) bytes per decoded token (tokens $n1 -> $n2)"
