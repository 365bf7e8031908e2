#!/usr/bin/env bash
# Single process against 1 head + 1 worker under mpiexec, and micro-batch lanes (ping-pong) on 2 sequences.
# Usage: Scripts/bench-cluster.sh [MODEL.gguf] [EXPERTS] [N_PREDICT]
# Without a model it uses the embedded tiny default (16 experts). Prints the --verbose lines of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
B=.build/release/switchyard
[ -x "$B" ] || swift build -c release >/dev/null
MODEL=${1:-}
EXPERTS=${2:-16}
N=${3:-65}
M=()
[ -n "$MODEL" ] && M=(-m "$MODEL")
T=$(mktemp -d)
for mb in 1 2; do
    printf "experts: %s\nheads: 1\nworkers: 1\nthreads: 1\nmicro_batches: %s\n" "$EXPERTS" "$mb" > "$T/mb$mb.yaml"
done
ONE=(--prompt-tokens 1,2,3 -n "$N" --ignore-eos --print-ids --verbose)
TWO=(--prompt-tokens 1,2,3 --prompt-tokens 4,5,6 -n "$N" --ignore-eos --print-ids --verbose)
show() { grep -E "decode|total|exchange|memory" | sed 's/^/    /'; }
echo "model: ${MODEL:-embedded tiny}  n-predict: $N  host: $(nproc) cores"
for t in 1 2; do echo "single process, 1 sequence, $t thread(s):"; "$B" generate "${M[@]}" "${ONE[@]}" -t $t 2>&1 >/dev/null | show; done
echo "1 head + 1 worker, 1 sequence:"; mpiexec -n 2 "$B" generate "${M[@]}" "${ONE[@]}" --topology "$T/mb1.yaml" 2>&1 >/dev/null | show
echo "single process, 2 sequences one after another, 1 thread:"; "$B" generate "${M[@]}" "${TWO[@]}" -t 1 2>&1 >/dev/null | show
for mb in 1 2; do
    echo "1 head + 1 worker, 2 sequences, micro_batches $mb:"
    mpiexec -n 2 "$B" generate "${M[@]}" "${TWO[@]}" --topology "$T/mb$mb.yaml" 2>&1 >/dev/null | show
done
rm -rf "$T"
