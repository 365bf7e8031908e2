#!/usr/bin/env python3
"""Reference fixtures for Switchyard: tiny Step 3.5 GGUFs with random weights, and llama.cpp's logits.

Run through Scripts/reference/run.sh, which makes the venv (gguf==0.19.0, llama-cpp-python==0.3.36, numpy).

For each model it writes, under --out:
  NAME.gguf            the model (F32, F16, BF16, Q8_0, Q4_0, or a Q4_K_S-style K-quant mix)
  NAME.json            tokens fed, llama.cpp's 32-token greedy continuation, settings
  NAME.logits.f32      llama.cpp logits for every position, little-endian float32 [n_tokens][n_vocab]
Quantized models are evaluated by llama.cpp on their F32 twin (the same weights, dequantized by
gguf-py), because Switchyard computes with float activations (see Docs/CORRECTNESS.md).
It also writes dequant-vectors.gguf: random blocks of each type with gguf-py's numpy dequantization.

Shapes are command-line options, so a shape the tests have never seen can be made with
`make_fixtures.py --shape custom --n-embd 128 ...` and checked with check_logits.py.
"""
import argparse
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

ARCH = "step35"

SHAPES = {
    # 5 main layers (full, swa, swa, swa, full), 2 dense leading, 3 MTP blocks, window 6 < sequence.
    "tiny-a": dict(n_embd=64, n_vocab=512, n_layer=5, n_dense=2, n_nextn=3, head_dim=16, heads_full=4,
                   heads_swa=6, kv_heads=2, n_ff=96, n_expert=8, n_used=3, n_ff_exp=32, n_ff_sh=32,
                   window=6, clamp_exp={4: 0.8}, clamp_sh={1: 1.0, 4: 1.5}, seed=1),
    # K-quant shape: row lengths that are multiples of 256 where it matters; 1 MTP block.
    "tiny-b": dict(n_embd=256, n_vocab=320, n_layer=4, n_dense=1, n_nextn=1, head_dim=64, heads_full=4,
                   heads_swa=6, kv_heads=2, n_ff=256, n_expert=4, n_used=2, n_ff_exp=256, n_ff_sh=256,
                   window=5, clamp_exp={3: 0.9}, clamp_sh={3: 1.2}, seed=2),
}


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable-unicode map used by byte-level BPE vocabularies."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def make_vocab(n_vocab):
    """Specials, 256 byte tokens, merges of frequent pairs in a fixed text, chat specials at the end."""
    b2u = bytes_to_unicode()
    specials_head = ["<s>", "</s>", "<unk>"]
    specials_tail = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    tokens = specials_head + [b2u[b] for b in range(256)]
    text = ("the quick brown fox jumps over the lazy dog and the cat sat on the mat while the "
            "expert parallel cluster routes every token to the experts that hold its weights ") * 4
    words = [[b2u[b] for b in (" " + w).encode()] for w in text.split()]
    merges = []
    while len(tokens) + len(specials_tail) < n_vocab:
        counts = {}
        for w in words:
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            tokens.append(f"<unused{len(tokens)}>")
            continue
        (a, b), _ = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(f"{a} {b}")
        tokens.append(a + b)
        new_words = []
        for w in words:
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words.append(out)
        words = new_words
    tokens += specials_tail
    types = [3] * 3 + [1] * (len(tokens) - 3 - 4) + [3] * 4
    return tokens, types, merges


def llama3_divisors(n_pairs, rot):
    """rope_freqs divisors of the llama3 scaling (factor 2, low 1, high 32, original 131072)."""
    out = []
    for i in range(n_pairs):
        inv = 5e6 ** (-2 * i / rot)
        wl = 2 * np.pi / inv
        if wl < 131072 / 32:
            out.append(1.0)
        elif wl > 131072:
            out.append(2.0)
        else:
            s = (131072 / wl - 1) / 31
            out.append(1.0 / ((1 - s) / 2 + s))
    return out


