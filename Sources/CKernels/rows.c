// Row moves of the MoE layer: gather and scatter by index, the gate-weighted combine, and the dispatch row
// codec of the cluster exchange (Sources/Cluster/Exchange.swift names the communication points). Each is
// one call over all rows, so the hot path has no per-element Swift loops; the arithmetic is the plain
// Swift's, operation for operation (no FMA contraction: the baseline build has none), so results are the same
// bits as before.
//
// Dimension legend: n rows, d floats per row.
#include "ckernels.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

void sy_gather_rows(const float *src, const int32_t *idx, int64_t n, int64_t d, float *dst) {
    for (int64_t k = 0; k < n; k++) memcpy(dst + k * d, src + (int64_t)idx[k] * d, sizeof(float) * (size_t)d);
}

void sy_scatter_rows(const float *src, const int32_t *idx, int64_t n, int64_t d, float *dst) {
    for (int64_t k = 0; k < n; k++) memcpy(dst + (int64_t)idx[k] * d, src + k * d, sizeof(float) * (size_t)d);
}

void sy_add_rows(const float *y, const int32_t *from, const int32_t *idx, const float *w, int64_t n, int64_t d, float *out) {
    for (int64_t k = 0; k < n; k++) {
        float *o = out + (int64_t)idx[k] * d;
        const float *yk = y + (from ? (int64_t)from[k] : k) * d;
        if (w) { const float wk = w[k]; for (int64_t c = 0; c < d; c++) o[c] += wk * yk[c]; }
        else for (int64_t c = 0; c < d; c++) o[c] += yk[c];
    }
}

/* The router's top-a per token (Step 3.5: sigmoid scores, a selection bias that steers the choice only):
   experts in order of score + bias, highest first, ties to the lower index; weights the unbiased scores,
   renormalised by their sum (at least 6.103515625e-5, as llama.cpp) when norm, then times scale unless it is
   0 or 1. The arithmetic and order are the plain Swift's (sum in selection order, divide, then scale). */
void sy_moe_route(const float *probs, const float *bias, int64_t t, int64_t e, int a, int norm, float scale, int32_t *experts,
                  float *weights) {
    for (int64_t r = 0; r < t; r++) {
        const float *p = probs + r * e;
        int32_t *ex = experts + r * a;
        float *w = weights + r * a;
        for (int k = 0; k < a; k++) {
            int64_t best = -1;
            float bv = 0;
            for (int64_t i = 0; i < e; i++) {
                int taken = 0;
                for (int j = 0; j < k && !taken; j++) taken = ex[j] == i;
                if (taken) continue;
                const float v = bias ? p[i] + bias[i] : p[i];
                if (best < 0 || v > bv) { best = i; bv = v; }
            }
            ex[k] = (int32_t)best;
            w[k] = p[best];
        }
        if (norm) {
            float sum = 0;
            for (int k = 0; k < a; k++) sum += w[k];
            if (sum < 6.103515625e-5f) sum = 6.103515625e-5f;
            for (int k = 0; k < a; k++) w[k] = w[k] / sum;
        }
        if (scale != 0 && scale != 1) for (int k = 0; k < a; k++) w[k] = w[k] * scale;
    }
}

void sy_add_into(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void sy_scale_rows(float *y, const float *w, int64_t n, int64_t d) {
    for (int64_t k = 0; k < n; k++) {
        const float wk = w[k];
        for (int64_t c = 0; c < d; c++) y[k * d + c] *= wk;
    }
}

/* ---- dispatch rows: an 8-byte header (expert int32, gate weight float32; little-endian, as x86 and arm64
   store them) and the hidden state as f32, bf16 (nearest even), f16 (nearest even) or int8 (one f32 scale
   amax / 127, values rounded half away from zero and clamped to +-127). ---- */

int64_t sy_dispatch_row_bytes(int payload, int64_t d) {
    switch (payload) {
    case SY_DISPATCH_F32: return 8 + 4 * d;
    case SY_DISPATCH_BF16: case SY_DISPATCH_F16: return 8 + 2 * d;
    default: return 8 + 4 + d;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,f16c"))) static void sy_f16_encode_f16c(const float *x, int64_t d, uint8_t *o) {
    int64_t c = 0;
    for (; c + 8 <= d; c += 8)
        _mm_storeu_si128((__m128i *)(o + 2 * c), _mm256_cvtps_ph(_mm256_loadu_ps(x + c), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; c < d; c++) { const _Float16 h = (_Float16)x[c]; memcpy(o + 2 * c, &h, 2); }
}
__attribute__((target("avx2,f16c"))) static void sy_f16_decode_f16c(const uint8_t *b, int64_t d, float *x) {
    int64_t c = 0;
    for (; c + 8 <= d; c += 8) _mm256_storeu_ps(x + c, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + 2 * c))));
    for (; c < d; c++) { _Float16 h; memcpy(&h, b + 2 * c, 2); x[c] = (float)h; }
}
#endif

