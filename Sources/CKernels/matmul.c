// Dequantization and matrix products with float activations for every supported weight type.
// Block layouts follow ggml (`ggml-common.h`); see Sources/GGUF/Dequantize.swift for the plain reference.
// Activations stay float: a weight block is decoded to floats once and reused across up to
// SY_TB tokens, so batch-1 decode and batched prefill share one code path.
#include "ckernels.h"
#include "kernels_internal.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define SY_X86 1
#endif

/* fp16 to float in plain C (the scalar path; the AVX2 decoders use F16C). */
static inline float sy_fp16(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1F, m = h & 0x3FF, bits;
    if (e == 0) {
        if (m == 0) bits = s;
        else { e = 127 - 15 + 1; while (!(m & 0x400)) { m <<= 1; e--; } m &= 0x3FF; bits = s | (e << 23) | (m << 13); }
    } else if (e == 31) bits = s | 0x7F800000 | (m << 13);
    else bits = s | ((e + 127 - 15) << 23) | (m << 13);
    float f; memcpy(&f, &bits, 4); return f;
}


static inline void sy_scale_min(int j, const uint8_t *q, float *sc, float *m) {
    if (j < 4) { *sc = (float)(q[j] & 63); *m = (float)(q[j + 4] & 63); }
    else {
        *sc = (float)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static const float sy_iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* Q3_K's 6-bit scale i (of 16) from its 12 packed bytes, minus 32. */
static inline float sy_q3k_scale(const uint8_t *sc, int i) {
    const int low = i < 8 ? sc[i] & 0xF : sc[i - 8] >> 4, high = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (float)((low | high << 4) - 32);
}

/* Decodes one block of `type` at b into y (blockSize floats). Layouts: Sources/GGUF/Dequantize.swift. */
static void sy_dequant_block(int type, const uint8_t *b, float *y) {
    switch (type) {
    case SY_Q4_1: {
        const float d = sy_fp16(sy_rd16(b)), m = sy_fp16(sy_rd16(b + 2));
        for (int i = 0; i < 16; i++) { y[i] = d * (float)(b[4 + i] & 0xF) + m; y[i + 16] = d * (float)(b[4 + i] >> 4) + m; }
    } break;
    case SY_Q5_0: case SY_Q5_1: {
        const int has_min = type == SY_Q5_1, h = has_min ? 4 : 2;
        const float d = sy_fp16(sy_rd16(b)), m = has_min ? sy_fp16(sy_rd16(b + 2)) : 0, off = has_min ? 0 : -16;
        uint32_t high; memcpy(&high, b + h, 4);
        for (int i = 0; i < 16; i++) {
            const int lo = (b[h + 4 + i] & 0xF) | ((high >> i) & 1) << 4, hi = (b[h + 4 + i] >> 4) | ((high >> (i + 16)) & 1) << 4;
            y[i] = d * ((float)lo + off) + m;
            y[i + 16] = d * ((float)hi + off) + m;
        }
    } break;
    case SY_IQ4_NL: {
        const float d = sy_fp16(sy_rd16(b));
        for (int i = 0; i < 16; i++) { y[i] = d * sy_iq4_levels[b[2 + i] & 0xF]; y[i + 16] = d * sy_iq4_levels[b[2 + i] >> 4]; }
    } break;
    case SY_IQ4_XS: {
        const float d = sy_fp16(sy_rd16(b));
        const int high = sy_rd16(b + 2);
        for (int s = 0; s < 8; s++) {
            const int ls = ((b[4 + s / 2] >> (4 * (s % 2))) & 0xF) | ((high >> (2 * s)) & 3) << 4;
            const float dl = d * (float)(ls - 32);
            for (int i = 0; i < 16; i++) {
                y[32 * s + i] = dl * sy_iq4_levels[b[8 + 16 * s + i] & 0xF];
                y[32 * s + i + 16] = dl * sy_iq4_levels[b[8 + 16 * s + i] >> 4];
            }
        }
    } break;
    case SY_Q2_K: {
        const float d = sy_fp16(sy_rd16(b + 80)), dmin = sy_fp16(sy_rd16(b + 82));
        int sc = 0;
        for (int half = 0; half < 2; half++)
            for (int shift = 0; shift < 8; shift += 2)
                for (int run = 0; run < 2; run++, sc++) {
                    const float dl = d * (float)(b[sc] & 0xF), ml = dmin * (float)(b[sc] >> 4);
                    const uint8_t *q = b + 16 + 32 * half + 16 * run;
                    for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l] >> shift) & 3) - ml;
                }
    } break;
    case SY_Q3_K: {
        const float d = sy_fp16(sy_rd16(b + 108));
        int sc = 0, bit = 0;
        for (int half = 0; half < 2; half++)
            for (int shift = 0; shift < 8; shift += 2, bit++)
                for (int run = 0; run < 2; run++, sc++) {
                    const float dl = d * sy_q3k_scale(b + 96, sc);
                    const uint8_t *q = b + 32 + 32 * half + 16 * run, *hm = b + 16 * run;
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((int)((q[l] >> shift) & 3) - (((hm[l] >> bit) & 1) ? 0 : 4));
                }
    } break;
    case SY_Q8_0: {
        const float d = sy_fp16(sy_rd16(b));
        for (int i = 0; i < 32; i++) y[i] = d * (float)(int8_t)b[2 + i];
    } break;
    case SY_Q4_0: {
        const float d = sy_fp16(sy_rd16(b));
        for (int i = 0; i < 16; i++) {
            y[i] = d * (float)((b[2 + i] & 0xF) - 8);
            y[i + 16] = d * (float)((b[2 + i] >> 4) - 8);
        }
    } break;
    case SY_Q4_K: {
        const float d = sy_fp16(sy_rd16(b)), dmin = sy_fp16(sy_rd16(b + 2));
        const uint8_t *q = b + 16;
        for (int j = 0; j < 4; j++) {
            float s1, m1, s2, m2;
            sy_scale_min(2 * j, b + 4, &s1, &m1);
            sy_scale_min(2 * j + 1, b + 4, &s2, &m2);
            const float d1 = d * s1, c1 = dmin * m1, d2 = d * s2, c2 = dmin * m2;
            for (int l = 0; l < 32; l++) {
                y[64 * j + l] = d1 * (float)(q[32 * j + l] & 0xF) - c1;
                y[64 * j + 32 + l] = d2 * (float)(q[32 * j + l] >> 4) - c2;
            }
        }
    } break;
    case SY_Q5_K: {
        const float d = sy_fp16(sy_rd16(b)), dmin = sy_fp16(sy_rd16(b + 2));
        const uint8_t *qh = b + 16, *q = b + 48;
        for (int j = 0; j < 4; j++) {
            float s1, m1, s2, m2;
            sy_scale_min(2 * j, b + 4, &s1, &m1);
            sy_scale_min(2 * j + 1, b + 4, &s2, &m2);
            const float d1 = d * s1, c1 = dmin * m1, d2 = d * s2, c2 = dmin * m2;
            for (int l = 0; l < 32; l++) {
                const int h1 = (qh[l] >> (2 * j)) & 1, h2 = (qh[l] >> (2 * j + 1)) & 1;
                y[64 * j + l] = d1 * (float)((q[32 * j + l] & 0xF) | (h1 << 4)) - c1;
                y[64 * j + 32 + l] = d2 * (float)((q[32 * j + l] >> 4) | (h2 << 4)) - c2;
            }
        }
    } break;
    case SY_Q6_K: {
        const float d = sy_fp16(sy_rd16(b + 208));
        for (int n = 0; n < 2; n++) {
            const uint8_t *ql = b + 64 * n, *qh = b + 128 + 32 * n;
            const int8_t *sc = (const int8_t *)(b + 192 + 8 * n);
            float *yy = y + 128 * n;
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                yy[l] = d * sc[is] * q1;
                yy[l + 32] = d * sc[is + 2] * q2;
                yy[l + 64] = d * sc[is + 4] * q3;
                yy[l + 96] = d * sc[is + 6] * q4;
            }
        }
    } break;
    }
}

