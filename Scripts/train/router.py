#!/usr/bin/env python3
"""The trained router's expert load (Docs/MODEL.md): `switchyard generate --expert-stats` over held-out text
(the first 24 held-out code/docs files and 24 held-out conversations, each cut to 384 tokens, greedy 32 more),
then the skew per MoE layer (busiest expert's share over an even share, and the coefficient of variation),
and `switchyard tune`'s balance (contiguous, EPLB, tuned) on those statistics for 2 and 4 workers.

Usage: Scripts/train/.venv/bin/python Scripts/train/router.py [--gguf MODEL] [--out router.json]
"""
import argparse
import json
import os
import subprocess
import tempfile

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(HERE, "work")
SY = os.path.join(ROOT, ".build", "release", "switchyard")


def prompts(n, cut):
    tok = Tokenizer.from_file(os.path.join(WORK, "tokenizer.json"))
    out = []
    for name in ("corpus", "chat"):
        with open(os.path.join(WORK, name, "heldout.jsonl"), encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f][:n]
        out += [",".join(map(str, e.ids[:cut])) for e in tok.encode_batch(texts, add_special_tokens=False)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", default=os.path.join(ROOT, "Sources", "DemoModel", "switchyard-demo-q8_0.gguf"))
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--cut", type=int, default=384)
    ap.add_argument("--out", default=os.path.join(WORK, "router.json"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "stats.json")
        args = [SY, "generate", "-m", a.gguf, "-n", "32", "--temp", "0", "--print-ids", "-np", "4", "--expert-stats", stats]
        for p in prompts(a.n, a.cut):
            args += ["--prompt-tokens", p]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        s = json.load(open(stats))
        tune = {w: subprocess.run([SY, "tune", "--stats", stats, "--workers", str(w)], check=True, capture_output=True,
                                  text=True).stdout for w in (2, 4)}
    layers = []
    for l, row in enumerate(s["counts"]):
        total = sum(row)
        if not total:
            continue
        mean = total / len(row)
        var = sum((c - mean) ** 2 for c in row) / len(row)
        layers.append({"layer": l, "tokens": s["tokensPerLayer"][l], "counts": row, "max_over_even": max(row) / mean,
                       "min_over_even": min(row) / mean, "cv": var ** 0.5 / mean})
    report = {"prompts": 2 * a.n, "layers": layers, "tune": tune}
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    for r in layers:
        print(f"layer {r['layer']}: {r['tokens']} tokens, busiest expert x{r['max_over_even']:.2f}, "
              f"idlest x{r['min_over_even']:.2f}, cv {r['cv']:.2f}")
    for w, text in tune.items():
        print(f"tune, {w} workers:\n{text}")


if __name__ == "__main__":
    main()
