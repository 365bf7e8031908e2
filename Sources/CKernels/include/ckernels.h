// Switchyard fast CPU kernels (C, AVX2/FMA/F16C where available, scalar elsewhere).
// Every function here has a plain Swift reference in the Kernels target; tests compare the two.
#ifndef SWITCHYARD_CKERNELS_H
#define SWITCHYARD_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GGML type ids this library computes with. */
enum {
    SY_F32 = 0, SY_F16 = 1, SY_Q4_0 = 2, SY_Q4_1 = 3, SY_Q5_0 = 6, SY_Q5_1 = 7, SY_Q8_0 = 8,
    SY_Q2_K = 10, SY_Q3_K = 11, SY_Q4_K = 12, SY_Q5_K = 13, SY_Q6_K = 14, SY_IQ4_NL = 20, SY_IQ4_XS = 23, SY_BF16 = 30
};

/* ---- thread pool: persistent workers, spin-then-sleep ---- */
typedef struct sy_pool sy_pool;
typedef void (*sy_task_fn)(void *ctx, int ith, int nth);
sy_pool *sy_pool_create(int n_threads);
void sy_pool_free(sy_pool *pool);
int sy_pool_size(const sy_pool *pool);
/* Kernel calls dispatched through the pool so far. */
long sy_pool_runs(sy_pool *pool);
/* Exact mode of the pool's matmuls: quantized weights multiply float activations (the golden-tested
   path) instead of Q8_0-quantized ones (the fast path, the default). */
void sy_pool_set_exact(sy_pool *pool, int exact);
int sy_pool_exact(sy_pool *pool);
/* The kernel path of the pool's kernels (float and integer): level (clamped to the CPU's best), or -1 for
   the process's path (sy_isa); sy_pool_isa is the one in use. */
void sy_pool_set_isa(sy_pool *pool, int level);
int sy_pool_isa(sy_pool *pool);
/* The int8 multiply-add issue rate of the pool's path: runs a register-only loop on every thread and returns
   the number of int8 products computed (time the call; pool.c). */
long sy_probe_int8(sy_pool *pool, long iters);
/* A grow-only buffer of at least `bytes` for this thread and `slot` (0-9), kept for the thread's life and freed
   when it ends, so kernels need no allocation per call in steady state (contents unspecified; a slot serves one
   use at a time: 0-1 attention tasks, 2-4 the attention merge's partials, 5 a matmul thread's unpacked row,
   6-8 the caller's quantized activations, their scales and their group sums). */
void *sy_scratch(int slot, size_t bytes);
/* Introspection of the scratch: the calling thread's block id (from 1; made now if it had none), the bytes it
   holds, whether the block with that id was freed (among the last 256 freed: its thread ended), and each pool
   thread's block id (ids[0..n), the caller first). */
long sy_scratch_id(void);
long sy_scratch_held(void);
int sy_scratch_was_freed(long id);
void sy_pool_scratch_ids(sy_pool *pool, long *ids);
/* Runs fn(ctx, i, n) for i in [0, n) on the pool's threads (the caller is thread 0) and waits. */
void sy_pool_run(sy_pool *pool, sy_task_fn fn, void *ctx);

/* ---- rows ---- */
void sy_dequant_row(int type, const void *src, float *dst, int64_t n);
/* 1 if this build has a fast kernel for the type */
int sy_type_supported(int type);

/* Keeps freed buffers of up to 32 MiB in the heap (glibc mallopt: mmap threshold 32 MiB, trim threshold 512 MiB);
   1 when applied. */
int sy_keep_freed_buffers(void);

/* ---- matrix products: y[t*ldy + r] = sum_k W[r, k] * x[t*ldx + k] ---- */
typedef struct {
    const void *w;      /* first row of this job's weight matrix */
    const float *x;     /* activations, n_tok rows of ldx floats */
    float *y;           /* outputs, n_tok rows of ldy floats */
    int64_t n_tok, ldx, ldy;
} sy_mm_job;
/* All jobs share type and geometry (rows x cols, row_bytes apart); rows are split across threads.
   packed: the weights are in the four-row layout of sy_pack4 (rows % 4 == 0). */
void sy_matmul(sy_pool *pool, int type, int64_t rows, int64_t cols, size_t row_bytes,
               const sy_mm_job *jobs, int n_jobs, int packed);

