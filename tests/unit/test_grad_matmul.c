/* tests/unit/test_grad_matmul.c — the derivative of bn_matmul in every torch.matmul case (dot,
 * vector·matrix, matrix·vector, matrix·matrix, batched with broadcast batch dims), on contiguous,
 * transposed, sliced and broadcast operands: float64 finite differences, second derivatives
 * through create_graph, and float32 gradients against PyTorch from tests/data/grad_reduce.txt,
 * written by scripts/gen_grad_reduce.py. */
#include "bn_test.h"

#include "born/autograd.h"

#include <math.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void fini(void) { bnt_release_kept(); }
TestSuite(grad_matmul, .fini = fini);

/* How a leaf becomes an operand: as is, with its last two dims swapped, every other element of
 * its last dim, or its size-1 dim 0 broadcast to 2. */
typedef enum view_kind { AS_IS, TRANSPOSED, SLICED, EXPANDED } view_kind;

typedef struct operand {
    bn_shape leaf;
    view_kind view;
} operand;

typedef struct mm_case {
    const char *what;
    operand a, b;
} mm_case;

static bn_tensor *operand_of(const operand *o, const bn_tensor *leaf)
{
    switch (o->view) {
    case TRANSPOSED: return bn_transpose(leaf, -1, -2);
    case SLICED: return bn_slice(leaf, -1, 0, bn_dim(leaf, -1), 2);
    case EXPANDED: {
        bn_shape s = bn_shape_of(leaf);
        s.dims[0] = 2;
        return bn_expand(leaf, s);
    }
    case AS_IS: break;
    }
    return (bn_tensor *)leaf;
}

static bn_tensor *mm_fn(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    const mm_case *c = ctx;
    return bn_matmul(operand_of(&c->a, in[0]), operand_of(&c->b, in[1]));
}

static void gradcheck_mm(const mm_case *c)
{
    bn_manual_seed(5);
    bn_tensor *in[2] = {bnt_param(c->a.leaf, -1, 1), bnt_param(c->b.leaf, -1, 1)};
    bnt_gradcheck(c->what, mm_fn, (void *)c, in, 2);
    bn_release(in[0]);
    bn_release(in[1]);
    bnt_assert_no_error(c->what);
}

#define OP(...)                                                                                    \
    {                                                                                              \
        BN_SHAPE(__VA_ARGS__), AS_IS                                                               \
    }

Test(grad_matmul, every_shape_case_matches_finite_differences)
{
    const mm_case cases[] = {
        {"1-D dot", OP(4), OP(4)},
        {"1-D @ 2-D", OP(3), OP(3, 5)},
        {"1-D @ 3-D", OP(3), OP(2, 3, 5)},
        {"2-D @ 1-D", OP(4, 3), OP(3)},
        {"3-D @ 1-D", OP(2, 4, 3), OP(3)},
        {"4-D @ 1-D", OP(2, 2, 4, 3), OP(3)},
        {"2-D @ 2-D", OP(4, 3), OP(3, 5)},
        {"3-D @ 2-D (batch folded into rows)", OP(2, 4, 3), OP(3, 5)},
        {"2-D @ 3-D (a broadcast over b's batch)", OP(4, 3), OP(2, 3, 5)},
        {"3-D @ 3-D", OP(2, 4, 3), OP(2, 3, 5)},
        {"broadcast batch dims [2,1,4,3] @ [5,3,2]", OP(2, 1, 4, 3), OP(5, 3, 2)},
        {"size-1 batch [1,4,3] @ [3,3,5]", OP(1, 4, 3), OP(3, 3, 5)},
        {"single row and column", OP(1, 3), OP(3, 1)},
    };
    for (int i = 0; i < COUNT(cases); i++) gradcheck_mm(&cases[i]);
}

