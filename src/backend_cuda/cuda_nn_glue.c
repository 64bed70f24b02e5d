/* backend_cuda/cuda_nn_glue.c — the plugin's bn_backend_nn table (backend_nn.h): converts each
 * slot's bn_tview arguments to bcu_view, takes the scratch memory the kernels in cuda_nn.cu ask
 * for from the caching allocator, and queues the kernels on the current device's stream. Only
 * embedding waits for the GPU: its contract reports an out-of-range index as an error, so it
 * reads back the kernel's "first bad position" word (8 bytes) before returning. */
#include "backend_cuda/cuda_ce.h"
#include "backend_cuda/cuda_nn.h"
#include "backend_cuda/cuda_plugin.h"

#define STREAM (bcu_current()->stream)
#define V(t) ((const bcu_view *)(const void *)(t))
#define VO(t) ((t) ? V(t) : NULL)

static bcu_row_geom row_geom(const bn_row_norm_geom *g)
{
    return (bcu_row_geom){g->rows, g->cols, g->groups, g->inner, g->rms};
}

/* Scratch device memory for one op, or NULL with BN_ERR_OOM set; a zero-byte request gives
 * NULL with no error. */
static void *scratch_alloc(size_t nbytes, const char *op, bn_status *st)
{
    *st = BN_OK;
    if (nbytes == 0) return NULL;
    void *p = bcu_alloc(bcu_current(), nbytes);
    if (!p)
        *st = bcu_error(BN_ERR_OOM, "cuda backend: %s: out of device memory for %zu bytes of "
                                    "scratch",
                        op, nbytes);
    return p;
}

/* The scratch block goes back to the cache at once: kernels of the device run in stream order,
 * so the next user of the block queues behind this op's kernels. */
static void scratch_free(void *p) { bcu_free(bcu_current(), p); }

/* ---- row norms --------------------------------------------------------------------------------- */
static bn_status k_row_norm(const bn_tview *x, const bn_tview *weight, const bn_tview *bias,
                            const bn_tview *y, const bn_tview *mean, const bn_tview *rstd,
                            const bn_row_norm_geom *g, double eps)
{
    bcu_row_geom rg = row_geom(g);
    return bcu_kernel_status(bcu_nn_row_norm(STREAM, V(x), VO(weight), VO(bias), V(y), V(mean),
                                             V(rstd), &rg, eps),
                             "row_norm");
}

static bn_status k_row_norm_backward(const bn_tview *grad_y, const bn_tview *x,
                                     const bn_tview *mean, const bn_tview *rstd,
                                     const bn_tview *weight, const bn_tview *grad_x,
                                     const bn_tview *grad_weight, const bn_tview *grad_bias,
                                     const bn_row_norm_geom *g)
{
    bcu_row_geom rg = row_geom(g);
    if ((grad_weight || grad_bias) &&
        bcu_nn_row_norm_backward_fused_ok(V(grad_y), V(x), VO(weight), VO(grad_x), &rg)) {
        /* layer / RMS norm rows of up to 1024 f32 columns: one pass gives all three */
        bn_status st;
        void *sc = scratch_alloc(bcu_nn_row_norm_backward_fused_scratch(&rg), "row_norm_backward",
                                 &st);
        if (st != BN_OK) return st;
        int rc = bcu_nn_row_norm_backward_fused(STREAM, V(grad_y), V(x), V(mean), V(rstd),
                                                VO(weight), VO(grad_x), VO(grad_weight),
                                                VO(grad_bias), &rg, sc);
        scratch_free(sc);
        return bcu_kernel_status(rc, "row_norm_backward");
    }
    if (grad_x) {
        int rc = bcu_nn_row_norm_grad_x(STREAM, V(grad_y), V(x), V(mean), V(rstd), VO(weight),
                                        V(grad_x), &rg);
        if (rc) return bcu_kernel_status(rc, "row_norm_backward");
    }
    if (!grad_weight && !grad_bias) return BN_OK;
    bn_status st;
    void *sc = scratch_alloc(bcu_nn_row_norm_affine_scratch(&rg), "row_norm_backward", &st);
    if (st != BN_OK) return st;
    int rc = bcu_nn_row_norm_grad_affine(STREAM, V(grad_y), V(x), V(mean), V(rstd),
                                         VO(grad_weight), VO(grad_bias), &rg, sc);
    scratch_free(sc);
    return bcu_kernel_status(rc, "row_norm_backward");
}

