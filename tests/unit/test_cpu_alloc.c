/* tests/unit/test_cpu_alloc.c — the CPU backend's host allocator (backend/cpu/host_alloc.c):
 *   - size classes: a large request is rounded up by at most a quarter, small ones not at all;
 *   - every block is 64-byte aligned and writable over the whole size asked for, for sizes from
 *     0 to tens of MiB, fresh and reused;
 *   - a freed large block is reused by the next request of its class, with the hit counted;
 *   - the cache's bound: the least recently freed blocks are given back first, a bound of 0
 *     caches nothing, trimming empties the cache;
 *   - threads allocating, filling, checking and freeing blocks of random sizes at once;
 *   - tensors: a released tensor's storage is reused by the next tensor of its size, and no
 *     tensor or large block stays live (LeakSanitizer checks the rest in the sanitizer build);
 *   - bad sizes: a size whose rounding overflows gives NULL, a shape too large an error. */
#include "bn_test.h"

#include "backend/cpu/host_alloc.h"
#include "core/internal.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

TestSuite(cpu_alloc);

static bn__host_cache_stats stats(void)
{
    bn__host_cache_stats s;
    bn__host_cache_get_stats(&s);
    return s;
}

static bool aligned64(const void *p) { return ((uintptr_t)p & 63u) == 0; }

/* Fills n bytes of p with a pattern made from seed and checks it back. */
static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 251) p[i] = (unsigned char)(seed + i / 251);
    if (n) p[n - 1] = (unsigned char)(seed * 7u + 1u);
}

static bool check(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 251)
        if (i != n - 1 && p[i] != (unsigned char)(seed + i / 251)) return false;
    return n == 0 || p[n - 1] == (unsigned char)(seed * 7u + 1u);
}

Test(cpu_alloc, size_classes_round_up_by_at_most_a_quarter)
{
    size_t prev = 0;
    for (size_t n = 1; n < ((size_t)1 << 34); n = n + n / 7 + 1) {
        size_t c = bn__host_class_bytes(n);
        if (n < BN_HOST_LARGE_MIN) {
            cr_assert_eq(c, n, "small request %zu rounded to %zu", n, c);
        } else {
            cr_assert_geq(c, n, "class %zu below the request %zu", c, n);
            cr_assert_leq((double)c, 1.25 * (double)n, "class %zu wastes over a quarter of %zu", c,
                          n);
            cr_assert_eq(c % 64, 0, "class %zu is not a multiple of 64", c);
            cr_assert_geq(c, prev, "classes not monotone at %zu", n);
            cr_assert_eq(bn__host_class_bytes(c), c, "class %zu is not its own class", c);
        }
        prev = c;
    }
    cr_assert_eq(bn__host_class_bytes(BN_HOST_LARGE_MIN), BN_HOST_LARGE_MIN);
    cr_assert_eq(bn__host_class_bytes(BN_HOST_LARGE_MIN + 1),
                 BN_HOST_LARGE_MIN + BN_HOST_LARGE_MIN / 4);
}

Test(cpu_alloc, blocks_are_aligned_and_writable_fresh_and_reused)
{
    const size_t sizes[] = {0,
                            1,
                            63,
                            64,
                            65,
                            4095,
                            100000,
                            BN_HOST_LARGE_MIN - 1,
                            BN_HOST_LARGE_MIN,
                            BN_HOST_LARGE_MIN + 1,
                            300001,
                            (size_t)1 << 20,
                            ((size_t)3 << 20) + 7,
                            (size_t)17 << 20};
    const size_t ns = sizeof sizes / sizeof sizes[0];
    for (int round = 0; round < 3; round++) {
        void *ptrs[sizeof sizes / sizeof sizes[0]];
        for (size_t i = 0; i < ns; i++) {
            ptrs[i] = bn__alloc_aligned(sizes[i]);
            cr_assert_not_null(ptrs[i], "no block of %zu bytes", sizes[i]);
            cr_assert(aligned64(ptrs[i]), "block of %zu bytes at %p is not 64-byte aligned",
                      sizes[i], ptrs[i]);
            fill(ptrs[i], sizes[i] ? sizes[i] : 1, (unsigned)(i + 13 * round));
        }
        for (size_t i = 0; i < ns; i++) {
            cr_assert(check(ptrs[i], sizes[i] ? sizes[i] : 1, (unsigned)(i + 13 * round)),
                      "block %zu (%zu bytes) was overwritten", i, sizes[i]);
            bn__free_aligned(ptrs[i]);
        }
    }
    bn__host_cache_stats s = stats();
    cr_assert_eq(s.live_large, 0, "%zu large blocks still live", s.live_large);
    cr_assert_gt(s.hits, 0, "rounds 2 and 3 reused no block");
    bn__free_aligned(NULL); /* a no-op */
}

