/* tests/unit/test_clip.c — gradient clipping by norm (optim/clip.c) on the CPU: the fused path
 * (one multi-tensor grad_norm and one scale_grads of backend_optim.h) against torch 1.13's
 * clip_grad_norm_, against the composed path (forced by an extra empty gradient of another
 * dtype) and against the norm's definition, for norm types 1, 2, 3, 0.5 and inf, every float dtype
 * and mixed sizes (empty, one element, several chunks); which gradients are scaled in place and
 * which are replaced by scaled copies (shared, views, listed twice); bn_clip_grad_norm_async;
 * the backend entries themselves (thread-count independence, no-op and NaN coefficients,
 * unsupported dtypes); bad input.
 * Fixtures: tests/data/clip.txt, written by scripts/gen_clip.py. */
#include "bn_test.h"

#include "backend/backend_optim.h"
#include "born/autograd.h"
#include "born/info.h"
#include "born/optim.h"
#include "core/internal.h"

#include <math.h>
#include <string.h>

static void fini(void) { bnt_release_kept(); }
TestSuite(clip, .fini = fini);

static const double norm_types[] = {1, 2, 3, 0.5, INFINITY};
#define NTYPES ((int)(sizeof norm_types / sizeof norm_types[0]))

/* Gives p a gradient equal to values (converted to p's dtype) that p alone owns, as the
 * autograd engine leaves it: one reference, its own storage. */
static void own_grad(bn_tensor *p, const bn_tensor *values)
{
    bn_scope_begin();
    cr_assert_eq(bn_set_grad(p, bn_clone(bn_to_dtype(values, p->dtype))), BN_OK, "%s",
                 bn_error_message());
    bn_scope_end();
    cr_assert_eq(p->grad->refcount, 1);
}

/* sum |g|^p (or max |g|) over every gradient by its definition, in double, then the root */
static double norm_by_definition(bn_tensor *const *ps, int n, double p)
{
    double acc = 0;
    bn_scope_begin(); /* holds no reference past the call: owned gradients stay owned */
    for (int i = 0; i < n; i++) {
        if (!ps[i]->grad) continue;
        bn_tensor *d = bn_to_dtype(ps[i]->grad, BN_F64);
        int64_t m = bn_numel(d);
        double *v = malloc(sizeof(double) * (size_t)(m ? m : 1));
        cr_assert_eq(bn_copy_to_host(bn_contiguous(d), v, sizeof(double) * (size_t)m), BN_OK);
        for (int64_t j = 0; j < m; j++) {
            double a = fabs(v[j]);
            if (isinf(p))
                acc = (a > acc || isnan(a)) ? a : acc;
            else
                acc += pow(a, p);
        }
        free(v);
    }
    bn_scope_end();
    return isinf(p) ? acc : pow(acc, 1.0 / p);
}

static double grad_rtol(bn_dtype dt)
{
    return dt == BN_F64 ? 1e-12 : dt == BN_F32 ? 1e-6 : dt == BN_F16 ? 1e-3 : 8e-3;
}

static void expect_rel(double got, double want, double rtol, const char *what, double p)
{
    cr_assert(fabs(got - want) <= rtol * fabs(want) || (isnan(got) && isnan(want)),
              "%s (norm_type %g): %.17g, expected %.17g", what, p, got, want);
}

/* ---- against torch.nn.utils.clip_grad_norm_ ------------------------------------------------------ */
#define FX_N 5

