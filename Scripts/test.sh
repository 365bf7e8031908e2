#!/usr/bin/env bash
# The whole test suite, from a fresh clone: dependencies, llama.cpp's tokenizer vectors, then swift test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
bash Scripts/fetch-vocab.sh
swift build --build-tests
swift test --skip-build
# The openai and anthropic SDKs against `switchyard serve` (one process, and mpiexec -n 3).
bash Scripts/sdk/run.sh
