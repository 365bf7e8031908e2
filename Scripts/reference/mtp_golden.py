#!/usr/bin/env python3
"""Golden MTP draft logits from llama.cpp (llama-cpp-python 0.3.36) for Switchyard's tests.

Run with the venv that Scripts/reference/run.sh makes:
  Scripts/reference/.venv/bin/python Scripts/reference/mtp_golden.py Tests/Fixtures/tiny-a-f32.gguf OUT_PREFIX

What it does, through llama.cpp's own MTP graph (`graph_mtp` in src/models/step35.cpp):
  1. A target context (LLAMA_CONTEXT_TYPE_DEFAULT) decodes the fixture prompt with
     llama_set_embeddings_nextn on, giving the pre-norm hidden state h_q at every position.
  2. An MTP context (LLAMA_CONTEXT_TYPE_MTP) runs, for each head k (llama_set_nextn_layer_offset), the
     pairs (h_{q-1}, x_q) at position q (zeros before position 0), the pairing of llama.cpp's
     `draft-mtp` driver (common/speculative.cpp), through llama_process with an extended batch.
  3. It writes OUT_PREFIX.mtp.json (prompt, heads) and OUT_PREFIX.mtp.f32: little-endian float32
     [heads][n_tokens][n_vocab], every row's logits.
The extended-batch API and llama_process are in llama_cpp.py (h goes in as the token's embedding row,
llama_batch_ext_set_embd_token, as common/speculative.cpp's batches carry it: set_embd_state is a stub in
0.3.36); the staging symbols
(llama_set_embeddings_nextn, llama_get_embeddings_nextn_ith, llama_set_nextn_layer_offset, from
src/llama-ext.h, exported with C++ linkage) are bound here with ctypes from the same shared library.
"""
import ctypes
import json
import sys

import numpy as np
import llama_cpp as L

LIB = L.llama_cpp._lib


def staging(name, mangled, argtypes, restype):
    """src/llama-ext.h declares these without extern "C": bind the C++ symbol (same calling convention)."""
    f = getattr(LIB, mangled)
    f.argtypes = argtypes
    f.restype = restype
    return f


set_embeddings_nextn = staging("llama_set_embeddings_nextn", "_Z26llama_set_embeddings_nextnP13llama_contextbb",
                               [ctypes.c_void_p, ctypes.c_bool, ctypes.c_bool], None)
get_embeddings_nextn_ith = staging("llama_get_embeddings_nextn_ith", "_Z30llama_get_embeddings_nextn_ithP13llama_contexti",
                                   [ctypes.c_void_p, ctypes.c_int32], ctypes.POINTER(ctypes.c_float))
set_nextn_layer_offset = staging("llama_set_nextn_layer_offset", "_Z28llama_set_nextn_layer_offsetP13llama_contexti",
                                 [ctypes.c_void_p, ctypes.c_int32], None)


def context(model, ctx_type):
    p = L.llama_context_default_params()
    p.n_ctx = 256
    p.n_batch = 256
    p.n_ubatch = 256
    p.n_threads = 2
    p.n_threads_batch = 2
    p.type_k = 0
    p.type_v = 0
    p.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
    p.ctx_type = ctx_type
    ctx = L.llama_init_from_model(model, p)
    if not ctx:
        sys.exit(f"cannot create a context of type {ctx_type}")
    return ctx


def main():
    path, out = sys.argv[1], sys.argv[2]
    prompt = [int(t) for t in (sys.argv[3].split(",") if len(sys.argv) > 3 else "5,17,200,3,99,42".split(","))]
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.load_mtp = True
    model = L.llama_model_load_from_file(path.encode(), mp)
    if not model:
        sys.exit("cannot load " + path)
    heads = L.llama_model_n_layer_nextn(model)
    n_embd = L.llama_model_n_embd(model)
    n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
    n = len(prompt)

    # 1. Target pass: every position's pre-norm hidden state.
    tgt = context(model, L.LLAMA_CONTEXT_TYPE_DEFAULT)
    set_embeddings_nextn(tgt, True, False)
    batch = L.llama_batch_init(n, 0, 1)
    for i, t in enumerate(prompt):
        batch.token[i] = t
        batch.pos[i] = i
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = 0
        batch.logits[i] = True
    batch.n_tokens = n
    if L.llama_decode(tgt, batch) != 0:
        sys.exit("target decode failed")
    h = np.zeros((n, n_embd), dtype=np.float32)
    for i in range(n):
        row = get_embeddings_nextn_ith(tgt, i)
        if not row:
            sys.exit(f"no h_nextn row {i}")
        h[i] = np.ctypeslib.as_array(row, shape=(n_embd,))

    # 2. Each head on the pairs (h_{q-1}, x_q) at position q.
    dft = context(model, L.LLAMA_CONTEXT_TYPE_MTP)
    shifted = np.vstack([np.zeros((1, n_embd), np.float32), h[:-1]]).copy()
    logits = np.zeros((heads, n, n_vocab), dtype=np.float32)
    for k in range(heads):
        L.llama_memory_clear(L.llama_get_memory(dft), True)
        set_nextn_layer_offset(dft, k)
        b = L.llama_batch_ext_init(dft)
        for q in range(n):
            idx = L.llama_batch_ext_add_token(b, 0, prompt[q])
            pos = (ctypes.c_int32 * 1)(q)
            L.llama_batch_ext_set_pos(b, idx, pos)
            row = shifted[q]
            e = L.llama_embd(row.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), 1, n_embd)
            if not L.llama_batch_ext_set_embd_token(b, idx, e):
                sys.exit(f"cannot set the h row of token {q}")
            L.llama_batch_ext_set_output_logits(b, idx, True)
        rc = L.llama_process(dft, L.LLAMA_PROCESS_TYPE_DECODE, b)
        if rc != 0:
            sys.exit(f"MTP head {k}: llama_process returned {rc}")
        for q in range(n):
            logits[k, q] = np.ctypeslib.as_array(L.llama_get_logits_ith(dft, q), shape=(n_vocab,))
        L.llama_batch_ext_free(b)
    logits.astype("<f4").tofile(out + ".mtp.f32")
    h.astype("<f4").tofile(out + ".h.f32")
    json.dump({"model": path.split("/")[-1], "prompt": prompt, "heads": heads, "n_vocab": n_vocab, "n_embd": n_embd,
               "pairing": "(h_{q-1}, x_q) at position q, zeros before 0", "llama_cpp_python": L.__version__},
              open(out + ".mtp.json", "w"), indent=1)
    print(f"wrote {out}.mtp.f32: {heads} heads x {n} positions x {n_vocab}")


if __name__ == "__main__":
    main()
