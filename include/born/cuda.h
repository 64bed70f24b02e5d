/* born/cuda.h — the CUDA backend as the C API sees it: how many GPUs the plugin found, and the
 * statistics of its caching allocator. The CUDA code lives in a plugin (libborn-cuda.so) that
 * libborn loads with dlopen on first use; libborn itself links no CUDA library. Without the
 * plugin or without a GPU these functions still work: bn_cuda_device_count returns 0 and the
 * others fail with BN_ERR_DEVICE and a message saying why.
 *
 * Where the plugin is looked for: $BORN_CUDA_PLUGIN (a path) if set, else libborn-cuda.so beside
 * the file holding libborn (the shared library or the program that links it statically), else
 * the dynamic linker's search path. */
#ifndef BORN_CUDA_H
#define BORN_CUDA_H

#include "born/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Statistics of one device's caching allocator, in bytes (counts where named so). */
typedef struct bn_cuda_memory_stats {
    uint64_t allocated;      /* held by live tensors now (rounded to the allocator's block sizes) */
    uint64_t cached;         /* free blocks kept for reuse */
    uint64_t peak_allocated; /* the most `allocated` has been since the plugin loaded */
    uint64_t reserved;       /* allocated + cached: what cudaMalloc handed out and is still held */
    uint64_t num_device_mallocs; /* cudaMalloc calls so far (a count) */
    uint64_t num_allocs;         /* allocations served, from the cache or not (a count) */
} bn_cuda_memory_stats;

/* The number of CUDA devices; 0 when the plugin is missing, fails to load or finds no GPU. */
BN_API int bn_cuda_device_count(void);
/* Why bn_cuda_device_count() is 0 (a static string), or NULL when there are devices. */
BN_API const char *bn_cuda_unavailable_reason(void);
/* The device's name ("NVIDIA H100 80GB HBM3") into buf (NUL-terminated, truncated to n). */
BN_API bn_status bn_cuda_device_name(int device, char *buf, size_t n);
BN_API bn_status bn_cuda_memory_stats_get(int device, bn_cuda_memory_stats *out);
/* Returns the cached free blocks of a device to the driver (cudaFree). */
BN_API bn_status bn_cuda_empty_cache(int device);
/* Waits until all work queued on the device's stream has finished. */
BN_API bn_status bn_cuda_synchronize(int device);
/* Lets f32 matrix products on every CUDA device use TF32 tensor cores (10-bit mantissa inputs,
 * f32 accumulation; about 8x faster on an H100, relative error ~1e-3) — PyTorch's
 * torch.backends.cuda.matmul.allow_tf32. Off by default; BORN_CUDA_TF32=1 in the environment
 * turns it on at load. BN_ERR_DEVICE when there is no CUDA plugin. */
BN_API bn_status bn_cuda_set_allow_tf32(bool allow);

/* ---- CUDA graphs ----------------------------------------------------------------------------
 * A training step of static shapes can be captured once and replayed with one launch, which
 * removes the host's per-kernel cost (PyTorch's torch.cuda.CUDAGraph). Between begin and end
 * the calling thread's work on the device is recorded, not run: born builds tensors, runs ops
 * and autograd as usual, but no result is computed until a replay. Rules:
 *  - Inputs must be static: a replay reads the same device addresses the capture read, so copy
 *    each new batch into the tensors the capture used (bn_copy_) before replaying.
 *  - Tensors made during the capture come from a memory pool private to the graph; those still
 *    alive at the end (e.g. the gradients) are written again by every replay.
 *  - Nothing inside may read a value on the host (bn_item, bn_tensor_to the CPU, ...) or
 *    synchronise: the capture fails with BN_ERR_UNSUPPORTED. Random numbers (dropout, bn_rand)
 *    are refused by bn_cuda_graph_end, since every replay would repeat the same draws. Scalars
 *    passed by value (an optimizer's learning rate and bias corrections) are frozen at capture:
 *    run the optimizer step outside the graph, after each replay.
 *  - Host data copied to the device during the capture (a constant made on the CPU) is kept by
 *    the graph and copied again by every replay.
 *  - Input checks that need a value on the host are not errors inside a capture but poison the
 *    result: a class index out of range makes bn_cross_entropy's loss and gradient NaN.
 * One capture per thread at a time. */
typedef struct bn_cuda_graph bn_cuda_graph;

/* Starts capturing the calling thread's work on cuda:device. */
BN_API bn_status bn_cuda_graph_begin(int device);
/* Ends the capture of cuda:device and instantiates it; NULL (error set) when the capture failed
 * — something inside waited for the device or drew random numbers — or there was none. */
BN_API bn_cuda_graph *bn_cuda_graph_end(int device);
/* Queues one replay of everything captured (asynchronous, like the ops themselves). */
BN_API bn_status bn_cuda_graph_replay(bn_cuda_graph *g);
/* Waits for the graph's replays, then frees it and returns its memory pool to the allocator.
 * NULL is ignored. */
BN_API void bn_cuda_graph_free(bn_cuda_graph *g);

#ifdef __cplusplus
}
#endif

#endif
