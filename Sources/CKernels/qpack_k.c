// Q4_K weights repacked at load into four-row groups, and their kernels on Q8_K activations (the K-quant
// side of qpack.c; llama.cpp repacks Q4_K too, its q4_K_8x8; this layout and code are ours). A 256-value
// super-block of four rows becomes, in the same 4 x 144 bytes:
//   [4 x fp16 d][4 x fp16 dmin][48 bytes: the four rows' six-bit scales and minimums][8 runs x 64 bytes of codes]
// The scales are laid out for SIMD decoding (GGUF's 12-byte packing per row took four scalar decodes and
// inserts per super-block): with S[8r + j] and M[8r + j] row r's scale and minimum of run j, byte i of the
// first 32 holds S[i]'s low four bits (low nibble) and M[i]'s (high nibble), and byte i of the last 16 holds
// the top two bits of S[i], S[i + 16], M[i], M[i + 16] in its bit pairs 0-1, 2-3, 4-5, 6-7. So S and M as
// 32 bytes each are two loads, one variable shift per 32-bit lane and a few masks.
// where run k (values 32k..32k+31 of each row) is laid out as a packed Q4_0 group-block's values (qpack.c):
// byte i of word V_h (h = 0, 1) holds, for row i/8, element 8(2h) + i%8 of the run in its low nibble and
// element 8(2h+1) + i%8 in its high nibble. So run k of four rows against a token is four broadcasts and four
// vpmaddubsw, and the rows' six-bit scales for the run multiply the int16 sums in one vpmaddwd; the minimums'
// term is two vpmaddwd of the four rows' minimums against the run sums of the token. One FMA per block and
// token then serves four rows, and decode runs the same loop as prefill.
//
// Dimension legend: C input columns (a multiple of 256), K = C / 256 super-blocks per row, T tokens (<= 4).
#include "ckernels.h"
#include "kernels_internal.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { SY_Q4K_BB = 144 };

void sy_pack4_q4k(const void *src, int64_t rows, int64_t cols, void *dst) {
    const int64_t nb = cols / 256, rb = nb * SY_Q4K_BB;
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *o = (uint8_t *)dst;
    for (int64_t g = 0; g < rows / 4; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *gb = o + g * 4 * rb + b * 4 * SY_Q4K_BB;
            memset(gb + 48, 0, 16);
            for (int r = 0; r < 4; r++) {
                const uint8_t *blk = s + (4 * g + r) * rb + b * SY_Q4K_BB, *qs = blk + 16;
                memcpy(gb + 2 * r, blk, 2);
                memcpy(gb + 8 + 2 * r, blk + 2, 2);
                for (int j = 0; j < 8; j++) {
                    int sc, m;
                    const int i = 8 * r + j;
                    sy_q4k_scale(blk + 4, j, &sc, &m);
                    gb[16 + i] = (uint8_t)((sc & 0xF) | (m & 0xF) << 4);
                    gb[48 + i % 16] |= (uint8_t)((i < 16 ? (sc >> 4) | (m >> 4) << 4 : (sc >> 4) << 2 | (m >> 4) << 6));
                }
                /* GGUF: byte 32p + e of qs holds value 64p + e (low nibble) and 64p + 32 + e (high): run 2p, 2p+1. */
                for (int k = 0; k < 8; k++) {
                    const uint8_t *src_ = qs + 32 * (k / 2);
                    const int shift = 4 * (k % 2);
                    uint8_t *run = gb + 64 + 64 * k;
                    for (int e = 0; e < 8; e++) {
                        const int c0 = (src_[e] >> shift) & 0xF, c1 = (src_[8 + e] >> shift) & 0xF;
                        const int c2 = (src_[16 + e] >> shift) & 0xF, c3 = (src_[24 + e] >> shift) & 0xF;
                        run[8 * r + e] = (uint8_t)(c0 | c1 << 4);
                        run[32 + 8 * r + e] = (uint8_t)(c2 | c3 << 4);
                    }
                }
            }
        }
}

/* Row r's six-bit scale and minimum of run j from a packed super-block's 48 scale bytes. */
static inline void sy_q4kp_scale(const uint8_t *gb, int r, int j, int *sc, int *m) {
    const int i = 8 * r + j, lo = gb[16 + i], h = gb[48 + i % 16] >> (i < 16 ? 0 : 2);
    *sc = (lo & 0xF) | (h & 3) << 4;
    *m = (lo >> 4) | ((h >> 4) & 3) << 4;
}

