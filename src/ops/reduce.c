/* ops/reduce.c — reductions (sum, mean, prod, max, min, argmax/argmin, var/std, logsumexp,
 * all/any) over one dim, several dims or all of them, and the shape-keeping ops along one dim
 * (cumsum, softmax, log_softmax).
 *
 * Each op validates its arguments, picks the result dtype like PyTorch 1.13, allocates the
 * result with the reduced dims kept as size 1 and calls the backend's reduce kernel;
 * keepdim=false then drops those dims with a view. Result dtypes:
 *   sum, prod, cumsum     integer and bool -> i64, floats keep their dtype
 *   mean, var, std        floats only (integers are an error, as in torch)
 *   logsumexp             integer and bool -> f32 (torch 1.13 does the same)
 *   softmax, log_softmax  floats only
 *   max, min              keep the dtype; argmax/argmin -> i64 (not bool, as in torch)
 *   all, any              bool for every input dtype
 * Float results go through their autograd hook (autograd/grad_reduce.h) before they return. */
#include "amp/amp_internal.h"
#include "autograd/grad_reduce.h"
#include "backend/backend.h"

#include <stdio.h>

/* ---- arguments ---------------------------------------------------------------------------- */
/* The reduced dims of t as a bitmask. dim is one dim (negative counts from the end) or BN_ALL;
 * a 0-d tensor accepts 0, -1 and BN_ALL and reduces its one element (mask 0). */
static bool dim_mask(const char *fn, const bn_tensor *t, int dim, uint32_t *mask)
{
    if (dim == BN_ALL) {
        *mask = (1u << t->ndim) - 1;
        return true;
    }
    int d;
    if (!bn__norm_dim(fn, "dim", dim, t->ndim, &d)) return false;
    *mask = t->ndim ? 1u << d : 0;
    return true;
}

/* Several distinct dims; none (ndims == 0) means every dim, as torch treats an empty list. */
static bool dims_mask(const char *fn, const bn_tensor *t, const int *dims, int ndims,
                      uint32_t *mask)
{
    if (ndims < 0 || ndims > BN_MAX_DIMS) {
        bn__error(BN_ERR_ARG, "%s: ndims %d is out of range (expected 0..%d)", fn, ndims,
                  BN_MAX_DIMS);
        return false;
    }
    if (ndims > 0 && !dims) {
        bn__null_arg(fn, "dims");
        return false;
    }
    if (ndims == 0) return dim_mask(fn, t, BN_ALL, mask);
    *mask = 0;
    for (int i = 0; i < ndims; i++) {
        int d;
        char arg[32];
        snprintf(arg, sizeof arg, "dims[%d] =", i); /* "dims[1] = 3 is out of range ..." */
        if (!bn__norm_dim(fn, arg, dims[i], t->ndim, &d)) return false;
        uint32_t bit = t->ndim ? 1u << d : 1u;
        if (*mask & bit) {
            bn__error(BN_ERR_ARG, "%s: dim %d (dims[%d] = %d) appears more than once in dims", fn,
                      d, i, dims[i]);
            return false;
        }
        *mask |= bit;
    }
    if (t->ndim == 0) *mask = 0;
    return true;
}

static bool is_intlike(bn_dtype dt) { return !bn_dtype_is_float(dt); }

static bool need_float(const char *fn, const bn_tensor *t)
{
    if (bn_dtype_is_float(t->dtype)) return true;
    bn__error(BN_ERR_DTYPE,
              "%s: t has dtype %s; the op needs a floating-point dtype (f32, f64, f16 or bf16), "
              "convert it with bn_to_dtype first",
              fn, bn_dtype_name(t->dtype));
    return false;
}

/* max/min/argmax/argmin have no value for an empty reduction. */
static bool need_nonempty(const char *fn, const bn_tensor *t, int dim, uint32_t mask)
{
    for (int d = 0; d < t->ndim; d++) {
        if (!(mask & (1u << d)) || t->shape[d] != 0) continue;
        if (dim == BN_ALL)
            bn__error(BN_ERR_ARG, "%s: cannot reduce an empty tensor over all dims (t is %s)", fn,
                      bn__tshape(t));
        else
            bn__error(BN_ERR_ARG, "%s: cannot reduce over dim %d of size 0 (t is %s)", fn, d,
                      bn__tshape(t));
        return false;
    }
    return true;
}