static int sy_block_size(int type) {
    switch (type) {
    case SY_F32: case SY_F16: case SY_BF16: return 1;
    case SY_Q8_0: case SY_Q4_0: case SY_Q4_1: case SY_Q5_0: case SY_Q5_1: case SY_IQ4_NL: return 32;
    default: return 256;
    }
}

static int sy_block_bytes(int type) {
    switch (type) {
    case SY_F32: return 4;
    case SY_F16: case SY_BF16: return 2;
    case SY_Q8_0: return 34;
    case SY_Q4_0: case SY_IQ4_NL: return 18;
    case SY_Q4_1: return 20;
    case SY_Q5_0: return 22;
    case SY_Q5_1: return 24;
    case SY_Q2_K: return 84;
    case SY_Q3_K: return 110;
    case SY_IQ4_XS: return 136;
    case SY_Q4_K: return 144;
    case SY_Q5_K: return 176;
    case SY_Q6_K: return 210;
    default: return 0;
    }
}

int sy_type_supported(int type) { return sy_block_bytes(type) > 0; }

void sy_dequant_row(int type, const void *src, float *dst, int64_t n) {
    const uint8_t *b = (const uint8_t *)src;
    switch (type) {
    case SY_F32: memcpy(dst, src, (size_t)n * 4); return;
    case SY_F16: for (int64_t i = 0; i < n; i++) dst[i] = sy_fp16(sy_rd16(b + 2 * i)); return;
    case SY_BF16:
        for (int64_t i = 0; i < n; i++) { uint32_t v = (uint32_t)sy_rd16(b + 2 * i) << 16; memcpy(dst + i, &v, 4); }
        return;
    default: {
        const int bs = sy_block_size(type), bb = sy_block_bytes(type);
        for (int64_t i = 0; i < n / bs; i++) sy_dequant_block(type, b + i * bb, dst + i * bs);
    }
    }
}

