/* tests/unit/test_grad_shape.c — gradients of views (reshape, view, flatten, permute,
 * transpose, squeeze, unsqueeze, expand, slice, narrow, select, split, chunk, as_strided) and
 * of the copying shape ops (cat, stack, repeat, tril, triu, pad): float64 finite differences
 * on random inputs, views of views, second derivatives, and float32 gradients from PyTorch in
 * tests/data/grad_shape.txt (made by scripts/gen_grad_shape.py). */
#include "bn_test.h"

#include "born/autograd.h"

static void fini(void) { bnt_release_kept(); }
TestSuite(grad_shape, .fini = fini);

/* Runs bnt_gradcheck on fn with one fresh parameter of shape s; releases it. */
static void check1(const char *what, bnt_fn fn, bn_shape s)
{
    bn_tensor *x = bnt_param(s, -1, 1);
    bnt_gradcheck(what, fn, NULL, &x, 1);
    bn_release(x);
}

static void check2(const char *what, bnt_fn fn, bn_shape s0, bn_shape s1)
{
    bn_tensor *in[2] = {bnt_param(s0, -1, 1), bnt_param(s1, -1, 1)};
    bnt_gradcheck(what, fn, NULL, in, 2);
    bn_release(in[0]);
    bn_release(in[1]);
}

/* ---- reshape family ------------------------------------------------------------------------ */
static bn_tensor *f_reshape_chain(void *c, bn_tensor *const *x, int n)
{
    /* [2, 3, 4] -> transpose (non-contiguous) -> reshape (copies) -> view -> flatten */
    bn_tensor *t = bn_transpose(x[0], 0, 2);
    bn_tensor *r = bn_reshape(t, BN_SHAPE(4, -1));
    bn_tensor *v = bn_view(r, BN_SHAPE(2, 2, 6));
    return bn_flatten(v, -2, -1);
}

Test(grad_shape, reshape_view_flatten_chain_reaches_the_leaf)
{
    check1("reshape chain", f_reshape_chain, BN_SHAPE(2, 3, 4));
}

static bn_tensor *f_flatten_0d(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *s = bn_transpose(bn_sum(x[0], BN_ALL, false), 0, -1); /* 0-d */
    return bn_flatten(bn_permute(s, NULL, 0), 0, -1);
}

Test(grad_shape, flatten_of_0d_and_reshape_names)
{
    check1("flatten 0-d", f_flatten_0d, BN_SHAPE(3));
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(2, 3), -1, 1));
    cr_assert_str_eq(bn_grad_fn_name(bn_reshape(x, BN_SHAPE(3, 2))), "ReshapeBackward");
    cr_assert_str_eq(bn_grad_fn_name(bn_view(x, BN_SHAPE(6))), "ViewBackward");
    cr_assert_str_eq(bn_grad_fn_name(bn_transpose(x, 0, 1)), "TransposeBackward");
    cr_assert_str_eq(bn_grad_fn_name(bn_slice(x, 1, 0, 3, 2)), "SliceBackward");
    bn_scope_end();
}

static bn_tensor *f_permute(void *c, bn_tensor *const *x, int n)
{
    return bn_permute(x[0], (int[]){-1, 0, 1}, 3);
}

static bn_tensor *f_transpose_neg(void *c, bn_tensor *const *x, int n)
{
    return bn_transpose(bn_permute(x[0], (int[]){2, 0, 1}, 3), -1, 0);
}

Test(grad_shape, permute_and_transpose_with_negative_dims)
{
    check1("permute", f_permute, BN_SHAPE(2, 3, 4));
    check1("transpose of permute", f_transpose_neg, BN_SHAPE(2, 3, 4));
}

static bn_tensor *f_squeeze(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *a = bn_squeeze(x[0], -2);    /* [2, 1, 3, 1] -> [2, 1, 3] */
    bn_tensor *b = bn_unsqueeze(a, -1);     /* [2, 1, 3, 1] */
    bn_tensor *c2 = bn_squeeze(b, BN_ALL);  /* [2, 3] */
    return bn_mul(c2, bn_unsqueeze(c2, 0)); /* [1, 2, 3] */
}

