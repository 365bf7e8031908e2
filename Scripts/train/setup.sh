#!/usr/bin/env bash
# Creates Scripts/train/.venv with the pinned training packages (requirements.txt, from PyPI) and fetches the
# pinned Debian packages the corpus comes from (fetch-data.sh). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
bash fetch-data.sh
