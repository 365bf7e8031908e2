#!/usr/bin/env python3
"""The proof that what was trained is Step 3.5: the exported F32 GGUF's logits in llama.cpp (llama-cpp-python
0.3.36, F32 KV, no flash attention) against JAX's on the same tokens, and Switchyard's (`logits --exact`)
against llama.cpp's. Also that llama.cpp and Switchyard (`serve`'s /tokenize) tokenize the held-out texts (50
conversations and every held-out code/docs file) exactly as the `tokenizers` library that made the training
data does. The tokens are a held-out conversation followed by held-out code, cut to `--tokens`
(past the sliding window, so the windowed layers' masking is covered).

llama.cpp runs in Scripts/reference/.venv (Scripts/reference/run.sh builds it); Switchyard is the release
build. Prints the largest absolute differences and whether the greedy tokens agree, and writes them to
`--report` (JSON).

Usage: Scripts/train/.venv/bin/python Scripts/train/check.py --gguf F32.gguf [--run work/run] [--tokens 250]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import jax.numpy as jnp
import numpy as np
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import model as M  # noqa: E402

WORK = os.path.join(HERE, "work")
LLAMA = """
import json, sys, numpy as np
sys.path.insert(0, sys.argv[4])
from make_fixtures import llama_reference
from llama_cpp import Llama
l, _ = llama_reference(sys.argv[1], [int(x) for x in sys.argv[2].split(",")], 0, 2)
np.save(sys.argv[3], l)
vocab = Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
texts = json.load(open(sys.argv[5]))
json.dump([vocab.tokenize(x.encode(), add_bos=False, special=True) for x in texts], open(sys.argv[6], "w"))
"""


def heldout_texts():
    with open(os.path.join(WORK, "chat", "heldout.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f][:50]
    with open(os.path.join(WORK, "corpus", "heldout.jsonl"), encoding="utf-8") as f:
        return texts + [json.loads(line)["text"] for line in f]


def switchyard_tokens(sy, gguf_path, texts):
    """Token ids from `switchyard serve`'s /tokenize (special tokens parsed, no BOS added)."""
    import socket
    import time
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sy, "serve", "-m", gguf_path, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = []
        for x in texts:
            body = json.dumps({"content": x, "add_special": False, "parse_special": True}).encode()
            for attempt in range(120):
                try:
                    req = urllib.request.Request(f"http://127.0.0.1:{port}/tokenize", data=body,
                                                 headers={"Content-Type": "application/json"})
                    out.append(json.loads(urllib.request.urlopen(req, timeout=30).read())["tokens"])
                    break
                except OSError:
                    if proc.poll() is not None or attempt == 119:
                        raise
                    time.sleep(0.5)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sample_tokens(n):
    tok = Tokenizer.from_file(os.path.join(WORK, "tokenizer.json"))
    with open(os.path.join(WORK, "chat", "heldout.jsonl"), encoding="utf-8") as f:
        chat = json.loads(f.readline())["text"]
    with open(os.path.join(WORK, "corpus", "heldout.jsonl"), encoding="utf-8") as f:
        code = next(json.loads(line)["text"] for line in f if json.loads(line)["source"] == "code")
    return tok.encode(chat + code, add_special_tokens=False).ids[:n]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", required=True, help="the F32 export of the run")
    ap.add_argument("--run", default=os.path.join(WORK, "run"))
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--report", default=os.path.join(WORK, "check.json"))
    ap.add_argument("--llama-python", default=os.path.join(ROOT, "Scripts", "reference", ".venv", "bin", "python"),
                    help="a Python with llama-cpp-python 0.3.36 (LLAMA_CPP_LIB_PATH is passed on)")
    a = ap.parse_args()
    cfg = M.load_config(a.run)
    params = {k: jnp.asarray(v) for k, v in np.load(os.path.join(a.run, "params.npz")).items()}
    toks = sample_tokens(a.tokens)
    jax_logits = np.asarray(M.forward(cfg, params, jnp.asarray([toks]))[0][0], np.float32)
    ids = ",".join(map(str, toks))
    with tempfile.TemporaryDirectory() as tmp:
        py = a.llama_python
        if not os.path.exists(py):
            sys.exit("check: llama-cpp-python is missing; run bash Scripts/reference/run.sh --help first (it builds the venv)")
        texts = heldout_texts()
        with open(os.path.join(tmp, "texts.json"), "w") as f:
            json.dump(texts, f)
        subprocess.run([py, "-c", LLAMA, a.gguf, ids, os.path.join(tmp, "llama.npy"), os.path.join(ROOT, "Scripts", "reference"),
                        os.path.join(tmp, "texts.json"), os.path.join(tmp, "llama-tokens.json")], check=True)
        llama = np.load(os.path.join(tmp, "llama.npy"))
        llama_tokens = json.load(open(os.path.join(tmp, "llama-tokens.json")))
        sy = os.path.join(ROOT, ".build", "release", "switchyard")
        sy_tokens = switchyard_tokens(sy, a.gguf, texts)
        subprocess.run([sy, "logits", "-m", a.gguf, "--tokens", ids, "--out", os.path.join(tmp, "sy.f32"), "--exact"],
                       check=True, capture_output=True)
        ours = np.fromfile(os.path.join(tmp, "sy.f32"), dtype="<f4").reshape(llama.shape)
    report = {"tokens": len(toks), "window": cfg.sliding_window,
              "max_abs_jax_vs_llama": float(np.abs(jax_logits - llama).max()),
              "max_abs_switchyard_vs_llama": float(np.abs(ours - llama).max()),
              "greedy_agree_jax_llama": float((jax_logits.argmax(1) == llama.argmax(1)).mean()),
              "greedy_agree_switchyard_llama": float((ours.argmax(1) == llama.argmax(1)).mean())}
    tok = Tokenizer.from_file(os.path.join(WORK, "tokenizer.json"))
    want = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    report["tokenizer_texts"] = len(texts)
    report["tokenizer_tokens"] = sum(map(len, want))
    report["tokenizer_differ_llama"] = sum(a_ != b_ for a_, b_ in zip(want, llama_tokens))
    report["tokenizer_differ_switchyard"] = sum(a_ != b_ for a_, b_ in zip(want, sy_tokens))
    with open(a.report, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report))
    if report["max_abs_jax_vs_llama"] > 1e-3:
        sys.exit("check: llama.cpp's logits differ from JAX's by more than 1e-3")
    if report["tokenizer_differ_llama"] or report["tokenizer_differ_switchyard"]:
        sys.exit("check: a tokenizer disagrees with the training data's")


if __name__ == "__main__":
    main()
