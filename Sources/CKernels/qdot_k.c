// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS weights on Q8_K-quantized activations (llama.cpp's pairing for K-quants, our code). An activation
// block is 256 int8 with one float scale (amax / 127, as the reciprocal of 127 / amax: ggml's
// block_q8_K keeps 1 / iscale) and the sums of its sixteen 16-value groups (for the weights' minimums). A Q4_K
// block is 8 groups of 32 four-bit values with 6-bit scales and minimums under two fp16 factors, so
//   dot = d_w * d_x * sum_j sc_j * (q4 . q8)_j  -  dmin_w * d_x * sum_j m_j * sum(q8)_j.
// A Q6_K block is 16 groups of 16 six-bit values (minus 32) with int8 scales under one fp16 factor:
//   dot = d_w * d_x * sum_g sc_g * (q6 . q8)_g.
// IQ4_XS is 8 groups of 32 four-bit indices into 16 int8 levels, with 6-bit scales (minus 32) under one fp16
// factor, the same sum as Q6_K's with one scale per group. Q3_K is 16 groups of 16 three-bit values (two low
// bits, a high bit that adds 4, minus 4) with 6-bit scales (minus 32), Q6_K's sum again. Q2_K is 16 groups of
// 16 two-bit values with 4-bit scales and minimums:
//   dot = d_w * d_x * sum_g sc_g * (q2 . q8)_g  -  dmin_w * d_x * sum_g m_g * sum(q8)_g  (16-value groups).
// Paths: the plain reference and AVX2 (`vpmaddubsw` on unsigned nibbles or on |w| with x signed by w,
// `vpmaddwd` by the scales), which the AVX-512 level uses too.
//
// Dimension legend: C input columns (a multiple of 256), K = C / 256 blocks per row, T tokens.
#include "ckernels.h"
#include "kernels_internal.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

void sy_quantize_q8k(const float *x, int64_t n, int8_t *q, float *d, int16_t *s) {
    for (int64_t b = 0; b < n / 256; b++) {
        const float amax = sy_q8_block(x + 256 * b, 256, q + 256 * b);
        d[b] = amax != 0 ? 1.0f / (127.0f / amax) : 0;   /* ggml keeps 1 / iscale, not amax / 127 */
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += q[256 * b + 16 * g + i];
            s[16 * b + g] = (int16_t)sum;
        }
    }
}


static void sy_qdot_q6k_ref(const uint8_t *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out);
static void sy_qdot_q23k_ref(int type, const uint8_t *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out);
static void sy_qdot_iq4xs_ref(const uint8_t *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out);

void sy_qdot_k_ref(int type, const void *wrow, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
    const uint8_t *w = (const uint8_t *)wrow;
    if (type == SY_Q6_K) { sy_qdot_q6k_ref(w, cols, q, d, ldq, nt, out); return; }
    if (type == SY_IQ4_XS) { sy_qdot_iq4xs_ref(w, cols, q, d, ldq, nt, out); return; }
    if (type == SY_Q2_K || type == SY_Q3_K) { sy_qdot_q23k_ref(type, w, cols, q, d, ldq, nt, out); return; }
    /* Q5_K: Q4_K's layout with 32 bytes of fifth bits (bit j of byte l for group j) before the nibbles. */
    const int five = type == SY_Q5_K, bb = five ? 176 : 144;
    for (int t = 0; t < nt; t++) {
        const int8_t *qt = q + t * ldq;
        const float *dt = d + t * (ldq / 32);
        const int16_t *st = s + t * (ldq / 16);
        float acc = 0;
        for (int64_t b = 0; b < cols / 256; b++) {
            const uint8_t *blk = w + bb * b, *qs = blk + (five ? 48 : 16), *qh = blk + 16;
            int sumi = 0, summ = 0;
            for (int j = 0; j < 8; j++) {
                int sc, m, dot = 0;
                sy_q4k_scale(blk + 4, j, &sc, &m);
                for (int l = 0; l < 32; l++) {
                    const int v = (j % 2 ? qs[32 * (j / 2) + l] >> 4 : qs[32 * (j / 2) + l] & 0xF) | (five ? ((qh[l] >> j) & 1) << 4 : 0);
                    dot += v * qt[256 * b + 32 * j + l];
                }
                sumi += sc * dot;
                summ += m * (st[16 * b + 2 * j] + st[16 * b + 2 * j + 1]);
            }
            acc += sy_f16_at(blk) * dt[b] * (float)sumi - sy_f16_at(blk + 2) * dt[b] * (float)summ;
        }
        out[t] = acc;
    }
}

