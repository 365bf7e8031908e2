#!/usr/bin/env python3
"""Draws the training run's loss curve (loss.tsv) as an SVG for Docs/MODEL.md: the main model's cross-entropy
and each MTP block's, per logged step, on a log scale; held-out perplexity noted when heldout.json exists.

Usage: python3 Scripts/train/plot.py [--run work/run] [--out Docs/model-loss.svg]
"""
import argparse
import csv
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default=os.path.join(HERE, "work", "run"))
    ap.add_argument("--out", default=os.path.join(ROOT, "Docs", "model-loss.svg"))
    a = ap.parse_args()
    with open(os.path.join(a.run, "loss.tsv")) as f:
        rows = [r for r in csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")]
    series = [("ce", "main model", "#1f77b4"), ("mtp0", "MTP block 1 (t+2)", "#ff7f0e"),
              ("mtp1", "MTP block 2 (t+3)", "#2ca02c"), ("mtp2", "MTP block 3 (t+4)", "#d62728")]
    w, h, left, right, top, bottom = 760, 420, 60, 180, 40, 50
    steps = [int(r["step"]) for r in rows]
    lo, hi = 0.5, max(float(r[k]) for r in rows for k, _, _ in series)
    x = lambda s: left + (s - steps[0]) / max(1, steps[-1] - steps[0]) * (w - left - right)  # noqa: E731
    y = lambda v: top + (math.log(hi) - math.log(max(v, lo))) / (math.log(hi) - math.log(lo)) * (h - top - bottom)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="14">Demo model training: cross-entropy (nats/token) per step, '
           f'{rows[-1]["tokens"]} tokens</text>']
    for v in (0.5, 1, 2, 4, 8):
        if lo <= v <= hi:
            out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                       f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    for s in steps[::max(1, len(steps) // 8)] + [steps[-1]]:
        out.append(f'<text x="{x(s):.1f}" y="{h - bottom + 18}" text-anchor="middle">{s}</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">step (4096 tokens each)</text>')
    for i, (k, label, color) in enumerate(series):
        pts = " ".join(f"{x(int(r['step'])):.1f},{y(float(r[k])):.1f}" for r in rows)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="{2 if k == "ce" else 1.2}" points="{pts}"/>')
        out.append(f'<line x1="{w - right + 12}" x2="{w - right + 32}" y1="{top + 10 + 18 * i}" y2="{top + 10 + 18 * i}" '
                   f'stroke="{color}" stroke-width="2"/><text x="{w - right + 38}" y="{top + 14 + 18 * i}">{label}</text>')
    held = os.path.join(a.run, "heldout.json")
    if os.path.exists(held):
        ev = json.load(open(held))
        for i, (k, label) in enumerate((("code_docs", "code/docs"), ("chat", "chat"))):
            out.append(f'<text x="{w - right + 12}" y="{top + 100 + 16 * i}">held out {label}: ppl {ev[k]["perplexity"]:.2f}</text>')
    out.append("</svg>")
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"{a.out}: {len(rows)} points")


if __name__ == "__main__":
    main()