/* ---- the common path ---------------------------------------------------------------------- */
/* Reduces t over mask into a new tensor of dtype out_dt (not registered with a scope). */
static bn_tensor *reduce_into(const char *fn, const bn_tensor *t, bn_reduce_op op, uint32_t mask,
                              bool keepdim, bn_dtype out_dt, int correction)
{
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (!be) return NULL;
    int64_t kept[BN_MAX_DIMS], squeezed[BN_MAX_DIMS];
    int ns = 0;
    for (int d = 0; d < t->ndim; d++) {
        bool reduced = mask & (1u << d);
        kept[d] = reduced ? 1 : t->shape[d];
        if (!reduced) squeezed[ns++] = t->shape[d];
    }
    bn_tensor *out = bn__empty(kept, t->ndim, out_dt, t->storage->device);
    if (!out) return NULL;
    bn_tview xv = bn__tview(t), ov = bn__tview(out);
    bn_reduce_params p = {.correction = correction};
    if (be->reduce(op, &xv, &ov, mask, &p) != BN_OK) {
        bn_release(out);
        return NULL;
    }
    if (keepdim) return out;
    bn_tensor *r = bn__reshape(out, squeezed, ns);
    bn_release(out);
    return r;
}

static bn_tensor *reduce_dim(const char *fn, const bn_tensor *t, bn_reduce_op op, int dim,
                             bool keepdim, bn_dtype out_dt)
{
    uint32_t mask;
    if (!dim_mask(fn, t, dim, &mask)) return NULL;
    return bn__out(
        bn__grad_reduce(op, t, mask, 0, reduce_into(fn, t, op, mask, keepdim, out_dt, 0)));
}

static bn_dtype sum_dtype(bn_dtype dt) { return is_intlike(dt) ? BN_I64 : dt; }

/* ---- sum, mean, prod ---------------------------------------------------------------------- */
bn_tensor *bn_sum(const bn_tensor *t, int dim, bool keepdim)
{
    BN_CHECK_NULL("bn_sum", t);
    BN_AUTOCAST_F32(bn_sum(ac[0], dim, keepdim), t);
    return reduce_dim("bn_sum", t, BN_REDUCE_SUM, dim, keepdim, sum_dtype(t->dtype));
}

bn_tensor *bn_mean(const bn_tensor *t, int dim, bool keepdim)
{
    BN_CHECK_NULL("bn_mean", t);
    BN_AUTOCAST_F32(bn_mean(ac[0], dim, keepdim), t);
    if (!need_float("bn_mean", t)) return NULL;
    return reduce_dim("bn_mean", t, BN_REDUCE_MEAN, dim, keepdim, t->dtype);
}

bn_tensor *bn_prod(const bn_tensor *t, int dim, bool keepdim)
{
    BN_CHECK_NULL("bn_prod", t);
    BN_AUTOCAST_F32(bn_prod(ac[0], dim, keepdim), t);
    return reduce_dim("bn_prod", t, BN_REDUCE_PROD, dim, keepdim, sum_dtype(t->dtype));
}

bn_tensor *bn_sum_dims(const bn_tensor *t, const int *dims, int ndims, bool keepdim)
{
    uint32_t mask;
    BN_CHECK_NULL("bn_sum_dims", t);
    BN_AUTOCAST_F32(bn_sum_dims(ac[0], dims, ndims, keepdim), t);
    if (!dims_mask("bn_sum_dims", t, dims, ndims, &mask)) return NULL;
    return bn__out(bn__grad_reduce(BN_REDUCE_SUM, t, mask, 0,
                                   reduce_into("bn_sum_dims", t, BN_REDUCE_SUM, mask, keepdim,
                                               sum_dtype(t->dtype), 0)));
}

bn_tensor *bn_mean_dims(const bn_tensor *t, const int *dims, int ndims, bool keepdim)
{
    uint32_t mask;
    BN_CHECK_NULL("bn_mean_dims", t);
    BN_AUTOCAST_F32(bn_mean_dims(ac[0], dims, ndims, keepdim), t);
    if (!dims_mask("bn_mean_dims", t, dims, ndims, &mask)) return NULL;
    if (!need_float("bn_mean_dims", t)) return NULL;
    return bn__out(bn__grad_reduce(BN_REDUCE_MEAN, t, mask, 0,
                                   reduce_into("bn_mean_dims", t, BN_REDUCE_MEAN, mask, keepdim,
                                               t->dtype, 0)));
}

