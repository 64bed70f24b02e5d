/* tests/unit/test_grad_reduce.c — derivatives of the reductions (sum, mean, prod, max, min, var,
 * std, logsumexp, over one dim, several or all), cumsum, softmax and log_softmax: float64 finite
 * differences on random inputs (contiguous, transposed, sliced and broadcast), second
 * derivatives through create_graph, and float32 gradients against PyTorch from
 * tests/data/grad_reduce.txt, written by scripts/gen_grad_reduce.py. */
#include "bn_test.h"

#include "born/autograd.h"

#include <math.h>
#include <string.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void fini(void) { bnt_release_kept(); }
TestSuite(grad_reduce, .fini = fini);

/* ---- the ops under test ------------------------------------------------------------------- */
typedef enum op_kind {
    OP_SUM,
    OP_MEAN,
    OP_SUM_DIMS,
    OP_MEAN_DIMS,
    OP_PROD,
    OP_MAX,
    OP_MIN,
    OP_VAR,
    OP_STD,
    OP_LOGSUMEXP,
    OP_CUMSUM,
    OP_SOFTMAX,
    OP_LOG_SOFTMAX
} op_kind;

/* How the leaf becomes the op's input: as is, transposed (dims 0 and 1), every other element of
 * the last dim, or its size-1 dim 0 broadcast to 3. */
typedef enum view_kind { AS_IS, TRANSPOSED, SLICED, EXPANDED } view_kind;

typedef struct grad_case {
    const char *what;
    op_kind op;
    int dim; /* or BN_ALL */
    bool keepdim;
    int correction;
    int dims[3], ndims; /* OP_SUM_DIMS / OP_MEAN_DIMS */
    view_kind view;
    bn_shape leaf;
} grad_case;

static bn_tensor *apply(const grad_case *c, const bn_tensor *x)
{
    switch (c->op) {
    case OP_SUM: return bn_sum(x, c->dim, c->keepdim);
    case OP_MEAN: return bn_mean(x, c->dim, c->keepdim);
    case OP_SUM_DIMS: return bn_sum_dims(x, c->dims, c->ndims, c->keepdim);
    case OP_MEAN_DIMS: return bn_mean_dims(x, c->dims, c->ndims, c->keepdim);
    case OP_PROD: return bn_prod(x, c->dim, c->keepdim);
    case OP_MAX: return bn_max(x, c->dim, c->keepdim);
    case OP_MIN: return bn_min(x, c->dim, c->keepdim);
    case OP_VAR: return bn_var(x, c->dim, c->correction, c->keepdim);
    case OP_STD: return bn_std(x, c->dim, c->correction, c->keepdim);
    case OP_LOGSUMEXP: return bn_logsumexp(x, c->dim, c->keepdim);
    case OP_CUMSUM: return bn_cumsum(x, c->dim);
    case OP_SOFTMAX: return bn_softmax(x, c->dim);
    case OP_LOG_SOFTMAX: return bn_log_softmax(x, c->dim);
    }
    return NULL;
}

static bn_tensor *view_of(view_kind v, const bn_tensor *leaf)
{
    switch (v) {
    case TRANSPOSED: return bn_transpose(leaf, 0, 1);
    case SLICED: return bn_slice(leaf, -1, 0, bn_dim(leaf, -1), 2);
    case EXPANDED: {
        bn_shape s = bn_shape_of(leaf);
        s.dims[0] = 3;
        return bn_expand(leaf, s);
    }
    case AS_IS: break;
    }
    return (bn_tensor *)leaf;
}

static bn_tensor *case_fn(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    const grad_case *c = ctx;
    return apply(c, view_of(c->view, in[0]));
}

static void gradcheck_cases(const grad_case *cases, int n, double lo, double hi)
{
    for (int i = 0; i < n; i++) {
        bn_manual_seed(100 + (uint64_t)i);
        bn_tensor *x = bnt_param(cases[i].leaf, lo, hi);
        bnt_gradcheck(cases[i].what, case_fn, (void *)&cases[i], &x, 1);
        bn_release(x);
        bnt_assert_no_error(cases[i].what);
    }
}