#define SY_TB 4      /* tokens sharing one decoded weight block */
#define SY_CHUNK_MIN 8   /* fewest rows per work item */

/* Types whose blocks load32 decodes straight into registers (the decode hot path). */
static inline int sy_fused(int type) {
    return type == SY_F32 || type == SY_F16 || type == SY_BF16 || type == SY_Q8_0 || type == SY_Q4_0;
}

#ifdef SY_X86
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

/* Decodes 32 weights starting at element k of row w into 4 vectors (fused decoders for the
   types used on the decode hot path; K-quants go through a per-256 float buffer instead). */
static inline void load32(int type, const uint8_t *w, int64_t k, __m256 v[4]) {
    switch (type) {
    case SY_F32: {
        const float *f = (const float *)w + k;
        v[0] = _mm256_loadu_ps(f); v[1] = _mm256_loadu_ps(f + 8);
        v[2] = _mm256_loadu_ps(f + 16); v[3] = _mm256_loadu_ps(f + 24);
    } break;
    case SY_F16: {
        const __m128i *h = (const __m128i *)(w + 2 * k);
        v[0] = _mm256_cvtph_ps(_mm_loadu_si128(h)); v[1] = _mm256_cvtph_ps(_mm_loadu_si128(h + 1));
        v[2] = _mm256_cvtph_ps(_mm_loadu_si128(h + 2)); v[3] = _mm256_cvtph_ps(_mm_loadu_si128(h + 3));
    } break;
    case SY_BF16: {
        const __m128i *h = (const __m128i *)(w + 2 * k);
        for (int i = 0; i < 4; i++)
            v[i] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(h + i)), 16));
    } break;
    case SY_Q8_0: {
        const uint8_t *b = w + (k / 32) * 34;
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(sy_rd16(b)));
        const __m128i q0 = _mm_loadu_si128((const __m128i *)(b + 2));
        const __m128i q1 = _mm_loadu_si128((const __m128i *)(b + 18));
        v[0] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q0)));
        v[1] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q0, 8))));
        v[2] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q1)));
        v[3] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q1, 8))));
    } break;
    case SY_Q4_0: {
        const uint8_t *b = w + (k / 32) * 18;
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(sy_rd16(b)));
        const __m128i raw = _mm_loadu_si128((const __m128i *)(b + 2));
        const __m128i m = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, m), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), m), eight);
        v[0] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)));
        v[1] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))));
        v[2] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)));
        v[3] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))));
    } break;
    }
}

