// Weights repacked at load into four-row groups ("x4"), and their kernels: the layout llama.cpp's CPU
// repack gets its decode speed from (its Q4_0x8 and Q8_0x4 interleaves; the layout and code here are ours).
// The four-row tile of qdot.c transposes four rows' blocks in registers on every pass; here that is done
// once, when the model loads, so each block of four rows is two (Q4_0, IQ4_NL) or four (Q8_0) plain loads
// and one load of its four scales, and one FMA per block and token serves four rows. Decode (one token)
// runs the same loop as prefill, so a token's outputs do not depend on how many tokens share the pass.
//
// Layout of a group g (rows 4g..4g+3) of a matrix with B = C / 32 blocks per row: B group-blocks one after
// another, each [4 x fp16 scale (rows 0-3)] then the values, 4 x the GGUF block size in all (so a packed
// matrix has the same size, and row group g starts at 4g row strides):
//   Q8_0: four 32-byte runs R_j (j = 0-3); byte i of R_j is element 8j + i%8 of row i/8.
//   Q4_0, IQ4_NL: two 32-byte words V_k (k = 0, 1); byte i of V_k holds run 2k's code in its low nibble and
//   run 2k+1's in its high nibble (the same byte order as R_j). Q4_0 value = code - 8; IQ4_NL = level[code].
//   Q5_0: as Q4_0, then four 32-bit words H_j of fifth bits (bit i of H_j for byte i of run j; byte r of H_j
//   is byte j of row r's GGUF bit word); value = code + 16 x bit - 16.
// The int32 lanes of a run's products are then two per row (lanes 2r, 2r+1 hold row r), and a row's output
// is its two lanes' float sums added last.
//
// Dimension legend: C input columns (a multiple of 32), B = C / 32 blocks per row, T tokens (<= 4 a call).
#include "ckernels.h"
#include "kernels_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

int sy_pack4_takes(int type) { return type == SY_Q8_0 || type == SY_Q4_0 || type == SY_Q5_0 || type == SY_IQ4_NL || type == SY_Q4_K || type == SY_Q6_K; }

static inline int sy_pbb(int type) { return type == SY_Q8_0 ? 34 : type == SY_Q5_0 ? 22 : 18; }   /* GGUF bytes per 32-block */
static inline int sy_pnib(int type) { return type == SY_Q5_0 ? 6 : 2; }   /* where a GGUF block's nibbles start */
/* What a packed lane takes off per unit of the token's block sum: codes are value + 8 (Q4_0) or + 16 (Q5_0),
   and a row's two lanes share it. */
static inline int sy_poff(int type) { return type == SY_Q4_0 ? 4 : type == SY_Q5_0 ? 8 : 0; }

/* Byte i of run j for row r, element e: i = 8r + e%8, j = e/8. Q8_0 moves whole 8-byte runs; a Q4_0 byte
   pairs codes e and e + 8 of one row (elements 8j + k and 8(j+1) + k): GGUF keeps elements k and k + 16 in
   one byte, so runs 0/1 come from the low nibbles of bytes 0-15 and runs 2/3 from their high nibbles. */
void sy_pack4(int type, const void *src, int64_t rows, int64_t cols, void *dst) {
    if (type == SY_Q4_K) { sy_pack4_q4k(src, rows, cols, dst); return; }   /* qpack_k.c */
    if (type == SY_Q6_K) { sy_pack4_q6k(src, rows, cols, dst); return; }   /* qpack_q6k.c */
    const int bb = sy_pbb(type);
    const int64_t nb = cols / 32, rb = nb * bb;
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *o = (uint8_t *)dst;
    for (int64_t g = 0; g < rows / 4; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *gb = o + g * 4 * rb + b * 4 * bb;
            for (int r = 0; r < 4; r++) {
                const uint8_t *blk = s + (4 * g + r) * rb + b * bb;
                memcpy(gb + 2 * r, blk, 2);
                if (type == SY_Q8_0) {
                    for (int j = 0; j < 4; j++) memcpy(gb + 8 + 32 * j + 8 * r, blk + 2 + 8 * j, 8);
                    continue;
                }
                const uint8_t *nb_ = blk + sy_pnib(type);
                if (type == SY_Q5_0) for (int j = 0; j < 4; j++) gb[72 + 4 * j + r] = blk[2 + j];
                for (int k = 0; k < 8; k++) {
                    const uint8_t lo = nb_[k], hi = nb_[8 + k];   /* elements k, k+16 and k+8, k+24 */
                    gb[8 + 8 * r + k] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);        /* runs 0 | 1 */
                    gb[8 + 32 + 8 * r + k] = (uint8_t)((lo >> 4) | (hi & 0xF0));       /* runs 2 | 3 */
                }
            }
        }
}

