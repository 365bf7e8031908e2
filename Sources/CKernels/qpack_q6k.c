// Q6_K weights repacked at load into four-row groups, and their kernels on Q8_K activations (beside
// qpack_k.c's Q4_K; Q6_K is the output head of llama-quantize's Q4_K_S and Q4_K_M, and part of their FFNs).
// A 256-value super-block of four rows becomes, in the same 4 x 210 bytes:
//   [4 x fp16 d][64 scale bytes][8 runs x 96 bytes]
// Scale byte 8k + 4h + r is row r's int8 scale of group 2k + h (groups of 16 values): run k's eight scales in
// one 8-byte load. Run k (values 32k..32k+31 of each row) is 64 bytes of low nibbles laid out as a packed
// Q4_0 group-block's values (qpack.c: byte i of word V_h holds, for row i/8, element 8(2h) + i%8 in its low
// nibble and 8(2h+1) + i%8 in its high nibble), then 32 bytes H whose byte i holds the top two bits of the
// codes of byte i of sub-runs j = 0-3 in its bit pairs 2j, 2j+1. So a run's codes (0-63) are three loads,
// shifts and masks; sub-runs 0-1 are group 2k and 2-3 group 2k+1, so each pair's int16 sums (at most
// 2 x 2 x 63 x 127) take their rows' scales in one vpmaddwd; the 32 the format subtracts comes off once per
// super-block and token as 32 x (the row's scales . the token's 16-value sums), half on each of its two lanes.
//
// Dimension legend: C input columns (a multiple of 256), K = C / 256 super-blocks per row, T tokens (<= 4).
#include "ckernels.h"
#include "kernels_internal.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { SY_Q6K_BB = 210, SY_Q6KP_RUNS = 72 };

/* GGUF Q6_K value e (of 256) of a block as its code (0-63): the layout of Dequantize.swift (low nibbles in
   ql, top bit pairs in qh, four 32-value quarters per 128). */
static inline int sy_q6k_code(const uint8_t *blk, int e) {
    const int n = e / 128, r = e % 128, k = r / 32, l = r % 32;
    const uint8_t ql = blk[64 * n + (k & 1) * 32 + l], qh = blk[128 + 32 * n + l];
    return (k < 2 ? ql & 0xF : ql >> 4) | ((qh >> (2 * k)) & 3) << 4;
}

/* Row r's scale of group g in a packed super-block. */
static inline int sy_q6kp_scale(const uint8_t *gb, int r, int g) { return (int8_t)gb[8 + 8 * (g / 2) + 4 * (g % 2) + r]; }

/* Code of row r, element e (of 256) in a packed super-block: run e / 32, sub-run j, byte i = 8r + e % 8. */
static inline int sy_q6kp_code(const uint8_t *gb, int r, int e) {
    const int j = (e % 32) / 8, i = 8 * r + e % 8;
    const uint8_t *run = gb + SY_Q6KP_RUNS + 96 * (e / 32);
    const uint8_t v = run[32 * (j / 2) + i];
    return (j % 2 ? v >> 4 : v & 0xF) | ((run[64 + i] >> (2 * j)) & 3) << 4;
}

void sy_pack4_q6k(const void *src, int64_t rows, int64_t cols, void *dst) {
    const int64_t nb = cols / 256, rb = nb * SY_Q6K_BB;
    for (int64_t g = 0; g < rows / 4; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *gb = (uint8_t *)dst + g * 4 * rb + b * 4 * SY_Q6K_BB;
            memset(gb, 0, 4 * SY_Q6K_BB);
            for (int r = 0; r < 4; r++) {
                const uint8_t *blk = (const uint8_t *)src + (4 * g + r) * rb + b * SY_Q6K_BB;
                memcpy(gb + 2 * r, blk + 208, 2);
                for (int gr = 0; gr < 16; gr++) gb[8 + 8 * (gr / 2) + 4 * (gr % 2) + r] = blk[192 + gr];
                for (int e = 0; e < 256; e++) {
                    const int c = sy_q6k_code(blk, e), j = (e % 32) / 8, i = 8 * r + e % 8;
                    uint8_t *run = gb + SY_Q6KP_RUNS + 96 * (e / 32);
                    run[32 * (j / 2) + i] |= (uint8_t)((c & 0xF) << (4 * (j % 2)));
                    run[64 + i] |= (uint8_t)((c >> 4) << (2 * j));
                }
            }
        }
}

