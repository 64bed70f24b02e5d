/* tests/unit/test_binary.c — element-wise binary ops (arithmetic, maximum/minimum, remainder,
 * comparisons, logical ops), their scalar variants, where and masked_fill: values against
 * PyTorch for every dtype, broadcasting, promotion, views, empty and 0-d tensors, the parallel
 * path, and bad input. Expected values come from tests/data/elementwise.txt, made by
 * scripts/gen_elementwise.py. */
#include "bn_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef bn_tensor *(*binary_fn)(const bn_tensor *, const bn_tensor *);
typedef bn_tensor *(*scalar_fn)(const bn_tensor *, double);

static const struct {
    const char *name;
    binary_fn fn;
} BINARY[] = {
    {"add", bn_add},
    {"sub", bn_sub},
    {"mul", bn_mul},
    {"div", bn_div},
    {"pow", bn_pow},
    {"maximum", bn_maximum},
    {"minimum", bn_minimum},
    {"remainder", bn_remainder},
    {"eq", bn_eq},
    {"ne", bn_ne},
    {"lt", bn_lt},
    {"le", bn_le},
    {"gt", bn_gt},
    {"ge", bn_ge},
    {"logical_and", bn_logical_and},
    {"logical_or", bn_logical_or},
    {"logical_xor", bn_logical_xor},
};
#define N_BINARY (sizeof BINARY / sizeof BINARY[0])

static bn_tensor *rpow(const bn_tensor *a, double s) { return bn_rpow_scalar(s, a); }

static const struct {
    const char *name;
    scalar_fn fn;
} SCALAR[] = {
    {"add", bn_add_scalar},
    {"sub", bn_sub_scalar},
    {"mul", bn_mul_scalar},
    {"div", bn_div_scalar},
    {"pow", bn_pow_scalar},
    {"rpow", rpow},
    {"maximum", bn_maximum_scalar},
    {"minimum", bn_minimum_scalar},
    {"remainder", bn_remainder_scalar},
    {"eq", bn_eq_scalar},
    {"ne", bn_ne_scalar},
    {"lt", bn_lt_scalar},
    {"le", bn_le_scalar},
    {"gt", bn_gt_scalar},
    {"ge", bn_ge_scalar},
};
#define N_SCALAR (sizeof SCALAR / sizeof SCALAR[0])

/* a [2, 3, 4] op b [4] for every op (bool skips sub, pow and remainder, which it refuses) */
static void every_op_matches(const char *case_name, bool is_bool)
{
    fx_file *f = fx_open("elementwise.txt");
    bn_tensor *a = fx_tensor(f, case_name, "a");
    bn_tensor *b = fx_tensor(f, case_name, "b");
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < N_BINARY; i++) {
            const char *n = BINARY[i].name;
            if (is_bool && (!strcmp(n, "sub") || !strcmp(n, "pow") || !strcmp(n, "remainder")))
                continue;
            bnt_expect_fixture(f, case_name, n, BINARY[i].fn(a, b));
        }
    });
    bnt_assert_no_error(case_name);
    bn_release(b);
    bn_release(a);
    fx_close(f);
}

/* ---- values against PyTorch -------------------------------------------------------------- */
Test(binary, every_op_matches_torch_in_f32) { every_op_matches("binary.f32", false); }
Test(binary, every_op_matches_torch_in_f64) { every_op_matches("binary.f64", false); }
Test(binary, every_op_matches_torch_in_f16) { every_op_matches("binary.f16", false); }
Test(binary, every_op_matches_torch_in_bf16) { every_op_matches("binary.bf16", false); }
Test(binary, every_op_matches_torch_in_i8_wrapping) { every_op_matches("binary.i8", false); }
Test(binary, every_op_matches_torch_in_u8_wrapping) { every_op_matches("binary.u8", false); }
Test(binary, every_op_matches_torch_in_i32) { every_op_matches("binary.i32", false); }
Test(binary, every_op_matches_torch_in_i64_exactly) { every_op_matches("binary.i64", false); }
Test(binary, bool_ops_match_torch) { every_op_matches("binary.bool", true); }

