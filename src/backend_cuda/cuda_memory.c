/* backend_cuda/cuda_memory.c — the CUDA plugin's caching allocator and host<->device copies.
 *
 * Blocks come from cudaMalloc once and are kept in free lists when tensors release them, so a
 * training step after the first calls no cudaMalloc. Reuse is safe without events because every
 * kernel of a device runs on its one stream, in order. When cudaMalloc fails the cache is
 * returned to the driver and the call tried once more. Transfers of BCU_PINNED_MIN bytes or more
 * go through two pinned staging buffers in turn (host->device returns once the data is staged;
 * device->host waits, since the caller reads the data). During a CUDA graph capture the blocks
 * come from and go to the graph's private pool (bcu_pool), host data copied to the device is kept
 * in pinned memory the graph owns, and a copy to the host is an error. */
#include "backend_cuda/cuda_plugin.h"

#include <stdlib.h>
#include <string.h>

#define SMALL_MAX ((size_t)1 << 20)
#define SMALL_ROUND ((size_t)512)
#define LARGE_ROUND ((size_t)2 << 20)

static size_t round_size(size_t n)
{
    if (n == 0) n = 1;
    size_t r = n <= SMALL_MAX ? SMALL_ROUND : LARGE_ROUND;
    return (n + r - 1) / r * r;
}

static size_t bucket_of(const void *p) { return ((uintptr_t)p >> 9) % BCU_LIVE_BUCKETS; }

/* Takes a cached block of the right class from the general lists or, during a capture, from the
 * graph's pool (caller holds the lock); NULL when none fits. */
static bcu_block *take_cached(bcu_allocator *a, size_t size)
{
    bool small = size <= SMALL_MAX;
    bcu_pool *pool = a->capture;
    bcu_block **head = pool ? (small ? &pool->free_small : &pool->free_large)
                            : (small ? &a->free_small : &a->free_large);
    bcu_block **best = NULL;
    for (bcu_block **pp = head; *pp; pp = &(*pp)->next) {
        size_t s = (*pp)->size;
        if (small ? s == size : (s >= size && s <= 2 * size && (!best || s < (*best)->size)))
            best = pp;
        if (small && best) break;
    }
    if (!best) return NULL;
    bcu_block *b = *best;
    *best = b->next;
    a->stats.cached -= b->size;
    return b;
}

static void release_list(bcu_block **head)
{
    while (*head) {
        bcu_block *b = *head;
        *head = b->next;
        cudaFree(b->ptr);
        free(b);
    }
}

static void empty_locked(bcu_allocator *a)
{
    release_list(&a->free_small);
    release_list(&a->free_large);
    a->stats.reserved -= a->stats.cached;
    a->stats.cached = 0;
}

void *bcu_alloc(cuda_device *d, size_t nbytes)
{
    if (!d) return NULL;
    bcu_allocator *a = &d->alloc;
    size_t size = round_size(nbytes);
    pthread_mutex_lock(&a->lock);
    bcu_block *b = take_cached(a, size);
    if (!b) {
        b = malloc(sizeof *b);
        void *p = NULL;
        cudaError_t e = b ? cudaMalloc(&p, size) : cudaErrorMemoryAllocation;
        /* (never during a capture: cudaFree would wait for the device) */
        if (b && e == cudaErrorMemoryAllocation && !a->capture) {
            cudaGetLastError(); /* clear the sticky-free error before retrying */
            empty_locked(a);
            e = cudaMalloc(&p, size);
        }
        if (e != cudaSuccess) {
            cudaGetLastError();
            free(b);
            pthread_mutex_unlock(&a->lock);
            return NULL; /* ops/ reports the OOM with the shape */
        }
        b->ptr = p;
        b->size = size;
        b->pool = a->capture;
        a->stats.num_device_mallocs++;
        a->stats.reserved += size;
    }
    size_t k = bucket_of(b->ptr);
    b->next = a->live[k];
    a->live[k] = b;
    a->stats.num_allocs++;
    a->stats.allocated += b->size;
    if (a->stats.allocated > a->stats.peak_allocated) a->stats.peak_allocated = a->stats.allocated;
    pthread_mutex_unlock(&a->lock);
    return b->ptr;
}

