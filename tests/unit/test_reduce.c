/* tests/unit/test_reduce.c — reductions (sum … any, sum_dims, mean_dims), cumsum, softmax and
 * log_softmax: values against PyTorch fixtures (tests/data/reduce.txt, made by
 * scripts/gen_reduce.py) for every dtype, non-contiguous views, NaN/inf and large values; then
 * empty and 0-d tensors, inputs large enough for the kernels' block-split and tiled paths,
 * thread-count independence, and bad input. */
#include "bn_test.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- the ops, as the fixture script lists them ------------------------------------------- */
typedef bn_tensor *(*reduce_fn)(const bn_tensor *, int, bool);
typedef bn_tensor *(*along_fn)(const bn_tensor *, int);

static bn_tensor *var_c1(const bn_tensor *t, int d, bool k) { return bn_var(t, d, 1, k); }
static bn_tensor *var_c0(const bn_tensor *t, int d, bool k) { return bn_var(t, d, 0, k); }
static bn_tensor *std_c1(const bn_tensor *t, int d, bool k) { return bn_std(t, d, 1, k); }

enum { ANY_DTYPE, FLOAT_ONLY, NOT_BOOL };
typedef struct reduce_op {
    const char *name;
    reduce_fn fn;
    int applies;
} reduce_op;
typedef struct along_op {
    const char *name;
    along_fn fn;
    int applies;
} along_op;

static const reduce_op REDUCE_OPS[] = {
    {"sum", bn_sum, ANY_DTYPE},
    {"mean", bn_mean, FLOAT_ONLY},
    {"prod", bn_prod, ANY_DTYPE},
    {"max", bn_max, ANY_DTYPE},
    {"min", bn_min, ANY_DTYPE},
    {"argmax", bn_argmax, NOT_BOOL},
    {"argmin", bn_argmin, NOT_BOOL},
    {"var", var_c1, FLOAT_ONLY},
    {"var0", var_c0, FLOAT_ONLY},
    {"std", std_c1, FLOAT_ONLY},
    {"logsumexp", bn_logsumexp, ANY_DTYPE},
    {"all", bn_all, ANY_DTYPE},
    {"any", bn_any, ANY_DTYPE},
};
static const along_op ALONG_OPS[] = {
    {"cumsum", bn_cumsum, ANY_DTYPE},
    {"softmax", bn_softmax, FLOAT_ONLY},
    {"log_softmax", bn_log_softmax, FLOAT_ONLY},
};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static bool applies(int rule, bn_dtype dt)
{
    if (rule == FLOAT_ONLY) return bn_dtype_is_float(dt);
    if (rule == NOT_BOOL) return dt != BN_BOOL;
    return true;
}

/* ---- helpers ------------------------------------------------------------------------------ */
static void expect_like(const bn_tensor *got, const bn_tensor *want, const char *what)
{
    cr_assert_not_null(got, "%s: returned NULL: %s", what, bn_error_message());
    bn_dtype dt = bn_dtype_of(want);
    if (bn_dtype_is_float(dt))
        bnt_assert_close(got, want, bnt_rtol(dt), bnt_atol(dt), what);
    else
        bnt_assert_equal(got, want, what);
}

/* keepdim=true gives the same values with the reduced dims (all of them for BN_ALL) as 1. */
static void expect_keepdim(const reduce_op *op, const bn_tensor *x, int dim, const bn_tensor *got,
                           const char *what)
{
    bn_tensor *kept = op->fn(x, dim, true);
    cr_assert_not_null(kept, "%s keepdim: %s", what, bn_error_message());
    bn_shape xs = bn_shape_of(x), ks = bn_shape_of(kept);
    cr_assert_eq(ks.ndim, xs.ndim, "%s keepdim: %d dims, want %d", what, ks.ndim, xs.ndim);
    for (int d = 0; d < xs.ndim; d++) {
        int64_t want = (dim == BN_ALL || d == dim) ? 1 : xs.dims[d];
        cr_assert_eq(ks.dims[d], want, "%s keepdim: dim %d is %lld, want %lld", what, d,
                     (long long)ks.dims[d], (long long)want);
    }
    bn_tensor *flat = bn_reshape(kept, bn_shape_of(got));
    bnt_assert_equal(flat, got, what);
    bn_release(flat);
    bn_release(kept);
}

/* The input the fixture script's VIEWS applied to the stored base. */
static bn_tensor *variant_view(const char *variant, const bn_tensor *base)
{
    if (strstr(variant, "_transposed")) return bn_transpose(base, 0, 2);
    if (!strcmp(variant, "f32_sliced")) return bn_slice(base, 1, 0, 5, 2);
    if (!strcmp(variant, "f32_expanded")) return bn_expand(base, BN_SHAPE(2, 3, 4));
    if (!strcmp(variant, "f32_permuted")) return bn_permute(base, (int[]){2, 0, 1}, 3);
    bn_retain((bn_tensor *)base);
    return (bn_tensor *)base;
}

