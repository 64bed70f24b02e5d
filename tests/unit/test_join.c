/* tests/unit/test_join.c — cat, stack, split / split_sizes / chunk, repeat, tril / triu and pad
 * against PyTorch. Fixtures: tests/data/join.txt, written by scripts/gen_join.py
 * (/usr/bin/python3 scripts/gen_join.py). Non-contiguous cases load the contiguous tensor and
 * make the same view here as the script did in Python. */
#include "bn_test.h"

#include <stdio.h>
#include <string.h>

/* ---- fixture helpers: every tensor loaded here is released by teardown() ------------------- */
static fx_file *fx;

static void setup(void) { fx = fx_open("join.txt"); }

static void teardown(void)
{
    bnt_release_kept();
    fx_close(fx);
}

static bn_tensor *ld(const char *c, const char *name) { return bnt_keep(fx_tensor(fx, c, name)); }

#define DTYPES bnt_dtype_names
#define NDTYPES BN_DTYPE_COUNT

TestSuite(join, .init = setup, .fini = teardown);

/* ---- cat ---------------------------------------------------------------------------------- */
Test(join, cat_matches_torch_along_each_dim)
{
    const char *c = "cat_dim1";
    bn_tensor *ts[3] = {ld(c, "a"), ld(c, "b"), ld(c, "c")};
    bnt_assert_equal(bnt_keep(bn_cat(ts, 3, 1)), ld(c, "out"), c);
    c = "cat_dim0";
    bn_tensor *t0[2] = {ld(c, "a"), ld(c, "b")};
    bnt_assert_equal(bnt_keep(bn_cat(t0, 2, 0)), ld(c, "out"), c);
    c = "cat_dimneg1";
    bn_tensor *t3[2] = {ld(c, "a"), ld(c, "b")};
    bnt_assert_equal(bnt_keep(bn_cat(t3, 2, -1)), ld(c, "out"), c);
}

Test(join, cat_promotes_dtypes)
{
    const char *cases[] = {"cat_promotes", "cat_u8_i8", "cat_bool"};
    const int dims[] = {0, 1, 0};
    for (int i = 0; i < 3; i++) {
        bn_tensor *ts[2] = {ld(cases[i], "a"), ld(cases[i], "b")};
        bnt_assert_equal(bnt_keep(bn_cat(ts, 2, dims[i])), ld(cases[i], "out"), cases[i]);
    }
}

Test(join, cat_skips_empty_1d_tensors_and_empty_pieces)
{
    const char *c = "cat_skips_empty_1d";
    bn_tensor *e = ld(c, "e");
    bn_tensor *ts[3] = {e, ld(c, "a"), e};
    bnt_assert_equal(bnt_keep(bn_cat(ts, 3, 1)), ld(c, "out"), c);
    c = "cat_empty_piece";
    bn_tensor *a = ld(c, "a");
    bn_tensor *t2[3] = {a, ld(c, "z"), a};
    bnt_assert_equal(bnt_keep(bn_cat(t2, 3, 1)), ld(c, "out"), c);
    bn_tensor *only[2] = {e, e};
    bn_tensor *got = bnt_keep(bn_cat(only, 2, 0));
    cr_assert_eq(bn_numel(got), 0);
    cr_assert_eq(bn_dtype_of(got), BN_F64);
}

Test(join, cat_reads_noncontiguous_inputs)
{
    const char *c = "cat_noncontiguous";
    bn_tensor *at = bnt_keep(bn_transpose(ld(c, "a"), 0, 1));
    bn_tensor *xs = bnt_keep(bn_slice(ld(c, "x"), 1, 0, 4, 2));
    bn_tensor *ts[2] = {at, xs};
    bnt_assert_equal(bnt_keep(bn_cat(ts, 2, 1)), ld(c, "out"), c);
}

Test(join, cat_handles_every_dtype)
{
    for (int i = 0; i < NDTYPES; i++) {
        char c[64];
        snprintf(c, sizeof c, "cat_%s", DTYPES[i]);
        bn_tensor *ts[2] = {ld(c, "a"), ld(c, "b")};
        bnt_assert_equal(bnt_keep(bn_cat(ts, 2, 0)), ld(c, "out"), c);
    }
}

