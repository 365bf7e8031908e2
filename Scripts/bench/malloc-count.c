// A malloc counter for measuring allocations per decoded token (issue 13): LD_PRELOAD it and read the line it
// prints at exit. Counts malloc, calloc, realloc and posix_memalign calls and their bytes, process-wide.
// Scripts/bench/malloc-per-token.sh builds it and runs two generations that differ only in length; the
// difference divided by the extra tokens is the steady-state count per token. Not part of CI.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static atomic_long n_malloc, n_bytes;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static char boot[65536]; static size_t boot_used;
static void init(void) {
  real_malloc = dlsym(RTLD_NEXT, "malloc"); real_calloc = dlsym(RTLD_NEXT, "calloc");
  real_realloc = dlsym(RTLD_NEXT, "realloc"); real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
}
void *malloc(size_t n) { if (!real_malloc) init(); atomic_fetch_add(&n_malloc, 1); atomic_fetch_add(&n_bytes, n); return real_malloc(n); }
void *calloc(size_t a, size_t b) {
  if (!real_calloc) { void *p = boot + boot_used; boot_used += (a * b + 15) & ~15UL; return p; }
  atomic_fetch_add(&n_malloc, 1); atomic_fetch_add(&n_bytes, a*b); return real_calloc(a, b); }
void *realloc(void *p, size_t n) { if (!real_realloc) init(); atomic_fetch_add(&n_malloc, 1); atomic_fetch_add(&n_bytes, n); return real_realloc(p, n); }
int posix_memalign(void **p, size_t a, size_t n) { if (!real_posix_memalign) init(); atomic_fetch_add(&n_malloc, 1); atomic_fetch_add(&n_bytes, n); return real_posix_memalign(p, a, n); }
long sy_malloc_count(void) { return atomic_load(&n_malloc); }
__attribute__((destructor)) static void fin(void) { char b[128]; int k = snprintf(b, sizeof b, "malloc-counter: %ld calls, %ld bytes\n", (long)n_malloc, (long)n_bytes); write(2, b, k); }