static void run_fixture_case(fx_file *f, const char *c, int mode)
{
    const char *gn[FX_N] = {"g0", "g1", "g2", "g3", "g4"},
               *cn[FX_N] = {"c0", "c1", "c2", "c3", "c4"};
    double max_norm = fx_scalar(f, c, "max_norm"), p = fx_scalar(f, c, "norm_type");
    double want = fx_scalar(f, c, "norm");
    bn_scope_begin();
    bn_tensor *ps[FX_N + 1], *g[FX_N];
    bn_dtype dt = BN_F32;
    for (int i = 0; i < FX_N; i++) {
        g[i] = bnt_keep(fx_tensor(f, c, gn[i]));
        dt = bn_dtype_of(g[i]);
        ps[i] = bn_zeros(bn_shape_of(g[i]), dt);
        own_grad(ps[i], g[i]);
    }
    /* mode 2: an empty gradient of another dtype forces the composed path */
    ps[FX_N] = bn_zeros(BN_SHAPE(0), dt == BN_F32 ? BN_F64 : BN_F32);
    own_grad(ps[FX_N], bn_zeros(BN_SHAPE(0), BN_F64));
    int n = mode == 2 ? FX_N + 1 : FX_N;
    double got;
    if (mode == 1) {
        bn_tensor *t = bn_clip_grad_norm_async(ps, n, max_norm, p);
        cr_assert_not_null(t, "%s: %s", c, bn_error_message());
        cr_assert_eq(bn_dtype_of(t), BN_F64);
        cr_assert_eq(bn_ndim(t), 0);
        got = bn_item(t);
    } else {
        got = bn_clip_grad_norm(ps, n, max_norm, p);
    }
    double rtol = dt == BN_F64 ? 1e-12 : 1e-6;
    cr_assert(fabs(got - want) <= rtol * want, "%s (mode %d): norm %.17g, torch %.17g", c, mode,
              got, want);
    for (int i = 0; i < FX_N; i++)
        bnt_assert_close(bn_grad(ps[i]), bnt_keep(fx_tensor(f, c, cn[i])), rtol, 0, c);
    bn_scope_end();
}

Test(clip, matches_torch_clip_grad_norm)
{
    fx_file *f = fx_open("clip.txt");
    int cases = 0;
    for (int i = 0; fx_case_name(f, i); i++, cases++)
        for (int mode = 0; mode < 3; mode++) run_fixture_case(f, fx_case_name(f, i), mode);
    cr_assert_eq(cases, 16, "every fixture case ran");
    fx_close(f);
}

/* ---- fused against composed and the definition ---------------------------------------------------- */
#define MIX_N 7
static const int64_t mix_sizes[MIX_N] = {12, 0, 7, 40001, 16384, 1, 30};

/* Fresh parameters over the same gradient values: a[] on the fused path (owned gradients), b[]
 * on the composed path (the extra empty gradient of another dtype, last). */
static void mixed_params(bn_dtype dt, bn_tensor **a, bn_tensor **b, bn_tensor **vals, double scale)
{
    for (int i = 0; i < MIX_N; i++) {
        vals[i] = bn_to_dtype(bn_mul_scalar(bn_randn(BN_SHAPE(mix_sizes[i]), BN_F64), scale), dt);
        a[i] = bn_zeros(BN_SHAPE(mix_sizes[i]), dt);
        b[i] = bn_zeros(BN_SHAPE(mix_sizes[i]), dt);
        own_grad(a[i], vals[i]);
        own_grad(b[i], vals[i]);
    }
    bn_dtype other = dt == BN_F64 ? BN_F32 : BN_F64;
    b[MIX_N] = bn_zeros(BN_SHAPE(0), other);
    own_grad(b[MIX_N], bn_zeros(BN_SHAPE(0), other));
}

