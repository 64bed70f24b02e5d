/* tests/unit/test_grad_index.c — gradients of index_select, gather, scatter, scatter_add and the
 * values of sort / topk: float64 finite differences on random inputs (repeated indices,
 * negative dims, non-contiguous inputs, 0-d tensors), second derivatives, and float32
 * gradients from PyTorch in tests/data/grad_shape.txt (made by scripts/gen_grad_shape.py). */
#include "bn_test.h"

#include "born/autograd.h"

static void fini(void) { bnt_release_kept(); }
TestSuite(grad_index, .fini = fini);

static bn_tensor *i64(const int64_t *v, bn_shape s) { return bn_from_data(v, s, BN_I64); }

static void check(const char *what, bnt_fn fn, bn_shape s0, bn_shape s1, int n)
{
    bn_tensor *in[2] = {bnt_param(s0, -1, 1), n > 1 ? bnt_param(s1, -1, 1) : NULL};
    bnt_gradcheck(what, fn, NULL, in, n);
    bn_release(in[0]);
    bn_release(in[1]);
}

/* ---- index_select ------------------------------------------------------------------------ */
static bn_tensor *f_index_select(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *ix = i64((int64_t[]){3, 0, 3, 3, 1}, BN_SHAPE(5));
    return bn_index_select(bn_transpose(x[0], 0, 1), -2, ix); /* [4, 3] rows 3, 0, 3, 3, 1 */
}

static bn_tensor *f_index_select_i32(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *ix = bn_from_data((int32_t[]){2, 2}, BN_SHAPE(2), BN_I32);
    return bn_index_select(x[0], -1, ix);
}

static bn_tensor *f_index_select_0d(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *e = bn_select(x[0], 0, 1); /* 0-d */
    return bn_index_select(e, 0, bn_scalar(0, BN_I64));
}

Test(grad_index, index_select_adds_repeated_rows)
{
    check("index_select", f_index_select, BN_SHAPE(3, 4), BN_SHAPE(0), 1);
    check("index_select i32 index", f_index_select_i32, BN_SHAPE(2, 3), BN_SHAPE(0), 1);
    check("index_select of 0-d", f_index_select_0d, BN_SHAPE(2), BN_SHAPE(0), 1);
}

/* ---- gather ------------------------------------------------------------------------------ */
static bn_tensor *f_gather(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *ix = i64((int64_t[]){0, 2, 2, 1, 1, 1}, BN_SHAPE(2, 3));
    return bn_gather(x[0], -1, ix);
}

static bn_tensor *f_gather_dim0_view(void *c, bn_tensor *const *x, int n)
{
    /* x [4, 3] sliced to rows 0, 2 -> [2, 3]; gather along dim 0 */
    bn_tensor *ix = i64((int64_t[]){1, 1, 0, 0, 1, 1}, BN_SHAPE(3, 2));
    return bn_gather(bn_slice(x[0], 0, 0, 4, 2), 0, ix);
}

Test(grad_index, gather_adds_at_repeated_indices)
{
    check("gather", f_gather, BN_SHAPE(2, 4), BN_SHAPE(0), 1);
    check("gather dim 0 of a strided view", f_gather_dim0_view, BN_SHAPE(4, 3), BN_SHAPE(0), 1);
}

/* ---- scatter / scatter_add --------------------------------------------------------------- */
static bn_tensor *f_scatter(void *c, bn_tensor *const *x, int n)
{
    /* distinct indices per row so the forward is deterministic; src [3, 4] larger than index */
    bn_tensor *ix = i64((int64_t[]){4, 0, 1, 3}, BN_SHAPE(2, 2));
    return bn_scatter(x[0], 1, ix, x[1]);
}

static bn_tensor *f_scatter_add(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *ix = i64((int64_t[]){0, 0, 2, 0}, BN_SHAPE(2, 2));  /* repeats row 0 */
    return bn_scatter_add(bn_transpose(x[0], 0, 1), -2, ix, x[1]); /* t [3, 2], src [2, 3] */
}