void sy_unpack4_q6k_row(const void *packed, int64_t cols, int64_t row, void *dst) {
    const int64_t nb = cols / 256, rb = nb * SY_Q6K_BB, g = row / 4;
    const int r = (int)(row % 4);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *gb = (const uint8_t *)packed + g * 4 * rb + b * 4 * SY_Q6K_BB;
        uint8_t *blk = (uint8_t *)dst + b * SY_Q6K_BB;
        memset(blk, 0, 192);
        for (int gr = 0; gr < 16; gr++) blk[192 + gr] = (uint8_t)sy_q6kp_scale(gb, r, gr);
        memcpy(blk + 208, gb + 2 * r, 2);
        for (int e = 0; e < 256; e++) {
            const int c = sy_q6kp_code(gb, r, e), n = e / 128, q = (e % 128) / 32, l = e % 32;
            blk[64 * n + (q & 1) * 32 + l] |= (uint8_t)((c & 0xF) << (q < 2 ? 0 : 4));
            blk[128 + 32 * n + l] |= (uint8_t)((c >> 4) << (2 * q));
        }
    }
}

/* The plain reference in the fast path's order: int32 lane (r, h) of a super-block sums, over runs k and
   sub-runs j, S[r][2k + j/2] x (codes times activations of elements 8j + 4h .. 8j + 4h + 3 of run k), less
   16 x sum_g S[r][g] x (the token's 16-value sum g); then acc += (d_r dx) lane (fused), and row r's output is
   acc[2r] + acc[2r+1]. */
void sy_qpack_q6k_ref(const void *group, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
    for (int t = 0; t < nt; t++) {
        float acc[8] = {0};
        for (int64_t b = 0; b < cols / 256; b++) {
            const uint8_t *gb = (const uint8_t *)group + b * 4 * SY_Q6K_BB;
            const int8_t *x = q + t * ldq + 256 * b;
            const int16_t *st = s + t * (ldq / 16) + 16 * b;
            const float dx = d[t * (ldq / 32) + b];
            for (int l = 0; l < 8; l++) {
                const int r = l / 2, h = l % 2;
                int sumi = 0, off = 0;
                for (int k = 0; k < 8; k++)
                    for (int j = 0; j < 4; j++) {
                        int dot = 0;
                        for (int e = 32 * k + 8 * j + 4 * h; e < 32 * k + 8 * j + 4 * h + 4; e++) dot += sy_q6kp_code(gb, r, e) * x[e];
                        sumi += sy_q6kp_scale(gb, r, 2 * k + j / 2) * dot;
                    }
                for (int g = 0; g < 16; g++) off += sy_q6kp_scale(gb, r, g) * st[g];
                acc[l] = fmaf(sy_f16_at(gb + 2 * r) * dx, (float)(sumi - 16 * off), acc[l]);
            }
        }
        for (int r = 0; r < 4; r++) out[4 * r + t] = acc[2 * r] + acc[2 * r + 1];
    }
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
/* 16 x (row r's scales . the token's 16-value sums) in int32 lanes 2r and 2r+1. The scales (as int16, four
   registers Y of two runs each: lanes [r0..r3 of group 4m, r0..r3 of 4m+1 | 4m+2, 4m+3]) meet the sums
   repeated to match, once with the odd rows' lanes zeroed and once the even rows', so vpmaddwd never adds two
   rows; the per-row totals are then gathered into the rows' lanes. */
static inline __m256i sy_q6kp_offsets(const __m256i *Y, const int16_t *st) {
    const __m256i sv = _mm256_loadu_si256((const __m256i *)st);
    const __m256i ev = _mm256_setr_epi8(0, 1, -1, -1, 0, 1, -1, -1, 2, 3, -1, -1, 2, 3, -1, -1,
                                        4, 5, -1, -1, 4, 5, -1, -1, 6, 7, -1, -1, 6, 7, -1, -1);
    const __m256i od = _mm256_setr_epi8(-1, -1, 0, 1, -1, -1, 0, 1, -1, -1, 2, 3, -1, -1, 2, 3,
                                        -1, -1, 4, 5, -1, -1, 4, 5, -1, -1, 6, 7, -1, -1, 6, 7);
    __m256i E = _mm256_setzero_si256(), O = _mm256_setzero_si256();
    for (int m = 0; m < 4; m++) {
        /* every 64-bit lane = sums 4m..4m+3 */
        const __m256i p = _mm256_permutevar8x32_epi32(sv, _mm256_setr_epi32(2 * m, 2 * m + 1, 2 * m, 2 * m + 1, 2 * m, 2 * m + 1, 2 * m, 2 * m + 1));
        E = _mm256_add_epi32(E, _mm256_madd_epi16(Y[m], _mm256_shuffle_epi8(p, ev)));   /* lanes: r0, r2, r0, r2 | ... */
        O = _mm256_add_epi32(O, _mm256_madd_epi16(Y[m], _mm256_shuffle_epi8(p, od)));   /* lanes: r1, r3, ... */
    }
    E = _mm256_add_epi32(E, _mm256_shuffle_epi32(E, 0x4E));   /* [r0, r2, r0, r2] sums within a half */
    O = _mm256_add_epi32(O, _mm256_shuffle_epi32(O, 0x4E));
    E = _mm256_add_epi32(E, _mm256_permute2x128_si256(E, E, 0x01));
    O = _mm256_add_epi32(O, _mm256_permute2x128_si256(O, O, 0x01));
    const __m256i rows = _mm256_unpacklo_epi32(E, O);   /* [R0, R1, R2, R3] in each half */
    return _mm256_slli_epi32(_mm256_permutevar8x32_epi32(rows, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3)), 4);
}