Test(binary, broadcasts_3x1_with_1x4_and_with_a_0d_tensor)
{
    fx_file *f = fx_open("elementwise.txt");
    const char *c = "broadcast.3x1_1x4";
    bn_tensor *a = fx_tensor(f, c, "a"), *b = fx_tensor(f, c, "b");
    BNT_ASSERT_NO_LEAK({
        bnt_expect_fixture(f, c, "add", bn_add(a, b));
        bnt_expect_fixture(f, c, "mul", bn_mul(a, b));
        bn_tensor *aa = bn_abs(a);
        bnt_expect_fixture(f, c, "pow", bn_pow(aa, b));
        bn_release(aa);
        bnt_expect_fixture(f, c, "lt", bn_lt(a, b));
    });
    bn_release(b);
    bn_release(a);
    c = "broadcast.0d";
    a = fx_tensor(f, c, "a");
    b = fx_tensor(f, c, "b");
    cr_assert_eq(bn_ndim(b), 0);
    bnt_expect_fixture(f, c, "sub", bn_sub(a, b));
    bnt_expect_fixture(f, c, "rsub", bn_sub(b, a));
    bn_release(b);
    bn_release(a);
    fx_close(f);
}

Test(binary, mixed_dtypes_promote_like_torch)
{
    fx_file *f = fx_open("elementwise.txt");
    const char *c = "promote";
#define T(name) bn_tensor *name = fx_tensor(f, c, #name)
    T(i32);
    T(f32);
    T(i8);
    T(u8);
    T(h);
    T(bf);
    T(i64);
    T(bo);
    T(i64b);
    T(i32b);
    T(f64b);
#undef T
    BNT_ASSERT_NO_LEAK({
        bnt_expect_fixture(f, c, "i32_add_f32", bn_add(i32, f32));
        bnt_expect_fixture(f, c, "i8_add_u8", bn_add(i8, u8)); /* i32: born has no i16 */
        bnt_expect_fixture(f, c, "h_mul_bf", bn_mul(h, bf));   /* f32 */
        bnt_expect_fixture(f, c, "bo_add_i64", bn_add(bo, i64));
        bnt_expect_fixture(f, c, "i64_div_i64", bn_div(i64, i64b)); /* true division in f32 */
        bnt_expect_fixture(f, c, "bo_div_bo", bn_div(bo, bo));
        bnt_expect_fixture(f, c, "i32_lt_f32", bn_lt(i32, f32));
        bnt_expect_fixture(f, c, "i64_remainder_i32", bn_remainder(i64, i32b));
        bnt_expect_fixture(f, c, "h_add_f64", bn_add(h, f64b));
    });
    bn_tensor *all[] = {i32, f32, i8, u8, h, bf, i64, bo, i64b, i32b, f64b};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) bn_release(all[i]);
    fx_close(f);
}

Test(binary, transposed_sliced_and_expanded_inputs_match_torch)
{
    fx_file *f = fx_open("elementwise.txt");
    const char *c = "views.binary";
    bn_tensor *a = fx_tensor(f, c, "a"), *b = fx_tensor(f, c, "b");
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bnt_expect_fixture(f, c, "add_t", bn_scope_keep(bn_add(bn_transpose(a, 0, 2), b)));
        bn_tensor *even = bn_slice(b, 2, 0, 4, 2);
        bn_tensor *odd = bn_slice(b, 2, 1, 4, 2);
        bnt_expect_fixture(f, c, "maximum_slice", bn_scope_keep(bn_maximum(even, odd)));
        bn_tensor *col = bn_expand(bn_slice(a, 1, 0, 1, 1), BN_SHAPE(4, 3, 2));
        bnt_expect_fixture(f, c, "mul_expand", bn_scope_keep(bn_mul(col, a)));
        bn_scope_end();
    });
    bn_release(b);
    bn_release(a);
    fx_close(f);
}

/* ---- scalar variants: every "scalar.<op>.<n>" case of the fixture ------------------------- */
static scalar_fn scalar_op(const char *case_name)
{
    const char *op = case_name + strlen("scalar.");
    size_t n = strcspn(op, ".");
    for (size_t i = 0; i < N_SCALAR; i++)
        if (strlen(SCALAR[i].name) == n && !strncmp(SCALAR[i].name, op, n)) return SCALAR[i].fn;
    cr_assert_fail("no scalar op for case %s", case_name);
    return NULL;
}

