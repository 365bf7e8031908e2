#!/usr/bin/env python3
"""Writes the demo model's test fixtures, Tests/Fixtures/demo/, from the training run and the shipped GGUF.

- `demo.json`:
  - `perplexity`: held-out token windows (code/docs and conversations, never trained on) and JAX's perplexity
    on them with the values the shipped Q8_0 file holds (`export.py --type q8_0-twin`). The tests compute
    Switchyard's on the shipped file and hold it within 5% of this recorded value.
  - `golden`: a held-out prompt past the sliding window, llama.cpp's (llama-cpp-python 0.3.36, F32 KV, no
    flash attention) logits on the Q8_0 twin at some positions (`demo.logits.f32`, rows in `positions`), its
    greedy continuation, and the largest |JAX - llama.cpp| on the same prompt.
  - `chat` and `tools`: the first 20 held-out conversations of each kind, cut before the assistant's first
    turn, with the tools they offer (as `evaluate.py` sends them).

Usage: Scripts/train/.venv/bin/python Scripts/train/fixtures.py --twin TWIN.gguf [--run work/run]
       [--llama-python PY] [--out Tests/Fixtures/demo]
(LLAMA_CPP_LIB_PATH is passed on to the llama-cpp-python interpreter.)
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import jax.numpy as jnp
import numpy as np
import optax

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import check as C  # noqa: E402
import evaluate as E  # noqa: E402
import export as X  # noqa: E402
import model as M  # noqa: E402

WORK = os.path.join(HERE, "work")
LLAMA = """
import json, sys, numpy as np
sys.path.insert(0, sys.argv[4])
from make_fixtures import llama_reference
l, gen = llama_reference(sys.argv[1], [int(x) for x in sys.argv[2].split(",")], int(sys.argv[5]), 2)
np.save(sys.argv[3], l)
json.dump(gen, open(sys.argv[3] + ".json", "w"))
"""


def windows(stream, n, t):
    """n windows of t tokens spread evenly over a held-out stream."""
    step = (len(stream) - t) // n
    return [stream[i * step:i * step + t].tolist() for i in range(n)]


def perplexity(cfg, params, rows):
    """exp of the mean next-token cross-entropy over every position of every row (each row its own sequence)."""
    b = jnp.asarray(rows, jnp.int32)
    logits = M.forward(cfg, params, b[:, :-1])[0]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, b[:, 1:])
    return float(math.exp(float(ce.mean())))


def twin_params(params):
    """The run's parameters as the shipped Q8_0 file holds them (the matrices through Q8_0 and back)."""
    out = {}
    for k, v in params.items():
        w = X.ggml_array(k, v)
        if not X.keeps_f32(k, w) and w.shape[-1] % 32 == 0:
            w = X.q8_0_values(w)
            v = w if (k == "token_embd.weight" or w.ndim == 1) else np.swapaxes(w, -1, -2)
        out[k] = jnp.asarray(np.asarray(v, np.float32))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--twin", required=True, help="export.py --type q8_0-twin output")
    ap.add_argument("--run", default=os.path.join(WORK, "run"))
    ap.add_argument("--out", default=os.path.join(ROOT, "Tests", "Fixtures", "demo"))
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--llama-python", default=os.path.join(ROOT, "Scripts", "reference", ".venv", "bin", "python"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cfg = M.load_config(a.run)
    params = twin_params(dict(np.load(os.path.join(a.run, "params.npz"))))
    held = np.load(os.path.join(WORK, "tokens-heldout.npz"))

    code_rows, chat_rows = windows(held["code"], 8, a.window), windows(held["chat"], 4, a.window)
    ppl = {"window": a.window, "code_docs": code_rows, "chat": chat_rows,
           "jax_code_docs": perplexity(cfg, params, code_rows), "jax_chat": perplexity(cfg, params, chat_rows)}

    toks = C.sample_tokens(a.tokens)
    jax_logits = np.asarray(M.forward(cfg, params, jnp.asarray([toks]))[0][0], np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        npy = os.path.join(tmp, "llama.npy")
        subprocess.run([a.llama_python, "-c", LLAMA, a.twin, ",".join(map(str, toks)), npy,
                        os.path.join(ROOT, "Scripts", "reference"), "16"], check=True)
        llama = np.load(npy)
        greedy = json.load(open(npy + ".json"))
    positions = sorted(set(range(0, len(toks), 8)) | set(range(len(toks) - 8, len(toks))))
    llama[positions].astype("<f4").tofile(os.path.join(a.out, "demo.logits.f32"))
    golden = {"prompt": toks, "positions": positions, "greedy": greedy, "n_vocab": cfg.vocab,
              "reference": "llama-cpp-python 0.3.36 on the Q8_0 twin (F32 KV, no flash attention)",
              "max_abs_jax_vs_llama": float(np.abs(jax_logits - llama).max())}
    doc = {"model": "Sources/DemoModel/switchyard-demo-q8_0.gguf", "perplexity": ppl, "golden": golden,
           "chat": E.prompts("chat", 20), "tools": E.prompts("tool", 20)}
    with open(os.path.join(a.out, "demo.json"), "w") as f:
        json.dump(doc, f, ensure_ascii=False)
    print(f"perplexity (JAX, Q8_0 values): code/docs {ppl['jax_code_docs']:.3f}, chat {ppl['jax_chat']:.3f}; "
          f"max |JAX - llama.cpp| {golden['max_abs_jax_vs_llama']:.3g} over {len(toks)} tokens; greedy {greedy}")


if __name__ == "__main__":
    main()
