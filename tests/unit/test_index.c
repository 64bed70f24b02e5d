/* tests/unit/test_index.c — index_select, gather, scatter / scatter_add, sort, argsort, topk and
 * one_hot against PyTorch. Fixtures: tests/data/index.txt, written by scripts/gen_index.py
 * (/usr/bin/python3 scripts/gen_index.py). Non-contiguous cases load the contiguous tensor and
 * make the same view here as the script did in Python. Large inputs (the parallel paths) are
 * checked against plain reference loops in C instead of fixtures. */
#include "bn_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- fixture helpers: every tensor loaded here is released by teardown() ------------------- */
static fx_file *fx;

static void setup(void) { fx = fx_open("index.txt"); }

static void teardown(void)
{
    bnt_release_kept();
    fx_close(fx);
}

static bn_tensor *ld(const char *c, const char *name) { return bnt_keep(fx_tensor(fx, c, name)); }

#define DTYPES bnt_dtype_names
#define NDTYPES BN_DTYPE_COUNT

TestSuite(index, .init = setup, .fini = teardown);

/* ---- index_select ------------------------------------------------------------------------- */
static void check_index_select(const char *c, const bn_tensor *x, int dim)
{
    bn_tensor *got = bnt_keep(bn_index_select(x, dim, ld(c, "index")));
    bnt_assert_equal(got, ld(c, "out"), c);
}

Test(index, index_select_matches_torch_on_each_dim)
{
    check_index_select("index_select_dim0", ld("index_select_dim0", "x"), 0);
    check_index_select("index_select_dim1", ld("index_select_dim1", "x"), 1);
    check_index_select("index_select_dim2", ld("index_select_dim2", "x"), 2);
    check_index_select("index_select_dimneg1", ld("index_select_dimneg1", "x"), -1);
}

Test(index, index_select_accepts_i32_index)
{
    check_index_select("index_select_i32_index", ld("index_select_i32_index", "x"), 1);
}

Test(index, index_select_reads_transposed_input)
{
    bn_tensor *xt = bnt_keep(bn_transpose(ld("index_select_transposed", "x"), 0, 2));
    check_index_select("index_select_transposed", xt, 0);
    bn_tensor *xt2 = bnt_keep(bn_transpose(ld("index_select_transposed_last", "x"), 0, 2));
    check_index_select("index_select_transposed_last", xt2, 2);
}

Test(index, index_select_moves_every_dtype)
{
    for (int i = 0; i < NDTYPES; i++) {
        char c[64];
        snprintf(c, sizeof c, "index_select_%s", DTYPES[i]);
        check_index_select(c, ld(c, "x"), 1);
    }
}

Test(index, index_select_empty_index_gives_empty_dim)
{
    bn_tensor *got = bnt_keep(bn_index_select(ld("index_select_empty_index", "x"), 1,
                                          ld("index_select_empty_index", "index")));
    bnt_assert_equal(got, ld("index_select_empty_index", "out"), "empty index");
    cr_assert_eq(bn_dim(got, 1), 0);
}

Test(index, index_select_on_0d_takes_one_index)
{
    bn_tensor *x = bnt_keep(bn_scalar(7.5, BN_F64));
    bn_tensor *ix = bnt_keep(bn_zeros(BN_SHAPE(1), BN_I64));
    bn_tensor *got = bnt_keep(bn_index_select(x, 0, ix));
    cr_assert_eq(bn_ndim(got), 0);
    cr_assert_eq(bn_item(got), 7.5);
}

/* Large inputs take the parallel paths: whole rows (dim 0) and single elements (dim 1). */
Test(index, index_select_large_matches_reference)
{
    bn_manual_seed(3);
    bn_tensor *x = bnt_keep(bn_randn(BN_SHAPE(300, 200), BN_F32));
    for (int dim = 0; dim < 2; dim++) {
        int64_t n = bn_dim(x, dim);
        bn_tensor *ix = bnt_keep(bn_randint(0, n, BN_SHAPE(250), BN_I64));
        bn_tensor *got = bnt_keep(bn_index_select(x, dim, ix));
        cr_assert_not_null(got, "%s", bn_error_message());
        const int64_t *ip = bn_tensor_data_i64(ix);
        const float *xp = bn_tensor_data_f32(x), *gp = bn_tensor_data_f32(got);
        int64_t rows = bn_dim(got, 0), cols = bn_dim(got, 1);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                float want = dim == 0 ? xp[ip[r] * 200 + c] : xp[r * 200 + ip[c]];
                cr_assert_eq(gp[r * cols + c], want, "dim %d at (%lld, %lld)", dim, (long long)r,
                             (long long)c);
            }
    }
}

