"""Step 3.5 Flash in JAX, at demo size: the model the training pipeline trains and export.py writes as GGUF.

Ports: ../shared/research/step35-architecture.md §2 (order), §4 (attention), §5 (dense FFN, MoE, clamps),
§6 (MTP), and the llama.cpp graph that Switchyard's Sources/Step35/Step35.swift follows (read, not copied):
- leading dense layers, then MoE layers: a sigmoid router, a selection-only bias (`exp_probs_b`, moved by
  the aux-loss-free rule in train.py, not by gradients), top-k, weights renormalised and times the scale, and
  one shared expert;
- full attention on every 4th layer (fewer query heads) and sliding-window attention on the others, over
  shared KV heads; per-head q/k RMSNorm; NeoX RoPE over half the head on full layers (base 5e6, divided by
  `rope_freqs`) and the whole head on sliding layers (base 1e4); a sigmoid gate per head;
- SwiGLU with the Step 3.5 clamps (`min(silu(g), L) * clamp(u, -L, L)` where L > 0);
- MTP block k: u = eh_proj([enorm(embed(x_{t+1+k})), hnorm(h)]), u' = block(u) (sliding-window attention,
  dense FFN), logits = output(shared_head_norm(u')); h is the main model's pre-norm state for k = 0 and the
  previous block's u' after.

Parameters are a flat dict under the GGUF tensor names (`blk.3.attn_q.weight`), each matrix as [in, out] (so
`x @ w`), experts as [E, in, out]; export.py transposes to GGUF's row order.

Dimension legend: B sequences, T tokens, D hidden, V vocabulary, H query heads, Hk KV heads, Dh head dim,
E experts, A active experts, F FFN width.
"""
import dataclasses
import json
import math
import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference"))
import make_fixtures  # noqa: E402  (the fixtures' rope_freqs)


@dataclasses.dataclass(frozen=True)
class Config:
    """The model's shape, under the GGUF `step35.*` key meanings."""
    vocab: int = 8192
    embedding_length: int = 256
    block_count: int = 6  # main layers; the MTP blocks follow them
    leading_dense_block_count: int = 1
    nextn_predict_layers: int = 3
    key_length: int = 64  # head dim
    head_count_full: int = 4
    head_count_swa: int = 6
    head_count_kv: int = 2
    feed_forward_length: int = 512
    expert_count: int = 8
    expert_used_count: int = 2
    expert_feed_forward_length: int = 128
    expert_shared_feed_forward_length: int = 128
    expert_weights_scale: float = 3.0
    sliding_window: int = 128
    rope_freq_base: float = 5e6
    rope_freq_base_swa: float = 1e4
    rms_epsilon: float = 1e-5
    swiglu_clamp_exp: tuple = ()  # per layer (main + MTP); empty: 7 on the last two MoE layers, as Step 3.5
    swiglu_clamp_shexp: tuple = ()  # per layer; empty: 16 on the last main layer
    context_length: int = 4096

    @property
    def layers(self):
        return self.block_count + self.nextn_predict_layers

    def is_swa(self, il):
        return il >= self.block_count or il % 4 != 0

    def heads(self, il):
        return self.head_count_swa if self.is_swa(il) else self.head_count_full

    def is_moe(self, il):
        return self.leading_dense_block_count <= il < self.block_count

    def clamp_exp(self, il):
        if self.swiglu_clamp_exp:
            return self.swiglu_clamp_exp[il]
        return 7.0 if self.block_count - 2 <= il < self.block_count else 0.0

    def clamp_shexp(self, il):
        if self.swiglu_clamp_shexp:
            return self.swiglu_clamp_shexp[il]
        return 16.0 if il == self.block_count - 1 else 0.0

    def rotary_dims(self, il):
        return self.key_length if self.is_swa(il) else self.key_length // 2

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)



def load_config(run):
    """The model configuration a training run recorded (`RUN/config.json`'s "model")."""
    with open(os.path.join(run, "config.json")) as f:
        conf = json.load(f)["model"]
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in conf.items()})