Test(binary, scalar_variants_match_torch_and_compare_integers_exactly)
{
    fx_file *f = fx_open("elementwise.txt");
    int cases = 0;
    for (int i = 0;; i++) {
        const char *name = fx_case_name(f, i);
        if (!name) break;
        if (strncmp(name, "scalar.", 7)) continue;
        char c[128];
        snprintf(c, sizeof c, "%s", name);
        bn_tensor *a = fx_tensor(f, c, "a");
        double s = fx_scalar(f, c, "s");
        BNT_ASSERT_NO_LEAK(bnt_expect_fixture(f, c, "out", scalar_op(c)(a, s)));
        bn_release(a);
        cases++;
    }
    cr_assert_gt(cases, 100);
    fx_close(f);
}

Test(binary, int_tensor_compared_with_fraction_is_exact)
{
    const int32_t xs[2] = {1, 2};
    bn_tensor *x = bn_from_data(xs, BN_SHAPE(2), BN_I32);
    const int32_t big[1] = {16777217}; /* not an f32: comparing in f32 would say false */
    bn_tensor *xb = bn_from_data(big, BN_SHAPE(1), BN_I32);
    bn_scope_begin();
    const double lt[2] = {1, 0};
    bnt_assert_values(bn_lt_scalar(x, 1.5), lt, 2, 0, "lt 1.5");
    const double gt[1] = {1};
    bnt_assert_values(bn_gt_scalar(xb, 16777216.5), gt, 1, 0, "gt 16777216.5");
    cr_assert_eq(bn_dtype_of(bn_ge_scalar(x, 1.5)), BN_BOOL);
    bn_scope_end();
    bn_release(xb);
    bn_release(x);
}

Test(binary, scalar_result_dtypes_follow_python_scalars)
{
    bn_tensor *i = bn_zeros(BN_SHAPE(2), BN_I32);
    bn_tensor *b = bn_zeros(BN_SHAPE(2), BN_BOOL);
    bn_tensor *h = bn_zeros(BN_SHAPE(2), BN_F16);
    bn_scope_begin();
    cr_assert_eq(bn_dtype_of(bn_add_scalar(i, 2)), BN_I32);
    cr_assert_eq(bn_dtype_of(bn_add_scalar(i, 2.5)), BN_F32);
    cr_assert_eq(bn_dtype_of(bn_div_scalar(i, 2)), BN_F32);
    cr_assert_eq(bn_dtype_of(bn_add_scalar(b, 2)), BN_I64);
    cr_assert_eq(bn_dtype_of(bn_mul_scalar(h, 1e10)), BN_F16);
    cr_assert_eq(bn_dtype_of(bn_rpow_scalar(2.5, i)), BN_F32);
    cr_assert_eq(bn_dtype_of(bn_eq_scalar(h, 0)), BN_BOOL);
    bn_scope_end();
    bn_release(h);
    bn_release(b);
    bn_release(i);
}

