// Integer dot products with quantized activations: the fast path for Q8_0, Q4_0, Q5_0 and IQ4_NL weights
// (llama.cpp's approach, our code), the ISA choice, and the per-matmul activation quantization (also the
// Q8_K kind of qdot_k.c). Each token's activations are quantized once per matmul into Q8_0 blocks (32 int8
// with one scale, the scale rounded through fp16 as ggml's block_q8_0 stores it); a weight block, unpacked to
// 32 int8 in registers, times an activation block is then one integer multiply-accumulate of 32 pairs and
// one float FMA with the two scales. Paths: a plain C reference (also the scalar path), AVX2 (`vpmaddubsw` + `vpmaddwd`), and
// AVX-512 VNNI (`vpdpbusd`, 256-bit with VL); chosen at run time from cpuid, lowered by SWITCHYARD_ISA.
//
// Dimension legend: C input columns (a multiple of 32), B = C / 32 blocks per row, T tokens.
#include "ckernels.h"
#include "kernels_internal.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

/* ---- ISA selection ---- */

static int sy_detect(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    int level = SY_ISA_SCALAR;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = SY_ISA_AVX2;
    if (level == SY_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) level = SY_ISA_AVX512;
    return level;
#else
    return SY_ISA_SCALAR;
#endif
}

static atomic_int sy_isa_level = -1;

int sy_isa_detected(void) { return sy_detect(); }

int sy_isa(void) {
    int l = atomic_load_explicit(&sy_isa_level, memory_order_relaxed);
    if (l >= 0) return l;
    l = sy_detect();
    /* A lower path can be forced for tests and comparisons; a higher one than the CPU has cannot. */
    const char *e = getenv("SWITCHYARD_ISA");
    if (e) {
        int want = !strcmp(e, "scalar") ? SY_ISA_SCALAR : !strcmp(e, "avx2") ? SY_ISA_AVX2 : !strcmp(e, "avx512") ? SY_ISA_AVX512 : l;
        if (want < l) l = want;
    }
    atomic_store(&sy_isa_level, l);
    return l;
}

int sy_set_isa(int level) {
    const int d = sy_detect();
    atomic_store(&sy_isa_level, level < d ? level : d);
    return sy_isa();
}

const char *sy_isa_name(int level) {
    switch (level) {
    case SY_ISA_AVX512: return "avx512-vnni";
    case SY_ISA_AVX2: return "avx2";
    default: return "scalar";
    }
}


/* ---- activation quantization: n floats (n % 32 == 0) into n / 32 blocks ---- */

/* A scale as ggml's block_q8_0 keeps it: rounded to fp16 (nearest even, subnormals included). */
static inline float sy_round_fp16(float d) { return (float)(_Float16)d; }

float sy_q8_block(const float *x, int n, int8_t *q) {
    float amax = 0;
    for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    /* Values are scaled by the exact 127 / amax, nearest with ties to even (ggml's nearest_int). */
    const float is = amax != 0 ? 127.0f / amax : 0;
    for (int i = 0; i < n; i++) q[i] = (int8_t)lrintf(x[i] * is);
    return amax;
}

void sy_quantize_q8(const float *x, int64_t n, int8_t *q, float *d) {
    for (int64_t b = 0; b < n / 32; b++) d[b] = sy_round_fp16(sy_q8_block(x + 32 * b, 32, q + 32 * b) / 127.0f);
}

/* ---- one weight row against nt (<= 4) quantized tokens: the plain reference ---- */

static const int8_t sy_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* Bytes per block of the 32-blocks these kernels take, each with its fp16 scale first. */
static inline int sy_qbb(int type) { return type == SY_Q8_0 ? 34 : type == SY_Q5_0 ? 22 : 18; }

/* Weight i (of 32) of a block as a small integer: Q8_0 as is, Q4_0 nibble - 8, Q5_0 nibble with the
   fifth bit from the 32-bit word at byte 2, minus 16, IQ4_NL the nibble's level. */
static inline int sy_wq(int type, const uint8_t *blk, int i) {
    if (type == SY_Q8_0) return (int8_t)blk[2 + i];
    const uint8_t *qs = blk + (type == SY_Q5_0 ? 6 : 2);
    const int nib = i < 16 ? qs[i] & 0xF : qs[i - 16] >> 4;
    if (type == SY_IQ4_NL) return sy_iq4nl[nib];
    if (type == SY_Q5_0) {
        uint32_t h; memcpy(&h, blk + 2, 4);
        return (nib | ((h >> i) & 1) << 4) - 16;
    }
    return nib - 8;
}

/* The weight types whose blocks pair with Q8_0 activations here. */
int sy_q8_0_pairs(int type) { return type == SY_Q8_0 || type == SY_Q4_0 || type == SY_Q5_0 || type == SY_IQ4_NL; }