Test(join, cat_rejects_bad_input)
{
    bn_tensor *a = bnt_keep(bn_zeros(BN_SHAPE(2, 3), BN_F32));
    bn_tensor *b = bnt_keep(bn_zeros(BN_SHAPE(3, 3), BN_F32));
    bn_tensor *c3 = bnt_keep(bn_zeros(BN_SHAPE(2, 3, 1), BN_F32));
    bn_tensor *s = bnt_keep(bn_scalar(1, BN_F32));
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_cat(NULL, 2, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_cat", "ts", "NULL", NULL);
        cr_assert_null(bn_cat((bn_tensor *[]){a}, 0, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_cat", "n is 0", NULL);
        cr_assert_null(bn_cat((bn_tensor *[]){a, NULL}, 2, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_cat", "ts[1]", "NULL", NULL);
        cr_assert_null(bn_cat((bn_tensor *[]){a, b}, 2, 1));
        bnt_assert_error(BN_ERR_SHAPE, "bn_cat", "ts[1]", "[3, 3]", "[2, 3]", "dim 0", NULL);
        cr_assert_null(bn_cat((bn_tensor *[]){a, c3}, 2, 0));
        bnt_assert_error(BN_ERR_SHAPE, "bn_cat", "ts[1]", "3 dims", NULL);
        cr_assert_null(bn_cat((bn_tensor *[]){a, b}, 2, 2));
        bnt_assert_error(BN_ERR_ARG, "bn_cat", "dim 2", NULL);
        cr_assert_null(bn_cat((bn_tensor *[]){s, s}, 2, 0));
        bnt_assert_error(BN_ERR_SHAPE, "bn_cat", "ts[0]", "0-d", NULL);
    });
}

/* ---- stack -------------------------------------------------------------------------------- */
Test(join, stack_matches_torch_at_each_dim)
{
    const char *cases[] = {"stack_dim0", "stack_dim1", "stack_dim2", "stack_dimneg1",
                           "stack_dimneg3"};
    const int dims[] = {0, 1, 2, -1, -3};
    for (int i = 0; i < 5; i++) {
        bn_tensor *ts[3] = {ld(cases[i], "a"), ld(cases[i], "b"), ld(cases[i], "c")};
        bnt_assert_equal(bnt_keep(bn_stack(ts, 3, dims[i])), ld(cases[i], "out"), cases[i]);
    }
}

Test(join, stack_of_0d_tensors_is_1d)
{
    bn_tensor *ts[2] = {ld("stack_0d", "a"), ld("stack_0d", "b")};
    bnt_assert_equal(bnt_keep(bn_stack(ts, 2, 0)), ld("stack_0d", "out"), "0-d");
}

Test(join, stack_reads_transposed_input_and_promotes)
{
    bn_tensor *ts[2] = {bnt_keep(bn_transpose(ld("stack_transposed", "a"), 0, 1)),
                        ld("stack_transposed", "b")};
    bnt_assert_equal(bnt_keep(bn_stack(ts, 2, 1)), ld("stack_transposed", "out"), "transposed");
    bn_tensor *tp[2] = {ld("stack_promotes", "a"), ld("stack_promotes", "b")};
    bnt_assert_equal(bnt_keep(bn_stack(tp, 2, 0)), ld("stack_promotes", "out"), "i64 + f16");
}

Test(join, stack_and_cat_of_empty_tensors)
{
    bn_tensor *e = bnt_keep(bn_zeros(BN_SHAPE(2, 0), BN_F32));
    bn_tensor *ts[3] = {e, e, e};
    cr_assert(bn_shape_equal(bn_shape_of(bnt_keep(bn_stack(ts, 3, 1))), BN_SHAPE(2, 3, 0)));
    cr_assert(bn_shape_equal(bn_shape_of(bnt_keep(bn_cat(ts, 3, 1))), BN_SHAPE(2, 0)));
    cr_assert(bn_shape_equal(bn_shape_of(bnt_keep(bn_cat(ts, 3, 0))), BN_SHAPE(6, 0)));
}

Test(join, results_belong_to_the_scope)
{
    bn_tensor *a = bnt_keep(bn_ones(BN_SHAPE(2, 3), BN_F32));
    bn_tensor *ts[2] = {a, a};
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *c = bn_cat(ts, 2, 0);
        bn_tensor *s = bn_stack(ts, 2, 0);
        bn_tensor *r = bn_repeat(c, BN_SHAPE(2, 2));
        bn_tensor *p = bn_pad(s, (int64_t[]){1, 1}, 2, BN_PAD_REFLECT, 0);
        bn_tensor *t = bn_triu(bn_tril(r, 1), 0);
        cr_assert(c && s && r && p && t, "%s", bn_error_message());
        bn_scope_end();
    });
}

Test(join, stack_rejects_bad_input)
{
    bn_tensor *a = bnt_keep(bn_zeros(BN_SHAPE(2, 3), BN_F32));
    bn_tensor *b = bnt_keep(bn_zeros(BN_SHAPE(3, 2), BN_F32));
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_stack(NULL, 1, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_stack", "ts", "NULL", NULL);
        cr_assert_null(bn_stack((bn_tensor *[]){a}, -1, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_stack", "n is -1", NULL);
        cr_assert_null(bn_stack((bn_tensor *[]){NULL, a}, 2, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_stack", "ts[0]", "NULL", NULL);
        cr_assert_null(bn_stack((bn_tensor *[]){a, b}, 2, 0));
        bnt_assert_error(BN_ERR_SHAPE, "bn_stack", "ts[1]", "[3, 2]", "[2, 3]", NULL);
        cr_assert_null(bn_stack((bn_tensor *[]){a, a}, 2, 3));
        bnt_assert_error(BN_ERR_ARG, "bn_stack", "dim 3", "-3..2", NULL);
        cr_assert_null(bn_stack((bn_tensor *[]){a, a}, 2, -4));
        bnt_assert_error(BN_ERR_ARG, "bn_stack", "dim -4", NULL);
    });
}

/* ---- split / split_sizes / chunk ---------------------------------------------------------- */

/* out[0..n) against fixture tensors prefix_0, prefix_1, …; each piece is a view of x. */
static void check_pieces(bn_tensor **out, int n, const char *prefix, const bn_tensor *x)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s_%d", prefix, i);
        bnt_keep(out[i]);
        bnt_assert_equal(out[i], ld("split", name), name);
        (void)x;
    }
}

Test(join, split_returns_views_like_torch)
{
    bn_tensor *x = ld("split", "x"), *out[8];
    cr_assert_eq(bn_split(x, 4, 0, out, 8), 3);
    check_pieces(out, 3, "s4", x);
    cr_assert_null(out[3], "unused entries are cleared");
    /* a view: writing through the piece changes x */
    bn_set(out[1], (int64_t[]){0, 0}, 100);
    cr_assert_eq(bn_get(x, (int64_t[]){4, 0}), 100);
    bn_set(out[1], (int64_t[]){0, 0}, 12);
    cr_assert_eq(bn_split(x, 2, -1, out, 2), 2);
    check_pieces(out, 2, "s2d1", x);
}

Test(join, split_reads_transposed_input)
{
    bn_tensor *xt = bnt_keep(bn_transpose(ld("split", "x"), 0, 1)), *out[4];
    cr_assert_eq(bn_split(xt, 3, 1, out, 4), 4);
    check_pieces(out, 4, "st3", xt);
}

Test(join, split_sizes_allows_empty_pieces)
{
    bn_tensor *x = ld("split", "x"), *out[3];
    cr_assert_eq(bn_split_sizes(x, (int64_t[]){3, 0, 7}, 3, 0, out), 3);
    check_pieces(out, 3, "sizes", x);
}

Test(join, chunk_may_return_fewer_pieces)
{
    bn_tensor *x = ld("split", "x"), *out[8];
    cr_assert_eq(bn_chunk(x, 4, 0, out, 8), 4);
    check_pieces(out, 4, "c4", x);
    cr_assert_eq(bn_chunk(x, 6, 0, out, 8), 5); /* pieces of 2: only 5 */
    check_pieces(out, 5, "c6", x);
    cr_assert_eq(bn_chunk(x, 5, -1, out, 8), 3);
    check_pieces(out, 3, "c5d1", x);
}

Test(join, split_and_chunk_of_empty_dim)
{
    bn_tensor *e = bnt_keep(bn_zeros(BN_SHAPE(0, 2), BN_F32)), *out[4];
    cr_assert_eq(bn_split(e, 3, 0, out, 4), 1);
    cr_assert_eq(bn_dim(bnt_keep(out[0]), 0), 0);
    cr_assert_eq(bn_split(e, 0, 0, out, 4), 1);
    bnt_keep(out[0]);
    cr_assert_eq(bn_chunk(e, 3, 0, out, 4), 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(bn_numel(bnt_keep(out[i])), 0);
}

Test(join, split_pieces_belong_to_the_scope)
{
    bn_tensor *x = ld("split", "x"), *out[4];
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_eq(bn_chunk(x, 3, 0, out, 4), 3);
        bn_scope_end();
    });
}

Test(join, split_family_rejects_bad_input)
{
    bn_tensor *x = bnt_keep(bn_zeros(BN_SHAPE(5, 2), BN_F32)), *s = bnt_keep(bn_scalar(1, BN_F32));
    bn_tensor *out[4] = {x, x, x, x};
    BNT_ASSERT_NO_LEAK({
        cr_assert_eq(bn_split(NULL, 2, 0, out, 4), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_split", "t", "NULL", NULL);
        cr_assert_null(out[0], "out cleared on error");
        cr_assert_eq(bn_split(x, 2, 0, NULL, 4), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_split", "out", "NULL", NULL);
        cr_assert_eq(bn_split(x, 2, 0, out, 2), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_split", "3 pieces", "max_out is 2", NULL);
        cr_assert_null(out[0]);
        cr_assert_eq(bn_split(x, 0, 0, out, 4), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_split", "split_size 0", "size 5", NULL);
        cr_assert_eq(bn_split(x, 2, 2, out, 4), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_split", "dim 2", NULL);
        cr_assert_eq(bn_split(s, 1, 0, out, 4), -1);
        bnt_assert_error(BN_ERR_SHAPE, "bn_split", "0-d", NULL);
        cr_assert_eq(bn_split_sizes(x, (int64_t[]){2, 2}, 2, 0, out), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_split_sizes", "[2, 2]", "sum to 4", "size 5", NULL);
        cr_assert_eq(bn_split_sizes(x, (int64_t[]){6, -1}, 2, 0, out), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_split_sizes", "sizes[1]", "-1", NULL);
        cr_assert_eq(bn_split_sizes(x, NULL, 2, 0, out), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_split_sizes", "sizes", "NULL", NULL);
        cr_assert_eq(bn_split_sizes(x, (int64_t[]){5}, 1, -3, out), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_split_sizes", "dim -3", NULL);
        cr_assert_eq(bn_chunk(x, 0, 0, out, 4), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_chunk", "chunks 0", NULL);
        cr_assert_eq(bn_chunk(x, 5, 0, out, 3), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_chunk", "5 pieces", "max_out is 3", NULL);
        cr_assert_eq(bn_chunk(NULL, 2, 0, out, 4), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_chunk", "NULL", NULL);
    });
}

/* ---- repeat ------------------------------------------------------------------------------- */
Test(join, repeat_matches_torch)
{
    const char *c = "repeat_2x2";
    bnt_assert_equal(bnt_keep(bn_repeat(ld(c, "x"), BN_SHAPE(2, 2))), ld(c, "out"), c);
    c = "repeat_new_dims";
    bnt_assert_equal(bnt_keep(bn_repeat(ld(c, "x"), BN_SHAPE(2, 1, 3))), ld(c, "out"), c);
    c = "repeat_zero";
    bnt_assert_equal(bnt_keep(bn_repeat(ld(c, "x"), BN_SHAPE(0, 2))), ld(c, "out"), c);
    c = "repeat_scalar";
    bnt_assert_equal(bnt_keep(bn_repeat(ld(c, "x"), BN_SHAPE(2, 3))), ld(c, "out"), c);
    c = "repeat_transposed";
    bn_tensor *xt = bnt_keep(bn_transpose(ld(c, "x"), 0, 1));
    bnt_assert_equal(bnt_keep(bn_repeat(xt, BN_SHAPE(2, 2))), ld(c, "out"), c);
}

/* More (repeat, size) pairs than BN_MAX_DIMS dims: the copy loops over tiles. */
Test(join, repeat_handles_many_dims)
{
    const char *c = "repeat_5d";
    bnt_assert_equal(bnt_keep(bn_repeat(ld(c, "x"), BN_SHAPE(1, 2, 3, 2, 2, 2))), ld(c, "out"), c);
    c = "repeat_8d";
    bnt_assert_equal(bnt_keep(bn_repeat(ld(c, "x"), BN_SHAPE(2, 1, 3, 2, 1, 1, 2, 2))), ld(c, "out"),
                     c);
}

Test(join, repeat_handles_every_dtype)
{
    for (int i = 0; i < NDTYPES; i++) {
        char c[64];
        snprintf(c, sizeof c, "repeat_%s", DTYPES[i]);
        bnt_assert_equal(bnt_keep(bn_repeat(ld(c, "x"), BN_SHAPE(1, 3))), ld(c, "out"), c);
    }
}

Test(join, repeat_rejects_bad_input)
{
    bn_tensor *x = bnt_keep(bn_zeros(BN_SHAPE(2, 3), BN_F32));
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_repeat(NULL, BN_SHAPE(2)));
        bnt_assert_error(BN_ERR_ARG, "bn_repeat", "NULL", NULL);
        cr_assert_null(bn_repeat(x, BN_SHAPE(2)));
        bnt_assert_error(BN_ERR_ARG, "bn_repeat", "repeats [2]", "[2, 3]", NULL);
        cr_assert_null(bn_repeat(x, BN_SHAPE(-1, 2)));
        bnt_assert_error(BN_ERR_ARG, "bn_repeat", "-1", "negative", NULL);
    });
}

/* ---- tril / triu -------------------------------------------------------------------------- */
static void check_tri(const char *c, const bn_tensor *x, int64_t d_lower, int64_t d_upper)
{
    char what[96];
    snprintf(what, sizeof what, "%s tril", c);
    bnt_assert_equal(bnt_keep(bn_tril(x, d_lower)), ld(c, "tril"), what);
    snprintf(what, sizeof what, "%s triu", c);
    bnt_assert_equal(bnt_keep(bn_triu(x, d_upper)), ld(c, "triu"), what);
}

Test(join, tril_triu_match_torch_for_each_diagonal)
{
    const char *cases[] = {"tri_d0",    "tri_d1", "tri_dneg1", "tri_d3",
                           "tri_dneg4", "tri_d7", "tri_dneg9"};
    const int64_t diags[] = {0, 1, -1, 3, -4, 7, -9};
    for (int i = 0; i < 7; i++) check_tri(cases[i], ld(cases[i], "x"), diags[i], diags[i]);
}

Test(join, tril_triu_batched_and_transposed)
{
    check_tri("tri_batched", ld("tri_batched", "x"), 1, -1);
    check_tri("tri_transposed", bnt_keep(bn_transpose(ld("tri_transposed", "x"), 0, 1)), 0, 1);
}

Test(join, tril_triu_handle_every_dtype)
{
    for (int i = 0; i < NDTYPES; i++) {
        char c[64];
        snprintf(c, sizeof c, "tri_%s", DTYPES[i]);
        check_tri(c, ld(c, "x"), 0, 0);
    }
}

/* Many rows: the parallel path gives the same result as a plain loop. */
Test(join, tril_large_matches_reference)
{
    bn_manual_seed(2);
    bn_tensor *x = bnt_keep(bn_randn(BN_SHAPE(3, 150, 130), BN_F32));
    bn_tensor *lo = bnt_keep(bn_tril(x, -2)), *hi = bnt_keep(bn_triu(x, 5));
    const float *xp = bn_tensor_data_f32(x), *lp = bn_tensor_data_f32(lo),
                *hp = bn_tensor_data_f32(hi);
    for (int64_t b = 0; b < 3; b++)
        for (int64_t r = 0; r < 150; r++)
            for (int64_t c = 0; c < 130; c++) {
                int64_t k = (b * 150 + r) * 130 + c;
                cr_assert_eq(lp[k], c - r <= -2 ? xp[k] : 0.0f);
                cr_assert_eq(hp[k], c - r >= 5 ? xp[k] : 0.0f);
            }
}

Test(join, tril_triu_of_empty_matrices)
{
    bn_tensor *a = bnt_keep(bn_zeros(BN_SHAPE(0, 3), BN_F32)),
              *b = bnt_keep(bn_ones(BN_SHAPE(2, 2, 0), BN_I64));
    cr_assert(bn_shape_equal(bn_shape_of(bnt_keep(bn_tril(a, 0))), BN_SHAPE(0, 3)));
    cr_assert(bn_shape_equal(bn_shape_of(bnt_keep(bn_triu(b, -1))), BN_SHAPE(2, 2, 0)));
}

Test(join, tril_triu_reject_bad_input)
{
    bn_tensor *v = bnt_keep(bn_zeros(BN_SHAPE(4), BN_F32));
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_tril(NULL, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_tril", "NULL", NULL);
        cr_assert_null(bn_triu(NULL, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_triu", "NULL", NULL);
        cr_assert_null(bn_tril(v, 0));
        bnt_assert_error(BN_ERR_SHAPE, "bn_tril", "2 dims", "[4]", NULL);
        cr_assert_null(bn_triu(v, 1));
        bnt_assert_error(BN_ERR_SHAPE, "bn_triu", "2 dims", "[4]", NULL);
    });
}

/* ---- pad ---------------------------------------------------------------------------------- */
static void check_pad(const char *c, const bn_tensor *x, const int64_t *pads, int npads,
                      bn_pad_mode mode, double value)
{
    bnt_assert_equal(bnt_keep(bn_pad(x, pads, npads, mode, value)), ld(c, "out"), c);
}

Test(join, pad_matches_torch_in_each_mode)
{
    const char *modes[] = {"constant", "reflect", "replicate"};
    const char *names[] = {"last", "two", "crop", "zero"};
    const int64_t pads[4][4] = {{1, 2}, {2, 1, 1, 2}, {-1, 2, 1, -1}, {0, 0}};
    const int npads[4] = {2, 4, 4, 2};
    for (int m = 0; m < 3; m++)
        for (int p = 0; p < 4; p++) {
            char c[64];
            snprintf(c, sizeof c, "pad_%s_%s", modes[m], names[p]);
            check_pad(c, ld(c, "x"), pads[p], npads[p], (bn_pad_mode)m, 1.5);
        }
}

Test(join, pad_constant_on_many_dims)
{
    check_pad("pad_constant_three_dims", ld("pad_constant_three_dims", "x"),
              (int64_t[]){1, 1, 0, 2, 1, 0}, 6, BN_PAD_CONSTANT, -3.0);
    check_pad("pad_constant_all_dims", ld("pad_constant_all_dims", "x"),
              (int64_t[]){1, 0, 0, 1, 1, 1, 2, 0}, 8, BN_PAD_CONSTANT, 7.0);
    check_pad("pad_constant_1d", ld("pad_constant_1d", "x"), (int64_t[]){2, 3}, 2, BN_PAD_CONSTANT,
              -1.0);
    check_pad("pad_constant_int_truncates", ld("pad_constant_int_truncates", "x"),
              (int64_t[]){1, 1}, 2, BN_PAD_CONSTANT, 2.7);
    check_pad("pad_constant_empty", ld("pad_constant_empty", "x"), (int64_t[]){1, 1, 2, 0}, 4,
              BN_PAD_CONSTANT, 4.0);
}

Test(join, pad_reflect_and_replicate_wide_pads)
{
    check_pad("pad_reflect_3d", ld("pad_reflect_3d", "x"), (int64_t[]){4, 3}, 2, BN_PAD_REFLECT, 0);
    check_pad("pad_replicate_3d", ld("pad_replicate_3d", "x"), (int64_t[]){6, 2}, 2,
              BN_PAD_REPLICATE, 0);
    bn_tensor *xt = bnt_keep(bn_transpose(ld("pad_reflect_transposed", "x"), 2, 3));
    check_pad("pad_reflect_transposed", xt, (int64_t[]){2, 1, 1, 2}, 4, BN_PAD_REFLECT, 0);
}

Test(join, pad_handles_every_dtype)
{
    for (int i = 0; i < NDTYPES; i++) {
        char c[64];
        snprintf(c, sizeof c, "pad_constant_%s", DTYPES[i]);
        check_pad(c, ld(c, "x"), (int64_t[]){1, 2, 1, 0}, 4, BN_PAD_CONSTANT, 1);
    }
    for (int i = 0; i < 2; i++) {
        char c[64];
        snprintf(c, sizeof c, "pad_reflect_%s", DTYPES[i]);
        check_pad(c, ld(c, "x"), (int64_t[]){2, 1}, 2, BN_PAD_REFLECT, 0);
        snprintf(c, sizeof c, "pad_replicate_%s", DTYPES[i]);
        check_pad(c, ld(c, "x"), (int64_t[]){2, 3}, 2, BN_PAD_REPLICATE, 0);
    }
    /* reflect / replicate only move values, so integer tensors work too */
    bn_tensor *xi = bnt_keep(bn_to_dtype(ld("pad_reflect_f32", "x"), BN_I64));
    bn_tensor *got = bnt_keep(bn_pad(xi, (int64_t[]){2, 1}, 2, BN_PAD_REFLECT, 0));
    bn_tensor *want = bnt_keep(bn_to_dtype(ld("pad_reflect_f32", "out"), BN_I64));
    bnt_assert_equal(got, want, "reflect i64");
}

Test(join, pad_of_0d_without_pads_copies)
{
    bn_tensor *s = bnt_keep(bn_scalar(3, BN_F32));
    bn_tensor *got = bnt_keep(bn_pad(s, NULL, 0, BN_PAD_REFLECT, 0));
    cr_assert_eq(bn_ndim(got), 0);
    cr_assert_eq(bn_item(got), 3);
    cr_assert_neq(got, s);
}

Test(join, pad_rejects_bad_input)
{
    bn_tensor *x = bnt_keep(bn_zeros(BN_SHAPE(1, 3, 4), BN_F32));
    bn_tensor *e = bnt_keep(bn_zeros(BN_SHAPE(2, 0), BN_F32));
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_pad(NULL, (int64_t[]){1, 1}, 2, BN_PAD_CONSTANT, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_pad", "t", "NULL", NULL);
        cr_assert_null(bn_pad(x, NULL, 2, BN_PAD_CONSTANT, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_pad", "pads", "NULL", NULL);
        cr_assert_null(bn_pad(x, (int64_t[]){1, 1, 1}, 3, BN_PAD_CONSTANT, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_pad", "npads 3", "even", NULL);
        cr_assert_null(bn_pad(x, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}, 8, BN_PAD_CONSTANT, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_pad", "npads 8", "[1, 3, 4]", NULL);
        cr_assert_null(bn_pad(x, (int64_t[]){4, 0}, 2, BN_PAD_REFLECT, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_pad", "reflect", "(4, 0)", "size 4", NULL);
        cr_assert_null(bn_pad(x, (int64_t[]){-3, -2}, 2, BN_PAD_CONSTANT, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_pad", "(-3, -2)", "negative size", NULL);
        cr_assert_null(bn_pad(e, (int64_t[]){1, 1}, 2, BN_PAD_REPLICATE, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_pad", "replicate", "size 0", NULL);
        cr_assert_null(bn_pad(x, (int64_t[]){1, 1}, 2, (bn_pad_mode)7, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_pad", "mode 7", NULL);
    });
}
