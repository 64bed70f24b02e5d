/* tests/unit/test_core.c — tensor lifecycle, scopes, errors, creation, random numbers, views and
 * copies. Creation and view values come from tests/data/core.txt (scripts/gen_core.py). */
#include "bn_test.h"

#include "born/cuda.h"
#include "core/internal.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- creation -------------------------------------------------------------------------------- */
Test(core, zeros_has_shape_dtype_and_values)
{
    bn_tensor *t = bn_zeros(BN_SHAPE(2, 3), BN_F32);
    cr_assert_not_null(t);
    cr_assert_eq(bn_ndim(t), 2);
    cr_assert_eq(bn_dim(t, 0), 2);
    cr_assert_eq(bn_dim(t, -1), 3);
    cr_assert_eq(bn_numel(t), 6);
    cr_assert_eq(bn_dtype_of(t), BN_F32);
    cr_assert_eq(bn_stride(t, 0), 3);
    cr_assert(bn_is_contiguous(t));
    cr_assert_eq(bn_nbytes(t), 24);
    float *p = bn_tensor_data_f32(t);
    for (int i = 0; i < 6; i++) cr_assert_eq(p[i], 0.0f);
    bn_release(t);
}

Test(core, full_and_ones_fill_every_dtype)
{
    for (int dt = 0; dt < BN_DTYPE_COUNT; dt++) {
        bn_tensor *o = bn_ones(BN_SHAPE(3, 2), (bn_dtype)dt);
        bn_tensor *f = bn_full(BN_SHAPE(4), 2.0, (bn_dtype)dt);
        const double ones[6] = {1, 1, 1, 1, 1, 1};
        const double twos[4] = {dt == BN_BOOL ? 1 : 2, dt == BN_BOOL ? 1 : 2,
                                dt == BN_BOOL ? 1 : 2, dt == BN_BOOL ? 1 : 2};
        bnt_assert_values(o, ones, 6, 0, bn_dtype_name((bn_dtype)dt));
        bnt_assert_values(f, twos, 4, 0, bn_dtype_name((bn_dtype)dt));
        bn_release(o);
        bn_release(f);
    }
}

Test(core, zero_dim_and_empty_tensors)
{
    bn_tensor *s = bn_scalar(3.5, BN_F64);
    cr_assert_eq(bn_ndim(s), 0);
    cr_assert_eq(bn_numel(s), 1);
    cr_assert_eq(bn_item(s), 3.5);
    bn_tensor *e = bn_zeros(BN_SHAPE(0, 3), BN_F32);
    cr_assert_eq(bn_numel(e), 0);
    cr_assert_eq(bn_dim(e, 1), 3);
    cr_assert(bn_is_contiguous(e));
    bn_tensor *ec = bn_contiguous(e);
    cr_assert_eq(bn_numel(ec), 0);
    char dummy;
    cr_assert_eq(bn_copy_to_host(e, &dummy, 0), BN_OK);
    bn_release(ec);
    bn_release(e);
    bn_release(s);
}

