/* ops/nn.c — the functional nn layers: linear, batch/layer/RMS/group norm, dropout, embedding.
 * Validation, result shapes and dtypes here; the math in the backend's nn family
 * (backend_nn.h); derivative rules in autograd/grad_nn.c.
 *
 * The norm kernels compute in f32 or f64: f16/bf16 inputs are converted to f32 and the result is
 * rounded once. Linear is composed of bn_matmul and bn_add under no-grad, with a rule of its own;
 * dropout is x * mask, so bn_mul records its derivative. */
#include "amp/amp_internal.h"
#include "autograd/grad_nn.h"
#include "backend/backend_nn.h"

#include "born/autograd.h"

#include <math.h>

/* ---- helpers -------------------------------------------------------------------------------- */
static bn_dtype compute_dtype(bn_dtype dt) { return dt == BN_F64 ? BN_F64 : BN_F32; }

/* t contiguous in dtype dt (a new reference; t itself when it already is) */
static bn_tensor *prep(const bn_tensor *t, bn_dtype dt)
{
    bn_tensor *c = bn__to_dtype(t, dt);
    if (!c) return NULL;
    bn_tensor *r = bn__contiguous(c);
    bn_release(c);
    return r;
}

static bn_tensor *prep_opt(const bn_tensor *t, bn_dtype dt, bool *ok)
{
    if (!t) return NULL;
    bn_tensor *r = prep(t, dt);
    if (!r) *ok = false;
    return r;
}

/* A fresh contiguous copy (never t itself), so saving it for backward is immune to later
 * in-place writes to t. be is the backend of t's device (the copy kernel also casts). */
static bn_tensor *fresh_copy(const bn_backend *be, const bn_tensor *t, bn_dtype dt)
{
    bn_tensor *c = bn__empty(t->shape, t->ndim, dt, t->storage->device);
    if (!c) return NULL;
    bn_tview src = bn__tview(t), dst = bn__tview(c);
    if (be->copy(&src, &dst) != BN_OK) {
        bn_release(c);
        return NULL;
    }
    return c;
}

/* The tview of a contiguous tensor seen as (N, C, S). */
static bn_tview view3(const bn_tensor *t, int64_t N, int64_t C, int64_t S)
{
    bn_tview v = bn__tview(t);
    v.ndim = 3;
    v.shape[0] = N, v.shape[1] = C, v.shape[2] = S;
    v.strides[0] = C * S, v.strides[1] = S, v.strides[2] = 1;
    return v;
}

static bool check_float(const char *fn, const char *arg, const bn_tensor *t)
{
    if (!t || bn_dtype_is_float(t->dtype)) return true;
    bn__error(BN_ERR_DTYPE, "%s: %s must have a float dtype, not %s", fn, arg,
              bn_dtype_name(t->dtype));
    return false;
}

/* weight or bias (optional) must be 1-D with C entries */
static bool check_channels(const char *fn, const char *arg, const bn_tensor *t, int64_t C,
                           const bn_tensor *x)
{
    if (!t) return true;
    if (!check_float(fn, arg, t) || !bn__same_device(fn, x, t)) return false;
    if (t->ndim == 1 && t->shape[0] == C) return true;
    bn__error(BN_ERR_SHAPE, "%s: %s has shape %s but x %s has %lld channels (expected [%lld])", fn,
              arg, bn__tshape(t), bn__tshape(x), (long long)C, (long long)C);
    return false;
}

static void release_all(bn_tensor **ts, int n)
{
    for (int i = 0; i < n; i++) bn_release(ts[i]);
}

/* ---- linear --------------------------------------------------------------------------------- */
/* x w^T + b through the backend's linear_bias (the bias in the GEMM's epilogue: no second pass
 * over y) for a contiguous x; *y NULL and BN_OK when the backend has none for the problem. */
