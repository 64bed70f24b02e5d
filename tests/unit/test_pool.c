/* tests/unit/test_pool.c — bn_max_pool2d, bn_avg_pool2d and bn_adaptive_avg_pool2d: forward
 * results and gradients against PyTorch (tests/data/conv_pool.txt, made by scripts/gen_conv.py)
 * for default stride, padding, ceil_mode, dilation, exclude_padding (count_include_pad=False),
 * non-divisible adaptive sizes, unbatched and transposed inputs and every float dtype; float64
 * finite differences; NaN in max pooling; every error. */
#include "bn_test.h"

#include "born/autograd.h"
#include "core/internal.h"

#include <math.h>
#include <string.h>

/* Registers t with the open scope, like a tensor an op returned. */
static bn_tensor *own(bn_tensor *t) { return bn__out(t); }

/* ---- fixture cases ---------------------------------------------------------------------------- */
typedef struct pool_args {
    int kind; /* 1 max, 2 avg, 3 adaptive */
    int64_t kernel, out_h, out_w;
    bn_pool_opts o;
} pool_args;

static pool_args args_of(fx_file *f, const char *cs)
{
    return (pool_args){
        .kind = (int)fx_scalar(f, cs, "kind"),
        .kernel = (int64_t)fx_scalar(f, cs, "kernel"),
        .out_h = (int64_t)fx_scalar(f, cs, "out_h"),
        .out_w = (int64_t)fx_scalar(f, cs, "out_w"),
        .o = {.stride = (int64_t)fx_scalar(f, cs, "stride"),
              .padding = (int64_t)fx_scalar(f, cs, "padding"),
              .dilation = (int64_t)fx_scalar(f, cs, "dilation"),
              .ceil_mode = fx_scalar(f, cs, "ceil_mode") != 0,
              .exclude_padding = fx_scalar(f, cs, "exclude_padding") != 0},
    };
}

static bn_tensor *run_pool(const pool_args *a, const bn_tensor *x)
{
    switch (a->kind) {
    case 1: return bn_max_pool2d(x, a->kernel, a->o);
    case 2: return bn_avg_pool2d(x, a->kernel, a->o);
    default: return bn_adaptive_avg_pool2d(x, a->out_h, a->out_w);
    }
}

static void check_close(const bn_tensor *got, const bn_tensor *want, const char *cs,
                        const char *what)
{
    char label[160];
    snprintf(label, sizeof label, "%s: %s", cs, what);
    cr_assert_not_null(got, "%s is missing: %s", label, bn_error_message());
    bn_dtype dt = bn_dtype_of(want);
    double rtol = dt == BN_F32 ? 1e-4 : bnt_rtol(dt), atol = dt == BN_F32 ? 1e-5 : bnt_atol(dt);
    bnt_assert_close(got, want, rtol, atol, label);
}

/* Case cs: the result and the gradient of sum(out * gout) match torch's. */
static void check_pool_case(const char *cs)
{
    fx_file *f = fx_open("conv_pool.txt");
    bn_scope_begin();
    bool view = strstr(cs, "transposed") != NULL;
    bn_tensor *leaf = own(fx_tensor(f, cs, view ? "x_base" : "x"));
    cr_assert_eq(bn_set_requires_grad(leaf, true), BN_OK);
    bn_tensor *x = view ? bn_transpose(leaf, -1, -2) : leaf;
    pool_args a = args_of(f, cs);
    bn_tensor *out = run_pool(&a, x);
    check_close(out, own(fx_tensor(f, cs, "out")), cs, "forward");
    bn_tensor *gout = own(fx_tensor(f, cs, "gout"));
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", cs,
                 bn_error_message());
    bn_tensor *gx = bn_grad(leaf);
    if (view) gx = bn_transpose(gx, -1, -2);
    check_close(gx, own(fx_tensor(f, cs, "gx")), cs, "grad x");
    bn_scope_end();
    fx_close(f);
}

#define POOL_CASE(test_name, case_name)                                                            \
    Test(pool, test_name) { BNT_ASSERT_NO_LEAK(check_pool_case(case_name)); }

