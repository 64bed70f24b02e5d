/* ops/elementwise_unary.c — element-wise ops on one tensor: math (exp, log, …), activations
 * (relu, gelu, …), rounding, sign, clamp and logical_not.
 *
 * Result dtypes follow PyTorch: fraction-producing ops give f32 for integer and bool inputs
 * (born extends this to the activations that torch refuses on integers: leaky_relu, elu, gelu,
 * silu, softplus); neg, abs, relu, sign, floor, ceil and round keep the dtype (floor/ceil/round
 * of an integer is the identity); clamp promotes with its bounds like a Python scalar; bool
 * inputs are refused where torch refuses them. Kernels: the backend's `unary` slot. */
#include "amp/amp_internal.h"
#include "autograd/grad_elementwise.h"
#include "backend/backend.h"

#include <math.h>

/* x cast to dt (only when it differs), then op into a fresh tensor of dt (bool for
 * logical_not). Not registered with a scope. */
static bn_tensor *run_unary(const char *fn, bn_unary_op op, const bn_tensor *x, bn_dtype dt,
                            const bn_unary_params *p)
{
    bn_device dev = x->storage->device;
    const bn_backend *be = bn__backend(fn, dev);
    if (!be) return NULL;
    bn_tensor *xin = bn__to_dtype(x, dt);
    if (!xin) return NULL;
    bn_dtype out_dt = op == BN_UNARY_LOGICAL_NOT ? BN_BOOL : dt;
    bn_tensor *out = bn__empty(x->shape, x->ndim, out_dt, dev);
    bn_status st = BN_ERR_OOM;
    if (out) {
        bn_tview xv = bn__tview(xin), ov = bn__tview(out);
        st = be->unary(op, &xv, &ov, p);
    }
    bn_release(xin);
    if (st != BN_OK) {
        bn_release(out);
        return NULL;
    }
    return out;
}

/* Ops whose results are fractions: integer and bool inputs are computed in f32. */
static bn_tensor *float_op(const char *fn, bn_unary_op op, const bn_tensor *x,
                           const bn_unary_params *p)
{
    BN_CHECK_NULL(fn, x);
    return bn__out(bn__grad_unary(op, x, p, run_unary(fn, op, x, bn__float_result(x->dtype), p)));
}

/* Ops that keep x's dtype and that torch refuses on bool (neg, abs, relu, floor, ceil, round). */
static bn_tensor *keep_dtype_op(const char *fn, bn_unary_op op, const bn_tensor *x)
{
    BN_CHECK_NULL(fn, x);
    if (x->dtype == BN_BOOL) {
        if (op == BN_UNARY_NEG)
            return bn__error_null(BN_ERR_DTYPE,
                                  "%s: x is a bool tensor %s; negating bool is not supported (use "
                                  "bn_logical_not to invert a mask)",
                                  fn, bn__tshape(x));
        return bn__error_null(BN_ERR_DTYPE, "%s: x is a bool tensor %s; %s needs a numeric dtype",
                              fn, bn__tshape(x), fn);
    }
    bn_unary_params p = {0};
    return bn__out(bn__grad_unary(op, x, &p, run_unary(fn, op, x, x->dtype, &p)));
}

static const bn_unary_params no_params;

bn_tensor *bn_neg(const bn_tensor *x) { return keep_dtype_op("bn_neg", BN_UNARY_NEG, x); }
bn_tensor *bn_abs(const bn_tensor *x) { return keep_dtype_op("bn_abs", BN_UNARY_ABS, x); }
bn_tensor *bn_relu(const bn_tensor *x) { return keep_dtype_op("bn_relu", BN_UNARY_RELU, x); }
bn_tensor *bn_floor(const bn_tensor *x) { return keep_dtype_op("bn_floor", BN_UNARY_FLOOR, x); }
bn_tensor *bn_ceil(const bn_tensor *x) { return keep_dtype_op("bn_ceil", BN_UNARY_CEIL, x); }
bn_tensor *bn_round(const bn_tensor *x) { return keep_dtype_op("bn_round", BN_UNARY_ROUND, x); }

