"""llama.cpp's named F32 intermediates for one prompt pass on a GGUF file (its graph callback), written as
NAME.f32 files beside the ones `switchyard logits --dump-dir` writes, to find the first place two runs part.
F32 KV, no flash attention, one ubatch (as fast_vs_llama.py). With --compare DIR it prints, per intermediate
of Switchyard's dump DIR in forward order, the largest relative difference and the first position above 1e-5.

usage: LLAMA_CPP_LIB_PATH=... python llama_intermediates.py MODEL.gguf FIXTURE.json OUTDIR [--compare SWITCHYARD_DUMP]
(needs llama-cpp-python 0.3.36 and numpy; Scripts/reference/run.sh makes such a venv)
"""
import ctypes, json, sys, os
import numpy as np
import llama_cpp
from llama_cpp import Llama
path, prompt_json, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
compare = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--compare" else None
prompt = json.load(open(prompt_json))["prompt"]
libdir = os.environ["LLAMA_CPP_LIB_PATH"]
gb = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"))
gb.ggml_get_name.restype = ctypes.c_char_p; gb.ggml_get_name.argtypes = [ctypes.c_void_p]
gb.ggml_nelements.restype = ctypes.c_int64; gb.ggml_nelements.argtypes = [ctypes.c_void_p]
gb.ggml_nbytes.restype = ctypes.c_size_t; gb.ggml_nbytes.argtypes = [ctypes.c_void_p]
gb.ggml_is_contiguous.restype = ctypes.c_bool; gb.ggml_is_contiguous.argtypes = [ctypes.c_void_p]
gb.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
seen = {}
@llama_cpp.ggml_backend_sched_eval_callback
def cb(t, ask, user):
    if ask: return True
    name = gb.ggml_get_name(t).decode()
    ttype = ctypes.cast(t, ctypes.POINTER(ctypes.c_int32))[0]
    if ttype == 0 and gb.ggml_is_contiguous(t):
        n = gb.ggml_nelements(t)
        buf = np.empty(n, dtype=np.float32)
        gb.ggml_backend_tensor_get(t, buf.ctypes.data, 0, gb.ggml_nbytes(t))
        seen[name] = buf
    return True
llm = Llama(model_path=path, n_ctx=256, n_batch=256, n_ubatch=256, logits_all=True, flash_attn=False, n_threads=2,
            n_threads_batch=2, verbose=False)
cp = llama_cpp.llama_context_default_params()
cp.n_ctx = 256; cp.n_batch = 256; cp.n_ubatch = 256; cp.n_threads = 2; cp.n_threads_batch = 2
cp.cb_eval = cb; cp.cb_eval_user_data = None; cp.type_k = 0; cp.type_v = 0
if hasattr(cp, "flash_attn_type"):
    cp.flash_attn_type = 0
ctx = llama_cpp.llama_init_from_model(llm._model.model, cp)
arr = (llama_cpp.llama_token * len(prompt))(*prompt)
batch = llama_cpp.llama_batch_get_one(arr, len(prompt))
assert llama_cpp.llama_decode(ctx, batch) == 0
os.makedirs(outdir, exist_ok=True)
for k, v in seen.items(): v.tofile(os.path.join(outdir, k.replace("/", "_") + ".f32"))
print(len(seen), "tensors written to", outdir)
ORDER = ["attn_norm", "Qcur", "Kcur", "Vcur", "Qcur_normed", "Kcur_normed", "Qcur_pos", "Kcur_pos", "attn_out", "attn_gate_sigmoid",
         "attn_gated", "attn_proj", "ffn_inp", "ffn_norm", "ffn_moe_probs", "ffn_moe_weights_scaled", "ffn_moe_out", "ffn_shared_out",
         "ffn_out", "l_out"]
if compare:
    n_layers = 1 + max(int(f.rsplit("-", 1)[1][:-4]) for f in os.listdir(compare) if f.rsplit("-", 1)[-1][:-4].isdigit())
    for il in range(n_layers):
        for name in ORDER:
            f = f"{name}-{il}.f32"
            if not (os.path.exists(os.path.join(compare, f)) and os.path.exists(os.path.join(outdir, f))):
                continue
            a = np.fromfile(os.path.join(compare, f), dtype=np.float32).reshape(len(prompt), -1)
            b = np.fromfile(os.path.join(outdir, f), dtype=np.float32).reshape(len(prompt), -1)
            rel = np.abs(a - b).max(1) / (np.abs(b).max(1) + 1e-30)
            bad = np.nonzero(rel > 1e-5)[0]
            print(f"{f:30s} max rel {rel.max():.1e}  first position above 1e-5: {bad[0] if len(bad) else '-'}")