#define S2 BN_SHAPE(3, 4)
#define S3 BN_SHAPE(2, 3, 4)

/* ---- finite differences ------------------------------------------------------------------- */
Test(grad_reduce, sum_and_mean_match_finite_differences)
{
    const grad_case cases[] = {
        {"sum dim 1", OP_SUM, 1, false, .leaf = S2},
        {"sum dim -2 keepdim", OP_SUM, -2, true, .leaf = S2},
        {"sum all", OP_SUM, BN_ALL, false, .leaf = S3},
        {"sum all keepdim", OP_SUM, BN_ALL, true, .leaf = S3},
        {"sum of 0-d", OP_SUM, BN_ALL, false, .leaf = BN_SHAPE()},
        {"sum transposed", OP_SUM, 0, false, .view = TRANSPOSED, .leaf = BN_SHAPE(4, 3)},
        {"sum sliced", OP_SUM, 1, true, .view = SLICED, .leaf = BN_SHAPE(3, 8)},
        {"sum expanded", OP_SUM, 0, false, .view = EXPANDED, .leaf = BN_SHAPE(1, 4)},
        {"sum_dims 0,2", OP_SUM_DIMS, .dims = {0, 2}, .ndims = 2, .leaf = S3},
        {"sum_dims -1 keepdim", OP_SUM_DIMS, .keepdim = true, .dims = {-1}, .ndims = 1, .leaf = S3},
        {"sum_dims none = all", OP_SUM_DIMS, .ndims = 0, .leaf = S3},
        {"mean dim 0", OP_MEAN, 0, false, .leaf = S2},
        {"mean all keepdim", OP_MEAN, BN_ALL, true, .leaf = S3},
        {"mean expanded", OP_MEAN, 1, false, .view = EXPANDED, .leaf = BN_SHAPE(1, 4)},
        {"mean_dims 2,0 keepdim", OP_MEAN_DIMS, .keepdim = true, .dims = {2, 0}, .ndims = 2,
         .leaf = S3},
        {"mean_dims transposed", OP_MEAN_DIMS, .dims = {1}, .ndims = 1, .view = TRANSPOSED,
         .leaf = S3},
    };
    gradcheck_cases(cases, COUNT(cases), -1, 1);
}

Test(grad_reduce, prod_matches_finite_differences)
{
    const grad_case cases[] = {
        {"prod dim 1", OP_PROD, 1, false, .leaf = S2},
        {"prod dim 0 keepdim", OP_PROD, 0, true, .leaf = S3},
        {"prod dim 1 of 3-D", OP_PROD, 1, false, .leaf = S3},
        {"prod all", OP_PROD, BN_ALL, false, .leaf = S2},
        {"prod of 0-d", OP_PROD, BN_ALL, false, .leaf = BN_SHAPE()},
        {"prod transposed", OP_PROD, 1, false, .view = TRANSPOSED, .leaf = BN_SHAPE(5, 3)},
        {"prod sliced", OP_PROD, BN_ALL, true, .view = SLICED, .leaf = BN_SHAPE(2, 6)},
        {"prod expanded", OP_PROD, 0, false, .view = EXPANDED, .leaf = BN_SHAPE(1, 4)},
    };
    gradcheck_cases(cases, COUNT(cases), 0.5, 1.5);
}

/* prod is linear in each element, so finite differences are exact even at zeros */
static bn_tensor *prod_dim1(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx, (void)n;
    return bn_prod(in[0], 1, false);
}
static bn_tensor *prod_all(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx, (void)n;
    return bn_prod(in[0], BN_ALL, false);
}

