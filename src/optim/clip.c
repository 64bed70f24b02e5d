/* optim/clip.c — gradient clipping by total norm and by value, like torch.nn.utils.clip_grad_*.
 * Gradients are replaced by clipped copies (never written in place: a gradient may be shared
 * with another tensor). Norms accumulate in double. */
#include "born/autograd.h"
#include "born/optim.h"
#include "core/internal.h"

#include <math.h>

static bool check_grads(const char *fn, bn_tensor *const *params, int n)
{
    if (!params) return bn__null_arg(fn, "params"), false;
    if (n < 0) return bn__error(BN_ERR_ARG, "%s: n = %d is negative", fn, n), false;
    for (int i = 0; i < n; i++) {
        if (!params[i]) return bn__error(BN_ERR_ARG, "%s: params[%d] is NULL", fn, i), false;
        const bn_tensor *g = params[i]->grad;
        if (g && !bn_dtype_is_float(g->dtype))
            return bn__error(BN_ERR_DTYPE, "%s: params[%d] has a %s gradient", fn, i,
                             bn_dtype_name(g->dtype)),
                   false;
        if (g && g->storage->device.type != BN_DEVICE_CPU)
            return bn__error(BN_ERR_DEVICE, "%s: params[%d]'s gradient is not on the CPU", fn, i),
                   false;
    }
    return true;
}

/* Applies f(value, arg) to every element of p's gradient, into a fresh copy set as its grad. */
static bn_status map_grad(bn_tensor *p, double (*f)(double, double), double arg)
{
    bn_tensor *c = bn__contiguous(p->grad);
    bn_tensor *out = c ? bn__empty_like(c) : NULL;
    if (!out) {
        bn_release(c);
        return bn_error_code();
    }
    int64_t n = bn__numel(c);
    const void *src = bn__data(c);
    void *dst = bn__data(out);
    if (c->dtype == BN_F32) {
        const float *s = src;
        float *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = (float)f(s[i], arg);
    } else if (c->dtype == BN_F64) {
        const double *s = src;
        double *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = f(s[i], arg);
    } else {
        size_t es = bn_dtype_size(c->dtype);
        for (int64_t i = 0; i < n; i++)
            bn__store_f64((char *)dst + (size_t)i * es, c->dtype,
                          f(bn__load_f64((const char *)src + (size_t)i * es, c->dtype), arg));
    }
    bn_status st = bn_set_grad(p, out);
    bn_release(out);
    bn_release(c);
    return st;
}

/* |g|^p summed (or the largest |g| when p is infinite), over one gradient. */
static double grad_norm_part(const bn_tensor *g, double p)
{
    bn_tensor *c = bn__contiguous(g);
    if (!c) return NAN;
    int64_t n = bn__numel(c);
    double acc = 0;
    const void *data = bn__data(c);
    size_t es = bn_dtype_size(c->dtype);
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (c->dtype == BN_F32) v = fabs((double)((const float *)data)[i]);
        else if (c->dtype == BN_F64) v = fabs(((const double *)data)[i]);
        else v = fabs(bn__load_f64((const char *)data + (size_t)i * es, c->dtype));
        if (isinf(p)) acc = (v > acc || isnan(v)) ? v : acc;
        else if (p == 2) acc += v * v;
        else if (p == 1) acc += v;
        else acc += pow(v, p);
    }
    bn_release(c);
    return acc;
}

static double scale_by(double v, double s) { return v * s; }

/* The coefficient is rounded to the gradient's dtype before multiplying, as torch does. */
static double scale_by_f32(double v, double s) { return (double)((float)v * (float)s); }

double bn_clip_grad_norm(bn_tensor *const *params, int n, double max_norm, double norm_type)
{
    const char *fn = "bn_clip_grad_norm";
    if (!check_grads(fn, params, n)) return -1;
    if (!(norm_type > 0))
        return bn__error(BN_ERR_ARG, "%s: norm_type = %g must be positive (2, INFINITY, …)", fn,
                         norm_type),
               -1;
    if (!(max_norm >= 0))
        return bn__error(BN_ERR_ARG, "%s: max_norm = %g must be >= 0", fn, max_norm), -1;
    double total = 0;
    for (int i = 0; i < n; i++) {
        if (!params[i]->grad) continue;
        double part = grad_norm_part(params[i]->grad, norm_type);
        if (isnan(part) && bn_error_code() != BN_OK) return -1;
        if (isinf(norm_type)) total = (part > total || isnan(part)) ? part : total;
        else total += part;
    }
    if (!isinf(norm_type)) total = norm_type == 2 ? sqrt(total) : pow(total, 1.0 / norm_type);
    double coef = max_norm / (total + 1e-6);
    if (coef < 1 || isnan(coef))
        for (int i = 0; i < n; i++) {
            bn_tensor *p = params[i];
            if (!p->grad) continue;
            bn_status st = map_grad(p, p->grad->dtype == BN_F32 ? scale_by_f32 : scale_by, coef);
            if (st != BN_OK) return -1;
        }
    return total;
}

static double clamp_abs(double v, double c) { return v < -c ? -c : (v > c ? c : v); }

bn_status bn_clip_grad_value(bn_tensor *const *params, int n, double clip_value)
{
    const char *fn = "bn_clip_grad_value";
    if (!check_grads(fn, params, n)) return bn_error_code();
    if (!(clip_value >= 0))
        return bn__error(BN_ERR_ARG, "%s: clip_value = %g must be >= 0", fn, clip_value);
    for (int i = 0; i < n; i++) {
        if (!params[i]->grad) continue;
        bn_status st = map_grad(params[i], clamp_abs, clip_value);
        if (st != BN_OK) return st;
    }
    return BN_OK;
}