/* Q6_K weight e (of 256) of a block, minus 32, and its group's scale index (the layout of Dequantize.swift). */
static inline int sy_q6k(const uint8_t *blk, int e, int *g) {
    const int n = e / 128, r = e % 128, k = r / 32, l = r % 32;
    const uint8_t ql = blk[64 * n + (k & 1) * 32 + l], qh = blk[128 + 32 * n + l];
    *g = 8 * n + 2 * k + l / 16;
    return ((k < 2 ? ql & 0xF : ql >> 4) | ((qh >> (2 * k)) & 3) << 4) - 32;
}

static const int8_t sy_iq4_levels8[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* IQ4_XS sub-block s's 6-bit scale minus 32 (low nibbles at byte 4, high bit pairs in the u16 at byte 2). */
static inline int sy_iq4xs_scale(const uint8_t *blk, int sb) {
    const int high = blk[2] | blk[3] << 8;
    return (((blk[4 + sb / 2] >> (4 * (sb % 2))) & 0xF) | ((high >> (2 * sb)) & 3) << 4) - 32;
}

static void sy_qdot_iq4xs_ref(const uint8_t *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    for (int t = 0; t < nt; t++) {
        float acc = 0;
        for (int64_t b = 0; b < cols / 256; b++) {
            const uint8_t *blk = w + 136 * b;
            int sumi = 0;
            for (int sb = 0; sb < 8; sb++) {
                int dot = 0;
                for (int i = 0; i < 32; i++) {
                    const uint8_t byte = blk[8 + 16 * sb + i % 16];
                    dot += sy_iq4_levels8[i < 16 ? byte & 0xF : byte >> 4] * q[t * ldq + 256 * b + 32 * sb + i];
                }
                sumi += sy_iq4xs_scale(blk, sb) * dot;
            }
            acc += sy_f16_at(blk) * d[t * (ldq / 32) + b] * (float)sumi;
        }
        out[t] = acc;
    }
}

static void sy_qdot_q6k_ref(const uint8_t *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    for (int t = 0; t < nt; t++) {
        float acc = 0;
        for (int64_t b = 0; b < cols / 256; b++) {
            const uint8_t *blk = w + 210 * b;
            int sumi = 0;
            for (int e = 0; e < 256; e++) {
                int g;
                const int v = sy_q6k(blk, e, &g);
                sumi += (int8_t)blk[192 + g] * v * q[t * ldq + 256 * b + e];
            }
            acc += sy_f16_at(blk + 208) * d[t * (ldq / 32) + b] * (float)sumi;
        }
        out[t] = acc;
    }
}


/* Q2_K and Q3_K weight e (of 256) of a block (the layouts of Dequantize.swift): the 32-run r = e / 32 takes bits
   2 (r % 4) of qs bytes 32 (r / 4) + e % 32; Q3_K adds 4 unless bit 4 (r / 4) + r % 4 of hmask byte e % 32 is
   clear, then subtracts 4. Both group by 16 (group e / 16). */
static inline int sy_q2k_w(const uint8_t *blk, int e) { return (blk[16 + 32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }
static inline int sy_q3k_w(const uint8_t *blk, int e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    return ((blk[32 + 32 * h + l] >> (2 * k)) & 3) - (((blk[l] >> (4 * h + k)) & 1) ? 0 : 4);
}
/* Q3_K group g's 6-bit scale minus 32 (low nibbles in bytes 96-103, high bit pairs in 104-107). */
static inline int sy_q3k_sc(const uint8_t *blk, int g) {
    const uint8_t *sc = blk + 96;
    const int low = g < 8 ? sc[g] & 0xF : sc[g - 8] >> 4, high = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
    return (low | high << 4) - 32;
}

static void sy_qdot_q23k_ref(int type, const uint8_t *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const int two = type == SY_Q2_K, bb = two ? 84 : 110;
    for (int t = 0; t < nt; t++) {
        float acc = 0;
        for (int64_t b = 0; b < cols / 256; b++) {
            const uint8_t *blk = w + bb * b;
            const int8_t *x = q + t * ldq + 256 * b;
            int sumi = 0, summ = 0;
            for (int g = 0; g < 16; g++) {
                int dot = 0, sx = 0;
                for (int i = 16 * g; i < 16 * g + 16; i++) {
                    dot += (two ? sy_q2k_w(blk, i) : sy_q3k_w(blk, i)) * x[i];
                    sx += x[i];
                }
                if (two) { sumi += (blk[g] & 0xF) * dot; summ += (blk[g] >> 4) * sx; }
                else sumi += sy_q3k_sc(blk, g) * dot;
            }
            const float dx = d[t * (ldq / 32) + b];
            acc += two ? sy_f16_at(blk + 80) * dx * (float)sumi - sy_f16_at(blk + 82) * dx * (float)summ
                       : sy_f16_at(blk + 108) * dx * (float)sumi;
        }
        out[t] = acc;
    }
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
/* The token loop of the kernels whose weights are signed int8 runs (Q6_K, IQ4_XS): for each token, block b's
   8 runs of 32 (wv) against the token's activations, each run's int16 products times its scale lanes (sv),
   summed in int32, then scaled by dw and the token's block scale into acc[t]. */
static inline void sy_signed_runs(const __m256i *wv, const __m256i *sv, float dw, const int8_t *q, const float *d,
                                  int64_t ldq, int64_t b, int nt, __m256 *acc) {
    for (int t = 0; t < nt; t++) {
        const int8_t *x = q + t * ldq + 256 * b;
        __m256i sumi = _mm256_setzero_si256();
        for (int r = 0; r < 8; r++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + 32 * r));
            const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv[r], wv[r]), _mm256_sign_epi8(xv, wv[r]));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, sv[r]));
        }
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * d[t * (ldq / 32) + b]), _mm256_cvtepi32_ps(sumi), acc[t]);
    }
}