/* ---- integer edge cases ------------------------------------------------------------------ */
Test(binary, integer_division_by_zero_is_inf_for_div_and_an_error_for_remainder)
{
    const int32_t xs[2] = {5, -5}, zs[2] = {0, 0};
    bn_tensor *x = bn_from_data(xs, BN_SHAPE(2), BN_I32);
    bn_tensor *z = bn_from_data(zs, BN_SHAPE(2), BN_I32);
    const double want[2] = {INFINITY, -INFINITY};
    BNT_ASSERT_NO_LEAK({
        bn_tensor *d = bn_div(x, z);
        bnt_assert_values(d, want, 2, 0, "div by zero");
        bn_release(d);
        cr_assert_null(bn_remainder(x, z));
        bnt_assert_error(BN_ERR_ARG, "bn_remainder", "division by zero", NULL);
        cr_assert_null(bn_remainder_scalar(x, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_remainder_scalar", "division by zero", "s is 0", NULL);
    });
    bn_release(z);
    bn_release(x);
}

Test(binary, int_min_remainder_minus_one_is_zero_without_trapping)
{
    const int64_t xs[2] = {INT64_MIN, 7}, ms[2] = {-1, -1};
    bn_tensor *x = bn_from_data(xs, BN_SHAPE(2), BN_I64);
    bn_tensor *m = bn_from_data(ms, BN_SHAPE(2), BN_I64);
    bn_tensor *r = bn_remainder(x, m);
    const double want[2] = {0, 0};
    bnt_assert_values(r, want, 2, 0, "INT64_MIN % -1");
    bn_release(r);
    bn_release(m);
    bn_release(x);
}

Test(binary, integer_pow_with_negative_exponents)
{
    const int32_t bs[4] = {1, -1, -1, 2}, es[4] = {-3, -3, -2, -1};
    bn_tensor *b = bn_from_data(bs, BN_SHAPE(4), BN_I32);
    bn_tensor *e = bn_from_data(es, BN_SHAPE(4), BN_I32);
    const double want[4] = {1, -1, 1, 0}; /* like torch */
    BNT_ASSERT_NO_LEAK({
        bn_tensor *p = bn_pow(b, e);
        bnt_assert_values(p, want, 4, 0, "pow");
        bn_release(p);
        cr_assert_null(bn_pow_scalar(b, -2));
        bnt_assert_error(BN_ERR_ARG, "bn_pow_scalar", "negative integer power", "s is -2", NULL);
    });
    bn_release(e);
    bn_release(b);
}

/* ---- empty, 0-d, and the parallel path ---------------------------------------------------- */
Test(binary, empty_and_zero_dim_operands)
{
    bn_scope_begin();
    bn_tensor *e = bn_add(bn_zeros(BN_SHAPE(0, 3), BN_F32), bn_ones(BN_SHAPE(3), BN_F32));
    cr_assert(bn_shape_equal(bn_shape_of(e), BN_SHAPE(0, 3)));
    bn_tensor *e2 = bn_lt(bn_zeros(BN_SHAPE(2, 0), BN_I32), bn_ones(BN_SHAPE(1, 1), BN_F32));
    cr_assert(bn_shape_equal(bn_shape_of(e2), BN_SHAPE(2, 0)));
    cr_assert_eq(bn_dtype_of(e2), BN_BOOL);
    bn_tensor *s = bn_mul(bn_scalar(3, BN_I64), bn_scalar(-4, BN_I64));
    cr_assert_eq(bn_ndim(s), 0);
    cr_assert_eq(bn_item(s), -12.0);
    bn_tensor *m = bn_masked_fill(bn_zeros(BN_SHAPE(0), BN_F32), bn_ones(BN_SHAPE(0), BN_BOOL), 1);
    cr_assert_eq(bn_numel(m), 0);
    bn_tensor *w = bn_where(bn_scalar(1, BN_BOOL), bn_scalar(2, BN_F32), bn_scalar(3, BN_F32));
    cr_assert_eq(bn_item(w), 2.0);
    bn_scope_end();
    bnt_assert_no_error("empty and 0-d");
}

Test(binary, large_strided_inputs_match_a_per_element_reference)
{
    bn_manual_seed(11);
    bn_tensor *a = bn_randn(BN_SHAPE(257, 300), BN_F32);
    bn_tensor *b = bn_randn(BN_SHAPE(300), BN_F32);
    bn_tensor *ah = bn_to_dtype(a, BN_BF16);
    bn_tensor *at = bn_transpose(a, 0, 1);           /* [300, 257] */
    bn_tensor *bc = bn_reshape(b, BN_SHAPE(300, 1)); /* broadcast along dim 1 */
    bn_tensor *y = bn_sub(at, bc);
    bn_tensor *yh = bn_mul(ah, b); /* bf16 * f32 -> f32 */
    bn_tensor *q = bn_remainder(at, bc);
    int64_t idx[2];
    for (idx[0] = 0; idx[0] < 300; idx[0] += 7)
        for (idx[1] = 0; idx[1] < 257; idx[1]++) {
            float av = (float)bn_get(at, idx), bv = (float)bn_get(b, &idx[0]);
            cr_assert_eq(bn_get(y, idx), (double)(av - bv));
            float r = fmodf(av, bv);
            if (r != 0 && ((bv < 0) != (r < 0))) r += bv;
            cr_assert_eq(bn_get(q, idx), (double)r);
            int64_t j[2] = {idx[1], idx[0]};
            float hv = bn_bf16_to_f32(bn_f32_to_bf16((float)bn_get(a, j)));
            cr_assert_eq(bn_get(yh, j), (double)(hv * bv));
        }
    bn_tensor *all[] = {q, yh, y, bc, at, ah, b, a};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) bn_release(all[i]);
}

/* ---- where and masked_fill ----------------------------------------------------------------- */
Test(binary, where_broadcasts_and_promotes)
{
    fx_file *f = fx_open("elementwise.txt");
    const char *c = "where.broadcast";
    bn_tensor *cond = fx_tensor(f, c, "cond"), *a = fx_tensor(f, c, "a"), *b = fx_tensor(f, c, "b");
    BNT_ASSERT_NO_LEAK(bnt_expect_fixture(f, c, "out", bn_where(cond, a, b)));
    bn_release(b);
    bn_release(a);
    bn_release(cond);
    fx_close(f);
}

Test(binary, where_selects_in_every_dtype)
{
    static const char *names[] = {"f32", "f64", "f16", "bf16", "i8", "u8", "i32", "i64", "bool"};
    fx_file *f = fx_open("elementwise.txt");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char c[32];
        snprintf(c, sizeof c, "where.%s", names[i]);
        bn_tensor *cond = fx_tensor(f, c, "cond"), *a = fx_tensor(f, c, "a"),
                  *b = fx_tensor(f, c, "b");
        bnt_expect_fixture(f, c, "out", bn_where(cond, a, b));
        /* a transposed view selects the same way */
        bn_tensor *ct = bn_transpose(cond, 0, 1), *at = bn_transpose(a, 0, 1);
        bn_tensor *bt = bn_reshape(b, BN_SHAPE(3, 1));
        bn_tensor *got = bn_where(ct, at, bt);
        bn_tensor *want = fx_tensor(f, c, "out");
        bn_tensor *wt = bn_transpose(want, 0, 1);
        bnt_assert_equal(got, wt, c);
        bn_tensor *all[] = {wt, want, got, bt, at, ct, b, a, cond};
        for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) bn_release(all[k]);
    }
    fx_close(f);
}