Test(clip, fused_path_equals_composed_path_and_definition)
{
    const bn_dtype dts[] = {BN_F32, BN_F64, BN_F16, BN_BF16};
    for (int d = 0; d < 4; d++)
        for (int t = 0; t < NTYPES; t++)
            for (int clip = 0; clip < 2; clip++) {
                bn_manual_seed(100 + (uint64_t)(d * 10 + t));
                bn_scope_begin();
                double p = norm_types[t];
                bn_tensor *a[MIX_N], *b[MIX_N + 1], *vals[MIX_N], *before[MIX_N];
                mixed_params(dts[d], a, b, vals, 0.75);
                for (int i = 0; i < MIX_N; i++) before[i] = a[i]->grad; /* borrowed */
                double want = norm_by_definition(a, MIX_N, p);
                double max_norm = clip ? want / 3 : want * 3;
                double fa = bn_clip_grad_norm(a, MIX_N, max_norm, p);
                double fb = bn_clip_grad_norm(b, MIX_N + 1, max_norm, p);
                expect_rel(fa, want, 1e-12, "fused norm", p);
                expect_rel(fb, want, 1e-12, "composed norm", p);
                expect_rel(fa, fb, 1e-12, "fused against composed", p);
                double coef = max_norm / (want + 1e-6);
                for (int i = 0; i < MIX_N; i++) {
                    /* owned gradients are scaled in place: the same tensor stays */
                    cr_assert_eq(a[i]->grad, before[i], "params[%d]'s gradient was replaced", i);
                    bnt_assert_close(bn_grad(a[i]), bn_grad(b[i]), grad_rtol(dts[d]), 0,
                                     "fused against composed");
                    bn_tensor *w = clip ? bn_mul_scalar(vals[i], coef) : vals[i];
                    bnt_assert_close(bn_grad(a[i]), w, grad_rtol(dts[d]), 0, "scaled by coef");
                }
                bn_scope_end();
            }
}

Test(clip, in_place_scaling_equals_bn_mul_scalar_bit_for_bit)
{
    /* the same total on both sides (the fused path twice, once with shared gradients that are
     * replaced by bn_clone + scale_grads): the kernel rounds coef like bn_mul_scalar */
    const bn_dtype dts[] = {BN_F32, BN_F64, BN_F16, BN_BF16};
    for (int d = 0; d < 4; d++) {
        bn_manual_seed(7 + (uint64_t)d);
        bn_scope_begin();
        bn_tensor *a[MIX_N], *b[MIX_N + 1], *vals[MIX_N];
        mixed_params(dts[d], a, b, vals, 1.3);
        double norm = bn_clip_grad_norm(a, MIX_N, 0.125, 2);
        double coef = 0.125 / (norm + 1e-6);
        for (int i = 0; i < MIX_N; i++)
            bnt_assert_equal(bn_grad(a[i]), bn_mul_scalar(vals[i], coef), "g * coef");
        bn_scope_end();
    }
}

Test(clip, a_nan_or_inf_reaches_the_total_and_every_gradient)
{
    bn_scope_begin();
    for (int t = 0; t < NTYPES; t++) {
        bn_tensor *a = bn_zeros(BN_SHAPE(3), BN_F32), *b = bn_zeros(BN_SHAPE(1), BN_F32);
        own_grad(a, bn_from_data((float[]){1, NAN, 2}, BN_SHAPE(3), BN_F32));
        own_grad(b, bn_from_data((float[]){100}, BN_SHAPE(1), BN_F32));
        double norm = bn_clip_grad_norm((bn_tensor *[]){a, b}, 2, 1.0, norm_types[t]);
        cr_assert(isnan(norm), "norm_type %g: %g", norm_types[t], norm);
        cr_assert(isnan(bn_item(bn_grad(b))), "b's gradient became NaN");
        /* an infinite element: the norm is infinite and every gradient is scaled by 0 */
        own_grad(a, bn_from_data((float[]){1, INFINITY, 2}, BN_SHAPE(3), BN_F32));
        own_grad(b, bn_from_data((float[]){100}, BN_SHAPE(1), BN_F32));
        norm = bn_clip_grad_norm((bn_tensor *[]){a, b}, 2, 1.0, norm_types[t]);
        cr_assert(isinf(norm), "norm_type %g: %g", norm_types[t], norm);
        cr_assert_eq(bn_item(bn_grad(b)), 0.0);
    }
    bn_scope_end();
}