Test(grad_reduce, prod_with_zeros_matches_finite_differences)
{
    bn_scope_begin();
    const double v[] = {1.5, -2, 0.5, 3, /**/ 2, 0, -1.5, 4, /**/ 0, 2.5, 0, 1};
    bn_tensor *x = bn_from_data(v, BN_SHAPE(3, 4), BN_F64);
    bn_set_requires_grad(x, true);
    bnt_gradcheck("prod dim 1, rows with 0, 1 and 2 zeros", prod_dim1, NULL, &x, 1);
    bn_tensor *one = bn_from_data((double[]){1.5, -2, 0, 3, 2, 0.5}, BN_SHAPE(2, 3), BN_F64);
    bn_set_requires_grad(one, true);
    bnt_gradcheck("prod all, one zero", prod_all, NULL, &one, 1);
    bn_tensor *y = bn_prod(one, BN_ALL, false);
    cr_assert_eq(bn_backward(y), BN_OK, "%s", bn_error_message());
    bnt_assert_values(bn_grad(one), (double[]){0, 0, -9, 0, 0, 0}, 6, 0, "only the zero gets one");
    bn_scope_end();
}

Test(grad_reduce, max_and_min_match_finite_differences)
{
    const grad_case cases[] = {
        {"max dim 1", OP_MAX, 1, false, .leaf = S2},
        {"max dim 0 keepdim", OP_MAX, 0, true, .leaf = S3},
        {"max all", OP_MAX, BN_ALL, false, .leaf = S3},
        {"max of 0-d", OP_MAX, BN_ALL, false, .leaf = BN_SHAPE()},
        {"max dim 0 of 0-d", OP_MAX, 0, true, .leaf = BN_SHAPE()},
        {"max transposed", OP_MAX, 1, false, .view = TRANSPOSED, .leaf = BN_SHAPE(5, 3)},
        {"max sliced", OP_MAX, -1, false, .view = SLICED, .leaf = BN_SHAPE(3, 8)},
        {"min dim -1", OP_MIN, -1, false, .leaf = S3},
        {"min all keepdim", OP_MIN, BN_ALL, true, .leaf = S2},
        {"min transposed", OP_MIN, 0, true, .view = TRANSPOSED, .leaf = BN_SHAPE(4, 3)},
    };
    gradcheck_cases(cases, COUNT(cases), -1, 1);
}

Test(grad_reduce, var_and_std_match_finite_differences)
{
    const grad_case cases[] = {
        {"var dim 1", OP_VAR, 1, false, 1, .leaf = S2},
        {"var dim 0 c0 keepdim", OP_VAR, 0, true, 0, .leaf = S3},
        {"var all", OP_VAR, BN_ALL, false, 1, .leaf = S3},
        {"var c2", OP_VAR, -1, false, 2, .leaf = S3},
        {"var transposed", OP_VAR, 1, false, 1, .view = TRANSPOSED, .leaf = BN_SHAPE(5, 3)},
        {"var expanded", OP_VAR, 1, false, 1, .view = EXPANDED, .leaf = BN_SHAPE(1, 4)},
        {"std dim 1", OP_STD, 1, false, 1, .leaf = S2},
        {"std all keepdim c0", OP_STD, BN_ALL, true, 0, .leaf = S3},
        {"std sliced", OP_STD, 0, false, 1, .view = SLICED, .leaf = BN_SHAPE(3, 8)},
    };
    gradcheck_cases(cases, COUNT(cases), -1, 1);
}

