#!/usr/bin/env python3
"""Trains the demo model (model.py) on the corpus and the synthetic conversations, within a time budget.

- Data: the tokenized training splits of corpus.py (code and docs: `<|BOS|>` text `<|endoftext|>` per file)
  and conversations.py (each rendered conversation starts with `<|BOS|>`). A step's batch mixes windows of
  T + 1 tokens: conversation windows start at a conversation, code/docs windows anywhere.
- Loss: next-token cross-entropy, plus 0.3 x the mean of the three MTP blocks' cross-entropies (DeepSeek-V3's
  weight early in training), the MTP vocabulary projections on a random sample of positions per step.
- Optimizer: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), gradients clipped at 1, linear warmup then
  cosine decay to a tenth. The number of steps comes from `--minutes` and the measured step time unless
  `--steps` fixes it (the log records it, so a run can be repeated exactly).
- Routing balance without an auxiliary loss (DeepSeek-V3): after every step each MoE layer's selection bias
  moves by `--bias-rate` towards experts chosen less than their share and away from those chosen more.

Writes to Scripts/train/work/run/: config.json, params.npz (GGUF tensor names), loss.tsv (one row per
`--log-every` steps), heldout.json (held-out cross-entropy and perplexity at the end).

Usage: Scripts/train/.venv/bin/python Scripts/train/train.py [--minutes 85] [--seed 1234]
"""
import argparse
import json
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model as M  # noqa: E402

WORK = os.path.join(HERE, "work")
MTP_WEIGHT = 0.3


