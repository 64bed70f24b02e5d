/* backend/cpu/nn.c — the nn kernel family's table (backend_nn.h), with the dropout mask and the
 * embedding gather / scatter-add kernels; the norms live in norm.c. */
#include "backend/backend_nn.h"
#include "backend/cpu/ce_rows.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/iter.h"
#include "backend/cpu/nn_kernels.h"
#include "core/philox.h"

#include <string.h>

/* mask (n elements, contiguous, any float dtype): 1/(1-p) where u >= p, else 0 */
static bn_status cpu_dropout_mask(const bn_tview *mask, double p, uint64_t seed, uint64_t counter)
{
    int64_t n = 1;
    for (int d = 0; d < mask->ndim; d++) n *= mask->shape[d];
    size_t es = bn_dtype_size(mask->dtype);
    double keep = p >= 1.0 ? 0.0 : 1.0 / (1.0 - p);
    char *out = mask->data;
    int64_t nblocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n >= BN_PAR_MIN_ELEMS)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        bn_philox_block r = bn_philox4x32_10(seed, counter + (uint64_t)blk);
        for (int64_t k = 0; k < 4 && blk * 4 + k < n; k++) {
            double v = (double)bn_philox_u01_f32(r.v[k]) >= p ? keep : 0.0;
            int64_t i = blk * 4 + k;
            if (mask->dtype == BN_F32)
                ((float *)out)[i] = (float)v;
            else if (mask->dtype == BN_F64)
                ((double *)out)[i] = v;
            else
                bn__store_f64(out + (size_t)i * es, mask->dtype, v);
        }
    }
    return BN_OK;
}

static int64_t index_at(const bn_tview *indices, int64_t m)
{
    int64_t s = indices->strides[0] * m;
    return indices->dtype == BN_I64 ? ((const int64_t *)indices->data)[s]
                                    : (int64_t)((const int32_t *)indices->data)[s];
}

/* weight (num, dim) any strides; indices (M); out (M, dim) contiguous */
static bn_status cpu_embedding(const bn_tview *weight, const bn_tview *indices, const bn_tview *out)
{
    if (indices->dtype != BN_I64 && indices->dtype != BN_I32)
        return bn__error(BN_ERR_UNSUPPORTED, "embedding: indices must be i32 or i64, not %s",
                         bn_dtype_name(indices->dtype));
    int64_t M = indices->shape[0], num = weight->shape[0], dim = weight->shape[1];
    for (int64_t m = 0; m < M; m++) {
        int64_t i = index_at(indices, m);
        if (i < 0 || i >= num)
            return bn__error(BN_ERR_ARG,
                             "bn_embedding: index %lld is out of range for a weight with %lld "
                             "rows (indices must be in [0, %lld))",
                             (long long)i, (long long)num, (long long)num);
    }
    int64_t es = (int64_t)bn_dtype_size(weight->dtype);
    const char *w = weight->data;
    char *o = out->data;
    bool rows_contiguous = weight->strides[1] == 1 || dim <= 1;
#pragma omp parallel for schedule(static) if (M * dim >= BN_PAR_MIN_ELEMS)
    for (int64_t m = 0; m < M; m++) {
        const char *src = w + index_at(indices, m) * weight->strides[0] * es;
        char *dst = o + m * dim * es;
        if (rows_contiguous) {
            memcpy(dst, src, (size_t)(dim * es));
        } else {
            for (int64_t j = 0; j < dim; j++)
                memcpy(dst + j * es, src + j * weight->strides[1] * es, (size_t)es);
        }
    }
    return BN_OK;
}

#define EMB_COL_CHUNK 32

/* grad_out (M, dim), grad_weight (num, dim) contiguous f32/f64. Threads split the columns, and
 * each column sums its rows in index order, so the result does not depend on the thread count. */
static bn_status cpu_embedding_backward(const bn_tview *grad_out, const bn_tview *indices,
                                        const bn_tview *grad_weight)
{
    bn_dtype dt = grad_out->dtype;
    if (dt != BN_F32 && dt != BN_F64)
        return bn__error(BN_ERR_UNSUPPORTED,
                         "embedding_backward: the CPU kernel supports f32 and f64, not %s",
                         bn_dtype_name(dt));
    int64_t M = indices->shape[0], num = grad_weight->shape[0], dim = grad_weight->shape[1];
    memset(grad_weight->data, 0, (size_t)(num * dim) * bn_dtype_size(dt));
    int64_t nchunks = (dim + EMB_COL_CHUNK - 1) / EMB_COL_CHUNK;
#pragma omp parallel for schedule(static) if (M * dim >= BN_PAR_MIN_ELEMS)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        int64_t j0 = ch * EMB_COL_CHUNK, j1 = j0 + EMB_COL_CHUNK < dim ? j0 + EMB_COL_CHUNK : dim;
        for (int64_t m = 0; m < M; m++) {
            int64_t row = index_at(indices, m);
            if (dt == BN_F32) {
                const float *g = (const float *)grad_out->data + m * dim;
                float *gw = (float *)grad_weight->data + row * dim;
                for (int64_t j = j0; j < j1; j++) gw[j] += g[j];
            } else {
                const double *g = (const double *)grad_out->data + m * dim;
                double *gw = (double *)grad_weight->data + row * dim;
                for (int64_t j = j0; j < j1; j++) gw[j] += g[j];
            }
        }
    }
    return BN_OK;
}

const bn_backend_nn bn_cpu_nn = {
    .row_norm = bn_cpu_row_norm,
    .row_norm_backward = bn_cpu_row_norm_backward,
    .batch_norm_stats = bn_cpu_batch_norm_stats,
    .batch_norm_apply = bn_cpu_batch_norm_apply,
    .batch_norm_backward = bn_cpu_batch_norm_backward,
    .running_stats_update = bn_cpu_running_stats_update,
    .dropout_mask = cpu_dropout_mask,
    .embedding = cpu_embedding,
    .embedding_backward = cpu_embedding_backward,
    .ce_rows_forward = bn_cpu_ce_rows_forward,
    .ce_rows_backward = bn_cpu_ce_rows_backward,
};
