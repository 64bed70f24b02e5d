/* ops/elementwise_binary.c — element-wise ops on two tensors (broadcasting like NumPy):
 * arithmetic, maximum/minimum, remainder, comparisons and logical ops, and their
 * tensor-with-scalar variants.
 *
 * Dtypes follow PyTorch: the operands promote with bn_promote_types (a scalar with
 * bn__promote_scalar, so an integer tensor stays integer unless the scalar has a fraction);
 * division of integers is true division in f32; comparisons and logical ops give bool. Two
 * deliberate choices where torch 1.13 gives surprising answers:
 *   - an integer tensor compared with a scalar compares exactly ([1, 2] (i32) < 1.5 is
 *     [true, false]; an i8 tensor is always < 1000), where torch rounds or wraps the scalar;
 *   - an integral scalar outside an integer tensor's range (i8 tensor + 1000) is applied in i64
 *     and the result wrapped back to the tensor's dtype, which for + - * is torch's wrapping.
 * Integer remainder by zero is an error (torch raises ZeroDivisionError), as is an integer
 * tensor raised to a negative integer scalar power. Kernels: the backend's `binary` slot. */
#include "amp/amp_internal.h"
#include "autograd/grad_elementwise.h"
#include "backend/backend.h"

#include <math.h>

static bool writes_bool(bn_binary_op op) { return op >= BN_BINARY_EQ; }

/* a op b in compute dtype ct: both cast to ct (only when they differ, and before broadcasting,
 * so a broadcast operand is converted once), broadcast as views, then one kernel call. The
 * result has dtype ct, or bool for comparisons and logicals. Not registered with a scope. */
static bn_tensor *run_binary(const char *fn, bn_binary_op op, const bn_tensor *a,
                             const bn_tensor *b, bn_dtype ct)
{
    int64_t shape[BN_MAX_DIMS];
    int nd;
    if (!bn__broadcast_shapes(fn, a->shape, a->ndim, b->shape, b->ndim, shape, &nd)) return NULL;
    bn_device dev = a->storage->device;
    const bn_backend *be = bn__backend(fn, dev);
    if (!be) return NULL;
    bn_tensor *ac = bn__to_dtype(a, ct);
    bn_tensor *bc = ac ? bn__to_dtype(b, ct) : NULL;
    bn_tensor *ax = bc ? bn__expand(ac, shape, nd) : NULL;
    bn_tensor *bx = ax ? bn__expand(bc, shape, nd) : NULL;
    bn_tensor *out = bx ? bn__empty(shape, nd, writes_bool(op) ? BN_BOOL : ct, dev) : NULL;
    bn_status st = BN_ERR_OOM;
    if (out) {
        bn_tview av = bn__tview(ax), bv = bn__tview(bx), ov = bn__tview(out);
        st = be->binary(op, &av, &bv, &ov);
    }
    bn_release(bx);
    bn_release(ax);
    bn_release(bc);
    bn_release(ac);
    if (st != BN_OK) {
        bn_release(out);
        return NULL;
    }
    return out;
}

/* Refuses what torch refuses on bool operands: subtraction, pow and remainder. */
static bool check_bool_operands(const char *fn, bn_binary_op op, bn_dtype ct)
{
    if (ct != BN_BOOL) return true;
    if (op == BN_BINARY_SUB)
        bn__error(BN_ERR_DTYPE,
                  "%s: a is bool; subtraction with bool operands is not supported (use "
                  "bn_logical_xor)",
                  fn);
    else if (op == BN_BINARY_POW || op == BN_BINARY_REMAINDER)
        bn__error(BN_ERR_DTYPE, "%s: a and b are bool, which %s does not support", fn, fn);
    else
        return true;
    return false;
}

static bn_tensor *binary(const char *fn, bn_binary_op op, const bn_tensor *a, const bn_tensor *b)
{
    BN_CHECK_NULL(fn, a);
    BN_CHECK_NULL(fn, b);
    if (!bn__same_device(fn, a, b)) return NULL;
    bn_dtype ct = bn__result_type(a, b);
    if (op == BN_BINARY_DIV) ct = bn__float_result(ct);
    if (!check_bool_operands(fn, op, ct)) return NULL;
    return bn__out(bn__grad_binary(op, a, b, run_binary(fn, op, a, b, ct)));
}

bn_tensor *bn__act_grad(int code, const bn_tensor *g, const bn_tensor *x)
{
    bn_binary_op op = (bn_binary_op)code;
    const char *fn = op == BN_BINARY_RELU_GRAD        ? "bn__relu_grad"
                     : op == BN_BINARY_GELU_GRAD      ? "bn__gelu_grad"
                     : op == BN_BINARY_GELU_TANH_GRAD ? "bn__gelu_tanh_grad"
                     : op == BN_BINARY_SILU_GRAD      ? "bn__silu_grad"
                                                      : NULL;
    if (!fn)
        return bn__error_null(BN_ERR_ARG, "bn__act_grad: op %d is not an activation gradient",
                              (int)op);
    BN_CHECK_NULL(fn, g);
    BN_CHECK_NULL(fn, x);
    if (!bn__same_device(fn, g, x)) return NULL;
    bn_dtype ct = bn__result_type(g, x);
    if (!bn_dtype_is_float(ct))
        return bn__error_null(BN_ERR_DTYPE, "%s: g and x must be float, not %s", fn,
                              bn_dtype_name(ct));
    return bn__out(run_binary(fn, op, g, x, ct));
}