Test(core, creation_matches_torch)
{
    fx_file *f = fx_open("core.txt");
    struct {
        const char *name;
        bn_tensor *got;
    } cases[] = {
        {"arange_int", bn_arange(0, 10, 3, BN_I64)},
        {"arange_f32", bn_arange(-1, 1, 0.25, BN_F32)},
        {"arange_f32_tenth", bn_arange(0, 1, 0.1, BN_F32)},
        {"arange_f64_neg", bn_arange(5, -5, -1.5, BN_F64)},
        {"arange_i32", bn_arange(-3, 4, 2, BN_I32)},
        {"linspace_f32", bn_linspace(0, 1, 7, BN_F32)},
        {"linspace_f64", bn_linspace(-5, 5, 4, BN_F64)},
        {"linspace_one", bn_linspace(3, 9, 1, BN_F32)},
        {"linspace_i64", bn_linspace(0, 10, 4, BN_I64)},
        {"linspace_f16", bn_linspace(-1, 1, 9, BN_F16)},
        {"eye_3x3", bn_eye(3, 3, BN_F32)},
        {"eye_2x4_i32", bn_eye(2, 4, BN_I32)},
        {"eye_4x2_bool", bn_eye(4, 2, BN_BOOL)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_tensor *want = fx_tensor(f, cases[i].name, "out");
        bnt_assert_close(cases[i].got, want, bnt_rtol(bn_dtype_of(want)),
                         bnt_atol(bn_dtype_of(want)), cases[i].name);
        bn_release(want);
        bn_release(cases[i].got);
    }
    fx_close(f);
}

Test(core, from_data_copies_and_typed_access_checks_dtype)
{
    int32_t src[6] = {1, 2, 3, 4, 5, 6};
    bn_tensor *t = bn_from_data(src, BN_SHAPE(2, 3), BN_I32);
    src[0] = 100; /* the tensor holds its own copy */
    int32_t *p = bn_tensor_data_i32(t);
    cr_assert_eq(p[0], 1);
    cr_assert_eq(p[5], 6);
    cr_assert_null(bn_tensor_data_f32(t));
    bnt_assert_error(BN_ERR_DTYPE, "bn_tensor_data_f32", "i32", "f32", NULL);
    bn_tensor *tt = bn_transpose(t, 0, 1);
    cr_assert_null(bn_tensor_data_i32(tt));
    bnt_assert_error(BN_ERR_ARG, "bn_tensor_data_i32", "not contiguous", "[3, 2]", NULL);
    cr_assert_null(bn_tensor_data(NULL));
    bnt_assert_error(BN_ERR_ARG, "bn_tensor_data", "NULL", NULL);
    int32_t host[6];
    cr_assert_eq(bn_copy_to_host(tt, host, sizeof host), BN_OK);
    const int32_t want[6] = {1, 4, 2, 5, 3, 6};
    cr_assert_arr_eq(host, want, sizeof want);
    cr_assert_eq(bn_copy_to_host(tt, host, 5), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "bn_copy_to_host", "bytes is 5", "24", NULL);
    bn_release(tt);
    bn_release(t);
}

Test(core, every_typed_accessor_returns_its_dtype)
{
    for (int dt = 0; dt < BN_DTYPE_COUNT; dt++) {
        bn_tensor *t = bn_zeros(BN_SHAPE(2), (bn_dtype)dt);
        void *ptrs[BN_DTYPE_COUNT] = {
            bn_tensor_data_f32(t), bn_tensor_data_f64(t), bn_tensor_data_f16(t),
            bn_tensor_data_bf16(t), bn_tensor_data_i8(t), bn_tensor_data_u8(t),
            bn_tensor_data_i32(t), bn_tensor_data_i64(t), bn_tensor_data_bool(t)};
        for (int k = 0; k < BN_DTYPE_COUNT; k++)
            cr_assert_eq(ptrs[k] != NULL, k == dt, "%s accessor on %s", bn_dtype_name(k),
                         bn_dtype_name(dt));
        bn_error_clear();
        bn_release(t);
    }
}

Test(core, item_get_set)
{
    bn_tensor *t = bn_arange(0, 6, 1, BN_F32);
    bn_tensor *m = bn_reshape(t, BN_SHAPE(2, 3));
    cr_assert_eq(bn_get(m, (int64_t[]){1, -1}), 5.0);
    cr_assert_eq(bn_set(m, (int64_t[]){0, 1}, 42.0), BN_OK);
    cr_assert_eq(bn_get(t, (int64_t[]){1}), 42.0); /* m is a view of t */
    cr_assert(isnan(bn_get(m, (int64_t[]){2, 0})));
    bnt_assert_error(BN_ERR_ARG, "bn_get", "index 2", "size 2", "[2, 3]", NULL);
    cr_assert(isnan(bn_item(m)));
    bnt_assert_error(BN_ERR_SHAPE, "bn_item", "[2, 3]", "6 elements", NULL);
    bn_tensor *n = bn_narrow(t, 0, 4, 1);
    bn_tensor *one = bn_reshape(n, BN_SHAPE(1, 1));
    bn_release(n);
    cr_assert_eq(bn_item(one), 4.0);
    cr_assert(isnan(bn_item(NULL)));
    bnt_assert_error(BN_ERR_ARG, "bn_item", "NULL", NULL);
    bn_release(one);
    bn_release(m);
    bn_release(t);
}

Test(core, creation_rejects_bad_arguments)
{
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_zeros(BN_SHAPE(2, -1), BN_F32));
        bnt_assert_error(BN_ERR_SHAPE, "bn_zeros", "[2, -1]", "negative", NULL);
        cr_assert_null(bn_ones(BN_SHAPE(2), (bn_dtype)99));
        bnt_assert_error(BN_ERR_DTYPE, "bn_ones", "99", NULL);
        bn_shape big = {.ndim = 9};
        cr_assert_null(bn_full(big, 1, BN_F32));
        bnt_assert_error(BN_ERR_SHAPE, "bn_full", "9 dims", NULL);
        cr_assert_null(bn_arange(0, 10, 0, BN_F32));
        bnt_assert_error(BN_ERR_ARG, "bn_arange", "step", NULL);
        cr_assert_null(bn_arange(0, 10, -1, BN_F32));
        bnt_assert_error(BN_ERR_ARG, "bn_arange", "wrong way", NULL);
        cr_assert_null(bn_arange(0, INFINITY, 1, BN_F32));
        bnt_assert_error(BN_ERR_ARG, "bn_arange", "finite", NULL);
        cr_assert_null(bn_linspace(0, 1, -2, BN_F32));
        bnt_assert_error(BN_ERR_ARG, "bn_linspace", "steps -2", NULL);
        cr_assert_null(bn_eye(-1, 2, BN_F32));
        bnt_assert_error(BN_ERR_ARG, "bn_eye", "-1", NULL);
        cr_assert_null(bn_rand(BN_SHAPE(2), BN_I32));
        bnt_assert_error(BN_ERR_DTYPE, "bn_rand", "i32", NULL);
        cr_assert_null(bn_randn(BN_SHAPE(2), BN_BOOL));
        bnt_assert_error(BN_ERR_DTYPE, "bn_randn", "bool", NULL);
        cr_assert_null(bn_randint(5, 5, BN_SHAPE(2), BN_I64));
        bnt_assert_error(BN_ERR_ARG, "bn_randint", "high 5", NULL);
        cr_assert_null(bn_from_data(NULL, BN_SHAPE(2), BN_F32));
        bnt_assert_error(BN_ERR_ARG, "bn_from_data", "data", NULL);
        cr_assert_null(bn_zeros_like(NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_zeros_like", NULL);
        cr_assert_null(bn_empty(BN_SHAPE(-3), BN_F32));
        bnt_assert_error(BN_ERR_SHAPE, "bn_empty", NULL);
    });
}