Test(grad_matmul, non_contiguous_operands_match_finite_differences)
{
    const mm_case cases[] = {
        {"transposed a", {BN_SHAPE(3, 4), TRANSPOSED}, OP(3, 5)},
        {"transposed b", OP(4, 3), {BN_SHAPE(5, 3), TRANSPOSED}},
        {"both transposed, batched",
         {BN_SHAPE(2, 3, 4), TRANSPOSED},
         {BN_SHAPE(2, 5, 3), TRANSPOSED}},
        {"sliced a", {BN_SHAPE(4, 6), SLICED}, OP(3, 2)},
        {"sliced 1-D b", OP(2, 4, 3), {BN_SHAPE(6), SLICED}},
        {"expanded batch of a", {BN_SHAPE(1, 4, 3), EXPANDED}, OP(2, 3, 5)},
        {"expanded batch of b under 2-D a", OP(4, 3), {BN_SHAPE(1, 3, 5), EXPANDED}},
        {"transposed b under batched a", OP(2, 4, 3), {BN_SHAPE(5, 3), TRANSPOSED}},
        {"1-D a, transposed b", OP(3), {BN_SHAPE(5, 3), TRANSPOSED}},
    };
    for (int i = 0; i < COUNT(cases); i++) gradcheck_mm(&cases[i]);
}

static bn_tensor *grad_of(bn_tensor *x)
{
    bn_tensor *g = bn_grad(x);
    cr_assert_not_null(g, "no gradient: %s", bn_error_message());
    return g;
}

Test(grad_matmul, only_the_operands_that_require_grad_get_one)
{
    bn_scope_begin();
    bn_tensor *a = bn_randn(BN_SHAPE(2, 3), BN_F64), *b = bn_randn(BN_SHAPE(3, 4), BN_F64);
    cr_assert_eq(bn_set_requires_grad(a, true), BN_OK);
    bn_tensor *y = bn_sum(bn_matmul(a, b), BN_ALL, false);
    cr_assert_str_eq(bn_grad_fn_name(bn_matmul(a, b)), "MatmulBackward");
    cr_assert_eq(bn_backward(y), BN_OK, "%s", bn_error_message());
    bnt_assert_close(grad_of(a), bn_expand(bn_sum(b, 1, false), BN_SHAPE(2, 3)), 1e-12, 1e-12,
                     "d/da = row sums of b");
    cr_assert_null(bn_grad(b));
    bnt_assert_no_error("b has no gradient");
    bn_no_grad_begin();
    cr_assert(!bn_requires_grad(bn_matmul(a, b)), "no-grad records nothing");
    bn_no_grad_end();
    bn_scope_end();
}

Test(grad_matmul, empty_inner_dim_gives_empty_gradients)
{
    bn_scope_begin();
    bn_tensor *a = bn_zeros(BN_SHAPE(2, 3, 0), BN_F32), *b = bn_zeros(BN_SHAPE(0, 4), BN_F32);
    bn_set_requires_grad(a, true);
    bn_set_requires_grad(b, true);
    bn_tensor *y = bn_matmul(a, b);
    cr_assert(bn_shape_equal(bn_shape_of(y), BN_SHAPE(2, 3, 4)));
    cr_assert_eq(bn_backward_ex(y, (bn_backward_opts){.grad = bn_ones_like(y)}), BN_OK, "%s",
                 bn_error_message());
    cr_assert(bn_shape_equal(bn_shape_of(grad_of(a)), BN_SHAPE(2, 3, 0)));
    cr_assert(bn_shape_equal(bn_shape_of(grad_of(b)), BN_SHAPE(0, 4)));
    /* an empty result still records: its gradients are zeros of the operands' shapes */
    bn_tensor *c = bn_randn(BN_SHAPE(0, 3), BN_F32), *d = bn_randn(BN_SHAPE(3, 2), BN_F32);
    bn_set_requires_grad(d, true);
    bn_tensor *e = bn_matmul(c, d);
    cr_assert(bn_requires_grad(e));
    cr_assert_eq(bn_backward(bn_sum(e, BN_ALL, false)), BN_OK, "%s", bn_error_message());
    bnt_assert_values(grad_of(d), (double[]){0, 0, 0, 0, 0, 0}, 6, 0, "zeros");
    bn_scope_end();
}

/* ---- second derivatives: x @ x^T and x · x are quadratic in x -------------------------------- */
typedef bn_tensor *(*unary_fn)(const bn_tensor *x);