void sy_unpack4_row(int type, const void *packed, int64_t cols, int64_t row, void *dst) {
    if (type == SY_Q4_K) { sy_unpack4_q4k_row(packed, cols, row, dst); return; }
    if (type == SY_Q6_K) { sy_unpack4_q6k_row(packed, cols, row, dst); return; }
    const int bb = sy_pbb(type);
    const int64_t nb = cols / 32, rb = nb * bb, g = row / 4;
    const int r = (int)(row % 4);
    uint8_t *o = (uint8_t *)dst;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *gb = (const uint8_t *)packed + g * 4 * rb + b * 4 * bb;
        uint8_t *blk = o + b * bb;
        memcpy(blk, gb + 2 * r, 2);
        if (type == SY_Q5_0) for (int j = 0; j < 4; j++) blk[2 + j] = gb[72 + 4 * j + r];
        if (type != SY_Q8_0) memset(blk + sy_pnib(type), 0, 16);
        for (int e = 0; e < 32; e++) {
            const int i = 8 * r + e % 8, j = e / 8;
            if (type == SY_Q8_0) { blk[2 + e] = gb[8 + 32 * j + i]; continue; }
            const uint8_t v = gb[8 + 32 * (j / 2) + i];
            const int c = j % 2 ? v >> 4 : v & 0xF;
            blk[sy_pnib(type) + e % 16] |= (uint8_t)(e < 16 ? c : c << 4);
        }
    }
}

/* Element factor from a packed group-block: row r, run j, byte-in-run k (element 8j + k): Q8_0's value,
   IQ4_NL's level, Q4_0's and Q5_0's codes (value + 8, value + 16; their lanes take that off below). */
static inline int sy_packed_value(int type, const uint8_t *gb, int r, int j, int k) {
    const int i = 8 * r + k;
    if (type == SY_Q8_0) return (int8_t)gb[8 + 32 * j + i];
    const uint8_t v = gb[8 + 32 * (j / 2) + i];
    const int c = j % 2 ? v >> 4 : v & 0xF;
    if (type == SY_Q5_0) return c | ((gb[72 + 4 * j + i / 8] >> (i % 8)) & 1) << 4;
    return type == SY_IQ4_NL ? sy_iq4nl_levels[c] : c;
}

/* The plain reference, in the fast paths' order: per block and token, lane l (two per row: elements
   8j + 4(l%2) .. +3 over the four runs j) sums its products as integers (Q4_0, Q5_0: codes times activations,
   less 4 or 8 x the block's activation sum, so a row's two lanes take off 8 or 16 x it), then
   acc[l] += (dw * dx) * lane (one rounding each, a fused multiply-add); row r's output is
   acc[2r] + acc[2r+1]. The integer sums are exact on every path, so the AVX2, VNNI and plain results are
   the same bits. */
void sy_qpack_ref(int type, const void *group, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const int64_t nb = cols / 32;
    const int gbb = 4 * sy_pbb(type);
    for (int t = 0; t < nt; t++) {
        float acc[8] = {0};
        const int8_t *x = q + t * ldq;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *gb = (const uint8_t *)group + b * gbb;
            const float dx = d[t * (ldq / 32) + b];
            int sum = 0;
            for (int i = 0; sy_poff(type) && i < 32; i++) sum += x[32 * b + i];
            for (int l = 0; l < 8; l++) {
                const int r = l / 2, k0 = 4 * (l % 2);
                int s = -sy_poff(type) * sum;
                for (int j = 0; j < 4; j++)
                    for (int k = k0; k < k0 + 4; k++) s += sy_packed_value(type, gb, r, j, k) * x[32 * b + 8 * j + k];
                acc[l] = fmaf(sy_f16_at(gb + 2 * r) * dx, (float)s, acc[l]);
            }
        }
        for (int r = 0; r < 4; r++) out[4 * r + t] = acc[2 * r] + acc[2 * r + 1];
    }
}

