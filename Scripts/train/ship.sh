#!/usr/bin/env bash
# From a finished training run (Scripts/train/work/run) to the shipped demo model and every figure of
# Docs/MODEL.md, in order:
#   1. export.py: the Q8_0 file Switchyard ships (Sources/DemoModel/), its F32 twin (the same values, for
#      llama.cpp's golden logits) and the F32 export (the JAX check);
#   2. the release build (it embeds the new file);
#   3. fixtures.py: Tests/Fixtures/demo (held-out windows with JAX's perplexity, llama.cpp's logits, prompts);
#   4. check.py: llama.cpp against JAX and Switchyard against llama.cpp on the F32 export, and the tokenizers;
#   5. evaluate.py: chat and tool-call shares through `switchyard serve`, MTP acceptance and speed by --draft;
#   6. the router's load (generate --expert-stats on held-out prompts) and `tune`'s balance on it;
#   7. plot.py and a copy of the run's config, loss log and held-out perplexity into Scripts/train/run/.
# LLAMA_PYTHON: a Python with llama-cpp-python 0.3.36 (default: Scripts/reference/.venv, which
# Scripts/reference/run.sh builds); LLAMA_CPP_LIB_PATH is passed on.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=Scripts/train/.venv/bin/python
W=Scripts/train/work
LLAMA_PYTHON=${LLAMA_PYTHON:-Scripts/reference/.venv/bin/python}
[ -x "$PY" ] || { echo "ship: run bash Scripts/train/setup.sh first" >&2; exit 2; }
[ -f "$W/run/params.npz" ] || { echo "ship: no trained run in $W/run (Scripts/train/train.py)" >&2; exit 2; }
"$LLAMA_PYTHON" -c "import llama_cpp" 2>/dev/null || { echo "ship: $LLAMA_PYTHON lacks llama-cpp-python (bash Scripts/reference/run.sh --help builds it)" >&2; exit 2; }

$PY Scripts/train/export.py --type q8_0 --out Sources/DemoModel/switchyard-demo-q8_0.gguf
$PY Scripts/train/export.py --type q8_0-twin --out "$W/twin.gguf"
$PY Scripts/train/export.py --type f32 --out "$W/f32.gguf"
swift build -c release >/dev/null
$PY Scripts/train/fixtures.py --twin "$W/twin.gguf" --llama-python "$LLAMA_PYTHON"
$PY Scripts/train/check.py --gguf "$W/f32.gguf" --llama-python "$LLAMA_PYTHON" --report "$W/check.json"
$PY Scripts/train/evaluate.py --gguf Sources/DemoModel/switchyard-demo-q8_0.gguf --out "$W/evaluate.json"
$PY Scripts/train/router.py --out "$W/router.json"
mkdir -p Scripts/train/run
cp "$W/run/config.json" "$W/run/loss.tsv" "$W/run/heldout.json" Scripts/train/run/
$PY Scripts/train/plot.py --run Scripts/train/run --out Docs/model-loss.svg
echo "ship: done; figures in $W/check.json, $W/evaluate.json, $W/router.json"