bn_tensor *bn_exp(const bn_tensor *x)
{
    BN_AUTOCAST_F32(bn_exp(ac[0]), x);
    return float_op("bn_exp", BN_UNARY_EXP, x, &no_params);
}
bn_tensor *bn_log(const bn_tensor *x)
{
    BN_AUTOCAST_F32(bn_log(ac[0]), x);
    return float_op("bn_log", BN_UNARY_LOG, x, &no_params);
}
bn_tensor *bn_log1p(const bn_tensor *x)
{
    BN_AUTOCAST_F32(bn_log1p(ac[0]), x);
    return float_op("bn_log1p", BN_UNARY_LOG1P, x, &no_params);
}
bn_tensor *bn_sqrt(const bn_tensor *x) { return float_op("bn_sqrt", BN_UNARY_SQRT, x, &no_params); }
bn_tensor *bn_rsqrt(const bn_tensor *x)
{
    BN_AUTOCAST_F32(bn_rsqrt(ac[0]), x);
    return float_op("bn_rsqrt", BN_UNARY_RSQRT, x, &no_params);
}
bn_tensor *bn_sin(const bn_tensor *x) { return float_op("bn_sin", BN_UNARY_SIN, x, &no_params); }
bn_tensor *bn_cos(const bn_tensor *x) { return float_op("bn_cos", BN_UNARY_COS, x, &no_params); }
bn_tensor *bn_tanh(const bn_tensor *x) { return float_op("bn_tanh", BN_UNARY_TANH, x, &no_params); }
bn_tensor *bn_sigmoid(const bn_tensor *x)
{
    return float_op("bn_sigmoid", BN_UNARY_SIGMOID, x, &no_params);
}
bn_tensor *bn_gelu(const bn_tensor *x) { return float_op("bn_gelu", BN_UNARY_GELU, x, &no_params); }
bn_tensor *bn_gelu_tanh(const bn_tensor *x)
{
    return float_op("bn_gelu_tanh", BN_UNARY_GELU_TANH, x, &no_params);
}
bn_tensor *bn_silu(const bn_tensor *x) { return float_op("bn_silu", BN_UNARY_SILU, x, &no_params); }
bn_tensor *bn_erf(const bn_tensor *x) { return float_op("bn_erf", BN_UNARY_ERF, x, &no_params); }

bn_tensor *bn_leaky_relu(const bn_tensor *x, double negative_slope)
{
    bn_unary_params p = {.alpha = negative_slope};
    return float_op("bn_leaky_relu", BN_UNARY_LEAKY_RELU, x, &p);
}

bn_tensor *bn_elu(const bn_tensor *x, double alpha)
{
    bn_unary_params p = {.alpha = alpha};
    return float_op("bn_elu", BN_UNARY_ELU, x, &p);
}

bn_tensor *bn_softplus(const bn_tensor *x, double beta, double threshold)
{
    BN_CHECK_NULL("bn_softplus", x);
    BN_AUTOCAST_F32(bn_softplus(ac[0], beta, threshold), x);
    if (beta == 0 || isnan(beta))
        return bn__error_null(BN_ERR_ARG, "bn_softplus: beta is %g; it must be non-zero", beta);
    bn_unary_params p = {.alpha = beta, .beta = threshold};
    return float_op("bn_softplus", BN_UNARY_SOFTPLUS, x, &p);
}

/* sign keeps every dtype, bool included (where it is the identity), like torch.sign */
bn_tensor *bn_sign(const bn_tensor *x)
{
    BN_CHECK_NULL("bn_sign", x);
    bn_tensor *out = run_unary("bn_sign", BN_UNARY_SIGN, x, x->dtype, &no_params);
    return bn__out(bn__grad_unary(BN_UNARY_SIGN, x, &no_params, out));
}

/* logical_not reads any dtype (nonzero, NaN included, is true) and writes bool */
bn_tensor *bn_logical_not(const bn_tensor *x)
{
    BN_CHECK_NULL("bn_logical_not", x);
    return bn__out(run_unary("bn_logical_not", BN_UNARY_LOGICAL_NOT, x, x->dtype, &no_params));
}

/* min(max(x, lo), hi) with the bounds that are present; the result dtype is x's promoted with
 * each bound as a Python scalar (an i32 tensor clamped to 0.5 gives f32; bool to 0 gives i64). */
static bn_tensor *clamp_named(const char *fn, const bn_tensor *x, bn_unary_params p)
{
    BN_CHECK_NULL(fn, x);
    bn_dtype dt = x->dtype;
    if (p.has_lo) dt = bn_promote_types(dt, bn__promote_scalar(x->dtype, p.lo));
    if (p.has_hi) dt = bn_promote_types(dt, bn__promote_scalar(x->dtype, p.hi));
    return bn__out(bn__grad_unary(BN_UNARY_CLAMP, x, &p, run_unary(fn, BN_UNARY_CLAMP, x, dt, &p)));
}

bn_tensor *bn_clamp(const bn_tensor *x, double lo, double hi)
{
    return clamp_named("bn_clamp", x,
                       (bn_unary_params){.lo = lo, .hi = hi, .has_lo = true, .has_hi = true});
}
bn_tensor *bn_clamp_min(const bn_tensor *x, double lo)
{
    return clamp_named("bn_clamp_min", x, (bn_unary_params){.lo = lo, .has_lo = true});
}
bn_tensor *bn_clamp_max(const bn_tensor *x, double hi)
{
    return clamp_named("bn_clamp_max", x, (bn_unary_params){.hi = hi, .has_hi = true});
}
