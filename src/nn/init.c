/* nn/init.c — parameter initialisation like torch.nn.init: uniform/normal/constant fills and the
 * Kaiming and Xavier schemes. Every fill runs in place under no-grad and draws from born's
 * per-thread Philox generator (bn_rand / bn_randn), so the values differ from torch's while the
 * distributions are the same. */
#include "nn/nn_internal.h"

#include <math.h>

static bool check_float(const char *fn, const bn_tensor *t)
{
    if (!t) {
        bn__null_arg(fn, "t");
        return false;
    }
    if (!bn_dtype_is_float(t->dtype)) {
        bn__error(BN_ERR_DTYPE, "%s: t is %s, expected a float tensor", fn,
                  bn_dtype_name(t->dtype));
        return false;
    }
    return true;
}

/* t = r * scale + shift with r drawn by draw(shape, dtype); library code: registers nothing. */
static bn_status fill_random(bn_tensor *t, bn_tensor *(*draw)(bn_shape, bn_dtype), double scale,
                             double shift)
{
    bn_no_grad_begin();
    bn__scope_suspend();
    bn_tensor *r = draw(bn_shape_of(t), t->dtype);
    bn_tensor *s = bn_mul_scalar(r, scale);
    bn_tensor *v = bn_add_scalar(s, shift);
    bn_status st = v ? bn_copy_(t, v) : bn_error_code();
    bn_release(r);
    bn_release(s);
    bn_release(v);
    bn__scope_resume();
    bn_no_grad_end();
    return st;
}

bn_status bn_init_uniform(bn_tensor *t, double low, double high)
{
    if (!check_float("bn_init_uniform", t)) return bn_error_code();
    if (!(low <= high))
        return bn__error(BN_ERR_ARG, "bn_init_uniform: low %g is greater than high %g", low, high);
    return fill_random(t, bn_rand, high - low, low);
}

bn_status bn_init_normal(bn_tensor *t, double mean, double std)
{
    if (!check_float("bn_init_normal", t)) return bn_error_code();
    if (!(std >= 0)) return bn__error(BN_ERR_ARG, "bn_init_normal: std %g is negative", std);
    return fill_random(t, bn_randn, std, mean);
}

bn_status bn_init_constant(bn_tensor *t, double value)
{
    if (!check_float("bn_init_constant", t)) return bn_error_code();
    bn_no_grad_begin();
    bn_status st = bn_fill_(t, value);
    bn_no_grad_end();
    return st;
}

bn_status bn_init_zeros(bn_tensor *t) { return bn_init_constant(t, 0.0); }
bn_status bn_init_ones(bn_tensor *t) { return bn_init_constant(t, 1.0); }

bn_status bn_init_fans(const bn_tensor *t, int64_t *fan_in, int64_t *fan_out)
{
    BN_CHECK_NULL_STATUS("bn_init_fans", t);
    if (t->ndim < 2)
        return bn__error(BN_ERR_SHAPE, "bn_init_fans: t is %s; fan in and fan out need at least "
                         "2 dims", bn__tshape(t));
    int64_t receptive = 1;
    for (int d = 2; d < t->ndim; d++) receptive *= t->shape[d];
    if (fan_in) *fan_in = t->shape[1] * receptive;
    if (fan_out) *fan_out = t->shape[0] * receptive;
    return BN_OK;
}

double bn_init_gain(bn_nonlinearity nl, double param)
{
    switch (nl) {
    case BN_NONLIN_LEAKY_RELU: return sqrt(2.0 / (1.0 + param * param));
    case BN_NONLIN_RELU: return sqrt(2.0);
    case BN_NONLIN_LINEAR: return 1.0;
    case BN_NONLIN_TANH: return 5.0 / 3.0;
    case BN_NONLIN_SELU: return 0.75;
    }
    return 1.0;
}

static bool kaiming_std(const char *fn, const bn_tensor *t, double a, bn_fan_mode mode,
                        bn_nonlinearity nl, double *std)
{
    if (!check_float(fn, t)) return false;
    int64_t fan_in = 0, fan_out = 0;
    if (bn_init_fans(t, &fan_in, &fan_out) != BN_OK) return false;
    int64_t fan = mode == BN_FAN_OUT ? fan_out : fan_in;
    if (fan <= 0) {
        bn__error(BN_ERR_SHAPE, "%s: t is %s, whose fan is 0", fn, bn__tshape(t));
        return false;
    }
    *std = bn_init_gain(nl, a) / sqrt((double)fan);
    return true;
}

bn_status bn_init_kaiming_uniform(bn_tensor *t, double a, bn_fan_mode mode, bn_nonlinearity nl)
{
    double std = 0;
    if (!kaiming_std("bn_init_kaiming_uniform", t, a, mode, nl, &std)) return bn_error_code();
    double bound = sqrt(3.0) * std;
    return fill_random(t, bn_rand, 2 * bound, -bound);
}

bn_status bn_init_kaiming_normal(bn_tensor *t, double a, bn_fan_mode mode, bn_nonlinearity nl)
{
    double std = 0;
    if (!kaiming_std("bn_init_kaiming_normal", t, a, mode, nl, &std)) return bn_error_code();
    return fill_random(t, bn_randn, std, 0.0);
}

static bool xavier_std(const char *fn, const bn_tensor *t, double gain, double *std)
{
    if (!check_float(fn, t)) return false;
    int64_t fan_in = 0, fan_out = 0;
    if (bn_init_fans(t, &fan_in, &fan_out) != BN_OK) return false;
    if (fan_in + fan_out <= 0) {
        bn__error(BN_ERR_SHAPE, "%s: t is %s, whose fans are 0", fn, bn__tshape(t));
        return false;
    }
    *std = gain * sqrt(2.0 / (double)(fan_in + fan_out));
    return true;
}

bn_status bn_init_xavier_uniform(bn_tensor *t, double gain)
{
    double std = 0;
    if (!xavier_std("bn_init_xavier_uniform", t, gain, &std)) return bn_error_code();
    double bound = sqrt(3.0) * std;
    return fill_random(t, bn_rand, 2 * bound, -bound);
}

bn_status bn_init_xavier_normal(bn_tensor *t, double gain)
{
    double std = 0;
    if (!xavier_std("bn_init_xavier_normal", t, gain, &std)) return bn_error_code();
    return fill_random(t, bn_randn, std, 0.0);
}

bn_status bn__init_fan_in_uniform(bn_tensor *weight, bn_tensor *bias)
{
    if (bn_numel(weight) == 0) return BN_OK; /* torch: a no-op on zero-element tensors */
    if (bn_init_kaiming_uniform(weight, sqrt(5.0), BN_FAN_IN, BN_NONLIN_LEAKY_RELU) != BN_OK)
        return bn_error_code();
    int64_t fan_in = 0;
    bn_init_fans(weight, &fan_in, NULL);
    if (!bias || fan_in <= 0) return BN_OK;
    double bound = 1.0 / sqrt((double)fan_in);
    return bn_init_uniform(bias, -bound, bound);
}