def llama3_divisors(cfg):
    """`rope_freqs`: llama3 scaling divisors (factor 2, low 1, high 32, original context 131072) over the full
    layers' rotary slice, as the golden fixtures and Step35Synthetic write them (make_fixtures.py's function,
    which assumes base 5e6)."""
    assert cfg.rope_freq_base == 5e6, "make_fixtures.llama3_divisors assumes rope base 5e6"
    return jnp.asarray(make_fixtures.llama3_divisors(cfg.key_length // 2, cfg.key_length // 2), jnp.float32)


def init_params(cfg, key):
    """Random initial weights: matrices N(0, 1/fan_in), norms 1, router bias 0."""
    params = {}
    keys = iter(jax.random.split(key, 4096))

    def mat(name, shape, fan_in=None, gain=1.0):
        fan_in = fan_in or shape[-2]
        params[name] = jax.random.normal(next(keys), shape, jnp.float32) * (gain / math.sqrt(fan_in))

    def norm(name, n):
        params[name] = jnp.ones((n,), jnp.float32)

    d, dh, hk = cfg.embedding_length, cfg.key_length, cfg.head_count_kv
    mat("token_embd.weight", (cfg.vocab, d), fan_in=1)
    norm("output_norm.weight", d)
    mat("output.weight", (d, cfg.vocab))
    params["rope_freqs.weight"] = llama3_divisors(cfg)
    for il in range(cfg.layers):
        b, h = f"blk.{il}.", cfg.heads(il)
        norm(b + "attn_norm.weight", d)
        mat(b + "attn_q.weight", (d, h * dh))
        mat(b + "attn_k.weight", (d, hk * dh))
        mat(b + "attn_v.weight", (d, hk * dh))
        mat(b + "attn_output.weight", (h * dh, d), gain=1 / math.sqrt(2 * cfg.layers))
        norm(b + "attn_q_norm.weight", dh)
        norm(b + "attn_k_norm.weight", dh)
        mat(b + "attn_gate.weight", (d, h))
        norm(b + "ffn_norm.weight", d)
        if cfg.is_moe(il):
            e, f, fs = cfg.expert_count, cfg.expert_feed_forward_length, cfg.expert_shared_feed_forward_length
            mat(b + "ffn_gate_inp.weight", (d, e))
            params[b + "exp_probs_b.bias"] = jnp.zeros((e,), jnp.float32)
            mat(b + "ffn_gate_exps.weight", (e, d, f))
            mat(b + "ffn_up_exps.weight", (e, d, f))
            mat(b + "ffn_down_exps.weight", (e, f, d), gain=1 / math.sqrt(2 * cfg.layers))
            mat(b + "ffn_gate_shexp.weight", (d, fs))
            mat(b + "ffn_up_shexp.weight", (d, fs))
            mat(b + "ffn_down_shexp.weight", (fs, d), gain=1 / math.sqrt(2 * cfg.layers))
        else:
            f = cfg.feed_forward_length
            mat(b + "ffn_gate.weight", (d, f))
            mat(b + "ffn_up.weight", (d, f))
            mat(b + "ffn_down.weight", (f, d), gain=1 / math.sqrt(2 * cfg.layers))
        if il >= cfg.block_count:
            mat(b + "nextn.eh_proj.weight", (2 * d, d))
            norm(b + "nextn.enorm.weight", d)
            norm(b + "nextn.hnorm.weight", d)
            norm(b + "nextn.shared_head_norm.weight", d)
    return params


def not_trained(name):
    """Parameters that gradients do not move: the selection bias (train.py's balance rule) and `rope_freqs`."""
    return name.endswith("exp_probs_b.bias") or name == "rope_freqs.weight"


def rms_norm(x, w, eps):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * w


def swiglu(g, u, limit):
    a = jax.nn.silu(g)
    if limit > 0:
        a, u = jnp.minimum(a, limit), jnp.clip(u, -limit, limit)
    return a * u


def rope_neox(x, positions, rot, base, factors):
    """NeoX RoPE on the first `rot` dims of each head of x [B, T, H, Dh]: pairs (i, i + rot/2)."""
    half = rot // 2
    inv = base ** (-jnp.arange(half, dtype=jnp.float32) * 2 / rot)
    if factors is not None:
        inv = inv / factors[:half]
    ang = positions[:, :, None].astype(jnp.float32) * inv  # [B, T, rot/2]
    cos, sin = jnp.cos(ang)[:, :, None, :], jnp.sin(ang)[:, :, None, :]
    x0, x1, rest = x[..., :half], x[..., half:rot], x[..., rot:]
    return jnp.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos, rest], axis=-1)