/* Every op that applies to the variant's dtype, over every dim and BN_ALL, against torch. */
static void check_variant(fx_file *f, const char *variant)
{
    char cname[128], what[192];
    bn_tensor *base = fx_tensor(f, variant, "x");
    bn_tensor *x = variant_view(variant, base);
    cr_assert_not_null(x, "%s: view: %s", variant, bn_error_message());
    int nd = bn_ndim(x);
    bn_dtype dt = bn_dtype_of(x);
    for (int i = 0; i < COUNT(REDUCE_OPS); i++) {
        const reduce_op *op = &REDUCE_OPS[i];
        if (!applies(op->applies, dt)) continue;
        snprintf(cname, sizeof cname, "%s.%s", variant, op->name);
        cr_assert(fx_has_case(f, cname), "fixture case %s is missing", cname);
        for (int d = -1; d < nd; d++) {
            char tname[16];
            int dim = d < 0 ? BN_ALL : d;
            if (d < 0)
                snprintf(tname, sizeof tname, "all");
            else
                snprintf(tname, sizeof tname, "d%d", d);
            snprintf(what, sizeof what, "%s over %s", cname, tname);
            bn_tensor *want = fx_tensor(f, cname, tname);
            bn_tensor *got = op->fn(x, dim, false);
            expect_like(got, want, what);
            expect_keepdim(op, x, dim, got, what);
            bn_release(got);
            bn_release(want);
        }
    }
    for (int i = 0; i < COUNT(ALONG_OPS); i++) {
        const along_op *op = &ALONG_OPS[i];
        if (!applies(op->applies, dt)) continue;
        snprintf(cname, sizeof cname, "%s.%s", variant, op->name);
        cr_assert(fx_has_case(f, cname), "fixture case %s is missing", cname);
        for (int d = 0; d < nd; d++) {
            char tname[16];
            snprintf(tname, sizeof tname, "d%d", d);
            snprintf(what, sizeof what, "%s along %s", cname, tname);
            bn_tensor *want = fx_tensor(f, cname, tname);
            bn_tensor *got = op->fn(x, d);
            expect_like(got, want, what);
            bn_release(got);
            bn_release(want);
        }
    }
    bn_release(x);
    bn_release(base);
}

static void check_each_variant(fx_file *f, const char *const *variants, int n)
{
    for (int i = 0; i < n; i++) check_variant(f, variants[i]);
}

static void check_variants(const char *const *variants, int n)
{
    fx_file *f = fx_open("reduce.txt");
    BNT_ASSERT_NO_LEAK(check_each_variant(f, variants, n));
    bnt_assert_no_error("variants");
    fx_close(f);
}

/* ---- against torch ------------------------------------------------------------------------ */
Test(reduce, every_op_matches_torch_for_every_dtype)
{
    const char *v[] = {"f32", "f64", "f16", "bf16", "f32_ties", "i8", "u8", "i32", "i64", "bool"};
    check_variants(v, COUNT(v));
}

Test(reduce, every_op_matches_torch_for_non_contiguous_inputs)
{
    const char *v[] = {"f32_transposed", "f32_sliced",     "f32_expanded",
                       "f32_permuted",   "i32_transposed", "f16_transposed"};
    check_variants(v, COUNT(v));
}

Test(reduce, nan_and_inf_propagate_like_torch)
{
    const char *v[] = {"nan_inf"};
    check_variants(v, COUNT(v));
}

Test(reduce, softmax_and_logsumexp_are_stable_for_large_values)
{
    const char *v[] = {"large_f32", "large_f64"};
    check_variants(v, COUNT(v));
}

Test(reduce, var_is_stable_for_large_offsets)
{
    const char *v[] = {"offset_f64", "offset_f32", "offset_f32_exact"};
    check_variants(v, COUNT(v));
    /* and the values themselves, beyond the fixture comparison */
    double d[] = {1e8 + 1, 1e8 + 2, 1e8 + 3};
    bn_tensor *x = bn_from_data(d, BN_SHAPE(3), BN_F64);
    bn_tensor *v64 = bn_var(x, 0, 1, false);
    cr_assert_eq(bn_item(v64), 1.0);
    bn_release(v64);
    bn_release(x);
    float s[] = {1e8f, 1e8f + 8, 1e8f + 16, 1e8f + 8};
    x = bn_from_data(s, BN_SHAPE(4), BN_F32);
    bn_tensor *v32 = bn_var(x, BN_ALL, 0, false);
    cr_assert_eq(bn_item(v32), 32.0); /* torch 1.13 gives 96 here */
    bn_release(v32);
    bn_release(x);
}

Test(reduce, integer_sums_and_products_wrap_exactly_like_torch)
{
    const char *v[] = {"i64_wrap", "i8_overflow"};
    check_variants(v, COUNT(v));
}

static void corrections_body(fx_file *f, const bn_tensor *x)
{
    int cs[] = {0, 1, 2, 3, 4, -1};
    for (int i = 0; i < COUNT(cs); i++) {
        char name[32], what[64];
        snprintf(name, sizeof name, "var_c%d", cs[i]);
        snprintf(what, sizeof what, "var correction %d", cs[i]);
        bn_tensor *want = fx_tensor(f, "corrections", name);
        bn_tensor *got = bn_var(x, 1, cs[i], false);
        expect_like(got, want, what);
        bn_release(got);
        bn_release(want);
        snprintf(name, sizeof name, "std_c%d", cs[i]);
        snprintf(what, sizeof what, "std correction %d", cs[i]);
        want = fx_tensor(f, "corrections", name);
        got = bn_std(x, 1, cs[i], false);
        expect_like(got, want, what);
        bn_release(got);
        bn_release(want);
    }
}

Test(reduce, var_and_std_apply_the_correction)
{
    fx_file *f = fx_open("reduce.txt");
    bn_tensor *x = fx_tensor(f, "corrections", "x");
    BNT_ASSERT_NO_LEAK(corrections_body(f, x));
    bn_release(x);
    fx_close(f);
}

