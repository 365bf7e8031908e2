#!/usr/bin/env python3
"""The code and documentation corpus: CPython 3.11's standard library sources (.py, code and docstrings) and its
documentation sources (.rst.txt), from the pinned Debian packages that fetch-data.sh unpacks.

Each file is one document. About 5% of them, chosen by a hash of the path (so the choice does not depend on
the file list's order or on this machine), are held out for perplexity; the rest train. Files that are not
UTF-8, and test suites (Lib/test, Lib/*/tests: mostly generated data), are left out.

Writes JSON lines {"source": "code" | "docs", "path", "text"} to Scripts/train/work/corpus/{train,heldout}.jsonl.

Usage: python3 Scripts/train/corpus.py
"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEBS = os.path.join(HERE, "work", "debs")
OUT = os.path.join(HERE, "work", "corpus")
ROOTS = [("code", os.path.join(DEBS, "libpython3.11-stdlib", "usr", "lib", "python3.11"), ".py"),
         ("docs", os.path.join(DEBS, "python3.11-doc", "usr", "share", "doc", "python3.11", "html", "_sources"), ".rst.txt")]
HELD_OUT_EVERY = 20


def held_out(path):
    return int(hashlib.sha256(path.encode()).hexdigest(), 16) % HELD_OUT_EVERY == 0


def documents():
    for source, root, suffix in ROOTS:
        if not os.path.isdir(root):
            sys.exit(f"corpus: {root} is missing; run bash Scripts/train/fetch-data.sh")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in ("test", "tests", "idle_test", "__pycache__"))
            for name in sorted(filenames):
                if not name.endswith(suffix):
                    continue
                full = os.path.join(dirpath, name)
                if os.path.islink(full) or not os.path.isfile(full):  # links point outside the package
                    continue
                try:
                    text = open(full, encoding="utf-8").read()
                except UnicodeDecodeError:
                    continue
                if text.strip():
                    yield source, os.path.relpath(full, root), text


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {s: open(os.path.join(OUT, f"{s}.jsonl"), "w", encoding="utf-8") for s in ("train", "heldout")}
    counts = {}
    for source, path, text in documents():
        split = "heldout" if held_out(f"{source}/{path}") else "train"
        files[split].write(json.dumps({"source": source, "path": path, "text": text}, ensure_ascii=False) + "\n")
        n, b = counts.get((split, source), (0, 0))
        counts[(split, source)] = (n + 1, b + len(text.encode()))
    for f in files.values():
        f.close()
    for (split, source), (n, b) in sorted(counts.items()):
        print(f"{split} {source}: {n} files, {b / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
