#!/usr/bin/env bash
# Decode speed, Switchyard vs llama.cpp, on the same synthetic Step 3.5-shaped GGUF, same thread count.
# Not part of CI. llama.cpp runs through llama-cpp-python 0.3.36 (built by Scripts/reference/run.sh,
# or any python with llama_cpp importable: LLAMA_PYTHON=/path/to/python).
#
# usage: Scripts/bench-vs-llama.sh [--type q8_0|q4_0] [--threads N] [--tokens N] [--model PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
type=q8_0; threads=2; ntok=64; model=""
while [ $# -gt 0 ]; do
    case "$1" in
        --type) type=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --tokens) ntok=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
py=${LLAMA_PYTHON:-Scripts/reference/.venv/bin/python}
"$py" -c "import llama_cpp" 2>/dev/null || { echo "llama_cpp not importable by $py: run Scripts/reference/run.sh or set LLAMA_PYTHON" >&2; exit 1; }
swift build -c release --product switchyard >/dev/null
bin=.build/release/switchyard
if [ -z "$model" ]; then
    model=${BENCH_DIR:-/tmp}/switchyard-bench-1gb-$type.gguf
    [ -f "$model" ] || "$bin" synth --preset bench-1gb --type "$type" --out "$model"
fi
prompt="1,2,3,4,5,6,7,8"
echo "model: $model ($(du -h "$model" | cut -f1)), threads: $threads, decode tokens: $ntok, CPU: $(lscpu | sed -n 's/^Model name: *//p')"

# Switchyard: greedy decode of $ntok tokens after an 8-token prompt; best of 3 runs.
sy_best=0
for i in 1 2 3; do
    r=$("$bin" generate -m "$model" --prompt-tokens "$prompt" -n "$((ntok + 1))" --ignore-eos --print-ids -t "$threads" --verbose 2>&1 >/dev/null \
        | sed -n 's/.*decode: .*(\([0-9.]*\) tokens\/s).*/\1/p')
    sy_best=$(python3 -c "print(max($sy_best, $r))")
done

# llama.cpp: the same prompt, then $ntok single-token evals (greedy), F16 KV default; best of 3 runs.
ll_best=$("$py" - "$model" "$threads" "$ntok" <<'PY'
import sys, time
import numpy as np
from llama_cpp import Llama
path, threads, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = Llama(model_path=path, n_ctx=512, n_batch=64, logits_all=True, n_threads=threads, n_threads_batch=threads, verbose=False)
best = 0.0
for _ in range(3):
    llm.reset()
    llm.eval([1, 2, 3, 4, 5, 6, 7, 8])
    tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    t0 = time.perf_counter()
    for _ in range(n):
        llm.eval([tok])
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    best = max(best, n / (time.perf_counter() - t0))
print(f"{best:.2f}")
PY
)
python3 - "$sy_best" "$ll_best" "$type" "$threads" <<'PY'
import sys
sy, ll, t, th = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"| engine | weights | threads | decode tok/s |")
print(f"|---|---|---|---|")
print(f"| switchyard | {t} | {th} | {sy:.2f} |")
print(f"| llama.cpp (llama-cpp-python 0.3.36) | {t} | {th} | {ll:.2f} |")
print(f"ratio switchyard / llama.cpp = {sy / ll:.2f}")
PY