#if defined(__x86_64__)
/* The loop both SIMD paths share. LOAD(gb) sets W[0..3] (the four runs, as the path's dot wants them) for
   group-block gb; TDOT(x, s) gives one token's block as 8 int32 lanes (two per row) from the token's 32
   int8 at x and its block sum s. Tokens past nt repeat token 0 and are not written out. */
/* Prefetch distance: none for Q8_0 (kernels_internal.h). */
static inline int sy_ppf(int type) { return type == SY_Q8_0 ? 0 : SY_PF_AHEAD; }
#define SY_QPACK_LOOP(LOAD, TDOT)                                                                     \
    do {                                                                                              \
        const int64_t nb = cols / 32, ldd = ldq / 32;                                                 \
        const int gbb = 4 * sy_pbb(type), pf = sy_ppf(type);                                          \
        const int8_t *xs[4] = {q, nt > 1 ? q + ldq : q, nt > 2 ? q + 2 * ldq : q, nt > 3 ? q + 3 * ldq : q}; \
        const float *ds[4] = {d, nt > 1 ? d + ldd : d, nt > 2 ? d + 2 * ldd : d, nt > 3 ? d + 3 * ldd : d}; \
        const int16_t *ss[4] = {s, s && nt > 1 ? s + ldd : s, s && nt > 2 ? s + 2 * ldd : s, s && nt > 3 ? s + 3 * ldd : s}; \
        const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);                                \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                   \
        for (int64_t b = 0; b < nb; b++) {                                                            \
            const uint8_t *gb = (const uint8_t *)w + b * gbb;                                         \
            if (pf) _mm_prefetch((const char *)gb + pf, _MM_HINT_T0);                                 \
            __m256i W[4];                                                                             \
            LOAD(gb);                                                                                 \
            const __m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)gb))), dup); \
            a0 = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(ds[0][b])), _mm256_cvtepi32_ps(TDOT(xs[0] + 32 * b, ss[0] ? ss[0][b] : 0)), a0); \
            if (nt == 1) continue;                                                                    \
            a1 = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(ds[1][b])), _mm256_cvtepi32_ps(TDOT(xs[1] + 32 * b, ss[1] ? ss[1][b] : 0)), a1); \
            a2 = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(ds[2][b])), _mm256_cvtepi32_ps(TDOT(xs[2] + 32 * b, ss[2] ? ss[2][b] : 0)), a2); \
            a3 = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(ds[3][b])), _mm256_cvtepi32_ps(TDOT(xs[3] + 32 * b, ss[3] ? ss[3][b] : 0)), a3); \
        }                                                                                             \
        sy_tile_out(a0, a1, a2, a3, nt, out);                                                         \
    } while (0)

/* The four runs' codes (0-15) of a Q4_0/IQ4_NL group-block. */
#define SY_CODES(gb, N)                                                                               \
    do {                                                                                              \
        const __m256i v0_ = _mm256_loadu_si256((const __m256i *)((gb) + 8)), v1_ = _mm256_loadu_si256((const __m256i *)((gb) + 40)); \
        const __m256i m_ = _mm256_set1_epi8(0x0F);                                                    \
        N[0] = _mm256_and_si256(v0_, m_); N[1] = _mm256_and_si256(_mm256_srli_epi16(v0_, 4), m_);     \
        N[2] = _mm256_and_si256(v1_, m_); N[3] = _mm256_and_si256(_mm256_srli_epi16(v1_, 4), m_);     \
    } while (0)

/* The codes with Q5_0's fifth bits (16 where bit i of H_j is set). */
#define SY_CODES5(type, gb, N)                                                                        \
    do {                                                                                              \
        SY_CODES(gb, N);                                                                              \
        if ((type) == SY_Q5_0)                                                                        \
            for (int j_ = 0; j_ < 4; j_++)                                                            \
                N[j_] = _mm256_or_si256(N[j_], _mm256_and_si256(sy_bits32((gb) + 72 + 4 * j_), _mm256_set1_epi8(0x10))); \
    } while (0)

