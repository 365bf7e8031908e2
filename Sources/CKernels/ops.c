// Elementwise kernels and causal GQA attention (full and sliding-window).
// Plain Swift references: Sources/Kernels/Reference.swift.
#include "ckernels.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void sy_rmsnorm(const float *x, const float *w, float *y, int64_t rows, int64_t n, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        double sum = 0;
        for (int64_t i = 0; i < n; i++) sum += (double)(xr[i] * xr[i]);
        const float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
        if (w) for (int64_t i = 0; i < n; i++) yr[i] = xr[i] * scale * w[i];
        else for (int64_t i = 0; i < n; i++) yr[i] = xr[i] * scale;
    }
}

void sy_softmax(float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) { for (int64_t i = 0; i < n; i++) x[i] = 0; return; }
    double sum = 0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - mx); sum += x[i]; }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void sy_swiglu(const float *g, const float *u, float *y, int64_t n, float limit) {
    if (limit > 1e-6f) {
        for (int64_t i = 0; i < n; i++) {
            float s = g[i] / (1.0f + expf(-g[i]));
            s = s < limit ? s : limit;
            float v = u[i] < -limit ? -limit : (u[i] > limit ? limit : u[i]);
            y[i] = s * v;
        }
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

/* ---- the same two ops split over a pool: rows (RMSNorm) or 64-element chunks (SwiGLU) per thread, each
   element computed as in the serial call, so the bits do not depend on the split ---- */
typedef struct { const float *a, *b; float *y; int64_t rows, n; float e; int op; } sy_rowwise_ctx;

static void sy_rowwise_task(void *p, int ith, int nth) {
    const sy_rowwise_ctx *c = (const sy_rowwise_ctx *)p;
    const int64_t units = c->op ? (c->n + 63) / 64 : c->rows, per = (units + nth - 1) / nth;
    const int64_t u0 = ith * per, u1 = u0 + per < units ? u0 + per : units;
    if (u0 >= u1) return;
    if (c->op) {
        const int64_t i0 = 64 * u0, i1 = 64 * u1 < c->n ? 64 * u1 : c->n;
        sy_swiglu(c->a + i0, c->b + i0, c->y + i0, i1 - i0, c->e);
    } else {
        sy_rmsnorm(c->a + u0 * c->n, c->b, c->y + u0 * c->n, u1 - u0, c->n, c->e);
    }
}

void sy_rmsnorm_pool(sy_pool *pool, const float *x, const float *w, float *y, int64_t rows, int64_t n, float eps) {
    if (!pool || rows * n < 65536 || rows < 2) { sy_rmsnorm(x, w, y, rows, n, eps); return; }
    sy_rowwise_ctx c = {x, w, y, rows, n, eps, 0};
    sy_pool_run(pool, sy_rowwise_task, &c);
}

void sy_swiglu_pool(sy_pool *pool, const float *g, const float *u, float *y, int64_t n, float limit) {
    if (!pool || n < 65536) { sy_swiglu(g, u, y, n, limit); return; }
    sy_rowwise_ctx c = {g, u, y, 1, n, limit, 1};
    sy_pool_run(pool, sy_rowwise_task, &c);
}

void sy_sigmoid(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 1 / (1 + expf(-x[i]));
}

void sy_rope_neox(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, int32_t pos,
                  float freq_base, const float *freq_factors) {
    const int64_t half = n_rot / 2;
    float cs[512], sn[512];  /* n_rot <= 1024 */
    // theta_i = pos * base^(-2i/n_rot) / factor_i, accumulated in float as a running product.
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int64_t i = 0; i < half; i++) {
        const float t = freq_factors ? theta / freq_factors[i] : theta;
        cs[i] = cosf(t);
        sn[i] = sinf(t);
        theta *= theta_scale;
    }
    for (int64_t h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim;
        for (int64_t i = 0; i < half; i++) {
            const float a = v[i], b = v[i + half];
            v[i] = a * cs[i] - b * sn[i];
            v[i + half] = a * sn[i] + b * cs[i];
        }
    }
}

/* Work is split over (query token, KV head, chunk of keys) items, flash-decoding style: each item reads
   its K and V rows once for all the query heads of its KV head and leaves a partial (max, sum, weighted
   values) per head; a second pass merges the chunks. Splitting keys rather than heads means every row is
   read once whatever the thread count, and a single decode token still spreads over all threads. */
typedef struct {
    const sy_attn_args *a;
    atomic_long next;
    int64_t chunk, n_chunks;
    int isa;
    float *pmax, *psum, *pacc;   /* [item][group], [item][group], [item][group][D] */
} sy_attn_ctx;

#if defined(__x86_64__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
/* Dot product with four independent 8-wide FMA chains (head dims are multiples of 8 in practice; the
   tail is scalar). */
static inline float sy_dot_avx2(const float *x, const float *y, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    __m256 t = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++) r += x[i] * y[i];
    return r;
}