/* ---- which gradients are written in place ------------------------------------------------------- */
Test(clip, shared_and_view_gradients_are_replaced_by_scaled_copies)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *p[5];
        for (int i = 0; i < 5; i++) p[i] = bn_zeros(BN_SHAPE(2, 3), BN_F64);
        bn_tensor *v0 = bn_from_data((double[]){1, 2, 3, 4, 5, 6}, BN_SHAPE(2, 3), BN_F64);
        own_grad(p[0], v0);             /* owned: scaled in place */
        bn_tensor *held = bn_clone(v0); /* a reference the caller keeps */
        bn_set_grad(p[1], held);
        bn_tensor *base = bn_clone(bn_mul_scalar(v0, -1)); /* a view of a live tensor */
        bn_scope_begin();
        bn_set_grad(p[2], bn_reshape(base, BN_SHAPE(2, 3)));
        bn_scope_end();
        bn_tensor *tb = bn_clone(bn_mul_scalar(v0, 2)); /* a transposed (strided) view of it */
        bn_scope_begin();
        bn_set_grad(p[3], bn_transpose(bn_reshape(tb, BN_SHAPE(3, 2)), 0, 1));
        bn_scope_end();
        /* an autograd-made gradient (w*w summed: 2w), owned by its leaf */
        bn_tensor *w = bn_from_data((double[]){1, -1, 2, -2, 3, -3}, BN_SHAPE(2, 3), BN_F64);
        bn_set_requires_grad(w, true);
        p[4] = w;
        cr_assert_eq(bn_backward(bn_sum(bn_mul(w, w), BN_ALL, false)), BN_OK, "%s",
                     bn_error_message());
        bn_tensor *owned0 = p[0]->grad, *owned4 = p[4]->grad, *shared = p[1]->grad;
        bn_tensor *g[5];
        for (int i = 0; i < 5; i++) g[i] = bn_clone(p[i]->grad);
        double want = norm_by_definition(p, 5, 2);
        double norm = bn_clip_grad_norm(p, 5, 1.0, 2);
        for (int i = 0; i < 5; i++) cr_assert_eq(p[i]->grad->refcount, 1, "params[%d]", i);
        expect_rel(norm, want, 1e-12, "norm", 2);
        double coef = 1.0 / (want + 1e-6);
        for (int i = 0; i < 5; i++)
            bnt_assert_close(bn_grad(p[i]), bn_mul_scalar(g[i], coef), 1e-15, 0, "scaled");
        cr_assert_eq(p[0]->grad, owned0, "an owned gradient is scaled in place");
        cr_assert_eq(p[4]->grad, owned4, "autograd's gradient is scaled in place");
        cr_assert_neq(p[1]->grad, shared, "a shared gradient is replaced");
        bnt_assert_equal(held, v0, "the caller's tensor is untouched");
        bnt_assert_equal(base, bn_mul_scalar(v0, -1), "the view's base is untouched");
        bnt_assert_equal(tb, bn_mul_scalar(v0, 2), "the transposed view's base is untouched");
        bn_scope_end();
    });
}

Test(clip, a_gradient_listed_twice_counts_twice_and_is_scaled_twice)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *a = bn_zeros(BN_SHAPE(2), BN_F64), *b = bn_zeros(BN_SHAPE(1), BN_F64);
        own_grad(a, bn_from_data((double[]){3, 4}, BN_SHAPE(2), BN_F64));
        own_grad(b, bn_from_data((double[]){12}, BN_SHAPE(1), BN_F64));
        /* like clip_grad_norm_ over [a, b, a]: |a| counts twice, a is scaled twice */
        double norm = bn_clip_grad_norm((bn_tensor *[]){a, b, a}, 3, 1.0, 2);
        double want = sqrt(2 * 25.0 + 144), coef = 1.0 / (want + 1e-6);
        expect_rel(norm, want, 1e-15, "norm", 2);
        bnt_assert_values(bn_grad(a), (double[]){3 * coef * coef, 4 * coef * coef}, 2, 1e-15,
                          "a scaled twice");
        bnt_assert_values(bn_grad(b), (double[]){12 * coef}, 1, 1e-15, "b scaled once");
        /* one tensor as the gradient of two parameters: each gets its own scaled copy */
        bn_tensor *c = bn_zeros(BN_SHAPE(2), BN_F64), *d = bn_zeros(BN_SHAPE(2), BN_F64);
        bn_tensor *shared = bn_from_data((double[]){6, 8}, BN_SHAPE(2), BN_F64);
        bn_set_grad(c, shared);
        bn_set_grad(d, shared);
        norm = bn_clip_grad_norm((bn_tensor *[]){c, d}, 2, 1.0, 2);
        want = sqrt(200.0);
        coef = 1.0 / (want + 1e-6);
        expect_rel(norm, want, 1e-15, "norm", 2);
        bnt_assert_values(bn_grad(c), (double[]){6 * coef, 8 * coef}, 2, 1e-15, "c");
        bnt_assert_values(bn_grad(d), (double[]){6 * coef, 8 * coef}, 2, 1e-15, "d");
        bnt_assert_values(shared, (double[]){6, 8}, 2, 0, "the shared tensor is untouched");
        bn_scope_end();
    });
}

