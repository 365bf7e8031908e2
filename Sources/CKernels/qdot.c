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

const int8_t sy_iq4nl_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* Bytes per block of the 32-blocks these kernels take, each with its fp16 scale first. */
static inline int sy_qbb(int type) {
    return type == SY_Q8_0 ? 34 : type == SY_Q5_0 ? 22 : type == SY_Q4_1 ? 20 : type == SY_Q5_1 ? 24 : 18;
}

/* Q4_1 and Q5_1: scale d and minimum m (fp16 at bytes 0 and 2), then (Q5_1) the fifth bits, then the nibbles;
   value = d * n + m with n unsigned, so a block against Q8_0 activations (dx, q) is
   d * dx * (n . q) + m * dx * sum(q): the integer dot of the unsigned values and the block's activation sum. */
static inline int sy_has_min(int type) { return type == SY_Q4_1 || type == SY_Q5_1; }

/* Unsigned value i (of 32) of a Q4_1 or Q5_1 block. */
static inline int sy_wn(int type, const uint8_t *blk, int i) {
    const uint8_t *qs = blk + (type == SY_Q5_1 ? 8 : 4);
    const int nib = i < 16 ? qs[i] & 0xF : qs[i - 16] >> 4;
    if (type == SY_Q4_1) return nib;
    uint32_t h; memcpy(&h, blk + 4, 4);
    return nib | ((h >> i) & 1) << 4;
}

/* Weight i (of 32) of a block as a small integer: Q8_0 as is, Q4_0 nibble - 8, Q5_0 nibble with the
   fifth bit from the 32-bit word at byte 2, minus 16, IQ4_NL the nibble's level. */
static inline int sy_wq(int type, const uint8_t *blk, int i) {
    if (type == SY_Q8_0) return (int8_t)blk[2 + i];
    const uint8_t *qs = blk + (type == SY_Q5_0 ? 6 : 2);
    const int nib = i < 16 ? qs[i] & 0xF : qs[i - 16] >> 4;
    if (type == SY_IQ4_NL) return sy_iq4nl_levels[nib];
    if (type == SY_Q5_0) {
        uint32_t h; memcpy(&h, blk + 2, 4);
        return (nib | ((h >> i) & 1) << 4) - 16;
    }
    return nib - 8;
}

/* The weight types whose rows pair with Q8_K activations (qdot_k.c). */
int sy_q8_k_pairs(int type) {
    return type == SY_Q2_K || type == SY_Q3_K || type == SY_Q4_K || type == SY_Q5_K || type == SY_Q6_K || type == SY_IQ4_XS;
}

/* The weight types whose blocks pair with Q8_0 activations here (Q4_1 and Q5_1 take llama.cpp's Q8_1, which is
   Q8_0's rounding with the block sums this quantizer keeps too). */
int sy_q8_0_pairs(int type) {
    return type == SY_Q8_0 || type == SY_Q4_0 || type == SY_Q5_0 || type == SY_IQ4_NL || sy_has_min(type);
}

/* The signed-weight kinds the four-row tile takes. */
int sy_qtile_takes(int type) { return type == SY_Q8_0 || type == SY_Q4_0 || type == SY_Q5_0 || type == SY_IQ4_NL; }

void sy_qdot_ref(int type, const void *wrow, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const uint8_t *w = (const uint8_t *)wrow;
    const int bb = sy_qbb(type);
    for (int t = 0; t < nt; t++) {
        float acc = 0;
        for (int64_t b = 0; b < cols / 32; b++) {
            const uint8_t *blk = w + b * bb;
            const int8_t *qb = q + t * ldq + 32 * b;
            const float dx = d[t * (ldq / 32) + b];
            int s = 0;
            if (sy_has_min(type)) {
                int sx = 0;
                for (int i = 0; i < 32; i++) { s += sy_wn(type, blk, i) * qb[i]; sx += qb[i]; }
                acc += sy_f16_at(blk) * dx * (float)s + sy_f16_at(blk + 2) * dx * (float)sx;
                continue;
            }
            for (int i = 0; i < 32; i++) s += sy_wq(type, blk, i) * qb[i];
            acc += sy_f16_at(blk) * dx * (float)s;
        }
        out[t] = acc;
    }
}

#if defined(__x86_64__)
/* ---- AVX2 ---- */
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