bn_tensor *bn__relu_grad(const bn_tensor *g, const bn_tensor *x)
{
    return bn__act_grad(BN_BINARY_RELU_GRAD, g, x);
}

bn_tensor *bn_add(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_add", BN_BINARY_ADD, a, b);
}
bn_tensor *bn_sub(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_sub", BN_BINARY_SUB, a, b);
}
bn_tensor *bn_mul(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_mul", BN_BINARY_MUL, a, b);
}
bn_tensor *bn_div(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_div", BN_BINARY_DIV, a, b);
}
bn_tensor *bn_pow(const bn_tensor *a, const bn_tensor *b)
{
    BN_AUTOCAST_F32(bn_pow(ac[0], ac[1]), a, b);
    return binary("bn_pow", BN_BINARY_POW, a, b);
}
bn_tensor *bn_maximum(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_maximum", BN_BINARY_MAXIMUM, a, b);
}
bn_tensor *bn_minimum(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_minimum", BN_BINARY_MINIMUM, a, b);
}
bn_tensor *bn_remainder(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_remainder", BN_BINARY_REMAINDER, a, b);
}
bn_tensor *bn_eq(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_eq", BN_BINARY_EQ, a, b);
}
bn_tensor *bn_ne(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_ne", BN_BINARY_NE, a, b);
}
bn_tensor *bn_lt(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_lt", BN_BINARY_LT, a, b);
}
bn_tensor *bn_le(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_le", BN_BINARY_LE, a, b);
}
bn_tensor *bn_gt(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_gt", BN_BINARY_GT, a, b);
}
bn_tensor *bn_ge(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_ge", BN_BINARY_GE, a, b);
}
bn_tensor *bn_logical_and(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_logical_and", BN_BINARY_AND, a, b);
}
bn_tensor *bn_logical_or(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_logical_or", BN_BINARY_OR, a, b);
}
bn_tensor *bn_logical_xor(const bn_tensor *a, const bn_tensor *b)
{
    return binary("bn_logical_xor", BN_BINARY_XOR, a, b);
}

/* ---- scalar variants ---------------------------------------------------------------------- */

/* The range of an integer (or bool) dtype as doubles. For i64 the top, 2^63 - 1, is not a
 * double: callers test v < 2^63 (int_fits) instead of v <= hi. */
static void int_range(bn_dtype dt, double *lo, double *hi)
{
    switch (dt) {
    case BN_I8: *lo = INT8_MIN, *hi = INT8_MAX; break;
    case BN_U8: *lo = 0, *hi = UINT8_MAX; break;
    case BN_I32: *lo = INT32_MIN, *hi = INT32_MAX; break;
    case BN_BOOL: *lo = 0, *hi = 1; break;
    default: *lo = -9223372036854775808.0, *hi = 9223372036854775808.0; break;
    }
}

/* -1: v (integral) is below dt's range, 1: above it, 0: inside */
static int int_side(bn_dtype dt, double v)
{
    double lo, hi;
    int_range(dt, &lo, &hi);
    if (v < lo) return -1;
    if (dt == BN_I64 ? v >= hi : v > hi) return 1;
    return 0;
}

/* A 0-d tensor holding s in dtype dt (s already fits dt when dt is an integer). */
static bn_tensor *scalar_tensor(double s, bn_dtype dt, bn_device dev)
{
    int64_t none[1] = {0};
    return bn__full(none, 0, s, dt, dev);
}

/* Comparison of an integer or bool tensor with a scalar, exactly: x < 1.5 is x < 2 for
 * integers, and a scalar beyond the dtype's range decides every element at once. */
static bn_tensor *compare_int_scalar(const char *fn, bn_binary_op op, const bn_tensor *a, double s)
{
    int verdict = -1; /* -1: compare against k; 0 / 1: every element false / true */
    double k = s;
    if (isnan(s)) {
        verdict = op == BN_BINARY_NE;
    } else if (op == BN_BINARY_EQ || op == BN_BINARY_NE) {
        if (s != trunc(s) || int_side(a->dtype, s) != 0) verdict = op == BN_BINARY_NE;
    } else {
        /* x < s == x < ceil(s), x <= s == x <= floor(s), and so on */
        bool use_ceil = op == BN_BINARY_LT || op == BN_BINARY_GE;
        k = use_ceil ? ceil(s) : floor(s);
        int side = int_side(a->dtype, k);
        bool below_true = op == BN_BINARY_GT || op == BN_BINARY_GE; /* k below every x */
        if (side < 0) verdict = below_true;
        if (side > 0) verdict = !below_true;
    }
    if (verdict >= 0) {
        const bn_backend *be = bn__backend(fn, a->storage->device);
        if (!be) return NULL;
        return bn__out(bn__full(a->shape, a->ndim, verdict, BN_BOOL, a->storage->device));
    }
    bn_tensor *st = scalar_tensor(k, a->dtype, a->storage->device);
    if (!st) return NULL;
    bn_tensor *out = run_binary(fn, op, a, st, a->dtype);
    bn_release(st);
    return bn__out(out);
}

