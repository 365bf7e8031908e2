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