Test(grad_shape, squeeze_unsqueeze)
{
    check1("squeeze / unsqueeze", f_squeeze, BN_SHAPE(2, 1, 3, 1));
}

static bn_tensor *f_expand(void *c, bn_tensor *const *x, int n)
{
    return bn_expand(bn_transpose(x[0], 0, 1), BN_SHAPE(2, 3, -1)); /* [1, 3] -> [3, 1] -> */
}

static bn_tensor *f_broadcast_to(void *c, bn_tensor *const *x, int n)
{
    return bn_mul(bn_broadcast_to(x[0], BN_SHAPE(4, 2, 3)), x[1]);
}

Test(grad_shape, expand_sums_back_over_broadcast_dims)
{
    check1("expand", f_expand, BN_SHAPE(1, 3));
    check2("broadcast_to", f_broadcast_to, BN_SHAPE(2, 1), BN_SHAPE(4, 2, 3));
}

/* ---- slice / narrow / select / split / chunk ----------------------------------------------- */
static bn_tensor *f_slice_step(void *c, bn_tensor *const *x, int n)
{
    return bn_slice(x[0], -1, 1, 7, 2); /* cols 1, 3, 5 of 7 */
}

static bn_tensor *f_slice_negative(void *c, bn_tensor *const *x, int n)
{
    /* rows -3.. of a transposed view, then every third col */
    bn_tensor *t = bn_slice(bn_transpose(x[0], 0, 1), 0, -3, INT64_MAX, 1);
    return bn_slice(t, 1, 0, 4, 3);
}

static bn_tensor *f_slice_of_slice(void *c, bn_tensor *const *x, int n)
{
    return bn_slice(bn_slice(x[0], 1, 1, 8, 3), 1, 1, 3, 1); /* col 4, 7 */
}

static bn_tensor *f_slice_empty(void *c, bn_tensor *const *x, int n)
{
    return bn_add(bn_sum(bn_slice(x[0], 0, 2, 2, 1), BN_ALL, false), x[0]);
}

Test(grad_shape, slice_with_steps_and_negative_bounds)
{
    check1("slice step 2", f_slice_step, BN_SHAPE(3, 7));
    check1("slice negative on a transposed view", f_slice_negative, BN_SHAPE(4, 5));
    check1("slice of slice", f_slice_of_slice, BN_SHAPE(2, 8));
    check1("empty slice", f_slice_empty, BN_SHAPE(3));
}

static bn_tensor *f_narrow_select(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *a = bn_narrow(x[0], -1, -3, 2);             /* [3, 4, 2] */
    bn_tensor *b = bn_select(a, 1, -1);                    /* [3, 2] */
    bn_tensor *s = bn_select(bn_select(x[0], 0, 1), 0, 2); /* x[1, 2, :] [5] */
    return bn_mul(b, bn_unsqueeze(bn_narrow(s, 0, 0, 2), 0));
}

Test(grad_shape, narrow_and_select)
{
    check1("narrow / select", f_narrow_select, BN_SHAPE(3, 4, 5));
}

static bn_tensor *f_select_0d_result(void *c, bn_tensor *const *x, int n)
{
    return bn_select(bn_select(x[0], 1, 2), 0, -1); /* a 0-d element */
}

Test(grad_shape, select_down_to_0d) { check1("select to 0-d", f_select_0d_result, BN_SHAPE(2, 3)); }

static bn_tensor *f_split(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *p[3];
    cr_assert_eq(bn_split(x[0], 2, 1, p, 3), 3); /* [3,2] [3,2] [3,1] */
    bn_tensor *q[2];
    cr_assert_eq(bn_chunk(p[2], 2, 0, q, 2), 2); /* [2,1] [1,1] */
    bn_tensor *r[2];
    cr_assert_eq(bn_split_sizes(x[0], (int64_t[]){1, 4}, 2, -1, r), 2);
    bn_tensor *a = bn_sub(bn_mul(p[0], p[1]), bn_sum(q[1], BN_ALL, false));
    return bn_add(a, bn_sum(bn_mul(r[1], r[1]), BN_ALL, false));
}