/* acc += e * v */
static inline void sy_axpy_avx2(float *acc, float e, const float *v, int64_t n) {
    const __m256 ev = _mm256_set1_ps(e);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(ev, _mm256_loadu_ps(v + i), _mm256_loadu_ps(acc + i)));
    for (; i < n; i++) acc[i] += e * v[i];
}

/* exp(x) for x <= 0 (scores minus their max), 8 at a time: x = n ln2 + r with |r| <= ln2/2, exp(r) by a
   degree-6 Taylor polynomial (relative error under 2e-7 there), times 2^n built in the exponent bits.
   Inputs below -87 (and -inf, the masked keys) give 0. */
static inline __m256 sy_exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.0f);
    const __m256 dead = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(dead, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* x[i] = exp(x[i] - m), returning the sum (in double for long rows). */
static inline double sy_exp_sub_sum_avx2(float *x, int64_t n, float m) {
    const __m256 mv = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    double total = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = sy_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
        if ((i & 1023) == 1016) {   /* flush the float lanes into the double every 128 vectors */
            float l[8];
            _mm256_storeu_ps(l, acc);
            for (int k = 0; k < 8; k++) total += l[k];
            acc = _mm256_setzero_ps();
        }
    }
    /* The last partial vector too, padded with masked lanes: every score takes sy_exp8 and lane i % 8 whatever
       n is, so a query's weights do not depend on how many masked rows share its block (a pass of several
       tokens against one of a single token; drafting's verification must not change greedy tokens). */
    if (i < n) {
        float b[8];
        for (int k = 0; k < 8; k++) b[k] = i + k < n ? x[i + k] : -INFINITY;
        const __m256 e = sy_exp8(_mm256_sub_ps(_mm256_loadu_ps(b), mv));
        _mm256_storeu_ps(b, e);
        for (int k = 0; i + k < n; k++) x[i + k] = b[k];
        acc = _mm256_add_ps(acc, e);
    }
    float l[8];
    _mm256_storeu_ps(l, acc);
    for (int k = 0; k < 8; k++) total += l[k];
    return total;
}

/* Scores of query q (D floats) against rows r[0..n) into out[idx[i]]: four rows per pass share each q
   load, and one horizontal reduction finishes all four. D % 8 == 0. */
static void sy_scores4(const float *q, const float *const *r, const int32_t *idx, int64_t n, int64_t D, float scale, float *out) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        const float *k0 = r[i], *k1 = r[i + 1], *k2 = r[i + 2], *k3 = r[i + 3];
        for (int64_t d = 0; d < D; d += 8) {
            const __m256 qv = _mm256_loadu_ps(q + d);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + d), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + d), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + d), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + d), a3);
        }
        const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
        const __m128 h = _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)), _mm_set1_ps(scale));
        float v[4];
        _mm_storeu_ps(v, h);
        out[idx[i]] = v[0]; out[idx[i + 1]] = v[1]; out[idx[i + 2]] = v[2]; out[idx[i + 3]] = v[3];
    }
    for (; i < n; i++) out[idx[i]] = sy_dot_avx2(q, r[i], D) * scale;
}

/* acc[0..D) += sum_i w[idx[i]] * r[i][0..D), 64 dims at a time in eight registers (no stores inside the
   row loop). D % 64 == 0. */
