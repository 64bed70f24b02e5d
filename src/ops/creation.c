/* ops/creation.c — tensors from nothing: empty/zeros/ones/full, arange/linspace/eye,
 * Philox random fills, and copies of user data. */
#include "backend/backend.h"

#include <math.h>
#include <string.h>

/* Validates a user shape and dtype; names fn. */
static bool check_shape_dtype(const char *fn, bn_shape s, bn_dtype dt)
{
    if (s.ndim < 0 || s.ndim > BN_MAX_DIMS) {
        bn__error(BN_ERR_SHAPE, "%s: shape has %d dims (allowed 0..%d)", fn, s.ndim, BN_MAX_DIMS);
        return false;
    }
    for (int i = 0; i < s.ndim; i++)
        if (s.dims[i] < 0) {
            bn__error(BN_ERR_SHAPE, "%s: shape %s has a negative size at dim %d", fn,
                      bn__sshape(s), i);
            return false;
        }
    if (!bn__dtype_valid(dt)) {
        bn__error(BN_ERR_DTYPE, "%s: dt %d is not a valid dtype", fn, (int)dt);
        return false;
    }
    return true;
}

bn_tensor *bn__full(const int64_t *shape, int ndim, double v, bn_dtype dt, bn_device d)
{
    bn_tensor *t = bn__empty(shape, ndim, dt, d);
    if (!t) return NULL;
    bn_tview tv = bn__tview(t);
    bn__backend("bn_full", d)->fill(&tv, v);
    return t;
}

bn_tensor *bn_empty(bn_shape s, bn_dtype dt)
{
    if (!check_shape_dtype("bn_empty", s, dt)) return NULL;
    return bn__out(bn__empty(s.dims, s.ndim, dt, bn_cpu()));
}

static bn_tensor *full_named(const char *fn, bn_shape s, double v, bn_dtype dt)
{
    if (!check_shape_dtype(fn, s, dt)) return NULL;
    return bn__out(bn__full(s.dims, s.ndim, v, dt, bn_cpu()));
}

bn_tensor *bn_zeros(bn_shape s, bn_dtype dt) { return full_named("bn_zeros", s, 0.0, dt); }
bn_tensor *bn_ones(bn_shape s, bn_dtype dt) { return full_named("bn_ones", s, 1.0, dt); }
bn_tensor *bn_full(bn_shape s, double v, bn_dtype dt) { return full_named("bn_full", s, v, dt); }
bn_tensor *bn_scalar(double v, bn_dtype dt) { return full_named("bn_scalar", BN_SCALAR, v, dt); }

static bn_tensor *like(const char *fn, const bn_tensor *t, double v)
{
    if (!t) return bn__null_arg(fn, "t");
    return bn__out(bn__full(t->shape, t->ndim, v, t->dtype, t->storage->device));
}
bn_tensor *bn_zeros_like(const bn_tensor *t) { return like("bn_zeros_like", t, 0.0); }
bn_tensor *bn_ones_like(const bn_tensor *t) { return like("bn_ones_like", t, 1.0); }
bn_tensor *bn_full_like(const bn_tensor *t, double v) { return like("bn_full_like", t, v); }

bn_tensor *bn_arange(double start, double end, double step, bn_dtype dt)
{
    if (!check_shape_dtype("bn_arange", BN_SCALAR, dt)) return NULL;
    if (!isfinite(start) || !isfinite(end) || !isfinite(step))
        return bn__error_null(BN_ERR_ARG, "bn_arange: start %g, end %g and step %g must be finite",
                              start, end, step);
    if (step == 0) return bn__error_null(BN_ERR_ARG, "bn_arange: step must be non-zero");
    if ((step > 0 && end < start) || (step < 0 && end > start))
        return bn__error_null(BN_ERR_ARG,
                              "bn_arange: step %g goes the wrong way from start %g to end %g", step,
                              start, end);
    double len = ceil((end - start) / step);
    if (len > 1e15)
        return bn__error_null(BN_ERR_ARG, "bn_arange: %g elements is too many", len);
    int64_t n = (int64_t)len;
    bn_tensor *t = bn__empty(&n, 1, dt, bn_cpu());
    if (!t) return NULL;
    bn_tview tv = bn__tview(t);
    bn__cpu_backend()->sequence(BN_SEQ_ARANGE, &tv, start, step, end);
    return bn__out(t);
}

