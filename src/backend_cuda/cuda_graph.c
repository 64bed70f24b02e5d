/* backend_cuda/cuda_graph.c — CUDA graphs (born/cuda.h bn_cuda_graph_*): the work one thread
 * queues on a device's stream between graph_begin and graph_end is captured (not run) and
 * instantiated once; each launch replays all of it with one call. While a capture is open the
 * caching allocator serves it from a pool private to the graph (cuda_memory.c), host data
 * copied to the device is kept in pinned memory the graph owns, and anything that would make
 * the host wait for the device fails with a message. */
#include "backend_cuda/cuda_plugin.h"

#include <stdlib.h>

typedef struct bcu_graph {
    int device;
    cudaGraphExec_t exec;
    bcu_pool *pool;
    bcu_host_chunk *host; /* pinned copies the captured host-to-device copies read */
} bcu_graph;

static void free_chunks(bcu_host_chunk *c)
{
    while (c) {
        bcu_host_chunk *next = c->next;
        cudaFreeHost(c->ptr);
        free(c);
        c = next;
    }
}

bn_status bcu_graph_begin(int device)
{
    cuda_device *d = bcu_select(device);
    if (!d) return BN_ERR_DEVICE;
    if (d->capturing)
        return bcu_error(BN_ERR_ARG,
                         "bn_cuda_graph_begin: a capture of cuda:%d is already open (end it with "
                         "bn_cuda_graph_end first)",
                         device);
    if (!bcu_pool_open(d)) return bcu_error(BN_ERR_OOM, "bn_cuda_graph_begin: out of host memory");
    /* relaxed: the allocator may cudaMalloc new blocks for the graph's pool during the capture */
    bn_status st = bcu_check(cudaStreamBeginCapture(d->stream, cudaStreamCaptureModeRelaxed),
                             "cudaStreamBeginCapture");
    if (st != BN_OK) {
        bcu_pool *pool = d->alloc.capture;
        bcu_pool_close(d);
        bcu_pool_release(d, pool);
        return st;
    }
    d->capturing = true;
    d->capture_broken = false;
    d->captured = NULL;
    return BN_OK;
}

bn_status bcu_graph_end(int device, void **out)
{
    *out = NULL;
    cuda_device *d = bcu_select(device);
    if (!d) return BN_ERR_DEVICE;
    if (!d->capturing)
        return bcu_error(BN_ERR_ARG,
                         "bn_cuda_graph_end: no capture of cuda:%d is open (bn_cuda_graph_begin "
                         "starts one)",
                         device);
    bcu_pool *pool = d->alloc.capture;
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(d->stream, &g);
    bool broken = d->capture_broken;
    d->capturing = d->capture_broken = false;
    bcu_pool_close(d);
    bcu_host_chunk *host = d->captured;
    d->captured = NULL;
    bcu_graph *gr = NULL;
    cudaGraphExec_t exec = NULL;
    bn_status st = BN_OK;
    if (e != cudaSuccess || !g) {
        cudaGetLastError();
        st = bcu_error(BN_ERR_UNSUPPORTED,
                       "bn_cuda_graph_end: the capture of cuda:%d was invalidated (%s): "
                       "something inside it made the host wait for the device or used a call "
                       "a graph cannot record",
                       device, cudaGetErrorString(e));
    } else if (broken) {
        st = bcu_error(BN_ERR_UNSUPPORTED,
                       "bn_cuda_graph_end: an operation inside the capture of cuda:%d was "
                       "refused (a read back to the host); the graph would be incomplete",
                       device);
    } else {
        st = bcu_check(cudaGraphInstantiate(&exec, g, 0), "cudaGraphInstantiate");
        gr = st == BN_OK ? malloc(sizeof *gr) : NULL;
        if (st == BN_OK && !gr) st = bcu_error(BN_ERR_OOM, "bn_cuda_graph_end: out of memory");
    }
    if (g) cudaGraphDestroy(g); /* the instantiated graph keeps what it needs */
    if (st != BN_OK) {
        if (exec) cudaGraphExecDestroy(exec);
        cudaStreamSynchronize(d->stream);
        cudaGetLastError();
        free_chunks(host);
        bcu_pool_release(d, pool);
        return st;
    }
    *gr = (bcu_graph){.device = device, .exec = exec, .pool = pool, .host = host};
    *out = gr;
    return BN_OK;
}

bn_status bcu_graph_launch(void *graph)
{
    bcu_graph *g = graph;
    cuda_device *d = bcu_select(g->device);
    if (!d) return BN_ERR_DEVICE;
    if (d->capturing)
        return bcu_error(BN_ERR_ARG,
                         "bn_cuda_graph_replay: cuda:%d is capturing a graph; end the capture "
                         "before replaying one",
                         g->device);
    return bcu_check(cudaGraphLaunch(g->exec, d->stream), "cudaGraphLaunch");
}

void bcu_graph_free(void *graph)
{
    bcu_graph *g = graph;
    if (!g) return;
    cuda_device *d = bcu_select(g->device);
    if (d) cudaStreamSynchronize(d->stream); /* its replays may still read the pool */
    cudaGraphExecDestroy(g->exec);
    free_chunks(g->host);
    if (d) bcu_pool_release(d, g->pool);
    free(g);
}