static bn_status linear_fused(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                              bn_tensor **y)
{
    *y = NULL;
    const bn_backend *be = bn__backend("bn_linear", x->storage->device);
    if (!be) return bn_error_code();
    if (!be->linear_bias || !bn__is_contiguous(x)) return BN_OK;
    int nd = x->ndim;
    int64_t K = x->shape[nd - 1], N = w->shape[0], M = K ? bn__numel(x) / K : 0;
    if (M == 0 || K == 0 || N == 0) return BN_OK;
    int64_t shape[BN_MAX_DIMS];
    for (int d = 0; d < nd; d++) shape[d] = x->shape[d];
    shape[nd - 1] = N;
    bn_tensor *out = bn__empty(shape, nd, x->dtype, x->storage->device);
    if (!out) return bn_error_code();
    bn_tview xv = bn__tview(x), wv = bn__tview(w), bv = bn__tview(b), ov = bn__tview(out);
    xv.ndim = ov.ndim = 2;
    xv.shape[0] = M, xv.shape[1] = K, xv.strides[0] = K, xv.strides[1] = 1;
    ov.shape[0] = M, ov.shape[1] = N, ov.strides[0] = N, ov.strides[1] = 1;
    bn_status st = be->linear_bias(&xv, &wv, &bv, &ov);
    if (st == BN_OK) {
        *y = out;
        return BN_OK;
    }
    bn_release(out);
    return st == BN_ERR_UNSUPPORTED ? BN_OK : st;
}

bn_tensor *bn_linear(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b)
{
    const char *fn = "bn_linear";
    BN_CHECK_NULL(fn, x);
    BN_CHECK_NULL(fn, w);
    BN_AUTOCAST_LOW(bn_linear(ac[0], ac[1], ac[2]), x, w, b);
    if (!check_float(fn, "x", x) || !check_float(fn, "w", w) || !check_float(fn, "b", b))
        return NULL;
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
        return bn__error_null(BN_ERR_DTYPE, "%s: x (%s), w (%s) and b (%s) must share one dtype",
                              fn, bn_dtype_name(x->dtype), bn_dtype_name(w->dtype),
                              b ? bn_dtype_name(b->dtype) : "none");
    if (!bn__same_device(fn, x, w) || (b && !bn__same_device(fn, x, b))) return NULL;
    if (w->ndim != 2)
        return bn__error_null(BN_ERR_SHAPE, "%s: w must be 2-D (out, in), got %s", fn,
                              bn__tshape(w));
    if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return bn__error_null(BN_ERR_SHAPE,
                              "%s: x %s has %lld input features but w %s expects %lld", fn,
                              bn__tshape(x), x->ndim ? (long long)x->shape[x->ndim - 1] : 0LL,
                              bn__tshape(w), (long long)w->shape[1]);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return bn__error_null(BN_ERR_SHAPE, "%s: b has shape %s but w %s has %lld outputs", fn,
                              bn__tshape(b), bn__tshape(w), (long long)w->shape[0]);
    /* off even where the engine forces grad on (a checkpoint's recompute, create_graph): the
     * node recorded below is the only one */
    int grad_mode = bn__grad_override(BN_GRAD_OFF);
    bn__scope_suspend();
    bn_tensor *y = NULL;
    if (b && linear_fused(x, w, b, &y) != BN_OK) {
        bn__scope_resume();
        bn__grad_override(grad_mode);
        return NULL;
    }
    if (y) {
        bn__scope_resume();
        bn__grad_override(grad_mode);
        return bn__out(bn__grad_linear(x, w, b, y));
    }
    bn_tensor *wt = bn_transpose(w, 0, 1);
    y = wt ? bn_matmul(x, wt) : NULL;
    bn_release(wt);
    if (y && b) {
        bn_tensor *yb = bn_add(y, b);
        bn_release(y);
        y = yb;
    }
    bn__scope_resume();
    bn__grad_override(grad_mode);
    return bn__out(bn__grad_linear(x, w, b, y));
}