void sy_qdot_ref(int type, const void *wrow, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const uint8_t *w = (const uint8_t *)wrow;
    const int bb = sy_qbb(type);
    for (int t = 0; t < nt; t++) {
        float acc = 0;
        for (int64_t b = 0; b < cols / 32; b++) {
            const uint8_t *blk = w + b * bb;
            const int8_t *qb = q + t * ldq + 32 * b;
            int s = 0;
            for (int i = 0; i < 32; i++) s += sy_wq(type, blk, i) * qb[i];
            acc += sy_f16_at(blk) * d[t * (ldq / 32) + b] * (float)s;
        }
        out[t] = acc;
    }
}

#if defined(__x86_64__)
/* ---- AVX2 ---- */
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

/* The 32 int8 weights of block blk (Q4_0 nibbles unpacked to [-8, 7] in element order). */
/* Byte j is 0xFF where bit j of the 32-bit word at p is set: byte j/8 of the word goes to byte j, OR a mask
   with every bit but j%8 set, compare with all ones. */
static inline __m256i sy_bits32(const uint8_t *p) {
    uint32_t x; memcpy(&x, p, 4);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x),
        _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
    return _mm256_cmpeq_epi8(_mm256_or_si256(v, _mm256_set1_epi64x(0x7FBFDFEFF7FBFDFE)), _mm256_set1_epi64x(-1));
}

/* The 32 weights of block blk as int8 in element order (see sy_wq). */
static inline __m256i sy_wbytes(int type, const uint8_t *blk) {
    if (type == SY_Q8_0) return _mm256_loadu_si256((const __m256i *)(blk + 2));
    const __m128i raw = _mm_loadu_si128((const __m128i *)(blk + (type == SY_Q5_0 ? 6 : 2)));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
    switch (type) {
    case SY_Q5_0:
        return _mm256_sub_epi8(_mm256_or_si256(nib, _mm256_and_si256(sy_bits32(blk + 2), _mm256_set1_epi8(0x10))), _mm256_set1_epi8(16));
    case SY_IQ4_NL:
        return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sy_iq4nl)), nib);
    default:
        return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
    }
}

/* sum of w[i] * x[i] as 8 int32 lanes: |w| times x with w's sign (one side must be unsigned). */
static inline __m256i sy_dot32_avx2(__m256i w, __m256i x) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}


/* One block's product for one token, as 8 float lanes scaled by both scales, added to acc. */
#define SY_QSTEP(DOT, b, acc)                                                                         \
    do {                                                                                              \
        const uint8_t *blk_ = w + (b) * bb;                                                           \
        const __m256 s_ = _mm256_cvtepi32_ps(DOT(sy_wbytes(type, blk_), _mm256_loadu_si256((const __m256i *)(q + 32 * (b))))); \
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sy_f16_at(blk_) * d[b]), s_, acc);                      \
    } while (0)

/* Decode (one token): four blocks in flight with their own accumulators, so consecutive FMAs do not wait
   on each other (one chain made the loop latency-bound at about half the memory bandwidth). */
#define SY_QDOT1(DOT)                                                                                 \
    do {                                                                                              \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                   \
        int64_t b = 0;                                                                                \
        for (; b + 4 <= nb; b += 4) {                                                                 \
            SY_QSTEP(DOT, b, a0); SY_QSTEP(DOT, b + 1, a1); SY_QSTEP(DOT, b + 2, a2); SY_QSTEP(DOT, b + 3, a3); \
        }                                                                                             \
        for (; b < nb; b++) SY_QSTEP(DOT, b, a0);                                                     \
        out[0] = sy_hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));                \
    } while (0)

/* Several tokens (prefill, batches): each block's weights are unpacked once and serve every token. */
#define SY_QDOTN(DOT)                                                                                 \
    do {                                                                                              \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
        for (int64_t b = 0; b < nb; b++) {                                                            \
            const uint8_t *blk = w + b * bb;                                                          \
            const __m256i wv = sy_wbytes(type, blk);                                                  \
            const float dw = sy_f16_at(blk);                                                          \
            for (int t = 0; t < nt; t++) {                                                            \
                const __m256 s = _mm256_cvtepi32_ps(DOT(wv, _mm256_loadu_si256((const __m256i *)(q + t * ldq + 32 * b)))); \
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * d[t * (ldq / 32) + b]), s, acc[t]);      \
            }                                                                                         \
        }                                                                                             \
        for (int t = 0; t < nt; t++) out[t] = sy_hsum8(acc[t]);                                       \
    } while (0)

static void sy_qdot_avx2(int type, const uint8_t *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const int bb = sy_qbb(type);
    const int64_t nb = cols / 32;
    if (nt == 1) SY_QDOT1(sy_dot32_avx2);
    else SY_QDOTN(sy_dot32_avx2);
}

/* Activation quantization, 8 lanes at a time; same rounding as the reference (nearest, ties to even). */
static void sy_quantize_q8_avx2(const float *x, int64_t n, int8_t *q, float *d) {
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signbit, v0), _mm256_andnot_ps(signbit, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(signbit, v2), _mm256_andnot_ps(signbit, v3)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float amax = _mm_cvtss_f32(h);
        d[b] = sy_round_fp16(amax / 127.0f);
        const __m256 id = _mm256_set1_ps(amax != 0 ? 127.0f / amax : 0);
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
        const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
        /* packs interleave 128-bit lanes; the permute puts the 32 bytes back in order */
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)(q + 32 * b), _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
}
#pragma clang attribute pop