POOL_CASE(max_pool2d_stride_defaults_to_the_kernel, "max_default_stride")
POOL_CASE(max_pool2d_ceil_mode_with_padding_matches_torch, "max_ceil_mode_padding")
POOL_CASE(max_pool2d_dilation_matches_torch, "max_dilation2")
POOL_CASE(max_pool2d_unbatched_matches_torch, "max_unbatched")
POOL_CASE(max_pool2d_transposed_input_matches_torch, "max_transposed_input")
POOL_CASE(max_pool2d_f64_matches_torch, "max_f64")
POOL_CASE(max_pool2d_bf16_matches_torch, "max_bf16")
POOL_CASE(max_pool2d_f16_matches_torch, "max_f16")
POOL_CASE(avg_pool2d_counts_padding_by_default, "avg_include_padding")
POOL_CASE(avg_pool2d_exclude_padding_with_ceil_mode_matches_torch, "avg_exclude_padding_ceil")
POOL_CASE(avg_pool2d_ceil_mode_clips_the_divisor_like_torch, "avg_include_padding_ceil")
POOL_CASE(avg_pool2d_stride_defaults_to_the_kernel, "avg_default_stride")
POOL_CASE(avg_pool2d_unbatched_matches_torch, "avg_unbatched")
POOL_CASE(avg_pool2d_f64_matches_torch, "avg_f64")
POOL_CASE(avg_pool2d_bf16_matches_torch, "avg_bf16")
POOL_CASE(adaptive_avg_pool2d_non_divisible_sizes_match_torch, "adaptive_non_divisible")
POOL_CASE(adaptive_avg_pool2d_to_1x1_is_the_global_mean, "adaptive_global")
POOL_CASE(adaptive_avg_pool2d_larger_output_matches_torch, "adaptive_upsample")
POOL_CASE(adaptive_avg_pool2d_unbatched_transposed_input_matches_torch,
          "adaptive_unbatched_transposed")
POOL_CASE(adaptive_avg_pool2d_f64_matches_torch, "adaptive_f64")

Test(pool, max_pool2d_propagates_nan_and_ignores_padding)
{
    bn_scope_begin();
    double v[] = {-5, NAN, -7, -8, -1, -2, -3, -4, -9};
    bn_tensor *x = bn_from_data(v, BN_SHAPE(1, 1, 3, 3), BN_F64);
    bn_tensor *y = bn_max_pool2d(x, 2, (bn_pool_opts){.stride = 2, .padding = 1});
    cr_assert_not_null(y, "%s", bn_error_message());
    /* windows: {-5}, {nan, -7}, {-8, -3}, {-1, -2, -4, -9}: padding (-inf) never wins */
    const double *d = bn_tensor_data_f64(y);
    cr_assert(d[0] == -5 && isnan(d[1]) && d[2] == -3 && d[3] == -1);
    bn_scope_end();
}

Test(pool, empty_batch_gives_an_empty_result)
{
    bn_scope_begin();
    bn_tensor *x = bn_zeros(BN_SHAPE(0, 2, 4, 4), BN_F32);
    bn_tensor *y = bn_max_pool2d(x, 2, (bn_pool_opts){0});
    cr_assert(bn_shape_equal(bn_shape_of(y), BN_SHAPE(0, 2, 2, 2)));
    y = bn_avg_pool2d(x, 2, (bn_pool_opts){0});
    cr_assert(bn_shape_equal(bn_shape_of(y), BN_SHAPE(0, 2, 2, 2)));
    y = bn_adaptive_avg_pool2d(x, 3, 1);
    cr_assert(bn_shape_equal(bn_shape_of(y), BN_SHAPE(0, 2, 3, 1)));
    bn_scope_end();
}

/* ---- finite differences (float64) ------------------------------------------------------------ */
static bn_tensor *pool_fn(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    const pool_args *a = ctx;
    /* through a transposed view of the leaf, so the rule sees a strided input */
    return run_pool(a, bn_transpose(in[0], -1, -2));
}

static void gradcheck_pool(const char *what, pool_args a, bn_shape xs)
{
    bn_manual_seed(5);
    bn_tensor *x = bnt_param(xs, -1, 1);
    bnt_gradcheck(what, pool_fn, &a, &x, 1);
    bn_release(x);
}