static void several_dims_body(fx_file *f, const bn_tensor *x, const bn_tensor *xi)
{
    bn_scope_begin();
    struct {
        const char *name;
        bool mean, keep, ints;
        int dims[3], n;
    } cases[] = {
        {"sum_0_2", false, false, false, {0, 2}, 2},
        {"sum_m1_1_keep", false, true, false, {-1, 1}, 2},
        {"sum_none", false, false, false, {0}, 0},
        {"mean_0_2", true, false, false, {0, 2}, 2},
        {"mean_2_0_keep", true, true, false, {2, 0}, 2},
        {"mean_all3", true, false, false, {0, 1, 2}, 3},
        {"isum_0_1", false, false, true, {0, 1}, 2},
    };
    for (int i = 0; i < COUNT(cases); i++) {
        const bn_tensor *in = cases[i].ints ? xi : x;
        bn_tensor *got = cases[i].mean ? bn_mean_dims(in, cases[i].dims, cases[i].n, cases[i].keep)
                                       : bn_sum_dims(in, cases[i].dims, cases[i].n, cases[i].keep);
        bn_tensor *want = fx_tensor(f, "dims", cases[i].name);
        expect_like(got, want, cases[i].name);
        bn_release(want);
    }
    /* dims in any order give the same result */
    bn_tensor *a = bn_sum_dims(x, (int[]){0, 2}, 2, false);
    bn_tensor *b = bn_sum_dims(x, (int[]){2, 0}, 2, false);
    bnt_assert_equal(a, b, "sum_dims order");
    bn_scope_end();
}

Test(reduce, sum_dims_and_mean_dims_reduce_several_dims_at_once)
{
    fx_file *f = fx_open("reduce.txt");
    bn_tensor *x = fx_tensor(f, "dims", "x");
    bn_tensor *xi = fx_tensor(f, "dims", "xi");
    BNT_ASSERT_NO_LEAK(several_dims_body(f, x, xi));
    bn_release(xi);
    bn_release(x);
    fx_close(f);
}

/* ---- empty and 0-d tensors ---------------------------------------------------------------- */
static void expect_shape(const bn_tensor *t, bn_shape s, const char *what)
{
    cr_assert_not_null(t, "%s: %s", what, bn_error_message());
    cr_assert(bn_shape_equal(bn_shape_of(t), s), "%s: wrong shape", what);
}

static void empty_reductions_give_torch_identities_body(void)
{
    bn_scope_begin();
    bn_tensor *e = bn_zeros(BN_SHAPE(0, 3), BN_F32);
    double zeros[3] = {0, 0, 0}, ones[3] = {1, 1, 1}, nans[3] = {NAN, NAN, NAN},
           ninf[3] = {-INFINITY, -INFINITY, -INFINITY};
    bnt_assert_values(bn_sum(e, 0, false), zeros, 3, 0, "sum");
    bnt_assert_values(bn_prod(e, 0, false), ones, 3, 0, "prod");
    bnt_assert_values(bn_mean(e, 0, false), nans, 3, 0, "mean");
    bnt_assert_values(bn_var(e, 0, 1, false), nans, 3, 0, "var");
    bnt_assert_values(bn_std(e, 0, 0, false), nans, 3, 0, "std");
    bnt_assert_values(bn_logsumexp(e, 0, false), ninf, 3, 0, "logsumexp");
    bnt_assert_values(bn_all(e, 0, false), ones, 3, 0, "all");
    bnt_assert_values(bn_any(e, 0, false), zeros, 3, 0, "any");
    cr_assert_eq(bn_item(bn_sum(e, BN_ALL, false)), 0.0);
    cr_assert_eq(bn_item(bn_prod(bn_zeros(BN_SHAPE(0), BN_I32), BN_ALL, false)), 1.0);
    cr_assert(isnan(bn_item(bn_mean(e, BN_ALL, false))));
    /* over a non-empty dim of an empty tensor: an empty result */
    expect_shape(bn_max(e, 1, false), BN_SHAPE(0), "max over the full dim");
    expect_shape(bn_argmin(e, 1, true), BN_SHAPE(0, 1), "argmin keepdim");
    expect_shape(bn_sum(e, 1, false), BN_SHAPE(0), "sum over the full dim");
    expect_shape(bn_cumsum(e, 0), BN_SHAPE(0, 3), "cumsum");
    expect_shape(bn_softmax(e, 1), BN_SHAPE(0, 3), "softmax");
    expect_shape(bn_log_softmax(e, 0), BN_SHAPE(0, 3), "log_softmax");
    cr_assert_eq(bn_dtype_of(bn_sum(bn_zeros(BN_SHAPE(0), BN_BOOL), 0, false)), BN_I64);
    bn_scope_end();
}

Test(reduce, empty_reductions_give_torch_identities)
{
    BNT_ASSERT_NO_LEAK(empty_reductions_give_torch_identities_body());
    bnt_assert_no_error("empty");
}

static void zero_dim_tensors_reduce_their_one_element_body(void)
{
    bn_scope_begin();
    bn_tensor *s = bn_scalar(2.5, BN_F32);
    int dims[] = {0, -1, BN_ALL};
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 2; k++) {
            bn_tensor *r = bn_sum(s, dims[i], k);
            expect_shape(r, BN_SCALAR, "sum of 0-d");
            cr_assert_eq(bn_item(r), 2.5);
            cr_assert_eq(bn_item(bn_argmax(s, dims[i], k)), 0.0);
            expect_shape(bn_argmax(s, dims[i], k), BN_SCALAR, "argmax of 0-d");
        }
        cr_assert_eq(bn_item(bn_max(s, dims[i], false)), 2.5);
        cr_assert_eq(bn_item(bn_mean(s, dims[i], false)), 2.5);
        cr_assert_eq(bn_item(bn_logsumexp(s, dims[i], false)), 2.5);
        cr_assert(isnan(bn_item(bn_var(s, dims[i], 1, false))));
        cr_assert_eq(bn_item(bn_var(s, dims[i], 0, false)), 0.0);
    }
    cr_assert_eq(bn_item(bn_sum_dims(s, (int[]){0}, 1, true)), 2.5);
    expect_shape(bn_cumsum(s, 0), BN_SCALAR, "cumsum of 0-d");
    cr_assert_eq(bn_item(bn_cumsum(s, -1)), 2.5);
    cr_assert_eq(bn_item(bn_softmax(s, 0)), 1.0);
    cr_assert_eq(bn_item(bn_log_softmax(s, -1)), 0.0);
    bn_tensor *i = bn_scalar(7, BN_I32);
    cr_assert_eq(bn_dtype_of(bn_sum(i, 0, false)), BN_I64);
    cr_assert_eq(bn_item(bn_prod(i, BN_ALL, false)), 7.0);
    cr_assert_eq(bn_dtype_of(bn_logsumexp(i, 0, false)), BN_F32);
    cr_assert_eq(bn_item(bn_all(i, 0, false)), 1.0);
    bn_scope_end();
}