Test(grad_index, scatter_and_scatter_add_to_t_and_src)
{
    check("scatter", f_scatter, BN_SHAPE(3, 5), BN_SHAPE(3, 4), 2);
    check("scatter_add", f_scatter_add, BN_SHAPE(2, 3), BN_SHAPE(2, 3), 2);
}

/* ---- sort / topk ------------------------------------------------------------------------- */
static bn_tensor *f_sort(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *v = NULL;
    cr_assert_eq(bn_sort(bn_transpose(x[0], 0, 1), -1, true, &v, NULL), BN_OK);
    return v;
}

static bn_tensor *f_topk(void *c, bn_tensor *const *x, int n)
{
    bn_tensor *v = NULL, *ix = NULL;
    cr_assert_eq(bn_topk(x[0], 2, 0, false, &v, &ix), BN_OK);
    return v;
}

Test(grad_index, sort_and_topk_values_route_to_their_sources)
{
    check("sort descending", f_sort, BN_SHAPE(4, 3), BN_SHAPE(0), 1);
    check("topk smallest", f_topk, BN_SHAPE(5, 2), BN_SHAPE(0), 1);
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(3), -1, 1));
    bn_tensor *v = NULL, *ix = NULL;
    cr_assert_eq(bn_topk(x, 1, 0, true, &v, &ix), BN_OK);
    cr_assert_str_eq(bn_grad_fn_name(v), "TopkBackward");
    cr_assert(!bn_requires_grad(ix), "indices are integers");
    cr_assert_null(bn_grad_fn_name(bn_argsort(x, 0, false)));
    bn_scope_end();
}

/* ---- second derivatives ------------------------------------------------------------------ */
Test(grad_index, second_derivative_through_gather_and_scatter_add)
{
    bn_scope_begin();
    bn_tensor *x = bn_from_data((double[]){1, -2, 3}, BN_SHAPE(3), BN_F64);
    bn_set_requires_grad(x, true);
    bn_tensor *ix = i64((int64_t[]){2, 0, 2}, BN_SHAPE(3));
    bn_tensor *v = bn_gather(x, 0, ix); /* x2, x0, x2 */
    bn_tensor *y = bn_sum(bn_mul(bn_mul(v, v), v), BN_ALL, false);
    bn_tensor *g = NULL, *gg = NULL;
    cr_assert_eq(bn_autograd_grad(&y, NULL, 1, &x, 1, &g, (bn_backward_opts){.create_graph = true}),
                 BN_OK, "%s", bn_error_message());
    bnt_assert_values(g, (double[]){3, 0, 54}, 3, 1e-12, "3 v^2 added back");
    bn_tensor *s = bn_sum(g, BN_ALL, false);
    cr_assert_eq(bn_autograd_grad(&s, NULL, 1, &x, 1, &gg, (bn_backward_opts){0}), BN_OK, "%s",
                 bn_error_message());
    bnt_assert_values(gg, (double[]){6, 0, 36}, 3, 1e-12, "6 v added back");
    bn_scope_end();
}

