/* tests/unit/test_unary.c — element-wise unary ops (math, activations, rounding, sign, clamp,
 * logical_not): values against PyTorch for every dtype, views, empty and 0-d tensors, large
 * tensors through the parallel path, and bad input. Expected values come from
 * tests/data/elementwise.txt, made by scripts/gen_elementwise.py. */
#include "bn_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef bn_tensor *(*unary_fn)(const bn_tensor *);

/* the parametrised ops with the arguments scripts/gen_elementwise.py used */
static bn_tensor *leaky_relu_01(const bn_tensor *x) { return bn_leaky_relu(x, 0.1); }
static bn_tensor *elu_15(const bn_tensor *x) { return bn_elu(x, 1.5); }
static bn_tensor *softplus_2_10(const bn_tensor *x) { return bn_softplus(x, 2.0, 10.0); }
static bn_tensor *softplus_default(const bn_tensor *x) { return bn_softplus(x, 1.0, 20.0); }
static bn_tensor *clamp_frac(const bn_tensor *x) { return bn_clamp(x, -1.5, 2.5); }
static bn_tensor *clamp_int(const bn_tensor *x) { return bn_clamp(x, -1, 2); }
static bn_tensor *clamp_inverted(const bn_tensor *x) { return bn_clamp(x, 2, -1); }
static bn_tensor *clamp_min_half(const bn_tensor *x) { return bn_clamp_min(x, 0.5); }
static bn_tensor *clamp_max_neg_half(const bn_tensor *x) { return bn_clamp_max(x, -0.5); }

static const struct {
    const char *name;
    unary_fn fn;
} UNARY[] = {
    {"neg", bn_neg},
    {"abs", bn_abs},
    {"exp", bn_exp},
    {"log", bn_log},
    {"log1p", bn_log1p},
    {"sqrt", bn_sqrt},
    {"rsqrt", bn_rsqrt},
    {"sin", bn_sin},
    {"cos", bn_cos},
    {"tanh", bn_tanh},
    {"sigmoid", bn_sigmoid},
    {"relu", bn_relu},
    {"leaky_relu", leaky_relu_01},
    {"elu", elu_15},
    {"gelu", bn_gelu},
    {"gelu_tanh", bn_gelu_tanh},
    {"silu", bn_silu},
    {"softplus", softplus_2_10},
    {"softplus_default", softplus_default},
    {"erf", bn_erf},
    {"floor", bn_floor},
    {"ceil", bn_ceil},
    {"round", bn_round},
    {"sign", bn_sign},
    {"clamp", clamp_frac},
    {"clamp_int", clamp_int},
    {"clamp_inverted", clamp_inverted},
    {"clamp_min", clamp_min_half},
    {"clamp_max", clamp_max_neg_half},
    {"logical_not", bn_logical_not},
};
#define N_UNARY (sizeof UNARY / sizeof UNARY[0])

static void every_op_matches(const char *case_name)
{
    fx_file *f = fx_open("elementwise.txt");
    bn_tensor *x = fx_tensor(f, case_name, "x");
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < N_UNARY; i++)
            bnt_expect_fixture(f, case_name, UNARY[i].name, UNARY[i].fn(x));
    });
    bnt_assert_no_error(case_name);
    bn_release(x);
    fx_close(f);
}

/* ---- values against PyTorch -------------------------------------------------------------- */
Test(unary, every_op_matches_torch_in_f32) { every_op_matches("unary.f32"); }
Test(unary, every_op_matches_torch_in_f64) { every_op_matches("unary.f64"); }
Test(unary, every_op_matches_torch_in_f16_computed_in_f32) { every_op_matches("unary.f16"); }
Test(unary, every_op_matches_torch_in_bf16_computed_in_f32) { every_op_matches("unary.bf16"); }
Test(unary, every_op_matches_torch_in_i8_with_wrapping_neg_abs) { every_op_matches("unary.i8"); }
Test(unary, every_op_matches_torch_in_u8) { every_op_matches("unary.u8"); }
Test(unary, every_op_matches_torch_in_i32) { every_op_matches("unary.i32"); }
Test(unary, every_op_matches_torch_in_i64_exactly) { every_op_matches("unary.i64"); }

