/* backend_cuda/cuda_matmul.c — matmul through cuBLAS (cublasGemmStridedBatchedEx): f32 (f32
 * math, or TF32 tensor cores when BORN_CUDA_TF32=1), f64, and f16/bf16 with f32 accumulation.
 *
 * born's matrices are row-major; cuBLAS's are column-major. out = a·b row-major is
 * out^T = b^T·a^T column-major, so b goes first. Each operand's last two dims must be row- or
 * column-major with one leading dimension, and its batch dims must collapse into one stride (0
 * for a broadcast batch); an operand that is neither is first copied to a contiguous temporary
 * (the copy kernel, on the same stream). out must be row-major too, or the product is written to
 * a temporary and copied back. */
#include "backend_cuda/cuda_plugin.h"

#include <stdlib.h>
#include <string.h>

bn_status bcu_blas_init(cuda_device *d)
{
    if (cublasCreate(&d->blas) != CUBLAS_STATUS_SUCCESS)
        return bcu_error(BN_ERR_INTERNAL, "cuBLAS: cublasCreate failed on cuda:%d", d->index);
    cublasSetStream(d->blas, d->stream);
    /* an explicit workspace: cuBLAS then allocates nothing per call, which CUDA graph captures
     * need (its size is NVIDIA's recommendation for Hopper) */
    const size_t ws = (size_t)32 << 20;
    if (cudaMalloc(&d->blas_workspace, ws) == cudaSuccess)
        cublasSetWorkspace(d->blas, d->blas_workspace, ws);
    else
        cudaGetLastError(), d->blas_workspace = NULL;
    cublasSetMathMode(d->blas, __atomic_load_n(&bcu_allow_tf32, __ATOMIC_RELAXED)
                                   ? CUBLAS_TF32_TENSOR_OP_MATH
                                   : CUBLAS_DEFAULT_MATH);
    return BN_OK;
}

/* How cuBLAS sees one (rows, cols) matrix of a row-major operand. */
typedef struct mat_layout {
    bool row_major; /* else column-major */
    int64_t ld;
    int64_t batch_stride;
} mat_layout;

static bool layout_of(const bn_tview *t, mat_layout *m)
{
    int nd = t->ndim;
    int64_t r = t->shape[nd - 2], c = t->shape[nd - 1];
    int64_t sr = t->strides[nd - 2], sc = t->strides[nd - 1];
    if ((sc == 1 || c == 1) && (r == 1 || sr >= (c > 1 ? c : 1))) {
        m->row_major = true;
        m->ld = r == 1 ? (c > 1 ? c : 1) : sr;
    } else if ((sr == 1 || r == 1) && (c == 1 || sc >= (r > 1 ? r : 1))) {
        m->row_major = false;
        m->ld = c == 1 ? (r > 1 ? r : 1) : sc;
    } else {
        return false;
    }
    /* batch dims collapse when each stride is the next one times its size (size-1 dims skipped) */
    int64_t stride = 0;
    bool have = false;
    for (int d = nd - 3; d >= 0; d--) {
        if (t->shape[d] == 1) continue;
        if (!have) {
            stride = t->strides[d];
            have = true;
            continue;
        }
        int64_t inner = 1; /* product of the non-1 batch sizes inside d */
        for (int e = d + 1; e < nd - 2; e++) inner *= t->shape[e];
        if (t->strides[d] != stride * inner) return false;
    }
    m->batch_stride = stride;
    return true;
}

static int64_t batch_count(const bn_tview *out)
{
    int64_t n = 1;
    for (int d = 0; d < out->ndim - 2; d++) n *= out->shape[d];
    return n;
}

/* A contiguous copy of t on the device (tmp receives its view); NULL on failure. */
static void *contiguous_copy(cuda_device *dev, const bn_tview *t, bn_tview *tmp)
{
    size_t es = t->dtype == BN_F64 ? 8 : t->dtype == BN_F32 ? 4 : 2;
    int64_t n = 1;
    *tmp = *t;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tmp->strides[d] = n;
        n *= t->shape[d];
    }
    void *p = bcu_alloc(dev, (size_t)n * es);
    if (!p) {
        bcu_error(BN_ERR_OOM, "cuda matmul: out of memory for a %lld-element temporary",
                  (long long)n);
        return NULL;
    }
    tmp->data = p;
    /* a broadcast batch (stride 0) stays broadcast: only the layout of each matrix matters */
    if (bcu_kernel_status(bcu_copy(dev->stream, (const bcu_view *)(const void *)t,
                                   (const bcu_view *)(const void *)tmp),
                          "matmul operand copy") != BN_OK) {
        bcu_free(dev, p);
        return NULL;
    }
    return p;
}

