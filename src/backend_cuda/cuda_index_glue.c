/* backend_cuda/cuda_index_glue.c — the bn_backend slots for indexing on the GPU (index_select,
 * gather, scatter, sort, topk, tri): plain C that hands bn_tview (mirrored by bcu_view) to the
 * kernels of cuda_index.cu on the current device's stream, takes their scratch memory from the
 * caching allocator, and reads back the bad-index flag.
 *
 * Reading the flag back is the one host synchronisation here: the contract wants a bad index
 * reported as BN_ERR_ARG naming its value, and only the device sees the data. While the stream
 * is being captured into a CUDA graph no synchronisation is allowed, so there the check is
 * skipped (bad indices are still never written through). */
#include "backend_cuda/cuda_index.h"
#include "backend_cuda/cuda_plugin.h"

#define V(t) ((const bcu_view *)(const void *)(t))

static bn_status no_device(const char *op)
{
    return bcu_error(BN_ERR_DEVICE, "cuda backend: %s: no current CUDA device", op);
}

static bool capturing(cudaStream_t s)
{
    enum cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(s, &st) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return st != cudaStreamCaptureStatusNone;
}

/* Device memory for the bad-index flag, or NULL (and *st = BN_OK) while capturing. */
static uint64_t *flag_alloc(cuda_device *d, const char *op, bn_status *st)
{
    *st = BN_OK;
    if (capturing(d->stream)) return NULL;
    uint64_t *f = bcu_alloc(d, 2 * sizeof(uint64_t));
    if (!f)
        *st = bcu_error(BN_ERR_OOM, "cuda backend: %s: out of device memory for the index check",
                        op);
    return f;
}

/* BN_ERR_ARG naming the bad index (the CPU kernels' message) when the flag holds one. */
static bn_status flag_check(cuda_device *d, const uint64_t *flag, int dim, int64_t size)
{
    uint64_t h[2] = {UINT64_MAX, 0};
    bn_status st = bcu_check(
        cudaMemcpyAsync(h, flag, sizeof h, cudaMemcpyDeviceToHost, d->stream), "cudaMemcpyAsync");
    if (st == BN_OK) st = bcu_check(cudaStreamSynchronize(d->stream), "cudaStreamSynchronize");
    if (st == BN_OK && h[0] != UINT64_MAX)
        st = bcu_error(BN_ERR_ARG, "index %lld is out of range for dim %d of size %lld",
                       (long long)(int64_t)h[1], dim, (long long)size);
    return st;
}

/* Scratch of n bytes (NULL when n is 0); *st is BN_ERR_OOM when it cannot be had. */
static void *scratch_alloc(cuda_device *d, size_t n, const char *op, bn_status *st)
{
    *st = BN_OK;
    if (n == 0) return NULL;
    void *p = bcu_alloc(d, n);
    if (!p)
        *st = bcu_error(BN_ERR_OOM, "cuda backend: %s: out of device memory for %zu bytes of scratch",
                        op, n);
    return p;
}

bn_status bcu_be_index_select(const bn_tview *x, int dim, const bn_tview *index,
                              const bn_tview *out)
{
    cuda_device *d = bcu_current();
    if (!d) return no_device("index_select");
    bn_status st;
    uint64_t *flag = flag_alloc(d, "index_select", &st);
    if (st != BN_OK) return st;
    st = bcu_kernel_status(bcu_index_select(d->stream, V(x), dim, V(index), V(out), flag),
                           "index_select");
    if (st == BN_OK && flag) st = flag_check(d, flag, dim, x->shape[dim]);
    bcu_free(d, flag);
    return st;
}

bn_status bcu_be_gather(const bn_tview *x, int dim, const bn_tview *index, const bn_tview *out)
{
    cuda_device *d = bcu_current();
    if (!d) return no_device("gather");
    bn_status st;
    uint64_t *flag = flag_alloc(d, "gather", &st);
    if (st != BN_OK) return st;
    st = bcu_kernel_status(bcu_index_gather(d->stream, V(x), dim, V(index), V(out), flag),
                           "gather");
    if (st == BN_OK && flag) st = flag_check(d, flag, dim, x->shape[dim]);
    bcu_free(d, flag);
    return st;
}

bn_status bcu_be_scatter(bn_scatter_op op, const bn_tview *out, int dim, const bn_tview *index,
                         const bn_tview *src)
{
    cuda_device *d = bcu_current();
    if (!d) return no_device("scatter");
    size_t bytes = bcu_index_scatter_scratch((int)op, V(out), dim, V(index));
    bn_status st;
    void *scratch = scratch_alloc(d, bytes, "scatter", &st);
    if (st != BN_OK) return st;
    uint64_t *flag = flag_alloc(d, "scatter", &st);
    if (st == BN_OK) {
        st = bcu_kernel_status(bcu_index_scatter(d->stream, (int)op, V(out), dim, V(index), V(src),
                                                 scratch, bytes, flag),
                               "scatter");
        if (st == BN_OK && flag) st = flag_check(d, flag, dim, out->shape[dim]);
    }
    bcu_free(d, flag);
    bcu_free(d, scratch);
    return st;
}

/* sort (k = x's size along dim) and topk share the kernel: the first k of each sorted line */
static bn_status sort_first(const char *op, const bn_tview *x, int dim, int64_t k, bool descending,
                            const bn_tview *values, const bn_tview *indices)
{
    cuda_device *d = bcu_current();
    if (!d) return no_device(op);
    if (!values && !indices) return BN_OK;
    size_t bytes = bcu_index_sort_scratch(V(x), dim, k);
    bn_status st;
    void *scratch = scratch_alloc(d, bytes, op, &st);
    if (st != BN_OK) return st;
    st = bcu_kernel_status(bcu_index_sort(d->stream, V(x), dim, k, descending,
                                          values ? V(values) : NULL, indices ? V(indices) : NULL,
                                          scratch, bytes),
                           op);
    bcu_free(d, scratch); /* stream-ordered: the next user of the block queues after the sort */
    return st;
}

bn_status bcu_be_sort(const bn_tview *x, int dim, bool descending, const bn_tview *values,
                      const bn_tview *indices)
{
    return sort_first("sort", x, dim, x->shape[dim], descending, values, indices);
}

bn_status bcu_be_topk(const bn_tview *x, int64_t k, int dim, bool largest, const bn_tview *values,
                      const bn_tview *indices)
{
    return sort_first("topk", x, dim, k, largest, values, indices);
}

bn_status bcu_be_tri(const bn_tview *x, const bn_tview *out, int64_t diagonal, bool upper)
{
    cuda_device *d = bcu_current();
    if (!d) return no_device("tril/triu");
    return bcu_kernel_status(bcu_index_tri(d->stream, V(x), V(out), diagonal, upper),
                             upper ? "triu" : "tril");
}