Test(grad_reduce, logsumexp_softmax_and_cumsum_match_finite_differences)
{
    const grad_case cases[] = {
        {"logsumexp dim 1", OP_LOGSUMEXP, 1, false, .leaf = S2},
        {"logsumexp all keepdim", OP_LOGSUMEXP, BN_ALL, true, .leaf = S3},
        {"logsumexp of 0-d", OP_LOGSUMEXP, 0, false, .leaf = BN_SHAPE()},
        {"logsumexp transposed", OP_LOGSUMEXP, 0, false, .view = TRANSPOSED, .leaf = S2},
        {"logsumexp expanded", OP_LOGSUMEXP, 0, true, .view = EXPANDED, .leaf = BN_SHAPE(1, 4)},
        {"softmax dim 1", OP_SOFTMAX, 1, .leaf = S2},
        {"softmax dim 0 of 3-D", OP_SOFTMAX, 0, .leaf = S3},
        {"softmax of 0-d", OP_SOFTMAX, 0, .leaf = BN_SHAPE()},
        {"softmax transposed", OP_SOFTMAX, -1, .view = TRANSPOSED, .leaf = S3},
        {"softmax expanded", OP_SOFTMAX, 0, .view = EXPANDED, .leaf = BN_SHAPE(1, 4)},
        {"log_softmax dim -1", OP_LOG_SOFTMAX, -1, .leaf = S3},
        {"log_softmax sliced", OP_LOG_SOFTMAX, 1, .view = SLICED, .leaf = BN_SHAPE(3, 8)},
        {"log_softmax expanded", OP_LOG_SOFTMAX, 0, .view = EXPANDED, .leaf = BN_SHAPE(1, 4)},
        {"cumsum dim 0", OP_CUMSUM, 0, .leaf = S2},
        {"cumsum dim -1 of 3-D", OP_CUMSUM, -1, .leaf = S3},
        {"cumsum of 0-d", OP_CUMSUM, 0, .leaf = BN_SHAPE()},
        {"cumsum transposed", OP_CUMSUM, 1, .view = TRANSPOSED, .leaf = S2},
        {"cumsum expanded", OP_CUMSUM, 0, .view = EXPANDED, .leaf = BN_SHAPE(1, 4)},
    };
    gradcheck_cases(cases, COUNT(cases), -2, 2);
}

/* ---- second derivatives ------------------------------------------------------------------- */
typedef struct second_case {
    const grad_case *op;
    const bn_tensor *w, *v; /* weights of the output and of the gradient */
} second_case;

/* s(x) = sum(v * d/dx sum(w * op(x))), its gradient taken through create_graph when `graph`. */
static bn_tensor *first_grad_dot(const second_case *c, bn_tensor *x, bool graph)
{
    bn_tensor *y = bn_sum(bn_mul(apply(c->op, view_of(c->op->view, x)), c->w), BN_ALL, false);
    bn_tensor *g[1] = {NULL};
    cr_assert_eq(bn_autograd_grad(&y, NULL, 1, &x, 1, g, (bn_backward_opts){.create_graph = graph}),
                 BN_OK, "%s: %s", c->op->what, bn_error_message());
    return bn_sum(bn_mul(g[0], c->v), BN_ALL, false);
}

/* The gradient of s through create_graph against central differences of s. */
static void check_second_derivative(const grad_case *op, double lo, double hi)
{
    bn_scope_begin();
    bn_manual_seed(7);
    bn_tensor *x = bnt_param(op->leaf, lo, hi);
    bn_tensor *probe = apply(op, view_of(op->view, x));
    second_case c = {op, bn_randn(bn_shape_of(probe), BN_F64), bn_randn(op->leaf, BN_F64)};
    bn_tensor *s = first_grad_dot(&c, x, true);
    cr_assert(bn_requires_grad(s), "%s: the first derivative has no graph", op->what);
    bn_tensor *h[1] = {NULL};
    cr_assert_eq(bn_autograd_grad(&s, NULL, 1, &x, 1, h, (bn_backward_opts){0}), BN_OK, "%s: %s",
                 op->what, bn_error_message());
    cr_assert_not_null(h[0], "%s: no second derivative", op->what);
    bn_tensor *hc = bn_contiguous(h[0]);
    double *xd = bn_tensor_data_f64(x);
    const double eps = 1e-6;
    for (int64_t j = 0; j < bn_numel(x); j++) {
        double saved = xd[j];
        xd[j] = saved + eps;
        double fp = bn_item(first_grad_dot(&c, x, false));
        xd[j] = saved - eps;
        double fm = bn_item(first_grad_dot(&c, x, false));
        xd[j] = saved;
        double numeric = (fp - fm) / (2 * eps), analytic = bn_tensor_data_f64(hc)[j];
        cr_assert(fabs(analytic - numeric) <= 1e-5 * (1 + fabs(numeric)),
                  "%s: second derivative element %lld: autograd %.10g, finite differences %.10g",
                  op->what, (long long)j, analytic, numeric);
    }
    bn_scope_end();
    bn_release(x);
}