/* ---- layer / RMS / group norm --------------------------------------------------------------- */
/* Runs the row norm kernel on x seen as g's (rows, cols) and records the rule. weight and bias
 * were validated by the caller. */
static bn_tensor *row_norm(const char *fn, const char *node, const bn_tensor *x,
                           const bn_tensor *weight, const bn_tensor *bias, bn_row_norm_geom g,
                           double eps)
{
    bn_dtype cdt = compute_dtype(x->dtype);
    bn_device dev = x->storage->device;
    const bn_backend *be = bn__backend(fn, dev);
    if (!be) return NULL;
    bool ok = true;
    bn_tensor *xc = prep(x, cdt);
    bn_tensor *wc = prep_opt(weight, cdt, &ok), *bc = prep_opt(bias, cdt, &ok);
    bn_tensor *y = bn__empty(x->shape, x->ndim, cdt, dev);
    int64_t rows[1] = {g.rows};
    bn_tensor *mean = bn__empty(rows, 1, cdt, dev), *rstd = bn__empty(rows, 1, cdt, dev);
    bn_tensor *tmp[6] = {xc, wc, bc, y, mean, rstd};
    if (!ok || !xc || !y || !mean || !rstd) {
        release_all(tmp, 6);
        return NULL;
    }
    if (bn__numel(x) > 0) {
        bn_tview xv = bn__tview(xc), yv = bn__tview(y), mv = bn__tview(mean), rv = bn__tview(rstd);
        bn_tview wv = wc ? bn__tview(wc) : (bn_tview){0}, bv = bc ? bn__tview(bc) : (bn_tview){0};
        bn_status st =
            be->nn->row_norm(&xv, wc ? &wv : NULL, bc ? &bv : NULL, &yv, &mv, &rv, &g, eps);
        if (st != BN_OK) {
            release_all(tmp, 6);
            return NULL;
        }
    }
    bn_tensor *out = y;
    if (x->dtype != cdt) {
        out = bn__to_dtype(y, x->dtype);
        bn_release(y);
    }
    tmp[3] = NULL;
    out = bn__grad_row_norm(node, x, weight, bias, xc, wc, mean, rstd, &g, out);
    release_all(tmp, 6);
    return bn__out(out);
}

/* weight/bias (optional) must have the shape of x's last nd dims */
static bool check_normalized(const char *fn, const char *arg, const bn_tensor *t,
                             const bn_tensor *x, int nd)
{
    if (!t) return true;
    if (!check_float(fn, arg, t) || !bn__same_device(fn, x, t)) return false;
    bool same = t->ndim == nd;
    for (int d = 0; same && d < nd; d++) same = t->shape[d] == x->shape[x->ndim - nd + d];
    if (same) return true;
    char want[BN_SHAPE_STR_MAX];
    bn__dims_str(x->shape + x->ndim - nd, nd, want, sizeof want);
    bn__error(BN_ERR_SHAPE, "%s: %s has shape %s but the normalized shape of x %s is %s", fn, arg,
              bn__tshape(t), bn__tshape(x), want);
    return false;
}

static bool check_last_dims(const char *fn, const bn_tensor *x, int nd)
{
    if (nd >= 1 && nd <= x->ndim) return true;
    bn__error(BN_ERR_ARG, "%s: normalized_ndim %d must be in [1, %d] for x of shape %s", fn, nd,
              x->ndim, bn__tshape(x));
    return false;
}

static bn_row_norm_geom last_dims_geom(const bn_tensor *x, int nd, bool rms)
{
    int64_t cols = 1;
    for (int d = x->ndim - nd; d < x->ndim; d++) cols *= x->shape[d];
    int64_t n = bn__numel(x);
    return (bn_row_norm_geom){
        .rows = cols ? n / cols : 0, .cols = cols, .groups = 1, .inner = 1, .rms = rms};
}