/* ---- kernel paths (qdot.c) ---- */
enum { SY_ISA_SCALAR = 0, SY_ISA_AVX2 = 1, SY_ISA_AVX512 = 2 };
/* The best path this CPU has; the path in use (the best, or lower when SWITCHYARD_ISA=scalar|avx2|avx512
   asks for it); force a path (clamped to the CPU's best; returns the one in use); its name. */
int sy_isa_detected(void);
int sy_isa(void);
int sy_set_isa(int level);
const char *sy_isa_name(int level);

/* ---- quantized activations (qdot.c) ---- */
/* n floats to int8 by 127 / amax (nearest, ties to even); returns amax (the Q8_0 and Q8_K quantizers' core). */
float sy_q8_block(const float *x, int n, int8_t *q);
/* x[n] (n % 32 == 0) into n int8 and n / 32 scales (Q8_0 blocks; scales rounded through fp16). sy_matmul's
   quantizer also keeps each block's sum of the int8 (for Q4_0's one-token kernel). */
void sy_quantize_q8(const float *x, int64_t n, int8_t *q, float *d);
/* 1 for the weight types that pair with Q8_0 activations (Q8_0, Q4_0, Q5_0, IQ4_NL; Q4_1 and Q5_1 with their
   block sums, llama.cpp's Q8_1); sy_qtile_takes: the ones the four-row tile computes. */
int sy_q8_0_pairs(int type);
int sy_qtile_takes(int type);
/* One such weight row against nt (<= 4) quantized tokens (token t at q + t*ldq, scales at d + t*ldq/32, block
   sums at s + t*ldq/32, or s NULL) on path isa; sy_qdot_ref is the plain reference. */
void sy_qdot_row(int isa, int type, const void *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt,
                 float *out);
void sy_qdot_ref(int type, const void *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out);
/* Four such rows (row_bytes apart) against nt (<= 4) tokens: out[4 * r + t]; sy_qtile_ref is the plain reference. */
void sy_qtile(int isa, int type, const void *w, size_t row_bytes, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out);
void sy_qtile_ref(int type, const void *w, size_t row_bytes, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out);
/* ---- weights repacked into four-row groups at load (qpack.c) ---- */
/* 1 for the types with a packed layout (Q8_0, Q4_0, Q5_0, IQ4_NL; Q4_K in qpack_k.c). */
int sy_pack4_takes(int type);
/* rows (a multiple of 4) x cols of GGUF blocks at src into the packed layout at dst (same byte count). */
void sy_pack4(int type, const void *src, int64_t rows, int64_t cols, void *dst);
/* Row `row` of a packed matrix back in GGUF block layout (row_bytes at dst). */
void sy_unpack4_row(int type, const void *packed, int64_t cols, int64_t row, void *dst);
/* One packed row group (four rows) against nt (<= 4) Q8_0 tokens (as sy_qdot_row; Q4_0 and Q5_0 read the block sums s),
   or Q8_K tokens for Q4_K and Q6_K (as sy_qdot_k_row): out[4 * r + t]. The AVX2, VNNI and plain (sy_qpack_ref, sy_qpack_q4k_ref, sy_qpack_q6k_ref)
   paths give the same bits, for any nt. */
void sy_qpack(int isa, int type, const void *group, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt,
              float *out);
void sy_qpack_ref(int type, const void *group, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out);
void sy_qpack_q4k_ref(const void *group, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out);
void sy_qpack_q6k_ref(const void *group, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out);
/* 1 for the weight types that pair with Q8_K activations (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS). */
int sy_q8_k_pairs(int type);
/* Q8_K activations (qdot_k.c): x[n] (n % 256 == 0) into n int8, n / 256 scales and n / 16 group sums (16 values each). */
void sy_quantize_q8k(const float *x, int64_t n, int8_t *q, float *d, int16_t *s);
/* One Q2_K, Q3_K, Q4_K, Q5_K, Q6_K or IQ4_XS weight row against nt (<= 4) Q8_K tokens (token t at q + t*ldq, scales at d + t*ldq/32, sums at
   s + t*ldq/16); sy_qdot_k_ref is the plain reference. */
void sy_qdot_k_row(int isa, int type, const void *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out);
void sy_qdot_k_ref(int type, const void *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out);
/* sy_matmul's fast path for Q8_0/Q4_0/Q5_0/IQ4_NL (Q8_0 activations) and Q4_K/Q5_K/Q6_K/IQ4_XS (Q8_K) weights, unless the
   pool is exact: quantizes every job's tokens into scratch and points qs[j], ds[j], ss[j] at them;
   returns 0 (nothing done) when the path does not apply. */
