/* optim/clip.c — gradient clipping by total norm and by value, like torch.nn.utils.clip_grad_*,
 * on any device: both are composed of public ops (abs, sum/max reductions, mul, clamp), so they
 * run where the gradients live. Gradients are replaced by clipped copies (never written in
 * place: a gradient may be shared with another tensor). Norms accumulate in double: each
 * gradient's part is reduced in f64 on its own device, the parts are summed (or maxed) on the
 * first gradient's device, and the total is read back once. */
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
    }
    return true;
}

/* |g|^p summed (or the largest |g| when p is infinite) over one gradient: a 0-d f64 tensor on
 * g's device, or NULL with an error. Runs in the caller's scope. */
static bn_tensor *norm_part(const bn_tensor *g, double p)
{
    bn_tensor *a = bn_abs(bn_to_dtype(g, BN_F64));
    if (isinf(p)) return bn_max(a, BN_ALL, false);
    if (p == 1) return bn_sum(a, BN_ALL, false);
    return bn_sum(bn_pow_scalar(a, p), BN_ALL, false); /* p == 2: a * a exactly */
}

/* The total norm of the gradients (the caller's scope owns the temporaries); -1 on failure. */
static double total_norm(bn_tensor *const *params, int n, double p)
{
    bn_tensor *acc = NULL;
    for (int i = 0; i < n; i++) {
        const bn_tensor *g = params[i]->grad;
        if (!g || bn_numel(g) == 0) continue; /* an empty gradient adds 0 (and has no max) */
        bn_tensor *part = norm_part(g, p);
        if (!part) return -1;
        if (acc) {
            bn_device da = bn_device_of(acc), dp = bn_device_of(part);
            if (da.type != dp.type || da.index != dp.index) part = bn_tensor_to(part, da);
            if (!part) return -1;
        }
        acc = !acc ? part : isinf(p) ? bn_maximum(acc, part) : bn_add(acc, part);
        if (!acc) return -1;
    }
    double total = 0;
    if (acc && bn_copy_to_host(acc, &total, sizeof total) != BN_OK) return -1;
    if (!isinf(p)) total = p == 2 ? sqrt(total) : pow(total, 1.0 / p);
    return total;
}

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
    bn_scope_begin();
    bn_no_grad_begin();
    double total = total_norm(params, n, norm_type);
    double coef = max_norm / (total + 1e-6);
    if (total >= 0 || isnan(total)) {
        if (coef < 1 || isnan(coef))
            for (int i = 0; i < n; i++) {
                bn_tensor *p = params[i];
                if (!p->grad) continue;
                /* the coefficient is rounded to the gradient's dtype first, as torch does */
                bn_tensor *scaled = bn_mul_scalar(p->grad, coef);
                if (!scaled || bn_set_grad(p, scaled) != BN_OK) {
                    total = -1;
                    break;
                }
            }
    }
    bn_no_grad_end();
    bn_scope_end();
    return total;
}

bn_status bn_clip_grad_value(bn_tensor *const *params, int n, double clip_value)
{
    const char *fn = "bn_clip_grad_value";
    if (!check_grads(fn, params, n)) return bn_error_code();
    if (!(clip_value >= 0))
        return bn__error(BN_ERR_ARG, "%s: clip_value = %g must be >= 0", fn, clip_value);
    bn_status st = BN_OK;
    bn_scope_begin();
    bn_no_grad_begin();
    for (int i = 0; st == BN_OK && i < n; i++) {
        bn_tensor *p = params[i];
        if (!p->grad) continue;
        bn_tensor *c = bn_clamp(p->grad, -clip_value, clip_value);
        st = c ? bn_set_grad(p, c) : bn_error_code();
    }
    bn_no_grad_end();
    bn_scope_end();
    return st;
}