bn_tensor *bn_layer_norm(const bn_tensor *x, int normalized_ndim, const bn_tensor *weight,
                         const bn_tensor *bias, double eps)
{
    const char *fn = "bn_layer_norm";
    BN_CHECK_NULL(fn, x);
    BN_AUTOCAST_F32(bn_layer_norm(ac[0], normalized_ndim, ac[1], ac[2], eps), x, weight, bias);
    if (!check_float(fn, "x", x) || !check_last_dims(fn, x, normalized_ndim) ||
        !check_normalized(fn, "weight", weight, x, normalized_ndim) ||
        !check_normalized(fn, "bias", bias, x, normalized_ndim))
        return NULL;
    bn_row_norm_geom g = last_dims_geom(x, normalized_ndim, false);
    return row_norm(fn, "LayerNormBackward", x, weight, bias, g, eps);
}

bn_tensor *bn_rms_norm(const bn_tensor *x, int normalized_ndim, const bn_tensor *weight, double eps)
{
    const char *fn = "bn_rms_norm";
    BN_CHECK_NULL(fn, x);
    BN_AUTOCAST_F32(bn_rms_norm(ac[0], normalized_ndim, ac[1], eps), x, weight);
    if (!check_float(fn, "x", x) || !check_last_dims(fn, x, normalized_ndim) ||
        !check_normalized(fn, "weight", weight, x, normalized_ndim))
        return NULL;
    return row_norm(fn, "RmsNormBackward", x, weight, NULL,
                    last_dims_geom(x, normalized_ndim, true), eps);
}

static bool check_nc(const char *fn, const bn_tensor *x)
{
    if (x->ndim >= 2) return true;
    bn__error(BN_ERR_SHAPE, "%s: x must be (N, C, ...) with at least 2 dims, got %s", fn,
              bn__tshape(x));
    return false;
}

static int64_t spatial_size(const bn_tensor *x)
{
    int64_t S = 1;
    for (int d = 2; d < x->ndim; d++) S *= x->shape[d];
    return S;
}

bn_tensor *bn_group_norm(const bn_tensor *x, int64_t groups, const bn_tensor *weight,
                         const bn_tensor *bias, double eps)
{
    const char *fn = "bn_group_norm";
    BN_CHECK_NULL(fn, x);
    BN_AUTOCAST_F32(bn_group_norm(ac[0], groups, ac[1], ac[2], eps), x, weight, bias);
    if (!check_float(fn, "x", x) || !check_nc(fn, x)) return NULL;
    int64_t C = x->shape[1];
    if (groups < 1 || C % groups != 0)
        return bn__error_null(BN_ERR_ARG,
                              "%s: groups %lld must be >= 1 and divide the %lld channels of x %s",
                              fn, (long long)groups, (long long)C, bn__tshape(x));
    if (!check_channels(fn, "weight", weight, C, x) || !check_channels(fn, "bias", bias, C, x))
        return NULL;
    int64_t S = spatial_size(x);
    bn_row_norm_geom g = {.rows = x->shape[0] * groups,
                          .cols = C / groups * S,
                          .groups = groups,
                          .inner = S,
                          .rms = false};
    return row_norm(fn, "GroupNormBackward", x, weight, bias, g, eps);
}

/* ---- batch norm ------------------------------------------------------------------------------ */
static bool check_batch_norm(const char *fn, const bn_tensor *x, const bn_tensor *running_mean,
                             const bn_tensor *running_var, const bn_tensor *weight,
                             const bn_tensor *bias, bool training)
{
    if (!check_float(fn, "x", x) || !check_nc(fn, x)) return false;
    int64_t C = x->shape[1];
    if (!check_channels(fn, "running_mean", running_mean, C, x) ||
        !check_channels(fn, "running_var", running_var, C, x) ||
        !check_channels(fn, "weight", weight, C, x) || !check_channels(fn, "bias", bias, C, x))
        return false;
    if (!running_mean != !running_var) {
        bn__error(BN_ERR_ARG, "%s: give both running_mean and running_var, or neither", fn);
        return false;
    }
    if (!training && !running_mean) {
        bn__error(BN_ERR_ARG, "%s: running_mean and running_var are needed in eval mode", fn);
        return false;
    }
    if (training && x->shape[0] * spatial_size(x) == 1) {
        bn__error(BN_ERR_ARG,
                  "%s: expected more than 1 value per channel when training, got x of shape %s", fn,
                  bn__tshape(x));
        return false;
    }
    return true;
}