static void sy_values64(const float *w, const float *const *r, const int32_t *idx, int64_t n, int64_t D, float *acc) {
    for (int64_t d = 0; d < D; d += 64) {
        __m256 c0 = _mm256_loadu_ps(acc + d), c1 = _mm256_loadu_ps(acc + d + 8), c2 = _mm256_loadu_ps(acc + d + 16),
               c3 = _mm256_loadu_ps(acc + d + 24), c4 = _mm256_loadu_ps(acc + d + 32), c5 = _mm256_loadu_ps(acc + d + 40),
               c6 = _mm256_loadu_ps(acc + d + 48), c7 = _mm256_loadu_ps(acc + d + 56);
        for (int64_t i = 0; i < n; i++) {
            const __m256 e = _mm256_set1_ps(w[idx[i]]);
            const float *v = r[i] + d;
            c0 = _mm256_fmadd_ps(e, _mm256_loadu_ps(v), c0);
            c1 = _mm256_fmadd_ps(e, _mm256_loadu_ps(v + 8), c1);
            c2 = _mm256_fmadd_ps(e, _mm256_loadu_ps(v + 16), c2);
            c3 = _mm256_fmadd_ps(e, _mm256_loadu_ps(v + 24), c3);
            c4 = _mm256_fmadd_ps(e, _mm256_loadu_ps(v + 32), c4);
            c5 = _mm256_fmadd_ps(e, _mm256_loadu_ps(v + 40), c5);
            c6 = _mm256_fmadd_ps(e, _mm256_loadu_ps(v + 48), c6);
            c7 = _mm256_fmadd_ps(e, _mm256_loadu_ps(v + 56), c7);
        }
        _mm256_storeu_ps(acc + d, c0); _mm256_storeu_ps(acc + d + 8, c1); _mm256_storeu_ps(acc + d + 16, c2);
        _mm256_storeu_ps(acc + d + 24, c3); _mm256_storeu_ps(acc + d + 32, c4); _mm256_storeu_ps(acc + d + 40, c5);
        _mm256_storeu_ps(acc + d + 48, c6); _mm256_storeu_ps(acc + d + 56, c7);
    }
}
#pragma clang attribute pop
#endif

/* The plain path. */
static inline float sy_dot_ref(const float *x, const float *y, int64_t n) {
    float d = 0;
    for (int64_t i = 0; i < n; i++) d += x[i] * y[i];
    return d;
}
static inline void sy_axpy_ref(float *acc, float e, const float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) acc[i] += e * v[i];
}
static inline double sy_exp_sub_sum_ref(float *x, int64_t n, float m) {
    double total = 0;
    for (int64_t i = 0; i < n; i++) { x[i] = x[i] == -INFINITY ? 0 : expf(x[i] - m); total += x[i]; }
    return total;
}

/* The path's version of each (isa: SY_ISA_*, chosen once per call). */
static inline float sy_dot(int isa, const float *x, const float *y, int64_t n) {
#if defined(__x86_64__)
    if (isa >= SY_ISA_AVX2) return sy_dot_avx2(x, y, n);
#endif
    return sy_dot_ref(x, y, n);
}
static inline void sy_axpy(int isa, float *acc, float e, const float *v, int64_t n) {
#if defined(__x86_64__)
    if (isa >= SY_ISA_AVX2) { sy_axpy_avx2(acc, e, v, n); return; }
#endif
    sy_axpy_ref(acc, e, v, n);
}
static inline double sy_exp_sub_sum(int isa, float *x, int64_t n, float m) {
#if defined(__x86_64__)
    if (isa >= SY_ISA_AVX2) return sy_exp_sub_sum_avx2(x, n, m);
#endif
    return sy_exp_sub_sum_ref(x, n, m);
}

/* One work item: query token t, KV head hk, keys [j0, j1), in blocks of SY_BLK rows. Per block: the
   visible rows are listed (and F16/Q8_0 rows decoded into a block scratch), then the scores of every
   query head of the group against them (each row read once per block, from cache after the first head);
   after the chunk's scores, their exponentials; then the weighted V rows, block by block. */