Test(reduce, zero_dim_tensors_reduce_their_one_element)
{
    BNT_ASSERT_NO_LEAK(zero_dim_tensors_reduce_their_one_element_body());
    bnt_assert_no_error("0-d");
}

static void result_dtypes_follow_torch_body(void)
{
    bn_scope_begin();
    bn_tensor *u = bn_ones(BN_SHAPE(2, 3), BN_U8);
    bn_tensor *h = bn_ones(BN_SHAPE(2, 3), BN_F16);
    cr_assert_eq(bn_dtype_of(bn_sum(u, 0, false)), BN_I64);
    cr_assert_eq(bn_dtype_of(bn_prod(u, 0, false)), BN_I64);
    cr_assert_eq(bn_dtype_of(bn_cumsum(u, 0)), BN_I64);
    cr_assert_eq(bn_dtype_of(bn_max(u, 0, false)), BN_U8);
    cr_assert_eq(bn_dtype_of(bn_argmax(u, 0, false)), BN_I64);
    cr_assert_eq(bn_dtype_of(bn_all(u, 0, false)), BN_BOOL);
    cr_assert_eq(bn_dtype_of(bn_any(h, 0, false)), BN_BOOL);
    cr_assert_eq(bn_dtype_of(bn_logsumexp(u, 0, false)), BN_F32);
    cr_assert_eq(bn_dtype_of(bn_sum(h, 0, false)), BN_F16);
    cr_assert_eq(bn_dtype_of(bn_var(h, 0, 1, false)), BN_F16);
    cr_assert_eq(bn_dtype_of(bn_softmax(h, 0)), BN_F16);
    cr_assert_eq(bn_dtype_of(bn_cumsum(h, 1)), BN_F16);
    bn_scope_end();
}

Test(reduce, result_dtypes_follow_torch) { BNT_ASSERT_NO_LEAK(result_dtypes_follow_torch_body()); }

/* ---- large inputs: block-split and tiled kernel paths ------------------------------------- */
#define BIG 50000 /* more than the kernel's 8192-element blocks */

/* Integer-valued floats, so every sum is exact in double whatever the order. */
static double pattern(int64_t i) { return (double)((i * 37) % 101 - 50); }

/* (rows, cols) tensor of dtype dt holding pattern(r * cols + c); call inside a scope. */
static bn_tensor *pattern_tensor(int64_t rows, int64_t cols, bn_dtype dt)
{
    bn_tensor *t = bn_empty(BN_SHAPE(rows, cols), BN_F64);
    double *p = bn_tensor_data_f64(t);
    for (int64_t i = 0; i < rows * cols; i++) p[i] = pattern(i);
    return bn_contiguous(bn_to_dtype(t, dt));
}

static void exact_sums_body(void)
{
    bn_dtype dts[] = {BN_F32, BN_F64, BN_I32};
    for (int k = 0; k < 3; k++) {
        bn_scope_begin();
        bn_tensor *x = pattern_tensor(3, BIG, dts[k]);
        bn_tensor *xt = bn_transpose(x, 0, 1); /* (BIG, 3): dim 0 is the tiled path */
        double rows[3] = {0}, total = 0;
        for (int64_t i = 0; i < 3 * BIG; i++) rows[i / BIG] += pattern(i), total += pattern(i);
        bnt_assert_values(bn_sum(x, 1, false), rows, 3, 0, "sum over the long contiguous dim");
        bnt_assert_values(bn_sum(xt, 0, false), rows, 3, 0, "sum over the long tiled dim");
        cr_assert_eq(bn_item(bn_sum(x, BN_ALL, false)), total);
        cr_assert_eq(bn_item(bn_sum(xt, BN_ALL, false)), total);
        if (dts[k] != BN_I32) {
            double means[3];
            for (int r = 0; r < 3; r++) means[r] = rows[r] / BIG;
            bnt_assert_values(bn_mean(xt, 0, false), means, 3, 1e-6, "mean tiled");
            bnt_assert_values(bn_mean(x, -1, false), means, 3, 1e-6, "mean line");
        }
        bn_scope_end();
    }
}

Test(reduce, sums_over_many_blocks_are_exact) { BNT_ASSERT_NO_LEAK(exact_sums_body()); }

/* Two-pass reference in long double. */
static void ref_moments(const double *v, int64_t n, long double *mean, long double *var)
{
    long double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int64_t i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *var = q / (n - 1);
}

