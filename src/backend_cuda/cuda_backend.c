/* backend_cuda/cuda_backend.c — the CUDA plugin's glue (plain C): the plugin entry point and its
 * versioned table, per-device state (one non-blocking stream, one cuBLAS handle, pinned staging
 * buffers), host<->device copies and the bn_backend vtable, whose kernels live in cuda_*.cu and
 * cuda_matmul.c. The vtable's functions act on the calling thread's current device, which
 * select() sets. Nothing here falls back to the CPU: a missing kernel is BN_ERR_UNSUPPORTED. */
#include "backend_cuda/cuda_plugin.h"

#include "backend_cuda/cuda_attention.h"
#include "backend_cuda/cuda_conv.h"
#include "backend_cuda/cuda_index.h"
#include "backend_cuda/cuda_nn.h"
#include "backend_cuda/cuda_optim.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(bcu_view) == sizeof(bn_tview), "bcu_view must mirror bn_tview");
_Static_assert(BN_BINARY_RELU_GRAD == 8 && BN_BINARY_SILU_GRAD == 11 && BN_BINARY_EQ == 12 &&
                   BN_BINARY_XOR == 20,
               "cuda_math.cu's B_* codes mirror bn_binary_op");
_Static_assert(offsetof(bcu_view, strides) == offsetof(bn_tview, strides), "bcu_view layout");
_Static_assert(BCU_MAX_DIMS == BN_MAX_DIMS, "BCU_MAX_DIMS");

static const bn_plugin_host *host;
static int device_total;
static char why_text[256];
static cuda_device devices[BCU_MAX_DEVICES];
static _Thread_local int current = -1;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

bn_status bcu_error(bn_status code, const char *fmt, ...)
{
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return host ? host->error(code, msg) : code;
}

bn_status bcu_check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return BN_OK;
    return bcu_error(e == cudaErrorMemoryAllocation ? BN_ERR_OOM : BN_ERR_INTERNAL,
                     "CUDA: %s failed: %s", what, cudaGetErrorString(e));
}

bn_status bcu_kernel_status(int rc, const char *op)
{
    if (rc == 0) return BN_OK;
    return bcu_error((bn_status)rc, "cuda backend: %s: %s", op, bcu_last_message());
}

cuda_device *bcu_current(void) { return current >= 0 ? &devices[current] : NULL; }

/* ---- devices ------------------------------------------------------------------------------- */
static bool device_init(int index)
{
    cuda_device *d = &devices[index];
    if (__atomic_load_n(&d->ready, __ATOMIC_ACQUIRE)) return true;
    pthread_mutex_lock(&init_lock);
    bool ok = d->ready;
    if (!ok) {
        d->index = index;
        pthread_mutex_init(&d->alloc.lock, NULL);
        pthread_mutex_init(&d->staging_lock, NULL);
        ok = bcu_check(cudaSetDevice(index), "cudaSetDevice") == BN_OK &&
             bcu_check(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking),
                       "cudaStreamCreate") == BN_OK &&
             bcu_blas_init(d) == BN_OK;
        if (ok) __atomic_store_n(&d->ready, true, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_lock);
    return ok;
}

static const bn_backend cuda_backend;

static const bn_backend *select_device(int index)
{
    if (index < 0 || index >= device_total) {
        bcu_error(BN_ERR_DEVICE, "cuda:%d does not exist (%d devices)", index, device_total);
        return NULL;
    }
    if (!device_init(index)) return NULL;
    if (current != index) {
        if (bcu_check(cudaSetDevice(index), "cudaSetDevice") != BN_OK) return NULL;
        current = index;
    }
    return &cuda_backend;
}

cuda_device *bcu_select(int index) { return select_device(index) ? &devices[index] : NULL; }

static int device_count(void) { return device_total; }
static const char *why(void) { return why_text; }