static bn_status gemm(cuda_device *dev, const bn_tview *a, const mat_layout *la, const bn_tview *b,
                      const mat_layout *lb, const bn_tview *out, const mat_layout *lo)
{
    int nd = out->ndim;
    int m = (int)out->shape[nd - 2], n = (int)out->shape[nd - 1], k = (int)a->shape[nd - 1];
    cudaDataType_t type;
    cublasComputeType_t compute;
    float one_f = 1.0f, zero_f = 0.0f;
    double one_d = 1.0, zero_d = 0.0;
    const void *alpha = &one_f, *beta = &zero_f;
    switch (out->dtype) {
    case BN_F32:
        type = CUDA_R_32F;
        compute = CUBLAS_COMPUTE_32F;
        {
            cublasMath_t mode;
            if (cublasGetMathMode(dev->blas, &mode) == CUBLAS_STATUS_SUCCESS &&
                (mode & CUBLAS_TF32_TENSOR_OP_MATH))
                compute = CUBLAS_COMPUTE_32F_FAST_TF32;
        }
        break;
    case BN_F64:
        type = CUDA_R_64F;
        compute = CUBLAS_COMPUTE_64F;
        alpha = &one_d;
        beta = &zero_d;
        break;
    case BN_F16:
        type = CUDA_R_16F;
        compute = CUBLAS_COMPUTE_32F;
        break;
    case BN_BF16:
        type = CUDA_R_16BF;
        compute = CUBLAS_COMPUTE_32F;
        break;
    default:
        return bcu_error(BN_ERR_UNSUPPORTED, "the CUDA backend has no matmul for dtype %s yet",
                         bcu_dtype_name((int)out->dtype));
    }
    /* column-major: out^T (n x m) = b^T (n x k) · a^T (k x m) */
    cublasOperation_t opb = lb->row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
    cublasOperation_t opa = la->row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
    cublasStatus_t s =
        cublasGemmStridedBatchedEx(dev->blas, opb, opa, n, m, k, alpha, b->data, type, (int)lb->ld,
                                   lb->batch_stride, a->data, type, (int)la->ld, la->batch_stride,
                                   beta, out->data, type, (int)lo->ld, lo->batch_stride,
                                   (int)batch_count(out), compute, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS)
        return bcu_error(BN_ERR_INTERNAL, "cuBLAS: cublasGemmStridedBatchedEx failed (status %d)",
                         (int)s);
    return BN_OK;
}

/* a (..., M, K), b (..., K, N), out (..., M, N); same ndim, batch dims broadcast; one dtype */
bn_status bcu_matmul(const bn_tview *a, const bn_tview *b, const bn_tview *out)
{
    cuda_device *dev = bcu_current();
    int nd = out->ndim;
    int64_t m = out->shape[nd - 2], n = out->shape[nd - 1], k = a->shape[nd - 1];
    if (m > 0x7fffffff || n > 0x7fffffff || k > 0x7fffffff)
        return bcu_error(BN_ERR_UNSUPPORTED, "cuda matmul: a dimension exceeds 2^31");
    if (batch_count(out) == 0 || m == 0 || n == 0) return BN_OK;
    if (k == 0)
        return bcu_kernel_status(bcu_fill(dev->stream, (const bcu_view *)(const void *)out, 0.0),
                                 "matmul fill");
    bn_tview av = *a, bv = *b, ov = *out;
    void *ta = NULL, *tb = NULL, *to = NULL;
    mat_layout la, lb, lo;
    bn_status st = BN_OK;
    if (!layout_of(&av, &la)) {
        ta = contiguous_copy(dev, a, &av);
        if (!ta || !layout_of(&av, &la)) st = BN_ERR_OOM;
    }
    if (st == BN_OK && !layout_of(&bv, &lb)) {
        tb = contiguous_copy(dev, b, &bv);
        if (!tb || !layout_of(&bv, &lb)) st = BN_ERR_OOM;
    }
    if (st == BN_OK &&
        (!layout_of(&ov, &lo) || !lo.row_major || (lo.batch_stride == 0 && batch_count(out) > 1))) {
        to = contiguous_copy(dev, out, &ov); /* contents are overwritten */
        if (!to || !layout_of(&ov, &lo)) st = BN_ERR_OOM;
    }
    if (st == BN_OK) st = gemm(dev, &av, &la, &bv, &lb, &ov, &lo);
    if (st == BN_OK && to)
        st = bcu_kernel_status(bcu_copy(dev->stream, (const bcu_view *)(const void *)&ov,
                                        (const bcu_view *)(const void *)out),
                               "matmul result copy");
    /* freed blocks are reused only by later work on this stream: safe */
    bcu_free(dev, ta);
    bcu_free(dev, tb);
    bcu_free(dev, to);
    return st;
}
