/* tests/common/gradcheck.c — autograd against float64 central finite differences. */
#include "bn_test.h"

#include "born/autograd.h"
#include "core/internal.h"

#include <math.h>

bn_tensor *bnt_param(bn_shape s, double lo, double hi)
{
    /* not registered with any scope: the caller releases it */
    bn__scope_suspend();
    bn_tensor *u = bn_rand(s, BN_F64);
    bn_tensor *v = bn_mul_scalar(u, hi - lo);
    bn_tensor *c = bn_add_scalar(v, lo);
    bn__scope_resume();
    bn_release(u);
    bn_release(v);
    cr_assert_not_null(c, "bnt_param: %s", bn_error_message());
    cr_assert_eq(bn_set_requires_grad(c, true), BN_OK);
    return c;
}

/* sum(fn(inputs) * w) as a double, with grad off. */
static double objective(bnt_fn fn, void *ctx, bn_tensor *const *in, int n, const bn_tensor *w)
{
    bn_no_grad_begin();
    bn_scope_begin();
    bn_tensor *out = fn(ctx, in, n);
    cr_assert_not_null(out, "gradcheck: fn failed: %s", bn_error_message());
    double v = bn_item(bn_sum(bn_mul(bn_to_dtype(out, BN_F64), w), BN_ALL, false));
    bn_scope_end();
    bn_no_grad_end();
    return v;
}

void bnt_gradcheck_ex(const char *what, bnt_fn fn, void *ctx, bn_tensor *const *in, int n,
                      double eps, double tol)
{
    bn_scope_begin();
    bn_tensor *out = fn(ctx, in, n);
    cr_assert_not_null(out, "%s: fn failed: %s", what, bn_error_message());
    cr_assert(bn_requires_grad(out), "%s: the output does not require grad", what);
    bn_manual_seed(20240);
    bn_tensor *w = bn_randn(bn_shape_of(out), BN_F64);
    bn_tensor *loss = bn_sum(bn_mul(bn_to_dtype(out, BN_F64), w), BN_ALL, false);
    bn_tensor *grads[16] = {0};
    cr_assert(n <= 16);
    cr_assert_eq(bn_autograd_grad(&loss, NULL, 1, in, n, grads, (bn_backward_opts){0}), BN_OK,
                 "%s: backward failed: %s", what, bn_error_message());
    for (int k = 0; k < n; k++) {
        double *x = bn_tensor_data_f64(in[k]);
        cr_assert_not_null(x, "%s: input %d must be a contiguous f64 tensor", what, k);
        bn_tensor *gk = grads[k] ? bn_contiguous(grads[k]) : NULL;
        const double *ga = gk ? bn_tensor_data_f64(gk) : NULL;
        int64_t m = bn_numel(in[k]);
        for (int64_t j = 0; j < m; j++) {
            double saved = x[j];
            x[j] = saved + eps;
            double fp = objective(fn, ctx, in, n, w);
            x[j] = saved - eps;
            double fm = objective(fn, ctx, in, n, w);
            x[j] = saved;
            double numeric = (fp - fm) / (2 * eps);
            double analytic = ga ? ga[j] : 0.0;
            cr_assert(fabs(analytic - numeric) <= tol * (1 + fabs(numeric)),
                      "%s: d/d input %d element %lld: autograd %.10g, finite differences %.10g",
                      what, k, (long long)j, analytic, numeric);
        }
    }
    bn_scope_end();
}

void bnt_gradcheck(const char *what, bnt_fn fn, void *ctx, bn_tensor *const *in, int n)
{
    bnt_gradcheck_ex(what, fn, ctx, in, n, 1e-6, 1e-6);
}