static void var_and_logsumexp_over_many_blocks_match_a_reference_body(void)
{
    bn_scope_begin();
    double *v = malloc(sizeof(double) * BIG * 2);
    for (int64_t i = 0; i < BIG * 2; i++) v[i] = 1e6 + 0.37 * (double)(i % 13) + 1e-3 * (i % 7);
    bn_tensor *x = bn_from_data(v, BN_SHAPE(2, BIG), BN_F64);
    long double mean, var;
    double want[2];
    for (int r = 0; r < 2; r++) {
        ref_moments(v + r * BIG, BIG, &mean, &var);
        want[r] = (double)var;
    }
    bnt_assert_values(bn_var(x, 1, 1, false), want, 2, 1e-12, "var line");
    bnt_assert_values(bn_var(bn_transpose(x, 0, 1), 0, 1, false), want, 2, 1e-12, "var tiled");
    for (int r = 0; r < 2; r++) want[r] = sqrt(want[r]);
    bnt_assert_values(bn_std(bn_contiguous(bn_transpose(x, 0, 1)), 0, 1, false), want, 2, 1e-12,
                      "std tiled");
    /* logsumexp: values up to 1e6 would overflow exp without the max shift */
    for (int r = 0; r < 2; r++) {
        long double m = v[r * BIG], s = 0;
        for (int64_t i = 0; i < BIG; i++)
            if (v[r * BIG + i] > m) m = v[r * BIG + i];
        for (int64_t i = 0; i < BIG; i++) s += expl(v[r * BIG + i] - m);
        want[r] = (double)(m + logl(s));
    }
    bnt_assert_values(bn_logsumexp(x, 1, false), want, 2, 1e-9, "logsumexp line");
    bnt_assert_values(bn_logsumexp(bn_transpose(x, 0, 1), 0, false), want, 2, 1e-9,
                      "logsumexp tiled");
    free(v);
    bn_scope_end();
}

Test(reduce, var_and_logsumexp_over_many_blocks_match_a_reference)
{
    BNT_ASSERT_NO_LEAK(var_and_logsumexp_over_many_blocks_match_a_reference_body());
}

static void extremes_over_many_blocks_keep_the_first_occurrence_and_nan_body(void)
{
    bn_scope_begin();
    bn_tensor *x = pattern_tensor(2, BIG, BN_F32); /* values in [-50, 50] */
    float *p = bn_tensor_data_f32(x);
    p[9000] = 99, p[20000] = 99;                /* row 0: max twice, in blocks 1 and 2 */
    p[BIG + 30000] = -99, p[BIG + 45000] = -99; /* row 1: min twice */
    double amax[2] = {9000, -1}, amin[2] = {-1, 30000};
    bn_tensor *ix = bn_argmax(x, 1, false), *in = bn_argmin(x, 1, false);
    cr_assert_eq(bn_get(ix, (int64_t[]){0}), amax[0]);
    cr_assert_eq(bn_get(in, (int64_t[]){1}), amin[1]);
    bn_tensor *xt = bn_transpose(x, 0, 1);
    cr_assert_eq(bn_get(bn_argmax(xt, 0, false), (int64_t[]){0}), 9000.0);
    cr_assert_eq(bn_get(bn_argmin(xt, 0, false), (int64_t[]){1}), 30000.0);
    cr_assert_eq(bn_item(bn_argmax(x, BN_ALL, false)), 9000.0);
    cr_assert_eq(bn_item(bn_argmin(xt, BN_ALL, false)), 30000.0 * 2 + 1);
    cr_assert_eq(bn_item(bn_max(x, BN_ALL, false)), 99.0);
    cr_assert_eq(bn_item(bn_min(xt, BN_ALL, false)), -99.0);
    /* a NaN deep in the second row wins max, min, argmax and argmin there */
    p[BIG + 40000] = NAN;
    cr_assert(isnan(bn_get(bn_max(x, 1, false), (int64_t[]){1})));
    cr_assert(isnan(bn_get(bn_min(xt, 0, false), (int64_t[]){1})));
    cr_assert_eq(bn_get(bn_argmax(xt, 0, false), (int64_t[]){1}), 40000.0);
    cr_assert_eq(bn_get(bn_argmin(x, 1, false), (int64_t[]){1}), 40000.0);
    cr_assert_eq(bn_get(bn_max(x, 1, false), (int64_t[]){0}), 99.0);
    bn_scope_end();
}

Test(reduce, extremes_over_many_blocks_keep_the_first_occurrence_and_nan)
{
    BNT_ASSERT_NO_LEAK(extremes_over_many_blocks_keep_the_first_occurrence_and_nan_body());
}

static void prod_all_and_any_over_many_blocks_body(void)
{
    bn_scope_begin();
    bn_tensor *x = bn_ones(BN_SHAPE(BIG, 2), BN_F64);
    double *p = bn_tensor_data_f64(x);
    p[2 * 100] = 2, p[2 * 20000] = -3, p[2 * 49999] = 0.5; /* column 0 */
    p[2 * 40000 + 1] = 0;                                  /* column 1 */
    double prods[2] = {-3, 0}, alls[2] = {1, 0}, anys[2] = {1, 1};
    bnt_assert_values(bn_prod(x, 0, false), prods, 2, 0, "prod tiled");
    bnt_assert_values(bn_prod(bn_transpose(x, 0, 1), 1, false), prods, 2, 0, "prod line");
    bnt_assert_values(bn_all(x, 0, false), alls, 2, 0, "all");
    bnt_assert_values(bn_any(bn_transpose(x, 0, 1), 1, false), anys, 2, 0, "any");
    cr_assert_eq(bn_item(bn_all(x, BN_ALL, false)), 0.0);
    bn_tensor *z = bn_zeros(BN_SHAPE(BIG), BN_I64);
    cr_assert_eq(bn_item(bn_any(z, BN_ALL, false)), 0.0);
    bn_set(z, (int64_t[]){BIG - 1}, 5);
    cr_assert_eq(bn_item(bn_any(z, 0, false)), 1.0);
    bn_fill_(z, 1);
    bn_set(z, (int64_t[]){BIG / 2}, 6);
    cr_assert_eq(bn_item(bn_prod(z, 0, false)), 6.0);
    bn_scope_end();
}