Test(cpu_alloc, freed_large_block_is_reused_by_its_class)
{
    bn__host_cache_trim();
    bn__host_cache_stats s0 = stats();
    cr_assert_eq(s0.cached_blocks, 0);
    cr_assert_eq(s0.cached_bytes, 0);
    size_t n = (size_t)1 << 20;
    unsigned char *p = bn__alloc_aligned(n);
    cr_assert_not_null(p);
    fill(p, n, 3);
    bn__free_aligned(p);
    bn__host_cache_stats s1 = stats();
    cr_assert_eq(s1.cached_blocks, 1, "cached %zu blocks", s1.cached_blocks);
    cr_assert_eq(s1.cached_bytes, bn__host_class_bytes(n));
    /* a different size of the same class takes it back */
    unsigned char *q = bn__alloc_aligned(n - 1000);
    cr_assert_eq(q, p, "the cached block %p was not reused (got %p)", (void *)p, (void *)q);
    bn__host_cache_stats s2 = stats();
    cr_assert_eq(s2.hits, s1.hits + 1);
    cr_assert_eq(s2.cached_blocks, 0);
    cr_assert_eq(s2.live_large, 1);
    /* a request of another class does not take a cached block of a smaller one */
    bn__free_aligned(q);
    unsigned char *r = bn__alloc_aligned(2 * n + 1);
    cr_assert_neq(r, p);
    cr_assert_eq(stats().cached_blocks, 1);
    fill(r, 2 * n + 1, 9);
    cr_assert(check(r, 2 * n + 1, 9));
    bn__free_aligned(r);
    bn__host_cache_trim();
    bn__host_cache_stats s3 = stats();
    cr_assert_eq(s3.cached_blocks, 0);
    cr_assert_eq(s3.cached_bytes, 0);
    cr_assert_eq(s3.live_large, 0);
}

Test(cpu_alloc, bound_gives_back_least_recently_freed_first)
{
    bn__host_cache_trim();
    size_t n = (size_t)1 << 20, c = bn__host_class_bytes(n);
    size_t old = bn__host_cache_set_limit(2 * c);
    cr_assert_eq(old, BN_HOST_CACHE_DEFAULT_LIMIT);
    void *a = bn__alloc_aligned(n), *b = bn__alloc_aligned(n), *d = bn__alloc_aligned(n);
    cr_assert(a && b && d);
    bn__free_aligned(a);
    bn__free_aligned(b);
    bn__free_aligned(d); /* a, the oldest, goes back to the system */
    bn__host_cache_stats s = stats();
    cr_assert_eq(s.cached_blocks, 2, "cached %zu blocks under a bound of two", s.cached_blocks);
    cr_assert_eq(s.cached_bytes, 2 * c);
    /* most recently freed first */
    void *x = bn__alloc_aligned(n), *y = bn__alloc_aligned(n);
    cr_assert_eq(x, d, "expected the last freed block back first");
    cr_assert_eq(y, b);
    uint64_t misses = stats().misses;
    void *z = bn__alloc_aligned(n); /* the cache is empty: a fresh block */
    cr_assert_eq(stats().misses, misses + 1);
    bn__free_aligned(x);
    bn__free_aligned(y);
    bn__free_aligned(z);
    cr_assert_eq(stats().cached_blocks, 2);
    /* lowering the bound trims at once; 0 caches nothing */
    bn__host_cache_set_limit(c);
    cr_assert_eq(stats().cached_blocks, 1);
    cr_assert_eq(stats().cached_bytes, c);
    bn__host_cache_set_limit(0);
    cr_assert_eq(stats().cached_blocks, 0);
    void *w = bn__alloc_aligned(n);
    bn__free_aligned(w);
    cr_assert_eq(stats().cached_blocks, 0, "a bound of 0 still cached a block");
    /* a block above the bound is never cached */
    bn__host_cache_set_limit(c);
    w = bn__alloc_aligned(4 * n);
    bn__free_aligned(w);
    cr_assert_eq(stats().cached_blocks, 0);
    cr_assert_eq(bn__host_cache_set_limit(old), c);
    cr_assert_eq(stats().live_large, 0);
}

