#!/usr/bin/env python3
"""Writes the trained demo model as a Step 3.5 GGUF: the official `step35` keys and tensor names (MTP blocks as
`blk.N.nextn.*` after the main layers), the tokenizer as `tokenizer.ggml.*` (byte-level BPE, `qwen2`
pre-tokenizer) and the real chat template as `tokenizer.chat_template`.

Matrices go out as F32 (`--type f32`, the file llama.cpp's logits are checked on against JAX) or Q8_0 (`--type
q8_0`, gguf-py's reference quantizer); norms, the router, its selection bias, `rope_freqs` and the head gates
stay F32 (`keeps_f32`). Token types: the control tokens 3, the tags the parsers read (`<think>`,
`<tool_call>`, ...) user-defined 4, the rest normal 1.

Usage: Scripts/train/.venv/bin/python Scripts/train/export.py [--run work/run] [--type q8_0] --out FILE.gguf
"""
import argparse
import json
import os
import sys

import gguf
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model as M  # noqa: E402
import tokenizer as T  # noqa: E402

WORK = os.path.join(HERE, "work")
TEMPLATE = os.path.join(os.path.dirname(HERE), "chat", "work", "StepFun3.5-Flash.jinja")


def ggml_array(name, w):
    """A parameter in GGUF's row order: [in, out] matrices become [out, in] rows, experts [E, out, in]."""
    w = np.asarray(w, np.float32)
    if name == "token_embd.weight" or w.ndim == 1:
        return w
    return np.ascontiguousarray(np.swapaxes(w, -1, -2))


def keeps_f32(name, w):
    """Norms, biases, the router and `rope_freqs` (as llama.cpp's quantizer), and the head gates: a sliding
    layer's gate has 6 rows, which Switchyard cannot repack into four-row groups, and its unpacked Q8_0 path
    rounds a token differently in a pass of one and a pass of several (a draft verification), which changed
    greedy tokens under --draft on the trial model (6 KB of F32 instead)."""
    return w.ndim == 1 or "ffn_gate_inp" in name or name == "rope_freqs.weight" or "attn_gate" in name


def q8_0_values(w):
    """The values a Q8_0 tensor of `w` holds, as F32 (gguf-py's reference quantizer, then its dequantizer)."""
    q = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)
    return gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0).reshape(w.shape).astype(np.float32)


def add_config(g, cfg):
    n = cfg.layers
    swa = [cfg.is_swa(il) for il in range(n)]
    g.add_context_length(cfg.context_length)
    g.add_embedding_length(cfg.embedding_length)
    g.add_block_count(n)
    g.add_feed_forward_length(cfg.feed_forward_length)
    g.add_head_count([cfg.heads(il) for il in range(n)])
    g.add_head_count_kv(cfg.head_count_kv)
    g.add_key_length(cfg.key_length)
    g.add_value_length(cfg.key_length)
    g.add_layer_norm_rms_eps(cfg.rms_epsilon)
    g.add_sliding_window(cfg.sliding_window)
    g.add_array(f"{g.arch}.attention.sliding_window_pattern", swa)
    g.add_rope_dimension_count(cfg.key_length)  # full layers rotate half of it, sliding layers all of it
    g.add_rope_freq_base(cfg.rope_freq_base)
    g.add_float32(f"{g.arch}.rope.freq_base_swa", cfg.rope_freq_base_swa)
    g.add_expert_count(cfg.expert_count)
    g.add_expert_used_count(cfg.expert_used_count)
    g.add_expert_feed_forward_length(cfg.expert_feed_forward_length)
    g.add_expert_shared_feed_forward_length(cfg.expert_shared_feed_forward_length)
    g.add_uint32(f"{g.arch}.expert_gating_func", 2)  # sigmoid
    g.add_expert_weights_scale(cfg.expert_weights_scale)
    g.add_bool(f"{g.arch}.expert_weights_norm", True)
    g.add_array(f"{g.arch}.swiglu_clamp_exp", [float(cfg.clamp_exp(il)) for il in range(n)])
    g.add_array(f"{g.arch}.swiglu_clamp_shexp", [float(cfg.clamp_shexp(il)) for il in range(n)])
    g.add_leading_dense_block_count(cfg.leading_dense_block_count)
    g.add_uint32(f"{g.arch}.nextn_predict_layers", cfg.nextn_predict_layers)


def add_tokenizer(g, tok_json):
    t = json.load(open(tok_json, encoding="utf-8"))
    vocab = t["model"]["vocab"]
    tokens = [None] * len(vocab)
    for s, i in vocab.items():
        tokens[i] = s
    for a in t["added_tokens"]:
        tokens[a["id"]] = a["content"]
    assert all(x is not None for x in tokens), "tokenizer ids are not contiguous"
    types = [gguf.TokenType.NORMAL] * len(tokens)
    for s in T.CONTROL:
        types[tokens.index(s)] = gguf.TokenType.CONTROL
    for s in T.USER_DEFINED:
        types[tokens.index(s)] = gguf.TokenType.USER_DEFINED
    g.add_tokenizer_model("gpt2")
    g.add_tokenizer_pre("qwen2")
    g.add_token_list(tokens)
    g.add_token_types(types)
    g.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in t["model"]["merges"]])
    g.add_bos_token_id(tokens.index("<|BOS|>"))
    g.add_eos_token_id(tokens.index("<|im_end|>"))
    g.add_eot_token_id(tokens.index("<|im_end|>"))
    g.add_add_bos_token(True)
    g.add_chat_template(open(TEMPLATE, encoding="utf-8").read())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default=os.path.join(WORK, "run"))
    ap.add_argument("--type", choices=["f32", "q8_0", "q8_0-twin"], default="q8_0",
                    help="q8_0-twin: F32 holding exactly the values the q8_0 file holds (llama.cpp's golden logits)")
    ap.add_argument("--name", default="switchyard-demo-step35")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if not os.path.exists(TEMPLATE):
        sys.exit("export: the chat template is missing; run bash Scripts/chat/fetch-template.sh")
    cfg = M.load_config(a.run)
    params = dict(np.load(os.path.join(a.run, "params.npz")))
    g = gguf.GGUFWriter(a.out, "step35")
    g.add_name(a.name)
    add_config(g, cfg)
    add_tokenizer(g, os.path.join(WORK, "tokenizer.json"))
    for name in sorted(params, key=lambda k: (k.startswith("blk."), int(k.split(".")[1]) if k.startswith("blk.") else 0, k)):
        w = ggml_array(name, params[name])
        quantized = a.type != "f32" and not keeps_f32(name, w) and w.shape[-1] % 32 == 0
        if quantized and a.type == "q8_0":
            q = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)
            g.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        elif quantized:
            g.add_tensor(name, q8_0_values(w))
        else:
            g.add_tensor(name, w)
    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()
    print(f"{a.out}: {os.path.getsize(a.out) / 1e6:.2f} MB, {len(params)} tensors, {a.type}")


if __name__ == "__main__":
    main()
