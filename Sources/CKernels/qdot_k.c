// Q4_K weights on Q8_K-quantized activations (llama.cpp's pairing for K-quants, our code). An activation
// block is 256 int8 with one float scale (amax / 127, as the reciprocal of 127 / amax: ggml's
// block_q8_K keeps 1 / iscale) and the sums of its eight 32-value groups (for the weights' minimums). A Q4_K
// block is 8 groups of 32 four-bit values with 6-bit scales and minimums under two fp16 factors, so
//   dot = d_w * d_x * sum_j sc_j * (q4 . q8)_j  -  dmin_w * d_x * sum_j m_j * sum(q8)_j.
// Paths: the plain reference and AVX2 (`vpmaddubsw` on the unsigned nibbles, `vpmaddwd` by the scales),
// which the AVX-512 level uses too.
//
// Dimension legend: C input columns (a multiple of 256), K = C / 256 blocks per row, T tokens.
#include "ckernels.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

void sy_quantize_q8k(const float *x, int64_t n, int8_t *q, float *d, int16_t *s) {
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + 256 * b;
        float amax = 0;
        for (int i = 0; i < 256; i++) amax = fmaxf(amax, fabsf(xb[i]));
        const float is = amax != 0 ? 127.0f / amax : 0;
        for (int i = 0; i < 256; i++) q[256 * b + i] = (int8_t)lrintf(xb[i] * is);
        d[b] = amax != 0 ? 1.0f / is : 0;
        for (int g = 0; g < 8; g++) {
            int sum = 0;
            for (int i = 0; i < 32; i++) sum += q[256 * b + 32 * g + i];
            s[8 * b + g] = (int16_t)sum;
        }
    }
}

/* Group j's 6-bit scale and minimum from the 12 packed bytes (the K-quant layout). */
static inline void sy_q4k_scale(const uint8_t *p, int j, int *sc, int *m) {
    if (j < 4) { *sc = p[j] & 63; *m = p[j + 4] & 63; }
    else { *sc = (p[j + 4] & 0xF) | ((p[j - 4] >> 6) << 4); *m = (p[j + 4] >> 4) | ((p[j] >> 6) << 4); }
}

static inline float sy_f16(const uint8_t *p) {
    _Float16 h; memcpy(&h, p, 2);
    return (float)h;
}

void sy_qdot_k_ref(const void *wrow, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
    const uint8_t *w = (const uint8_t *)wrow;
    for (int t = 0; t < nt; t++) {
        const int8_t *qt = q + t * ldq;
        const float *dt = d + t * (ldq / 32);
        const int16_t *st = s + t * (ldq / 32);
        float acc = 0;
        for (int64_t b = 0; b < cols / 256; b++) {
            const uint8_t *blk = w + 144 * b, *qs = blk + 16;
            int sumi = 0, summ = 0;
            for (int j = 0; j < 8; j++) {
                int sc, m, dot = 0;
                sy_q4k_scale(blk + 4, j, &sc, &m);
                for (int l = 0; l < 32; l++) {
                    const int v = j % 2 ? qs[32 * (j / 2) + l] >> 4 : qs[32 * (j / 2) + l] & 0xF;
                    dot += v * qt[256 * b + 32 * j + l];
                }
                sumi += sc * dot;
                summ += m * st[8 * b + j];
            }
            acc += sy_f16(blk) * dt[b] * (float)sumi - sy_f16(blk + 2) * dt[b] * (float)summ;
        }
        out[t] = acc;
    }
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
static inline float sy_hsum_k(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static void sy_qdot_k_avx2(const uint8_t *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float accm[4] = {0, 0, 0, 0};
    for (int64_t b = 0; b < cols / 256; b++) {
        const uint8_t *blk = w + 144 * b, *qs = blk + 16;
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) sy_q4k_scale(blk + 4, j, &sc[j], &mn[j]);
        __m256i lo[4], hi[4];
        for (int p = 0; p < 4; p++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * p));
            lo[p] = _mm256_and_si256(v, m4);
            hi[p] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
        const float dw = sy_f16(blk), dm = sy_f16(blk + 2);
        for (int t = 0; t < nt; t++) {
            const int8_t *x = q + t * ldq + 256 * b;
            __m256i sumi = _mm256_setzero_si256();
            for (int p = 0; p < 4; p++) {
                const __m256i p0 = _mm256_maddubs_epi16(lo[p], _mm256_loadu_si256((const __m256i *)(x + 64 * p)));
                const __m256i p1 = _mm256_maddubs_epi16(hi[p], _mm256_loadu_si256((const __m256i *)(x + 64 * p + 32)));
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_madd_epi16(p0, _mm256_set1_epi16((short)sc[2 * p])),
                                                               _mm256_madd_epi16(p1, _mm256_set1_epi16((short)sc[2 * p + 1]))));
            }
            const float dx = d[t * (ldq / 32) + b];
            const int16_t *st = s + t * (ldq / 32) + 8 * b;
            int summ = 0;
            for (int j = 0; j < 8; j++) summ += mn[j] * st[j];
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx), _mm256_cvtepi32_ps(sumi), acc[t]);
            accm[t] += dm * dx * (float)summ;
        }
    }
    for (int t = 0; t < nt; t++) out[t] = sy_hsum_k(acc[t]) - accm[t];
}
#pragma clang attribute pop
#endif

void sy_qdot_k_row(int isa, const void *w, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
#if defined(__x86_64__)
    if (isa >= SY_ISA_AVX2) { sy_qdot_k_avx2((const uint8_t *)w, cols, q, d, s, ldq, nt, out); return; }
#endif
    (void)isa;
    sy_qdot_k_ref(w, cols, q, d, s, ldq, nt, out);
}
