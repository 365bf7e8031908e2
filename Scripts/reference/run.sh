#!/usr/bin/env bash
# Rebuilds the reference fixtures under Tests/Fixtures from scratch: a venv with gguf==0.19.0,
# llama-cpp-python==0.3.36 (built from the sdist, CPU only) and numpy, then make_fixtures.py.
# Not run by CI (it compiles llama.cpp); its outputs are committed.
# Extra arguments go to make_fixtures.py (e.g. --shape custom --n-embd 128 --out /tmp/x).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q numpy gguf==0.19.0 scikit-build-core cmake ninja
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
        CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$venv/bin/pip" install -q --no-build-isolation \
        --no-binary llama-cpp-python llama-cpp-python==0.3.36
fi
"$venv/bin/python" "$here/make_fixtures.py" "$@"