/* ---- random numbers -------------------------------------------------------------------------- */
Test(core, rand_is_reproducible_and_in_range)
{
    bn_manual_seed(1234);
    bn_tensor *a = bn_rand(BN_SHAPE(1000), BN_F32);
    bn_tensor *b = bn_rand(BN_SHAPE(7), BN_F32); /* advances the stream */
    bn_manual_seed(1234);
    bn_tensor *c = bn_rand(BN_SHAPE(1000), BN_F32);
    bnt_assert_equal(a, c, "same seed, same numbers");
    float *p = bn_tensor_data_f32(a), *q = bn_tensor_data_f32(b);
    for (int i = 0; i < 1000; i++) cr_assert(p[i] >= 0.0f && p[i] < 1.0f);
    cr_assert_neq(p[0], q[0]);
    bn_release(a);
    bn_release(b);
    bn_release(c);
}

Test(core, rng_state_round_trips)
{
    bn_manual_seed(7);
    bn_tensor *skip = bn_randn(BN_SHAPE(5), BN_F64);
    bn_rng_state st = bn_rng_get_state();
    bn_tensor *a = bn_randn(BN_SHAPE(33), BN_F64);
    bn_rng_set_state(st);
    bn_tensor *b = bn_randn(BN_SHAPE(33), BN_F64);
    bnt_assert_equal(a, b, "restored state");
    bn_release(skip);
    bn_release(a);
    bn_release(b);
}

static double moment(bn_tensor *t, int k)
{
    bn_tensor *d = bn_to_dtype(t, BN_F64);
    double *p = bn_tensor_data_f64(d), s = 0;
    int64_t n = bn_numel(d);
    for (int64_t i = 0; i < n; i++) s += pow(p[i], k);
    bn_release(d);
    return s / (double)n;
}

Test(core, randn_has_unit_normal_moments)
{
    bn_manual_seed(99);
    for (int dt = BN_F32; dt <= BN_F64; dt++) {
        bn_tensor *t = bn_randn(BN_SHAPE(1 << 20), (bn_dtype)dt);
        double m1 = moment(t, 1), m2 = moment(t, 2), m4 = moment(t, 4);
        /* standard errors at n = 2^20: mean 1e-3, E[x^2] 1.4e-3, E[x^4] 1e-2 */
        cr_assert(fabs(m1) < 5e-3, "mean %g", m1);
        cr_assert(fabs(m2 - 1) < 7e-3, "E[x^2] %g", m2);
        cr_assert(fabs(m4 - 3) < 5e-2, "E[x^4] %g (kurtosis of a normal is 3)", m4);
        bn_release(t);
    }
    bn_tensor *u = bn_rand(BN_SHAPE(1 << 20), BN_F64);
    cr_assert(fabs(moment(u, 1) - 0.5) < 2e-3);
    cr_assert(fabs(moment(u, 2) - 1.0 / 3) < 2e-3);
    bn_release(u);
}

