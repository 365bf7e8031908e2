#!/usr/bin/env bash
# Fetches the source text of the training corpus: CPython 3.11's standard library (Debian bookworm's
# libpython3.11-stdlib: the .py files, code and docstrings) and its documentation (python3.11-doc: the
# reStructuredText sources under html/_sources), both under the PSF License 2.0 (Docs/MODEL.md). The exact
# versions are pinned and each .deb is checked against its SHA-256, so every machine trains on the same bytes;
# a mirror that no longer carries the pinned version is an error (set TRAIN_DEB_VERSION to choose another and
# record it). Unpacks into Scripts/train/work/debs/ (git-ignored). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
version=${TRAIN_DEB_VERSION:-3.11.2-6+deb12u9}
declare -A sha=(
    [libpython3.11-stdlib]=10f13e000ee757f5f2d2d3569f9e30546214a0c850acd78695feae373bfa3e53
    [python3.11-doc]=5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be
)
mkdir -p work/debs
cd work/debs
for pkg in libpython3.11-stdlib python3.11-doc; do
    arch=$([ "$pkg" = python3.11-doc ] && echo all || dpkg --print-architecture)
    deb="${pkg}_${version//:/%3a}_${arch}.deb"
    if [ ! -f "$deb" ]; then
        apt-get download "$pkg=$version" >/dev/null 2>&1 || {
            echo "fetch-data: cannot download $pkg=$version (apt-get download; is the Debian mirror reachable and does it still carry this version? set TRAIN_DEB_VERSION)" >&2
            exit 1
        }
    fi
    got=$(sha256sum "$deb" | cut -d' ' -f1)
    if [ -z "${TRAIN_DEB_VERSION:-}" ] && [ "$got" != "${sha[$pkg]}" ]; then
        echo "fetch-data: $deb has SHA-256 $got, expected ${sha[$pkg]}" >&2
        exit 1
    fi
    [ -d "$pkg" ] || { mkdir -p "$pkg.tmp" && dpkg-deb -x "$deb" "$pkg.tmp" && mv "$pkg.tmp" "$pkg"; }
done
echo "corpus sources: libpython3.11-stdlib and python3.11-doc $version in Scripts/train/work/debs"
