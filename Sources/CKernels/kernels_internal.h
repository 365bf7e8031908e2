// Small helpers the kernel files share (not part of the public header).
#ifndef SWITCHYARD_KERNELS_INTERNAL_H
#define SWITCHYARD_KERNELS_INTERNAL_H

#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>

/* Sum of the 8 lanes. */
__attribute__((target("avx2"))) static inline float sy_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The 16 bytes at p as 32 four-bit values in element order: low nibbles first, then high (the 32-block
   layout of Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL and IQ4_XS's sub-blocks). */
__attribute__((target("avx2"))) static inline __m256i sy_nibbles32(const uint8_t *p) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
}

/* A four-row tile's outputs: accumulator t holds token t's rows in lane pairs (2r, 2r + 1), which add up to
   out[4r + t] (hadd: h01 = [t0 r0, t0 r1, t1 r0, t1 r1 | t0 r2, t0 r3, t1 r2, t1 r3]); tokens past nt are not written. */
__attribute__((target("avx2"))) static inline void sy_tile_out(__m256 a0, __m256 a1, __m256 a2, __m256 a3, int nt, float *out) {
    float h01[8], h23[8];
    _mm256_storeu_ps(h01, _mm256_hadd_ps(a0, a1));
    _mm256_storeu_ps(h23, _mm256_hadd_ps(a2, a3));
    for (int r = 0; r < 4; r++) {
        const int l = (r / 2) * 4 + r % 2;
        out[4 * r + 0] = h01[l];
        if (nt > 1) out[4 * r + 1] = h01[l + 2];
        if (nt > 2) out[4 * r + 2] = h23[l];
        if (nt > 3) out[4 * r + 3] = h23[l + 2];
    }
}

/* The 8 bytes x[8j .. 8j+7] in every 64-bit lane (a token's run j, to meet four transposed rows at once). */
__attribute__((target("avx2"))) static inline __m256i sy_bcast8(const int8_t *x, int j) {
    int64_t v; memcpy(&v, x + 8 * j, 8);
    return _mm256_set1_epi64x(v);
}

/* The 12 packed scale bytes of a Q4_K/Q5_K block as 16 bytes: the 8 six-bit scales, then the 8 minimums.
   Groups 0-3 keep theirs in the low 6 bits of bytes 0-3 (scales) and 4-7 (minimums); groups 4-7 keep their
   low 4 bits in the nibbles of bytes 8-11 (scale low, minimum high) and their top 2 bits in the top 2 bits of
   bytes 0-3 (scales) and 4-7 (minimums): four bytes at a time in 32-bit words. */
__attribute__((target("avx2"))) static inline __m128i sy_q4k_scales16(const uint8_t *p) {
    uint32_t u0, u1, u2;
    memcpy(&u0, p, 4); memcpy(&u1, p + 4, 4); memcpy(&u2, p + 8, 4);
    const uint32_t lo6 = 0x3f3f3f3f, lo4 = 0x0f0f0f0f, lo2 = 0x03030303;
    const uint32_t sc03 = u0 & lo6, m03 = u1 & lo6;
    const uint32_t sc47 = (u2 & lo4) | ((u0 >> 6) & lo2) << 4, m47 = ((u2 >> 4) & lo4) | ((u1 >> 6) & lo2) << 4;
    return _mm_setr_epi32((int)sc03, (int)sc47, (int)m03, (int)m47);
}

/* Byte j is 0xFF where bit j of the 32-bit word at p is set: byte j/8 of the word goes to byte j, OR a mask
   with every bit but j%8 set, compare with all ones (the fifth bits of Q5_0 and Q5_1). */
__attribute__((target("avx2"))) static inline __m256i sy_bits32(const uint8_t *p) {
    uint32_t x; memcpy(&x, p, 4);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x),
        _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
    return _mm256_cmpeq_epi8(_mm256_or_si256(v, _mm256_set1_epi64x(0x7FBFDFEFF7FBFDFE)), _mm256_set1_epi64x(-1));
}
#endif

/* Packed Q4_K (qpack_k.c) and Q6_K (qpack_q6k.c), behind qpack.c's entry points; their AVX2 kernels serve
   AVX-512 machines too. */
void sy_pack4_q4k(const void *src, int64_t rows, int64_t cols, void *dst);
void sy_unpack4_q4k_row(const void *packed, int64_t cols, int64_t row, void *dst);
void sy_qpack_q4k_avx2(const void *group, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out);
void sy_pack4_q6k(const void *src, int64_t rows, int64_t cols, void *dst);
void sy_unpack4_q6k_row(const void *packed, int64_t cols, int64_t row, void *dst);
void sy_qpack_q6k_avx2(const void *group, int64_t cols, const int8_t *q, const float *d, const int16_t *s, int64_t ldq, int nt, float *out);

/* Calls an always-inlined packed kernel body F with its token count as a constant for the counts that matter
   (1: decode, 4: prefill), so each gets a copy with its per-token sums and accumulators in registers. */
#define SY_PER_TOKEN_COUNT(F, group, cols, q, d, s, ldq, nt, out)                                       \
    do {                                                                                            \
        if ((nt) == 1) F(group, cols, q, d, s, ldq, 1, out);                                        \
        else if ((nt) == 4) F(group, cols, q, d, s, ldq, 4, out);                                   \
        else F(group, cols, q, d, s, ldq, nt, out);                                                 \
    } while (0)

/* IQ4_NL's 16 levels (qdot.c). */
extern const int8_t sy_iq4nl_levels[16];

/* Group j's 6-bit scale and minimum from a Q4_K/Q5_K block's 12 packed scale bytes (the plain version of
   sy_q4k_scales16). */
static inline void sy_q4k_scale(const uint8_t *p, int j, int *sc, int *m) {
    if (j < 4) { *sc = p[j] & 63; *m = p[j + 4] & 63; }
    else { *sc = (p[j + 4] & 0xF) | ((p[j - 4] >> 6) << 4); *m = (p[j + 4] >> 4) | ((p[j] >> 6) << 4); }
}

/* The little-endian 16-bit word at p. */
static inline uint16_t sy_rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* The fp16 value stored at p (a block's scale; clang's _Float16 converts exactly, subnormals included). */
static inline float sy_f16_at(const void *p) {
    _Float16 h;
    memcpy(&h, p, 2);
    return (float)h;
}

/* How far ahead (bytes) the packed 4-bit and K-quant kernels prefetch their weight stream. Decode reads every
   weight once; with the nibble unpacking between loads the hardware prefetcher alone fell behind (Q4_0 decode
   +30%, Q4_K_S +15% at 2048 on an AVX2 EPYC; Q8_0, already near the read bandwidth, was slower with it, so its
   kernel does not prefetch). Docs/PERFORMANCE.md has the A/B. */
#define SY_PF_AHEAD 2048

#endif