Test(core, random_numbers_do_not_depend_on_thread_count)
{
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    bn_tensor *r[2][3];
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k + 1);
        bn_manual_seed(5);
        r[k][0] = bn_rand(BN_SHAPE(100003), BN_F32);
        r[k][1] = bn_randn(BN_SHAPE(70001), BN_BF16);
        r[k][2] = bn_randint(-3, 9, BN_SHAPE(50001), BN_I32);
    }
    omp_set_num_threads(saved);
    for (int i = 0; i < 3; i++) {
        bnt_assert_equal(r[0][i], r[1][i], "1 vs 2 threads");
        bn_release(r[0][i]);
        bn_release(r[1][i]);
    }
#else
    cr_skip("built without OpenMP");
#endif
}

Test(core, randint_covers_its_range)
{
    bn_manual_seed(3);
    bn_tensor *t = bn_randint(-2, 3, BN_SHAPE(5000), BN_I64);
    int64_t *p = bn_tensor_data_i64(t);
    int seen[5] = {0};
    for (int i = 0; i < 5000; i++) {
        cr_assert(p[i] >= -2 && p[i] < 3, "value %lld", (long long)p[i]);
        seen[p[i] + 2]++;
    }
    for (int i = 0; i < 5; i++) cr_assert(seen[i] > 800 && seen[i] < 1200, "bucket %d", i);
    bn_release(t);
}

/* ---- scopes and errors ------------------------------------------------------------------------ */
Test(core, scope_releases_what_it_owns_and_keep_hands_out)
{
    long long before = bnt_live_tensors();
    bn_tensor *kept;
    bn_scope_begin();
    cr_assert_eq(bn_scope_depth(), 1);
    bn_tensor *a = bn_ones(BN_SHAPE(4), BN_F32);
    bn_tensor *b = bn_reshape(a, BN_SHAPE(2, 2));
    bn_scope_begin();
    bn_tensor *c = bn_transpose(b, 0, 1);
    kept = bn_scope_keep(bn_contiguous(c)); /* moves to the outer scope */
    bn_scope_end();
    cr_assert_eq(bn_numel(kept), 4);
    kept = bn_scope_keep(kept); /* moves to the caller */
    bn_scope_end();
    cr_assert_eq(bn_scope_depth(), 0);
    cr_assert_eq(bnt_live_tensors(), before + 1);
    cr_assert_eq(bn_get(kept, (int64_t[]){1, 0}), 1.0);
    bn_release(kept);
    cr_assert_eq(bnt_live_tensors(), before);
}

Test(core, null_inputs_keep_the_first_error)
{
    bn_error_clear();
    bn_tensor *a = bn_reshape(NULL, BN_SHAPE(2));
    cr_assert_null(a);
    cr_assert_eq(bn_error_code(), BN_ERR_ARG);
    cr_assert(strstr(bn_error_message(), "bn_reshape") != NULL);
    bn_tensor *b = bn_transpose(a, 0, 1); /* propagates: the message still names bn_reshape */
    cr_assert_null(b);
    bnt_assert_error(BN_ERR_ARG, "bn_reshape", "argument t is NULL", NULL);
    cr_assert_str_eq(bn_error_message(), "");
    cr_assert_eq(bn_error_code(), BN_OK);
}

Test(core, scope_end_without_scope_is_an_error)
{
    bn_scope_end();
    bnt_assert_error(BN_ERR_ARG, "bn_scope_end", "no scope", NULL);
    bn_tensor *t = bn_zeros(BN_SHAPE(1), BN_F32);
    bn_scope_begin();
    cr_assert_null(bn_scope_keep(t)); /* not owned by this scope */
    bnt_assert_error(BN_ERR_ARG, "bn_scope_keep", NULL);
    cr_assert_null(bn_scope_keep(NULL));
    bnt_assert_error(BN_ERR_ARG, "bn_scope_keep", NULL);
    bn_scope_end();
    bn_release(t);
}

