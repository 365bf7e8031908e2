#!/usr/bin/env bash
# Fetches Step 3.5 Flash's chat template (models/templates/StepFun3.5-Flash.jinja) from the llama-cpp-python
# 0.3.36 sdist on PyPI into Scripts/chat/work/ (git-ignored), for make_corpus.py.
set -euo pipefail
cd "$(dirname "$0")"
dest=work/StepFun3.5-Flash.jinja
[ -f "$dest" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d "$tmp"
tar -xzf "$tmp"/llama_cpp_python-0.3.36.tar.gz -C "$tmp" --wildcards '*/models/templates/StepFun3.5-Flash.jinja'
mkdir -p work
cp "$tmp"/llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/StepFun3.5-Flash.jinja "$dest"
echo "template in Scripts/chat/$dest"