/* ---- AVX-512 VNNI (256-bit registers with VL: the same shapes, vpdpbusd replaces two instructions) ---- */
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
/* sum of w[i] * x[i] as 8 int32 lanes with one vpdpbusd (|w| unsigned times x with w's sign). */
static inline __m256i sy_dot32_vnni(__m256i w, __m256i x) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
}

static void sy_qdot_vnni(int type, const uint8_t *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const int bb = sy_qbb(type);
    const int64_t nb = cols / 32;
    if (nt == 1) SY_QDOT1(sy_dot32_vnni);
    else SY_QDOTN(sy_dot32_vnni);
}
#pragma clang attribute pop
#endif

/* One weight row against nt quantized tokens on path isa. */
void sy_qdot_row(int isa, int type, const void *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
#if defined(__x86_64__)
    if (isa >= SY_ISA_AVX512) { sy_qdot_vnni(type, (const uint8_t *)w, cols, q, d, ldq, nt, out); return; }
    if (isa >= SY_ISA_AVX2) { sy_qdot_avx2(type, (const uint8_t *)w, cols, q, d, ldq, nt, out); return; }
#endif
    (void)isa;
    sy_qdot_ref(type, w, cols, q, d, ldq, nt, out);
}

static void sy_quantize(int isa, const float *x, int64_t n, int8_t *q, float *d) {
#if defined(__x86_64__)
    if (isa >= SY_ISA_AVX2) { sy_quantize_q8_avx2(x, n, q, d); return; }
#endif
    (void)isa;
    sy_quantize_q8(x, n, q, d);
}

/* ---- quantizing a matmul's activations ---- */

typedef struct {
    const sy_mm_job *jobs; int n_jobs; int64_t cols; int isa, k;
    int8_t *q; float *d; int16_t *s; int64_t *off; atomic_long next;
} sy_qz_ctx;

/* Quantizes every job's tokens (one token row per work item). */
static void sy_qz_task(void *p, int ith, int nth) {
    (void)ith; (void)nth;
    sy_qz_ctx *c = (sy_qz_ctx *)p;
    const long total = c->off[c->n_jobs];
    for (;;) {
        const long item = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (item >= total) break;
        int j = 0;
        while (c->off[j + 1] <= item) j++;
        const int64_t t = item - c->off[j];
        const float *x = c->jobs[j].x + t * c->jobs[j].ldx;
        if (c->k) sy_quantize_q8k(x, c->cols, c->q + item * c->cols, c->d + item * (c->cols / 32), c->s + item * (c->cols / 32));
        else sy_quantize(c->isa, x, c->cols, c->q + item * c->cols, c->d + item * (c->cols / 32));
    }
}

int sy_quantize_jobs(sy_pool *pool, int type, int64_t cols, const sy_mm_job *jobs, int n_jobs, const int8_t **qs, const float **ds,
                     const int16_t **ss) {
    /* Q8_0 activations for Q8_0/Q4_0/Q5_0/IQ4_NL weights, Q8_K (with group sums) for Q4_K, Q5_K, Q6_K and IQ4_XS. */
    const int k = type == SY_Q4_K || type == SY_Q5_K || type == SY_Q6_K || type == SY_IQ4_XS;
    if ((!sy_q8_0_pairs(type) && !k) || cols % (k ? 256 : 32) || sy_pool_exact(pool) || n_jobs <= 0) return 0;
    const int isa = sy_pool_isa(pool);
    int64_t off[n_jobs + 1];
    off[0] = 0;
    for (int j = 0; j < n_jobs; j++) off[j + 1] = off[j] + jobs[j].n_tok;
    /* Scratch reused across calls (grow only): the pool runs one caller at a time, but several pools
       (models) may run at once, so the buffer is per calling thread. */
    static _Thread_local int8_t *qbuf = NULL;
    static _Thread_local float *dbuf = NULL;
    static _Thread_local int16_t *sbuf = NULL;
    static _Thread_local int64_t cap = 0;
    const int64_t need = off[n_jobs] * cols;
    if (need > cap) {
        free(qbuf); free(dbuf); free(sbuf);
        qbuf = (int8_t *)malloc((size_t)need);
        dbuf = (float *)malloc((size_t)(need / 32) * sizeof(float));
        sbuf = (int16_t *)malloc((size_t)(need / 32) * sizeof(int16_t));
        cap = need;
    }
    sy_qz_ctx z = {jobs, n_jobs, cols, isa, k, qbuf, dbuf, sbuf, off, 0};
    if (off[n_jobs] > 1) sy_pool_run(pool, sy_qz_task, &z); else sy_qz_task(&z, 0, 1);
    for (int j = 0; j < n_jobs; j++) {
        qs[j] = qbuf + off[j] * cols;
        ds[j] = dbuf + off[j] * (cols / 32);
        ss[j] = sbuf + off[j] * (cols / 32);
    }
    return 1;
}
