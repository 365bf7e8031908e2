#!/usr/bin/env bash
# Builds Scripts/bench/packed-kernel-bench.c against the release build's kernel objects and runs it for each
# argument triple TYPE:ISA:NT (default: Q8_0, Q4_0, Q4_K on AVX2, 4 tokens and 1). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product switchyard >/dev/null
objs=.build/release/CKernels.build
out=$(mktemp -d)/packed-kernel-bench
cc -O2 -I Sources/CKernels/include Scripts/bench/packed-kernel-bench.c "$objs"/*.c.o -lm -lpthread -lnuma -o "$out"
runs=("$@"); [ ${#runs[@]} -gt 0 ] || runs=(8:1:4 2:1:4 12:1:4 8:1:1 2:1:1 12:1:1)
for r in "${runs[@]}"; do IFS=: read -r t i n <<<"$r"; "$out" "$t" "$i" "$n"; done