void sy_unpack4_q4k_row(const void *packed, int64_t cols, int64_t row, void *dst) {
    const int64_t nb = cols / 256, rb = nb * SY_Q4K_BB, g = row / 4;
    const int r = (int)(row % 4);
    uint8_t *o = (uint8_t *)dst;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *gb = (const uint8_t *)packed + g * 4 * rb + b * 4 * SY_Q4K_BB;
        uint8_t *blk = o + b * SY_Q4K_BB, *qs = blk + 16;
        memcpy(blk, gb + 2 * r, 2);
        memcpy(blk + 2, gb + 8 + 2 * r, 2);
        int sc[8], m[8];
        for (int j = 0; j < 8; j++) sy_q4kp_scale(gb, r, j, &sc[j], &m[j]);
        for (int j = 0; j < 4; j++) {   /* GGUF's packing (the inverse of sy_q4k_scale) */
            blk[4 + j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
            blk[8 + j] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
            blk[12 + j] = (uint8_t)((sc[j + 4] & 0xF) | (m[j + 4] & 0xF) << 4);
        }
        memset(qs, 0, 128);
        for (int k = 0; k < 8; k++) {
            const uint8_t *run = gb + 64 + 64 * k;
            uint8_t *dst_ = qs + 32 * (k / 2);
            const int shift = 4 * (k % 2);
            for (int e = 0; e < 8; e++) {
                const uint8_t v0 = run[8 * r + e], v1 = run[32 + 8 * r + e];
                dst_[e] |= (uint8_t)((v0 & 0xF) << shift);
                dst_[8 + e] |= (uint8_t)((v0 >> 4) << shift);
                dst_[16 + e] |= (uint8_t)((v1 & 0xF) << shift);
                dst_[24 + e] |= (uint8_t)((v1 >> 4) << shift);
            }
        }
    }
}

/* Code of row r, run k, element e (0-31) of a packed super-block. */
static inline int sy_q4kp_code(const uint8_t *gb, int r, int k, int e) {
    const uint8_t v = gb[64 + 64 * k + 32 * (e / 16) + 8 * r + e % 8];
    return (e / 8) % 2 ? v >> 4 : v & 0xF;
}

/* The plain reference in the fast path's order: int32 lane (r, h) of a block sums, over the runs k,
   sc[r][k] x (the codes times activations of elements 8j + 4h .. 8j + 4h + 3, j = 0-3, of run k), and its
   minimum lane sums m[r][k] x (run k's activation sum) over k = 4h .. 4h + 3; then acc += (d_r dx) lane and
   accm += (dmin_r dx) lane (fused), and row r's output is (acc[2r] + acc[2r+1]) - (accm[2r] + accm[2r+1]). */
