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

typedef struct {
    const sy_attn_args *a;
    atomic_long next;
    int64_t sub;   /* head subgroups per KV head: each work item serves `group / sub` query heads */
} sy_attn_ctx;

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
/* Dot product with four independent 8-wide FMA chains (head dims are multiples of 8 in practice; the
   tail is scalar). */
static inline float sy_dot(const float *x, const float *y, int64_t n) {
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
static inline void sy_axpy(float *acc, float e, const float *v, int64_t n) {
    const __m256 ev = _mm256_set1_ps(e);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(ev, _mm256_loadu_ps(v + i), _mm256_loadu_ps(acc + i)));
    for (; i < n; i++) acc[i] += e * v[i];
}
#else
static inline float sy_dot(const float *x, const float *y, int64_t n) {
    float d = 0;
    for (int64_t i = 0; i < n; i++) d += x[i] * y[i];
    return d;
}
static inline void sy_axpy(float *acc, float e, const float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) acc[i] += e * v[i];
}
#endif

/* One work item: query token t and a subgroup of the query heads that share KV head hk. Each K and V
   row is read (and, for F16/Q8_0, decoded) once for the whole subgroup, so GQA does not multiply the
   cache traffic by the group size. */
static void sy_attn_task(void *p, int ith, int nth) {
    (void)ith; (void)nth;
    sy_attn_ctx *c = (sy_attn_ctx *)p;
    const sy_attn_args *a = c->a;
    const int64_t D = a->head_dim, group = a->n_head / a->n_head_kv, sub = c->sub;
    const int64_t per = (group + sub - 1) / sub, n_kv = a->n_kv > 0 ? a->n_kv : 1;
    /* Bytes of one head's slice of a K/V row: quantized rows are decoded one head at a time into a
       D-float scratch (never the whole cache). */
    const size_t hb = a->kv_type == SY_F32 ? 4 * (size_t)D : a->kv_type == SY_F16 ? 2 * (size_t)D : 34 * (size_t)(D / 32);
    float *s = malloc(sizeof(float) * (size_t)(n_kv * per));   /* [per][n_kv] scores */
    float *acc = malloc(sizeof(float) * (size_t)(D * per));    /* [per][D] */
    float *row = malloc(sizeof(float) * (size_t)D);
    float *mx = malloc(sizeof(float) * (size_t)per);
    double *sum = malloc(sizeof(double) * (size_t)per);
    const long total = (long)(a->n_tok * a->n_head_kv * sub);
    for (;;) {
        const long item = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (item >= total) break;
        const int64_t t = item / (a->n_head_kv * sub), rest = item % (a->n_head_kv * sub);
        const int64_t hk = rest / sub, h0 = hk * group + (rest % sub) * per;
        const int64_t nh = (h0 + per <= (hk + 1) * group) ? per : (hk + 1) * group - h0;
        if (nh <= 0) continue;
        const int32_t p1 = a->qpos[t];
        for (int64_t g = 0; g < nh; g++) mx[g] = -INFINITY;
        for (int64_t j = 0; j < a->n_kv; j++) {
            const int32_t p0 = a->kpos ? a->kpos[j] : (int32_t)j;
            const int32_t dp = p1 - p0;
            if (dp < 0 || (a->window > 0 && dp >= a->window)) {
                for (int64_t g = 0; g < nh; g++) s[g * n_kv + j] = -INFINITY;
                continue;
            }
            const uint8_t *kb = (const uint8_t *)a->k + j * a->ldk + (size_t)hk * hb;
            const float *k = (const float *)kb;
            if (a->kv_type != SY_F32) { sy_dequant_row(a->kv_type, kb, row, D); k = row; }
            for (int64_t g = 0; g < nh; g++) {
                const float v = sy_dot(a->q + t * a->ldq + (h0 + g) * D, k, D) * a->scale;
                s[g * n_kv + j] = v;
                mx[g] = v > mx[g] ? v : mx[g];
            }
        }
        for (int64_t i = 0; i < D * nh; i++) acc[i] = 0;
        for (int64_t g = 0; g < nh; g++) sum[g] = 0;
        for (int64_t j = 0; j < a->n_kv; j++) {
            if (s[j] == -INFINITY) continue;   /* masked rows are masked for every head of the item */
            const uint8_t *vb = (const uint8_t *)a->v + j * a->ldv + (size_t)hk * hb;
            const float *v = (const float *)vb;
            if (a->kv_type != SY_F32) { sy_dequant_row(a->kv_type, vb, row, D); v = row; }
            for (int64_t g = 0; g < nh; g++) {
                const float e = expf(s[g * n_kv + j] - mx[g]);
                sum[g] += e;
                sy_axpy(acc + g * D, e, v, D);
            }
        }
        for (int64_t g = 0; g < nh; g++) {
            float *o = a->out + t * a->ldo + (h0 + g) * D;
            if (mx[g] == -INFINITY) { memset(o, 0, sizeof(float) * (size_t)D); continue; }
            const float inv = (float)(1.0 / sum[g]);
            for (int64_t i = 0; i < D; i++) o[i] = acc[g * D + i] * inv;
        }
    }
    free(s);
    free(acc);
    free(row);
    free(mx);
    free(sum);
}

void sy_attention(sy_pool *pool, const sy_attn_args *a) {
    /* Split a KV head's query heads only as far as needed to give every thread work. */
    const int64_t group = a->n_head / a->n_head_kv, items = a->n_tok * a->n_head_kv, nth = sy_pool_size(pool);
    int64_t sub = items >= nth ? 1 : (nth + items - 1) / items;
    if (sub > group) sub = group;
    sy_attn_ctx c = {a, 0, sub};
    sy_pool_run(pool, sy_attn_task, &c);
}