bn_tensor *bn_linspace(double start, double end, int64_t steps, bn_dtype dt)
{
    if (!check_shape_dtype("bn_linspace", BN_SCALAR, dt)) return NULL;
    if (steps < 0)
        return bn__error_null(BN_ERR_ARG, "bn_linspace: steps %lld must be >= 0",
                              (long long)steps);
    if (!isfinite(start) || !isfinite(end))
        return bn__error_null(BN_ERR_ARG, "bn_linspace: start %g and end %g must be finite", start,
                              end);
    bn_tensor *t = bn__empty(&steps, 1, dt, bn_cpu());
    if (!t) return NULL;
    double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0.0;
    bn_tview tv = bn__tview(t);
    bn__cpu_backend()->sequence(BN_SEQ_LINSPACE, &tv, start, step, end);
    return bn__out(t);
}

bn_tensor *bn_eye(int64_t n, int64_t m, bn_dtype dt)
{
    if (n < 0 || m < 0)
        return bn__error_null(BN_ERR_ARG, "bn_eye: n %lld and m %lld must be >= 0", (long long)n,
                              (long long)m);
    if (!check_shape_dtype("bn_eye", BN_SHAPE(n, m), dt)) return NULL;
    int64_t shape[2] = {n, m};
    bn_tensor *t = bn__full(shape, 2, 0.0, dt, bn_cpu());
    if (!t) return NULL;
    /* the diagonal as a strided view: one element per row, stride m + 1 */
    int64_t k = n < m ? n : m;
    int64_t dstride = m + 1;
    bn_tensor *diag = bn__view(t, 1, &k, &dstride, 0);
    if (!diag) {
        bn_release(t);
        return NULL;
    }
    bn_tview dv = bn__tview(diag);
    bn__cpu_backend()->fill(&dv, 1.0);
    bn_release(diag);
    return bn__out(t);
}

static bn_tensor *random_fill(const char *fn, bn_shape s, bn_dtype dt, bn_random_op op, double a,
                              double b)
{
    if (!check_shape_dtype(fn, s, dt)) return NULL;
    bn_tensor *t = bn__empty(s.dims, s.ndim, dt, bn_cpu());
    if (!t) return NULL;
    int64_t n = bn__numel(t);
    int64_t per_block = (dt == BN_F64 || dt == BN_I64) ? 2 : 4;
    uint64_t seed, counter;
    bn__rng_take((uint64_t)((n + per_block - 1) / per_block), &seed, &counter);
    bn_tview tv = bn__tview(t);
    bn__cpu_backend()->random(op, &tv, seed, counter, a, b);
    return bn__out(t);
}

bn_tensor *bn_rand(bn_shape s, bn_dtype dt)
{
    if (bn__dtype_valid(dt) && !bn_dtype_is_float(dt))
        return bn__error_null(BN_ERR_DTYPE, "bn_rand: dt must be a float dtype, not %s",
                              bn_dtype_name(dt));
    return random_fill("bn_rand", s, dt, BN_RANDOM_UNIFORM, 0.0, 1.0);
}

bn_tensor *bn_randn(bn_shape s, bn_dtype dt)
{
    if (bn__dtype_valid(dt) && !bn_dtype_is_float(dt))
        return bn__error_null(BN_ERR_DTYPE, "bn_randn: dt must be a float dtype, not %s",
                              bn_dtype_name(dt));
    return random_fill("bn_randn", s, dt, BN_RANDOM_NORMAL, 0.0, 1.0);
}

bn_tensor *bn_randint(int64_t low, int64_t high, bn_shape s, bn_dtype dt)
{
    if (high <= low)
        return bn__error_null(BN_ERR_ARG, "bn_randint: high %lld must be greater than low %lld",
                              (long long)high, (long long)low);
    if (bn__dtype_valid(dt) && dt == BN_BOOL && (low < 0 || high > 2))
        return bn__error_null(BN_ERR_ARG, "bn_randint: [%lld, %lld) does not fit bool",
                              (long long)low, (long long)high);
    return random_fill("bn_randint", s, dt, BN_RANDOM_INT, (double)low, (double)high);
}

bn_tensor *bn_from_data(const void *data, bn_shape s, bn_dtype dt)
{
    if (!check_shape_dtype("bn_from_data", s, dt)) return NULL;
    bn_tensor *t = bn__empty(s.dims, s.ndim, dt, bn_cpu());
    if (!t) return NULL;
    size_t nbytes = (size_t)bn__numel(t) * bn_dtype_size(dt);
    if (nbytes && !data) {
        bn_release(t);
        return bn__null_arg("bn_from_data", "data");
    }
    if (nbytes) memcpy(bn__data(t), data, nbytes);
    return bn__out(t);
}