Test(unary, bool_inputs_follow_torch_dtypes)
{
    fx_file *f = fx_open("elementwise.txt");
    bn_tensor *x = fx_tensor(f, "unary.bool", "x");
    bnt_expect_fixture(f, "unary.bool", "sign", bn_sign(x));
    bnt_expect_fixture(f, "unary.bool", "logical_not", bn_logical_not(x));
    bnt_expect_fixture(f, "unary.bool", "exp", bn_exp(x));
    bnt_expect_fixture(f, "unary.bool", "sigmoid", bn_sigmoid(x));
    bnt_expect_fixture(f, "unary.bool", "clamp_int", bn_clamp(x, 0, 3)); /* i64 */
    bnt_expect_fixture(f, "unary.bool", "clamp", bn_clamp(x, 0.5, 3));   /* f32 */
    bn_release(x);
    fx_close(f);
}

Test(unary, result_dtypes_follow_torch)
{
    bn_tensor *i = bn_zeros(BN_SHAPE(2), BN_I32);
    bn_tensor *h = bn_zeros(BN_SHAPE(2), BN_F16);
    bn_scope_begin();
    cr_assert_eq(bn_dtype_of(bn_exp(i)), BN_F32);
    cr_assert_eq(bn_dtype_of(bn_gelu(i)), BN_F32);
    cr_assert_eq(bn_dtype_of(bn_neg(i)), BN_I32);
    cr_assert_eq(bn_dtype_of(bn_floor(i)), BN_I32);
    cr_assert_eq(bn_dtype_of(bn_clamp(i, 0, 1)), BN_I32);
    cr_assert_eq(bn_dtype_of(bn_clamp(i, 0, 1.5)), BN_F32);
    cr_assert_eq(bn_dtype_of(bn_clamp_min(i, NAN)), BN_F32);
    cr_assert_eq(bn_dtype_of(bn_logical_not(h)), BN_BOOL);
    cr_assert_eq(bn_dtype_of(bn_sqrt(h)), BN_F16);
    bn_scope_end();
    bn_release(h);
    bn_release(i);
}

/* ---- extreme values ---------------------------------------------------------------------- */
Test(unary, extreme_inputs_give_ieee_results)
{
    const float xs[6] = {100.0f, -100.0f, 0.0f, -1.0f, 1e30f, -1e30f};
    bn_tensor *x = bn_from_data(xs, BN_SHAPE(6), BN_F32);
    bn_scope_begin();
    const double exp_want[6] = {INFINITY, 0.0, 1.0, exp(-1.0), INFINITY, 0.0};
    bnt_assert_values(bn_exp(x), exp_want, 6, 1e-6, "exp");
    const double sig_want[6] = {1.0, 0.0, 0.5, 1.0 / (1.0 + exp(1.0)), 1.0, 0.0};
    bnt_assert_values(bn_sigmoid(x), sig_want, 6, 1e-6, "sigmoid");
    const double log_want[6] = {log(100.0), NAN, -INFINITY, NAN, log(1e30), NAN};
    bnt_assert_values(bn_log(x), log_want, 6, 1e-6, "log");
    const double silu_want[6] = {100.0, 0.0, 0.0, -1.0 / (1.0 + exp(1.0)), 1e30, 0.0};
    bnt_assert_values(bn_silu(x), silu_want, 6, 1e-6, "silu");
    const double tanh_want[6] = {1.0, -1.0, 0.0, tanh(-1.0), 1.0, -1.0};
    bnt_assert_values(bn_tanh(x), tanh_want, 6, 1e-6, "tanh");
    /* softplus is linear above the threshold, so no overflow for huge inputs */
    const double sp_want[6] = {100.0, 0.0, log(2.0), log1p(exp(-1.0)), 1e30, 0.0};
    bnt_assert_values(bn_softplus(x, 1.0, 20.0), sp_want, 6, 1e-6, "softplus");
    bn_scope_end();
    bn_release(x);
}

Test(unary, round_is_half_to_even_and_sign_of_nan_is_zero)
{
    const double xs[7] = {0.5, 1.5, 2.5, -0.5, -2.5, NAN, -3.0};
    bn_tensor *x = bn_from_data(xs, BN_SHAPE(7), BN_F64);
    bn_scope_begin();
    const double round_want[7] = {0, 2, 2, -0.0, -2, NAN, -3};
    bnt_assert_values(bn_round(x), round_want, 7, 0, "round");
    const double sign_want[7] = {1, 1, 1, -1, -1, 0, -1};
    bnt_assert_values(bn_sign(x), sign_want, 7, 0, "sign");
    bn_scope_end();
    bn_release(x);
}

