#!/usr/bin/env bash
# The whole test suite, from a fresh clone: dependencies (with the browser for the web UI test), llama.cpp's
# tokenizer vectors, swift test, then the SDK and browser tests against a running server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh --browser
bash Scripts/fetch-vocab.sh
swift build --build-tests
# Three test hosts in network namespaces for the multi-host tests (TestbedTests); where namespaces are not
# allowed the script says why and those tests report themselves skipped.
if bash Scripts/testbed/testbed.sh up 3; then
    trap 'bash Scripts/testbed/testbed.sh down' EXIT
else
    echo "test: no testbed (see the message above): the multi-host tests will be skipped" >&2
fi
swift test --skip-build
# The fuzz harnesses (Tests/Fuzz): the committed seeds replayed by the plain build, then a short libFuzzer
# pass of each (Scripts/fuzz.sh builds them with -sanitize=fuzzer,address in .build-fuzz).
.build/debug/FuzzGGUF Tests/Fuzz/corpus/gguf
.build/debug/FuzzTopology Tests/Fuzz/corpus/topology
.build/debug/FuzzTokenizer Tests/Fuzz/corpus/tokenizer
.build/debug/FuzzChat Tests/Fuzz/corpus/chat
.build/debug/FuzzHTTP Tests/Fuzz/corpus/http
bash Scripts/fuzz.sh all 30
# The openai and anthropic SDKs against `switchyard serve` (one process, and mpiexec -n 3).
bash Scripts/sdk/run.sh
# The web UI in headless Chromium (one process, and mpiexec -n 3).
bash Scripts/webui/run.sh