/* One weight row against nt (<= SY_TB) token vectors. buf: scratch of >= 256 floats.
   Independent accumulators per token so consecutive FMAs do not wait on each other (one chain per token
   would make the loop latency-bound): four for the float and fused types (the same for any nt, see below),
   two (even and odd 8-lane groups) for the types decoded through buf. */
static void sy_row_dot_avx2(int type, const uint8_t *w, int64_t cols, const float *x, int64_t ldx,
                            int nt, float *out, float *buf) {
    /* Unused token slots read token 0 again, so the loop body has a fixed shape the compiler keeps in registers. */
    const float *x0 = x, *x1 = nt > 1 ? x + ldx : x, *x2 = nt > 2 ? x + 2 * ldx : x, *x3 = nt > 3 ? x + 3 * ldx : x;
    __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
#define SY_FMA2(v0, v1, o)                                                      \
    do {                                                                        \
        a0 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(x0 + (o)), a0);                \
        b0 = _mm256_fmadd_ps(v1, _mm256_loadu_ps(x0 + (o) + 8), b0);            \
        if (nt > 1) {                                                           \
            a1 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(x1 + (o)), a1);            \
            b1 = _mm256_fmadd_ps(v1, _mm256_loadu_ps(x1 + (o) + 8), b1);        \
            a2 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(x2 + (o)), a2);            \
            b2 = _mm256_fmadd_ps(v1, _mm256_loadu_ps(x2 + (o) + 8), b2);        \
            a3 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(x3 + (o)), a3);            \
            b3 = _mm256_fmadd_ps(v1, _mm256_loadu_ps(x3 + (o) + 8), b3);        \
        }                                                                       \
    } while (0)
    float fused[SY_TB];
    if (sy_fused(type)) {
        /* Float types may have rows of any length: the vector loop stops at the last full 32 and a
           scalar tail (below) finishes the row. Quantized rows are whole blocks by construction.
           Every token takes four independent chains, one per 8-lane group of the block (one chain would make
           the loop latency-bound), two tokens a sweep: a token's dot is the same bits in a pass of one token
           and in a pass of several, so a draft verification computes what decode would (greedy tokens do not
           change under drafting). */
        const int64_t main = sy_block_size(type) == 1 ? cols / 32 * 32 : cols;
        for (int t0 = 0; t0 < nt; t0 += 2) {
            const float *xa = x + t0 * ldx, *xb = t0 + 1 < nt ? xa + ldx : xa;
            __m256 p0 = _mm256_setzero_ps(), p1 = p0, p2 = p0, p3 = p0, q0 = p0, q1 = p0, q2 = p0, q3 = p0;
            for (int64_t k = 0; k < main; k += 32) {
                __m256 v[4];
                load32(type, w, k, v);
                p0 = _mm256_fmadd_ps(v[0], _mm256_loadu_ps(xa + k), p0);
                p1 = _mm256_fmadd_ps(v[1], _mm256_loadu_ps(xa + k + 8), p1);
                p2 = _mm256_fmadd_ps(v[2], _mm256_loadu_ps(xa + k + 16), p2);
                p3 = _mm256_fmadd_ps(v[3], _mm256_loadu_ps(xa + k + 24), p3);
                if (t0 + 1 < nt) {
                    q0 = _mm256_fmadd_ps(v[0], _mm256_loadu_ps(xb + k), q0);
                    q1 = _mm256_fmadd_ps(v[1], _mm256_loadu_ps(xb + k + 8), q1);
                    q2 = _mm256_fmadd_ps(v[2], _mm256_loadu_ps(xb + k + 16), q2);
                    q3 = _mm256_fmadd_ps(v[3], _mm256_loadu_ps(xb + k + 24), q3);
                }
            }
            fused[t0] = sy_hsum8(_mm256_add_ps(_mm256_add_ps(p0, p2), _mm256_add_ps(p1, p3)));
            if (t0 + 1 < nt) fused[t0 + 1] = sy_hsum8(_mm256_add_ps(_mm256_add_ps(q0, q2), _mm256_add_ps(q1, q3)));
        }
    } else {
        /* Other types: up to 256 elements decoded into buf at a time (whole blocks; rows are whole blocks). */
        const int bs = sy_block_size(type), bb = sy_block_bytes(type);
        for (int64_t k = 0; k < cols; k += 256) {
            const int64_t n = cols - k < 256 ? cols - k : 256;
            sy_dequant_row(type, w + (k / bs) * bb, buf, n);
            for (int64_t i = 0; i < n; i += 16) SY_FMA2(_mm256_loadu_ps(buf + i), _mm256_loadu_ps(buf + i + 8), k + i);
        }
    }