Test(grad_shape, split_and_chunk_pieces)
{
    check1("split / chunk / split_sizes", f_split, BN_SHAPE(3, 5));
}

/* ---- as_strided ------------------------------------------------------------------------------ */
static bn_tensor *f_as_strided(void *c, bn_tensor *const *x, int n)
{
    return bn_as_strided(x[0], BN_SHAPE(3, 3), (int64_t[]){3, 1}, 2);
}

static bn_tensor *f_as_strided_overlap(void *c, bn_tensor *const *x, int n)
{
    return bn_as_strided(x[0], BN_SHAPE(3, 4), (int64_t[]){2, 1}, 1);
}

static bn_tensor *f_as_strided_of_view(void *c, bn_tensor *const *x, int n)
{
    /* t is a transposed view [4, 3] with strides (1, 4): out reads storage 0..5 */
    bn_tensor *t = bn_transpose(x[0], 0, 1);
    return bn_as_strided(t, BN_SHAPE(2, 3), (int64_t[]){1, 2}, 0);
}

Test(grad_shape, as_strided_including_overlapping_outputs)
{
    check1("as_strided", f_as_strided, BN_SHAPE(12));
    check1("as_strided overlapping", f_as_strided_overlap, BN_SHAPE(10));
    check1("as_strided of a transposed view", f_as_strided_of_view, BN_SHAPE(3, 4));
}

Test(grad_shape, as_strided_refuses_an_overlapping_input)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(3), -1, 1));
    bn_tensor *e = bn_expand(bn_unsqueeze(x, 0), BN_SHAPE(2, 3)); /* strides (0, 1) */
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_as_strided(e, BN_SHAPE(3), (int64_t[]){1}, 0));
        bnt_assert_error(BN_ERR_UNSUPPORTED, "bn_as_strided", "[2, 3]", "overlap", NULL);
    });
    /* without grad it is an ordinary view */
    bn_no_grad_begin();
    cr_assert_not_null(bn_as_strided(e, BN_SHAPE(3), (int64_t[]){1}, 0));
    bn_no_grad_end();
    bn_scope_end();
}

/* ---- cat / stack / repeat / tril / triu --------------------------------------------------- */
static bn_tensor *f_cat(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *empty = bn_zeros(BN_SHAPE(0), BN_F64); /* skipped, like torch */
    bn_tensor *ts[3] = {x[0], empty, bn_transpose(x[1], 0, 1)};
    return bn_cat(ts, 3, -1);
}

static bn_tensor *f_stack(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *ts[3] = {x[0], bn_mul(x[0], x[1]), x[1]};
    return bn_stack(ts, 3, -1);
}

Test(grad_shape, cat_and_stack_narrow_the_gradient)
{
    check2("cat", f_cat, BN_SHAPE(2, 3), BN_SHAPE(4, 2));
    check2("stack", f_stack, BN_SHAPE(2, 3), BN_SHAPE(2, 3));
}

static bn_tensor *f_cat_empty_inputs(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *ts[2] = {x[0], x[1]};
    return bn_cat(ts, 2, 0);
}

Test(grad_shape, cat_of_empty_tensors_gives_empty_gradients)
{
    bn_scope_begin();
    bn_tensor *x[2] = {bnt_keep(bnt_param(BN_SHAPE(0), 0, 1)),
                       bnt_keep(bnt_param(BN_SHAPE(2), 0, 1))};
    bn_tensor *y = f_cat_empty_inputs(NULL, x, 2);
    cr_assert_eq(bn_backward(bn_sum(y, BN_ALL, false)), BN_OK, "%s", bn_error_message());
    bnt_assert_values(bn_grad(x[1]), (double[]){1, 1}, 2, 0, "d/dx1");
    bn_tensor *g0 = bn_grad(x[0]);
    cr_assert(g0 == NULL || bn_numel(g0) == 0); /* bn_grad's result belongs to the scope */
    bn_scope_end();
}