Test(binary, masked_fill_matches_torch)
{
    fx_file *f = fx_open("elementwise.txt");
    const struct {
        const char *c;
        double value;
    } cases[] = {{"masked_fill.f32", -INFINITY},
                 {"masked_fill.i32", 5.5},
                 {"masked_fill.broadcast_mask", 9}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_tensor *x = fx_tensor(f, cases[i].c, "x"), *m = fx_tensor(f, cases[i].c, "mask");
        BNT_ASSERT_NO_LEAK(
            bnt_expect_fixture(f, cases[i].c, "out", bn_masked_fill(x, m, cases[i].value)));
        bn_release(m);
        bn_release(x);
    }
    fx_close(f);
}

/* ---- bad input --------------------------------------------------------------------------- */
Test(binary, every_op_names_both_shapes_when_they_do_not_broadcast)
{
    bn_tensor *a = bn_zeros(BN_SHAPE(2, 3), BN_F32), *b = bn_zeros(BN_SHAPE(4), BN_F32);
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < N_BINARY; i++) {
            cr_assert_null(BINARY[i].fn(a, b), "%s", BINARY[i].name);
            char fn[64];
            snprintf(fn, sizeof fn, "bn_%s:", BINARY[i].name);
            bnt_assert_error(BN_ERR_SHAPE, fn, "[2, 3]", "[4]", NULL);
        }
    });
    bn_release(b);
    bn_release(a);
}

Test(binary, every_op_reports_null_inputs)
{
    bn_tensor *a = bn_zeros(BN_SHAPE(2), BN_F32);
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < N_BINARY; i++) {
            cr_assert_null(BINARY[i].fn(NULL, a));
            bnt_assert_error(BN_ERR_ARG, BINARY[i].name, "argument a is NULL", NULL);
            cr_assert_null(BINARY[i].fn(a, NULL));
            bnt_assert_error(BN_ERR_ARG, BINARY[i].name, "argument b is NULL", NULL);
        }
        for (size_t i = 0; i < N_SCALAR; i++) {
            cr_assert_null(SCALAR[i].fn(NULL, 1.0));
            bnt_assert_error(BN_ERR_ARG, "_scalar", "argument a is NULL", NULL);
        }
        cr_assert_null(bn_where(NULL, a, a));
        bnt_assert_error(BN_ERR_ARG, "bn_where", "argument cond is NULL", NULL);
        cr_assert_null(bn_masked_fill(a, NULL, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_masked_fill", "argument mask is NULL", NULL);
    });
    bn_release(a);
}

Test(binary, bool_operands_are_refused_where_torch_refuses_them)
{
    bn_tensor *b = bn_ones(BN_SHAPE(2), BN_BOOL);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_sub(b, b));
        bnt_assert_error(BN_ERR_DTYPE, "bn_sub", "bool", "bn_logical_xor", NULL);
        cr_assert_null(bn_sub_scalar(b, 1));
        bnt_assert_error(BN_ERR_DTYPE, "bn_sub_scalar", "bool", NULL);
        cr_assert_null(bn_pow(b, b));
        bnt_assert_error(BN_ERR_DTYPE, "bn_pow", "bool", NULL);
        cr_assert_null(bn_remainder(b, b));
        bnt_assert_error(BN_ERR_DTYPE, "bn_remainder", "bool", NULL);
    });
    bn_release(b);
}