Test(grad_reduce, softmax_second_derivative_through_create_graph)
{
    const grad_case softmax = {"softmax dim 1", OP_SOFTMAX, 1, .leaf = S2};
    BNT_ASSERT_NO_LEAK(check_second_derivative(&softmax, -2, 2));
    const grad_case log_softmax = {"log_softmax dim 0", OP_LOG_SOFTMAX, 0, .leaf = S2};
    BNT_ASSERT_NO_LEAK(check_second_derivative(&log_softmax, -2, 2));
    const grad_case transposed = {"softmax transposed", OP_SOFTMAX, 0, .view = TRANSPOSED,
                                  .leaf = S2};
    check_second_derivative(&transposed, -2, 2);
    bnt_assert_no_error("second derivatives");
}

Test(grad_reduce, other_second_derivatives_through_create_graph)
{
    const grad_case cases[] = {
        {"logsumexp dim 1", OP_LOGSUMEXP, 1, .leaf = S2},
        {"std dim 0", OP_STD, 0, false, 1, .leaf = S2},
        {"var all", OP_VAR, BN_ALL, false, 1, .leaf = S2},
        {"prod dim 1", OP_PROD, 1, .leaf = S2},
        {"prod all of 3-D", OP_PROD, BN_ALL, .leaf = S3},
    };
    for (int i = 0; i < COUNT(cases); i++)
        BNT_ASSERT_NO_LEAK(check_second_derivative(&cases[i], 0.5, 1.5));
    bnt_assert_no_error("second derivatives");
}

/* ---- ties, NaN, empty tensors --------------------------------------------------------------- */
static bn_tensor *leaf(const double *v, bn_shape s)
{
    bn_tensor *t = bn_from_data(v, s, BN_F64);
    bn_set_requires_grad(t, true);
    return t;
}

static void backward_ones(bn_tensor *y)
{
    cr_assert_eq(bn_backward_ex(y, (bn_backward_opts){.grad = bn_ones_like(y)}), BN_OK, "%s",
                 bn_error_message());
}

Test(grad_reduce, max_over_all_dims_splits_ties_and_a_dim_picks_the_first)
{
    bn_scope_begin();
    const double v[] = {1, 3, 3, 2, /**/ 5, 5, 0, 0};
    bn_tensor *x = leaf(v, BN_SHAPE(2, 4));
    backward_ones(bn_max(x, BN_ALL, false));
    bnt_assert_values(bn_grad(x), (double[]){0, 0, 0, 0, 0.5, 0.5, 0, 0}, 8, 0, "max all");
    bn_set_grad(x, NULL);
    backward_ones(bn_max(x, 1, false));
    bnt_assert_values(bn_grad(x), (double[]){0, 1, 0, 0, 1, 0, 0, 0}, 8, 0, "max dim 1");
    bn_set_grad(x, NULL);
    backward_ones(bn_min(x, 1, true));
    bnt_assert_values(bn_grad(x), (double[]){1, 0, 0, 0, 0, 0, 1, 0}, 8, 0, "min dim 1");
    bn_set_grad(x, NULL);
    backward_ones(bn_min(x, BN_ALL, true));
    bnt_assert_values(bn_grad(x), (double[]){0, 0, 0, 0, 0, 0, 0.5, 0.5}, 8, 0, "min all");
    bn_scope_end();
}

Test(grad_reduce, max_sends_the_gradient_to_nan)
{
    bn_scope_begin();
    bn_tensor *x = leaf((double[]){1, NAN, NAN, 3}, BN_SHAPE(4));
    backward_ones(bn_max(x, BN_ALL, false));
    bnt_assert_values(bn_grad(x), (double[]){0, 0.5, 0.5, 0}, 4, 0, "split between the NaNs");
    bn_set_grad(x, NULL);
    backward_ones(bn_min(x, 0, false));
    bnt_assert_values(bn_grad(x), (double[]){0, 1, 0, 0}, 4, 0, "the first NaN");
    bn_scope_end();
}