static void sy_f16_encode(const float *x, int64_t d, uint8_t *o) {
#if defined(__x86_64__)
    if (sy_isa() >= SY_ISA_AVX2) { sy_f16_encode_f16c(x, d, o); return; }
#endif
    for (int64_t c = 0; c < d; c++) { const _Float16 h = (_Float16)x[c]; memcpy(o + 2 * c, &h, 2); }
}

static void sy_f16_decode(const uint8_t *b, int64_t d, float *x) {
#if defined(__x86_64__)
    if (sy_isa() >= SY_ISA_AVX2) { sy_f16_decode_f16c(b, d, x); return; }
#endif
    for (int64_t c = 0; c < d; c++) { _Float16 h; memcpy(&h, b + 2 * c, 2); x[c] = (float)h; }
}

void sy_encode_rows(int payload, const float *x, const int32_t *src_row, const int32_t *experts, const float *weights,
                    int64_t n, int64_t d, uint8_t *out) {
    const int64_t rb = sy_dispatch_row_bytes(payload, d);
    for (int64_t k = 0; k < n; k++) {
        uint8_t *o = out + k * rb;
        const float *xr = x + (int64_t)src_row[k] * d;
        memcpy(o, &experts[k], 4);
        memcpy(o + 4, &weights[k], 4);
        o += 8;
        switch (payload) {
        case SY_DISPATCH_F32: memcpy(o, xr, 4 * (size_t)d); break;
        case SY_DISPATCH_F16: sy_f16_encode(xr, d, o); break;
        case SY_DISPATCH_BF16:
            for (int64_t c = 0; c < d; c++) {
                uint32_t bits; memcpy(&bits, xr + c, 4);
                const uint16_t r = (uint16_t)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
                memcpy(o + 2 * c, &r, 2);
            }
            break;
        default: {
            float amax = 0;
            for (int64_t c = 0; c < d; c++) amax = fmaxf(amax, fabsf(xr[c]));
            const float scale = amax / 127, inv = scale > 0 ? 1 / scale : 0;
            memcpy(o, &scale, 4);
            for (int64_t c = 0; c < d; c++) {
                const float v = roundf(xr[c] * inv);
                o[4 + c] = (uint8_t)(int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
            }
        }
        }
    }
}

void sy_decode_rows(int payload, const uint8_t *b, int64_t n, int64_t d, float *x, int32_t *experts, float *weights) {
    const int64_t rb = sy_dispatch_row_bytes(payload, d);
    for (int64_t k = 0; k < n; k++) {
        const uint8_t *r = b + k * rb;
        float *xr = x + k * d;
        memcpy(&experts[k], r, 4);
        memcpy(&weights[k], r + 4, 4);
        r += 8;
        switch (payload) {
        case SY_DISPATCH_F32: memcpy(xr, r, 4 * (size_t)d); break;
        case SY_DISPATCH_F16: sy_f16_decode(r, d, xr); break;
        case SY_DISPATCH_BF16:
            for (int64_t c = 0; c < d; c++) { uint16_t h; memcpy(&h, r + 2 * c, 2); const uint32_t bits = (uint32_t)h << 16; memcpy(xr + c, &bits, 4); }
            break;
        default: {
            float s; memcpy(&s, r, 4);
            for (int64_t c = 0; c < d; c++) xr[c] = s * (float)(int8_t)r[4 + c];
        }
        }
    }
}