/* The signed runs W (Q8_0 as stored, IQ4_NL's levels through the table lut) and their magnitudes U. */
#define SY_SIGNED(type, gb, lut, W, U)                                                                \
    do {                                                                                              \
        if ((type) == SY_Q8_0) for (int j_ = 0; j_ < 4; j_++) W[j_] = _mm256_loadu_si256((const __m256i *)((gb) + 8 + 32 * j_)); \
        else { SY_CODES(gb, W); for (int j_ = 0; j_ < 4; j_++) W[j_] = _mm256_shuffle_epi8(lut, W[j_]); } \
        for (int j_ = 0; j_ < 4; j_++) U[j_] = _mm256_abs_epi8(W[j_]);                                \
    } while (0)

/* ---- AVX2 ---- */
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

/* Q4_0 and Q5_0: the codes (0-15 or 0-31, unsigned) multiply the activations as they are; the four runs' int16
   pair sums add before one widening (4 x 2 x 31 x 127 < 2^15), and 4 (Q4_0) or 8 (Q5_0) x the block sum comes
   off every lane (each row's two lanes give back 8 or 16 x the sum: the codes are value + 8 or + 16). */
/* Four tokens of Q4_0 or Q5_0 (the prefill case), branch-free: per block the four runs' codes, then each
   token's int16 pair sums (four vpmaddubsw), one widening, its block sum off. Same bits as the general loop. */
static inline __attribute__((always_inline)) void sy_qpack_unsigned4_avx2_t(int type, const void *w, int64_t cols, const int8_t *q,
                                                                           const float *d, const int16_t *s, int64_t ldq, float *out) {
    const int64_t nb = cols / 32, ldd = ldq / 32;
    const int gbb = 4 * sy_pbb(type), off = sy_poff(type);
    const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), ones = _mm256_set1_epi16(1);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *gb = (const uint8_t *)w + b * gbb;
        __m256i W[4];
        SY_CODES5(type, gb, W);
        const __m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)gb))), dup);
        for (int t = 0; t < 4; t++) {
            const int8_t *x = q + t * ldq + 32 * b;
            const __m256i s16 = _mm256_add_epi16(
                _mm256_add_epi16(_mm256_maddubs_epi16(W[0], sy_bcast8(x, 0)), _mm256_maddubs_epi16(W[1], sy_bcast8(x, 1))),
                _mm256_add_epi16(_mm256_maddubs_epi16(W[2], sy_bcast8(x, 2)), _mm256_maddubs_epi16(W[3], sy_bcast8(x, 3))));
            const __m256i p = _mm256_sub_epi32(_mm256_madd_epi16(s16, ones), _mm256_set1_epi32(off * s[t * ldd + b]));
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d[t * ldd + b])), _mm256_cvtepi32_ps(p), acc[t]);
        }
    }
    sy_tile_out(acc[0], acc[1], acc[2], acc[3], 4, out);
}

static void sy_qpack_unsigned_avx2(int type, const void *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq,
                                   int nt, float *out) {
    if (nt == 4) {
        if (type == SY_Q4_0) sy_qpack_unsigned4_avx2_t(SY_Q4_0, w, cols, q, d, s, ldq, out);
        else sy_qpack_unsigned4_avx2_t(SY_Q5_0, w, cols, q, d, s, ldq, out);
        return;
    }
    const __m256i ones = _mm256_set1_epi16(1);
    const int off = sy_poff(type);
#define LOAD_(gb) SY_CODES5(type, gb, W)
#define TDOT_(x, sum)                                                                                 \
    _mm256_sub_epi32(_mm256_madd_epi16(_mm256_add_epi16(                                              \
        _mm256_add_epi16(_mm256_maddubs_epi16(W[0], sy_bcast8(x, 0)), _mm256_maddubs_epi16(W[1], sy_bcast8(x, 1))), \
        _mm256_add_epi16(_mm256_maddubs_epi16(W[2], sy_bcast8(x, 2)), _mm256_maddubs_epi16(W[3], sy_bcast8(x, 3)))), ones), \
        _mm256_set1_epi32(off * (sum)))
    SY_QPACK_LOOP(LOAD_, TDOT_);
#undef LOAD_
#undef TDOT_
}