#undef SY_FMA2
    if (sy_fused(type)) {
        for (int t = 0; t < nt; t++) out[t] = fused[t];
    } else {
        out[0] = sy_hsum8(_mm256_add_ps(a0, b0));
        if (nt > 1) out[1] = sy_hsum8(_mm256_add_ps(a1, b1));
        if (nt > 2) out[2] = sy_hsum8(_mm256_add_ps(a2, b2));
        if (nt > 3) out[3] = sy_hsum8(_mm256_add_ps(a3, b3));
    }
    if (sy_block_size(type) == 1 && cols % 32) {
        const int64_t k0 = cols / 32 * 32, n = cols - k0;
        sy_dequant_row(type, w + (size_t)k0 * sy_block_bytes(type), buf, n);
        for (int t = 0; t < nt; t++) {
            const float *xt = x + t * ldx + k0;
            float s = 0;
            for (int64_t i = 0; i < n; i++) s += buf[i] * xt[i];
            out[t] += s;
        }
    }
}
#pragma clang attribute pop
#endif

/* The plain path: 256-element chunks, a whole number of blocks for every type (float rows may end in a
   partial chunk). */
static void sy_row_dot_ref(int type, const uint8_t *w, int64_t cols, const float *x, int64_t ldx,
                           int nt, float *out, float *buf) {
    float acc[SY_TB] = {0};
    for (int64_t k = 0; k < cols; k += 256) {
        const int64_t n = cols - k < 256 ? cols - k : 256;
        sy_dequant_row(type, w + (size_t)(k / sy_block_size(type)) * sy_block_bytes(type), buf, n);
        for (int t = 0; t < nt; t++) {
            const float *xt = x + t * ldx + k;
            float s = 0;
            for (int64_t i = 0; i < n; i++) s += buf[i] * xt[i];
            acc[t] += s;
        }
    }
    for (int t = 0; t < nt; t++) out[t] = acc[t];
}

static inline void sy_row_dot(int isa, int type, const uint8_t *w, int64_t cols, const float *x, int64_t ldx,
                              int nt, float *out, float *buf) {
#ifdef SY_X86
    if (isa >= SY_ISA_AVX2) { sy_row_dot_avx2(type, w, cols, x, ldx, nt, out, buf); return; }
#endif
    (void)isa;
    sy_row_dot_ref(type, w, cols, x, ldx, nt, out, buf);
}