Test(index, index_select_rejects_bad_input)
{
    bn_tensor *x = bnt_keep(bn_zeros(BN_SHAPE(2, 4), BN_F32));
    bn_tensor *ok = bnt_keep(bn_from_data((int64_t[]){1, 3}, BN_SHAPE(2), BN_I64));
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_index_select(NULL, 0, ok));
        bnt_assert_error(BN_ERR_ARG, "bn_index_select", "t", "NULL", NULL);
        cr_assert_null(bn_index_select(x, 0, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_index_select", "index", "NULL", NULL);
        cr_assert_null(bn_index_select(x, 2, ok));
        bnt_assert_error(BN_ERR_ARG, "bn_index_select", "dim 2", "2 dims", NULL);
        bn_tensor *fidx = bn_zeros(BN_SHAPE(2), BN_F32);
        cr_assert_null(bn_index_select(x, 0, fidx));
        bnt_assert_error(BN_ERR_DTYPE, "bn_index_select", "index", "i64", "f32", NULL);
        bn_release(fidx);
        bn_tensor *idx2 = bn_zeros(BN_SHAPE(1, 2), BN_I64);
        cr_assert_null(bn_index_select(x, 0, idx2));
        bnt_assert_error(BN_ERR_SHAPE, "bn_index_select", "1-D", "[1, 2]", NULL);
        bn_release(idx2);
        bn_tensor *big = bn_from_data((int64_t[]){0, 4}, BN_SHAPE(2), BN_I64);
        cr_assert_null(bn_index_select(x, 1, big));
        bnt_assert_error(BN_ERR_ARG, "bn_index_select", "index 4", "size 4", NULL);
        bn_release(big);
        bn_tensor *neg = bn_from_data((int32_t[]){-1}, BN_SHAPE(1), BN_I32);
        cr_assert_null(bn_index_select(x, 0, neg));
        bnt_assert_error(BN_ERR_ARG, "bn_index_select", "index -1", "size 2", NULL);
        bn_release(neg);
        bn_tensor *s = bn_scalar(1, BN_F32);
        cr_assert_null(bn_index_select(s, 0, ok));
        bnt_assert_error(BN_ERR_SHAPE, "bn_index_select", "0-d", "[2]", NULL);
        bn_release(s);
    });
}

Test(index, index_select_keeps_an_earlier_error)
{
    bn_tensor *x = bnt_keep(bn_zeros(BN_SHAPE(2, 4), BN_F32));
    bn_tensor *bad = bn_reshape(x, BN_SHAPE(3, 3)); /* fails */
    cr_assert_null(bn_index_select(bad, 0, x));
    bnt_assert_error(BN_ERR_SHAPE, "bn_reshape", NULL);
}

/* ---- gather ------------------------------------------------------------------------------- */
static void check_gather(const char *c, const bn_tensor *x, int dim)
{
    bn_tensor *got = bnt_keep(bn_gather(x, dim, ld(c, "index")));
    bnt_assert_equal(got, ld(c, "out"), c);
}

Test(index, gather_matches_torch)
{
    check_gather("gather_dim1", ld("gather_dim1", "x"), 1);
    check_gather("gather_dim0", ld("gather_dim0", "x"), 0);
    check_gather("gather_index_smaller", ld("gather_index_smaller", "x"), 1);
    check_gather("gather_3d_dimneg2", ld("gather_3d_dimneg2", "x"), -2);
}

Test(index, gather_reads_transposed_input)
{
    check_gather("gather_transposed", bnt_keep(bn_transpose(ld("gather_transposed", "x"), 0, 2)), 0);
}

Test(index, gather_moves_every_dtype)
{
    for (int i = 0; i < NDTYPES; i++) {
        char c[64];
        snprintf(c, sizeof c, "gather_%s", DTYPES[i]);
        check_gather(c, ld(c, "x"), 1);
    }
}