static bn_tensor *f_repeat(void *c, bn_tensor *const *x, int n)
{
    return bn_repeat(bn_transpose(x[0], 0, 1), BN_SHAPE(2, 2, 3));
}

static bn_tensor *f_repeat_zero(void *c, bn_tensor *const *x, int n)
{
    return bn_add(bn_sum(bn_repeat(x[0], BN_SHAPE(0, 2)), BN_ALL, false), x[0]);
}

static bn_tensor *f_repeat_max_dims(void *c, bn_tensor *const *x, int n)
{
    /* 8 dims: no room for a tile dim, so the tiles are added one by one */
    return bn_repeat(x[0], BN_SHAPE(2, 1, 1, 1, 1, 1, 1, 3));
}

Test(grad_shape, repeat_sums_over_tiles)
{
    check1("repeat", f_repeat, BN_SHAPE(3, 2));
    check1("repeat by 0", f_repeat_zero, BN_SHAPE(2, 2));
    check1("repeat with 8 dims", f_repeat_max_dims, BN_SHAPE(2, 1, 1, 1, 1, 1, 1, 2));
}

static bn_tensor *f_tri(void *c, bn_tensor *const *x, int n)
{
    return bn_add(bn_tril(x[0], -1), bn_triu(bn_transpose(x[0], -1, -2), 1));
}

Test(grad_shape, tril_triu_mask_the_gradient) { check1("tril / triu", f_tri, BN_SHAPE(2, 4, 4)); }

/* ---- pad ------------------------------------------------------------------------------------- */
static bn_tensor *f_pad_constant(void *c, bn_tensor *const *x, int n)
{
    return bn_pad(bn_transpose(x[0], 0, 1), (int64_t[]){1, -1, 2, 0}, 4, BN_PAD_CONSTANT, 3.0);
}

static bn_tensor *f_pad_reflect(void *c, bn_tensor *const *x, int n)
{
    return bn_pad(x[0], (int64_t[]){2, 3, 1, 2}, 4, BN_PAD_REFLECT, 0);
}

static bn_tensor *f_pad_replicate(void *c, bn_tensor *const *x, int n)
{
    return bn_pad(bn_slice(x[0], -1, 0, 6, 2), (int64_t[]){3, 1, 0, 0, 2, 1}, 6, BN_PAD_REPLICATE,
                  0);
}

Test(grad_shape, pad_constant_reflect_replicate)
{
    check1("pad constant with a crop", f_pad_constant, BN_SHAPE(3, 4));
    check1("pad reflect", f_pad_reflect, BN_SHAPE(2, 3, 4));
    check1("pad replicate of a strided slice", f_pad_replicate, BN_SHAPE(2, 3, 6));
}

/* ---- second derivatives through views -------------------------------------------------------- */

/* y = sum(v^3) with v a view of x; dy/dx = 3 v^2 (scattered back), d(sum dy/dx)/dx = 6 v */
static void second_derivative(const char *what, bn_tensor *(*view)(const bn_tensor *),
                              const double *want, int64_t n)
{
    bn_scope_begin();
    double xs[6] = {1, -2, 3, 0.5, -1, 2};
    bn_tensor *x = bn_from_data(xs, BN_SHAPE(2, 3), BN_F64);
    bn_set_requires_grad(x, true);
    bn_tensor *v = view(x);
    bn_tensor *y = bn_sum(bn_mul(bn_mul(v, v), v), BN_ALL, false);
    bn_tensor *g = NULL;
    cr_assert_eq(bn_autograd_grad(&y, NULL, 1, &x, 1, &g, (bn_backward_opts){.create_graph = true}),
                 BN_OK, "%s: %s", what, bn_error_message());
    cr_assert(bn_requires_grad(g), "%s: the gradient is differentiable", what);
    bn_tensor *gg = NULL;
    bn_tensor *s = bn_sum(g, BN_ALL, false);
    cr_assert_eq(bn_autograd_grad(&s, NULL, 1, &x, 1, &gg, (bn_backward_opts){0}), BN_OK, "%s: %s",
                 what, bn_error_message());
    bnt_assert_values(gg, want, n, 1e-12, what); /* g and gg belong to the scope */
    bn_scope_end();
}