/* ---- max, min, argmax, argmin ------------------------------------------------------------- */
static bn_tensor *extreme(const char *fn, const bn_tensor *t, bn_reduce_op op, int dim,
                          bool keepdim)
{
    uint32_t mask;
    if (!dim_mask(fn, t, dim, &mask)) return NULL;
    if (!need_nonempty(fn, t, dim, mask)) return NULL;
    return bn__out(
        bn__grad_extreme(op, t, dim, mask, reduce_into(fn, t, op, mask, keepdim, t->dtype, 0)));
}

bn_tensor *bn_max(const bn_tensor *t, int dim, bool keepdim)
{
    BN_CHECK_NULL("bn_max", t);
    return extreme("bn_max", t, BN_REDUCE_MAX, dim, keepdim);
}

bn_tensor *bn_min(const bn_tensor *t, int dim, bool keepdim)
{
    BN_CHECK_NULL("bn_min", t);
    return extreme("bn_min", t, BN_REDUCE_MIN, dim, keepdim);
}

/* The index of the first extreme along dim, or into the flattened tensor for BN_ALL (keepdim
 * then gives every dim size 1, like torch). */
static bn_tensor *arg_extreme(const char *fn, const bn_tensor *t, bn_reduce_op op, int dim,
                              bool keepdim)
{
    uint32_t mask;
    if (t->dtype == BN_BOOL)
        return bn__error_null(BN_ERR_DTYPE,
                              "%s: t has dtype bool, which has no order (convert "
                              "it to an integer dtype first)",
                              fn);
    if (!dim_mask(fn, t, dim, &mask)) return NULL;
    if (!need_nonempty(fn, t, dim, mask)) return NULL;
    if (dim != BN_ALL) return bn__out(reduce_into(fn, t, op, mask, keepdim, BN_I64, 0));
    int64_t n = bn__numel(t);
    bn_tensor *flat = bn__reshape(t, &n, 1);
    if (!flat) return NULL;
    bn_tensor *idx = reduce_into(fn, flat, op, 1u, true, BN_I64, 0);
    bn_release(flat);
    if (!idx) return NULL;
    int64_t ones[BN_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) ones[d] = 1;
    bn_tensor *r = bn__reshape(idx, ones, keepdim ? t->ndim : 0);
    bn_release(idx);
    return bn__out(r);
}

bn_tensor *bn_argmax(const bn_tensor *t, int dim, bool keepdim)
{
    BN_CHECK_NULL("bn_argmax", t);
    return arg_extreme("bn_argmax", t, BN_REDUCE_ARGMAX, dim, keepdim);
}

bn_tensor *bn_argmin(const bn_tensor *t, int dim, bool keepdim)
{
    BN_CHECK_NULL("bn_argmin", t);
    return arg_extreme("bn_argmin", t, BN_REDUCE_ARGMIN, dim, keepdim);
}

/* ---- var, std, logsumexp ------------------------------------------------------------------ */
/* Divisor max(0, N - correction), like torch: N <= correction gives inf (or NaN for 0/0). */
static bn_tensor *spread(const char *fn, const bn_tensor *t, bn_reduce_op op, int dim,
                         int correction, bool keepdim)
{
    uint32_t mask;
    if (!need_float(fn, t)) return NULL;
    if (!dim_mask(fn, t, dim, &mask)) return NULL;
    return bn__out(bn__grad_reduce(op, t, mask, correction,
                                   reduce_into(fn, t, op, mask, keepdim, t->dtype, correction)));
}

bn_tensor *bn_var(const bn_tensor *t, int dim, int correction, bool keepdim)
{
    BN_CHECK_NULL("bn_var", t);
    return spread("bn_var", t, BN_REDUCE_VAR, dim, correction, keepdim);
}