/* The 32 weights of block blk as int8 in element order (see sy_wq). */
/* Four-bit values nib with the fifth bits of the 32-bit word at p (Q5_0, Q5_1): 0-31. */
static inline __m256i sy_with_fifth_bits(__m256i nib, const uint8_t *p) {
    return _mm256_or_si256(nib, _mm256_and_si256(sy_bits32(p), _mm256_set1_epi8(0x10)));
}

static inline __m256i sy_wbytes(int type, const uint8_t *blk) {
    if (type == SY_Q8_0) return _mm256_loadu_si256((const __m256i *)(blk + 2));
    const __m256i nib = sy_nibbles32(blk + (type == SY_Q5_0 ? 6 : 2));
    switch (type) {
    case SY_Q5_0:
        return _mm256_sub_epi8(sy_with_fifth_bits(nib, blk + 2), _mm256_set1_epi8(16));
    case SY_IQ4_NL:
        return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sy_iq4nl_levels)), nib);
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

/* Several tokens (prefill, batches): each block's weights are unpacked once and serve every token. The
   shape is fixed at four tokens in four named accumulators (slots past nt repeat token 0 and are not
   written out): a loop over an accumulator array kept them on the stack, and the store-to-load round
   trip of every FMA then bounded the loop. */
#define SY_QTOK(DOT, wv, dw, x, ds, b, acc)                                                           \
    acc = _mm256_fmadd_ps(_mm256_set1_ps((dw) * (ds)[b]),                                              \
                          _mm256_cvtepi32_ps(DOT(wv, _mm256_loadu_si256((const __m256i *)((x) + 32 * (b))))), acc)
#define SY_QDOTN(DOT)                                                                                 \
    do {                                                                                              \
        const int8_t *x0 = q, *x1 = nt > 1 ? q + ldq : q, *x2 = nt > 2 ? q + 2 * ldq : q, *x3 = nt > 3 ? q + 3 * ldq : q; \
        const int64_t ldd = ldq / 32;                                                                 \
        const float *d0 = d, *d1 = nt > 1 ? d + ldd : d, *d2 = nt > 2 ? d + 2 * ldd : d, *d3 = nt > 3 ? d + 3 * ldd : d; \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                   \
        for (int64_t b = 0; b < nb; b++) {                                                            \
            const uint8_t *blk = w + b * bb;                                                          \
            const __m256i wv = sy_wbytes(type, blk);                                                  \
            const float dw = sy_f16_at(blk);                                                          \
            SY_QTOK(DOT, wv, dw, x0, d0, b, a0); SY_QTOK(DOT, wv, dw, x1, d1, b, a1);                 \
            SY_QTOK(DOT, wv, dw, x2, d2, b, a2); SY_QTOK(DOT, wv, dw, x3, d3, b, a3);                 \
        }                                                                                             \
        out[0] = sy_hsum8(a0);                                                                        \
        if (nt > 1) out[1] = sy_hsum8(a1);                                                            \
        if (nt > 2) out[2] = sy_hsum8(a2);                                                            \
        if (nt > 3) out[3] = sy_hsum8(a3);                                                            \
    } while (0)

/* Q4_0 against one token with its block sums s: the nibbles (0-15) multiply the signed activations as they
   are, and 8 times the block's sum comes off its int32 lanes (lane 0) before the scales, the same integer sum
   as (nibble - 8) . x in a quarter fewer instructions (no sign steps, no subtraction per byte). */
static void sy_qdot1_q4_0_avx2(const uint8_t *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, float *out) {
    const int64_t nb = cols / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
#define SY_Q4STEP(b, acc)                                                                             \
    do {                                                                                              \
        const uint8_t *blk_ = w + (b) * 18;                                                           \
        __m256i p_ = _mm256_madd_epi16(_mm256_maddubs_epi16(sy_nibbles32(blk_ + 2), _mm256_loadu_si256((const __m256i *)(q + 32 * (b)))), ones); \
        p_ = _mm256_sub_epi32(p_, _mm256_zextsi128_si256(_mm_cvtsi32_si128(8 * s[b])));               \
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sy_f16_at(blk_) * d[b]), _mm256_cvtepi32_ps(p_), acc);  \
    } while (0)
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) { SY_Q4STEP(b, a0); SY_Q4STEP(b + 1, a1); SY_Q4STEP(b + 2, a2); SY_Q4STEP(b + 3, a3); }
    for (; b < nb; b++) SY_Q4STEP(b, a0);
#undef SY_Q4STEP
    out[0] = sy_hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/* Q4_1 and Q5_1 against nt (<= 4) tokens with their block sums s: the unsigned values multiply the signed
   activations as they are (vpmaddubsw), and the minimum's term is m * dx * sum per block. */