static bn_tensor *gram(const bn_tensor *x) { return bn_matmul(x, bn_transpose(x, 0, 1)); }
static bn_tensor *self_dot(const bn_tensor *x) { return bn_matmul(x, x); }
static bn_tensor *batched_gram(const bn_tensor *x)
{
    return bn_matmul(bn_transpose(x, -1, -2), bn_unsqueeze(bn_select(x, 0, 0), 0));
}

/* sum(v * d/dx sum(w * f(x))) */
static bn_tensor *first_grad_dot(unary_fn f, bn_tensor *x, const bn_tensor *w, const bn_tensor *v,
                                 bool graph)
{
    bn_tensor *y = bn_sum(bn_mul(f(x), w), BN_ALL, false), *g[1] = {NULL};
    cr_assert_eq(bn_autograd_grad(&y, NULL, 1, &x, 1, g, (bn_backward_opts){.create_graph = graph}),
                 BN_OK, "%s", bn_error_message());
    return bn_sum(bn_mul(g[0], v), BN_ALL, false);
}

static void check_second_derivative(const char *what, unary_fn f, bn_shape s)
{
    bn_scope_begin();
    bn_manual_seed(9);
    bn_tensor *x = bnt_param(s, -1, 1);
    bn_tensor *w = bn_randn(bn_shape_of(f(x)), BN_F64), *v = bn_randn(s, BN_F64);
    bn_tensor *sum = first_grad_dot(f, x, w, v, true), *h[1] = {NULL};
    cr_assert_eq(bn_autograd_grad(&sum, NULL, 1, &x, 1, h, (bn_backward_opts){0}), BN_OK, "%s: %s",
                 what, bn_error_message());
    bn_tensor *hc = bn_contiguous(h[0]);
    double *xd = bn_tensor_data_f64(x);
    for (int64_t j = 0; j < bn_numel(x); j++) {
        double saved = xd[j], eps = 1e-6;
        xd[j] = saved + eps;
        double fp = bn_item(first_grad_dot(f, x, w, v, false));
        xd[j] = saved - eps;
        double fm = bn_item(first_grad_dot(f, x, w, v, false));
        xd[j] = saved;
        double numeric = (fp - fm) / (2 * eps), analytic = bn_tensor_data_f64(hc)[j];
        cr_assert(fabs(analytic - numeric) <= 1e-5 * (1 + fabs(numeric)),
                  "%s: element %lld: autograd %.10g, finite differences %.10g", what, (long long)j,
                  analytic, numeric);
    }
    bn_scope_end();
    bn_release(x);
}

Test(grad_matmul, second_derivatives_through_create_graph)
{
    BNT_ASSERT_NO_LEAK(check_second_derivative("x @ x^T", gram, BN_SHAPE(3, 4)));
    check_second_derivative("x . x", self_dot, BN_SHAPE(5));
    check_second_derivative("batched x^T @ x[0]", batched_gram, BN_SHAPE(2, 3, 3));
    bnt_assert_no_error("second derivatives");
}

/* ---- other dtypes ----------------------------------------------------------------------------- */
static void check_dtype(bn_dtype dt, bn_shape sa, bn_shape sb)
{
    bn_scope_begin();
    bn_manual_seed(13);
    bn_tensor *a = bn_randn(sa, BN_F32), *b = bn_randn(sb, BN_F32);
    bn_tensor *a2 = bn_to_dtype(a, dt), *b2 = bn_to_dtype(b, dt);
    bn_tensor *ins[4] = {a, b, a2, b2};
    for (int i = 0; i < 4; i++) bn_set_requires_grad(ins[i], true);
    bn_tensor *y = bn_matmul(a, b), *y2 = bn_matmul(a2, b2);
    bn_tensor *w = bn_randn(bn_shape_of(y), BN_F32);
    cr_assert_eq(bn_backward_ex(y, (bn_backward_opts){.grad = w}), BN_OK);
    cr_assert_eq(bn_backward_ex(y2, (bn_backward_opts){.grad = bn_to_dtype(w, dt)}), BN_OK, "%s",
                 bn_error_message());
    bn_dtype loose = dt == BN_F64 ? BN_F32 : dt;
    for (int i = 0; i < 2; i++) {
        bn_tensor *g = grad_of(ins[2 + i]);
        cr_assert_eq(bn_dtype_of(g), dt);
        bnt_assert_close(bn_to_dtype(g, BN_F32), grad_of(ins[i]), 4 * bnt_rtol(loose),
                         4 * bnt_atol(loose), bn_dtype_name(dt));
    }
    bn_scope_end();
}

