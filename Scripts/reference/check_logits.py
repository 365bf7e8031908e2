#!/usr/bin/env python3
"""Compares `switchyard logits` with llama.cpp on any step35 GGUF (an unseen shape, a real file).

usage: check_logits.py MODEL.gguf --tokens 5,17,200 [--switchyard PATH] [--twin TWIN.gguf]
Runs llama.cpp (llama-cpp-python, F32 KV, no flash attention) on TWIN (default: MODEL) and
`switchyard logits` on MODEL, then prints max |Δlogit| and whether argmax agrees at every position.
Exit status 1 when max |Δ| > --tol (default 1e-3).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--twin", default=None, help="F32 twin for llama.cpp (quantized files: same weights dequantized)")
    ap.add_argument("--switchyard", default=os.path.join(os.path.dirname(__file__), "..", "..", ".build", "release", "switchyard"))
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    toks = [int(t) for t in a.tokens.split(",")]
    from llama_cpp import Llama
    llm = Llama(model_path=a.twin or a.model, n_ctx=max(256, len(toks) + 8), n_batch=512, n_ubatch=512, logits_all=True,
                type_k=0, type_v=0, flash_attn=False, n_threads=a.threads, verbose=False)
    llm.eval(toks)
    ref = np.array(llm.scores[: len(toks)], dtype=np.float32)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "logits.f32")
        subprocess.run([a.switchyard, "logits", "--model", a.model, "--tokens", a.tokens, "--out", out, "-t", str(a.threads)], check=True)
        got = np.fromfile(out, dtype="<f4").reshape(len(toks), -1)
    diff = float(np.abs(got - ref).max())
    same = bool((got.argmax(1) == ref.argmax(1)).all())
    print(f"positions {len(toks)}  vocab {ref.shape[1]}  max|Δlogit| {diff:.3g}  argmax identical: {same}")
    sys.exit(0 if diff <= a.tol else 1)


if __name__ == "__main__":
    main()