Test(reduce, prod_all_and_any_over_many_blocks)
{
    BNT_ASSERT_NO_LEAK(prod_all_and_any_over_many_blocks_body());
}

static void cumsum_and_softmax_on_long_lines_and_tiles_body(void)
{
    bn_scope_begin();
    bn_tensor *x = pattern_tensor(3, 20000, BN_F64);
    const double *p = bn_tensor_data_f64(x);
    bn_tensor *line = bn_cumsum(x, 1);
    bn_tensor *tile = bn_cumsum(bn_transpose(x, 0, 1), 0);
    double acc[3] = {0};
    for (int64_t c = 0; c < 20000; c++)
        for (int r = 0; r < 3; r++) {
            acc[r] += p[r * 20000 + c];
            cr_assert_eq(bn_get(line, (int64_t[]){r, c}), acc[r]);
            cr_assert_eq(bn_get(tile, (int64_t[]){c, r}), acc[r]);
        }
    bn_tensor *s1 = bn_softmax(x, 1);
    bn_tensor *s0 = bn_softmax(bn_transpose(x, 0, 1), 0);
    bnt_assert_close(bn_transpose(s0, 0, 1), s1, 1e-12, 1e-300, "softmax line vs tile");
    bnt_assert_values(bn_sum(s1, 1, false), (double[]){1, 1, 1}, 3, 1e-12, "softmax sums");
    bn_tensor *l1 = bn_log_softmax(x, 1);
    for (int64_t c = 0; c < 20000; c += 997)
        for (int r = 0; r < 3; r++) {
            double ls = bn_get(l1, (int64_t[]){r, c}), sm = bn_get(s1, (int64_t[]){r, c});
            cr_assert(fabs(exp(ls) - sm) <= 1e-12 * sm, "exp(log_softmax) is softmax");
        }
    bn_scope_end();
}

Test(reduce, cumsum_and_softmax_on_long_lines_and_tiles)
{
    BNT_ASSERT_NO_LEAK(cumsum_and_softmax_on_long_lines_and_tiles_body());
}

static void tiled_and_line_paths_agree_on_random_data_body(void)
{
    bn_scope_begin();
    bn_manual_seed(7);
    bn_tensor *x = bn_randn(BN_SHAPE(300, 70), BN_F64);
    bn_tensor *xt = bn_contiguous(bn_transpose(x, 0, 1)); /* (70, 300): dim 1 is a line */
    reduce_fn fns[] = {bn_sum, bn_mean, bn_max, bn_argmin, var_c1, bn_logsumexp};
    for (int i = 0; i < COUNT(fns); i++) {
        bn_tensor *a = fns[i](x, 0, false), *b = fns[i](xt, 1, false);
        if (bn_dtype_is_float(bn_dtype_of(a)))
            bnt_assert_close(a, b, 1e-13, 1e-13, "tile vs line");
        else
            bnt_assert_equal(a, b, "tile vs line");
    }
    bnt_assert_close(bn_softmax(x, 0), bn_transpose(bn_softmax(xt, 1), 0, 1), 1e-14, 1e-300,
                     "softmax tile vs line");
    bnt_assert_close(bn_cumsum(x, 0), bn_transpose(bn_cumsum(xt, 1), 0, 1), 0, 0,
                     "cumsum tile vs line");
    /* a middle dim: (4, 300, 70) over dim 1, tile walk, vs its contiguous transpose */
    bn_tensor *y = bn_randn(BN_SHAPE(4, 300, 70), BN_F32);
    bn_tensor *yt = bn_contiguous(bn_transpose(y, 1, 2));
    bnt_assert_close(bn_sum(y, 1, false), bn_sum(yt, 2, false), 1e-6, 1e-6, "middle dim");
    bnt_assert_close(bn_softmax(y, 1), bn_transpose(bn_softmax(yt, 2), 1, 2), 1e-6, 1e-7,
                     "softmax middle dim");
    bn_scope_end();
}

Test(reduce, tiled_and_line_paths_agree_on_random_data)
{
    BNT_ASSERT_NO_LEAK(tiled_and_line_paths_agree_on_random_data_body());
}

/* Softmax of one long line in long double, for lines longer than the kernel's scratch. */
static void ref_softmax(const double *v, int64_t n, double *out, bool log_out)
{
    long double m = v[0], s = 0;
    for (int64_t i = 0; i < n; i++)
        if (v[i] > m) m = v[i];
    for (int64_t i = 0; i < n; i++) s += expl(v[i] - m);
    for (int64_t i = 0; i < n; i++)
        out[i] = log_out ? (double)(v[i] - m - logl(s)) : (double)(expl(v[i] - m) / s);
}

static void softmax_streams_body(void)
{
    enum { LEN = 70000 }; /* more than the 65536 values of per-thread scratch */
    bn_scope_begin();
    double *v = malloc(sizeof(double) * 2 * LEN), *want = malloc(sizeof(double) * 2 * LEN);
    for (int64_t i = 0; i < 2 * LEN; i++) v[i] = pattern(i) / 7.0 + (i == LEN + 5 ? 900 : 0);
    bn_tensor *x = bn_from_data(v, BN_SHAPE(2, LEN), BN_F64);
    for (int lg = 0; lg < 2; lg++) {
        for (int r = 0; r < 2; r++) ref_softmax(v + r * LEN, LEN, want + r * LEN, lg);
        bn_tensor *line = lg ? bn_log_softmax(x, 1) : bn_softmax(x, 1);
        bn_tensor *tile =
            lg ? bn_log_softmax(bn_transpose(x, 0, 1), 0) : bn_softmax(bn_transpose(x, 0, 1), 0);
        bnt_assert_values(line, want, 2 * LEN, 1e-12, "streamed line");
        bnt_assert_values(bn_contiguous(bn_transpose(tile, 0, 1)), want, 2 * LEN, 1e-12,
                          "streamed tile");
    }
    free(want);
    free(v);
    bn_scope_end();
}