static void sy_qdot_min_avx2(int type, const uint8_t *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq,
                             int nt, float *out) {
    const int five = type == SY_Q5_1, bb = five ? 24 : 20;
    const int64_t nb = cols / 32, ldd = ldq / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float accm[4] = {0, 0, 0, 0};
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * bb;
        __m256i wv = sy_nibbles32(blk + (five ? 8 : 4));
        if (five) wv = sy_with_fifth_bits(wv, blk + 4);
        const float dw = sy_f16_at(blk), mw = sy_f16_at(blk + 2);
        for (int t = 0; t < nt; t++) {
            const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wv, _mm256_loadu_si256((const __m256i *)(q + t * ldq + 32 * b))), ones);
            const float dx = d[t * ldd + b];
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx), _mm256_cvtepi32_ps(p), acc[t]);
            accm[t] += mw * dx * (float)s[t * ldd + b];
        }
    }
    for (int t = 0; t < nt; t++) out[t] = sy_hsum8(acc[t]) + accm[t];
}

static void sy_qdot_avx2(int type, const uint8_t *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
    const int bb = sy_qbb(type);
    const int64_t nb = cols / 32;
    if (sy_has_min(type)) sy_qdot_min_avx2(type, w, cols, q, d, s, ldq, nt, out);
    else if (nt == 1 && type == SY_Q4_0 && s) sy_qdot1_q4_0_avx2(w, cols, q, d, s, out);
    else if (nt == 1) SY_QDOT1(sy_dot32_avx2);
    else SY_QDOTN(sy_dot32_avx2);
}

/* ---- four rows by up to four tokens (prefill, batches) ----
   The four rows' blocks are unpacked and transposed in registers so that each 64-bit lane of register j
   holds bytes 8j..8j+7 of one row: a token's 8-byte run j, broadcast to all four lanes, then meets all four
   rows in one multiply, and the int32 lanes come out two per row. The block's scale product is then one
   vector (the four rows' scales, each twice, times the token's) and one FMA per token instead of one per
   (row, token): the float side of the loop drops by four (llama.cpp's tinyBLAS keeps a tile of rows and
   tokens too; the lane layout is ours). Lanes 2r and 2r + 1 of accumulator t sum to out[4r + t]. */

/* Rows A, B, C, D (32 int8 each, in element order) to R[j] = [A_j B_j | C_j D_j] (8-byte runs j). */
#define SY_T4(A, B, C, D, R)                                                                          \
    do {                                                                                              \
        const __m256i t0_ = _mm256_unpacklo_epi64(A, B), t1_ = _mm256_unpackhi_epi64(A, B);           \
        const __m256i t2_ = _mm256_unpacklo_epi64(C, D), t3_ = _mm256_unpackhi_epi64(C, D);           \
        R[0] = _mm256_permute2x128_si256(t0_, t2_, 0x20); R[1] = _mm256_permute2x128_si256(t1_, t3_, 0x20); \
        R[2] = _mm256_permute2x128_si256(t0_, t2_, 0x31); R[3] = _mm256_permute2x128_si256(t1_, t3_, 0x31); \
    } while (0)

/* Token x's block against the transposed rows R (|R| in U) as 8 int32 lanes, two per row. Weights of at most
   16 in magnitude (Q4_0, Q5_0) let the four runs' int16 pair sums add up before one widening (4 x 2 x 16 x 127
   < 2^15); Q8_0 and IQ4_NL widen each run. */
static inline __m256i sy_tile_dot_avx2(int small, const __m256i *U, const __m256i *R, const int8_t *x) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i p0 = _mm256_maddubs_epi16(U[0], _mm256_sign_epi8(sy_bcast8(x, 0), R[0]));
    const __m256i p1 = _mm256_maddubs_epi16(U[1], _mm256_sign_epi8(sy_bcast8(x, 1), R[1]));
    const __m256i p2 = _mm256_maddubs_epi16(U[2], _mm256_sign_epi8(sy_bcast8(x, 2), R[2]));
    const __m256i p3 = _mm256_maddubs_epi16(U[3], _mm256_sign_epi8(sy_bcast8(x, 3), R[3]));
    if (small) return _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3)), ones);
    return _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(p0, ones), _mm256_madd_epi16(p1, ones)),
                            _mm256_add_epi32(_mm256_madd_epi16(p2, ones), _mm256_madd_epi16(p3, ones)));
}