Test(clip, nothing_is_written_below_max_norm)
{
    bn_scope_begin();
    bn_tensor *a = bn_zeros(BN_SHAPE(3), BN_F32);
    own_grad(a, bn_from_data((float[]){1, -2, 2}, BN_SHAPE(3), BN_F32));
    bn_tensor *g = a->grad;
    bn_tensor *held = bn_zeros(BN_SHAPE(2), BN_F32); /* shared: kept as it is, not copied */
    bn_tensor *b = bn_zeros(BN_SHAPE(2), BN_F32);
    bn_set_grad(b, held);
    double norm = bn_clip_grad_norm((bn_tensor *[]){a, b}, 2, 3.0 + 2e-6, 2);
    cr_assert_float_eq(norm, 3.0, 1e-15);
    cr_assert_eq(a->grad, g);
    cr_assert_eq(b->grad, held);
    bnt_assert_values(a->grad, (double[]){1, -2, 2}, 3, 0, "unchanged");
    /* max_norm 0: every gradient becomes zero */
    norm = bn_clip_grad_norm((bn_tensor *[]){a, b}, 2, 0, 1);
    cr_assert_float_eq(norm, 5.0, 1e-15);
    bnt_assert_values(bn_grad(a), (double[]){0, -0.0, 0}, 3, 0, "zeroed");
    /* no gradient at all, or none with an element: norm 0 */
    bn_tensor *c = bn_zeros(BN_SHAPE(2), BN_F32);
    cr_assert_eq(bn_clip_grad_norm(&c, 1, 1, 2), 0.0);
    cr_assert_eq(bn_clip_grad_norm(&c, 0, 1, 2), 0.0);
    bn_tensor *e = bn_zeros(BN_SHAPE(0), BN_F32);
    own_grad(e, bn_zeros(BN_SHAPE(0), BN_F32));
    cr_assert_eq(bn_clip_grad_norm(&e, 1, 1, INFINITY), 0.0);
    bn_scope_end();
}