bn_tensor *bn_std(const bn_tensor *t, int dim, int correction, bool keepdim)
{
    BN_CHECK_NULL("bn_std", t);
    return spread("bn_std", t, BN_REDUCE_STD, dim, correction, keepdim);
}

/* log(sum(exp(t))) computed as max + log(sum(exp(t - max))); integer and bool inputs are
 * converted to f32 first. An empty reduction gives -inf. */
bn_tensor *bn_logsumexp(const bn_tensor *t, int dim, bool keepdim)
{
    uint32_t mask;
    BN_CHECK_NULL("bn_logsumexp", t);
    BN_AUTOCAST_F32(bn_logsumexp(ac[0], dim, keepdim), t);
    if (!dim_mask("bn_logsumexp", t, dim, &mask)) return NULL;
    bn_tensor *x = bn__to_dtype(t, bn__float_result(t->dtype));
    if (!x) return NULL;
    bn_tensor *r = reduce_into("bn_logsumexp", x, BN_REDUCE_LOGSUMEXP, mask, keepdim, x->dtype, 0);
    bn_release(x);
    return bn__out(bn__grad_reduce(BN_REDUCE_LOGSUMEXP, t, mask, 0, r));
}

/* ---- all, any ----------------------------------------------------------------------------- */
/* Non-zero (NaN included) counts as true; the result is bool for every input dtype. */
bn_tensor *bn_all(const bn_tensor *t, int dim, bool keepdim)
{
    BN_CHECK_NULL("bn_all", t);
    return reduce_dim("bn_all", t, BN_REDUCE_ALL, dim, keepdim, BN_BOOL);
}

bn_tensor *bn_any(const bn_tensor *t, int dim, bool keepdim)
{
    BN_CHECK_NULL("bn_any", t);
    return reduce_dim("bn_any", t, BN_REDUCE_ANY, dim, keepdim, BN_BOOL);
}

/* ---- cumsum, softmax, log_softmax: along one dim, same shape ------------------------------ */
typedef enum along_op { ALONG_CUMSUM, ALONG_SOFTMAX, ALONG_LOG_SOFTMAX } along_op;

static bn_tensor *along_dim(const char *fn, const bn_tensor *t, int dim, bn_dtype out_dt,
                            along_op op)
{
    int d;
    if (!bn__norm_dim(fn, "dim", dim, t->ndim, &d)) return NULL;
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (!be) return NULL;
    bn_tensor *out = bn__empty(t->shape, t->ndim, out_dt, t->storage->device);
    if (!out) return NULL;
    bn_tview xv = bn__tview(t), ov = bn__tview(out);
    bn_status st = op == ALONG_CUMSUM ? be->cumsum(&xv, &ov, d)
                                      : be->softmax(&xv, &ov, d, op == ALONG_LOG_SOFTMAX);
    if (st != BN_OK) {
        bn_release(out);
        return NULL;
    }
    static const bn_along_grad grad_op[] = {BN_ALONG_GRAD_CUMSUM, BN_ALONG_GRAD_SOFTMAX,
                                            BN_ALONG_GRAD_LOG_SOFTMAX};
    return bn__out(bn__grad_along(grad_op[op], t, d, out));
}

bn_tensor *bn_cumsum(const bn_tensor *t, int dim)
{
    BN_CHECK_NULL("bn_cumsum", t);
    BN_AUTOCAST_F32(bn_cumsum(ac[0], dim), t);
    return along_dim("bn_cumsum", t, dim, sum_dtype(t->dtype), ALONG_CUMSUM);
}

bn_tensor *bn_softmax(const bn_tensor *t, int dim)
{
    BN_CHECK_NULL("bn_softmax", t);
    BN_AUTOCAST_F32(bn_softmax(ac[0], dim), t);
    if (!need_float("bn_softmax", t)) return NULL;
    return along_dim("bn_softmax", t, dim, t->dtype, ALONG_SOFTMAX);
}

bn_tensor *bn_log_softmax(const bn_tensor *t, int dim)
{
    BN_CHECK_NULL("bn_log_softmax", t);
    BN_AUTOCAST_F32(bn_log_softmax(ac[0], dim), t);
    if (!need_float("bn_log_softmax", t)) return NULL;
    return along_dim("bn_log_softmax", t, dim, t->dtype, ALONG_LOG_SOFTMAX);
}
