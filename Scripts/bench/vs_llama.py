"""Switchyard against llama.cpp on the same GGUF files, same thread count, interleaved runs.

For each model: decode (llama-bench tg, Switchyard `bench` tg), prefill of 512 tokens (llama-bench pp512,
Switchyard `generate` prompt eval), and batched decode aggregate tok/s at B = 1, 4, 8 (llama-batched-bench
S_TG with 128-token prompts and 32 generated tokens; Switchyard `bench --batch-sizes`). llama.cpp runs twice
per round: default and with weight repacking off (`--repack 0` / `-nr`). Every cell is the median of the
rounds with its min-max spread; ratios are medians over medians. The machine's read bandwidth, F32
peak and int8 multiply-add peak come from `switchyard cost --probe` in each round.

usage: vs_llama.py SWITCHYARD LLAMA_BIN THREADS ROUNDS MODEL...
"""
import json
import re
import statistics
import subprocess
import sys

sy, lb, threads, rounds, models = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
PROMPT = ",".join(str((i * 37) % 4000 + 10) for i in range(512))


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True)


def sy_decode(m):
    out = run([sy, "bench", "-m", m, "--contexts", "0", "-n", "128", "-t", threads]).stdout
    return float(next(l for l in out.splitlines() if l.startswith("| " + m)).split("|")[8])


def sy_prefill(m):
    err = run([sy, "generate", "-m", m, "--prompt-tokens", PROMPT, "-n", "1", "-t", threads, "--verbose"]).stderr
    return float(re.search(r"prompt eval: .*\(([0-9.]+) tokens/s\)", err).group(1))


def sy_batched(m):
    out = run([sy, "bench", "-m", m, "--contexts", "0", "-n", "32", "-t", threads, "--batch-sizes", "1,4,8"]).stdout
    rows = [l.split("|") for l in out.splitlines() if l.startswith("| " + m)]
    return {int(r[7]): float(r[8]) for r in rows}


def ll_bench(m, repack):
    out = run([f"{lb}/llama-bench", "-m", m, "-t", threads, "-p", "512", "-n", "128", "-r", "1", "-o", "jsonl",
               "--repack", str(repack)]).stdout
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return (next(r["avg_ts"] for r in rows if r["n_prompt"] == 512), next(r["avg_ts"] for r in rows if r["n_gen"] == 128))


def ll_batched(m, repack):
    cmd = [f"{lb}/llama-batched-bench", "-m", m, "-t", threads, "-c", "4096", "-npp", "128", "-ntg", "32", "-npl", "1,4,8",
           "--output-format", "jsonl"] + ([] if repack else ["-nr"])
    return {r["pl"]: r["speed_tg"] for r in (json.loads(l) for l in run(cmd).stdout.splitlines() if l.startswith("{"))}


def probe():
    out = run([sy, "cost", "--probe", "-t", threads]).stdout
    return (float(re.search(r"memory read ([0-9.]+) GB/s", out).group(1)), float(re.search(r"compute ([0-9.]+) GFLOP/s", out).group(1)),
            next(l for l in out.splitlines() if l.startswith("kernels:")), float(re.search(r"int8 peak: ([0-9.]+) G", out).group(1)))


cells = {}  # (model, work, engine) -> [values]
probes = []
for r in range(rounds):
    probes.append(probe())
    for m in models:
        def add(work, engine, v):
            cells.setdefault((m, work, engine), []).append(v)
        add("decode tg128", "switchyard", sy_decode(m))
        add("prefill pp512", "switchyard", sy_prefill(m))
        for b, v in sy_batched(m).items():
            add(f"batched B={b}", "switchyard", v)
        for repack in (1, 0):
            eng = "llama.cpp" if repack else "llama.cpp repack 0"
            pp, tg = ll_bench(m, repack)
            add("decode tg128", eng, tg)
            add("prefill pp512", eng, pp)
            for b, v in ll_batched(m, repack).items():
                add(f"batched B={b}", eng, v)
        print(f"round {r + 1}/{rounds}: {m} done", file=sys.stderr)


def cell(vs):
    return f"{statistics.median(vs):.2f} ({min(vs):.2f}-{max(vs):.2f})"


cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
bw = [p[0] for p in probes]
fl = [p[1] for p in probes]
print(f"CPU: {cpu}; {threads} threads; switchyard {probes[0][2]}; rounds: {rounds} (interleaved); "
      f"probe: read {statistics.median(bw):.2f} GB/s ({min(bw):.2f}-{max(bw):.2f}), F32 {statistics.median(fl):.1f} GFLOP/s, "
      f"int8 peak {statistics.median(p[3] for p in probes):.1f} G products/s")
print()
print("| model | work | switchyard | llama.cpp default | llama.cpp repack 0 | ratio to default | ratio to repack 0 |")
print("|---|---|---|---|---|---|---|")
works = ["decode tg128", "prefill pp512", "batched B=1", "batched B=4", "batched B=8"]
for m in models:
    for w in works:
        s, d, n = (cells.get((m, w, e), []) for e in ("switchyard", "llama.cpp", "llama.cpp repack 0"))
        if not s:
            continue
        ratio = lambda a, b: f"{statistics.median(a) / statistics.median(b):.2f}" if a and b else "-"
        print(f"| {m.split('/')[-1]} | {w} | {cell(s)} | {cell(d) if d else '-'} | {cell(n) if n else '-'} | {ratio(s, d)} | {ratio(s, n)} |")