/* ---- batch norm --------------------------------------------------------------------------------- */
static void *bn_scratch(const bn_tview *x, const char *op, bn_status *st)
{
    return scratch_alloc(bcu_nn_batch_norm_scratch(x->shape[0], x->shape[1], x->shape[2]), op, st);
}

static bn_status k_batch_norm_stats(const bn_tview *x, const bn_tview *mean, const bn_tview *var)
{
    bn_status st;
    void *sc = bn_scratch(x, "batch_norm_stats", &st);
    if (st != BN_OK) return st;
    int rc = bcu_nn_batch_norm_stats(STREAM, V(x), V(mean), V(var), sc);
    scratch_free(sc);
    return bcu_kernel_status(rc, "batch_norm_stats");
}

static bn_status k_batch_norm_apply(const bn_tview *x, const bn_tview *mean, const bn_tview *var,
                                    const bn_tview *weight, const bn_tview *bias,
                                    const bn_tview *y, double eps)
{
    bn_status st;
    void *sc = bn_scratch(x, "batch_norm_apply", &st);
    if (st != BN_OK) return st;
    int rc = bcu_nn_batch_norm_apply(STREAM, V(x), V(mean), V(var), VO(weight), VO(bias), V(y),
                                     eps, sc);
    scratch_free(sc);
    return bcu_kernel_status(rc, "batch_norm_apply");
}

static bn_status k_batch_norm_backward(const bn_tview *grad_y, const bn_tview *x,
                                       const bn_tview *mean, const bn_tview *var,
                                       const bn_tview *weight, const bn_tview *grad_x,
                                       const bn_tview *grad_weight, const bn_tview *grad_bias,
                                       double eps, bool training)
{
    bn_status st;
    void *sc = bn_scratch(x, "batch_norm_backward", &st);
    if (st != BN_OK) return st;
    int rc = bcu_nn_batch_norm_backward(STREAM, V(grad_y), V(x), V(mean), V(var), VO(weight),
                                        VO(grad_x), VO(grad_weight), VO(grad_bias), eps, training,
                                        sc);
    scratch_free(sc);
    return bcu_kernel_status(rc, "batch_norm_backward");
}

static bn_status k_running_stats_update(const bn_tview *running_mean, const bn_tview *running_var,
                                        const bn_tview *mean, const bn_tview *var, double momentum,
                                        double unbias)
{
    return bcu_kernel_status(bcu_nn_running_stats_update(STREAM, V(running_mean), V(running_var),
                                                         V(mean), V(var), momentum, unbias),
                             "running_stats_update");
}

/* ---- dropout ------------------------------------------------------------------------------------ */
static bn_status k_dropout_mask(const bn_tview *mask, double p, uint64_t seed, uint64_t counter)
{
    double keep = p >= 1.0 ? 0.0 : 1.0 / (1.0 - p); /* as the CPU kernel computes it */
    return bcu_kernel_status(bcu_nn_dropout_mask(STREAM, V(mask), p, keep, seed, counter),
                             "dropout_mask");
}