/* Updates the running statistics in place from the batch's mean and biased var (M values per
 * channel); no graph is recorded and the buffers' versions are bumped. */
static bool update_running(const bn_backend *be, bn_tensor *running_mean, bn_tensor *running_var,
                           const bn_tensor *mean, const bn_tensor *var, double momentum, int64_t M)
{
    bn_tview rm = bn__tview(running_mean), rv = bn__tview(running_var);
    bn_tview mv = bn__tview(mean), vv = bn__tview(var);
    double unbias = M > 1 ? (double)M / (double)(M - 1) : NAN;
    if (be->nn->running_stats_update(&rm, &rv, &mv, &vv, momentum, unbias) != BN_OK) return false;
    bn__bump_version(running_mean);
    bn__bump_version(running_var);
    return true;
}

bn_tensor *bn_batch_norm(const bn_tensor *x, bn_tensor *running_mean, bn_tensor *running_var,
                         const bn_tensor *weight, const bn_tensor *bias, bool training,
                         double momentum, double eps)
{
    const char *fn = "bn_batch_norm";
    BN_CHECK_NULL(fn, x);
    if (!check_batch_norm(fn, x, running_mean, running_var, weight, bias, training)) return NULL;
    bn_dtype cdt = compute_dtype(x->dtype);
    bn_device dev = x->storage->device;
    const bn_backend *be = bn__backend(fn, dev);
    if (!be) return NULL;
    int64_t N = x->shape[0], C = x->shape[1], S = spatial_size(x);
    bool ok = true;
    bn_tensor *xc = prep(x, cdt);
    bn_tensor *wc = prep_opt(weight, cdt, &ok), *bc = prep_opt(bias, cdt, &ok);
    bn_tensor *y = bn__empty(x->shape, x->ndim, cdt, dev), *mean = NULL, *var = NULL;
    bool empty = N * S == 0; /* like torch: an empty batch leaves the running stats alone */
    if (training) {
        mean = empty ? bn__full(&C, 1, 0.0, cdt, dev) : bn__empty(&C, 1, cdt, dev);
        var = empty ? bn__full(&C, 1, 1.0, cdt, dev) : bn__empty(&C, 1, cdt, dev);
    } else {
        mean = fresh_copy(be, running_mean, cdt);
        var = fresh_copy(be, running_var, cdt);
    }
    bn_tensor *tmp[6] = {xc, wc, bc, y, mean, var};
    ok = ok && xc && y && mean && var;
    bn_tview xv = ok ? view3(xc, N, C, S) : (bn_tview){0};
    bn_tview yv = ok ? view3(y, N, C, S) : (bn_tview){0};
    bn_tview mv = ok ? bn__tview(mean) : (bn_tview){0}, vv = ok ? bn__tview(var) : (bn_tview){0};
    bn_tview wv = wc ? bn__tview(wc) : (bn_tview){0}, bv = bc ? bn__tview(bc) : (bn_tview){0};
    if (ok && training && !empty) ok = be->nn->batch_norm_stats(&xv, &mv, &vv) == BN_OK;
    if (ok && training && !empty && running_mean)
        ok = update_running(be, running_mean, running_var, mean, var, momentum, N * S);
    if (ok)
        ok = be->nn->batch_norm_apply(&xv, &mv, &vv, wc ? &wv : NULL, bc ? &bv : NULL, &yv, eps) ==
             BN_OK;
    if (!ok) {
        release_all(tmp, 6);
        return NULL;
    }
    bn_tensor *out = y;
    if (x->dtype != cdt) {
        out = bn__to_dtype(y, x->dtype);
        bn_release(y);
    }
    tmp[3] = NULL;
    out = bn__grad_batch_norm(x, weight, bias, xc, wc, mean, var, N, C, S, eps, training, out);
    release_all(tmp, 6);
    return bn__out(out);
}

