/* backend_cuda/cuda_matmul.c — matmul through cuBLAS (cublasGemmStridedBatchedEx): f32 (f32
 * math, or TF32 tensor cores when BORN_CUDA_TF32=1), f64, and f16/bf16 with f32 accumulation.
 *
 * born's matrices are row-major; cuBLAS's are column-major. out = a·b row-major is
 * out^T = b^T·a^T column-major, so b goes first. Each operand's last two dims must be row- or
 * column-major with one leading dimension, and its batch dims must collapse into one stride (0
 * for a broadcast batch); an operand that is neither is first copied to a contiguous temporary
 * (the copy kernel, on the same stream). out must be row-major too, or the product is written to
 * a temporary and copied back.
 *
 * bcu_linear_bias runs x w^T + bias as one cuBLASLt product with the BIAS epilogue (the bias is
 * added to the f32 accumulator in the GEMM's last stage): no separate pass over the output. */
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
    if (cublasLtCreate(&d->lt) != CUBLAS_STATUS_SUCCESS) d->lt = NULL; /* matmul + add instead */
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

/* ---- linear with the bias in the epilogue (cuBLASLt) ----------------------------------------- */
/* The rows of a 2-D view with stride-1 elements: its leading dimension, or 0 when it has none. */
static int64_t row_ld(const bn_tview *t)
{
    if (t->ndim != 2) return 0;
    int64_t r = t->shape[0], c = t->shape[1];
    if (c > 1 && t->strides[1] != 1) return 0;
    int64_t ld = r > 1 ? t->strides[0] : c;
    return ld >= c && ld > 0 ? ld : 0;
}

/* The largest power of two (up to 256) that p's address is a multiple of. */
static uint32_t alignment_of(const void *p)
{
    uint32_t a = 256;
    while (a > 1 && ((uintptr_t)p & (a - 1)) != 0) a >>= 1;
    return a;
}

bn_status bcu_linear_bias(const bn_tview *x, const bn_tview *w, const bn_tview *bias,
                          const bn_tview *out)
{
    cuda_device *dev = bcu_current();
    if (!dev || !dev->lt) return BN_ERR_UNSUPPORTED;
    cudaDataType_t type;
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    switch (out->dtype) {
    case BN_F32:
        type = CUDA_R_32F;
        if (__atomic_load_n(&bcu_allow_tf32, __ATOMIC_RELAXED))
            compute = CUBLAS_COMPUTE_32F_FAST_TF32;
        break;
    case BN_F16: type = CUDA_R_16F; break;
    case BN_BF16: type = CUDA_R_16BF; break;
    default: return BN_ERR_UNSUPPORTED;
    }
    int64_t M = x->shape[0], K = x->shape[1], N = w->shape[0];
    int64_t ldx = row_ld(x), ldw = row_ld(w), ldo = row_ld(out);
    if (!ldx || !ldw || !ldo || M < 1 || N < 1 || K < 1 || M > INT32_MAX || N > INT32_MAX ||
        K > INT32_MAX || bias->ndim != 1 || (N > 1 && bias->strides[0] != 1) ||
        x->dtype != out->dtype || w->dtype != out->dtype || bias->dtype != out->dtype ||
        alignment_of(bias->data) < 16)
        return BN_ERR_UNSUPPORTED;
    /* the heuristic otherwise assumes 256-byte aligned operands */
    uint32_t align[4] = {alignment_of(w->data), alignment_of(x->data), alignment_of(out->data),
                         alignment_of(out->data)};
    const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    /* column-major: out^T (N x M) = w (K x N)^T . x^T (K x M), bias along out^T's rows */
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    bn_status st = BN_ERR_UNSUPPORTED;
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    const void *bp = bias->data;
    size_t ws = dev->blas_workspace ? (size_t)32 << 20 : 0;
    if (cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type,
                                       sizeof type) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatrixLayoutCreate(&la, type, (uint64_t)K, (uint64_t)N, ldw) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatrixLayoutCreate(&lb, type, (uint64_t)K, (uint64_t)M, ldx) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatrixLayoutCreate(&lc, type, (uint64_t)N, (uint64_t)M, ldo) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                             sizeof ws) == CUBLAS_STATUS_SUCCESS) {
        for (int i = 0; i < 4; i++)
            cublasLtMatmulPreferenceSetAttribute(pref, align_attr[i], &align[i], sizeof align[i]);
        cublasLtMatmulHeuristicResult_t h;
        int found = 0;
        if (cublasLtMatmulAlgoGetHeuristic(dev->lt, op, la, lb, lc, lc, pref, 1, &h, &found) ==
                CUBLAS_STATUS_SUCCESS &&
            found > 0) {
            float one = 1.0f, zero = 0.0f;
            cublasStatus_t s =
                cublasLtMatmul(dev->lt, op, &one, w->data, la, x->data, lb, &zero, out->data, lc,
                               out->data, lc, &h.algo, dev->blas_workspace, ws, dev->stream);
            st = s == CUBLAS_STATUS_SUCCESS         ? BN_OK
                 : s == CUBLAS_STATUS_NOT_SUPPORTED ? BN_ERR_UNSUPPORTED /* matmul + add */
                                                    : bcu_error(BN_ERR_INTERNAL,
                                                                "cuBLASLt: cublasLtMatmul failed "
                                                                "(status %d)",
                                                                (int)s);
        }
    }
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    return st;
}
