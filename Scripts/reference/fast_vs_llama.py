"""Switchyard's quantized-activation path against llama.cpp on the same quantized file (not the F32 twin).

llama.cpp multiplies Q8_0/Q4_0 weights with Q8_0-quantized activations too, so the two fast paths should
agree far better than either agrees with the exact float path. For each fixture this prints max |dlogit| over
the prompt for: switchyard fast vs llama.cpp (F32 KV), switchyard exact vs the same, llama.cpp vs its
own F32-twin logits (the committed golden file), and the greedy continuations of switchyard fast, llama.cpp
with F32 KV and llama.cpp with F16 KV (32 tokens each).

usage: LLAMA_CPP_LIB_PATH=... python fast_vs_llama.py SWITCHYARD FIXTURE_DIR NAME...
(needs llama-cpp-python 0.3.36 and numpy; Scripts/reference/run.sh makes such a venv)
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import llama_reference  # noqa: E402

sy, fixtures, names = sys.argv[1], sys.argv[2], sys.argv[3:]


def switchyard_logits(path, prompt, exact):
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        subprocess.run([sy, "logits", "-m", path, "--tokens", ",".join(map(str, prompt)), "--out", f.name] + (["--exact"] if exact else []),
                       check=True, capture_output=True)
        return np.fromfile(f.name, dtype="<f4").reshape(len(prompt), -1)


def switchyard_greedy(path, prompt, n):
    out = subprocess.run([sy, "generate", "-m", path, "--prompt-tokens", ",".join(map(str, prompt)), "-n", str(n), "--ignore-eos",
                          "--print-ids", "--temp", "0"], check=True, capture_output=True, text=True).stdout
    return [int(x) for x in out.replace(",", " ").split()][-n:]


print("| model | fast vs llama.cpp | exact vs llama.cpp | llama.cpp vs its F32 twin | greedy: fast = llama F32 KV | llama F32 KV = F16 KV |")
print("|---|---|---|---|---|---|")
for name in names:
    meta = json.load(open(os.path.join(fixtures, name + ".json")))
    path, prompt = os.path.join(fixtures, meta["model"]), meta["prompt"]
    ll, g32 = llama_reference(path, prompt, 32, 2)
    _, g16 = llama_reference(path, prompt, 32, 2, kv_type=1)
    fast, exact = switchyard_logits(path, prompt, False), switchyard_logits(path, prompt, True)
    twin = np.fromfile(os.path.join(fixtures, name + ".logits.f32"), dtype="<f4").reshape(len(prompt), -1)
    gf = switchyard_greedy(path, prompt, 32)
    agree = lambda a, b: next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
    print(f"| {name} | {np.abs(fast - ll).max():.2e} | {np.abs(exact - ll).max():.2e} | {np.abs(ll - twin).max():.2e} | "
          f"first {agree(gf, g32)} of 32 agree | first {agree(g32, g16)} of 32 agree |")