/* Q8_0 and IQ4_NL: signed weights, so |w| times x with w's sign, each run widened (8-bit weights). */
static inline __m256i sy_pdot_signed_avx2(const __m256i *U, const __m256i *R, const int8_t *x) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(U[0], _mm256_sign_epi8(sy_bcast8(x, 0), R[0])), ones);
    const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(U[1], _mm256_sign_epi8(sy_bcast8(x, 1), R[1])), ones);
    const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(U[2], _mm256_sign_epi8(sy_bcast8(x, 2), R[2])), ones);
    const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(U[3], _mm256_sign_epi8(sy_bcast8(x, 3), R[3])), ones);
    return _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3));
}

static void sy_qpack_signed_avx2(int type, const void *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const int16_t *s = NULL;
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sy_iq4nl_levels));
    __m256i U[4];
#define LOAD_(gb) SY_SIGNED(type, gb, lut, W, U)
#define TDOT_(x, sum) sy_pdot_signed_avx2(U, W, x)
    SY_QPACK_LOOP(LOAD_, TDOT_);
#undef LOAD_
#undef TDOT_
}
#pragma clang attribute pop

/* ---- AVX-512 VNNI (256-bit registers with VL): vpdpbusd sums each run's four products into the lanes ---- */
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
static void sy_qpack_unsigned_vnni(int type, const void *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq,
                                   int nt, float *out) {
    const int off = sy_poff(type);
#define LOAD_(gb) SY_CODES5(type, gb, W)
#define TDOT_(x, sum)                                                                                 \
    _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_dpbusd_epi32( \
        _mm256_setzero_si256(), W[0], sy_bcast8(x, 0)), W[1], sy_bcast8(x, 1)), W[2], sy_bcast8(x, 2)), W[3], sy_bcast8(x, 3)), \
        _mm256_set1_epi32(off * (sum)))
    SY_QPACK_LOOP(LOAD_, TDOT_);
#undef LOAD_
#undef TDOT_
}

static void sy_qpack_signed_vnni(int type, const void *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const int16_t *s = NULL;
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sy_iq4nl_levels));
    __m256i U[4];
#define LOAD_(gb) SY_SIGNED(type, gb, lut, W, U)
#define TDOT_(x, sum)                                                                                 \
    _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), \
        U[0], _mm256_sign_epi8(sy_bcast8(x, 0), W[0])), U[1], _mm256_sign_epi8(sy_bcast8(x, 1), W[1])),  \
        U[2], _mm256_sign_epi8(sy_bcast8(x, 2), W[2])), U[3], _mm256_sign_epi8(sy_bcast8(x, 3), W[3]))
    SY_QPACK_LOOP(LOAD_, TDOT_);
#undef LOAD_
#undef TDOT_
}
#pragma clang attribute pop
#endif

void sy_qpack(int isa, int type, const void *group, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt,
              float *out) {
    if (type == SY_Q4_K || type == SY_Q6_K) {   /* Q8_K activations */
#if defined(__x86_64__)
        if (isa >= SY_ISA_AVX2) {
            (type == SY_Q4_K ? sy_qpack_q4k_avx2 : sy_qpack_q6k_avx2)(group, cols, q, d, s, ldq, nt, out);
            return;
        }
#endif
        (type == SY_Q4_K ? sy_qpack_q4k_ref : sy_qpack_q6k_ref)(group, cols, q, d, s, ldq, nt, out);
        return;
    }
#if defined(__x86_64__)
    if (sy_poff(type) && !s) isa = SY_ISA_SCALAR;   /* their kernels read the block sums */
    if (isa >= SY_ISA_AVX512) {
        if (sy_poff(type)) sy_qpack_unsigned_vnni(type, group, cols, q, d, s, ldq, nt, out);
        else sy_qpack_signed_vnni(type, group, cols, q, d, ldq, nt, out);
        return;
    }
    if (isa >= SY_ISA_AVX2) {
        if (sy_poff(type)) sy_qpack_unsigned_avx2(type, group, cols, q, d, s, ldq, nt, out);
        else sy_qpack_signed_avx2(type, group, cols, q, d, ldq, nt, out);
        return;
    }
#endif
    (void)isa; (void)s;
    sy_qpack_ref(type, group, cols, q, d, ldq, nt, out);
}