/* ---- bn_clip_grad_norm_async ------------------------------------------------------------------------ */
Test(clip, async_equals_the_synchronous_clipping)
{
    const bn_dtype dts[] = {BN_F32, BN_F64, BN_BF16};
    BNT_ASSERT_NO_LEAK({
        for (int d = 0; d < 3; d++)
            for (int t = 0; t < NTYPES; t++)
                for (int clip = 0; clip < 2; clip++) {
                    bn_manual_seed(300 + (uint64_t)(d * 10 + t));
                    bn_scope_begin();
                    double p = norm_types[t];
                    bn_tensor *a[MIX_N], *b[MIX_N + 1], *vals[MIX_N];
                    mixed_params(dts[d], a, b, vals, 0.5);
                    double want = norm_by_definition(a, MIX_N, p);
                    double max_norm = clip ? want / 2 : want * 2;
                    /* the fused path: a[]; the composed one: b[] (async) against a[]'s */
                    double sync_norm = bn_clip_grad_norm(a, MIX_N, max_norm, p);
                    bn_tensor *c[MIX_N];
                    for (int i = 0; i < MIX_N; i++) {
                        c[i] = bn_zeros(BN_SHAPE(mix_sizes[i]), dts[d]);
                        own_grad(c[i], vals[i]);
                    }
                    bn_tensor *an = bn_clip_grad_norm_async(c, MIX_N, max_norm, p);
                    cr_assert_not_null(an, "%s", bn_error_message());
                    bn_tensor *bn_ = bn_clip_grad_norm_async(b, MIX_N + 1, max_norm, p);
                    cr_assert_not_null(bn_, "%s", bn_error_message());
                    for (int k = 0; k < 2; k++) {
                        bn_tensor *r = k ? bn_ : an;
                        cr_assert_eq(bn_dtype_of(r), BN_F64);
                        cr_assert_eq(bn_ndim(r), 0);
                        cr_assert_eq(bn_device_of(r).type, BN_DEVICE_CPU);
                    }
                    cr_assert_eq(bn_item(an), sync_norm, "the same kernels give the same bits");
                    expect_rel(bn_item(bn_), sync_norm, 1e-12, "composed async", p);
                    for (int i = 0; i < MIX_N; i++) {
                        bnt_assert_equal(bn_grad(c[i]), bn_grad(a[i]), "async fused");
                        bnt_assert_close(bn_grad(b[i]), bn_grad(a[i]), grad_rtol(dts[d]), 0,
                                         "async composed");
                    }
                    bn_scope_end(); /* the results were registered with this scope */
                }
    });
}

Test(clip, async_copies_shared_gradients_and_handles_no_gradient)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *a = bn_zeros(BN_SHAPE(2), BN_F32), *b = bn_zeros(BN_SHAPE(1), BN_F32);
        bn_tensor *held = bn_from_data((float[]){3, 4}, BN_SHAPE(2), BN_F32);
        bn_set_grad(a, held);
        own_grad(b, bn_from_data((float[]){12}, BN_SHAPE(1), BN_F32));
        bn_tensor *gb = b->grad;
        /* nothing to clip: the owned gradient stays, the shared one is replaced by an equal copy */
        bn_tensor *n = bn_clip_grad_norm_async((bn_tensor *[]){a, b}, 2, 100, 2);
        cr_assert_not_null(n, "%s", bn_error_message());
        cr_assert_float_eq(bn_item(n), 13.0, 1e-12);
        cr_assert_eq(b->grad, gb);
        cr_assert_neq(a->grad, held);
        bnt_assert_equal(a->grad, held, "an equal copy");
        /* clipping */
        n = bn_clip_grad_norm_async((bn_tensor *[]){a, b}, 2, 6.5, 2);
        double coef = 6.5 / (13.0 + 1e-6);
        cr_assert_float_eq(bn_item(n), 13.0, 1e-12);
        bnt_assert_values(bn_grad(a), (double[]){3 * coef, 4 * coef}, 2, 1e-6, "a clipped");
        bnt_assert_values(bn_grad(b), (double[]){12 * coef}, 1, 1e-6, "b clipped");
        bnt_assert_values(held, (double[]){3, 4}, 2, 0, "the caller's tensor is untouched");
        /* no parameter with a gradient: 0 on the CPU */
        bn_tensor *c = bn_zeros(BN_SHAPE(2), BN_F32);
        n = bn_clip_grad_norm_async(&c, 1, 1, 2);
        cr_assert_not_null(n, "%s", bn_error_message());
        cr_assert_eq(bn_item(n), 0.0);
        cr_assert_eq(bn_device_of(n).type, BN_DEVICE_CPU);
        n = bn_clip_grad_norm_async(&c, 0, 1, 2);
        cr_assert_not_null(n, "%s", bn_error_message());
        cr_assert_eq(bn_item(n), 0.0);
        /* NaN: the norm and every gradient */
        own_grad(a, bn_from_data((float[]){NAN, 1}, BN_SHAPE(2), BN_F32));
        n = bn_clip_grad_norm_async((bn_tensor *[]){a, b}, 2, 1, INFINITY);
        cr_assert(isnan(bn_item(n)));
        cr_assert(isnan(bn_item(bn_grad(b))));
        bn_scope_end();
    });
}