void sy_qpack_q4k_ref(const void *group, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
    for (int t = 0; t < nt; t++) {
        float acc[8] = {0}, accm[8] = {0};
        for (int64_t b = 0; b < cols / 256; b++) {
            const uint8_t *gb = (const uint8_t *)group + b * 4 * SY_Q4K_BB;
            const int8_t *x = q + t * ldq + 256 * b;
            const int16_t *st = s + t * (ldq / 16) + 16 * b;
            const float dx = d[t * (ldq / 32) + b];
            for (int l = 0; l < 8; l++) {
                const int r = l / 2, h = l % 2;
                int sumi = 0, mi = 0;
                for (int k = 0; k < 8; k++) {
                    int sc, m, dot = 0;
                    sy_q4kp_scale(gb, r, k, &sc, &m);
                    for (int j = 0; j < 4; j++)
                        for (int e = 8 * j + 4 * h; e < 8 * j + 4 * h + 4; e++) dot += sy_q4kp_code(gb, r, k, e) * x[32 * k + e];
                    sumi += sc * dot;
                    if (k / 4 == h) mi += m * (st[2 * k] + st[2 * k + 1]);
                }
                acc[l] = fmaf(sy_f16_at(gb + 2 * r) * dx, (float)sumi, acc[l]);
                accm[l] = fmaf(sy_f16_at(gb + 8 + 2 * r) * dx, (float)mi, accm[l]);
            }
        }
        for (int r = 0; r < 4; r++) out[4 * r + t] = (acc[2 * r] + acc[2 * r + 1]) - (accm[2 * r] + accm[2 * r + 1]);
    }
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
/* The loop for nt tokens; always inlined into one copy per token count that matters (1: decode, 4: prefill),
   so the per-token sums and accumulators stay in registers. */
static inline __attribute__((always_inline)) void sy_qpack_q4k_avx2_t(const void *group, int64_t cols, const int8_t *q, const float *d,
                                                                    const int16_t *s, int64_t ldq, int nt, float *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const __m256i m30 = _mm256_set1_epi8(0x30), sup = _mm256_setr_epi32(4, 4, 4, 4, 2, 2, 2, 2), mdown = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2);
    __m256i pick[8];   /* int16 lanes 4r'..4r'+3 (r' = row in the 128-bit half) <- byte 8r' + k of that half, zero-extended */
    for (int k = 0; k < 8; k++)
        pick[k] = _mm256_setr_epi8(k, -1, k, -1, k, -1, k, -1, 8 + k, -1, 8 + k, -1, 8 + k, -1, 8 + k, -1,
                                   k, -1, k, -1, k, -1, k, -1, 8 + k, -1, 8 + k, -1, 8 + k, -1, 8 + k, -1);
    __m256 acc[4], accm[4];
    for (int t = 0; t < 4; t++) acc[t] = accm[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < cols / 256; b++) {
        const uint8_t *gb = (const uint8_t *)group + b * 4 * SY_Q4K_BB;
        /* the four rows' scales S [r0 | r1 || r2 | r3] and minimums M, 8 bytes each: low nibbles, and the top bit
           pairs moved to bits 4-5 (S: up 4 in the low half, up 2 in the high; M: as they are, down 2) */
        const __m256i lo = _mm256_loadu_si256((const __m256i *)(gb + 16));
        const __m256i hi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(gb + 48)));
        const __m256i scb = _mm256_or_si256(_mm256_and_si256(lo, m4), _mm256_and_si256(_mm256_sllv_epi32(hi, sup), m30));
        const __m256i mnb = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo, 4), m4), _mm256_and_si256(_mm256_srlv_epi32(hi, mdown), m30));
        const __m256i m01 = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(mnb));   /* int16 lanes 8r + k, rows 0-1 */
        const __m256i m23 = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(mnb, 1));
        const __m128i dh = _mm_loadu_si128((const __m128i *)gb);   /* d[4], dmin[4] */
        const __m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(dh)), dup);
        const __m256 dm = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(_mm_unpackhi_epi64(dh, dh))), dup);
        /* Runs outside, tokens inside: each run's codes and scales are unpacked once for every token. */
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int k = 0; k < 8; k++) {
            const uint8_t *run = gb + 64 + 64 * k;
            _mm_prefetch((const char *)run + SY_PF_AHEAD, _MM_HINT_T0);
            const __m256i v0 = _mm256_loadu_si256((const __m256i *)run), v1 = _mm256_loadu_si256((const __m256i *)(run + 32));
            const __m256i c0 = _mm256_and_si256(v0, m4), c1 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4);
            const __m256i c2 = _mm256_and_si256(v1, m4), c3 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4);
            const __m256i scv = _mm256_shuffle_epi8(scb, pick[k]);
            for (int t = 0; t < nt; t++) {
                const int8_t *xk = q + t * ldq + 256 * b + 32 * k;
                const __m256i p = _mm256_add_epi16(
                    _mm256_add_epi16(_mm256_maddubs_epi16(c0, sy_bcast8(xk, 0)), _mm256_maddubs_epi16(c1, sy_bcast8(xk, 1))),
                    _mm256_add_epi16(_mm256_maddubs_epi16(c2, sy_bcast8(xk, 2)), _mm256_maddubs_epi16(c3, sy_bcast8(xk, 3))));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, scv));
            }
        }
        for (int t = 0; t < nt; t++) {
            /* run sums S_k = s[2k] + s[2k+1], in both halves; minimums against them, two lanes per row */
            const int16_t *st = s + t * (ldq / 16) + 16 * b;
            const __m128i sk = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)st), _mm_loadu_si128((const __m128i *)(st + 8)));
            const __m256i sv = _mm256_broadcastsi128_si256(sk);
            const __m256i mi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(_mm256_madd_epi16(m01, sv), _mm256_madd_epi16(m23, sv)), 0xD8);
            const __m256 dx = _mm256_set1_ps(d[t * (ldq / 32) + b]);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            accm[t] = _mm256_fmadd_ps(_mm256_mul_ps(dm, dx), _mm256_cvtepi32_ps(mi), accm[t]);
        }
    }
    for (int t = 0; t < nt; t++) {
        float h[8], hm[8];
        _mm256_storeu_ps(h, _mm256_hadd_ps(acc[t], acc[t]));
        _mm256_storeu_ps(hm, _mm256_hadd_ps(accm[t], accm[t]));
        /* hadd(a, a) = [a0+a1, a2+a3, ., . | a4+a5, a6+a7, ., .]: rows 0, 1, then 2, 3 */
        out[0 * 4 + t] = h[0] - hm[0];
        out[1 * 4 + t] = h[1] - hm[1];
        out[2 * 4 + t] = h[4] - hm[4];
        out[3 * 4 + t] = h[5] - hm[5];
    }
}

void sy_qpack_q4k_avx2(const void *group, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
    SY_PER_TOKEN_COUNT(sy_qpack_q4k_avx2_t, group, cols, q, d, s, ldq, nt, out);
}
#pragma clang attribute pop
#endif