#define SY_BLK 64
/* The rows j0+b0 ..< j0+b1 of `base` (K or V, row stride ld) that query position p1 may see, as F32
   pointers: straight into the cache for F32, decoded into `dec` (one block of rows) otherwise; idx gets
   each row's offset in the chunk. Returns how many. */
static int64_t sy_visible_rows(const sy_attn_args *a, const void *base, int64_t ld, int64_t hk, size_t hb, int32_t p1,
                               int64_t j0, int64_t b0, int64_t b1, const float **rows, int32_t *idx, float *dec) {
    const int64_t D = a->head_dim;
    int64_t m = 0;
    for (int64_t jj = b0; jj < b1; jj++) {
        const int32_t dp = p1 - (a->kpos ? a->kpos[j0 + jj] : (int32_t)(j0 + jj));
        if (dp < 0 || (a->window > 0 && dp >= a->window)) continue;
        const uint8_t *rb = (const uint8_t *)base + (j0 + jj) * ld + (size_t)hk * hb;
        if (a->kv_type == SY_F32) rows[m] = (const float *)rb;
        else { sy_dequant_row(a->kv_type, rb, dec + m * D, D); rows[m] = dec + m * D; }
        idx[m++] = (int32_t)jj;
    }
    return m;
}

static void sy_attn_task(void *p, int ith, int nth) {
    (void)ith; (void)nth;
    sy_attn_ctx *c = (sy_attn_ctx *)p;
    const sy_attn_args *a = c->a;
    const int64_t D = a->head_dim, group = a->n_head / a->n_head_kv, chunk = c->chunk;
    const size_t hb = a->kv_type == SY_F32 ? 4 * (size_t)D : a->kv_type == SY_F16 ? 2 * (size_t)D : 34 * (size_t)(D / 32);
    const int isa = c->isa;
#if defined(__x86_64__)
    const int blocked = isa >= SY_ISA_AVX2 && D % 64 == 0;
#endif
    float *s = sy_scratch(0, sizeof(float) * (size_t)(chunk * group));   /* [group][chunk] scores, then weights */
    float *dec = sy_scratch(1, sizeof(float) * (size_t)(SY_BLK * D));     /* decoded rows of one block */
    const float *rows[SY_BLK];
    int32_t idx[SY_BLK];
    const long total = (long)(a->n_tok * a->n_head_kv * c->n_chunks);
    for (;;) {
        const long item = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (item >= total) break;
        const int64_t t = item / (a->n_head_kv * c->n_chunks), hk = (item / c->n_chunks) % a->n_head_kv;
        const int64_t j0 = (item % c->n_chunks) * chunk, j1 = j0 + chunk < a->n_kv ? j0 + chunk : a->n_kv, n = j1 - j0;
        const int32_t p1 = a->qpos[t];
        const float *q = a->q + t * a->ldq + hk * group * D;
        float *pm = c->pmax + item * group, *ps = c->psum + item * group, *pa = c->pacc + item * group * D;
        for (int64_t g = 0; g < group; g++)
            for (int64_t jj = 0; jj < n; jj++) s[g * chunk + jj] = -INFINITY;
        for (int64_t b0 = 0; b0 < n; b0 += SY_BLK) {
            const int64_t b1 = b0 + SY_BLK < n ? b0 + SY_BLK : n;
            const int64_t m = sy_visible_rows(a, a->k, a->ldk, hk, hb, p1, j0, b0, b1, rows, idx, dec);
            for (int64_t g = 0; g < group; g++) {
#if defined(__x86_64__)
                if (blocked) { sy_scores4(q + g * D, rows, idx, m, D, a->scale, s + g * chunk); continue; }
#endif
                for (int64_t i = 0; i < m; i++) s[g * chunk + idx[i]] = sy_dot(isa, q + g * D, rows[i], D) * a->scale;
            }
        }
        for (int64_t g = 0; g < group; g++) {
            float mx = -INFINITY;
            for (int64_t jj = 0; jj < n; jj++) mx = s[g * chunk + jj] > mx ? s[g * chunk + jj] : mx;
            pm[g] = mx;
            ps[g] = mx == -INFINITY ? 0 : (float)sy_exp_sub_sum(isa, s + g * chunk, n, mx);
        }
        memset(pa, 0, sizeof(float) * (size_t)(group * D));
        for (int64_t b0 = 0; b0 < n; b0 += SY_BLK) {
            const int64_t b1 = b0 + SY_BLK < n ? b0 + SY_BLK : n;
            const int64_t m = sy_visible_rows(a, a->v, a->ldv, hk, hb, p1, j0, b0, b1, rows, idx, dec);
            for (int64_t g = 0; g < group; g++) {
#if defined(__x86_64__)
                if (blocked) { sy_values64(s + g * chunk, rows, idx, m, D, pa + g * D); continue; }
#endif
                for (int64_t i = 0; i < m; i++) sy_axpy(isa, pa + g * D, s[g * chunk + idx[i]], rows[i], D);
            }
        }
    }
}