/* The tile loop, shared by the AVX2 and VNNI paths (TDOT: one token's block as int32 lanes). */
#define SY_QTILE(TDOT)                                                                                \
    do {                                                                                              \
        const int bb = sy_qbb(type);                                                                  \
        const int64_t nb = cols / 32, ldd = ldq / 32;                                                 \
        const int8_t *x0 = q, *x1 = nt > 1 ? q + ldq : q, *x2 = nt > 2 ? q + 2 * ldq : q, *x3 = nt > 3 ? q + 3 * ldq : q; \
        const float *d0 = d, *d1 = nt > 1 ? d + ldd : d, *d2 = nt > 2 ? d + 2 * ldd : d, *d3 = nt > 3 ? d + 3 * ldd : d; \
        const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);                                \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                   \
        for (int64_t b = 0; b < nb; b++) {                                                            \
            const uint8_t *k0 = w + b * bb, *k1 = k0 + rb, *k2 = k1 + rb, *k3 = k2 + rb;              \
            __m256i R[4], U[4];                                                                       \
            const __m256i A_ = sy_wbytes(type, k0), B_ = sy_wbytes(type, k1), C_ = sy_wbytes(type, k2), D_ = sy_wbytes(type, k3); \
            SY_T4(A_, B_, C_, D_, R);                                                                 \
            for (int j = 0; j < 4; j++) U[j] = _mm256_sign_epi8(R[j], R[j]);                          \
            const __m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(_mm_setr_epi16( \
                (short)sy_rd16(k0), (short)sy_rd16(k1), (short)sy_rd16(k2), (short)sy_rd16(k3), 0, 0, 0, 0))), dup); \
            a0 = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d0[b])), _mm256_cvtepi32_ps(TDOT(U, R, x0 + 32 * b)), a0); \
            a1 = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d1[b])), _mm256_cvtepi32_ps(TDOT(U, R, x1 + 32 * b)), a1); \
            a2 = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d2[b])), _mm256_cvtepi32_ps(TDOT(U, R, x2 + 32 * b)), a2); \
            a3 = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d3[b])), _mm256_cvtepi32_ps(TDOT(U, R, x3 + 32 * b)), a3); \
        }                                                                                             \
        sy_tile_out(a0, a1, a2, a3, nt, out);                                                         \
    } while (0)


#define SY_TDOT_AVX2(U, R, x) sy_tile_dot_avx2(small, U, R, x)
static void sy_qtile_avx2(int type, const uint8_t *w, size_t rb, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const int small = type == SY_Q4_0 || type == SY_Q5_0;
    SY_QTILE(SY_TDOT_AVX2);
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

/* One token's block against the transposed rows: four vpdpbusd into one int32 accumulator. */
static inline __m256i sy_tile_dot_vnni(const __m256i *U, const __m256i *R, const int8_t *x) {
    __m256i acc = _mm256_dpbusd_epi32(_mm256_setzero_si256(), U[0], _mm256_sign_epi8(sy_bcast8(x, 0), R[0]));
    acc = _mm256_dpbusd_epi32(acc, U[1], _mm256_sign_epi8(sy_bcast8(x, 1), R[1]));
    acc = _mm256_dpbusd_epi32(acc, U[2], _mm256_sign_epi8(sy_bcast8(x, 2), R[2]));
    return _mm256_dpbusd_epi32(acc, U[3], _mm256_sign_epi8(sy_bcast8(x, 3), R[3]));
}

static void sy_qtile_vnni(int type, const uint8_t *w, size_t rb, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    SY_QTILE(sy_tile_dot_vnni);
}
#pragma clang attribute pop
#endif

/* One weight row against nt quantized tokens on path isa. */
void sy_qdot_row(int isa, int type, const void *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt,
                 float *out) {
#if defined(__x86_64__)
    if (sy_has_min(type) && !s) isa = SY_ISA_SCALAR;   /* their kernels read the block sums */
    if (isa >= SY_ISA_AVX512 && !sy_has_min(type)) { sy_qdot_vnni(type, (const uint8_t *)w, cols, q, d, ldq, nt, out); return; }
    if (isa >= SY_ISA_AVX2) { sy_qdot_avx2(type, (const uint8_t *)w, cols, q, d, s, ldq, nt, out); return; }
#endif
    (void)isa; (void)s;
    sy_qdot_ref(type, w, cols, q, d, ldq, nt, out);
}

void sy_qtile_ref(int type, const void *w, size_t row_bytes, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    float o[4];
    for (int r = 0; r < 4; r++) {
        sy_qdot_ref(type, (const uint8_t *)w + r * row_bytes, cols, q, d, ldq, nt, o);
        for (int t = 0; t < nt; t++) out[4 * r + t] = o[t];
    }
}

void sy_qtile(int isa, int type, const void *w, size_t row_bytes, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
#if defined(__x86_64__)
    if (isa >= SY_ISA_AVX512) { sy_qtile_vnni(type, (const uint8_t *)w, row_bytes, cols, q, d, ldq, nt, out); return; }
    if (isa >= SY_ISA_AVX2) { sy_qtile_avx2(type, (const uint8_t *)w, row_bytes, cols, q, d, ldq, nt, out); return; }
#endif
    sy_qtile_ref(type, w, row_bytes, cols, q, d, ldq, nt, out);
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
    int sums;   /* keep the Q8_0 block sums (only the weight types whose kernels read them) */
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
        if (c->k) sy_quantize_q8k(x, c->cols, c->q + item * c->cols, c->d + item * (c->cols / 32), c->s + item * (c->cols / 16));
        else {
            int8_t *q = c->q + item * c->cols;
            int16_t *sums = c->s + item * (c->cols / 32);
            sy_quantize(c->isa, x, c->cols, q, c->d + item * (c->cols / 32));
            /* Each block's sum: Q4_0's one-token kernel subtracts 8 times it instead of unpacking to signed, and
               Q4_1/Q5_1 multiply it by their minimum. */
            for (int64_t b = 0; c->sums && b < c->cols / 32; b++) {
                int sum = 0;
                for (int i = 0; i < 32; i++) sum += q[32 * b + i];
                sums[b] = (int16_t)sum;
            }
        }
    }
}