/* ---- embedding ---------------------------------------------------------------------------------- */
static bn_status k_embedding(const bn_tview *weight, const bn_tview *indices, const bn_tview *out)
{
    if (indices->dtype != BN_I64 && indices->dtype != BN_I32)
        return bcu_error(BN_ERR_UNSUPPORTED, "embedding: indices must be i32 or i64, not %s",
                         bcu_dtype_name((int)indices->dtype));
    int64_t M = indices->ndim ? indices->shape[0] : 1, num = weight->shape[0];
    if (M == 0) return BN_OK;
    bn_status st;
    unsigned long long *bad = scratch_alloc(sizeof *bad, "embedding", &st);
    if (st != BN_OK) return st;
    cudaStream_t s = STREAM;
    st = bcu_check(cudaMemsetAsync(bad, 0xff, sizeof *bad, s), "cudaMemsetAsync");
    if (st == BN_OK) st = bcu_kernel_status(bcu_nn_embedding(s, V(weight), V(indices), V(out), bad),
                                            "embedding");
    unsigned long long first = ~0ull;
    /* while a CUDA graph is captured nothing can be read back: a bad index's row is NaN */
    if (bcu_current()->capturing) {
        scratch_free(bad);
        return st;
    }
    if (st == BN_OK) st = bcu_copy_to_host(&first, bad, sizeof first);
    scratch_free(bad);
    if (st != BN_OK || first == ~0ull) return st;
    /* the same message as the CPU kernel, naming the first bad index in order */
    size_t es = indices->dtype == BN_I64 ? 8 : 4;
    const char *at = (const char *)indices->data +
                     (int64_t)first * (indices->ndim ? indices->strides[0] : 0) * (int64_t)es;
    int64_t v = 0;
    if (es == 8) {
        st = bcu_copy_to_host(&v, at, 8);
    } else {
        int32_t v32 = 0;
        st = bcu_copy_to_host(&v32, at, 4);
        v = v32;
    }
    if (st != BN_OK) return st;
    return bcu_error(BN_ERR_ARG,
                     "bn_embedding: index %lld is out of range for a weight with %lld rows "
                     "(indices must be in [0, %lld))",
                     (long long)v, (long long)num, (long long)num);
}

static bn_status k_embedding_backward(const bn_tview *grad_out, const bn_tview *indices,
                                      const bn_tview *grad_weight)
{
    int64_t M = indices->ndim ? indices->shape[0] : 1;
    size_t n = bcu_nn_embedding_backward_scratch(M, grad_weight->shape[0]);
    bn_status st;
    void *sc = scratch_alloc(n, "embedding_backward", &st);
    if (st != BN_OK) return st;
    int rc = bcu_nn_embedding_backward(STREAM, V(grad_out), V(indices), V(grad_weight), sc, n);
    scratch_free(sc);
    return bcu_kernel_status(rc, "embedding_backward");
}

/* ---- cross-entropy rows (cuda_ce.cu) -------------------------------------------------------------- */
static bn_status k_ce_rows_forward(const bn_tview *z, const bn_tview *target, const bn_tview *lse,
                                   const bn_tview *zt, const bn_tview *zsum)
{
    return bcu_kernel_status(bcu_ce_rows_forward(STREAM, V(z), V(target), V(lse), V(zt), VO(zsum)),
                             "ce_rows_forward");
}

static bn_status k_ce_rows_backward(const bn_tview *z, const bn_tview *target, const bn_tview *lse,
                                    const bn_tview *gr, double smoothing, const bn_tview *dz)
{
    return bcu_kernel_status(
        bcu_ce_rows_backward(STREAM, V(z), V(target), V(lse), V(gr), smoothing, V(dz)),
        "ce_rows_backward");
}

static bn_status k_ce_rows_fused(const bn_tview *z, const bn_tview *target, const bn_tview *lse,
                                 const bn_tview *zt, const bn_tview *zsum, const bn_tview *gr,
                                 double smoothing, const bn_tview *dz)
{
    return bcu_kernel_status(bcu_ce_rows_fused(STREAM, V(z), V(target), V(lse), V(zt), VO(zsum),
                                               V(gr), smoothing, V(dz)),
                             "ce_rows_fused");
}

const bn_backend_nn bcu_nn = {
    .row_norm = k_row_norm,
    .row_norm_backward = k_row_norm_backward,
    .batch_norm_stats = k_batch_norm_stats,
    .batch_norm_apply = k_batch_norm_apply,
    .batch_norm_backward = k_batch_norm_backward,
    .running_stats_update = k_running_stats_update,
    .dropout_mask = k_dropout_mask,
    .embedding = k_embedding,
    .embedding_backward = k_embedding_backward,
    .ce_rows_forward = k_ce_rows_forward,
    .ce_rows_backward = k_ce_rows_backward,
    .ce_rows_fused = k_ce_rows_fused,
};
