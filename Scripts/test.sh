#!/usr/bin/env bash
# The whole test suite, from a fresh clone: dependencies (with the browser for the web UI test), llama.cpp's
# tokenizer vectors, swift test, then the SDK and browser tests against a running server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh --browser
bash Scripts/fetch-vocab.sh
swift build --build-tests
swift test --skip-build
# The openai and anthropic SDKs against `switchyard serve` (one process, and mpiexec -n 3).
bash Scripts/sdk/run.sh
# The web UI in headless Chromium (one process, and mpiexec -n 3).
bash Scripts/webui/run.sh
