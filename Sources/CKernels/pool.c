// Persistent thread pool. Workers spin briefly on a generation counter (forward passes issue
// hundreds of short parallel regions per token, so waking through a futex each time would cost
// more than the work), then sleep on a condition variable when idle.
#define _GNU_SOURCE
#include "ckernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sched.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define SY_PAUSE() _mm_pause()
#else
#define SY_PAUSE() sched_yield()
#endif

struct sy_pool {
    int n;
    atomic_long runs;   /* sy_pool_run calls so far (a structural count for the cost model) */
    pthread_t *threads;
    atomic_int gen;
    atomic_int done;
    atomic_int stop;
    sy_task_fn fn;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* One caller at a time: the pool has one task slot, so a second caller (another thread sharing the
       model) would overwrite the first's task mid-run. Uncontended, this costs a lock per region. */
    pthread_mutex_t run_mu;
    /* Exact mode for the kernels run on this pool (quantized weights times float activations). */
    atomic_int exact;
    /* Kernel path for this pool's kernels, or -1: the process's (sy_isa). Tests run one pool per path. */
    atomic_int isa;
};

typedef struct { sy_pool *pool; int ith; } sy_worker_arg;

enum { SY_SPIN = 1 << 16 };

static void *sy_worker(void *p) {
    sy_worker_arg *arg = (sy_worker_arg *)p;
    sy_pool *pool = arg->pool;
    int ith = arg->ith;
    free(arg);
    int seen = 0;
    for (;;) {
        int g = atomic_load_explicit(&pool->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < SY_SPIN; i++) {
            SY_PAUSE();
            g = atomic_load_explicit(&pool->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&pool->mu);
            while ((g = atomic_load(&pool->gen)) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = g;
        pool->fn(pool->ctx, ith, pool->n);
        atomic_fetch_add_explicit(&pool->done, 1, memory_order_release);
    }
}

sy_pool *sy_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    sy_pool *pool = calloc(1, sizeof(sy_pool));
    if (pool) atomic_init(&pool->isa, -1);
    if (!pool) return NULL;
    pool->n = n_threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_mutex_init(&pool->run_mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    for (int i = 1; i < n_threads; i++) {
        sy_worker_arg *arg = malloc(sizeof(sy_worker_arg));
        arg->pool = pool;
        arg->ith = i;
        pthread_create(&pool->threads[i], NULL, sy_worker, arg);
    }
    return pool;
}

void sy_pool_free(sy_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    atomic_fetch_add(&pool->gen, 1);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_mutex_destroy(&pool->run_mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->threads);
    free(pool);
}

int sy_pool_size(const sy_pool *pool) { return pool ? pool->n : 1; }
void sy_pool_set_exact(sy_pool *pool, int exact) { if (pool) atomic_store(&pool->exact, exact != 0); }
int sy_pool_exact(sy_pool *pool) { return pool ? atomic_load_explicit(&pool->exact, memory_order_relaxed) : 0; }
void sy_pool_set_isa(sy_pool *pool, int level) {
    if (!pool) return;
    const int best = sy_isa_detected();
    atomic_store(&pool->isa, level < 0 ? -1 : level < best ? level : best);
}
int sy_pool_isa(sy_pool *pool) {
    const int l = pool ? atomic_load_explicit(&pool->isa, memory_order_relaxed) : -1;
    return l >= 0 ? l : sy_isa();
}
long sy_pool_runs(sy_pool *pool) { return pool ? atomic_load_explicit(&pool->runs, memory_order_relaxed) : 0; }

void sy_pool_run(sy_pool *pool, sy_task_fn fn, void *ctx) {
    if (pool) atomic_fetch_add_explicit(&pool->runs, 1, memory_order_relaxed);
    if (!pool || pool->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool->run_mu);
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add_explicit(&pool->gen, 1, memory_order_release);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    fn(ctx, 0, pool->n);
    while (atomic_load_explicit(&pool->done, memory_order_acquire) < pool->n - 1) SY_PAUSE();
    pthread_mutex_unlock(&pool->run_mu);
}

/* The allocator policy for forward-pass buffers (Kernels/PassMemory.swift says why). */
int sy_keep_freed_buffers(void) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 512 << 20) == 1;
#else
    return 0;
#endif
}

/* ---- the int8 multiply-add issue rate, for `cost --probe`'s "fraction of peak" ----
   Each thread runs iters x 8 independent multiply-add instructions in registers (no loads): vpmaddubsw
   (32 products, summed in pairs) on AVX2, vpdpbusd (32 products summed in fours into int32) with AVX-512
   VNNI, a plain int loop elsewhere. Eight chains hide the instruction's latency; the result is folded into
   a returned value so the compiler keeps every step. The count of products per call is iters x 8 x 32 per
   thread. This is the most any int8 kernel can do here: real kernels also load, widen, sign and scale. */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static int sy_int8_avx2(long iters) {
    __m256i a[8], w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(1);
    for (int i = 0; i < 8; i++) a[i] = _mm256_set1_epi16((short)i);
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 8; i++) a[i] = _mm256_maddubs_epi16(_mm256_xor_si256(w, a[i]), x);
    __m256i s = a[0];
    for (int i = 1; i < 8; i++) s = _mm256_add_epi16(s, a[i]);
    return _mm256_extract_epi16(s, 0);
}
__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni"))) static int sy_int8_vnni(long iters) {
    __m256i a[8], w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(1);
    for (int i = 0; i < 8; i++) a[i] = _mm256_set1_epi32(i);
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 8; i++) a[i] = _mm256_dpbusd_epi32(a[i], w, x);
    __m256i s = a[0];
    for (int i = 1; i < 8; i++) s = _mm256_add_epi32(s, a[i]);
    return _mm256_extract_epi32(s, 0);
}
#endif

