/* backend_cuda/cuda_plugin.h — private to the CUDA plugin's C glue: per-device state, the caching
 * allocator, copies, cuBLAS matmul and the error helpers. */
#ifndef BORN_CUDA_PLUGIN_H
#define BORN_CUDA_PLUGIN_H

#include "backend/backend_conv.h"
#include "backend/backend_nn.h"
#include "backend_cuda/cuda_kernels.h"
#include "backend/plugin.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <pthread.h>

#define BCU_MAX_DEVICES 16
#define BCU_LIVE_BUCKETS 4096
#define BCU_STAGING_BYTES ((size_t)4 << 20) /* each of the two pinned staging buffers */
#define BCU_PINNED_MIN ((size_t)64 << 10)   /* transfers from this size go through them */

struct bcu_pool;

typedef struct bcu_block {
    void *ptr;
    size_t size;
    struct bcu_pool *pool; /* the CUDA graph whose private pool it is in; NULL: the general one */
    struct bcu_block *next;
} bcu_block;

/* A CUDA graph's private pool: the free blocks only that graph's capture may take. Every block
 * allocated or freed during a capture joins its graph's pool, so no allocation outside the
 * capture reuses memory a replay writes; the pool goes back to the general lists when the graph
 * is freed. */
typedef struct bcu_pool {
    bcu_block *free_small, *free_large;
} bcu_pool;

/* Size classes: up to 1 MiB rounded to 512 bytes and reused only at that exact size; above,
 * rounded to 2 MiB and reused by the smallest cached block at most twice the request. */
typedef struct bcu_allocator {
    pthread_mutex_t lock;
    bcu_block *free_small, *free_large;
    bcu_block *live[BCU_LIVE_BUCKETS]; /* pointer -> size of blocks held by tensors */
    bcu_pool *capture;                 /* the pool of the graph being captured, or NULL */
    bn_cuda_memory_stats stats;
} bcu_allocator;

/* Pinned host copies of the data a capture copied to the device (the graph replays the copy). */
typedef struct bcu_host_chunk {
    void *ptr;
    struct bcu_host_chunk *next;
} bcu_host_chunk;

typedef struct cuda_device {
    int index;
    bool ready;
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;      /* cuBLASLt, for products with epilogues (NULL: none) */
    bcu_allocator alloc;
    void *staging[2]; /* pinned host memory, allocated on first large transfer */
    cudaEvent_t staged[2];
    pthread_mutex_t staging_lock;
    void *blas_workspace;     /* cuBLAS's workspace, set explicitly so graphs can capture it */
    bool capturing;           /* a CUDA graph capture of this device's stream is open */
    bool capture_broken;      /* something was refused inside it: graph_end fails */
    bcu_host_chunk *captured; /* host data copied during the open capture */
} cuda_device;

/* The calling thread's current device (set by select), or NULL before any. */
cuda_device *bcu_current(void);

/* Sets the thread's error through libborn (message formatted here) and returns code. */
bn_status bcu_error(bn_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bn_status bcu_check(cudaError_t e, const char *what);
bn_status bcu_kernel_status(int rc, const char *op);

/* cuda_memory.c */
void *bcu_alloc(cuda_device *d, size_t nbytes);
void bcu_free(cuda_device *d, void *p);
void bcu_alloc_stats(cuda_device *d, bn_cuda_memory_stats *out);
bn_status bcu_alloc_empty_cache(cuda_device *d);
bn_status bcu_copy_to_host(void *dst, const void *src, size_t nbytes);
bn_status bcu_copy_from_host(void *dst, const void *src, size_t nbytes);
/* Capture bookkeeping for cuda_graph.c: opens the device's private pool (begin) and closes it,
 * giving it to the graph (end); bcu_pool_release hands a freed graph's pool back. */
bcu_pool *bcu_pool_open(cuda_device *d);
void bcu_pool_close(cuda_device *d);
void bcu_pool_release(cuda_device *d, bcu_pool *pool);

/* cuda_graph.c: the plugin table's graph entries */
bn_status bcu_graph_begin(int device);
bn_status bcu_graph_end(int device, void **graph);
bn_status bcu_graph_launch(void *graph);
void bcu_graph_free(void *graph);
/* cuda_backend.c: makes index the thread's current device (NULL, error set, on failure) */
cuda_device *bcu_select(int index);

/* cuda_matmul.c; bcu_allow_tf32 is set at load from BORN_CUDA_TF32 and by set_allow_tf32 */
extern bool bcu_allow_tf32;
bn_status bcu_blas_init(cuda_device *d);
bn_status bcu_matmul(const bn_tview *a, const bn_tview *b, const bn_tview *out);
bn_status bcu_linear_bias(const bn_tview *x, const bn_tview *w, const bn_tview *bias,
                          const bn_tview *out);

#endif