static bn_status device_name(int index, char *buf, size_t n)
{
    struct cudaDeviceProp p;
    bn_status st = bcu_check(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties");
    if (st == BN_OK && n) snprintf(buf, n, "%s", p.name);
    return st;
}

static bn_status synchronize_device(int index)
{
    if (!select_device(index)) return BN_ERR_DEVICE;
    if (devices[index].capturing)
        return bcu_error(BN_ERR_UNSUPPORTED,
                         "bn_cuda_synchronize: cuda:%d is capturing a CUDA graph; nothing queued "
                         "since bn_cuda_graph_begin has run yet",
                         index);
    return bcu_check(cudaStreamSynchronize(devices[index].stream), "cudaStreamSynchronize");
}

static bn_status memory_stats(int index, bn_cuda_memory_stats *out)
{
    if (!select_device(index)) return BN_ERR_DEVICE;
    bcu_alloc_stats(&devices[index], out);
    return BN_OK;
}

bool bcu_allow_tf32;

/* Applies to the devices initialised already and, through bcu_blas_init, to later ones. */
static void set_allow_tf32(bool allow)
{
    pthread_mutex_lock(&init_lock);
    __atomic_store_n(&bcu_allow_tf32, allow, __ATOMIC_RELAXED);
    for (int i = 0; i < device_total; i++)
        if (devices[i].ready)
            cublasSetMathMode(devices[i].blas,
                              allow ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    pthread_mutex_unlock(&init_lock);
}

static bn_status empty_cache(int index)
{
    if (!select_device(index)) return BN_ERR_DEVICE;
    return bcu_alloc_empty_cache(&devices[index]);
}

/* ---- memory and copies (current device) ------------------------------------------------------ */
static void *cuda_alloc(size_t nbytes) { return bcu_alloc(bcu_current(), nbytes); }
static void cuda_free(void *p) { bcu_free(bcu_current(), p); }

static void vsync(void)
{
    cuda_device *d = bcu_current();
    if (d && !d->capturing) bcu_check(cudaStreamSynchronize(d->stream), "cudaStreamSynchronize");
}

/* ---- the vtable: kernels that forward to cuda_*.cu ------------------------------------------- */
#define STREAM (bcu_current()->stream)
#define V(t) ((const bcu_view *)(const void *)(t))

static bn_status k_copy(const bn_tview *src, const bn_tview *dst)
{
    return bcu_kernel_status(bcu_copy(STREAM, V(src), V(dst)), "copy");
}
static bn_status k_fill(const bn_tview *dst, double v)
{
    return bcu_kernel_status(bcu_fill(STREAM, V(dst), v), "fill");
}
static bn_status k_sequence(bn_sequence_op op, const bn_tview *dst, double start, double step,
                            double end)
{
    return bcu_kernel_status(bcu_sequence(STREAM, (int)op, V(dst), start, step, end), "sequence");
}
static bn_status k_random(bn_random_op op, const bn_tview *dst, uint64_t seed, uint64_t counter,
                          double a, double b)
{
    return bcu_kernel_status(bcu_random(STREAM, (int)op, V(dst), seed, counter, a, b), "random");
}
static bn_status k_unary(bn_unary_op op, const bn_tview *x, const bn_tview *out,
                         const bn_unary_params *p)
{
    bcu_unary_params q = {0, 0, 0, 0, false, false};
    if (p) q = (bcu_unary_params){p->alpha, p->beta, p->lo, p->hi, p->has_lo, p->has_hi};
    return bcu_kernel_status(bcu_unary(STREAM, (int)op, V(x), V(out), &q), "unary");
}
static bn_status k_binary(bn_binary_op op, const bn_tview *a, const bn_tview *b,
                          const bn_tview *out)
{
    return bcu_kernel_status(bcu_binary(STREAM, (int)op, V(a), V(b), V(out)), "binary");
}
static bn_status k_where(const bn_tview *c, const bn_tview *a, const bn_tview *b,
                         const bn_tview *out)
{
    return bcu_kernel_status(bcu_where(STREAM, V(c), V(a), V(b), V(out)), "where");
}
static bn_status k_reduce(bn_reduce_op op, const bn_tview *x, const bn_tview *out, uint32_t mask,
                          const bn_reduce_params *p)
{
    cuda_device *d = bcu_current();
    size_t n = bcu_reduce_scratch((int)op, V(x), V(out), mask);
    void *scratch = n ? bcu_alloc(d, n) : NULL; /* without it: the one-block-per-output path */
    bn_status st = bcu_kernel_status(
        bcu_reduce(STREAM, (int)op, V(x), V(out), mask, p ? p->correction : 0, scratch,
                   scratch ? n : 0),
        "reduce");
    if (scratch) bcu_free(d, scratch); /* stream-ordered: the next user queues after the kernel */
    return st;
}
static bn_status k_cumsum(const bn_tview *x, const bn_tview *out, int dim)
{
    return bcu_kernel_status(bcu_cumsum(STREAM, V(x), V(out), dim), "cumsum");
}
static bn_status k_softmax(const bn_tview *x, const bn_tview *out, int dim, bool log)
{
    return bcu_kernel_status(bcu_softmax(STREAM, V(x), V(out), dim, log), "softmax");
}

static const bn_backend cuda_backend = {
    .name = "cuda",
    .type = BN_DEVICE_CUDA,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .copy_to_host = bcu_copy_to_host,
    .copy_from_host = bcu_copy_from_host,
    .synchronize = vsync,
    .copy = k_copy,
    .fill = k_fill,
    .sequence = k_sequence,
    .random = k_random,
    .unary = k_unary,
    .binary = k_binary,
    .where = k_where,
    .reduce = k_reduce,
    .cumsum = k_cumsum,
    .softmax = k_softmax,
    .matmul = bcu_matmul,
    .linear_bias = bcu_linear_bias,
    .index_select = bcu_be_index_select,
    .gather = bcu_be_gather,
    .scatter = bcu_be_scatter,
    .sort = bcu_be_sort,
    .topk = bcu_be_topk,
    .tri = bcu_be_tri,
    .conv = &bcu_conv,
    .nn = &bcu_nn,
    .optim = &bcu_optim,
    .attn = &bcu_attn,
};

/* ---- the entry point ------------------------------------------------------------------------- */
static const bn_plugin plugin_table = {
    .abi_version = BN_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(bn_plugin),
    .name = "cuda",
    .type = BN_DEVICE_CUDA,
    .device_count = device_count,
    .why = why,
    .select = select_device,
    .device_name = device_name,
    .memory_stats = memory_stats,
    .empty_cache = empty_cache,
    .synchronize = synchronize_device,
    .graph_begin = bcu_graph_begin,
    .graph_end = bcu_graph_end,
    .graph_launch = bcu_graph_launch,
    .graph_free = bcu_graph_free,
    .set_allow_tf32 = set_allow_tf32,
};

__attribute__((visibility("default"))) const bn_plugin *bn_plugin_entry(const bn_plugin_host *h)
{
    if (!h || h->abi_version != BN_PLUGIN_ABI_VERSION || h->struct_size != sizeof(bn_plugin_host) ||
        h->backend_size != sizeof(bn_backend))
        return NULL;
    host = h;
    const char *tf32 = getenv("BORN_CUDA_TF32");
    bcu_allow_tf32 = tf32 && strcmp(tf32, "1") == 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why_text, sizeof why_text, "the CUDA plugin found no usable GPU: %s",
                 cudaGetErrorString(e));
        n = 0;
    } else if (n == 0) {
        snprintf(why_text, sizeof why_text, "the CUDA plugin found no GPU");
    }
    device_total = n > BCU_MAX_DEVICES ? BCU_MAX_DEVICES : n;
    return &plugin_table;
}