/* Merges the chunks of each (token, KV head): out = sum_c e^(m_c - M) acc_c / sum_c e^(m_c - M) s_c. */
static void sy_attn_merge(void *p, int ith, int nth) {
    sy_attn_ctx *c = (sy_attn_ctx *)p;
    const sy_attn_args *a = c->a;
    const int64_t D = a->head_dim, group = a->n_head / a->n_head_kv, pairs = a->n_tok * a->n_head_kv;
    for (int64_t pr = ith; pr < pairs; pr += nth) {
        const int64_t t = pr / a->n_head_kv, hk = pr % a->n_head_kv, base = pr * c->n_chunks;
        for (int64_t g = 0; g < group; g++) {
            float *o = a->out + t * a->ldo + (hk * group + g) * D;
            float M = -INFINITY;
            for (int64_t ci = 0; ci < c->n_chunks; ci++) { const float m = c->pmax[(base + ci) * group + g]; M = m > M ? m : M; }
            if (M == -INFINITY) { memset(o, 0, sizeof(float) * (size_t)D); continue; }
            double sum = 0;
            for (int64_t i = 0; i < D; i++) o[i] = 0;
            for (int64_t ci = 0; ci < c->n_chunks; ci++) {
                const int64_t it = base + ci;
                const float m = c->pmax[it * group + g];
                if (m == -INFINITY) continue;
                const float w = expf(m - M);
                sum += (double)w * c->psum[it * group + g];
                sy_axpy(c->isa, o, w, c->pacc + (it * group + g) * D, D);
            }
            const float inv = (float)(1.0 / sum);
            for (int64_t i = 0; i < D; i++) o[i] *= inv;
        }
    }
}

void sy_attention(sy_pool *pool, const sy_attn_args *a) {
    /* Enough chunks to give each thread about four items, but never chunks under 256 keys (the partials
       and the merge would then cost more than they save). */
    const int64_t nth = sy_pool_size(pool), pairs = a->n_tok * a->n_head_kv, n_kv = a->n_kv > 0 ? a->n_kv : 1;
    int64_t want = (4 * nth + pairs - 1) / pairs;
    int64_t chunk = (n_kv + want - 1) / want;
    if (chunk < 256) chunk = 256;
    if (chunk > n_kv) chunk = n_kv;
    const int64_t n_chunks = (n_kv + chunk - 1) / chunk, group = a->n_head / a->n_head_kv;
    const size_t items = (size_t)(pairs * n_chunks);
    sy_attn_ctx c = {a, 0, chunk, n_chunks, sy_pool_isa(pool), NULL, NULL, NULL};
    c.pmax = sy_scratch(2, sizeof(float) * items * (size_t)group);
    c.psum = sy_scratch(3, sizeof(float) * items * (size_t)group);
    c.pacc = sy_scratch(4, sizeof(float) * items * (size_t)(group * a->head_dim));
    if (a->n_kv > 0) sy_pool_run(pool, sy_attn_task, &c);
    else for (size_t i = 0; i < items * (size_t)group; i++) c.pmax[i] = -INFINITY;
    sy_pool_run(pool, sy_attn_merge, &c);
}