/* Q4_K and Q5_K. Per block: the scales come out of sy_q4k_scales16 once; run r's scale is int16 lane r of
   them, broadcast by one byte shuffle; the minimums' term is one vpmaddwd of each minimum (twice, once per
   16-value half) against the activations' 16-value group sums. */
static void sy_qdot_k_avx2(int five, const uint8_t *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const int bb = five ? 176 : 144;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256 accm[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256i pick[8];   /* byte shuffle that spreads int16 lane r over the register */
    for (int r = 0; r < 8; r++) pick[r] = _mm256_set1_epi16((short)(0x0100 * (2 * r + 1) + 2 * r));
    for (int64_t b = 0; b < cols / 256; b++) {
        const uint8_t *blk = w + bb * b, *qs = blk + (five ? 48 : 16);
        const __m128i sm = sy_q4k_scales16(blk + 4);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));                   /* 8 scales */
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));                        /* m0 m0 m1 m1 ... */
        __m256i lo[4], hi[4];
        const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
        for (int p = 0; p < 4; p++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * p));
            lo[p] = _mm256_and_si256(v, m4);
            hi[p] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (five) {
                lo[p] = _mm256_or_si256(lo[p], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * p), one), 4));
                hi[p] = _mm256_or_si256(hi[p], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * p + 1), one), 4));
            }
        }
        const float dw = sy_f16_at(blk), dm = sy_f16_at(blk + 2);
        for (int t = 0; t < nt; t++) {
            const int8_t *x = q + t * ldq + 256 * b;
            __m256i sumi = _mm256_setzero_si256();
            for (int p = 0; p < 4; p++) {
                const __m256i p0 = _mm256_maddubs_epi16(lo[p], _mm256_loadu_si256((const __m256i *)(x + 64 * p)));
                const __m256i p1 = _mm256_maddubs_epi16(hi[p], _mm256_loadu_si256((const __m256i *)(x + 64 * p + 32)));
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_madd_epi16(p0, _mm256_shuffle_epi8(sc16, pick[2 * p])),
                                                               _mm256_madd_epi16(p1, _mm256_shuffle_epi8(sc16, pick[2 * p + 1]))));
            }
            const float dx = d[t * (ldq / 32) + b];
            const __m256i summ = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(s + t * (ldq / 16) + 16 * b)), mins);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx), _mm256_cvtepi32_ps(sumi), acc[t]);
            accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(dm * dx), _mm256_cvtepi32_ps(summ), accm[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = sy_hsum8(acc[t]) - sy_hsum8(accm[t]);
}

