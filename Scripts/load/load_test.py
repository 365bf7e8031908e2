#!/usr/bin/env python3
"""N concurrent streaming chat clients against a switchyard server on loopback, for M minutes (both
bounded). Each client sends streamed /v1/chat/completions requests one after another. Reports requests
started, finished, failed (an error status or an error event), lost (no answer at all: the connection
failed or timed out before any byte), time to first token p50/p99 and aggregate generated tokens/s.
With LOAD_WINDOW_S set, it also prints one JSON line per window of that many seconds: requests finished in
it, time to first token and whole-request latency p50/p99, failed and lost (the soak's table).
Usage: load_test.py BASE_URL CLIENTS MINUTES [MAX_TOKENS]"""
import asyncio
import json
import random
import statistics
import sys
import time

import os

import httpx

BASE, CLIENTS, MINUTES = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
MAX_TOKENS = int(sys.argv[4]) if len(sys.argv) > 4 else 32
assert BASE.startswith("http://127.0.0.1") or BASE.startswith("http://localhost"), "loopback only"
WORDS = "the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches".split()
stats = {"started": 0, "finished": 0, "failed": 0, "lost": 0, "tokens": 0}
ttfts = []
done_log = []  # (finish time, ttft s, latency s) of each finished request, for the windows
WINDOW = float(os.environ.get("LOAD_WINDOW_S", "0"))


async def one(client, rng):
    prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 40)))
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": MAX_TOKENS, "stream": True,
            "stream_options": {"include_usage": True}, "temperature": 0.7, "seed": rng.randint(0, 1 << 30)}
    stats["started"] += 1
    t0 = time.monotonic()
    got_any = False
    first = None
    try:
        async with client.stream("POST", BASE + "/v1/chat/completions", json=body, timeout=120) as r:
            got_any = True
            if r.status_code != 200:
                await r.aread()
                stats["failed"] += 1
                return
            done = False
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    break
                o = json.loads(data)
                if "error" in o:
                    stats["failed"] += 1
                    return
                for c in o.get("choices", []):
                    d = c.get("delta", {})
                    if first is None and (d.get("content") or d.get("reasoning_content")):
                        first = time.monotonic() - t0
                if o.get("usage"):
                    stats["tokens"] += o["usage"]["completion_tokens"]
            if done:
                stats["finished"] += 1
                if first is not None:
                    ttfts.append(first)
                done_log.append((time.monotonic(), first, time.monotonic() - t0))
            else:
                stats["failed"] += 1
    except (httpx.HTTPError, asyncio.TimeoutError):
        stats["lost" if not got_any else "failed"] += 1


async def worker(i, deadline):
    rng = random.Random(i)
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            await one(client, rng)


def pct(xs, q):
    xs = sorted(x for x in xs if x is not None)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3, 1) if xs else None


async def windows(t0, deadline):
    k, seen, last = 0, 0, dict(stats)
    while time.monotonic() < deadline:
        await asyncio.sleep(min(WINDOW, max(0.0, deadline - time.monotonic())))
        k += 1
        w = done_log[seen:]
        seen = len(done_log)
        print(json.dumps({"window": k, "end_s": round(time.monotonic() - t0), "finished": len(w),
                          "failed": stats["failed"] - last["failed"], "lost": stats["lost"] - last["lost"],
                          "ttft_p50_ms": pct([x[1] for x in w], 0.5), "ttft_p99_ms": pct([x[1] for x in w], 0.99),
                          "latency_p50_ms": pct([x[2] for x in w], 0.5), "latency_p99_ms": pct([x[2] for x in w], 0.99)}),
              flush=True)
        last = dict(stats)


async def main():
    t0 = time.monotonic()
    jobs = [worker(i, t0 + MINUTES * 60) for i in range(CLIENTS)]
    if WINDOW > 0:
        jobs.append(windows(t0, t0 + MINUTES * 60))
    await asyncio.gather(*jobs)
    elapsed = time.monotonic() - t0
    q = sorted(ttfts)
    p50 = statistics.median(q) * 1e3 if q else float("nan")
    p99 = q[min(len(q) - 1, int(0.99 * len(q)))] * 1e3 if q else float("nan")
    print(json.dumps({"clients": CLIENTS, "minutes": MINUTES, "elapsed_s": round(elapsed, 1), **stats,
                      "ttft_p50_ms": round(p50, 1), "ttft_p99_ms": round(p99, 1),
                      "tokens_per_s": round(stats["tokens"] / elapsed, 1)}))


asyncio.run(main())