typedef struct worker {
    unsigned seed;
    int iters;
    bool ok;
} worker;

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void *work(void *arg)
{
    worker *w = arg;
    enum { HOLD = 4 };
    unsigned char *held[HOLD] = {0};
    size_t size[HOLD] = {0};
    unsigned tag[HOLD] = {0};
    w->ok = true;
    for (int it = 0; it < w->iters; it++) {
        int k = (int)(next_rand(&w->seed) % HOLD);
        if (held[k]) {
            if (!check(held[k], size[k], tag[k])) w->ok = false;
            bn__free_aligned(held[k]);
        }
        unsigned r = next_rand(&w->seed);
        /* half small, half large (up to 3 MiB), a few of the same sizes again and again */
        size[k] = r % 2 ? 1 + r % 200000 : BN_HOST_LARGE_MIN + (size_t)(r % 12) * 250000;
        tag[k] = w->seed;
        held[k] = bn__alloc_aligned(size[k]);
        if (!held[k] || !aligned64(held[k])) {
            w->ok = false;
            break;
        }
        fill(held[k], size[k], tag[k]);
    }
    for (int k = 0; k < HOLD; k++)
        if (held[k]) {
            if (!check(held[k], size[k], tag[k])) w->ok = false;
            bn__free_aligned(held[k]);
        }
    return NULL;
}

Test(cpu_alloc, threads_share_the_cache_safely)
{
    enum { NT = 4 };
    bn__host_cache_stats s0 = stats();
    pthread_t th[NT];
    worker w[NT];
    for (int t = 0; t < NT; t++) {
        w[t] = (worker){.seed = 1234u + 77u * (unsigned)t, .iters = 400};
        cr_assert_eq(pthread_create(&th[t], NULL, work, &w[t]), 0);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        cr_assert(w[t].ok, "thread %d saw a bad block (overwritten, unaligned or NULL)", t);
    }
    bn__host_cache_stats s = stats();
    cr_assert_eq(s.live_large, s0.live_large, "%zu large blocks live after the threads ended",
                 s.live_large);
    cr_assert_gt(s.hits, s0.hits, "the threads reused no block");
    cr_assert_leq(s.cached_bytes, s.limit);
}

Test(cpu_alloc, released_tensor_storage_is_reused_without_leaks)
{
    bn__host_cache_trim();
    size_t live0 = stats().live_large;
    BNT_ASSERT_NO_LEAK({
        bn_tensor *t = bn_empty(BN_SHAPE(512, 1024), BN_F32); /* 2 MiB */
        cr_assert_not_null(t, "%s", bn_error_message());
        float *p = bn_tensor_data_f32(t);
        cr_assert(aligned64(p));
        cr_assert_eq(stats().live_large, live0 + 1);
        bn_release(t);
        cr_assert_eq(stats().live_large, live0);
        cr_assert_eq(stats().cached_blocks, 1);
        bn_tensor *u = bn_full(BN_SHAPE(1024, 500), 2.5, BN_F32); /* same class */
        cr_assert_not_null(u, "%s", bn_error_message());
        float *q = bn_tensor_data_f32(u);
        cr_assert_eq(q, p, "the released storage was not reused");
        cr_assert_eq(q[0], 2.5f);
        cr_assert_eq(q[1024 * 500 - 1], 2.5f);
        bn_release(u);
    });
    cr_assert_eq(stats().live_large, live0);
}

Test(cpu_alloc, impossible_sizes_give_null)
{
    cr_assert_null(bn__alloc_aligned(SIZE_MAX));
    cr_assert_null(bn__alloc_aligned(SIZE_MAX - 62));
    bn__host_cache_stats s = stats();
    cr_assert_eq(s.live_large, 0);
    /* bn_empty reports it as an error, not a crash */
    bn_tensor *t = bn_empty(BN_SHAPE((int64_t)1 << 40, 1 << 20), BN_F32);
    cr_assert_null(t);
    cr_assert_eq(bn_error_code(), BN_ERR_OOM);
    cr_assert(strstr(bn_error_message(), "bn_empty"), "message: %s", bn_error_message());
    bn_error_clear();
}