Test(unary, clamp_propagates_nan_from_input_and_bounds)
{
    const float xs[3] = {NAN, 1.0f, 5.0f};
    bn_tensor *x = bn_from_data(xs, BN_SHAPE(3), BN_F32);
    bn_scope_begin();
    const double want[3] = {NAN, 1.0, 3.0};
    bnt_assert_values(bn_clamp(x, 0, 3), want, 3, 0, "clamp");
    const double all_nan[3] = {NAN, NAN, NAN};
    bnt_assert_values(bn_clamp(x, NAN, 3), all_nan, 3, 0, "clamp nan lo");
    bnt_assert_values(bn_clamp_max(x, NAN), all_nan, 3, 0, "clamp_max nan");
    bn_scope_end();
    bn_release(x);
}

Test(unary, integer_clamp_with_bounds_beyond_the_dtype_is_exact)
{
    const int8_t xs[4] = {-128, -5, 5, 127};
    bn_tensor *x = bn_from_data(xs, BN_SHAPE(4), BN_I8);
    bn_scope_begin();
    bn_tensor *y = bn_clamp(x, -1000, 1000);
    cr_assert_eq(bn_dtype_of(y), BN_I8);
    const double same[4] = {-128, -5, 5, 127};
    bnt_assert_values(y, same, 4, 0, "clamp wide");
    const double low[4] = {-128, -128, -128, -128};
    bnt_assert_values(bn_clamp_max(x, -1e30), low, 4, 0, "clamp_max far below");
    bn_scope_end();
    bn_release(x);
}

/* ---- layouts ----------------------------------------------------------------------------- */
Test(unary, transposed_and_sliced_inputs_match_torch)
{
    fx_file *f = fx_open("elementwise.txt");
    const char *c = "views.unary";
    bn_tensor *x = fx_tensor(f, c, "x");
    bn_tensor *xh = fx_tensor(f, c, "xh");
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *xt = bn_transpose(x, 0, 1);
        bnt_expect_fixture(f, c, "exp_t", bn_scope_keep(bn_exp(xt)));
        bnt_expect_fixture(f, c, "gelu_t", bn_scope_keep(bn_gelu(xt)));
        bnt_expect_fixture(f, c, "relu_slice", bn_scope_keep(bn_relu(bn_slice(x, 1, 1, 6, 2))));
        bn_tensor *s = bn_slice(bn_slice(x, 0, 1, 3, 1), 1, 0, 6, 3);
        bnt_expect_fixture(f, c, "tanh_slice", bn_scope_keep(bn_tanh(s)));
        bnt_expect_fixture(f, c, "sigmoid_half_t", bn_scope_keep(bn_sigmoid(bn_transpose(xh, 0, 1))));
        bn_scope_end();
    });
    bn_release(xh);
    bn_release(x);
    fx_close(f);
}

Test(unary, expanded_input_reads_broadcast_elements)
{
    const float xs[3] = {-1.0f, 0.0f, 2.0f};
    bn_tensor *x = bn_from_data(xs, BN_SHAPE(3), BN_F32);
    bn_scope_begin();
    bn_tensor *y = bn_abs(bn_expand(x, BN_SHAPE(2, 3)));
    cr_assert(bn_shape_equal(bn_shape_of(y), BN_SHAPE(2, 3)));
    const double want[6] = {1, 0, 2, 1, 0, 2};
    bnt_assert_values(y, want, 6, 0, "abs of expand");
    bn_scope_end();
    bn_release(x);
}