int sy_quantize_jobs(sy_pool *pool, int type, int64_t cols, const sy_mm_job *jobs, int n_jobs, const int8_t **qs, const float **ds,
                     const int16_t **ss);

/* ---- row moves (rows.c) ---- */
/* dst[k] = src[idx[k]] (gather) or dst[idx[k]] = src[k] (scatter), rows of d floats, k < n. */
void sy_gather_rows(const float *src, const int32_t *idx, int64_t n, int64_t d, float *dst);
void sy_scatter_rows(const float *src, const int32_t *idx, int64_t n, int64_t d, float *dst);
/* out[idx[k]] += w[k] * y[r] with r = from[k] (from may be NULL: r = k; w may be NULL: += y[r]); y[k] *= w[k]. */
void sy_add_rows(const float *y, const int32_t *from, const int32_t *idx, const float *w, int64_t n, int64_t d, float *out);
void sy_scale_rows(float *y, const float *w, int64_t n, int64_t d);
/* The MoE router's top-a experts and weights per token from [t, e] scores (rows.c). */
void sy_moe_route(const float *probs, const float *bias, int64_t t, int64_t e, int a, int norm, float scale, int32_t *experts,
                  float *weights);
/* y[i] += x[i], i < n (residual adds). */
void sy_add_into(float *y, const float *x, int64_t n);
/* Dispatch rows of the cluster exchange (the order of Cluster's DispatchPayload). */
enum { SY_DISPATCH_F32 = 0, SY_DISPATCH_BF16 = 1, SY_DISPATCH_F16 = 2, SY_DISPATCH_INT8 = 3 };
int64_t sy_dispatch_row_bytes(int payload, int64_t d);
/* Row k of out: header (experts[k], weights[k]) and row src_row[k] of x in the payload. */
void sy_encode_rows(int payload, const float *x, const int32_t *src_row, const int32_t *experts, const float *weights,
                    int64_t n, int64_t d, uint8_t *out);
/* The inverse: n rows of b into x (row k), experts and weights. */
void sy_decode_rows(int payload, const uint8_t *b, int64_t n, int64_t d, float *x, int32_t *experts, float *weights);

/* ---- elementwise ---- */
/* y[r] = x[r] / rms(x[r]) * w for `rows` rows of n; w may be NULL. Sum of squares in double. */
void sy_rmsnorm(const float *x, const float *w, float *y, int64_t rows, int64_t n, float eps);
void sy_softmax(float *x, int64_t n);
/* y = silu(g) * u, or min(silu(g), L) * clamp(u, -L, L) when limit > 1e-6. */
void sy_swiglu(const float *g, const float *u, float *y, int64_t n, float limit);
/* x[i] = 1 / (1 + expf(-x[i])) in place. */
void sy_sigmoid(float *x, int64_t n);
/* sy_rmsnorm and sy_swiglu split over a pool's threads (large inputs only; the same bits as the serial call). */
void sy_rmsnorm_pool(sy_pool *pool, const float *x, const float *w, float *y, int64_t rows, int64_t n, float eps);
void sy_swiglu_pool(sy_pool *pool, const float *g, const float *u, float *y, int64_t n, float limit);
/* NeoX RoPE in place on n_heads heads of head_dim, rotating the first n_rot dims.
   freq_factors (n_rot/2 divisors) may be NULL. */
void sy_rope_neox(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, int32_t pos,
                  float freq_base, const float *freq_factors);

/* ---- attention ---- */
typedef struct {
    const float *q; int64_t ldq;          /* [n_tok][n_head * head_dim] (row stride ldq) */
    const void *k; const void *v;          /* [n_kv][n_head_kv * head_dim] rows of kv_type */
    int64_t ldk, ldv;                      /* row strides in BYTES */
    int32_t kv_type;                       /* SY_F32, SY_F16 or SY_Q8_0 (head_dim % 32 == 0) */
    const int32_t *kpos; int64_t n_kv;     /* position of each cached key */
    const int32_t *qpos; int64_t n_tok;    /* position of each query */
    int64_t n_head, n_head_kv, head_dim;
    int32_t window;                        /* 0: full causal; else key p0 visible iff 0 <= p1 - p0 < window */
    float scale;
    float *out; int64_t ldo;               /* [n_tok][n_head * head_dim] */
} sy_attn_args;
void sy_attention(sy_pool *pool, const sy_attn_args *a);

#ifdef __cplusplus
}
#endif
#endif