Test(core, status_and_dtype_names)
{
    cr_assert_str_eq(bn_status_name(BN_ERR_SHAPE), "BN_ERR_SHAPE");
    cr_assert_str_eq(bn_dtype_name(BN_BF16), "bf16");
    cr_assert_str_eq(bn_dtype_name((bn_dtype)77), "?");
    cr_assert_eq(bn_dtype_size(BN_I64), 8);
    cr_assert_eq(bn_dtype_size((bn_dtype)-1), 0);
    cr_assert(bn_dtype_is_float(BN_F16) && !bn_dtype_is_float(BN_I8));
    cr_assert(bn_dtype_is_int(BN_U8) && !bn_dtype_is_int(BN_BOOL));
    cr_assert_eq(bn_promote_types(BN_I32, BN_F16), BN_F16);
    cr_assert_eq(bn_promote_types(BN_BOOL, BN_U8), BN_U8);
    cr_assert_eq(bn_promote_types(BN_F16, BN_BF16), BN_F32);
    cr_assert_eq(bn_promote_types(BN_I8, BN_U8), BN_I32);
    cr_assert_eq(bn_shape_numel(BN_SHAPE(2, 3, 4)), 24);
    cr_assert_eq(bn_shape_numel(BN_SCALAR), 1);
    cr_assert(bn_shape_equal(BN_SHAPE(2, 3), bn_shape_make(2, (int64_t[]){2, 3})));
    cr_assert_eq(bn_shape_make(9, (int64_t[9]){0}).ndim, -1);
    bnt_assert_error(BN_ERR_ARG, "bn_shape_make", "ndim 9", NULL);
}

Test(core, inspection_of_null_reports_errors)
{
    cr_assert_eq(bn_ndim(NULL), -1);
    bnt_assert_error(BN_ERR_ARG, "bn_ndim", NULL);
    cr_assert_eq(bn_numel(NULL), -1);
    bnt_assert_error(BN_ERR_ARG, "bn_numel", NULL);
    cr_assert_eq(bn_dim(NULL, 0), -1);
    bnt_assert_error(BN_ERR_ARG, "bn_dim", NULL);
    cr_assert_eq(bn_shape_of(NULL).ndim, -1);
    bnt_assert_error(BN_ERR_ARG, "bn_shape_of", NULL);
    cr_assert_eq(bn_dtype_of(NULL), BN_DTYPE_COUNT);
    bnt_assert_error(BN_ERR_ARG, "bn_dtype_of", NULL);
    cr_assert_eq(bn_nbytes(NULL), 0);
    bnt_assert_error(BN_ERR_ARG, "bn_nbytes", NULL);
    cr_assert(!bn_is_contiguous(NULL));
    bnt_assert_error(BN_ERR_ARG, "bn_is_contiguous", NULL);
    cr_assert_eq(bn_stride(NULL, 0), -1);
    bnt_assert_error(BN_ERR_ARG, "bn_stride", NULL);
    bn_device_of(NULL);
    bnt_assert_error(BN_ERR_ARG, "bn_device_of", NULL);
    bn_tensor *t = bn_zeros(BN_SHAPE(2, 3), BN_F32);
    cr_assert_eq(bn_dim(t, 2), -1);
    bnt_assert_error(BN_ERR_ARG, "bn_dim", "i 2", "2 dims", NULL);
    cr_assert_eq(bn_stride(t, -3), -1);
    bnt_assert_error(BN_ERR_ARG, "bn_stride", "-3", NULL);
    bn_release(t);
}