/* ---- dropout --------------------------------------------------------------------------------- */
bn_tensor *bn_dropout(const bn_tensor *x, double p, bool training)
{
    const char *fn = "bn_dropout";
    BN_CHECK_NULL(fn, x);
    if (!check_float(fn, "x", x)) return NULL;
    if (!(p >= 0.0 && p <= 1.0))
        return bn__error_null(BN_ERR_ARG, "%s: p %g must be in [0, 1]", fn, p);
    if (!training || p == 0.0) {
        bn_retain((bn_tensor *)x);
        return bn__out((bn_tensor *)x);
    }
    const bn_backend *be = bn__backend(fn, x->storage->device);
    if (!be) return NULL;
    bn_tensor *mask = bn__empty(x->shape, x->ndim, x->dtype, x->storage->device);
    if (!mask) return NULL;
    int64_t n = bn__numel(x);
    uint64_t seed, counter;
    bn__rng_take((uint64_t)((n + 3) / 4), &seed, &counter);
    bn_tview mv = bn__tview(mask);
    if (be->nn->dropout_mask(&mv, p, seed, counter) != BN_OK) {
        bn_release(mask);
        return NULL;
    }
    bn__scope_suspend();
    bn_tensor *out = bn_mul(x, mask);
    bn__scope_resume();
    bn_release(mask);
    return bn__out(out);
}

/* ---- embedding ------------------------------------------------------------------------------- */
bn_tensor *bn_embedding(const bn_tensor *weight, const bn_tensor *indices)
{
    const char *fn = "bn_embedding";
    BN_CHECK_NULL(fn, weight);
    BN_CHECK_NULL(fn, indices);
    if (weight->ndim != 2)
        return bn__error_null(BN_ERR_SHAPE, "%s: weight must be 2-D (num, dim), got %s", fn,
                              bn__tshape(weight));
    if (indices->dtype != BN_I64 && indices->dtype != BN_I32)
        return bn__error_null(BN_ERR_DTYPE, "%s: indices must be i64 or i32, not %s", fn,
                              bn_dtype_name(indices->dtype));
    if (indices->ndim + 1 > BN_MAX_DIMS)
        return bn__error_null(BN_ERR_SHAPE, "%s: indices %s has too many dims (at most %d)", fn,
                              bn__tshape(indices), BN_MAX_DIMS - 1);
    if (!bn__same_device(fn, weight, indices)) return NULL;
    const bn_backend *be = bn__backend(fn, weight->storage->device);
    if (!be) return NULL;
    int64_t M = bn__numel(indices), dim = weight->shape[1];
    int64_t shape[BN_MAX_DIMS];
    for (int d = 0; d < indices->ndim; d++) shape[d] = indices->shape[d];
    shape[indices->ndim] = dim;
    bn_tensor *ic = bn__contiguous(indices);
    bn_tensor *out = bn__empty(shape, indices->ndim + 1, weight->dtype, weight->storage->device);
    if (!ic || !out) {
        bn_release(ic);
        bn_release(out);
        return NULL;
    }
    bn_tview wv = bn__tview(weight), iv = bn__tview(ic), ov = bn__tview(out);
    iv.ndim = 1, iv.shape[0] = M, iv.strides[0] = 1;
    ov.ndim = 2, ov.shape[0] = M, ov.shape[1] = dim, ov.strides[0] = dim, ov.strides[1] = 1;
    if (be->nn->embedding(&wv, &iv, &ov) != BN_OK) {
        bn_release(ic);
        bn_release(out);
        return NULL;
    }
    out = bn__grad_embedding(weight, ic, out);
    bn_release(ic);
    return bn__out(out);
}