typedef struct {
    int type, isa;
    int64_t rows, cols;
    size_t row_bytes;
    const sy_mm_job *jobs;
    int n_jobs;
    /* Quantized activations per job (n_tok rows of cols int8, cols / 32 scales each), or NULL: float path. */
    const int8_t **q;
    const float **d;
    const int16_t **s;   /* block sums: per 32 values for Q8_0 (Q4_0 decode), per 16 for Q8_K (K-quant minimums) */
    int64_t chunk, chunks_per_job;
    atomic_long next;
    int64_t tile;   /* rows per cache tile */
    int packed;     /* weights in sy_pack4's four-row layout */
} sy_mm_ctx;

/* A four-row tile's outputs o[4 rr + t] into y[t * ldy + rr] (t < nt): one four-float store per token (the
   scalar stores of sixteen values re-read from the tile's buffer cost 5-7% of a prefill profile). */
static inline void sy_store4x4(const float *o, int nt, float *y, int64_t ldy) {
#if defined(__x86_64__)
    __m128 r0 = _mm_loadu_ps(o), r1 = _mm_loadu_ps(o + 4), r2 = _mm_loadu_ps(o + 8), r3 = _mm_loadu_ps(o + 12);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(y, r0);
    if (nt > 1) _mm_storeu_ps(y + ldy, r1);
    if (nt > 2) _mm_storeu_ps(y + 2 * ldy, r2);
    if (nt > 3) _mm_storeu_ps(y + 3 * ldy, r3);
#else
    for (int rr = 0; rr < 4; rr++)
        for (int t = 0; t < nt; t++) y[t * ldy + rr] = o[4 * rr + t];
#endif
}

/* Rows [r0, r1) (multiples of 4) of a packed matrix against nt tokens from t0. Without quantized activations
   (an exact pool) each row is unpacked to GGUF blocks in buf and takes the float path. */
static void sy_mm_packed(const sy_mm_ctx *c, int j, int64_t r0, int64_t r1, int64_t t0, int nt, uint8_t *buf, float *fbuf) {
    const sy_mm_job *job = &c->jobs[j];
    float o[16];
    for (int64_t r = r0; r < r1; r += 4) {
        if (c->q)
            sy_qpack(c->isa, c->type, (const uint8_t *)job->w + r * c->row_bytes, c->cols, c->q[j] + t0 * c->cols,
                     c->d[j] + t0 * (c->cols / 32), c->s[j] + t0 * (c->cols / (sy_q8_k_pairs(c->type) ? 16 : 32)), c->cols, nt, o);
        else
            for (int rr = 0; rr < 4; rr++) {
                float ot[SY_TB];
                sy_unpack4_row(c->type, job->w, c->cols, r + rr, buf);
                sy_row_dot(c->isa, c->type, buf, c->cols, job->x + t0 * job->ldx, job->ldx, nt, ot, fbuf);
                for (int t = 0; t < nt; t++) o[4 * rr + t] = ot[t];
            }
        sy_store4x4(o, nt, job->y + t0 * job->ldy + r, job->ldy);
    }
}