Test(clip, async_result_belongs_to_the_caller_without_a_scope)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *a = bn_zeros(BN_SHAPE(2), BN_F64);
        bn_tensor *v = bn_full(BN_SHAPE(2), 2.0, BN_F64);
        own_grad(a, v);
        bn_release(v);
        bn_tensor *n = bn_clip_grad_norm_async(&a, 1, 1, 1);
        cr_assert_not_null(n, "%s", bn_error_message());
        cr_assert_eq(bn_item(n), 4.0);
        bnt_assert_values(a->grad, (double[]){2 / (4 + 1e-6), 2 / (4 + 1e-6)}, 2, 1e-15, "clipped");
        bn_release(n);
        bn_release(a);
    });
}

/* ---- the CPU backend's entries ------------------------------------------------------------------- */
static const bn_backend_optim *cpu_optim(void) { return bn__cpu_backend()->optim; }

Test(clip, cpu_grad_norm_is_independent_of_the_thread_count)
{
    bn_manual_seed(5);
    bn_scope_begin();
    const int64_t sizes[] = {100003, 0, 70000, 5};
    const void *ptr[4];
    int64_t numel[4];
    for (int i = 0; i < 4; i++) {
        bn_tensor *g = bn_randn(BN_SHAPE(sizes[i]), BN_F32);
        ptr[i] = bn__data(g);
        numel[i] = sizes[i];
    }
    int threads = bn_num_threads();
    for (int t = 0; t < NTYPES; t++) {
        double r[2];
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(bn_set_num_threads(k + 1), BN_OK);
            cr_assert_eq(cpu_optim()->grad_norm(BN_F32, ptr, numel, 4, norm_types[t], &r[k]),
                         BN_OK);
        }
        cr_assert_eq(memcmp(&r[0], &r[1], sizeof r[0]), 0,
                     "norm_type %g: %.17g on 1 thread, %.17g on 2", norm_types[t], r[0], r[1]);
    }
    bn_set_num_threads(threads);
    bn_scope_end();
}

Test(clip, cpu_entries_on_half_arrays_and_edge_coefficients)
{
    bn_manual_seed(6);
    bn_scope_begin();
    const bn_dtype dts[] = {BN_F16, BN_BF16, BN_F32, BN_F64};
    for (int d = 0; d < 4; d++) {
        bn_tensor *g = bn_to_dtype(bn_randn(BN_SHAPE(20000), BN_F64), dts[d]);
        bn_tensor *p = bn_zeros(BN_SHAPE(20000), dts[d]);
        own_grad(p, g);
        void *ptr = bn__data(p->grad);
        int64_t numel = 20000;
        for (int t = 0; t < NTYPES; t++) {
            double total = -1;
            cr_assert_eq(cpu_optim()->grad_norm(dts[d], (const void *const *)&ptr, &numel, 1,
                                                norm_types[t], &total),
                         BN_OK);
            double want = norm_by_definition(&p, 1, norm_types[t]);
            double got = isinf(norm_types[t]) ? total : pow(total, 1 / norm_types[t]);
            expect_rel(got, want, 1e-12, bn_dtype_name(dts[d]), norm_types[t]);
        }
        /* a coefficient >= 1 writes nothing; NaN makes everything NaN */
        double total = 4.0;
        cr_assert_eq(cpu_optim()->scale_grads(dts[d], &ptr, &numel, 1, &total, 2.0 + 1e-6, 2),
                     BN_OK);
        bnt_assert_equal(p->grad, g, "unchanged at coef 1");
        cr_assert_eq(cpu_optim()->scale_grads(dts[d], &ptr, &numel, 1, &total, 1.0, 2), BN_OK);
        bnt_assert_equal(p->grad, bn_mul_scalar(g, 1.0 / (2.0 + 1e-6)), "scaled");
        total = NAN;
        cr_assert_eq(cpu_optim()->scale_grads(dts[d], &ptr, &numel, 1, &total, 1.0, 2), BN_OK);
        cr_assert(isnan(bn_item(bn_max(p->grad, BN_ALL, false))));
        /* no array at all: the total is 0 */
        total = -1;
        cr_assert_eq(cpu_optim()->grad_norm(dts[d], NULL, NULL, 0, 2, &total), BN_OK);
        cr_assert_eq(total, 0.0);
    }
    bn_scope_end();
}