static bn_tensor *v_transpose(const bn_tensor *x) { return bn_transpose(x, 0, 1); }
static bn_tensor *v_slice(const bn_tensor *x) { return bn_slice(x, 1, 0, 3, 2); }
static bn_tensor *v_narrow(const bn_tensor *x)
{
    return bn_narrow(bn_reshape(x, BN_SHAPE(6)), 0, 1, 3);
}
static bn_tensor *v_pad(const bn_tensor *x)
{
    return bn_pad(x, (int64_t[]){1, 1}, 2, BN_PAD_REFLECT, 0);
}
static bn_tensor *v_expand(const bn_tensor *x) { return bn_expand(x, BN_SHAPE(2, 2, 3)); }
static bn_tensor *v_as_strided(const bn_tensor *x)
{
    return bn_as_strided(x, BN_SHAPE(2, 2), (int64_t[]){1, 1}, 1);
}

Test(grad_shape, second_derivatives_through_views)
{
    second_derivative("transpose", v_transpose, (double[]){6, -12, 18, 3, -6, 12}, 6);
    second_derivative("slice step 2", v_slice, (double[]){6, 0, 18, 3, 0, 12}, 6);
    second_derivative("narrow of reshape", v_narrow, (double[]){0, -12, 18, 3, 0, 0}, 6);
    /* reflect pad (1, 1) of [a b c] is [b a b c b]: b counted 3 times */
    second_derivative("pad reflect", v_pad, (double[]){6, -36, 18, 3, -18, 12}, 6);
    second_derivative("expand", v_expand, (double[]){12, -24, 36, 6, -12, 24}, 6);
    /* elements 1..3 of storage read as [[1,2],[2,3]]: 2 twice */
    second_derivative("as_strided", v_as_strided, (double[]){0, -12, 36, 3, 0, 0}, 6);
}

/* ---- half precision ---------------------------------------------------------------------- */
Test(grad_shape, f16_and_bf16_gradients_through_views_and_pads)
{
    const bn_dtype dts[2] = {BN_F16, BN_BF16};
    for (int k = 0; k < 2; k++) {
        bn_scope_begin();
        bn_tensor *x = bn_to_dtype(bn_arange(0, 6, 1, BN_F32), dts[k]);
        x = bn_reshape(x, BN_SHAPE(2, 3));
        bn_set_requires_grad(x, true);
        /* rows 0, 2 of x^T, each [a b] reflect-padded to [b a b a]: every element twice */
        bn_tensor *s = bn_slice(bn_transpose(x, 0, 1), 0, 0, 3, 2);
        bn_tensor *p = bn_pad(s, (int64_t[]){1, 1}, 2, BN_PAD_REFLECT, 0);
        bn_tensor *y = bn_sum(bn_expand(p, BN_SHAPE(3, 2, 4)), BN_ALL, false);
        cr_assert_eq(bn_backward(y), BN_OK, "%s", bn_error_message());
        bn_tensor *g = bn_grad(x);
        cr_assert_eq(bn_dtype_of(g), dts[k]);
        bnt_assert_values(g, (double[]){6, 0, 6, 6, 0, 6}, 6, 0, bn_dtype_name(dts[k]));
        bn_scope_end();
    }
}

/* ---- graph behaviour of views ---------------------------------------------------------------- */
Test(grad_shape, views_of_leaves_require_grad_and_detach_does_not)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(2, 3), -1, 1));
    bn_tensor *v = bn_slice(x, 1, 0, 2, 1);
    cr_assert(bn_requires_grad(v) && !bn_is_leaf(v));
    bn_tensor *d = bn_detach(x);
    cr_assert(!bn_requires_grad(d) && bn_is_leaf(d));
    cr_assert(!bn_requires_grad(bn_transpose(d, 0, 1)));
    /* no-grad: views record nothing */
    bn_no_grad_begin();
    cr_assert(!bn_requires_grad(bn_reshape(x, BN_SHAPE(6))));
    bn_no_grad_end();
    /* in-place writes into a view of a leaf that requires grad are refused in grad mode */
    BNT_ASSERT_NO_LEAK({
        cr_assert_neq(bn_fill_(v, 0.0), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_fill_", "requires grad", NULL);
    });
    bn_scope_end();
}

