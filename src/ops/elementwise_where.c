/* ops/elementwise_where.c — selection: where (cond ? a : b) and masked_fill, both broadcasting
 * over all their tensor arguments like PyTorch. cond and mask must be bool. Kernel: the backend's
 * `where` slot. */
#include "autograd/grad_elementwise.h"
#include "backend/backend.h"

#include <float.h>
#include <math.h>

/* cond ? a : b over the broadcast shape (shape, nd), a and b cast to dt first (only when they
 * differ). Not registered with a scope. */
static bn_tensor *run_where(const char *fn, const bn_tensor *cond, const bn_tensor *a,
                            const bn_tensor *b, bn_dtype dt, const int64_t *shape, int nd)
{
    bn_device dev = cond->storage->device;
    const bn_backend *be = bn__backend(fn, dev);
    if (!be) return NULL;
    bn_tensor *ac = bn__to_dtype(a, dt);
    bn_tensor *bc = ac ? bn__to_dtype(b, dt) : NULL;
    bn_tensor *cx = bc ? bn__expand(cond, shape, nd) : NULL;
    bn_tensor *ax = cx ? bn__expand(ac, shape, nd) : NULL;
    bn_tensor *bx = ax ? bn__expand(bc, shape, nd) : NULL;
    bn_tensor *out = bx ? bn__empty(shape, nd, dt, dev) : NULL;
    bn_status st = BN_ERR_OOM;
    if (out) {
        bn_tview cv = bn__tview(cx), av = bn__tview(ax), bv = bn__tview(bx), ov = bn__tview(out);
        st = be->where(&cv, &av, &bv, &ov);
    }
    bn_release(bx);
    bn_release(ax);
    bn_release(cx);
    bn_release(bc);
    bn_release(ac);
    if (st != BN_OK) {
        bn_release(out);
        return NULL;
    }
    return out;
}

static bool check_bool(const char *fn, const char *arg, const bn_tensor *t)
{
    if (t->dtype == BN_BOOL) return true;
    bn__error(BN_ERR_DTYPE, "%s: %s must be bool, but it is a %s tensor %s", fn, arg,
              bn_dtype_name(t->dtype), bn__tshape(t));
    return false;
}

bn_tensor *bn_where(const bn_tensor *cond, const bn_tensor *a, const bn_tensor *b)
{
    const char *fn = "bn_where";
    BN_CHECK_NULL(fn, cond);
    BN_CHECK_NULL(fn, a);
    BN_CHECK_NULL(fn, b);
    if (!check_bool(fn, "cond", cond)) return NULL;
    if (!bn__same_device(fn, cond, a) || !bn__same_device(fn, a, b)) return NULL;
    int64_t s1[BN_MAX_DIMS], shape[BN_MAX_DIMS];
    int n1, nd;
    if (!bn__broadcast_shapes(fn, cond->shape, cond->ndim, a->shape, a->ndim, s1, &n1) ||
        !bn__broadcast_shapes(fn, s1, n1, b->shape, b->ndim, shape, &nd))
        return bn__error_null(BN_ERR_SHAPE,
                              "bn_where: cond %s, a %s and b %s cannot be broadcast together",
                              bn__tshape(cond), bn__tshape(a), bn__tshape(b));
    bn_dtype dt = bn__result_type(a, b);
    return bn__out(bn__grad_where(cond, a, b, run_where(fn, cond, a, b, dt, shape, nd)));
}

/* Whether v can be stored in dt without overflow; PyTorch refuses the same values. Integers
 * truncate a fraction (5.5 fills 5), so only the integral part must fit. */
static bool value_fits(bn_dtype dt, double v)
{
    switch (dt) {
    case BN_F64:
    case BN_BOOL: return true;
    case BN_F32: return !isfinite(v) || fabs(v) <= FLT_MAX;
    case BN_F16: return !isfinite(v) || fabs(v) <= 65504.0;
    case BN_BF16: return !isfinite(v) || fabs(v) <= 3.3895313892515355e38;
    case BN_I8: return isfinite(v) && trunc(v) >= INT8_MIN && trunc(v) <= INT8_MAX;
    case BN_U8: return isfinite(v) && trunc(v) >= 0 && trunc(v) <= UINT8_MAX;
    case BN_I32: return isfinite(v) && trunc(v) >= INT32_MIN && trunc(v) <= INT32_MAX;
    case BN_I64: return isfinite(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0;
    default: return false;
    }
}

bn_tensor *bn_masked_fill(const bn_tensor *x, const bn_tensor *mask, double value)
{
    const char *fn = "bn_masked_fill";
    BN_CHECK_NULL(fn, x);
    BN_CHECK_NULL(fn, mask);
    if (!check_bool(fn, "mask", mask)) return NULL;
    if (!bn__same_device(fn, x, mask)) return NULL;
    if (!value_fits(x->dtype, value))
        return bn__error_null(BN_ERR_ARG, "bn_masked_fill: value %g does not fit x's dtype %s",
                              value, bn_dtype_name(x->dtype));
    int64_t shape[BN_MAX_DIMS];
    int nd;
    if (!bn__broadcast_shapes(fn, x->shape, x->ndim, mask->shape, mask->ndim, shape, &nd))
        return NULL;
    int64_t none[1] = {0};
    bn_tensor *v = bn__full(none, 0, value, x->dtype, x->storage->device);
    if (!v) return NULL;
    bn_tensor *out = run_where(fn, mask, v, x, x->dtype, shape, nd);
    bn_release(v);
    return bn__out(bn__grad_masked_fill(x, mask, out));
}
