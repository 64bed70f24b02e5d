/* backend/cpu/host_alloc.h — the CPU allocator behind bn__alloc_aligned / bn__free_aligned
 * (core/internal.h) and its cache of large blocks (host_alloc.c). Internal: the statistics and
 * limit below exist for the tests and benchmarks; nothing here is public API. */
#ifndef BORN_CPU_HOST_ALLOC_H
#define BORN_CPU_HOST_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Requests of at least this many bytes are "large": rounded up to a size class and, once freed,
 * kept for reuse; smaller ones go straight to posix_memalign / free. */
#define BN_HOST_LARGE_MIN ((size_t)256 << 10)
/* The cache's default bound on the bytes it keeps (freed large blocks, not yet reused). */
#define BN_HOST_CACHE_DEFAULT_LIMIT ((size_t)384 << 20)

typedef struct bn__host_cache_stats {
    size_t cached_bytes;  /* freed large blocks kept for reuse, in bytes of their size classes */
    size_t cached_blocks; /* how many */
    size_t live_large;    /* large blocks handed out and not yet freed */
    size_t limit;         /* the bound on cached_bytes */
    uint64_t hits;        /* large requests served from the cache (since the process began) */
    uint64_t misses;      /* large requests that needed a fresh block */
} bn__host_cache_stats;

void bn__host_cache_get_stats(bn__host_cache_stats *s);
/* Sets the bound on cached bytes (0: cache nothing), frees the least recently cached blocks
 * above it, and returns the previous bound. */
size_t bn__host_cache_set_limit(size_t bytes);
/* Frees every cached block (live blocks are not touched). */
void bn__host_cache_trim(void);
/* The size class (bytes) a large request of n bytes is rounded up to; n itself when n is below
 * BN_HOST_LARGE_MIN. */
size_t bn__host_class_bytes(size_t n);

#endif