Test(reduce, softmax_streams_lines_longer_than_its_scratch)
{
    BNT_ASSERT_NO_LEAK(softmax_streams_body());
}

/* ---- thread count ------------------------------------------------------------------------- */
#ifdef _OPENMP
/* Runs every op on x at the current thread count, concatenating the raw bytes of the results. */
static size_t run_all_bytes(const bn_tensor *x, unsigned char *buf, size_t cap)
{
    size_t used = 0;
    bn_scope_begin();
    bn_tensor *short4 = bn_reshape(x, BN_SHAPE(-1, 4)); /* many short reductions */
    bn_tensor *outs[] = {
        bn_sum(short4, 1, false),
        bn_var(short4, 1, 1, false),
        bn_softmax(short4, 1),
        bn_cumsum(short4, 1),
        bn_sum(x, BN_ALL, false),
        bn_sum(x, 0, false),
        bn_sum(x, 1, false),
        bn_mean(x, BN_ALL, false),
        bn_var(x, BN_ALL, 1, false),
        bn_var(x, 0, 1, false),
        bn_std(x, 1, 0, false),
        bn_logsumexp(x, 1, false),
        bn_logsumexp(x, BN_ALL, false),
        bn_prod(x, 0, false),
        bn_argmax(x, 0, false),
        bn_argmin(x, BN_ALL, false),
        bn_max(x, BN_ALL, false),
        bn_cumsum(x, 0),
        bn_cumsum(x, 1),
        bn_softmax(x, 0),
        bn_log_softmax(x, 1),
        bn_sum(bn_transpose(x, 0, 1), 1, false),
    };
    for (int i = 0; i < COUNT(outs); i++) {
        cr_assert_not_null(outs[i], "op %d: %s", i, bn_error_message());
        size_t n = bn_nbytes(outs[i]);
        cr_assert(used + n <= cap);
        cr_assert_eq(bn_copy_to_host(outs[i], buf + used, n), BN_OK);
        used += n;
    }
    bn_scope_end();
    return used;
}
#endif

Test(reduce, results_are_bit_identical_for_one_and_two_threads)
{
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    bn_manual_seed(42);
    bn_tensor *x = bn_randn(BN_SHAPE(600, 500), BN_F32);
    size_t cap = (size_t)64 << 20;
    unsigned char *one = malloc(cap), *two = malloc(cap);
    omp_set_num_threads(1);
    size_t n1 = run_all_bytes(x, one, cap);
    omp_set_num_threads(2);
    size_t n2 = run_all_bytes(x, two, cap);
    omp_set_num_threads(saved);
    cr_assert_eq(n1, n2);
    cr_assert(memcmp(one, two, n1) == 0, "results differ between 1 and 2 threads");
    free(one);
    free(two);
    bn_release(x);
#else
    cr_skip_test("built without OpenMP");
#endif
}

/* ---- bad input ---------------------------------------------------------------------------- */
static void null_inputs_are_reported_and_propagated_body(void)
{
    for (int i = 0; i < COUNT(REDUCE_OPS); i++) {
        bn_error_clear();
        cr_assert_null(REDUCE_OPS[i].fn(NULL, 0, false));
        bnt_assert_error(BN_ERR_ARG, "argument t is NULL", NULL);
    }
    for (int i = 0; i < COUNT(ALONG_OPS); i++) {
        bn_error_clear();
        cr_assert_null(ALONG_OPS[i].fn(NULL, 0));
        char fn[32];
        snprintf(fn, sizeof fn, "bn_%s", ALONG_OPS[i].name);
        bnt_assert_error(BN_ERR_ARG, fn, "argument t is NULL", NULL);
    }
    cr_assert_null(bn_sum(NULL, 0, false));
    bnt_assert_error(BN_ERR_ARG, "bn_sum:", NULL);
    cr_assert_null(bn_var(NULL, 0, 1, false));
    bnt_assert_error(BN_ERR_ARG, "bn_var:", NULL);
    cr_assert_null(bn_sum_dims(NULL, (int[]){0}, 1, false));
    bnt_assert_error(BN_ERR_ARG, "bn_sum_dims", "argument t is NULL", NULL);
    cr_assert_null(bn_mean_dims(NULL, (int[]){0}, 1, false));
    bnt_assert_error(BN_ERR_ARG, "bn_mean_dims", "argument t is NULL", NULL);
    /* an earlier failure is kept through a chain */
    bn_tensor *bad = bn_zeros(BN_SHAPE(2, -1), BN_F32);
    cr_assert_null(bn_softmax(bn_sum(bad, 0, false), 0));
    bnt_assert_error(BN_ERR_SHAPE, "bn_zeros", NULL);
}

Test(reduce, null_inputs_are_reported_and_propagated)
{
    BNT_ASSERT_NO_LEAK(null_inputs_are_reported_and_propagated_body());
}