def build_weights(sh, rng):
    """Random weights as float32 numpy arrays in numpy (reversed ggml) order."""
    D, V = sh["n_embd"], sh["n_vocab"]
    hd, kv = sh["head_dim"], sh["kv_heads"]
    n_all = sh["n_layer"] + sh["n_nextn"]
    w = {}

    def mat(rows, cols, scale=1.0):
        return (rng.standard_normal((rows, cols)) * scale / np.sqrt(cols)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w["token_embd.weight"] = rng.standard_normal((V, D)).astype(np.float32)
    w["output_norm.weight"] = norm(D)
    w["output.weight"] = mat(V, D, 2.0)
    n_rot = hd
    w["rope_freqs.weight"] = np.array(llama3_divisors(n_rot // 2, n_rot // 2), dtype=np.float32)
    for il in range(n_all):
        is_swa = il % 4 != 0 or il >= sh["n_layer"]
        H = sh["heads_swa"] if is_swa else sh["heads_full"]
        p = f"blk.{il}."
        w[p + "attn_norm.weight"] = norm(D)
        w[p + "attn_q.weight"] = mat(H * hd, D)
        w[p + "attn_k.weight"] = mat(kv * hd, D)
        w[p + "attn_v.weight"] = mat(kv * hd, D)
        w[p + "attn_q_norm.weight"] = norm(hd)
        w[p + "attn_k_norm.weight"] = norm(hd)
        w[p + "attn_gate.weight"] = mat(H, D)
        w[p + "attn_output.weight"] = mat(D, H * hd)
        w[p + "ffn_norm.weight"] = norm(D)
        if il < sh["n_dense"] or il >= sh["n_layer"]:
            w[p + "ffn_gate.weight"] = mat(sh["n_ff"], D)
            w[p + "ffn_up.weight"] = mat(sh["n_ff"], D)
            w[p + "ffn_down.weight"] = mat(D, sh["n_ff"])
        else:
            E, F = sh["n_expert"], sh["n_ff_exp"]
            w[p + "ffn_gate_inp.weight"] = mat(E, D, 2.0)
            w[p + "exp_probs_b.bias"] = (0.3 * rng.standard_normal(E)).astype(np.float32)
            w[p + "ffn_gate_exps.weight"] = (rng.standard_normal((E, F, D)) / np.sqrt(D)).astype(np.float32)
            w[p + "ffn_up_exps.weight"] = (rng.standard_normal((E, F, D)) / np.sqrt(D)).astype(np.float32)
            w[p + "ffn_down_exps.weight"] = (rng.standard_normal((E, D, F)) / np.sqrt(F)).astype(np.float32)
            w[p + "ffn_gate_shexp.weight"] = mat(sh["n_ff_sh"], D)
            w[p + "ffn_up_shexp.weight"] = mat(sh["n_ff_sh"], D)
            w[p + "ffn_down_shexp.weight"] = mat(D, sh["n_ff_sh"])
        if il >= sh["n_layer"]:
            w[p + "nextn.eh_proj.weight"] = mat(D, 2 * D)
            w[p + "nextn.enorm.weight"] = norm(D)
            w[p + "nextn.hnorm.weight"] = norm(D)
            w[p + "nextn.shared_head_norm.weight"] = norm(D)
            w[p + "nextn.shared_head_head.weight"] = mat(V, D, 2.0)
    return w


F32_ONLY = ("norm.weight", "exp_probs_b.bias", "ffn_gate_inp.weight", "rope_freqs.weight")


def random_kquant_blocks(qtype, n_blocks, rng):
    """Random but valid K-quant blocks with scales chosen so weights are O(1/sqrt(fan_in))."""
    size = gguf.GGML_QUANT_SIZES[qtype][1]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    if qtype in (QT.Q4_K, QT.Q5_K):
        d = (2e-4 * rng.uniform(0.5, 1.5, n_blocks)).astype(np.float16)
        dmin = (d.astype(np.float32) * (7.5 if qtype == QT.Q4_K else 15.5) * rng.uniform(0.8, 1.2, n_blocks)).astype(np.float16)
        raw[:, 0:2] = d.view(np.uint8).reshape(n_blocks, 2)
        raw[:, 2:4] = dmin.view(np.uint8).reshape(n_blocks, 2)
    elif qtype == QT.Q6_K:
        d = (1.5e-5 * rng.uniform(0.5, 1.5, n_blocks)).astype(np.float16)
        raw[:, 208:210] = d.view(np.uint8).reshape(n_blocks, 2)
    return raw


def kquant_type_for(name, shape_np):
    """Q4_K_S-like mix: Q6_K for output, Q5_K for down projections, Q4_K elsewhere; Q8_0 fallback."""
    ne0 = shape_np[-1]
    if ne0 % 256 != 0:
        return QT.Q8_0
    if name == "output.weight" or name.endswith("shared_head_head.weight"):
        return QT.Q6_K
    if "ffn_down" in name or "attn_v" in name:
        return QT.Q5_K
    return QT.Q4_K


def encode(name, arr, qtype_name, rng):
    """Returns (raw array for the writer, ggml type, dequantized float32 twin)."""
    if name.endswith(F32_ONLY) or arr.ndim == 1 or qtype_name == "f32":
        return arr, QT.F32, arr
    if qtype_name == "kmix":
        qt = kquant_type_for(name, arr.shape)
        if qt == QT.Q8_0:
            raw = gguf.quants.quantize(arr, qt)
        else:
            n_blocks = arr.size // 256
            raw = random_kquant_blocks(qt, n_blocks, rng).reshape(*arr.shape[:-1], -1)
    else:
        qt = {"f16": QT.F16, "bf16": QT.BF16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0}[qtype_name]
        raw = gguf.quants.quantize(arr, qt)
    twin = gguf.quants.dequantize(raw, qt).astype(np.float32).reshape(arr.shape)
    return raw, qt, twin


def write_gguf(path, sh, tensors, tokens, types, merges, alt_keys=False):
    """tensors: name -> (raw array, ggml type)."""
    w = gguf.GGUFWriter(path, ARCH)
    n_all = sh["n_layer"] + sh["n_nextn"]
    is_swa = [(il % 4 != 0) or il >= sh["n_layer"] for il in range(n_all)]
    heads = [sh["heads_swa"] if s else sh["heads_full"] for s in is_swa]
    clamp_exp = [float(sh["clamp_exp"].get(il, 0.0)) for il in range(n_all)]
    clamp_sh = [float(sh["clamp_sh"].get(il, 0.0)) for il in range(n_all)]
    k = ARCH + "."
    w.add_name(os.path.basename(path))
    w.add_uint32(k + "context_length", 4096)
    w.add_uint32(k + "embedding_length", sh["n_embd"])
    w.add_uint32(k + "block_count", n_all)
    w.add_uint32(k + "feed_forward_length", sh["n_ff"])
    w.add_array(k + "attention.head_count", heads)
    w.add_uint32(k + "attention.head_count_kv", sh["kv_heads"])
    w.add_uint32(k + "attention.key_length", sh["head_dim"])
    w.add_uint32(k + "attention.value_length", sh["head_dim"])
    w.add_float32(k + "attention.layer_norm_rms_epsilon", 1e-5)
    w.add_uint32(k + "attention.sliding_window", sh["window"])
    w.add_array(k + "attention.sliding_window_pattern", is_swa)
    if alt_keys:
        # The early StepFun-fork spellings: per-layer rotary dims and bases, swiglu_limits*.
        w.add_array(k + "rope.dimension_count_per_layer", [sh["head_dim"] if s else sh["head_dim"] // 2 for s in is_swa])
        w.add_array(k + "rope.freq_base_per_layer", [10000.0 if s else 5e6 for s in is_swa])
        w.add_array(k + "swiglu_limits", clamp_exp)
        w.add_array(k + "swiglu_limits_shared", clamp_sh)
    else:
        w.add_uint32(k + "rope.dimension_count", sh["head_dim"])
        w.add_float32(k + "rope.freq_base", 5e6)
        w.add_float32(k + "rope.freq_base_swa", 10000.0)
        w.add_array(k + "swiglu_clamp_exp", clamp_exp)
        w.add_array(k + "swiglu_clamp_shexp", clamp_sh)
    w.add_uint32(k + "expert_count", sh["n_expert"])
    w.add_uint32(k + "expert_used_count", sh["n_used"])
    w.add_uint32(k + "expert_feed_forward_length", sh["n_ff_exp"])
    w.add_uint32(k + "expert_shared_feed_forward_length", sh["n_ff_sh"])
    w.add_uint32(k + "expert_gating_func", 2)
    w.add_float32(k + "expert_weights_scale", 3.0)
    w.add_bool(k + "expert_weights_norm", True)
    w.add_uint32(k + "leading_dense_block_count", sh["n_dense"])
    if sh["n_nextn"]:
        w.add_uint32(k + "nextn_predict_layers", sh["n_nextn"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)
    for name, (raw, qt) in tensors.items():
        w.add_tensor(name, raw, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_reference(path, prompt, n_gen, n_threads, kv_type=0):
    """llama.cpp logits at every prompt position (F32 KV unless kv_type says, e.g. 1 for F16; no flash
    attention) and a greedy continuation."""
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=256, n_batch=256, n_ubatch=256, logits_all=True, type_k=kv_type, type_v=kv_type,
                flash_attn=False, n_threads=n_threads, n_threads_batch=n_threads, verbose=False)
    llm.reset()
    llm.eval(prompt)
    logits = np.array(llm.scores[: len(prompt)], dtype=np.float32)
    gen = []
    last = logits[-1]
    for _ in range(n_gen):
        t = int(np.argmax(last))
        gen.append(t)
        llm.eval([t])
        last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    return logits, gen


def save_golden(out, name, sh, prompt, logits, gen, weights, reference):
    """Writes NAME.logits.f32 and NAME.json (prompt, greedy tokens, shape) for the golden tests."""
    logits.astype("<f4").tofile(os.path.join(out, name + ".logits.f32"))
    meta = {"model": name + ".gguf", "weights": weights, "reference": reference,
            "kv_type": "f32", "flash_attn": False, "n_vocab": sh["n_vocab"], "prompt": prompt, "greedy": gen,
            "shape": {k: v for k, v in sh.items() if k not in ("clamp_exp", "clamp_sh", "alt_keys")},
            "clamp_exp": sh["clamp_exp"], "clamp_sh": sh["clamp_sh"], "alt_keys": sh.get("alt_keys", False)}
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(meta, f, indent=1)


def make_model(name, sh, qtype, out, n_threads, alt_keys=False, llama=True, keep_twin=False):
    rng = np.random.default_rng(sh["seed"])
    weights = build_weights(sh, rng)
    qrng = np.random.default_rng(sh["seed"] + 1000)
    tensors, twin = {}, {}
    for n, a in weights.items():
        raw, qt, t = encode(n, a, qtype, qrng)
        tensors[n] = (raw, qt)
        twin[n] = (t, QT.F32)
    tokens, types, merges = make_vocab(sh["n_vocab"])
    path = os.path.join(out, name + ".gguf")
    write_gguf(path, sh, tensors, tokens, types, merges, alt_keys)
    if not llama:
        return
    ref_path = path
    if qtype != "f32":
        ref_path = os.path.join(out, name + ".twin-f32.gguf")
        write_gguf(ref_path, sh, twin, tokens, types, merges)
    prng = np.random.default_rng(sh["seed"] + 7)
    prompt = [int(x) for x in prng.integers(3, sh["n_vocab"] - 4, size=20)]
    logits, gen = llama_reference(ref_path, prompt, 32, n_threads)
    if ref_path != path and not keep_twin:
        os.remove(ref_path)
    save_golden(out, name, dict(sh, alt_keys=alt_keys), prompt, logits, gen, qtype, "llama-cpp-python 0.3.36" +
                (" on the F32 twin (same weights dequantized by gguf-py)" if qtype != "f32" else ""))
    print(f"{name}: {len(prompt)} tokens, greedy {gen[:8]}...", file=sys.stderr)


def make_dequant_vectors(out):
    """Random blocks of every supported type and gguf-py's numpy dequantization of them."""
    rng = np.random.default_rng(42)
    w = gguf.GGUFWriter(os.path.join(out, "dequant-vectors.gguf"), "vectors")
    for qt in (QT.F16, QT.BF16, QT.Q8_0, QT.Q4_0, QT.Q4_K, QT.Q5_K, QT.Q6_K):
        bs, ts = gguf.GGML_QUANT_SIZES[qt]
        n_blocks = 64 if bs > 1 else 256
        if qt in (QT.Q4_K, QT.Q5_K, QT.Q6_K):
            raw = rng.integers(0, 256, size=(n_blocks, ts), dtype=np.uint8)
            # keep d/dmin finite
            off = (208,) if qt == QT.Q6_K else (0, 2)
            for o in off:
                raw[:, o:o + 2] = rng.uniform(-1, 1, n_blocks).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
            raw = raw.reshape(4, -1)
        elif qt in (QT.Q8_0, QT.Q4_0):
            raw = rng.integers(0, 256, size=(n_blocks, ts), dtype=np.uint8)
            raw[:, 0:2] = rng.uniform(-1, 1, n_blocks).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
            raw = raw.reshape(4, -1)
        elif qt == QT.F16:
            raw = rng.uniform(-100, 100, (4, 64)).astype(np.float16).view(np.uint8)
        else:
            raw = gguf.quants.quantize(rng.uniform(-100, 100, (4, 64)).astype(np.float32), QT.BF16)
        expected = gguf.quants.dequantize(raw, qt).astype(np.float32)
        w.add_tensor(qt.name.lower() + ".raw", raw, raw_dtype=qt)
        w.add_tensor(qt.name.lower() + ".expected", expected.reshape(4, -1))
    # The other types of published Step 3.5 quants (after the first ones, so their random bytes stay the same):
    # random blocks with finite fp16 scales at each layout's offsets.
    half_offsets = {QT.Q4_1: (0, 2), QT.Q5_0: (0,), QT.Q5_1: (0, 2), QT.IQ4_NL: (0,),
                    QT.Q2_K: (80, 82), QT.Q3_K: (108,), QT.IQ4_XS: (0,)}
    for qt, offs in half_offsets.items():
        bs, ts = gguf.GGML_QUANT_SIZES[qt]
        n_blocks = 64
        raw = rng.integers(0, 256, size=(n_blocks, ts), dtype=np.uint8)
        for o in offs:
            raw[:, o:o + 2] = rng.uniform(-1, 1, n_blocks).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
        raw = raw.reshape(4, -1)
        expected = gguf.quants.dequantize(raw, qt).astype(np.float32)
        w.add_tensor(qt.name.lower() + ".raw", raw, raw_dtype=qt)
        w.add_tensor(qt.name.lower() + ".expected", expected.reshape(4, -1))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


PRESETS = ("Q4_K_S", "Q4_K_M", "Q3_K_M", "Q2_K", "IQ4_XS")


def make_preset_models(out, llama_bin, n_threads):
    """tiny-b written as F16, quantized by llama.cpp's own llama-quantize with the presets published Step 3.5
    quants use (mixes of K-quants with Q4_0/Q5_0/IQ4_NL fallbacks where rows are not whole 256-blocks);
    llama.cpp's reference logits come from each file's F32 twin (every tensor dequantized by gguf-py)."""
    import subprocess
    sh = SHAPES["tiny-b"]
    src = os.path.join(out, "tiny-b-f16-source.gguf")
    make_model("tiny-b-f16-source", sh, "f16", out, n_threads, llama=False)
    tokens, types, merges = make_vocab(sh["n_vocab"])
    for preset in PRESETS:
        name = "tiny-b-" + preset.lower()
        path = os.path.join(out, name + ".gguf")
        subprocess.run([os.path.join(llama_bin, "llama-quantize"), src, path, preset, str(n_threads)],
                       check=True, capture_output=True)
        reader = gguf.GGUFReader(path)
        twin = {t.name: (gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32), QT.F32) for t in reader.tensors}
        kinds = sorted({t.tensor_type.name for t in reader.tensors})
        ref_path = os.path.join(out, name + ".twin-f32.gguf")
        write_gguf(ref_path, sh, twin, tokens, types, merges)
        prng = np.random.default_rng(sh["seed"] + 7)
        prompt = [int(x) for x in prng.integers(3, sh["n_vocab"] - 4, size=20)]
        logits, gen = llama_reference(ref_path, prompt, 32, n_threads)
        os.remove(ref_path)
        save_golden(out, name, sh, prompt, logits, gen, f"llama-quantize {preset} of tiny-b F16 ({', '.join(kinds)})",
                    "llama-cpp-python 0.3.36 on the F32 twin (every tensor dequantized by gguf-py)")
        print(f"{name}: {', '.join(kinds)}; greedy {gen[:8]}...", file=sys.stderr)
    os.remove(src)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", default=None, help="make only this model: tiny-a, tiny-b or custom")
    ap.add_argument("--type", default="f32", help="with --shape: f32, f16, bf16, q8_0, q4_0 or kmix")
    ap.add_argument("--name", default=None, help="with --shape: output base name")
    ap.add_argument("--keep-twin", action="store_true", help="keep NAME.twin-f32.gguf (for check_logits.py --twin)")
    ap.add_argument("--dequant-only", action="store_true", help="write only dequant-vectors.gguf (needs gguf and numpy, not llama.cpp)")
    ap.add_argument("--presets", metavar="LLAMA_BIN", default=None,
                    help="write only the llama-quantize preset models (tiny-b-q4_k_s ...), with llama-quantize from LLAMA_BIN "
                         "(../shared/tools/llama-tools.sh builds it)")
    for key in ("n_embd", "n_vocab", "n_layer", "n_dense", "n_nextn", "head_dim", "heads_full", "heads_swa",
                "kv_heads", "n_ff", "n_expert", "n_used", "n_ff_exp", "n_ff_sh", "window", "seed"):
        ap.add_argument("--" + key.replace("_", "-"), type=int, default=None)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.presets:
        make_preset_models(args.out, args.presets, args.threads)
        return
    if args.shape:
        sh = dict(SHAPES.get(args.shape, SHAPES["tiny-a"]))
        for key in list(sh):
            v = getattr(args, key, None)
            if v is not None:
                sh[key] = v
        make_model(args.name or f"{args.shape}-{args.type}", sh, args.type, args.out, args.threads, keep_twin=args.keep_twin)
        return
    make_dequant_vectors(args.out)
    if args.dequant_only:
        return
    for t in ("f32", "f16", "bf16", "q8_0", "q4_0"):
        make_model(f"tiny-a-{t}", SHAPES["tiny-a"], t, args.out, args.threads)
    make_model("tiny-b-kmix", SHAPES["tiny-b"], "kmix", args.out, args.threads)


if __name__ == "__main__":
    main()