Test(grad_reduce, std_of_constant_slices_has_zero_gradient)
{
    bn_scope_begin();
    bn_tensor *x = leaf((double[]){2, 2, 2, 1, 2, 3}, BN_SHAPE(2, 3));
    backward_ones(bn_std(x, 1, 1, false));
    bnt_assert_values(bn_grad(x), (double[]){0, 0, 0, -0.5, 0, 0.5}, 6, 1e-15, "std grads");
    bn_scope_end();
}

Test(grad_reduce, empty_inputs_get_empty_gradients)
{
    bn_scope_begin();
    bn_tensor *x = bn_zeros(BN_SHAPE(0, 3), BN_F32);
    bn_set_requires_grad(x, true);
    bn_tensor *outs[] = {
        bn_sum(x, 0, false), bn_prod(x, 0, false), bn_logsumexp(x, 0, true),
        bn_sum(x, 1, false), bn_softmax(x, 1),     bn_log_softmax(x, 0),
        bn_cumsum(x, 0),     bn_mean(x, 1, false), bn_var(x, 1, 1, true),
    };
    for (int i = 0; i < COUNT(outs); i++) {
        cr_assert_not_null(outs[i], "op %d: %s", i, bn_error_message());
        cr_assert_eq(bn_set_grad(x, NULL), BN_OK);
        backward_ones(bn_sum(outs[i], BN_ALL, false));
        bn_tensor *g = bn_grad(x);
        cr_assert_not_null(g, "op %d gave no gradient", i);
        cr_assert(bn_shape_equal(bn_shape_of(g), BN_SHAPE(0, 3)), "op %d: gradient shape", i);
    }
    bn_scope_end();
}

Test(grad_reduce, integer_results_and_argmax_record_nothing)
{
    bn_scope_begin();
    bn_tensor *x = bn_randn(BN_SHAPE(3, 4), BN_F32);
    bn_set_requires_grad(x, true);
    cr_assert(!bn_requires_grad(bn_argmax(x, 1, false)));
    cr_assert(!bn_requires_grad(bn_argmin(x, BN_ALL, false)));
    cr_assert(!bn_requires_grad(bn_all(x, 0, false)));
    cr_assert(!bn_requires_grad(bn_any(x, BN_ALL, true)));
    cr_assert_str_eq(bn_grad_fn_name(bn_max(x, 0, false)), "MaxBackward");
    cr_assert_str_eq(bn_grad_fn_name(bn_logsumexp(x, 0, false)), "LogsumexpBackward");
    cr_assert_str_eq(bn_grad_fn_name(bn_log_softmax(x, 0)), "LogSoftmaxBackward");
    bn_no_grad_begin();
    cr_assert(!bn_requires_grad(bn_softmax(x, 1)), "no-grad mode records nothing");
    bn_no_grad_end();
    bn_scope_end();
}

/* ---- other dtypes ----------------------------------------------------------------------------- */
/* The gradient in dt matches the f32 one, from the same values, at dt's tolerance. */
static void check_dtype(bn_dtype dt, const grad_case *c)
{
    bn_scope_begin();
    bn_manual_seed(11);
    bn_tensor *base = bn_randn(c->leaf, BN_F32);
    bn_tensor *x32 = bn_clone(base), *xd = bn_to_dtype(base, dt);
    bn_set_requires_grad(x32, true);
    bn_set_requires_grad(xd, true);
    bn_tensor *y32 = apply(c, view_of(c->view, x32)), *yd = apply(c, view_of(c->view, xd));
    bn_tensor *w = bn_randn(bn_shape_of(y32), BN_F32);
    cr_assert_eq(bn_backward_ex(y32, (bn_backward_opts){.grad = w}), BN_OK);
    cr_assert_eq(bn_backward_ex(yd, (bn_backward_opts){.grad = bn_to_dtype(w, dt)}), BN_OK, "%s",
                 bn_error_message());
    bn_tensor *gd = bn_grad(xd);
    cr_assert_eq(bn_dtype_of(gd), dt, "%s: gradient dtype", c->what);
    bn_dtype loose = dt == BN_F64 ? BN_F32 : dt; /* the f32 reference limits the match */
    bnt_assert_close(bn_to_dtype(gd, BN_F32), bn_grad(x32), 4 * bnt_rtol(loose),
                     4 * bnt_atol(loose), c->what);
    bn_scope_end();
}