static void sy_mm_task(void *p, int ith, int nth) {
    (void)ith; (void)nth;
    sy_mm_ctx *c = (sy_mm_ctx *)p;
    float buf[256];
    float out[SY_TB];
    uint8_t *rowbuf = c->packed && !c->q ? (uint8_t *)sy_scratch(5, c->row_bytes) : NULL;
    const long total = (long)c->chunks_per_job * c->n_jobs;
    for (;;) {
        long item = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (item >= total) break;
        const int j = (int)(item / c->chunks_per_job);
        const sy_mm_job *job = &c->jobs[j];
        const int64_t r0 = (item % c->chunks_per_job) * c->chunk;
        const int64_t r1 = r0 + c->chunk < c->rows ? r0 + c->chunk : c->rows;
        /* Cache tiling: a tile of rows (about 64 KiB of weights, held in L2) meets every token group before
           the next tile, so the weights come from memory once per matmul however many tokens there are
           (a whole chunk per token group re-read them from L3 or memory T / 4 times). */
        for (int64_t rt = r0; rt < r1; rt += c->tile) {
          const int64_t rt1 = rt + c->tile < r1 ? rt + c->tile : r1;
          for (int64_t t0 = 0; t0 < job->n_tok; t0 += SY_TB) {
            const int nt = (int)(job->n_tok - t0 < SY_TB ? job->n_tok - t0 : SY_TB);
            int64_t r = rt;
            if (c->packed) { sy_mm_packed(c, j, rt, rt1, t0, nt, rowbuf, buf); continue; }
            if (c->q && nt > 1 && sy_qtile_takes(c->type))
                /* Four rows at a time share each token's activation loads and scale products (qdot.c). */
                for (float o[16]; r + 4 <= rt1; r += 4) {
                    sy_qtile(c->isa, c->type, (const uint8_t *)job->w + r * c->row_bytes, c->row_bytes, c->cols,
                             c->q[j] + t0 * c->cols, c->d[j] + t0 * (c->cols / 32), c->cols, nt, o);
                    sy_store4x4(o, nt, job->y + t0 * job->ldy + r, job->ldy);
                }
            for (; r < rt1; r++) {
                const uint8_t *w = (const uint8_t *)job->w + r * c->row_bytes;
                if (c->q && sy_q8_k_pairs(c->type))
                    sy_qdot_k_row(c->isa, c->type, w, c->cols, c->q[j] + t0 * c->cols, c->d[j] + t0 * (c->cols / 32),
                                  c->s[j] + t0 * (c->cols / 16), c->cols, nt, out);
                else if (c->q) sy_qdot_row(c->isa, c->type, w, c->cols, c->q[j] + t0 * c->cols, c->d[j] + t0 * (c->cols / 32),
                                           c->s[j] + t0 * (c->cols / 32), c->cols, nt, out);
                else sy_row_dot(c->isa, c->type, w, c->cols, job->x + t0 * job->ldx, job->ldx, nt, out, buf);
                for (int t = 0; t < nt; t++) job->y[(t0 + t) * job->ldy + r] = out[t];
            }
          }
        }
    }
}

void sy_matmul(sy_pool *pool, int type, int64_t rows, int64_t cols, size_t row_bytes,
               const sy_mm_job *jobs, int n_jobs, int packed) {
    if (n_jobs <= 0 || rows <= 0) return;
    /* Q8_0, Q4_0 and Q4_K weights take quantized activations unless the pool is exact (qdot.c, qdot_k.c). */
    const int8_t *qs[n_jobs];
    const float *ds[n_jobs];
    const int16_t *ss[n_jobs];
    const int quantized = sy_quantize_jobs(pool, type, cols, jobs, n_jobs, qs, ds, ss);
    /* Large contiguous chunks keep each thread streaming sequentially through the weights (the hardware
       prefetcher follows one long stream far better than many short ones); about 4 chunks per thread
       over all jobs still balances the load. */
    const int nth = sy_pool_size(pool);
    int64_t chunk = rows * n_jobs / (4 * nth);
    if (chunk > rows) chunk = rows;
    if (chunk < SY_CHUNK_MIN) chunk = SY_CHUNK_MIN;
    /* Chunks and cache tiles start at multiples of 4 rows, so which rows the four-row tile kernel computes
       (and so every output bit) does not depend on the thread count. */
    chunk = (chunk + 3) / 4 * 4;
    sy_mm_ctx c = {type, sy_pool_isa(pool), rows, cols, row_bytes, jobs, n_jobs, quantized ? qs : NULL, quantized ? ds : NULL, quantized ? ss : NULL,
                   chunk, (rows + chunk - 1) / chunk, 0, 0, packed};
    c.tile = (int64_t)(65536 / (row_bytes ? row_bytes : 1));
    c.tile = c.tile < 4 ? 4 : c.tile / 4 * 4;
    sy_pool_run(pool, sy_mm_task, &c);
}