void bcu_free(cuda_device *d, void *p)
{
    if (!d || !p) return;
    bcu_allocator *a = &d->alloc;
    pthread_mutex_lock(&a->lock);
    for (bcu_block **pp = &a->live[bucket_of(p)]; *pp; pp = &(*pp)->next) {
        if ((*pp)->ptr != p) continue;
        bcu_block *b = *pp;
        *pp = b->next;
        /* a block freed during a capture may be written by the replays: the graph keeps it */
        if (a->capture) b->pool = a->capture;
        bool small = b->size <= SMALL_MAX;
        bcu_block **head = b->pool ? (small ? &b->pool->free_small : &b->pool->free_large)
                                   : (small ? &a->free_small : &a->free_large);
        b->next = *head;
        *head = b;
        a->stats.allocated -= b->size;
        a->stats.cached += b->size;
        break;
    }
    pthread_mutex_unlock(&a->lock);
}

bcu_pool *bcu_pool_open(cuda_device *d)
{
    bcu_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pthread_mutex_lock(&d->alloc.lock);
    d->alloc.capture = pool;
    pthread_mutex_unlock(&d->alloc.lock);
    return pool;
}

void bcu_pool_close(cuda_device *d)
{
    pthread_mutex_lock(&d->alloc.lock);
    d->alloc.capture = NULL;
    pthread_mutex_unlock(&d->alloc.lock);
}

static void splice(bcu_block **from, bcu_block **to)
{
    while (*from) {
        bcu_block *b = *from;
        *from = b->next;
        b->pool = NULL;
        b->next = *to;
        *to = b;
    }
}

/* The graph is gone: its free blocks join the general lists, and its blocks still held by
 * tensors will go there when freed. */
void bcu_pool_release(cuda_device *d, bcu_pool *pool)
{
    if (!pool) return;
    bcu_allocator *a = &d->alloc;
    pthread_mutex_lock(&a->lock);
    splice(&pool->free_small, &a->free_small);
    splice(&pool->free_large, &a->free_large);
    for (size_t k = 0; k < BCU_LIVE_BUCKETS; k++)
        for (bcu_block *b = a->live[k]; b; b = b->next)
            if (b->pool == pool) b->pool = NULL;
    if (a->capture == pool) a->capture = NULL;
    pthread_mutex_unlock(&a->lock);
    free(pool);
}

void bcu_alloc_stats(cuda_device *d, bn_cuda_memory_stats *out)
{
    pthread_mutex_lock(&d->alloc.lock);
    *out = d->alloc.stats;
    pthread_mutex_unlock(&d->alloc.lock);
}

bn_status bcu_alloc_empty_cache(cuda_device *d)
{
    /* blocks in the cache may still be read by queued kernels: wait for them first */
    bn_status st = bcu_check(cudaStreamSynchronize(d->stream), "cudaStreamSynchronize");
    pthread_mutex_lock(&d->alloc.lock);
    empty_locked(&d->alloc);
    pthread_mutex_unlock(&d->alloc.lock);
    return st;
}

/* ---- copies ---------------------------------------------------------------------------------- */
static bn_status staging_ready(cuda_device *d)
{
    if (d->staging[0]) return BN_OK;
    for (int k = 0; k < 2; k++) {
        bn_status st = bcu_check(cudaMallocHost(&d->staging[k], BCU_STAGING_BYTES),
                                 "cudaMallocHost (pinned staging buffer)");
        if (st == BN_OK)
            st = bcu_check(cudaEventCreateWithFlags(&d->staged[k], cudaEventDisableTiming),
                           "cudaEventCreate");
        if (st != BN_OK) return st;
    }
    return BN_OK;
}

/* During a capture: the data goes to pinned memory the graph keeps, and the capture records a
 * copy from there, so every replay copies the same data, as the eager step did. */
static bn_status captured_copy(cuda_device *d, void *dst, const void *src, size_t nbytes)
{
    bcu_host_chunk *c = malloc(sizeof *c);
    if (!c) return bcu_error(BN_ERR_OOM, "cuda backend: out of host memory");
    bn_status st = bcu_check(cudaMallocHost(&c->ptr, nbytes), "cudaMallocHost (graph capture)");
    if (st != BN_OK) {
        free(c);
        return st;
    }
    memcpy(c->ptr, src, nbytes);
    c->next = d->captured;
    d->captured = c;
    return bcu_check(cudaMemcpyAsync(dst, c->ptr, nbytes, cudaMemcpyHostToDevice, d->stream),
                     "cudaMemcpyAsync (host to device, captured)");
}