static inline __attribute__((always_inline)) void sy_qpack_q6k_avx2_t(const void *group, int64_t cols, const int8_t *q, const float *d,
                                                                    const int16_t *s, int64_t ldq, int nt, float *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    /* int16 lanes 4r'..4r'+3 of half c <- int16 lane 2c + r' of a run's eight scales (group 2k: lanes 0-3) */
    const __m256i pa = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7);
    const __m256i pb = _mm256_add_epi8(pa, _mm256_set1_epi8(8));
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < cols / 256; b++) {
        const uint8_t *gb = (const uint8_t *)group + b * 4 * SY_Q6K_BB;
        const __m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)gb))), dup);
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int k = 0; k < 8; k++) {
            const uint8_t *run = gb + SY_Q6KP_RUNS + 96 * k;
            const __m256i v0 = _mm256_loadu_si256((const __m256i *)run), v1 = _mm256_loadu_si256((const __m256i *)(run + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(run + 64));
            const __m256i c0 = _mm256_or_si256(_mm256_and_si256(v0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            const __m256i c1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            const __m256i c2 = _mm256_or_si256(_mm256_and_si256(v1, m4), _mm256_and_si256(h, m30));
            const __m256i c3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
            const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(gb + 8 + 8 * k))));
            const __m256i sa = _mm256_shuffle_epi8(sc, pa), sb = _mm256_shuffle_epi8(sc, pb);
            for (int t = 0; t < nt; t++) {
                const int8_t *xk = q + t * ldq + 256 * b + 32 * k;
                const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(c0, sy_bcast8(xk, 0)), _mm256_maddubs_epi16(c1, sy_bcast8(xk, 1)));
                const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(c2, sy_bcast8(xk, 2)), _mm256_maddubs_epi16(c3, sy_bcast8(xk, 3)));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_madd_epi16(p01, sa), _mm256_madd_epi16(p23, sb)));
            }
        }
        const __m256i Y[4] = {_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(gb + 8))),
                              _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(gb + 24))),
                              _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(gb + 40))),
                              _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(gb + 56)))};
        for (int t = 0; t < nt; t++) {
            const __m256i lane = _mm256_sub_epi32(sumi[t], sy_q6kp_offsets(Y, s + t * (ldq / 16) + 16 * b));
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d[t * (ldq / 32) + b])), _mm256_cvtepi32_ps(lane), acc[t]);
        }
    }
    sy_tile_out(acc[0], acc[1], acc[2], acc[3], nt, out);
}

void sy_qpack_q6k_avx2(const void *group, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out) {
    SY_PER_TOKEN_COUNT(sy_qpack_q6k_avx2_t, group, cols, q, d, s, ldq, nt, out);
}
#pragma clang attribute pop
#endif
