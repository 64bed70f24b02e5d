/* backend/backend_nn.h — the normalisation, dropout and embedding kernel family.
 *
 * The norm kernels work on f32 and f64 only (ops/nn.c converts f16 and bf16 to f32 and rounds
 * the result once) and return BN_ERR_UNSUPPORTED for any other dtype; statistics are accumulated
 * in double, one row or channel per thread at a time, so results do not depend on the thread
 * count. Every tensor here is contiguous unless its comment says otherwise. */
#ifndef BORN_BACKEND_NN_H
#define BORN_BACKEND_NN_H

#include "backend/backend.h"

/* Layer, RMS and group norm all normalise the rows of x viewed as (rows, cols). The affine
 * weight/bias entry of element (r, k) is channel (r % groups) * (cols / inner) + k / inner:
 *   layer / RMS norm over the last dims: groups 1, inner 1   (channel = k)
 *   group norm of (N, C, S) with G groups: rows N*G, cols (C/G)*S, groups G, inner S. */
typedef struct bn_row_norm_geom {
    int64_t rows, cols;
    int64_t groups, inner;
    bool rms; /* RMS norm: no centring; mean is written as 0 */
} bn_row_norm_geom;

typedef struct bn_backend_nn {
    /* ---- row norms (layer, RMS, group) ---- */
    /* x, y (rows, cols); weight, bias (channels) or NULL; mean, rstd (rows) are written.
     * y = (x - mean) * rstd * weight + bias, rstd = 1 / sqrt(biased var + eps)
     * (RMS: y = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps)). */
    bn_status (*row_norm)(const bn_tview *x, const bn_tview *weight, const bn_tview *bias,
                          const bn_tview *y, const bn_tview *mean, const bn_tview *rstd,
                          const bn_row_norm_geom *g, double eps);
    /* grad_y, x (rows, cols); mean, rstd (rows) as row_norm wrote them; weight (channels) or
     * NULL. Each of grad_x (rows, cols), grad_weight, grad_bias (channels) may be NULL (not
     * wanted) and is overwritten otherwise. */
    bn_status (*row_norm_backward)(const bn_tview *grad_y, const bn_tview *x, const bn_tview *mean,
                                   const bn_tview *rstd, const bn_tview *weight,
                                   const bn_tview *grad_x, const bn_tview *grad_weight,
                                   const bn_tview *grad_bias, const bn_row_norm_geom *g);

    /* ---- batch norm: x is (N, C, S), statistics per channel ---- */
    /* mean and var (C) = each channel's mean and biased variance over N and S. */
    bn_status (*batch_norm_stats)(const bn_tview *x, const bn_tview *mean, const bn_tview *var);
    /* y (N, C, S) = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]; mean, var (C);
     * weight, bias (C) or NULL. */
    bn_status (*batch_norm_apply)(const bn_tview *x, const bn_tview *mean, const bn_tview *var,
                                  const bn_tview *weight, const bn_tview *bias, const bn_tview *y,
                                  double eps);
    /* The adjoint of batch_norm_apply. training: mean/var are x's own batch statistics (their
     * dependence on x counts); otherwise they are constants (running stats). grad_x (N, C, S),
     * grad_weight, grad_bias (C) may each be NULL and are overwritten otherwise. */
    bn_status (*batch_norm_backward)(const bn_tview *grad_y, const bn_tview *x,
                                     const bn_tview *mean, const bn_tview *var,
                                     const bn_tview *weight, const bn_tview *grad_x,
                                     const bn_tview *grad_weight, const bn_tview *grad_bias,
                                     double eps, bool training);
    /* running_mean, running_var (C) any float dtype, any stride, updated in place:
     * running = (1 - momentum) * running + momentum * batch, where the batch variance is
     * var * unbias (M / (M - 1), torch's unbiased estimate). mean, var (C) f32/f64. */
    bn_status (*running_stats_update)(const bn_tview *running_mean, const bn_tview *running_var,
                                      const bn_tview *mean, const bn_tview *var, double momentum,
                                      double unbias);

    /* ---- dropout ---- */
    /* mask (any float dtype, n elements) = 1/(1-p) where the Philox draw u >= p, else 0. Element i
     * uses word i % 4 of block counter + i / 4 (u in [0, 1) with 24 bits), so it is the same for
     * any thread count; ops/ reserved ceil(n / 4) blocks. p == 1 gives all zeros. */
    bn_status (*dropout_mask)(const bn_tview *mask, double p, uint64_t seed, uint64_t counter);

    /* ---- embedding ---- */
    /* weight (num, dim) any dtype, any strides; indices (M) i32 or i64; out (M, dim) of weight's
     * dtype: out[m] = weight[indices[m]]. An index outside [0, num) is BN_ERR_ARG naming it. */
    bn_status (*embedding)(const bn_tview *weight, const bn_tview *indices, const bn_tview *out);
    /* grad_out (M, dim) f32/f64; indices (M) i32/i64 already range-checked; grad_weight
     * (num, dim) is overwritten with the scatter-add of grad_out's rows, summed in index order
     * (deterministic). */
    bn_status (*embedding_backward)(const bn_tview *grad_out, const bn_tview *indices,
                                    const bn_tview *grad_weight);

    /* ---- cross-entropy rows (the chunks of bn_linear_cross_entropy); optional ----
     * NULL: ops/linear_ce.c and its rule compose them of generic ops. z (R, V) is row-major with
     * last stride 1 (any row stride), f32, f64, f16 or bf16; its compute dtype is f64 for f64
     * and f32 otherwise. target (R) i64 (any stride), every index already in [0, V) (ignored
     * rows carry 0). Other vectors are (R) contiguous. Rows are independent: a row's results do
     * not depend on R or on the thread count. */
    /* One pass over z: lse_r = log sum_c exp(z_rc) (shifted by the row's max unless that is
     * infinite, like torch's logsumexp), zt_r = z_{r, t_r} and, unless zsum is NULL,
     * zsum_r = sum_c z_rc; lse, zt, zsum in the compute dtype. */
    bn_status (*ce_rows_forward)(const bn_tview *z, const bn_tview *target, const bn_tview *lse,
                                 const bn_tview *zt, const bn_tview *zsum);
    /* One pass: dz_rc = (exp(z_rc - lse_r) - smoothing / V - (1 - smoothing) [c == t_r]) * gr_r,
     * computed in the compute dtype and rounded once to dz's dtype (z's or the compute dtype);
     * lse and gr (R) in the compute dtype; dz (R, V) contiguous. */
    bn_status (*ce_rows_backward)(const bn_tview *z, const bn_tview *target, const bn_tview *lse,
                                  const bn_tview *gr, double smoothing, const bn_tview *dz);
    /* (optional) ce_rows_forward, then ce_rows_backward from the lse it wrote, reading z from
     * memory once: the same results (bit for bit; f64 to rounding); dz (R, V) contiguous in
     * z's dtype. NULL: the caller makes the two calls. */
    bn_status (*ce_rows_fused)(const bn_tview *z, const bn_tview *target, const bn_tview *lse,
                               const bn_tview *zt, const bn_tview *zsum, const bn_tview *gr,
                               double smoothing, const bn_tview *dz);
} bn_backend_nn;

#endif