def encode(tok, split):
    """Token streams of a split, cached: (code/docs stream, chat stream, chat conversation starts)."""
    cache = os.path.join(WORK, f"tokens-{split}.npz")
    if os.path.exists(cache) and os.path.getmtime(cache) > os.path.getmtime(os.path.join(WORK, "tokenizer.json")):
        z = np.load(cache)
        return z["code"], z["chat"], z["starts"]
    bos, eot = tok.token_to_id("<|BOS|>"), tok.token_to_id("<|endoftext|>")
    code, chat, starts = [], [], []
    with open(os.path.join(WORK, "corpus", f"{split}.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    for e in tok.encode_batch(texts, add_special_tokens=False):
        code += [bos] + e.ids + [eot]
    with open(os.path.join(WORK, "chat", f"{split}.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    for e in tok.encode_batch(texts, add_special_tokens=False):
        starts.append(len(chat))
        chat += e.ids
    out = np.asarray(code, np.int32), np.asarray(chat, np.int32), np.asarray(starts, np.int64)
    np.savez(cache, code=out[0], chat=out[1], starts=out[2])
    return out


def batches(rng, code, chat, starts, batch, t, chat_share):
    """Windows of t + 1 tokens: a `chat_share` of them from conversation starts, the rest anywhere in code/docs."""
    while True:
        rows = []
        for _ in range(batch):
            if rng.random() < chat_share:
                s = int(starts[rng.integers(len(starts))])
                s = min(s, len(chat) - t - 1)
                rows.append(chat[s:s + t + 1])
            else:
                s = int(rng.integers(len(code) - t - 1))
                rows.append(code[s:s + t + 1])
        yield np.stack(rows)


def loss_fn(cfg, params, frozen, batch, sample):
    p = {**params, **frozen}
    x, y = batch[:, :-1], batch[:, 1:]
    logits, h, loads = M.forward(cfg, p, x)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    mtp = M.mtp(cfg, p, x, h, sample)
    # Block k at index s predicts token s + 2 + k of x, which is y[s + 1 + k].
    ces = jnp.stack([optax.softmax_cross_entropy_with_integer_labels(l, y[:, sample + 1 + k]).mean() for k, l in enumerate(mtp)])
    return ce + MTP_WEIGHT * ces.mean(), (ce, ces, loads)


def heldout(cfg, params, tok, t, batch):
    """Cross-entropy (nats/token) and perplexity of the main model on the held-out splits, non-overlapping
    windows, every token of the code/docs split and of the conversations."""
    code, chat, _ = encode(tok, "heldout")
    fwd = jax.jit(lambda p, b: optax.softmax_cross_entropy_with_integer_labels(M.forward(cfg, p, b[:, :-1])[0], b[:, 1:]).sum())
    out = {}
    for name, stream in (("code_docs", code), ("chat", chat)):
        n = (len(stream) - 1) // t
        windows = np.stack([stream[i * t:i * t + t + 1] for i in range(n)])
        total = 0.0
        for i in range(0, n - n % batch, batch):
            total += float(fwd(params, windows[i:i + batch]))
        count = (n - n % batch) * t
        out[name] = {"tokens": count, "cross_entropy": total / count, "perplexity": math.exp(total / count)}
    return out


def save(out, params, frozen):
    """Writes params.npz (trained and frozen tensors together) and returns them as one dict."""
    final = {**params, **frozen}
    np.savez(os.path.join(out, "params.tmp.npz"), **{k: np.asarray(v) for k, v in final.items()})
    os.replace(os.path.join(out, "params.tmp.npz"), os.path.join(out, "params.npz"))
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=85.0)
    ap.add_argument("--steps", type=int, default=0, help="fix the step count (else from --minutes)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--chat-share", type=float, default=0.5)
    ap.add_argument("--mtp-sample", type=int, default=64, help="positions per step for the MTP vocabulary projections")
    ap.add_argument("--bias-rate", type=float, default=1e-3)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--stop-minutes", type=float, default=88.0,
                    help="end the loop here even if steps remain (the machine got slower than the first steps said)")
    ap.add_argument("--save-every", type=int, default=50, help="steps between params.npz checkpoints")
    ap.add_argument("--out", default=os.path.join(WORK, "run"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cfg = M.Config()
    tok = Tokenizer.from_file(os.path.join(WORK, "tokenizer.json"))
    assert tok.get_vocab_size() == cfg.vocab, f"tokenizer has {tok.get_vocab_size()} entries, the config {cfg.vocab}"
    code, chat, starts = encode(tok, "train")
    print(f"train tokens: code/docs {len(code)}, chat {len(chat)} ({len(starts)} conversations)", flush=True)

    key = jax.random.PRNGKey(a.seed)
    all_params = M.init_params(cfg, key)
    frozen = {k: v for k, v in all_params.items() if M.not_trained(k)}
    params = {k: v for k, v in all_params.items() if not M.not_trained(k)}
    total, active = M.parameter_count(cfg, all_params)
    print(f"parameters: {total} in all, {active} per token", flush=True)
    rng = np.random.default_rng(a.seed)
    data = batches(rng, code, chat, starts, a.batch, a.seq, a.chat_share)
    moe_bias = [f"blk.{il}.exp_probs_b.bias" for il in range(cfg.block_count) if cfg.is_moe(il)]

    def make_step(steps):
        warmup = min(a.warmup, max(1, steps // 10))
        sched = optax.warmup_cosine_decay_schedule(0.0, a.lr, warmup, max(steps, warmup + 1), a.lr / 10)
        decay = {k: v.ndim >= 2 for k, v in params.items()}
        opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(sched, b1=0.9, b2=0.95, weight_decay=0.1, mask=decay))

        @jax.jit
        def step(params, frozen, opt_state, batch, sample):
            (loss, aux), grads = jax.value_and_grad(lambda q: loss_fn(cfg, q, frozen, batch, sample), has_aux=True)(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            ce, ces, loads = aux
            # Aux-loss-free balance: raise the bias of experts chosen less than 1/E of the time, lower the others.
            frozen = dict(frozen)
            for i, name in enumerate(moe_bias):
                frozen[name] = frozen[name] + a.bias_rate * jnp.sign(1.0 / cfg.expert_count - loads[i])
            return params, frozen, opt_state, loss, ce, ces, loads
        return opt, step, sched

    def sample_positions():
        return jnp.asarray(np.sort(rng.choice(a.seq - 1 - cfg.nextn_predict_layers, a.mtp_sample, replace=False)), jnp.int32)

    # Time three steps (after compiling) on a throwaway copy to size the run, unless --steps is given.
    steps = a.steps
    if not steps:
        opt, step, _ = make_step(1000)
        st = opt.init(params)
        b = next(data)
        out = step(params, frozen, st, b, sample_positions())
        jax.block_until_ready(out[3])
        t0 = time.time()
        for _ in range(3):
            out = step(params, frozen, st, next(data), sample_positions())
        jax.block_until_ready(out[3])
        per = (time.time() - t0) / 3
        steps = max(10, int(a.minutes * 60 / per))  # the budget rules; the warmup shrinks to fit (make_step)
        print(f"step time {per:.2f} s: {steps} steps in {a.minutes} minutes", flush=True)
        rng = np.random.default_rng(a.seed)
        data = batches(rng, code, chat, starts, a.batch, a.seq, a.chat_share)

    opt, step, sched = make_step(steps)
    opt_state = opt.init(params)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        f.write(json.dumps({"model": json.loads(cfg.to_json()), "train": vars(a) | {"steps": steps}}, indent=1, sort_keys=True))
    log = open(os.path.join(a.out, "loss.tsv"), "w")
    log.write("step\ttokens\tseconds\tlr\tloss\tce\tmtp0\tmtp1\tmtp2\tmax_load_share\n")
    t0 = time.time()
    for s in range(1, steps + 1):
        params, frozen, opt_state, loss, ce, ces, loads = step(params, frozen, opt_state, next(data), sample_positions())
        if s % a.log_every == 0 or s == steps:
            ces, loads = np.asarray(ces), np.asarray(loads)
            row = [s, s * a.batch * a.seq, round(time.time() - t0, 1), float(sched(s)), float(loss), float(ce)] + \
                  [float(c) for c in ces] + [float(loads.max() * cfg.expert_count)]
            log.write("\t".join(f"{v:.5g}" if isinstance(v, float) else str(v) for v in row) + "\n")
            log.flush()
            print(f"step {s}/{steps}  {row[2]:.0f}s  loss {float(loss):.3f}  ce {float(ce):.3f}  mtp "
                  f"{' '.join(f'{c:.2f}' for c in ces)}  max load x{row[-1]:.2f}", flush=True)
        if s % a.save_every == 0:
            save(a.out, params, frozen)
        if time.time() - t0 > a.stop_minutes * 60:
            print(f"stopped at step {s} of {steps}: past --stop-minutes {a.stop_minutes}", flush=True)
            log.write(f"# stopped at step {s} of {steps}: past --stop-minutes\n")
            break
    log.close()
    final = save(a.out, params, frozen)
    ev = heldout(cfg, final, tok, a.seq, a.batch)
    with open(os.path.join(a.out, "heldout.json"), "w") as f:
        json.dump(ev, f, indent=1)
    print("held out:", json.dumps(ev), flush=True)


if __name__ == "__main__":
    main()