static void sy_qdot_iq4xs_avx2(const uint8_t *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const __m256i levels = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sy_iq4_levels8));
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < cols / 256; b++) {
        const uint8_t *blk = w + 136 * b;
        __m256i wv[8], sv[8];   /* each sub-block's 32 levels (low nibbles, then high) and its scale */
        for (int sb = 0; sb < 8; sb++) {
            wv[sb] = _mm256_shuffle_epi8(levels, sy_nibbles32(blk + 8 + 16 * sb));
            sv[sb] = _mm256_set1_epi16((short)sy_iq4xs_scale(blk, sb));
        }
        sy_signed_runs(wv, sv, sy_f16_at(blk), q, d, ldq, b, nt, acc);
    }
    for (int t = 0; t < nt; t++) out[t] = sy_hsum8(acc[t]);
}

/* Q6_K with its values as stored (0-63, unsigned): they multiply the activations as they are, and the 32 the
   format subtracts comes off once per block as 32 x (scales . the activations' 16-value group sums), one
   vpmaddwd (the integer sum is the same as with signed values). */
static void sy_qdot_q6k_avx2(const uint8_t *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt,
                             float *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    /* Run k of a half has groups 2k and 2k + 1: a byte shuffle per 128-bit lane spreads int16 lane 2k over the
       low lane and 2k + 1 over the high one. */
    __m256i pick[4];
    for (int k = 0; k < 4; k++)
        pick[k] = _mm256_setr_m128i(_mm_set1_epi16((short)(0x0100 * (4 * k + 1) + 4 * k)), _mm_set1_epi16((short)(0x0100 * (4 * k + 3) + 4 * k + 2)));
    for (int64_t b = 0; b < cols / 256; b++) {
        const uint8_t *blk = w + 210 * b;
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)(blk + 192));   /* 16 int8 group scales */
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const __m256i sch[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00), _mm256_permute2x128_si256(sc16, sc16, 0x11)};
        __m256i wv[8], sv[8];   /* the block's 8 runs of 32 values (0-63) and their two group scales */
        for (int n = 0; n < 2; n++) {
            const __m256i la = _mm256_loadu_si256((const __m256i *)(blk + 64 * n));
            const __m256i lb = _mm256_loadu_si256((const __m256i *)(blk + 64 * n + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * n));
            const __m256i lo[4] = {_mm256_and_si256(la, m4), _mm256_and_si256(lb, m4),
                                   _mm256_and_si256(_mm256_srli_epi16(la, 4), m4), _mm256_and_si256(_mm256_srli_epi16(lb, 4), m4)};
            for (int k = 0; k < 4; k++) {
                wv[4 * n + k] = _mm256_or_si256(lo[k], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * k), m2), 4));
                sv[4 * n + k] = _mm256_shuffle_epi8(sch[n], pick[k]);
            }
        }
        const float dw = sy_f16_at(blk + 208);
        for (int t = 0; t < nt; t++) {
            const int8_t *x = q + t * ldq + 256 * b;
            __m256i sumi = _mm256_setzero_si256();
            for (int r = 0; r < 8; r++)
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(wv[r], _mm256_loadu_si256((const __m256i *)(x + 32 * r))), sv[r]));
            const __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(s + t * (ldq / 16) + 16 * b)), sc16);
            sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 5));
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * d[t * (ldq / 32) + b]), _mm256_cvtepi32_ps(sumi), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = sy_hsum8(acc[t]);
}

