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

Geo make_geo(const bcu_view *const *ops, int nops)
{
    Geo g;
    g.ndim = ops[0]->ndim;
    g.nops = nops;
    g.n = 1;
    g.contig = true;
    for (int d = 0; d < g.ndim; d++) {
        g.shape[d] = ops[0]->shape[d];
        g.n *= g.shape[d];
    }
    for (int k = 0; k < nops; k++) {
        for (int d = 0; d < g.ndim; d++) g.st[k][d] = ops[k]->strides[d];
        if (!is_contiguous(g.shape, g.st[k], g.ndim)) g.contig = false;
    }
    return g;
}