Test(grad_shape, bad_input_with_grad_leaks_nothing)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(2, 3), -1, 1));
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_reshape(x, BN_SHAPE(4, 2)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_reshape", "[2, 3]", "[4, 2]", NULL);
        cr_assert_null(bn_slice(x, 2, 0, 1, 1));
        bnt_assert_error(BN_ERR_ARG, "bn_slice", "dim", NULL);
        cr_assert_null(bn_pad(x, (int64_t[]){3, 0}, 2, BN_PAD_REFLECT, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_pad", "reflect", NULL);
        cr_assert_null(bn_cat((bn_tensor *[]){x, NULL}, 2, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_cat", "ts[1]", NULL);
        cr_assert_null(bn_repeat(x, BN_SHAPE(2)));
        bnt_assert_error(BN_ERR_ARG, "bn_repeat", "repeats", NULL);
    });
    bn_scope_end();
}

/* ---- float32 gradients against PyTorch ------------------------------------------------------- */

/* Backprops fixture g through y and compares x's gradient with the fixture's gx. */
static void compare_grad(fx_file *f, const char *cas, bn_tensor *x, bn_tensor *y)
{
    bn_tensor *g = bnt_keep(fx_tensor(f, cas, "g"));
    bnt_assert_close(y, bnt_keep(fx_tensor(f, cas, "out")), 1e-6, 1e-6, cas);
    cr_assert_eq(bn_backward_ex(y, (bn_backward_opts){.grad = g}), BN_OK, "%s: %s", cas,
                 bn_error_message());
    bn_tensor *gx = bn_grad(x);
    bnt_assert_close(gx, bnt_keep(fx_tensor(f, cas, "gx")), 1e-5, 1e-6, cas);
}

static bn_tensor *leaf(fx_file *f, const char *cas, const char *name)
{
    bn_tensor *x = bnt_keep(fx_tensor(f, cas, name));
    bn_set_requires_grad(x, true);
    return x;
}

Test(grad_shape, pad_gradients_match_pytorch_f32)
{
    bn_scope_begin();
    fx_file *f = fx_open("grad_shape.txt");
    bn_tensor *x = leaf(f, "pad_reflect", "x");
    compare_grad(f, "pad_reflect", x, bn_pad(x, (int64_t[]){2, 3, 1, 2}, 4, BN_PAD_REFLECT, 0));
    x = leaf(f, "pad_replicate", "x");
    compare_grad(f, "pad_replicate", x, bn_pad(x, (int64_t[]){3, 1, 2, 4}, 4, BN_PAD_REPLICATE, 0));
    x = leaf(f, "pad_reflect_transposed", "x");
    compare_grad(f, "pad_reflect_transposed", x,
                 bn_pad(bn_transpose(x, 1, 2), (int64_t[]){1, 2}, 2, BN_PAD_REFLECT, 0));
    x = leaf(f, "pad_constant_crop", "x");
    compare_grad(f, "pad_constant_crop", x,
                 bn_pad(x, (int64_t[]){-1, 2, 1, -1}, 4, BN_PAD_CONSTANT, 0.5));
    fx_close(f);
    bn_scope_end();
}

Test(grad_shape, repeat_and_as_strided_gradients_match_pytorch_f32)
{
    bn_scope_begin();
    fx_file *f = fx_open("grad_shape.txt");
    bn_tensor *x = leaf(f, "repeat_lead", "x");
    compare_grad(f, "repeat_lead", x, bn_repeat(x, BN_SHAPE(2, 1, 3)));
    x = leaf(f, "as_strided_overlap", "x");
    compare_grad(f, "as_strided_overlap", x,
                 bn_as_strided(x, BN_SHAPE(3, 4), (int64_t[]){2, 1}, 1));
    fx_close(f);
    bn_scope_end();
}