typedef struct { long iters; int isa; atomic_int sink; } sy_int8_ctx;

static void sy_int8_task(void *p, int ith, int nth) {
    (void)ith; (void)nth;
    sy_int8_ctx *c = (sy_int8_ctx *)p;
    int v = 0;
#if defined(__x86_64__)
    if (c->isa >= SY_ISA_AVX512) v = sy_int8_vnni(c->iters);
    else if (c->isa >= SY_ISA_AVX2) v = sy_int8_avx2(c->iters);
    else
#endif
    {
        volatile int8_t wv = 3, xv = 1;
        int32_t acc[8] = {0};
        for (long n = 0; n < c->iters; n++)
            for (int i = 0; i < 8; i++)
                for (int k = 0; k < 32; k++) acc[i] += wv * xv;
        for (int i = 0; i < 8; i++) v += acc[i];
    }
    atomic_fetch_add_explicit(&c->sink, v, memory_order_relaxed);
}

long sy_probe_int8(sy_pool *pool, long iters) {
    sy_int8_ctx c = {iters, sy_pool_isa(pool), 0};
    sy_pool_run(pool, sy_int8_task, &c);
    return iters * 8 * 32 * sy_pool_size(pool);   /* c.sink keeps the loops' results alive */
}

/* ---- per-thread scratch ----
   Each thread's buffers hang off one block, found through a _Thread_local pointer (fast) and registered
   under a pthread key whose destructor frees them when the thread ends: a pool's workers end with the pool,
   and without the destructor every pool freed (an engine restarted, a test's pool) leaked its workers'
   buffers (LeakSanitizer's first report on the test suite, Docs/RELIABILITY.md). */
enum { SY_SCRATCH_SLOTS = 10, SY_FREED_RING = 256 };
typedef struct { void *ptr[SY_SCRATCH_SLOTS]; size_t cap[SY_SCRATCH_SLOTS]; long id; } sy_scratch_block;
static _Thread_local sy_scratch_block *sy_scratch_mine;
static pthread_key_t sy_scratch_key;
static pthread_once_t sy_scratch_once = PTHREAD_ONCE_INIT;
/* Block ids (from 1), and the last SY_FREED_RING ids freed: what the tests read to see one thread's block go. */
static atomic_long sy_scratch_next_id, sy_scratch_freed_count;
static atomic_long sy_scratch_freed_ids[SY_FREED_RING];

static void sy_scratch_release(void *p) {
    sy_scratch_block *b = p;
    for (int i = 0; i < SY_SCRATCH_SLOTS; i++) free(b->ptr[i]);
    const long k = atomic_fetch_add_explicit(&sy_scratch_freed_count, 1, memory_order_relaxed);
    atomic_store_explicit(&sy_scratch_freed_ids[k % SY_FREED_RING], b->id, memory_order_release);
    free(b);
}
static void sy_scratch_init(void) { pthread_key_create(&sy_scratch_key, sy_scratch_release); }

/* This thread's block, made on first use. */
static sy_scratch_block *sy_scratch_block_mine(void) {
    sy_scratch_block *b = sy_scratch_mine;
    if (b) return b;
    pthread_once(&sy_scratch_once, sy_scratch_init);
    b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->id = atomic_fetch_add_explicit(&sy_scratch_next_id, 1, memory_order_relaxed) + 1;
    pthread_setspecific(sy_scratch_key, b);
    return sy_scratch_mine = b;
}

long sy_scratch_id(void) {
    sy_scratch_block *b = sy_scratch_block_mine();
    return b ? b->id : 0;
}

long sy_scratch_held(void) {
    const sy_scratch_block *b = sy_scratch_mine;
    long bytes = 0;
    for (int i = 0; b && i < SY_SCRATCH_SLOTS; i++) bytes += (long)b->cap[i];
    return bytes;
}

int sy_scratch_was_freed(long id) {
    for (int i = 0; i < SY_FREED_RING; i++)
        if (atomic_load_explicit(&sy_scratch_freed_ids[i], memory_order_acquire) == id) return 1;
    return 0;
}

static void sy_scratch_id_task(void *p, int ith, int nth) { (void)nth; ((long *)p)[ith] = sy_scratch_id(); }
void sy_pool_scratch_ids(sy_pool *pool, long *ids) { sy_pool_run(pool, sy_scratch_id_task, ids); }

void *sy_scratch(int slot, size_t bytes) {
    sy_scratch_block *b = sy_scratch_block_mine();
    if (!b) return NULL;
    if (bytes > b->cap[slot]) {
        /* Grow by half again at least: attention's buffers follow the context, one key longer every token. */
        const size_t grown = b->cap[slot] + b->cap[slot] / 2, want = bytes > grown ? bytes : grown;
        free(b->ptr[slot]);
        b->ptr[slot] = malloc(want);
        b->cap[slot] = b->ptr[slot] ? want : 0;
    }
    return b->ptr[slot];
}