static void sy_qdot_q3k_avx2(const uint8_t *w, int64_t cols, const int8_t *q, const float *d, int64_t ldq, int nt, float *out) {
    const __m256i m2 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1), four = _mm256_set1_epi8(4);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < cols / 256; b++) {
        const uint8_t *blk = w + 110 * b;
        const __m256i hm = _mm256_loadu_si256((const __m256i *)blk);
        __m256i wv[8], sv[8];   /* the block's 8 runs of 32 values in [-4, 3] and their two group scales */
        for (int r = 0; r < 8; r++) {
            const int h = r / 4, k = r % 4;
            const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(blk + 32 + 32 * h)), 2 * k), m2);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + k), m1);
            wv[r] = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 2)), four);
            sv[r] = _mm256_set_m128i(_mm_set1_epi16((short)sy_q3k_sc(blk, 2 * r + 1)), _mm_set1_epi16((short)sy_q3k_sc(blk, 2 * r)));
        }
        sy_signed_runs(wv, sv, sy_f16_at(blk + 108), q, d, ldq, b, nt, acc);
    }
    for (int t = 0; t < nt; t++) out[t] = sy_hsum8(acc[t]);
}

/* Q2_K: the values are unsigned (0-3), so they multiply the activations directly; the minimums' term is one
   vpmaddwd of the 16 minimums against the activations' 16-value group sums (kept by the Q8_K quantizer). */
static void sy_qdot_q2k_avx2(const uint8_t *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt,
                             float *out) {
    const __m256i m2 = _mm256_set1_epi8(3);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256 accm[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < cols / 256; b++) {
        const uint8_t *blk = w + 84 * b;
        __m256i wv[8], sv[8];
        for (int r = 0; r < 8; r++) {
            const int h = r / 4, k = r % 4;
            wv[r] = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * h)), 2 * k), m2);
            sv[r] = _mm256_set_m128i(_mm_set1_epi16(blk[2 * r + 1] & 0xF), _mm_set1_epi16(blk[2 * r] & 0xF));
        }
        /* the 16 minimums (high nibbles of the scale bytes) as int16 */
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(_mm_loadu_si128((const __m128i *)blk), 4), _mm_set1_epi8(0x0F)));
        const float dw = sy_f16_at(blk + 80), dm = sy_f16_at(blk + 82);
        for (int t = 0; t < nt; t++) {
            const int8_t *x = q + t * ldq + 256 * b;
            __m256i sumi = _mm256_setzero_si256();
            for (int r = 0; r < 8; r++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + 32 * r));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(wv[r], xv), sv[r]));
            }
            const __m256i summ = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(s + t * (ldq / 16) + 16 * b)), mins);
            const float dx = d[t * (ldq / 32) + b];
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx), _mm256_cvtepi32_ps(sumi), acc[t]);
            accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(dm * dx), _mm256_cvtepi32_ps(summ), accm[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = sy_hsum8(acc[t]) - sy_hsum8(accm[t]);
}
#pragma clang attribute pop
#endif

void sy_qdot_k_row(int isa, int type, const void *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
#if defined(__x86_64__)
    if (isa >= SY_ISA_AVX2) {
        if (type == SY_Q6_K) sy_qdot_q6k_avx2((const uint8_t *)w, cols, q, d, s, ldq, nt, out);
        else if (type == SY_IQ4_XS) sy_qdot_iq4xs_avx2((const uint8_t *)w, cols, q, d, ldq, nt, out);
        else if (type == SY_Q3_K) sy_qdot_q3k_avx2((const uint8_t *)w, cols, q, d, ldq, nt, out);
        else if (type == SY_Q2_K) sy_qdot_q2k_avx2((const uint8_t *)w, cols, q, d, s, ldq, nt, out);
        else sy_qdot_k_avx2(type == SY_Q5_K, (const uint8_t *)w, cols, q, d, s, ldq, nt, out);
        return;
    }
#endif
    (void)isa;
    sy_qdot_k_ref(type, w, cols, q, d, s, ldq, nt, out);
}