/* ---- views ---------------------------------------------------------------------------------- */
Test(core, views_match_torch_and_share_storage)
{
    fx_file *f = fx_open("core.txt");
    bn_tensor *x = fx_tensor(f, "views", "x");
    bn_scope_begin();
    struct {
        const char *name;
        bn_tensor *got;
    } cases[] = {
        {"transpose_0_2", bn_transpose(x, 0, 2)},
        {"permute_2_0_1", bn_permute(x, (int[]){2, 0, 1}, 3)},
        {"slice_step2", bn_slice(x, 2, 1, INT64_MAX, 2)},
        {"slice_neg", bn_slice(x, 1, -2, INT64_MAX, 1)},
        {"narrow_1_1_2", bn_narrow(x, 1, 1, 2)},
        {"select_1_2", bn_select(x, 1, 2)},
        {"reshape_t_6x4", bn_reshape(bn_transpose(x, 0, 1), BN_SHAPE(6, 4))},
        {"flatten_1_2", bn_flatten(x, 1, 2)},
        {"unsqueeze_neg1", bn_unsqueeze(x, -1)},
        {"expand_2x2x3x4", bn_expand(bn_select(x, 0, 0), BN_SHAPE(2, 3, 4))},
        {"squeeze_all", bn_squeeze(bn_slice(bn_slice(x, 1, 1, 2, 1), 2, 0, 1, 1), BN_ALL)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_tensor *want = fx_tensor(f, "views", cases[i].name);
        bnt_assert_equal(cases[i].got, want, cases[i].name);
        bn_release(want);
    }
    /* views write through to the base */
    bn_tensor *t = bn_transpose(x, 0, 2);
    cr_assert_eq(bn_set(t, (int64_t[]){3, 2, 1}, -7), BN_OK);
    cr_assert_eq(bn_get(x, (int64_t[]){1, 2, 3}), -7);
    bn_scope_end();
    bn_release(x);
    fx_close(f);
}

Test(core, reshape_copies_only_when_it_must)
{
    bn_scope_begin();
    bn_tensor *x = bn_arange(0, 24, 1, BN_F32);
    bn_tensor *m = bn_reshape(x, BN_SHAPE(2, -1, 4));
    cr_assert_eq(bn_dim(m, 1), 3);
    cr_assert_eq(bn_tensor_data_f32(m), bn_tensor_data_f32(x), "a contiguous reshape is a view");
    bn_tensor *t = bn_transpose(m, 0, 1); /* [3, 2, 4], strides [4, 12, 1] */
    cr_assert(!bn_is_contiguous(t));
    bn_tensor *v = bn_view(t, BN_SHAPE(3, 2, 2, 2)); /* splitting a dim needs no copy */
    cr_assert_not_null(v, "%s", bn_error_message());
    cr_assert_eq(bn_stride(v, 1), 12);
    cr_assert_eq(bn_stride(v, 2), 2);
    cr_assert_null(bn_view(t, BN_SHAPE(6, 4)));
    bnt_assert_error(BN_ERR_SHAPE, "bn_view", "[3, 2, 4]", "[6, 4]", "bn_reshape", NULL);
    bn_tensor *r = bn_reshape(t, BN_SHAPE(6, 4));
    cr_assert(bn_is_contiguous(r));
    cr_assert_eq(bn_get(r, (int64_t[]){0, 1}), 1.0);
    cr_assert_eq(bn_get(r, (int64_t[]){1, 0}), 12.0);
    cr_assert_null(bn_reshape(x, BN_SHAPE(5, -1)));
    bnt_assert_error(BN_ERR_SHAPE, "bn_reshape", "[24]", "[5, -1]", NULL);
    cr_assert_null(bn_reshape(x, BN_SHAPE(-1, -1)));
    bnt_assert_error(BN_ERR_SHAPE, "bn_reshape", "more than one -1", NULL);
    cr_assert_null(bn_reshape(x, BN_SHAPE(5, 5)));
    bnt_assert_error(BN_ERR_SHAPE, "bn_reshape", "[5, 5]", "25", NULL);
    bn_tensor *e = bn_reshape(bn_zeros(BN_SHAPE(0, 4), BN_F32), BN_SHAPE(2, 0, -1));
    cr_assert_null(e);
    bnt_assert_error(BN_ERR_SHAPE, "bn_reshape", NULL);
    bn_tensor *s = bn_reshape(bn_scalar(2, BN_F32), BN_SHAPE(1, 1, 1));
    cr_assert_eq(bn_ndim(s), 3);
    bn_scope_end();
}

Test(core, view_ops_reject_bad_dims)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *x = bn_zeros(BN_SHAPE(2, 3), BN_F32);
        cr_assert_null(bn_transpose(x, 0, 2));
        bnt_assert_error(BN_ERR_ARG, "bn_transpose", "d1 2", "2 dims", NULL);
        cr_assert_null(bn_permute(x, (int[]){0, 0}, 2));
        bnt_assert_error(BN_ERR_ARG, "bn_permute", "twice", NULL);
        cr_assert_null(bn_permute(x, (int[]){0}, 1));
        bnt_assert_error(BN_ERR_ARG, "bn_permute", "1 dims", "[2, 3]", NULL);
        cr_assert_null(bn_squeeze(x, 5));
        bnt_assert_error(BN_ERR_ARG, "bn_squeeze", "dim 5", NULL);
        cr_assert_null(bn_unsqueeze(x, 4));
        bnt_assert_error(BN_ERR_ARG, "bn_unsqueeze", "dim 4", "-3..2", NULL);
        cr_assert_null(bn_expand(x, BN_SHAPE(4, 3)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_expand", "[2, 3]", "[4, 3]", NULL);
        cr_assert_null(bn_expand(x, BN_SHAPE(3)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_expand", "fewer dims", NULL);
        cr_assert_null(bn_broadcast_to(x, BN_SHAPE(2, -1)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_broadcast_to", "negative", NULL);
        cr_assert_null(bn_slice(x, 1, 0, 3, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_slice", "step 0", NULL);
        cr_assert_null(bn_narrow(x, 1, 2, 2));
        bnt_assert_error(BN_ERR_ARG, "bn_narrow", "start 2", "length 2", "size 3", NULL);
        cr_assert_null(bn_select(x, 0, 2));
        bnt_assert_error(BN_ERR_ARG, "bn_select", "index 2", "size 2", NULL);
        cr_assert_null(bn_flatten(x, 1, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_flatten", "start_dim 1", NULL);
        cr_assert_null(bn_as_strided(x, BN_SHAPE(3, 3), (int64_t[]){3, 1}, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_as_strided", "storage of 6", NULL);
        cr_assert_null(bn_as_strided(x, BN_SHAPE(2), (int64_t[]){-1}, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_as_strided", "stride -1", NULL);
        cr_assert_null(bn_view(NULL, BN_SHAPE(1)));
        bnt_assert_error(BN_ERR_ARG, "bn_view", NULL);
        bn_tensor *d8 = bn_zeros(BN_SHAPE(1, 1, 1, 1, 1, 1, 1, 1), BN_F32);
        cr_assert_null(bn_unsqueeze(d8, 0));
        bnt_assert_error(BN_ERR_SHAPE, "bn_unsqueeze", "8 dims", NULL);
        bn_release(d8);
        bn_release(x);
    });
}

Test(core, as_strided_builds_overlapping_windows)
{
    bn_scope_begin();
    bn_tensor *x = bn_arange(0, 6, 1, BN_I32);
    bn_tensor *w = bn_as_strided(x, BN_SHAPE(4, 3), (int64_t[]){1, 1}, 0); /* sliding windows */
    const double want[12] = {0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 5};
    bnt_assert_values(bn_contiguous(w), want, 12, 0, "windows");
    bn_scope_end();
}

/* ---- copies and conversions --------------------------------------------------------------------- */
Test(core, to_dtype_contiguous_clone_and_copy_)
{
    bn_scope_begin();
    bn_tensor *x = bn_arange(-2, 4, 1, BN_F32);
    bn_tensor *x2 = bn_reshape(x, BN_SHAPE(2, 3));
    bn_tensor *h = bn_to_dtype(bn_transpose(x2, 0, 1), BN_F16);
    cr_assert_eq(bn_dtype_of(h), BN_F16);
    const double want[6] = {-2, 1, -1, 2, 0, 3};
    bnt_assert_values(h, want, 6, 0, "f16 of transpose");
    bn_tensor *b = bn_to_dtype(x2, BN_BOOL);
    const double wb[6] = {1, 1, 0, 1, 1, 1};
    bnt_assert_values(b, wb, 6, 0, "f32 to bool");
    bn_tensor *same = bn_to_dtype(x2, BN_F32);
    cr_assert_eq(bn_tensor_data_f32(same), bn_tensor_data_f32(x2), "same dtype shares storage");
    bn_tensor *c = bn_clone(x2);
    cr_assert_neq(bn_tensor_data_f32(c), bn_tensor_data_f32(x2), "clone copies");
    bn_tensor *ct = bn_contiguous(bn_transpose(x2, 0, 1));
    cr_assert(bn_is_contiguous(ct));
    bnt_assert_values(ct, want, 6, 0, "contiguous of transpose");
    /* copy_ broadcasts and casts into a strided destination */
    bn_tensor *dst = bn_zeros(BN_SHAPE(3, 2), BN_I64);
    bn_tensor *row = bn_from_data((int32_t[]){7, 9}, BN_SHAPE(2), BN_I32);
    cr_assert_eq(bn_copy_(dst, row), BN_OK);
    const double wd[6] = {7, 9, 7, 9, 7, 9};
    bnt_assert_values(dst, wd, 6, 0, "copy_ broadcast");
    bn_tensor *dt = bn_transpose(dst, 0, 1); /* [2, 3] */
    cr_assert_eq(bn_copy_(dt, x2), BN_OK);
    const double wt[6] = {-2, 1, -1, 2, 0, 3};
    bnt_assert_values(dst, wt, 6, 0, "copy_ into transposed view");
    /* self-overlapping copy goes through a temporary */
    bn_tensor *v = bn_arange(0, 4, 1, BN_F32);
    cr_assert_eq(bn_copy_(bn_narrow(v, 0, 1, 3), bn_narrow(v, 0, 0, 3)), BN_OK);
    const double wv[4] = {0, 0, 1, 2};
    bnt_assert_values(v, wv, 4, 0, "overlapping copy");
    cr_assert_eq(bn_fill_(bn_narrow(v, 0, 2, 2), 5), BN_OK);
    const double wf[4] = {0, 0, 5, 5};
    bnt_assert_values(v, wf, 4, 0, "fill_ a view");
    bn_scope_end();
}

Test(core, copy_and_conversion_reject_bad_input)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_zeros(BN_SHAPE(2, 3), BN_F32);
        cr_assert_eq(bn_copy_(x, bn_zeros(BN_SHAPE(4), BN_F32)), BN_ERR_SHAPE);
        bnt_assert_error(BN_ERR_SHAPE, "bn_copy_", "[4]", "[2, 3]", NULL);
        cr_assert_eq(bn_copy_(bn_zeros(BN_SHAPE(3), BN_F32), x), BN_ERR_SHAPE);
        bnt_assert_error(BN_ERR_SHAPE, "bn_copy_", NULL);
        cr_assert_eq(bn_copy_(bn_expand(bn_zeros(BN_SHAPE(1, 3), BN_F32), BN_SHAPE(2, 3)), x),
                     BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_copy_", "expanded", NULL);
        cr_assert_eq(bn_copy_(NULL, x), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_copy_", "dst", NULL);
        cr_assert_eq(bn_fill_(NULL, 1), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_fill_", NULL);
        cr_assert_null(bn_to_dtype(x, (bn_dtype)12));
        bnt_assert_error(BN_ERR_DTYPE, "bn_to_dtype", "12", NULL);
        cr_assert_null(bn_to_dtype(NULL, BN_F32));
        bnt_assert_error(BN_ERR_ARG, "bn_to_dtype", NULL);
        cr_assert_null(bn_contiguous(NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_contiguous", NULL);
        cr_assert_null(bn_clone(NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_clone", NULL);
        /* one past the last GPU (cuda:0 on a machine without one) */
        bn_device missing = bn_cuda(bn_cuda_device_count());
        char name[32];
        snprintf(name, sizeof name, "cuda:%d", missing.index);
        cr_assert_null(bn_tensor_to(x, missing));
        bnt_assert_error(BN_ERR_DEVICE, "bn_tensor_to", name, NULL);
        cr_assert_null(bn_tensor_to(x, (bn_device){BN_DEVICE_CPU, 1}));
        bnt_assert_error(BN_ERR_DEVICE, "bn_tensor_to", "cpu:1", NULL);
        cr_assert(!bn_device_available(bn_vulkan(0)));
        bn_tensor *same = bn_tensor_to(x, bn_cpu());
        cr_assert_eq(bn_tensor_data_f32(same), bn_tensor_data_f32(x));
        bn_scope_end();
    });
}

Test(core, large_copies_are_identical_for_one_and_two_threads)
{
#ifdef _OPENMP
    bn_scope_begin();
    bn_manual_seed(11);
    bn_tensor *x = bn_transpose(bn_randn(BN_SHAPE(300, 701), BN_F32), 0, 1);
    omp_set_num_threads(1);
    bn_tensor *a = bn_to_dtype(x, BN_BF16);
    omp_set_num_threads(2);
    bn_tensor *b = bn_to_dtype(x, BN_BF16);
    bnt_assert_equal(a, b, "bf16 cast");
    bn_scope_end();
#else
    cr_skip("built without OpenMP");
#endif
}

/* Library code suspends registration, then runs user-style code that opens its own scope. */
Test(core, scope_opened_inside_a_suspension_still_owns_its_tensors)
{
    long long before = bnt_live_tensors();
    bn_scope_begin();
    bn__scope_suspend();
    bn_tensor *mine = bn_zeros(BN_SHAPE(2), BN_F32); /* not registered: released by hand */
    bn_scope_begin();
    bn_tensor *tmp = bn_ones(BN_SHAPE(3), BN_F32); /* registered with the inner scope */
    (void)tmp;
    bn_scope_end();
    cr_assert_eq(bnt_live_tensors(), before + 1);
    bn__scope_resume();
    bn_release(mine);
    bn_scope_end();
    cr_assert_eq(bnt_live_tensors(), before);
}
