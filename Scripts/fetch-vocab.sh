#!/usr/bin/env bash
# Fetches llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf with .inp/.out) from the
# llama-cpp-python 0.3.36 sdist on PyPI into vocab/ (git-ignored; ~60 MB, too large to commit).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=vocab
if [ -f "$dest/.complete" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d "$tmp"
mkdir -p "$dest"
tar -xzf "$tmp"/llama_cpp_python-0.3.36.tar.gz -C "$tmp" --wildcards '*/vendor/llama.cpp/models/ggml-vocab-*'
cp "$tmp"/llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-* "$dest"/
touch "$dest/.complete"
echo "vocab test vectors in $dest/: $(ls "$dest" | grep -c '\.gguf$') vocabularies"