static void dims_out_of_range_are_rejected_body(void)
{
    bn_tensor *x = bn_ones(BN_SHAPE(2, 3), BN_F32);
    for (int i = 0; i < COUNT(REDUCE_OPS); i++) {
        char fn[32];
        snprintf(fn, sizeof fn, "bn_%s", REDUCE_OPS[i].name);
        if (!strcmp(fn, "bn_var0")) strcpy(fn, "bn_var");
        cr_assert_null(REDUCE_OPS[i].fn(x, 2, false));
        bnt_assert_error(BN_ERR_ARG, fn, "dim 2", "out of range", "2 dims", "-2..1", NULL);
        cr_assert_null(REDUCE_OPS[i].fn(x, -3, true));
        bnt_assert_error(BN_ERR_ARG, fn, "dim -3", NULL);
    }
    for (int i = 0; i < COUNT(ALONG_OPS); i++) {
        cr_assert_null(ALONG_OPS[i].fn(x, 5));
        bnt_assert_error(BN_ERR_ARG, ALONG_OPS[i].name, "dim 5", "out of range", NULL);
    }
    bn_tensor *s = bn_scalar(1, BN_F32);
    cr_assert_null(bn_sum(s, 1, false));
    bnt_assert_error(BN_ERR_ARG, "bn_sum", "dim 1", "0 dims", NULL);
    cr_assert_null(bn_cumsum(s, -2));
    bnt_assert_error(BN_ERR_ARG, "bn_cumsum", "dim -2", NULL);
    bn_release(s);
    bn_release(x);
}

Test(reduce, dims_out_of_range_are_rejected)
{
    BNT_ASSERT_NO_LEAK(dims_out_of_range_are_rejected_body());
}

static void float_only_ops_reject_integer_and_bool_dtypes_body(void)
{
    bn_tensor *i = bn_ones(BN_SHAPE(2, 3), BN_I32);
    bn_tensor *b = bn_ones(BN_SHAPE(2, 3), BN_BOOL);
    cr_assert_null(bn_mean(i, 0, false));
    bnt_assert_error(BN_ERR_DTYPE, "bn_mean", "i32", "floating-point", NULL);
    cr_assert_null(bn_mean_dims(b, (int[]){0}, 1, false));
    bnt_assert_error(BN_ERR_DTYPE, "bn_mean_dims", "bool", NULL);
    cr_assert_null(bn_var(i, 1, 1, false));
    bnt_assert_error(BN_ERR_DTYPE, "bn_var", "i32", NULL);
    cr_assert_null(bn_std(b, BN_ALL, 1, true));
    bnt_assert_error(BN_ERR_DTYPE, "bn_std", "bool", NULL);
    cr_assert_null(bn_softmax(i, 1));
    bnt_assert_error(BN_ERR_DTYPE, "bn_softmax", "i32", NULL);
    cr_assert_null(bn_log_softmax(b, 0));
    bnt_assert_error(BN_ERR_DTYPE, "bn_log_softmax", "bool", NULL);
    cr_assert_null(bn_argmax(b, 0, false));
    bnt_assert_error(BN_ERR_DTYPE, "bn_argmax", "bool", NULL);
    cr_assert_null(bn_argmin(b, BN_ALL, false));
    bnt_assert_error(BN_ERR_DTYPE, "bn_argmin", "bool", NULL);
    bn_release(b);
    bn_release(i);
}

Test(reduce, float_only_ops_reject_integer_and_bool_dtypes)
{
    BNT_ASSERT_NO_LEAK(float_only_ops_reject_integer_and_bool_dtypes_body());
}

static void extremes_of_an_empty_dim_are_errors_body(void)
{
    bn_tensor *e = bn_zeros(BN_SHAPE(0, 3), BN_F32);
    reduce_fn fns[] = {bn_max, bn_min, bn_argmax, bn_argmin};
    const char *names[] = {"bn_max", "bn_min", "bn_argmax", "bn_argmin"};
    for (int k = 0; k < 4; k++) {
        cr_assert_null(fns[k](e, 0, false));
        bnt_assert_error(BN_ERR_ARG, names[k], "dim 0 of size 0", "[0, 3]", NULL);
        cr_assert_null(fns[k](e, BN_ALL, true));
        bnt_assert_error(BN_ERR_ARG, names[k], "empty", "all dims", "[0, 3]", NULL);
    }
    bn_release(e);
}

Test(reduce, extremes_of_an_empty_dim_are_errors)
{
    BNT_ASSERT_NO_LEAK(extremes_of_an_empty_dim_are_errors_body());
}

static void sum_dims_rejects_bad_dim_lists_body(void)
{
    bn_tensor *x = bn_ones(BN_SHAPE(2, 3, 4), BN_F32);
    cr_assert_null(bn_sum_dims(x, (int[]){1, -2}, 2, false));
    bnt_assert_error(BN_ERR_ARG, "bn_sum_dims", "dim 1", "dims[1] = -2", "more than once", NULL);
    cr_assert_null(bn_mean_dims(x, (int[]){0, 0}, 2, true));
    bnt_assert_error(BN_ERR_ARG, "bn_mean_dims", "more than once", NULL);
    cr_assert_null(bn_sum_dims(x, (int[]){0, 3}, 2, false));
    bnt_assert_error(BN_ERR_ARG, "bn_sum_dims", "dims[1] = 3", "out of range", "3 dims", NULL);
    cr_assert_null(bn_sum_dims(x, NULL, 2, false));
    bnt_assert_error(BN_ERR_ARG, "bn_sum_dims", "dims is NULL", NULL);
    cr_assert_null(bn_mean_dims(x, (int[]){0}, -1, false));
    bnt_assert_error(BN_ERR_ARG, "bn_mean_dims", "ndims -1", NULL);
    cr_assert_null(bn_sum_dims(x, (int[]){0, 1, 2, 0, 1, 2, 0, 1, 2}, 9, false));
    bnt_assert_error(BN_ERR_ARG, "bn_sum_dims", "ndims 9", NULL);
    bn_release(x);
}

Test(reduce, sum_dims_rejects_bad_dim_lists)
{
    BNT_ASSERT_NO_LEAK(sum_dims_rejects_bad_dim_lists_body());
}