int sy_quantize_jobs(sy_pool *pool, int type, int64_t cols, const sy_mm_job *jobs, int n_jobs, const int8_t **qs, const float **ds,
                     const int16_t **ss) {
    /* Q8_0 activations (with block sums) for Q8_0/Q4_0/Q5_0/IQ4_NL weights, Q8_K (with 16-value group sums) for
       Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS. */
    const int k = sy_q8_k_pairs(type);
    if ((!sy_q8_0_pairs(type) && !k) || cols % (k ? 256 : 32) || sy_pool_exact(pool) || n_jobs <= 0) return 0;
    const int isa = sy_pool_isa(pool);
    int64_t off[n_jobs + 1];
    off[0] = 0;
    for (int j = 0; j < n_jobs; j++) off[j + 1] = off[j] + jobs[j].n_tok;
    /* A fused call (expert gate and up: the second half of the jobs reads the first half's tokens) quantizes
       each token once: those jobs alias the first half's rows, and the quantizer only sees the first half. */
    const int half = n_jobs / 2;
    int same = n_jobs % 2 == 0 && half > 0;
    for (int j = 0; same && j < half; j++)
        same = jobs[j].x == jobs[j + half].x && jobs[j].n_tok == jobs[j + half].n_tok && jobs[j].ldx == jobs[j + half].ldx;
    const int n_q = same ? half : n_jobs;
    /* The calling thread's scratch (grow only, freed when the thread ends): the pool runs one caller at a
       time, but several pools (models) may run at once, so the buffers are per calling thread. */
    const int64_t need = off[n_q] * cols;
    int8_t *qbuf = (int8_t *)sy_scratch(6, (size_t)need);
    float *dbuf = (float *)sy_scratch(7, (size_t)(need / 32) * sizeof(float));
    int16_t *sbuf = (int16_t *)sy_scratch(8, (size_t)(need / 16) * sizeof(int16_t));   /* Q8_K: a sum per 16 values */
    sy_qz_ctx z = {jobs, n_q, cols, isa, k, type == SY_Q4_0 || type == SY_Q5_0 || sy_has_min(type), qbuf, dbuf, sbuf, off, 0};
    if (off[n_q] > 1) sy_pool_run(pool, sy_qz_task, &z); else sy_qz_task(&z, 0, 1);
    for (int j = 0; j < n_jobs; j++) {
        const int64_t o = off[j < n_q ? j : j - half];
        qs[j] = qbuf + o * cols;
        ds[j] = dbuf + o * (cols / 32);
        ss[j] = sbuf + o * (cols / (k ? 16 : 32));
    }
    return 1;
}