Test(index, gather_accepts_i32_index)
{
    bn_tensor *ix = bnt_keep(bn_to_dtype(ld("gather_dim0", "index"), BN_I32));
    bn_tensor *got = bnt_keep(bn_gather(ld("gather_dim0", "x"), 0, ix));
    bnt_assert_equal(got, ld("gather_dim0", "out"), "i32 index");
}

Test(index, gather_treats_0d_as_one_element)
{
    bn_tensor *x = bnt_keep(bn_scalar(5, BN_F32));
    bn_tensor *ix = bnt_keep(bn_zeros(BN_SHAPE(3), BN_I64));
    bn_tensor *got = bnt_keep(bn_gather(x, 0, ix));
    bnt_assert_values(got, (double[]){5, 5, 5}, 3, 0, "0-d gather");
    bn_tensor *empty = bnt_keep(bn_zeros(BN_SHAPE(0, 2), BN_I64));
    bn_tensor *e = bnt_keep(bn_gather(bnt_keep(bn_zeros(BN_SHAPE(2, 2), BN_F32)), 1, empty));
    cr_assert_eq(bn_dim(e, 0), 0);
}

Test(index, gather_rejects_bad_input)
{
    bn_tensor *x = bnt_keep(bn_zeros(BN_SHAPE(2, 3), BN_F32));
    BNT_ASSERT_NO_LEAK({
        bn_tensor *ix = bn_zeros(BN_SHAPE(2, 2), BN_I64);
        cr_assert_null(bn_gather(NULL, 0, ix));
        bnt_assert_error(BN_ERR_ARG, "bn_gather", "t", "NULL", NULL);
        cr_assert_null(bn_gather(x, 0, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_gather", "index", "NULL", NULL);
        cr_assert_null(bn_gather(x, -3, ix));
        bnt_assert_error(BN_ERR_ARG, "bn_gather", "dim -3", NULL);
        bn_tensor *i1 = bn_zeros(BN_SHAPE(2), BN_I64);
        cr_assert_null(bn_gather(x, 1, i1));
        bnt_assert_error(BN_ERR_SHAPE, "bn_gather", "[2]", "[2, 3]", "dims", NULL);
        bn_release(i1);
        bn_tensor *wide = bn_zeros(BN_SHAPE(3, 1), BN_I64);
        cr_assert_null(bn_gather(x, 1, wide));
        bnt_assert_error(BN_ERR_SHAPE, "bn_gather", "[3, 1]", "[2, 3]", "dim 0", "3 > 2", NULL);
        bn_release(wide);
        bn_tensor *fi = bn_zeros(BN_SHAPE(2, 2), BN_F64);
        cr_assert_null(bn_gather(x, 1, fi));
        bnt_assert_error(BN_ERR_DTYPE, "bn_gather", "f64", NULL);
        bn_release(fi);
        bn_tensor *oob = bn_from_data((int64_t[]){0, 3}, BN_SHAPE(1, 2), BN_I64);
        cr_assert_null(bn_gather(x, 1, oob));
        bnt_assert_error(BN_ERR_ARG, "bn_gather", "index 3", "size 3", NULL);
        bn_release(oob);
        bn_tensor *neg = bn_from_data((int64_t[]){-2}, BN_SHAPE(1, 1), BN_I64);
        cr_assert_null(bn_gather(x, 0, neg));
        bnt_assert_error(BN_ERR_ARG, "bn_gather", "index -2", "size 2", NULL);
        bn_release(neg);
        bn_release(ix);
    });
}

/* ---- scatter / scatter_add ---------------------------------------------------------------- */
static void check_scatter(const char *c, const bn_tensor *t, int dim, bool add)
{
    bn_tensor *ix = ld(c, "index"), *src = ld(c, "src");
    bn_tensor *got = bnt_keep(add ? bn_scatter_add(t, dim, ix, src) : bn_scatter(t, dim, ix, src));
    bnt_assert_close(got, ld(c, "out"), bnt_rtol(bn_dtype_of(t)), bnt_atol(bn_dtype_of(t)), c);
}

Test(index, scatter_matches_torch)
{
    check_scatter("scatter_dim1", ld("scatter_dim1", "t"), 1, false);
    check_scatter("scatter_dim0", ld("scatter_dim0", "t"), 0, false);
}

Test(index, scatter_add_sums_duplicates_like_torch)
{
    check_scatter("scatter_add_dim1", ld("scatter_add_dim1", "t"), 1, true);
    check_scatter("scatter_add_dim0", ld("scatter_add_dim0", "t"), -2, true);
}

Test(index, scatter_add_writes_into_copy_of_transposed_input)
{
    bn_tensor *t = ld("scatter_add_transposed", "t");
    bn_tensor *tt = bnt_keep(bn_transpose(t, 0, 1));
    bn_tensor *before = bnt_keep(bn_clone(t));
    check_scatter("scatter_add_transposed", tt, 1, true);
    bnt_assert_equal(t, before, "input left unchanged");
}

Test(index, scatter_handles_every_dtype)
{
    for (int i = 0; i < NDTYPES - 1; i++) { /* bool: scatter only, below */
        char c[64];
        snprintf(c, sizeof c, "scatter_add_%s", DTYPES[i]);
        check_scatter(c, ld(c, "t"), 1, true);
        snprintf(c, sizeof c, "scatter_%s", DTYPES[i]);
        check_scatter(c, ld(c, "t"), 1, false);
    }
    bn_tensor *b = bnt_keep(bn_zeros(BN_SHAPE(2, 2), BN_BOOL));
    bn_tensor *ix = bnt_keep(bn_from_data((int64_t[]){1, 0}, BN_SHAPE(2, 1), BN_I64));
    bn_tensor *src = bnt_keep(bn_ones(BN_SHAPE(2, 1), BN_BOOL));
    bnt_assert_values(bnt_keep(bn_scatter(b, 1, ix, src)), (double[]){0, 1, 1, 0}, 4, 0, "bool");
}

Test(index, scatter_add_f16_rounds_after_each_add)
{
    check_scatter("scatter_add_f16_rounds_each_add", ld("scatter_add_f16_rounds_each_add", "t"), 1,
                  true);
}

/* Many lines (parallel) with many duplicates: the same sums as a serial loop in index order. */
Test(index, scatter_add_large_matches_serial_reference)
{
    bn_manual_seed(11);
    bn_tensor *t = bnt_keep(bn_zeros(BN_SHAPE(400, 100), BN_F32));
    bn_tensor *ix = bnt_keep(bn_randint(0, 100, BN_SHAPE(400, 300), BN_I64));
    bn_tensor *src = bnt_keep(bn_randn(BN_SHAPE(400, 300), BN_F32));
    bn_tensor *got = bnt_keep(bn_scatter_add(t, 1, ix, src));
    cr_assert_not_null(got, "%s", bn_error_message());
    static float want[400 * 100];
    memset(want, 0, sizeof want);
    const int64_t *ip = bn_tensor_data_i64(ix);
    const float *sp = bn_tensor_data_f32(src);
    for (int r = 0; r < 400; r++)
        for (int i = 0; i < 300; i++) want[r * 100 + ip[r * 300 + i]] += sp[r * 300 + i];
    const float *gp = bn_tensor_data_f32(got);
    for (int k = 0; k < 400 * 100; k++) cr_assert_eq(gp[k], want[k], "element %d", k);
}

Test(index, scatter_with_empty_index_copies_input)
{
    bn_tensor *t = bnt_keep(bn_ones(BN_SHAPE(2, 3), BN_F32));
    bn_tensor *ix = bnt_keep(bn_zeros(BN_SHAPE(0, 3), BN_I64));
    bn_tensor *got = bnt_keep(bn_scatter(t, 0, ix, bnt_keep(bn_zeros(BN_SHAPE(0, 3), BN_F32))));
    bnt_assert_equal(got, t, "empty index");
}

Test(index, scatter_rejects_bad_input)
{
    bn_tensor *t = bnt_keep(bn_zeros(BN_SHAPE(2, 3), BN_F32));
    bn_tensor *ix = bnt_keep(bn_zeros(BN_SHAPE(2, 2), BN_I64));
    bn_tensor *src = bnt_keep(bn_ones(BN_SHAPE(2, 2), BN_F32));
    bn_tensor *src31 = bnt_keep(bn_ones(BN_SHAPE(3, 1), BN_F32));
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_scatter(NULL, 0, ix, src));
        bnt_assert_error(BN_ERR_ARG, "bn_scatter", "t", "NULL", NULL);
        cr_assert_null(bn_scatter_add(t, 0, NULL, src));
        bnt_assert_error(BN_ERR_ARG, "bn_scatter_add", "index", "NULL", NULL);
        cr_assert_null(bn_scatter_add(t, 0, ix, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_scatter_add", "src", "NULL", NULL);
        cr_assert_null(bn_scatter(t, 2, ix, src));
        bnt_assert_error(BN_ERR_ARG, "bn_scatter", "dim 2", NULL);
        bn_tensor *s64 = bn_ones(BN_SHAPE(2, 2), BN_F64);
        cr_assert_null(bn_scatter_add(t, 1, ix, s64));
        bnt_assert_error(BN_ERR_DTYPE, "bn_scatter_add", "src", "f64", "f32", NULL);
        bn_release(s64);
        bn_tensor *small = bn_ones(BN_SHAPE(2, 1), BN_F32);
        cr_assert_null(bn_scatter(t, 1, ix, small));
        bnt_assert_error(BN_ERR_SHAPE, "bn_scatter", "[2, 2]", "src", "[2, 1]", "dim 1", NULL);
        bn_release(small);
        bn_tensor *tall = bn_zeros(BN_SHAPE(3, 1), BN_I64);
        cr_assert_null(bn_scatter(t, 1, tall, src31));
        bnt_assert_error(BN_ERR_SHAPE, "bn_scatter", "[3, 1]", "[2, 3]", "dim 0", NULL);
        bn_release(tall);
        bn_tensor *oob = bn_from_data((int64_t[]){0, 3, 1, 1}, BN_SHAPE(2, 2), BN_I64);
        cr_assert_null(bn_scatter_add(t, 1, oob, src));
        bnt_assert_error(BN_ERR_ARG, "bn_scatter_add", "index 3", "size 3", NULL);
        bn_release(oob);
        bn_tensor *neg = bn_from_data((int32_t[]){0, 0, -1, 1}, BN_SHAPE(2, 2), BN_I32);
        cr_assert_null(bn_scatter(t, 0, neg, src));
        bnt_assert_error(BN_ERR_ARG, "bn_scatter", "index -1", "size 2", NULL);
        bn_release(neg);
        bn_tensor *i1 = bn_zeros(BN_SHAPE(2), BN_I64);
        cr_assert_null(bn_scatter(t, 1, i1, src));
        bnt_assert_error(BN_ERR_SHAPE, "bn_scatter", "dims", NULL);
        bn_release(i1);
    });
}

/* ---- sort / argsort ----------------------------------------------------------------------- */
static void check_sort(const char *c, const bn_tensor *x, int dim, bool desc)
{
    bn_tensor *v = NULL, *i = NULL;
    cr_assert_eq(bn_sort(x, dim, desc, &v, &i), BN_OK, "%s: %s", c, bn_error_message());
    bnt_keep(v);
    bnt_keep(i);
    bnt_assert_equal(v, ld(c, "values"), c);
    bnt_assert_equal(i, ld(c, "indices"), c);
    bnt_assert_equal(bnt_keep(bn_argsort(x, dim, desc)), ld(c, "indices"), c);
}

Test(index, sort_orders_nan_last_and_keeps_signed_zeros_stable)
{
    check_sort("sort_f32_dim1_asc", ld("sort_f32_dim1_asc", "x"), 1, false);
    check_sort("sort_f32_dim1_desc", ld("sort_f32_dim1_desc", "x"), -1, true);
    check_sort("sort_f32_dim0_asc", ld("sort_f32_dim0_asc", "x"), 0, false);
    check_sort("sort_f32_dim0_desc", ld("sort_f32_dim0_desc", "x"), -2, true);
}

Test(index, sort_reads_transposed_input)
{
    check_sort("sort_transposed", bnt_keep(bn_transpose(ld("sort_transposed", "x"), 0, 1)), -1, false);
}

Test(index, sort_is_stable_with_ties)
{
    check_sort("sort_ties_asc", ld("sort_ties_asc", "x"), 1, false);
    check_sort("sort_ties_desc", ld("sort_ties_desc", "x"), 1, true);
}

Test(index, sort_handles_every_dtype)
{
    for (int k = 0; k < NDTYPES; k++)
        for (int desc = 0; desc < 2; desc++) {
            char c[64];
            snprintf(c, sizeof c, "sort_%s_%s", DTYPES[k], desc ? "desc" : "asc");
            check_sort(c, ld(c, "x"), 1, desc);
        }
}

Test(index, sort_i64_is_exact_beyond_2_pow_53)
{
    check_sort("sort_i64_big", ld("sort_i64_big", "x"), 0, false);
}

Test(index, sort_outputs_are_optional)
{
    bn_tensor *x = ld("sort_ties_asc", "x");
    bn_tensor *v = NULL;
    cr_assert_eq(bn_sort(x, 1, false, &v, NULL), BN_OK);
    bnt_assert_equal(bnt_keep(v), ld("sort_ties_asc", "values"), "values only");
    cr_assert_eq(bn_sort(x, 1, false, NULL, NULL), BN_OK);
}

Test(index, sort_handles_0d_and_empty)
{
    bn_tensor *v = NULL, *i = NULL;
    cr_assert_eq(bn_sort(bnt_keep(bn_scalar(4, BN_F32)), 0, false, &v, &i), BN_OK);
    bnt_keep(v);
    bnt_keep(i);
    cr_assert_eq(bn_ndim(v), 0);
    cr_assert_eq(bn_item(v), 4);
    cr_assert_eq(bn_item(i), 0);
    cr_assert_eq(bn_sort(bnt_keep(bn_zeros(BN_SHAPE(3, 0), BN_F32)), 1, true, &v, &i), BN_OK);
    bnt_keep(v);
    bnt_keep(i);
    cr_assert_eq(bn_dim(v, 1), 0);
    cr_assert_eq(bn_dtype_of(i), BN_I64);
}

/* Long lines on both threads: sorted order, and values[j] == x[indices[j]]. */
Test(index, sort_large_is_ordered_and_consistent)
{
    bn_manual_seed(5);
    bn_tensor *x = bnt_keep(bn_randn(BN_SHAPE(64, 1000), BN_F32));
    bn_tensor *v = NULL, *i = NULL;
    cr_assert_eq(bn_sort(x, 1, false, &v, &i), BN_OK);
    bnt_keep(v);
    bnt_keep(i);
    const float *xp = bn_tensor_data_f32(x), *vp = bn_tensor_data_f32(v);
    const int64_t *ip = bn_tensor_data_i64(i);
    for (int r = 0; r < 64; r++)
        for (int j = 0; j < 1000; j++) {
            cr_assert_eq(vp[r * 1000 + j], xp[r * 1000 + ip[r * 1000 + j]]);
            if (j) cr_assert_leq(vp[r * 1000 + j - 1], vp[r * 1000 + j]);
        }
}

Test(index, sort_rejects_bad_input)
{
    bn_tensor *x = bnt_keep(bn_zeros(BN_SHAPE(2, 3), BN_F32));
    bn_tensor *v = x, *i = x;
    BNT_ASSERT_NO_LEAK({
        cr_assert_eq(bn_sort(NULL, 0, false, &v, &i), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_sort", "t", "NULL", NULL);
        cr_assert_null(v);
        cr_assert_null(i);
        cr_assert_eq(bn_sort(x, 2, false, &v, &i), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_sort", "dim 2", "2 dims", NULL);
        cr_assert_null(v);
        cr_assert_null(bn_argsort(NULL, 0, false));
        bnt_assert_error(BN_ERR_ARG, "bn_argsort", "NULL", NULL);
        cr_assert_null(bn_argsort(x, -3, true));
        bnt_assert_error(BN_ERR_ARG, "bn_argsort", "dim -3", NULL);
    });
}

/* ---- topk --------------------------------------------------------------------------------- */
static void check_topk(const char *c, const bn_tensor *x, int64_t k, int dim, bool largest)
{
    bn_tensor *v = NULL, *i = NULL;
    cr_assert_eq(bn_topk(x, k, dim, largest, &v, &i), BN_OK, "%s: %s", c, bn_error_message());
    bnt_keep(v);
    bnt_keep(i);
    bnt_assert_equal(v, ld(c, "values"), c);
    bnt_assert_equal(i, ld(c, "indices"), c);
}

Test(index, topk_matches_torch_on_distinct_values)
{
    const char *c = "topk_k3_dim1_largest";
    bn_tensor *x = ld(c, "x");
    check_topk(c, x, 3, 1, true);
    check_topk("topk_k3_dim1_smallest", x, 3, 1, false);
    check_topk("topk_k1_dim1_largest", x, 1, 1, true);
    check_topk("topk_k8_dim1_largest", x, 8, 1, true);
    check_topk("topk_k0_dim1_largest", x, 0, 1, true);
    check_topk("topk_k4_dim0_largest", x, 4, 0, true);
    check_topk("topk_k2_dimneg2_smallest", x, 2, -2, false);
    check_topk("topk_long_lines", ld("topk_long_lines", "x"), 5, 1, true);
}

Test(index, topk_reads_transposed_input)
{
    check_topk("topk_transposed", bnt_keep(bn_transpose(ld("topk_transposed", "x"), 0, 1)), 2, 1, true);
}

Test(index, topk_handles_every_dtype)
{
    const char *names[] = {"f32", "f64", "f16", "bf16", "i32", "i64", "u8", "i8"};
    for (int k = 0; k < 8; k++)
        for (int largest = 0; largest < 2; largest++) {
            char c[64];
            snprintf(c, sizeof c, "topk_%s_%s", names[k], largest ? "largest" : "smallest");
            check_topk(c, ld(c, "x"), 4, 1, largest);
        }
}

Test(index, topk_ranks_nan_above_everything)
{
    check_topk("topk_nan_largest", ld("topk_nan_largest", "x"), 3, 0, true);
    check_topk("topk_nan_smallest", ld("topk_nan_smallest", "x"), 3, 0, false);
}

Test(index, topk_with_ties_returns_torchs_values)
{
    for (int largest = 0; largest < 2; largest++) {
        const char *c = largest ? "topk_ties_largest" : "topk_ties_smallest";
        bn_tensor *v = NULL;
        cr_assert_eq(bn_topk(ld(c, "x"), 4, 1, largest, &v, NULL), BN_OK);
        bnt_assert_equal(bnt_keep(v), ld(c, "values"), c);
    }
}

/* Heap selection (k << n) and the full sort agree on every line, parallel or not. */
Test(index, topk_large_agrees_with_sort)
{
    bn_manual_seed(9);
    bn_tensor *x = bnt_keep(bn_randn(BN_SHAPE(40, 2000), BN_F32));
    bn_tensor *v = NULL, *i = NULL, *sv = NULL, *si = NULL;
    cr_assert_eq(bn_topk(x, 10, 1, true, &v, &i), BN_OK);
    cr_assert_eq(bn_sort(x, 1, true, &sv, &si), BN_OK);
    bnt_keep(v);
    bnt_keep(i);
    bnt_keep(sv);
    bnt_keep(si);
    bnt_assert_equal(v, bnt_keep(bn_narrow(sv, 1, 0, 10)), "values");
    bnt_assert_equal(i, bnt_keep(bn_narrow(si, 1, 0, 10)), "indices");
}

Test(index, topk_on_0d)
{
    bn_tensor *v = NULL;
    cr_assert_eq(bn_topk(bnt_keep(bn_scalar(2, BN_I32)), 1, 0, true, &v, NULL), BN_OK);
    cr_assert_eq(bn_ndim(bnt_keep(v)), 0);
    cr_assert_eq(bn_item(v), 2);
}

Test(index, topk_rejects_bad_input)
{
    bn_tensor *x = bnt_keep(bn_zeros(BN_SHAPE(2, 3), BN_F32));
    bn_tensor *v = x, *i = x;
    BNT_ASSERT_NO_LEAK({
        cr_assert_eq(bn_topk(x, 4, 1, true, &v, &i), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_topk", "k 4", "size 3", NULL);
        cr_assert_null(v);
        cr_assert_null(i);
        cr_assert_eq(bn_topk(x, -1, 0, true, &v, &i), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_topk", "k -1", "size 2", NULL);
        cr_assert_eq(bn_topk(x, 1, 5, true, &v, &i), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_topk", "dim 5", NULL);
        cr_assert_eq(bn_topk(NULL, 1, 0, true, &v, &i), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_topk", "NULL", NULL);
    });
}

/* ---- one_hot ------------------------------------------------------------------------------ */
Test(index, one_hot_matches_torch)
{
    bnt_assert_equal(bnt_keep(bn_one_hot(ld("one_hot_infer", "t"), 0)), ld("one_hot_infer", "out"),
                     "infer");
    bnt_assert_equal(bnt_keep(bn_one_hot(ld("one_hot_classes", "t"), 6)), ld("one_hot_classes", "out"),
                     "classes");
    bnt_assert_equal(bnt_keep(bn_one_hot(ld("one_hot_2d", "t"), 3)), ld("one_hot_2d", "out"), "2d");
    bnt_assert_equal(bnt_keep(bn_one_hot(ld("one_hot_scalar", "t"), 4)), ld("one_hot_scalar", "out"),
                     "0-d");
    bnt_assert_equal(bnt_keep(bn_one_hot(ld("one_hot_empty", "t"), 3)), ld("one_hot_empty", "out"),
                     "empty");
}

Test(index, one_hot_reads_transposed_input)
{
    bn_tensor *t = ld("one_hot_2d", "t"); /* [[1, 0], [2, 2]] */
    bn_tensor *got = bnt_keep(bn_one_hot(bnt_keep(bn_transpose(t, 0, 1)), 3));
    bnt_assert_values(got, (double[]){0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1}, 12, 0, "transposed");
}

Test(index, one_hot_rejects_bad_input)
{
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_one_hot(NULL, 3));
        bnt_assert_error(BN_ERR_ARG, "bn_one_hot", "NULL", NULL);
        bn_tensor *f = bn_zeros(BN_SHAPE(2), BN_F32);
        cr_assert_null(bn_one_hot(f, 3));
        bnt_assert_error(BN_ERR_DTYPE, "bn_one_hot", "i64", "f32", NULL);
        bn_release(f);
        bn_tensor *neg = bn_from_data((int64_t[]){1, -2}, BN_SHAPE(2), BN_I64);
        cr_assert_null(bn_one_hot(neg, 3));
        bnt_assert_error(BN_ERR_ARG, "bn_one_hot", "-2", "negative", NULL);
        bn_release(neg);
        bn_tensor *big = bn_from_data((int64_t[]){1, 5}, BN_SHAPE(2), BN_I64);
        cr_assert_null(bn_one_hot(big, 3));
        bnt_assert_error(BN_ERR_ARG, "bn_one_hot", "5", "num_classes 3", NULL);
        bn_release(big);
        bn_tensor *empty = bn_zeros(BN_SHAPE(0), BN_I64);
        cr_assert_null(bn_one_hot(empty, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_one_hot", "empty", NULL);
        bn_release(empty);
    });
}

Test(index, results_belong_to_the_scope)
{
    bn_tensor *x = bnt_keep(bn_from_data((float[]){3, 1, 2, 0}, BN_SHAPE(2, 2), BN_F32));
    bn_tensor *ix = bnt_keep(bn_from_data((int64_t[]){1, 0, 0, 1}, BN_SHAPE(2, 2), BN_I64));
    bn_tensor *v = NULL, *i = NULL, *tv = NULL, *ti = NULL;
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_eq(bn_sort(x, 1, false, &v, &i), BN_OK);
        cr_assert_eq(bn_topk(x, 1, 0, true, &tv, &ti), BN_OK);
        bn_tensor *g = bn_gather(x, 1, ix);
        bn_tensor *s = bn_scatter_add(x, 0, ix, x);
        bn_tensor *sel = bn_index_select(x, 0, bn_argsort(bn_select(x, 1, 0), 0, true));
        bn_tensor *oh = bn_one_hot(ix, 0);
        cr_assert(g && s && sel && oh, "%s", bn_error_message());
        bn_scope_end();
    });
}