/* a op s (or s op a when scalar_first) with s as a Python scalar. */
static bn_tensor *binary_scalar(const char *fn, bn_binary_op op, const bn_tensor *a, double s,
                                bool scalar_first)
{
    BN_CHECK_NULL(fn, a);
    bool int_tensor = !bn_dtype_is_float(a->dtype);
    if (op >= BN_BINARY_EQ && op <= BN_BINARY_GE && int_tensor)
        return compare_int_scalar(fn, op, a, s);
    bn_dtype ct = bn__promote_scalar(a->dtype, s);
    if (op == BN_BINARY_DIV) ct = bn__float_result(ct);
    /* torch refuses bool - scalar too, though the result would be an integer */
    if (!check_bool_operands(fn, op, op == BN_BINARY_SUB ? a->dtype : ct)) return NULL;
    bool int_compute = !bn_dtype_is_float(ct);
    if (int_compute && op == BN_BINARY_POW && !scalar_first && s < 0)
        return bn__error_null(BN_ERR_ARG,
                              "%s: an integer tensor (%s) to a negative integer power (s is %g) is "
                              "not supported; cast it to a float dtype first",
                              fn, bn_dtype_name(a->dtype), s);
    if (int_compute && op == BN_BINARY_REMAINDER && s == 0)
        return bn__error_null(BN_ERR_ARG, "%s: integer division by zero (s is 0, a is %s)", fn,
                              bn_dtype_name(a->dtype));
    /* x ** 2 is x * x, exactly (torch special-cases it the same way) */
    if (op == BN_BINARY_POW && !scalar_first && s == 2) {
        bn_tensor *ac = bn__to_dtype(a, ct);
        if (!ac) return NULL;
        bn_tensor *out = run_binary(fn, BN_BINARY_MUL, ac, ac, ct);
        bn_release(ac);
        return bn__out(bn__grad_binary_scalar(op, a, s, scalar_first, out));
    }
    /* an integral scalar beyond the integer dtype: work in i64, wrap back to ct at the end */
    bn_dtype work = int_compute && ct != BN_I64 && int_side(ct, s) != 0 ? BN_I64 : ct;
    bn_tensor *st = scalar_tensor(s, work, a->storage->device);
    if (!st) return NULL;
    bn_tensor *out =
        scalar_first ? run_binary(fn, op, st, a, work) : run_binary(fn, op, a, st, work);
    bn_release(st);
    if (out && work != ct) {
        bn_tensor *narrow = bn__to_dtype(out, ct);
        bn_release(out);
        out = narrow;
    }
    return bn__out(bn__grad_binary_scalar(op, a, s, scalar_first, out));
}

bn_tensor *bn_add_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_add_scalar", BN_BINARY_ADD, a, s, false);
}
bn_tensor *bn_sub_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_sub_scalar", BN_BINARY_SUB, a, s, false);
}
bn_tensor *bn_mul_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_mul_scalar", BN_BINARY_MUL, a, s, false);
}
bn_tensor *bn_div_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_div_scalar", BN_BINARY_DIV, a, s, false);
}
bn_tensor *bn_pow_scalar(const bn_tensor *a, double s)
{
    BN_AUTOCAST_F32(bn_pow_scalar(ac[0], s), a);
    return binary_scalar("bn_pow_scalar", BN_BINARY_POW, a, s, false);
}
bn_tensor *bn_rpow_scalar(double s, const bn_tensor *a)
{
    BN_AUTOCAST_F32(bn_rpow_scalar(s, ac[0]), a);
    return binary_scalar("bn_rpow_scalar", BN_BINARY_POW, a, s, true);
}
bn_tensor *bn_maximum_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_maximum_scalar", BN_BINARY_MAXIMUM, a, s, false);
}
bn_tensor *bn_minimum_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_minimum_scalar", BN_BINARY_MINIMUM, a, s, false);
}
bn_tensor *bn_remainder_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_remainder_scalar", BN_BINARY_REMAINDER, a, s, false);
}
bn_tensor *bn_eq_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_eq_scalar", BN_BINARY_EQ, a, s, false);
}
bn_tensor *bn_ne_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_ne_scalar", BN_BINARY_NE, a, s, false);
}
bn_tensor *bn_lt_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_lt_scalar", BN_BINARY_LT, a, s, false);
}
bn_tensor *bn_le_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_le_scalar", BN_BINARY_LE, a, s, false);
}
bn_tensor *bn_gt_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_gt_scalar", BN_BINARY_GT, a, s, false);
}
bn_tensor *bn_ge_scalar(const bn_tensor *a, double s)
{
    return binary_scalar("bn_ge_scalar", BN_BINARY_GE, a, s, false);
}