Test(unary, empty_and_zero_dim_tensors)
{
    bn_scope_begin();
    bn_tensor *e = bn_exp(bn_zeros(BN_SHAPE(0, 3), BN_F32));
    cr_assert_not_null(e);
    cr_assert(bn_shape_equal(bn_shape_of(e), BN_SHAPE(0, 3)));
    bn_tensor *ei = bn_sqrt(bn_zeros(BN_SHAPE(4, 0), BN_I32));
    cr_assert_eq(bn_dtype_of(ei), BN_F32);
    cr_assert_eq(bn_numel(ei), 0);
    bn_tensor *s = bn_exp(bn_scalar(1.0, BN_F64));
    cr_assert_eq(bn_ndim(s), 0);
    cr_assert_float_eq(bn_item(s), exp(1.0), 1e-15);
    bn_tensor *n = bn_neg(bn_scalar(-7, BN_I64));
    cr_assert_eq(bn_ndim(n), 0);
    cr_assert_eq(bn_item(n), 7.0);
    bn_scope_end();
    bnt_assert_no_error("empty and 0-d");
}

/* ---- large tensors: the parallel path and f16 blocks against a per-element reference ------ */
Test(unary, large_strided_inputs_match_a_per_element_reference)
{
    bn_manual_seed(7);
    bn_tensor *x = bn_randn(BN_SHAPE(300, 257), BN_F32);
    bn_tensor *xh = bn_to_dtype(x, BN_F16);
    bn_tensor *xt = bn_transpose(x, 0, 1);
    bn_tensor *xht = bn_transpose(xh, 0, 1);
    bn_tensor *y = bn_gelu(xt);
    bn_tensor *yh = bn_sigmoid(xht);
    int64_t idx[2];
    for (idx[0] = 0; idx[0] < 257; idx[0] += 3)
        for (idx[1] = 0; idx[1] < 300; idx[1]++) {
            float v = (float)bn_get(xt, idx);
            float want = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
            cr_assert_float_eq(bn_get(y, idx), want, 1e-6, "gelu at %lld,%lld", (long long)idx[0],
                               (long long)idx[1]);
            float vh = (float)bn_get(xht, idx);
            float wh = bn_f16_to_f32(bn_f32_to_f16(1.0f / (1.0f + expf(-vh))));
            cr_assert_eq(bn_get(yh, idx), wh, "f16 sigmoid at %lld,%lld", (long long)idx[0],
                         (long long)idx[1]);
        }
    bn_release(yh);
    bn_release(y);
    bn_release(xht);
    bn_release(xt);
    bn_release(xh);
    bn_release(x);
}

/* ---- bad input --------------------------------------------------------------------------- */
Test(unary, every_op_reports_a_null_input_and_leaks_nothing)
{
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < N_UNARY; i++) {
            bn_error_clear();
            cr_assert_null(UNARY[i].fn(NULL), "%s", UNARY[i].name);
            bnt_assert_error(BN_ERR_ARG, "bn_", "argument x is NULL", NULL);
        }
    });
}

Test(unary, null_input_keeps_an_earlier_error)
{
    bn_error_clear();
    cr_assert_null(bn_transpose(NULL, 0, 1));
    cr_assert_null(bn_exp(bn_transpose(NULL, 0, 1)));
    bnt_assert_error(BN_ERR_ARG, "bn_transpose", NULL);
}

Test(unary, bool_inputs_are_refused_where_torch_refuses_them)
{
    bn_tensor *b = bn_ones(BN_SHAPE(2, 2), BN_BOOL);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_neg(b));
        bnt_assert_error(BN_ERR_DTYPE, "bn_neg", "bool", "[2, 2]", "bn_logical_not", NULL);
        cr_assert_null(bn_abs(b));
        bnt_assert_error(BN_ERR_DTYPE, "bn_abs", "x is a bool tensor [2, 2]", NULL);
        cr_assert_null(bn_relu(b));
        bnt_assert_error(BN_ERR_DTYPE, "bn_relu", "bool", NULL);
        cr_assert_null(bn_floor(b));
        bnt_assert_error(BN_ERR_DTYPE, "bn_floor", "bool", NULL);
        cr_assert_null(bn_ceil(b));
        bnt_assert_error(BN_ERR_DTYPE, "bn_ceil", "bool", NULL);
        cr_assert_null(bn_round(b));
        bnt_assert_error(BN_ERR_DTYPE, "bn_round", "bool", NULL);
    });
    bn_release(b);
}

Test(unary, softplus_refuses_a_zero_beta)
{
    bn_tensor *x = bn_ones(BN_SHAPE(3), BN_F32);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_softplus(x, 0.0, 20.0));
        bnt_assert_error(BN_ERR_ARG, "bn_softplus", "beta is 0", NULL);
    });
    bn_release(x);
}
