/* ops/conv_buffers.c — a small cache of CPU buffers for the convolution and pooling ops.
 *
 * A training step allocates the same few large buffers again and again (im2col columns, conv
 * outputs, pooling indices, their gradients: megabytes each). Fresh from malloc, each is a fresh
 * mmap whose every page faults and is zeroed by the kernel on first touch; on this machine that
 * cost as much as the convolutions themselves. Here a released buffer goes back to a bounded
 * cache (its tensor's free_fn) and the next request of at most its size reuses it, with its
 * pages already mapped. The cache holds at most CACHE_SLOTS buffers and CACHE_MAX_BYTES in all,
 * none larger than BUFFER_MAX_BYTES; it is guarded by one mutex (taken twice per buffer, next
 * to megabytes of work). Buffers stay cached until the process ends. */
#include "ops/conv_buffers.h"

#include <pthread.h>
#include <stdlib.h>

#define CACHE_SLOTS 24
#define BUFFER_MAX_BYTES ((size_t)64 << 20)
#define CACHE_MAX_BYTES ((size_t)256 << 20)
#define ALIGN 64

typedef struct cached {
    void *data;
    size_t cap;
} cached;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cached slots[CACHE_SLOTS];
static size_t cached_bytes;

/* The smallest cached buffer of at least n bytes, taken out of the cache; NULL when none is. */
static void *take(size_t n, size_t *cap)
{
    pthread_mutex_lock(&lock);
    int best = -1;
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (slots[i].data && slots[i].cap >= n && slots[i].cap <= 2 * n &&
            (best < 0 || slots[i].cap < slots[best].cap))
            best = i;
    void *p = NULL;
    if (best >= 0) {
        p = slots[best].data, *cap = slots[best].cap;
        cached_bytes -= slots[best].cap;
        slots[best] = (cached){0};
    }
    pthread_mutex_unlock(&lock);
    return p;
}

/* free_fn of the tensors made here: ctx carries the buffer's capacity. */
static void give_back(void *data, void *ctx)
{
    size_t cap = (size_t)(uintptr_t)ctx;
    bool kept = false;
    pthread_mutex_lock(&lock);
    if (cap <= BUFFER_MAX_BYTES && cached_bytes + cap <= CACHE_MAX_BYTES)
        for (int i = 0; i < CACHE_SLOTS && !kept; i++)
            if (!slots[i].data) {
                slots[i] = (cached){data, cap};
                cached_bytes += cap;
                kept = true;
            }
    pthread_mutex_unlock(&lock);
    if (!kept) free(data);
}

bn_tensor *bn__conv_empty(const int64_t *shape, int ndim, bn_dtype dt, bn_device d)
{
    size_t n = bn_dtype_size(dt);
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (d.type != BN_DEVICE_CPU || n < ((size_t)64 << 10) || n > BUFFER_MAX_BYTES)
        return bn__empty(shape, ndim, dt, d);
    size_t cap = 0;
    void *p = take(n, &cap);
    if (!p) {
        cap = (n + ALIGN - 1) / ALIGN * ALIGN;
        if (posix_memalign(&p, ALIGN, cap) != 0) return bn__empty(shape, ndim, dt, d);
    }
    bn_tensor *t = bn__wrap(p, n, shape, ndim, dt, d, give_back, (void *)(uintptr_t)cap);
    if (!t) give_back(p, (void *)(uintptr_t)cap);
    return t;
}