Test(grad_matmul, half_precision_and_f64_gradients_follow_f32)
{
    const bn_dtype dts[] = {BN_F16, BN_BF16, BN_F64};
    for (int i = 0; i < COUNT(dts); i++) {
        check_dtype(dts[i], BN_SHAPE(2, 4, 3), BN_SHAPE(3, 5));
        check_dtype(dts[i], BN_SHAPE(3), BN_SHAPE(2, 3, 5));
        check_dtype(dts[i], BN_SHAPE(4, 3), BN_SHAPE(3));
    }
}

/* ---- against PyTorch (f32) ------------------------------------------------------------------ */
static void check_torch_case(fx_file *f, const char *name)
{
    bn_scope_begin();
    bn_tensor *a = bnt_keep(fx_tensor(f, name, "x0")), *b = bnt_keep(fx_tensor(f, name, "x1"));
    bn_set_requires_grad(a, true);
    bn_set_requires_grad(b, true);
    bn_tensor *y = bn_matmul(a, b);
    cr_assert_not_null(y, "%s: %s", name, bn_error_message());
    bn_tensor *w = bnt_keep(fx_tensor(f, name, "w"));
    cr_assert_eq(bn_backward_ex(y, (bn_backward_opts){.grad = w}), BN_OK, "%s: %s", name,
                 bn_error_message());
    bnt_assert_close(grad_of(a), bnt_keep(fx_tensor(f, name, "g0")), bnt_rtol(BN_F32),
                     bnt_atol(BN_F32), name);
    bnt_assert_close(grad_of(b), bnt_keep(fx_tensor(f, name, "g1")), bnt_rtol(BN_F32),
                     bnt_atol(BN_F32), name);
    bn_scope_end();
}

Test(grad_matmul, f32_gradients_match_pytorch)
{
    const char *cases[] = {"matmul_dot",         "matmul_vec_mat",        "matmul_vec_batched",
                           "matmul_mat_vec",     "matmul_batched_vec",    "matmul_mat_mat",
                           "matmul_batched_mat", "matmul_broadcast_batch"};
    fx_file *f = fx_open("grad_reduce.txt");
    for (int i = 0; i < COUNT(cases); i++) check_torch_case(f, cases[i]);
    fx_close(f);
    bnt_assert_no_error("torch cases");
}

/* ---- errors ------------------------------------------------------------------------------------ */
Test(grad_matmul, bad_operands_fail_cleanly_with_grad)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *a = bn_randn(BN_SHAPE(2, 3), BN_F32), *b = bn_randn(BN_SHAPE(4, 5), BN_F32);
        bn_set_requires_grad(a, true);
        cr_assert_null(bn_matmul(a, b));
        bnt_assert_error(BN_ERR_SHAPE, "bn_matmul", "inner dimensions", "[2, 3]", "[4, 5]", NULL);
        cr_assert_null(bn_matmul(a, bn_zeros(BN_SHAPE(3), BN_F64)));
        bnt_assert_error(BN_ERR_DTYPE, "bn_matmul", "f32", "f64", NULL);
        cr_assert_null(bn_matmul(a, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_matmul", "b", NULL);
        cr_assert_null(
            bn_matmul(bn_randn(BN_SHAPE(2, 2, 3), BN_F32), bn_randn(BN_SHAPE(3, 3, 1), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_matmul", "batch", NULL);
        bn_scope_end();
    });
}

Test(grad_matmul, changing_an_operand_in_place_fails_backward)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *a = bn_randn(BN_SHAPE(2, 3), BN_F32), *b = bn_randn(BN_SHAPE(3, 4), BN_F32);
        bn_set_requires_grad(a, true);
        bn_tensor *y = bn_sum(bn_matmul(a, b), BN_ALL, false);
        cr_assert_eq(bn_fill_(b, 2.0), BN_OK); /* b does not require grad: allowed */
        cr_assert_eq(bn_backward(y), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_backward", "MatmulBackward", "[3, 4]", "in place", NULL);
        bn_scope_end();
    });
}