Test(grad_reduce, half_precision_gradients_follow_f32)
{
    const grad_case cases[] = {
        {"sum", OP_SUM, 1, .leaf = S2},         {"mean", OP_MEAN, BN_ALL, .leaf = S2},
        {"max", OP_MAX, 0, .leaf = S2},         {"var", OP_VAR, 1, false, 1, .leaf = S2},
        {"softmax", OP_SOFTMAX, 1, .leaf = S2}, {"log_softmax", OP_LOG_SOFTMAX, 0, .leaf = S2},
        {"cumsum", OP_CUMSUM, 1, .leaf = S2},   {"logsumexp", OP_LOGSUMEXP, 1, .leaf = S2},
    };
    for (int i = 0; i < COUNT(cases); i++) {
        check_dtype(BN_F16, &cases[i]);
        check_dtype(BN_BF16, &cases[i]);
        check_dtype(BN_F64, &cases[i]);
    }
}

/* ---- against PyTorch (f32) ------------------------------------------------------------------ */
typedef struct torch_case {
    const char *name;
    grad_case op;
} torch_case;

static const torch_case TORCH_CASES[] = {
    {"sum_d1", {.op = OP_SUM, .dim = 1}},
    {"sum_all_keepdim", {.op = OP_SUM, .dim = BN_ALL, .keepdim = true}},
    {"sum_dims_0_2_keepdim", {.op = OP_SUM_DIMS, .keepdim = true, .dims = {0, 2}, .ndims = 2}},
    {"mean_d0", {.op = OP_MEAN, .dim = 0}},
    {"mean_all", {.op = OP_MEAN, .dim = BN_ALL}},
    {"mean_dims_0_2", {.op = OP_MEAN_DIMS, .dims = {0, 2}, .ndims = 2}},
    {"prod_d1_zeros", {.op = OP_PROD, .dim = 1}},
    {"prod_d0_zeros", {.op = OP_PROD, .dim = 0, .keepdim = true}},
    {"prod_all_one_zero", {.op = OP_PROD, .dim = BN_ALL}},
    {"prod_all_two_zeros", {.op = OP_PROD, .dim = BN_ALL}},
    {"prod_all_no_zero", {.op = OP_PROD, .dim = BN_ALL}},
    {"max_all_ties", {.op = OP_MAX, .dim = BN_ALL}},
    {"min_all_ties", {.op = OP_MIN, .dim = BN_ALL}},
    {"max_d1_ties", {.op = OP_MAX, .dim = 1}},
    {"min_d1_ties", {.op = OP_MIN, .dim = 1, .keepdim = true}},
    {"max_d0_ties", {.op = OP_MAX, .dim = 0}},
    {"max_all_nan", {.op = OP_MAX, .dim = BN_ALL}},
    {"max_d1_nan", {.op = OP_MAX, .dim = 1}},
    {"var_d1", {.op = OP_VAR, .dim = 1, .correction = 1}},
    {"var_all_c0", {.op = OP_VAR, .dim = BN_ALL, .correction = 0}},
    {"std_d0", {.op = OP_STD, .dim = 0, .correction = 1}},
    {"std_all_keepdim", {.op = OP_STD, .dim = BN_ALL, .keepdim = true, .correction = 0}},
    {"logsumexp_d1_large", {.op = OP_LOGSUMEXP, .dim = 1}},
    {"logsumexp_all_large", {.op = OP_LOGSUMEXP, .dim = BN_ALL}},
    {"softmax_d1_large", {.op = OP_SOFTMAX, .dim = 1}},
    {"softmax_d0_large", {.op = OP_SOFTMAX, .dim = 0}},
    {"log_softmax_d1_large", {.op = OP_LOG_SOFTMAX, .dim = 1}},
    {"log_softmax_d0_large", {.op = OP_LOG_SOFTMAX, .dim = 0}},
    {"cumsum_d0", {.op = OP_CUMSUM, .dim = 0}},
    {"cumsum_d1", {.op = OP_CUMSUM, .dim = 1}},
};