Test(grad_index, integer_inputs_record_nothing_and_errors_leak_nothing)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(2, 3), -1, 1));
    bn_tensor *ix = i64((int64_t[]){0, 5}, BN_SHAPE(2));
    cr_assert_null(bn_grad_fn_name(bn_one_hot(ix, 6)));
    bn_tensor *ix2 = bn_reshape(ix, BN_SHAPE(1, 2)), *src = bn_zeros(BN_SHAPE(1, 2), BN_F32);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_index_select(x, 1, ix));
        bnt_assert_error(BN_ERR_ARG, "bn_index_select", NULL);
        cr_assert_null(bn_gather(x, 2, ix));
        bnt_assert_error(BN_ERR_ARG, "bn_gather", "dim", NULL);
        cr_assert_null(bn_scatter_add(x, 0, ix2, src));
        bnt_assert_error(BN_ERR_DTYPE, "bn_scatter_add", "f32", "f64", NULL);
        bn_tensor *v = NULL;
        cr_assert_eq(bn_topk(x, 4, -1, true, &v, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_topk", "k 4", NULL);
        cr_assert_null(v);
        cr_assert_eq(bn_sort(NULL, 0, false, &v, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_sort", NULL);
    });
    bn_scope_end();
}

/* ---- float32 gradients against PyTorch --------------------------------------------------- */
typedef struct grad_case {
    fx_file *f;
    const char *name;
} grad_case;

static bn_tensor *leaf(grad_case c, const char *name)
{
    bn_tensor *x = bnt_keep(fx_tensor(c.f, c.name, name));
    bn_set_requires_grad(x, true);
    return x;
}

static bn_tensor *fixture(grad_case c, const char *name)
{
    return bnt_keep(fx_tensor(c.f, c.name, name));
}

/* Backprops the fixture's g through y; compares the gradient of x with the fixture's `want`. */
static void backprop(grad_case c, bn_tensor *y)
{
    cr_assert_not_null(y, "%s: %s", c.name, bn_error_message());
    cr_assert_eq(bn_backward_ex(y, (bn_backward_opts){.grad = fixture(c, "g")}), BN_OK, "%s: %s",
                 c.name, bn_error_message());
}

static void expect_grad(grad_case c, bn_tensor *x, const char *want)
{
    bnt_assert_close(bn_grad(x), fixture(c, want), 1e-5, 1e-6, c.name);
}

Test(grad_index, gradients_with_repeated_indices_match_pytorch_f32)
{
    bn_scope_begin();
    fx_file *f = fx_open("grad_shape.txt");
    grad_case c = {f, "gather_dups"};
    bn_tensor *x = leaf(c, "x");
    backprop(c, bn_gather(x, 1, fixture(c, "index")));
    expect_grad(c, x, "gx");
    c.name = "gather_dim0_dups";
    x = leaf(c, "x");
    backprop(c, bn_gather(x, 0, fixture(c, "index")));
    expect_grad(c, x, "gx");
    c.name = "index_select_dups";
    x = leaf(c, "x");
    backprop(c, bn_index_select(x, 1, fixture(c, "index")));
    expect_grad(c, x, "gx");
    const char *scatters[2] = {"scatter_dups", "scatter_add_dups"};
    for (int k = 0; k < 2; k++) {
        c.name = scatters[k];
        x = leaf(c, "x");
        bn_tensor *src = leaf(c, "src");
        backprop(c, (k ? bn_scatter_add : bn_scatter)(x, 1, fixture(c, "index"), src));
        expect_grad(c, x, "gx");
        expect_grad(c, src, "gsrc");
    }
    fx_close(f);
    bn_scope_end();
}

Test(grad_index, sort_and_topk_gradients_match_pytorch_f32)
{
    bn_scope_begin();
    fx_file *f = fx_open("grad_shape.txt");
    grad_case c = {f, "topk_largest"};
    bn_tensor *x = leaf(c, "x"), *v = NULL;
    cr_assert_eq(bn_topk(x, 3, 1, true, &v, NULL), BN_OK);
    bnt_assert_close(v, fixture(c, "out"), 0, 0, c.name);
    backprop(c, v);
    expect_grad(c, x, "gx");
    c.name = "topk_smallest_dim0";
    x = leaf(c, "x");
    cr_assert_eq(bn_topk(x, 2, 0, false, &v, NULL), BN_OK);
    backprop(c, v);
    expect_grad(c, x, "gx");
    c.name = "sort_descending";
    x = leaf(c, "x");
    cr_assert_eq(bn_sort(x, -1, true, &v, NULL), BN_OK);
    backprop(c, v);
    expect_grad(c, x, "gx");
    fx_close(f);
    bn_scope_end();
}
