// Small helpers the kernel files share (not part of the public header).
#ifndef SWITCHYARD_KERNELS_INTERNAL_H
#define SWITCHYARD_KERNELS_INTERNAL_H

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
#endif

/* The fp16 value stored at p (a block's scale; clang's _Float16 converts exactly, subnormals included). */
static inline float sy_f16_at(const void *p) {
    _Float16 h;
    memcpy(&h, p, 2);
    return (float)h;
}

#endif