bn_status bcu_copy_from_host(void *dst, const void *src, size_t nbytes)
{
    cuda_device *d = bcu_current();
    if (!d) return bcu_error(BN_ERR_DEVICE, "cuda backend: no current device");
    if (nbytes == 0) return BN_OK;
    if (d->capturing) return captured_copy(d, dst, src, nbytes);
    if (nbytes < BCU_PINNED_MIN)
        return bcu_check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, d->stream),
                         "cudaMemcpyAsync (host to device)");
    pthread_mutex_lock(&d->staging_lock);
    bn_status st = staging_ready(d);
    for (size_t off = 0, k = 0; st == BN_OK && off < nbytes; off += BCU_STAGING_BYTES, k ^= 1) {
        size_t n = nbytes - off < BCU_STAGING_BYTES ? nbytes - off : BCU_STAGING_BYTES;
        st = bcu_check(cudaEventSynchronize(d->staged[k]), "cudaEventSynchronize");
        if (st != BN_OK) break;
        memcpy(d->staging[k], (const char *)src + off, n);
        st = bcu_check(cudaMemcpyAsync((char *)dst + off, d->staging[k], n, cudaMemcpyHostToDevice,
                                       d->stream),
                       "cudaMemcpyAsync (host to device)");
        if (st == BN_OK)
            st = bcu_check(cudaEventRecord(d->staged[k], d->stream), "cudaEventRecord");
    }
    pthread_mutex_unlock(&d->staging_lock);
    return st;
}

bn_status bcu_copy_to_host(void *dst, const void *src, size_t nbytes)
{
    cuda_device *d = bcu_current();
    if (!d) return bcu_error(BN_ERR_DEVICE, "cuda backend: no current device");
    if (nbytes == 0) return BN_OK;
    if (d->capturing) {
        d->capture_broken = true;
        return bcu_error(BN_ERR_UNSUPPORTED,
                         "cuda backend: a copy from cuda:%d to the host (bn_item, bn_tensor_to "
                         "the CPU, ...) cannot run while a CUDA graph is being captured: the "
                         "host would wait for work that has not run",
                         d->index);
    }
    if (nbytes < BCU_PINNED_MIN) {
        bn_status st =
            bcu_check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, d->stream),
                      "cudaMemcpyAsync (device to host)");
        if (st == BN_OK) st = bcu_check(cudaStreamSynchronize(d->stream), "cudaStreamSynchronize");
        return st;
    }
    pthread_mutex_lock(&d->staging_lock);
    bn_status st = staging_ready(d);
    /* chunk k+1 is in flight while chunk k is copied out of its staging buffer */
    size_t nchunks = (nbytes + BCU_STAGING_BYTES - 1) / BCU_STAGING_BYTES;
    for (size_t c = 0; st == BN_OK && c <= nchunks; c++) {
        if (c < nchunks) {
            size_t off = c * BCU_STAGING_BYTES, k = c & 1;
            size_t n = nbytes - off < BCU_STAGING_BYTES ? nbytes - off : BCU_STAGING_BYTES;
            st = bcu_check(cudaMemcpyAsync(d->staging[k], (const char *)src + off, n,
                                           cudaMemcpyDeviceToHost, d->stream),
                           "cudaMemcpyAsync (device to host)");
            if (st == BN_OK)
                st = bcu_check(cudaEventRecord(d->staged[k], d->stream), "cudaEventRecord");
        }
        if (st == BN_OK && c > 0) {
            size_t off = (c - 1) * BCU_STAGING_BYTES, k = (c - 1) & 1;
            size_t n = nbytes - off < BCU_STAGING_BYTES ? nbytes - off : BCU_STAGING_BYTES;
            st = bcu_check(cudaEventSynchronize(d->staged[k]), "cudaEventSynchronize");
            if (st == BN_OK) memcpy((char *)dst + off, d->staging[k], n);
        }
    }
    pthread_mutex_unlock(&d->staging_lock);
    return st;
}
