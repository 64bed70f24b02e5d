/* backend_cuda/cuda_common.cu — host helpers the kernels share: geometry setup, launch checks
 * and the per-thread error message. */
#include "backend_cuda/cuda_common.cuh"

#include <stdarg.h>
#include <stdio.h>

static thread_local char message[512];

extern "C" const char *bcu_last_message(void) { return message; }

int unsupported(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return BCU_ERR_UNSUPPORTED;
}

int launch_status(const char *what)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return BCU_OK;
    snprintf(message, sizeof message, "CUDA %s kernel launch failed: %s", what,
             cudaGetErrorString(e));
    return BCU_ERR_INTERNAL;
}

extern "C" const char *bcu_dtype_name(int dtype)
{
    static const char *const names[] = {"f32", "f64", "f16", "bf16", "i8",
                                        "u8",  "i32", "i64", "bool"};
    return dtype >= 0 && dtype <= BCU_BOOL ? names[dtype] : "?";
}

size_t dtype_size(int dtype)
{
    static const size_t sizes[] = {4, 8, 2, 2, 1, 1, 4, 8, 1};
    return dtype >= 0 && dtype <= BCU_BOOL ? sizes[dtype] : 0;
}

static bool is_contiguous(const int64_t *shape, const int64_t *st, int ndim)
{
    int64_t want = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        if (shape[d] != 1 && st[d] != want) return false;
        want *= shape[d];
    }
    return true;
}

/* Dims of size 1 are dropped and a dim is merged into the next when every operand steps over
 * both as one (stride[d] == stride[d + 1] * shape[d + 1]), so a broadcast bias over (N, D) stays
 * 2-D and a contiguous tensor 1-D; offsets fit 32-bit arithmetic whenever the element count and
 * every operand's reach do (geo_at<1..4> then divides in 32 bits, by a multiply). */
Geo make_geo(const bcu_view *const *ops, int nops)
{
    Geo g;
    g.nops = nops;
    g.n = 1;
    g.contig = true;
    g.ndim = 0;
    int nd = ops[0]->ndim;
    for (int d = 0; d < nd; d++) g.n *= ops[0]->shape[d];
    for (int k = 0; k < nops; k++)
        if (!is_contiguous(ops[0]->shape, ops[k]->strides, nd)) g.contig = false;
    for (int d = 0; d < nd; d++) {
        int64_t len = ops[0]->shape[d];
        if (len == 1 && g.n != 0) continue;
        bool merge = g.ndim > 0;
        for (int k = 0; merge && k < nops; k++)
            merge = g.st[k][g.ndim - 1] == ops[k]->strides[d] * len;
        if (merge) {
            g.shape[g.ndim - 1] *= len;
            for (int k = 0; k < nops; k++) g.st[k][g.ndim - 1] = ops[k]->strides[d];
            continue;
        }
        g.shape[g.ndim] = len;
        for (int k = 0; k < nops; k++) g.st[k][g.ndim] = ops[k]->strides[d];
        g.ndim++;
    }
    for (int k = nops; k < BCU_OPS; k++) /* geo_offsets walks BCU_OPS operands */
        for (int d = 0; d < BCU_MAX_DIMS; d++) g.st[k][d] = 0;
    geo_index_width(g);
    return g;
}

void geo_index_width(Geo &g)
{
    int nops = g.nops;
    g.i32 = g.n <= INT32_MAX;
    for (int k = 0; g.i32 && k < nops; k++) {
        int64_t reach = 0;
        for (int d = 0; d < g.ndim; d++)
            reach += (g.shape[d] - 1) * (g.st[k][d] < 0 ? -g.st[k][d] : g.st[k][d]);
        g.i32 = reach <= INT32_MAX;
    }
    for (int d = 0; d < BCU_MAX_DIMS; d++)
        g.div[d] = FastDiv<uint32_t>::make(g.i32 && d < g.ndim && g.shape[d] > 0 ? g.shape[d] : 1);
}

bool geo_pack(const Geo &g, const void *const *ptrs, size_t esize, int V, Geo *out)
{
    int last = g.ndim - 1;
    if (g.contig || last < 0 || g.shape[last] % V != 0) return false;
    for (int k = 0; k < g.nops; k++) {
        if (g.st[k][last] != 1 || !aligned_to(ptrs[k], esize * (size_t)V)) return false;
        for (int d = 0; d < last; d++)
            if (g.st[k][d] % V != 0) return false;
    }
    *out = g;
    out->shape[last] /= V;
    out->n /= V;
    for (int k = 0; k < g.nops; k++)
        for (int d = 0; d < last; d++) out->st[k][d] /= V;
    geo_index_width(*out);
    return true;
}