Test(clip, cpu_entries_reject_other_dtypes)
{
    double total = 0;
    int64_t numel = 0;
    void *ptr = NULL;
    cr_assert_eq(cpu_optim()->grad_norm(BN_I32, (const void *const *)&ptr, &numel, 1, 2, &total),
                 BN_ERR_UNSUPPORTED);
    bnt_assert_error(BN_ERR_UNSUPPORTED, "grad_norm", "i32", NULL);
    cr_assert_eq(cpu_optim()->scale_grads(BN_I64, &ptr, &numel, 1, &total, 1, 2),
                 BN_ERR_UNSUPPORTED);
    bnt_assert_error(BN_ERR_UNSUPPORTED, "scale_grads", "i64", NULL);
}

/* ---- bad input ------------------------------------------------------------------------------------ */
/* bn_clip_grad_norm (v 0) or the async variant (v 1, -1 for NULL) */
static double call_clip(int v, bn_tensor *const *ps, int n, double max_norm, double norm_type)
{
    if (!v) return bn_clip_grad_norm(ps, n, max_norm, norm_type);
    bn_tensor *r = bn_clip_grad_norm_async(ps, n, max_norm, norm_type);
    if (r) bn_release(r);
    return r ? 0.0 : -1.0;
}

Test(clip, bad_arguments_are_rejected_by_both_variants)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *a = bn_zeros(BN_SHAPE(2), BN_F32);
        bn_tensor *i = bn_zeros(BN_SHAPE(2), BN_I32), *gi = bn_zeros(BN_SHAPE(2), BN_I32);
        cr_assert_eq(bn_set_grad(i, gi), BN_OK);
        bn_release(gi);
        for (int v = 0; v < 2; v++) {
            const char *fn = v ? "bn_clip_grad_norm_async" : "bn_clip_grad_norm";
            cr_assert_eq(call_clip(v, NULL, 1, 1, 2), -1);
            bnt_assert_error(BN_ERR_ARG, fn, "params", "NULL", NULL);
            cr_assert_eq(call_clip(v, &a, -1, 1, 2), -1);
            bnt_assert_error(BN_ERR_ARG, fn, "n = -1", NULL);
            cr_assert_eq(call_clip(v, ((bn_tensor *[]){a, NULL}), 2, 1, 2), -1);
            bnt_assert_error(BN_ERR_ARG, fn, "params[1]", "NULL", NULL);
            cr_assert_eq(call_clip(v, ((bn_tensor *[]){a, i}), 2, 1, 2), -1);
            bnt_assert_error(BN_ERR_DTYPE, fn, "params[1]", "i32", NULL);
            cr_assert_eq(call_clip(v, &a, 1, 1, -1), -1);
            bnt_assert_error(BN_ERR_ARG, fn, "norm_type = -1", NULL);
            cr_assert_eq(call_clip(v, &a, 1, 1, 0), -1);
            bnt_assert_error(BN_ERR_ARG, fn, "norm_type = 0", NULL);
            cr_assert_eq(call_clip(v, &a, 1, 1, NAN), -1);
            bnt_assert_error(BN_ERR_ARG, fn, "norm_type = nan", NULL);
            cr_assert_eq(call_clip(v, &a, 1, -0.5, 2), -1);
            bnt_assert_error(BN_ERR_ARG, fn, "max_norm = -0.5", NULL);
            cr_assert_eq(call_clip(v, &a, 1, NAN, 2), -1);
            bnt_assert_error(BN_ERR_ARG, fn, "max_norm = nan", NULL);
        }
        bn_set_grad(i, NULL);
        bn_release(i);
        bn_release(a);
    });
}