static void check_torch_case(fx_file *f, const torch_case *c)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(fx_tensor(f, c->name, "x0"));
    cr_assert_eq(bn_set_requires_grad(x, true), BN_OK);
    bn_tensor *y = apply(&c->op, x);
    cr_assert_not_null(y, "%s: %s", c->name, bn_error_message());
    bn_tensor *w = bnt_keep(fx_tensor(f, c->name, "w"));
    cr_assert_eq(bn_backward_ex(y, (bn_backward_opts){.grad = w}), BN_OK, "%s: %s", c->name,
                 bn_error_message());
    bnt_assert_close(bn_grad(x), bnt_keep(fx_tensor(f, c->name, "g0")), bnt_rtol(BN_F32),
                     bnt_atol(BN_F32), c->name);
    bn_scope_end();
}

Test(grad_reduce, f32_gradients_match_pytorch)
{
    fx_file *f = fx_open("grad_reduce.txt");
    for (int i = 0; i < COUNT(TORCH_CASES); i++) check_torch_case(f, &TORCH_CASES[i]);
    fx_close(f);
    bnt_assert_no_error("torch cases");
}

/* ---- errors ------------------------------------------------------------------------------------ */
Test(grad_reduce, changing_a_saved_tensor_in_place_fails_backward_without_leaks)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_randn(BN_SHAPE(2, 3), BN_F32);
        bn_set_requires_grad(x, true);
        bn_tensor *y = bn_softmax(x, 1);
        bn_tensor *loss = bn_sum(bn_mul(y, bn_randn(BN_SHAPE(2, 3), BN_F32)), BN_ALL, false);
        cr_assert_eq(bn_fill_(bn_detach(y), 0.5), BN_OK);
        cr_assert_eq(bn_backward(loss), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_backward", "SoftmaxBackward", "[2, 3]", "in place", NULL);
        bn_tensor *z = bn_prod(x, 0, false);
        bn_no_grad_begin();
        cr_assert_eq(bn_fill_(x, 1.0), BN_OK);
        bn_no_grad_end();
        cr_assert_eq(bn_backward_ex(z, (bn_backward_opts){.grad = bn_ones_like(z)}), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_backward", "ProdBackward", "modified in place", NULL);
        bn_scope_end();
    });
}

Test(grad_reduce, bad_reduction_arguments_still_fail_cleanly_with_grad)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_randn(BN_SHAPE(2, 3), BN_F32);
        bn_set_requires_grad(x, true);
        cr_assert_null(bn_max(x, 2, false));
        bnt_assert_error(BN_ERR_ARG, "bn_max", "dim", "2", NULL);
        cr_assert_null(bn_softmax(x, -3));
        bnt_assert_error(BN_ERR_ARG, "bn_softmax", "dim", "-3", NULL);
        cr_assert_null(bn_sum_dims(x, (int[]){1, 1}, 2, false));
        bnt_assert_error(BN_ERR_ARG, "bn_sum_dims", "more than once", NULL);
        cr_assert_null(bn_var(NULL, 0, 1, false));
        bnt_assert_error(BN_ERR_ARG, "bn_var", "t", NULL);
        bn_tensor *i = bn_zeros(BN_SHAPE(2), BN_I64);
        cr_assert_eq(bn_set_requires_grad(i, true), BN_ERR_DTYPE);
        bnt_assert_error(BN_ERR_DTYPE, "bn_set_requires_grad", "i64", NULL);
        bn_tensor *y = bn_sum(x, 0, false);
        cr_assert_eq(bn_backward(y), BN_ERR_SHAPE);
        bnt_assert_error(BN_ERR_SHAPE, "bn_backward", "[3]", "one element", NULL);
        bn_scope_end();
    });
}