def attention(cfg, p, b, il, x, positions):
    bsz, t, d = x.shape
    h, hk, dh = cfg.heads(il), cfg.head_count_kv, cfg.key_length
    q = (x @ p[b + "attn_q.weight"]).reshape(bsz, t, h, dh)  # [B, T, H, Dh]
    k = (x @ p[b + "attn_k.weight"]).reshape(bsz, t, hk, dh)  # [B, T, Hk, Dh]
    v = (x @ p[b + "attn_v.weight"]).reshape(bsz, t, hk, dh)
    q = rms_norm(q, p[b + "attn_q_norm.weight"], cfg.rms_epsilon)
    k = rms_norm(k, p[b + "attn_k_norm.weight"], cfg.rms_epsilon)
    swa = cfg.is_swa(il)
    base = cfg.rope_freq_base_swa if swa else cfg.rope_freq_base
    factors = None if swa else p["rope_freqs.weight"]
    q = rope_neox(q, positions, cfg.rotary_dims(il), base, factors)
    k = rope_neox(k, positions, cfg.rotary_dims(il), base, factors)
    q = q.reshape(bsz, t, hk, h // hk, dh)  # query head j uses KV head j // (H / Hk)
    s = jnp.einsum("btgrd,bsgd->bgrts", q, k) / math.sqrt(dh)  # [B, Hk, H/Hk, T, T]
    i, j = jnp.arange(t)[:, None], jnp.arange(t)[None, :]
    mask = j <= i
    if swa:
        mask = mask & (j > i - cfg.sliding_window)  # the window includes the query itself
    s = jnp.where(mask, s, -jnp.inf)
    o = jnp.einsum("bgrts,bsgd->btgrd", jax.nn.softmax(s, axis=-1), v).reshape(bsz, t, h, dh)
    gate = jax.nn.sigmoid(x @ p[b + "attn_gate.weight"])  # [B, T, H]: one gate per head
    o = (o * gate[..., None]).reshape(bsz, t, h * dh)
    return o @ p[b + "attn_output.weight"]


def mlp(p, b, x, limit, suffix=""):
    g, u = x @ p[b + f"ffn_gate{suffix}.weight"], x @ p[b + f"ffn_up{suffix}.weight"]
    return swiglu(g, u, limit) @ p[b + f"ffn_down{suffix}.weight"]


def moe(cfg, p, b, il, x):
    """Routed experts (every expert runs on every token and the router's weights pick: at 8 experts of width
    128 that is cheaper on a CPU than gathering) plus the shared expert. Returns the output and each expert's
    share of the selections [E] (the balance rule's input)."""
    probs = jax.nn.sigmoid(x @ p[b + "ffn_gate_inp.weight"])  # [B, T, E]
    sel = probs + jax.lax.stop_gradient(p[b + "exp_probs_b.bias"])
    _, idx = jax.lax.top_k(sel, cfg.expert_used_count)  # [B, T, A]
    w = jnp.take_along_axis(probs, idx, axis=-1)
    w = w / jnp.maximum(jnp.sum(w, axis=-1, keepdims=True), 2.0 ** -14) * cfg.expert_weights_scale
    onehot = jax.nn.one_hot(idx, cfg.expert_count, dtype=x.dtype)  # [B, T, A, E]
    gates = jnp.einsum("bta,btae->bte", w, onehot)
    g = jnp.einsum("btd,edf->btef", x, p[b + "ffn_gate_exps.weight"])
    u = jnp.einsum("btd,edf->btef", x, p[b + "ffn_up_exps.weight"])
    y = jnp.einsum("btef,efd->bted", swiglu(g, u, cfg.clamp_exp(il)), p[b + "ffn_down_exps.weight"])
    out = jnp.einsum("bte,bted->btd", gates, y) + mlp(p, b, x, cfg.clamp_shexp(il), "_shexp")
    load = jnp.mean(onehot.sum(axis=2), axis=(0, 1)) / cfg.expert_used_count  # [E], sums to 1
    return out, load


def block(cfg, p, il, h, positions):
    b = f"blk.{il}."
    h = h + attention(cfg, p, b, il, rms_norm(h, p[b + "attn_norm.weight"], cfg.rms_epsilon), positions)
    x = rms_norm(h, p[b + "ffn_norm.weight"], cfg.rms_epsilon)
    if cfg.is_moe(il):
        f, load = moe(cfg, p, b, il, x)
    else:
        f, load = mlp(p, b, x, cfg.clamp_shexp(il)), None
    return h + f, load


def forward(cfg, p, tokens):
    """Main model over tokens [B, T] at positions 0..T-1: logits [B, T, V], the pre-norm hidden state
    [B, T, D], and each MoE layer's expert load [L_moe, E]."""
    bsz, t = tokens.shape
    positions = jnp.broadcast_to(jnp.arange(t), (bsz, t))
    h = p["token_embd.weight"][tokens]
    loads = []
    for il in range(cfg.block_count):
        h, load = block(cfg, p, il, h, positions)
        if load is not None:
            loads.append(load)
    logits = rms_norm(h, p["output_norm.weight"], cfg.rms_epsilon) @ p["output.weight"]
    return logits, h, jnp.stack(loads) if loads else jnp.zeros((0, cfg.expert_count))


def mtp(cfg, p, tokens, h, sample=None):
    """The MTP chain over a whole sequence (DeepSeek-V3's MTP, which Step 3.5's blocks are): block k at index t
    pairs h_t (the main model's pre-norm state for k = 0, block k-1's output at t after) with token t+1+k and
    predicts token t+2+k; it runs at that token's position t+1+k, where Switchyard and llama.cpp run the pair
    when drafting. Returns block k's logits [B, T-1-k, V] for k = 0..K-1 (the last row has no target), or with
    `sample` (indices [S], each < T-1-K) only those rows [B, S, V]: the vocabulary projections are most of a
    training step's work, and the blocks still see every position."""
    bsz, t = tokens.shape
    out = []
    for k in range(cfg.nextn_predict_layers):
        il, b = cfg.block_count + k, f"blk.{cfg.block_count + k}."
        n = t - 1 - k  # positions 0..n-1 have token t+1+k
        e = p["token_embd.weight"][tokens[:, 1 + k:]]  # [B, n, D]
        hk = h[:, :n]
        cat = jnp.concatenate([rms_norm(e, p[b + "nextn.enorm.weight"], cfg.rms_epsilon),
                               rms_norm(hk, p[b + "nextn.hnorm.weight"], cfg.rms_epsilon)], axis=-1)  # [B, n, 2D]
        u = cat @ p[b + "nextn.eh_proj.weight"]
        positions = jnp.broadcast_to(jnp.arange(n) + 1 + k, (bsz, n))
        u, _ = block(cfg, p, il, u, positions)
        rows = u if sample is None else u[:, sample]
        out.append(rms_norm(rows, p[b + "nextn.shared_head_norm.weight"], cfg.rms_epsilon) @ p["output.weight"])
        h = u
    return out


def parameter_count(cfg, params):
    """All parameters, and those one token uses (A of E experts per MoE layer)."""
    total = sum(int(v.size) for v in params.values())
    unused = sum(int(v.size) * (cfg.expert_count - cfg.expert_used_count) // cfg.expert_count
                 for k, v in params.items() if "_exps." in k)
    return total, total - unused