Test(pool, gradients_match_finite_differences)
{
    BNT_ASSERT_NO_LEAK({
        gradcheck_pool("max_pool2d ceil_mode padding",
                       (pool_args){1, 3, 0, 0, {.stride = 2, .padding = 1, .ceil_mode = true}},
                       BN_SHAPE(2, 2, 6, 5));
        gradcheck_pool("avg_pool2d exclude_padding",
                       (pool_args){2, 3, 0, 0, {.stride = 2, .padding = 1, .exclude_padding = true}},
                       BN_SHAPE(1, 2, 5, 6));
        gradcheck_pool("avg_pool2d unbatched", (pool_args){2, 2, 0, 0, {.stride = 1}},
                       BN_SHAPE(2, 4, 3));
        gradcheck_pool("adaptive_avg_pool2d", (pool_args){3, 0, 3, 2, {0}}, BN_SHAPE(2, 1, 5, 7));
    });
}

Test(pool, second_derivative_is_refused_clearly)
{
    bn_scope_begin();
    bn_tensor *x = own(bnt_param(BN_SHAPE(1, 1, 4, 4), -1, 1));
    bn_tensor *y = bn_sum(bn_avg_pool2d(x, 2, (bn_pool_opts){0}), BN_ALL, false);
    bn_tensor *g = NULL;
    cr_assert_neq(bn_autograd_grad(&y, NULL, 1, &x, 1, &g, (bn_backward_opts){.create_graph = true}),
                  BN_OK);
    bnt_assert_error(BN_ERR_UNSUPPORTED, "AvgPool2dBackward", "create_graph", NULL);
    bn_scope_end();
}

/* ---- errors ----------------------------------------------------------------------------------- */
Test(pool, null_input_is_reported)
{
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_max_pool2d(NULL, 2, (bn_pool_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_max_pool2d", "x", NULL);
        cr_assert_null(bn_avg_pool2d(NULL, 2, (bn_pool_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_avg_pool2d", "x", NULL);
        cr_assert_null(bn_adaptive_avg_pool2d(NULL, 2, 2));
        bnt_assert_error(BN_ERR_ARG, "bn_adaptive_avg_pool2d", "x", NULL);
    });
}

Test(pool, bad_dtype_and_rank_are_reported)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_null(bn_max_pool2d(bn_zeros(BN_SHAPE(1, 4, 4), BN_I64), 2, (bn_pool_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_max_pool2d", "x is i64", NULL);
        cr_assert_null(bn_avg_pool2d(bn_zeros(BN_SHAPE(4, 4), BN_F32), 2, (bn_pool_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_avg_pool2d", "[4, 4]", NULL);
        cr_assert_null(bn_adaptive_avg_pool2d(bn_zeros(BN_SHAPE(1, 1, 1, 4, 4), BN_F32), 2, 2));
        bnt_assert_error(BN_ERR_SHAPE, "bn_adaptive_avg_pool2d", "[1, 1, 1, 4, 4]", NULL);
        cr_assert_null(bn_adaptive_avg_pool2d(bn_zeros(BN_SHAPE(1, 2, 0, 4), BN_F32), 2, 2));
        bnt_assert_error(BN_ERR_SHAPE, "bn_adaptive_avg_pool2d", "[1, 2, 0, 4]", NULL);
        bn_scope_end();
    });
}

Test(pool, bad_sizes_and_options_are_reported)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_zeros(BN_SHAPE(1, 2, 5, 5), BN_F32);
        cr_assert_null(bn_max_pool2d(x, 0, (bn_pool_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_max_pool2d", "kernel 0", NULL);
        cr_assert_null(bn_max_pool2d(x, 2, (bn_pool_opts){.stride = -1}));
        bnt_assert_error(BN_ERR_ARG, "bn_max_pool2d", "stride -1", NULL);
        cr_assert_null(bn_max_pool2d(x, 3, (bn_pool_opts){.padding = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_max_pool2d", "padding 2", "half the kernel 3", NULL);
        cr_assert_null(bn_max_pool2d(x, 6, (bn_pool_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_max_pool2d", "[1, 2, 5, 5]", "kernel 6", NULL);
        cr_assert_null(bn_avg_pool2d(x, 2, (bn_pool_opts){.dilation = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_avg_pool2d", "dilation 2", NULL);
        cr_assert_null(bn_avg_pool2d(x, 2, (bn_pool_opts){.padding = -1}));
        bnt_assert_error(BN_ERR_ARG, "bn_avg_pool2d", "padding -1", NULL);
        cr_assert_null(bn_adaptive_avg_pool2d(x, -1, 2));
        bnt_assert_error(BN_ERR_ARG, "bn_adaptive_avg_pool2d", "[-1, 2]", NULL);
        bn_scope_end();
    });
}