Test(binary, where_and_masked_fill_need_a_bool_condition)
{
    bn_tensor *c = bn_ones(BN_SHAPE(2, 3), BN_I64), *x = bn_zeros(BN_SHAPE(2, 3), BN_F32);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_where(c, x, x));
        bnt_assert_error(BN_ERR_DTYPE, "bn_where", "cond must be bool", "i64", "[2, 3]", NULL);
        cr_assert_null(bn_masked_fill(x, c, 1.0));
        bnt_assert_error(BN_ERR_DTYPE, "bn_masked_fill", "mask must be bool", "i64", NULL);
    });
    bn_release(x);
    bn_release(c);
}

Test(binary, where_and_masked_fill_name_shapes_that_do_not_broadcast)
{
    bn_tensor *c = bn_ones(BN_SHAPE(2, 3), BN_BOOL), *a = bn_zeros(BN_SHAPE(3), BN_F32);
    bn_tensor *b = bn_zeros(BN_SHAPE(4), BN_F32);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_where(c, a, b));
        bnt_assert_error(BN_ERR_SHAPE, "bn_where", "cond [2, 3]", "a [3]", "b [4]", NULL);
        cr_assert_null(bn_masked_fill(b, c, 1.0));
        bnt_assert_error(BN_ERR_SHAPE, "bn_masked_fill", "[4]", "[2, 3]", NULL);
    });
    bn_release(b);
    bn_release(a);
    bn_release(c);
}

Test(binary, masked_fill_refuses_a_value_that_overflows_the_dtype)
{
    bn_tensor *x = bn_zeros(BN_SHAPE(2), BN_I8), *h = bn_zeros(BN_SHAPE(2), BN_F16);
    bn_tensor *m = bn_ones(BN_SHAPE(2), BN_BOOL);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_masked_fill(x, m, 1000));
        bnt_assert_error(BN_ERR_ARG, "bn_masked_fill", "value 1000", "i8", NULL);
        cr_assert_null(bn_masked_fill(x, m, NAN));
        bnt_assert_error(BN_ERR_ARG, "bn_masked_fill", "i8", NULL);
        cr_assert_null(bn_masked_fill(h, m, 70000));
        bnt_assert_error(BN_ERR_ARG, "bn_masked_fill", "value 70000", "f16", NULL);
        bn_tensor *ok = bn_masked_fill(h, m, -INFINITY);
        cr_assert_not_null(ok);
        bn_release(ok);
    });
    bn_release(m);
    bn_release(h);
    bn_release(x);
}

/* torch.result_type: a 0-d tensor only raises the category (values checked with torch 1.13). */
Test(binary, zero_dim_operands_promote_like_torch)
{
    bn_scope_begin();
    bn_tensor *h = bn_ones(BN_SHAPE(2), BN_F16), *i = bn_ones(BN_SHAPE(2), BN_I32);
    bn_tensor *b = bn_ones(BN_SHAPE(2), BN_BOOL), *u = bn_ones(BN_SHAPE(2), BN_U8);
    cr_assert_eq(bn_dtype_of(bn_add(h, bn_scalar(1, BN_F64))), BN_F16);
    cr_assert_eq(bn_dtype_of(bn_add(bn_scalar(1, BN_F64), h)), BN_F16);
    cr_assert_eq(bn_dtype_of(bn_add(i, bn_scalar(1.5, BN_F64))), BN_F64);
    cr_assert_eq(bn_dtype_of(bn_add(i, bn_scalar(1, BN_I64))), BN_I32);
    cr_assert_eq(bn_dtype_of(bn_add(b, bn_scalar(1, BN_I64))), BN_I64);
    cr_assert_eq(bn_dtype_of(bn_add(u, bn_scalar(1, BN_I8))), BN_U8);
    cr_assert_eq(bn_dtype_of(bn_add(bn_scalar(1, BN_F16), bn_scalar(1, BN_F64))), BN_F64);
    cr_assert_eq(bn_dtype_of(bn_where(b, i, bn_scalar(2.5, BN_F32))), BN_F32);
    const double want[2] = {3.5, 3.5};
    bnt_assert_values(bn_add(i, bn_scalar(2.5, BN_F64)), want, 2, 0, "i32 + 0-d f64");
    bn_scope_end();
}
