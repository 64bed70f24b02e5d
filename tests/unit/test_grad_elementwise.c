/* tests/unit/test_grad_elementwise.c — gradients of the element-wise ops (unary math and
 * activations, rounding, clamp, binary arithmetic, pow, maximum/minimum, remainder, every
 * scalar variant, where, masked_fill) and of the copying conversions (clone, contiguous,
 * to_dtype): float64 finite differences on random inputs with broadcasting, non-contiguous
 * views, 0-d and empty tensors; second derivatives through create_graph; and float32 (plus one
 * bf16 and one f16) gradients from PyTorch at the kinks, in tests/data/grad_elementwise.txt
 * (made by scripts/gen_grad_elementwise.py). */
#include "bn_test.h"

#include "born/autograd.h"

#include <math.h>

static void fini(void) { bnt_release_kept(); }
TestSuite(grad_elementwise, .fini = fini);

typedef bn_tensor *(*unary_fn)(const bn_tensor *x);
typedef bn_tensor *(*binary_fn)(const bn_tensor *a, const bn_tensor *b);

/* ---- the ops with their parameters as one-argument functions -------------------------------- */
static bn_tensor *leaky(const bn_tensor *x) { return bn_leaky_relu(x, 0.1); }
static bn_tensor *elu15(const bn_tensor *x) { return bn_elu(x, 1.5); }
static bn_tensor *softplus2(const bn_tensor *x) { return bn_softplus(x, 2.0, 3.0); }
static bn_tensor *clamp_both(const bn_tensor *x) { return bn_clamp(x, -0.5, 0.5); }
static bn_tensor *clamp_lo(const bn_tensor *x) { return bn_clamp_min(x, 0.3); }
static bn_tensor *clamp_hi(const bn_tensor *x) { return bn_clamp_max(x, -0.3); }
static bn_tensor *add_s(const bn_tensor *x) { return bn_add_scalar(x, 1.5); }
static bn_tensor *sub_s(const bn_tensor *x) { return bn_sub_scalar(x, 1.5); }
static bn_tensor *mul_s(const bn_tensor *x) { return bn_mul_scalar(x, -2.5); }
static bn_tensor *div_s(const bn_tensor *x) { return bn_div_scalar(x, 0.7); }
static bn_tensor *pow_s2(const bn_tensor *x) { return bn_pow_scalar(x, 2.0); }
static bn_tensor *pow_s3(const bn_tensor *x) { return bn_pow_scalar(x, 3.0); }
static bn_tensor *pow_frac(const bn_tensor *x) { return bn_pow_scalar(x, -1.5); }
static bn_tensor *rpow_s(const bn_tensor *x) { return bn_rpow_scalar(2.5, x); }
static bn_tensor *max_s(const bn_tensor *x) { return bn_maximum_scalar(x, 0.2); }
static bn_tensor *min_s(const bn_tensor *x) { return bn_minimum_scalar(x, 0.2); }
static bn_tensor *rem_s(const bn_tensor *x) { return bn_remainder_scalar(x, 0.7); }
static bn_tensor *x_sigmoid(const bn_tensor *x) { return bn_mul(x, bn_sigmoid(x)); }

typedef struct unary_case {
    const char *name;
    unary_fn op;
    double lo, hi; /* input range, away from kinks and poles */
} unary_case;

static const unary_case unary_cases[] = {
    {"neg", bn_neg, -2, 2},
    {"abs", bn_abs, -2, 2},
    {"exp", bn_exp, -2, 2},
    {"log", bn_log, 0.5, 3},
    {"log1p", bn_log1p, -0.5, 2},
    {"sqrt", bn_sqrt, 0.5, 3},
    {"rsqrt", bn_rsqrt, 0.5, 3},
    {"sin", bn_sin, -3, 3},
    {"cos", bn_cos, -3, 3},
    {"tanh", bn_tanh, -2, 2},
    {"sigmoid", bn_sigmoid, -3, 3},
    {"relu", bn_relu, -2, 2},
    {"leaky_relu", leaky, -2, 2},
    {"elu", elu15, -2, 2},
    {"gelu", bn_gelu, -3, 3},
    {"gelu_tanh", bn_gelu_tanh, -3, 3},
    {"silu", bn_silu, -3, 3},
    {"softplus", softplus2, -3, 3},
    {"erf", bn_erf, -2, 2},
    {"floor", bn_floor, -3, 3},
    {"ceil", bn_ceil, -3, 3},
    {"round", bn_round, -3, 3},
    {"sign", bn_sign, -2, 2},
    {"clamp", clamp_both, -1, 1},
    {"clamp_min", clamp_lo, -1, 1},
    {"clamp_max", clamp_hi, -1, 1},
    {"add_scalar", add_s, -2, 2},
    {"sub_scalar", sub_s, -2, 2},
    {"mul_scalar", mul_s, -2, 2},
    {"div_scalar", div_s, -2, 2},
    {"pow_scalar 2", pow_s2, -2, 2},
    {"pow_scalar 3", pow_s3, -2, 2},
    {"pow_scalar -1.5", pow_frac, 0.5, 2},
    {"rpow_scalar", rpow_s, -2, 2},
    {"maximum_scalar", max_s, -1, 1},
    {"minimum_scalar", min_s, -1, 1},
    {"remainder_scalar", rem_s, -3, 3},
};
#define N_UNARY (int)(sizeof unary_cases / sizeof unary_cases[0])

/* ---- unary: finite differences ------------------------------------------------------------- */
static bn_tensor *f_unary(void *ctx, bn_tensor *const *x, int n)
{
    (void)n;
    return ((const unary_case *)ctx)->op(x[0]);
}

/* the op on a transposed view of a [4, 3] leaf */
static bn_tensor *f_unary_transposed(void *ctx, bn_tensor *const *x, int n)
{
    (void)n;
    return ((const unary_case *)ctx)->op(bn_transpose(x[0], 0, 1));
}

/* the op on every other column of a [3, 8] leaf (a strided slice) */
static bn_tensor *f_unary_strided(void *ctx, bn_tensor *const *x, int n)
{
    (void)n;
    return ((const unary_case *)ctx)->op(bn_slice(x[0], 1, 1, 8, 2));
}

static void check_unary(const unary_case *c, bnt_fn fn, bn_shape s, const char *how)
{
    char what[96];
    snprintf(what, sizeof what, "%s (%s)", c->name, how);
    bn_tensor *x = bnt_param(s, c->lo, c->hi);
    bnt_gradcheck(what, fn, (void *)c, &x, 1);
    bn_release(x);
}

Test(grad_elementwise, unary_ops_match_finite_differences)
{
    for (int i = 0; i < N_UNARY; i++)
        check_unary(&unary_cases[i], f_unary, BN_SHAPE(3, 4), "contiguous");
}

Test(grad_elementwise, unary_ops_on_non_contiguous_views)
{
    for (int i = 0; i < N_UNARY; i++) {
        check_unary(&unary_cases[i], f_unary_transposed, BN_SHAPE(4, 3), "transposed");
        check_unary(&unary_cases[i], f_unary_strided, BN_SHAPE(3, 8), "strided slice");
    }
}

Test(grad_elementwise, unary_ops_on_0d_tensors)
{
    for (int i = 0; i < N_UNARY; i++) check_unary(&unary_cases[i], f_unary, BN_SCALAR, "0-d");
}

Test(grad_elementwise, empty_tensors_get_empty_gradients)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(0, 3), -1, 1));
        bn_tensor *y = bn_sum(bn_mul(bn_tanh(x), bn_exp(x)), BN_ALL, false);
        cr_assert_eq(bn_backward(y), BN_OK, "%s", bn_error_message());
        bn_tensor *g = bn_grad(x);
        cr_assert_not_null(g);
        cr_assert(bn_shape_equal(bn_shape_of(g), BN_SHAPE(0, 3)));
        bn_scope_end();
        bnt_release_kept();
    });
}

/* ---- binary: finite differences ------------------------------------------------------------ */
typedef struct binary_case {
    const char *name;
    binary_fn op;
    double alo, ahi, blo, bhi;
} binary_case;

static const binary_case binary_cases[] = {
    {"add", bn_add, -2, 2, -2, 2},         {"sub", bn_sub, -2, 2, -2, 2},
    {"mul", bn_mul, -2, 2, -2, 2},         {"div", bn_div, -2, 2, 0.5, 2},
    {"pow", bn_pow, 0.5, 2, -2, 2},        {"maximum", bn_maximum, -2, 2, -2, 2},
    {"minimum", bn_minimum, -2, 2, -2, 2}, {"remainder", bn_remainder, -3, 3, 0.5, 2},
};
#define N_BINARY (int)(sizeof binary_cases / sizeof binary_cases[0])

static bn_tensor *f_binary(void *ctx, bn_tensor *const *x, int n)
{
    (void)n;
    return ((const binary_case *)ctx)->op(x[0], x[1]);
}

/* a transposed ([4, 3] leaf), b expanded from [3, 1] */
static bn_tensor *f_binary_views(void *ctx, bn_tensor *const *x, int n)
{
    (void)n;
    bn_tensor *a = bn_transpose(x[0], 0, 1);
    bn_tensor *b = bn_expand(x[1], BN_SHAPE(3, 4));
    return ((const binary_case *)ctx)->op(a, b);
}

static void check_binary(const binary_case *c, bnt_fn fn, bn_shape sa, bn_shape sb, const char *how)
{
    char what[96];
    snprintf(what, sizeof what, "%s (%s)", c->name, how);
    bn_tensor *in[2] = {bnt_param(sa, c->alo, c->ahi), bnt_param(sb, c->blo, c->bhi)};
    bnt_gradcheck(what, fn, (void *)c, in, 2);
    bn_release(in[0]);
    bn_release(in[1]);
}

Test(grad_elementwise, binary_ops_broadcast_and_sum_back)
{
    for (int i = 0; i < N_BINARY; i++) {
        const binary_case *c = &binary_cases[i];
        check_binary(c, f_binary, BN_SHAPE(3, 1), BN_SHAPE(1, 4), "[3, 1] with [1, 4]");
        check_binary(c, f_binary, BN_SHAPE(1), BN_SHAPE(3, 4), "[1] with [3, 4]");
        check_binary(c, f_binary, BN_SHAPE(2, 3), BN_SCALAR, "[2, 3] with 0-d");
    }
}

Test(grad_elementwise, binary_ops_on_non_contiguous_views)
{
    for (int i = 0; i < N_BINARY; i++)
        check_binary(&binary_cases[i], f_binary_views, BN_SHAPE(4, 3), BN_SHAPE(3, 1), "views");
}

/* only one operand requires grad: the other gets nothing, the first is still right */
Test(grad_elementwise, one_operand_without_grad)
{
    bn_scope_begin();
    for (int i = 0; i < N_BINARY; i++) {
        const binary_case *c = &binary_cases[i];
        bn_tensor *a = bnt_keep(bnt_param(BN_SHAPE(3), c->alo, c->ahi));
        bn_tensor *b = bnt_keep(bnt_param(BN_SHAPE(3), c->blo, c->bhi));
        bn_tensor *bc = bn_detach(b);
        bn_tensor *y = bn_sum(c->op(a, bc), BN_ALL, false);
        cr_assert_eq(bn_backward(y), BN_OK, "%s: %s", c->name, bn_error_message());
        bn_tensor *ga = bn_grad(a);
        cr_assert_not_null(ga, "%s", c->name);
        cr_assert_null(bn_grad(b), "%s", c->name);
        bnt_assert_no_error(c->name);
    }
    bn_scope_end();
}

/* ---- where, masked_fill -------------------------------------------------------------------- */
static bn_tensor *f_where(void *ctx, bn_tensor *const *x, int n)
{
    (void)n;
    return bn_where((const bn_tensor *)ctx, bn_transpose(x[0], 0, 1), x[1]);
}

static bn_tensor *f_masked_fill(void *ctx, bn_tensor *const *x, int n)
{
    (void)n;
    return bn_masked_fill(bn_transpose(x[0], 0, 1), (const bn_tensor *)ctx, -3.0);
}

Test(grad_elementwise, where_and_masked_fill_route_the_gradient)
{
    bn_scope_begin();
    bool cv[3] = {true, false, true}, mv[4] = {false, true, true, false};
    bn_tensor *cond = bn_from_data(cv, BN_SHAPE(3, 1), BN_BOOL);
    bn_tensor *mask = bn_from_data(mv, BN_SHAPE(4), BN_BOOL);
    bn_tensor *in[2] = {bnt_keep(bnt_param(BN_SHAPE(4, 3), -1, 1)),
                        bnt_keep(bnt_param(BN_SHAPE(4), -1, 1))};
    bnt_gradcheck("where (transposed a, [4] b, [3, 1] cond)", f_where, cond, in, 2);
    bnt_gradcheck("masked_fill (transposed x, [4] mask)", f_masked_fill, mask, in, 1);
    bn_scope_end();
}

/* ---- copies -------------------------------------------------------------------------------- */
static bn_tensor *f_copies(void *ctx, bn_tensor *const *x, int n)
{
    (void)ctx, (void)n;
    bn_tensor *t = bn_transpose(x[0], 0, 1);
    bn_tensor *c = bn_contiguous(t);                 /* copies */
    bn_tensor *d = bn_to_dtype(bn_clone(c), BN_F64); /* same dtype: x itself */
    return bn_mul(bn_contiguous(d), c);
}

Test(grad_elementwise, clone_contiguous_and_to_dtype_pass_the_gradient)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(4, 3), -1, 1));
    bnt_gradcheck("clone / contiguous / to_dtype", f_copies, NULL, &x, 1);
    /* names; ops that return their input record nothing */
    bn_tensor *t = bn_transpose(x, 0, 1);
    cr_assert_str_eq(bn_grad_fn_name(bn_contiguous(t)), "CloneBackward");
    cr_assert_str_eq(bn_grad_fn_name(bn_clone(x)), "CloneBackward");
    cr_assert_str_eq(bn_grad_fn_name(bn_to_dtype(x, BN_F32)), "ToCopyBackward");
    cr_assert(bn_is_leaf(bn_contiguous(x)) && bn_is_leaf(bn_to_dtype(x, BN_F64)));
    cr_assert(bn_is_leaf(bn_tensor_to(x, bn_cpu())));
    /* f64 -> f32 -> f64: the gradient comes back as f64 */
    bn_tensor *y = bn_sum(bn_mul_scalar(bn_to_dtype(x, BN_F32), 3.0), BN_ALL, false);
    cr_assert_eq(bn_dtype_of(y), BN_F32);
    cr_assert_eq(bn_backward(y), BN_OK, "%s", bn_error_message());
    bn_tensor *g = bn_grad(x);
    cr_assert_eq(bn_dtype_of(g), BN_F64);
    bnt_assert_close(g, bn_full(BN_SHAPE(4, 3), 3.0, BN_F64), 0, 0, "3 everywhere");
    bn_scope_end();
}

Test(grad_elementwise, integer_and_bool_results_record_nothing)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(3), -1, 1));
    bn_tensor *none[] = {bn_gt(x, x),          bn_eq_scalar(x, 0.5),   bn_logical_not(x),
                         bn_logical_and(x, x), bn_to_dtype(x, BN_I32), bn_to_dtype(x, BN_BOOL)};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        cr_assert_not_null(none[i], "%zu: %s", i, bn_error_message());
        cr_assert(!bn_requires_grad(none[i]) && bn_is_leaf(none[i]), "result %zu", i);
    }
    /* an integer tensor does not require grad: the float result of an op on it is a leaf */
    bn_tensor *e = bn_exp(bn_arange(0, 3, 1, BN_I64));
    cr_assert(bn_is_leaf(e) && !bn_requires_grad(e));
    bnt_assert_no_error("no-grad results");
    bn_scope_end();
}

/* ---- names and no-grad --------------------------------------------------------------------- */
Test(grad_elementwise, grad_fn_names)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(2), 0.5, 1));
    struct {
        bn_tensor *t;
        const char *name;
    } want[] = {
        {bn_exp(x), "ExpBackward"},
        {bn_relu(x), "ReluBackward"},
        {bn_clamp(x, 0, 1), "ClampBackward"},
        {bn_pow(x, x), "PowBackward"},
        {bn_rpow_scalar(2, x), "PowBackward"},
        {bn_maximum(x, x), "MaximumBackward"},
        {bn_remainder(x, x), "RemainderBackward"},
        {bn_floor(x), "FloorBackward"},
        {bn_masked_fill(x, bn_gt_scalar(x, 0.7), 0), "MaskedFillBackward"},
        {bn_where(bn_gt_scalar(x, 0.7), x, x), "WhereBackward"},
        {bn_mul_scalar(x, 2), "MulBackward"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_str_eq(bn_grad_fn_name(want[i].t), want[i].name);
    bn_no_grad_begin();
    cr_assert(bn_is_leaf(bn_tanh(x)) && bn_is_leaf(bn_add_scalar(x, 1)));
    bn_no_grad_end();
    bn_scope_end();
}

/* ---- second derivatives -------------------------------------------------------------------- */
/* d/dx sum(op(x)) with create_graph: f'(x) element-wise, itself differentiable. */
static bn_tensor *first_derivative(unary_fn op, bn_tensor *x)
{
    bn_tensor *y = bn_sum(op(x), BN_ALL, false);
    bn_tensor *g[1] = {NULL};
    bn_status st =
        bn_autograd_grad(&y, NULL, 1, &x, 1, g, (bn_backward_opts){.create_graph = true});
    cr_assert_eq(st, BN_OK, "%s", bn_error_message());
    return g[0]; /* owned by the open scope */
}

/* f'' from create_graph against central differences of f' (computed by autograd). An f' that
 * does not depend on x (neg, the scalar arithmetic, relu, …) does not require grad. */
static void check_second_derivative(const char *what, unary_fn op, double lo, double hi)
{
    const double eps = 1e-5;
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(7), lo, hi));
    bn_tensor *xp = bn_detach(bn_add_scalar(x, eps));
    bn_tensor *xm = bn_detach(bn_sub_scalar(x, eps));
    bn_set_requires_grad(xp, true);
    bn_set_requires_grad(xm, true);
    bn_tensor *numeric =
        bn_div_scalar(bn_sub(first_derivative(op, xp), first_derivative(op, xm)), 2 * eps);
    bn_tensor *d1 = first_derivative(op, x);
    bn_tensor *d2 = NULL;
    if (bn_requires_grad(d1)) {
        bn_tensor *s = bn_sum(d1, BN_ALL, false);
        bn_tensor *g2[1] = {NULL};
        cr_assert_eq(bn_autograd_grad(&s, NULL, 1, &x, 1, g2, (bn_backward_opts){0}), BN_OK,
                     "%s: %s", what, bn_error_message());
        d2 = g2[0] ? g2[0] : bn_zeros_like(x);
    } else {
        d2 = bn_zeros_like(x);
    }
    bnt_assert_close(d2, bn_detach(numeric), 1e-6, 1e-6, what);
    bn_scope_end();
}

Test(grad_elementwise, second_derivatives_through_create_graph)
{
    check_second_derivative("tanh''", bn_tanh, -2, 2);
    check_second_derivative("(x sigmoid(x))''", x_sigmoid, -3, 3);
    for (int i = 0; i < N_UNARY; i++) {
        const unary_case *c = &unary_cases[i];
        check_second_derivative(c->name, c->op, c->lo, c->hi);
    }
}

/* ---- PyTorch fixtures ---------------------------------------------------------------------- */
static bn_tensor *ctx_t(void *ctx) { return (bn_tensor *)ctx; }
static bn_tensor *p_relu(void *c, bn_tensor *const *x, int n) { return bn_relu(x[0]); }
static bn_tensor *p_abs(void *c, bn_tensor *const *x, int n) { return bn_abs(x[0]); }
static bn_tensor *p_leaky(void *c, bn_tensor *const *x, int n) { return leaky(x[0]); }
static bn_tensor *p_elu(void *c, bn_tensor *const *x, int n) { return elu15(x[0]); }
static bn_tensor *p_clamp(void *c, bn_tensor *const *x, int n) { return bn_clamp(x[0], -0.5, 2); }
static bn_tensor *p_clamp_min(void *c, bn_tensor *const *x, int n) { return bn_clamp_min(x[0], 0); }
static bn_tensor *p_clamp_max(void *c, bn_tensor *const *x, int n) { return bn_clamp_max(x[0], 1); }
static bn_tensor *p_clamp_nan(void *c, bn_tensor *const *x, int n) { return bn_clamp(x[0], -1, 1); }
static bn_tensor *p_floor(void *c, bn_tensor *const *x, int n) { return bn_floor(x[0]); }
static bn_tensor *p_sign(void *c, bn_tensor *const *x, int n) { return bn_sign(x[0]); }
static bn_tensor *p_tanh(void *c, bn_tensor *const *x, int n) { return bn_tanh(x[0]); }
static bn_tensor *p_sigmoid(void *c, bn_tensor *const *x, int n) { return bn_sigmoid(x[0]); }
static bn_tensor *p_gelu(void *c, bn_tensor *const *x, int n) { return bn_gelu(x[0]); }
static bn_tensor *p_gelu_tanh(void *c, bn_tensor *const *x, int n) { return bn_gelu_tanh(x[0]); }
static bn_tensor *p_silu(void *c, bn_tensor *const *x, int n) { return bn_silu(x[0]); }
static bn_tensor *p_softplus(void *c, bn_tensor *const *x, int n) { return softplus2(x[0]); }
static bn_tensor *p_erf(void *c, bn_tensor *const *x, int n) { return bn_erf(x[0]); }
static bn_tensor *p_rsqrt(void *c, bn_tensor *const *x, int n) { return bn_rsqrt(x[0]); }
static bn_tensor *p_log1p(void *c, bn_tensor *const *x, int n) { return bn_log1p(x[0]); }
static bn_tensor *p_maximum(void *c, bn_tensor *const *x, int n) { return bn_maximum(x[0], x[1]); }
static bn_tensor *p_minimum(void *c, bn_tensor *const *x, int n) { return bn_minimum(x[0], x[1]); }
static bn_tensor *p_pow(void *c, bn_tensor *const *x, int n) { return bn_pow(x[0], x[1]); }
static bn_tensor *p_pow3(void *c, bn_tensor *const *x, int n) { return bn_pow_scalar(x[0], 3); }
static bn_tensor *p_pow0(void *c, bn_tensor *const *x, int n) { return bn_pow_scalar(x[0], 0); }
static bn_tensor *p_rpow0(void *c, bn_tensor *const *x, int n) { return bn_rpow_scalar(0, x[0]); }
static bn_tensor *p_rpow(void *c, bn_tensor *const *x, int n) { return bn_rpow_scalar(2.5, x[0]); }
static bn_tensor *p_rem(void *c, bn_tensor *const *x, int n) { return bn_remainder(x[0], x[1]); }
static bn_tensor *p_max_s(void *c, bn_tensor *const *x, int n)
{
    return bn_maximum_scalar(x[0], 0);
}
static bn_tensor *p_min_s(void *c, bn_tensor *const *x, int n)
{
    return bn_minimum_scalar(x[0], 0);
}
static bn_tensor *p_where(void *c, bn_tensor *const *x, int n)
{
    return bn_where(ctx_t(c), x[0], x[1]);
}
static bn_tensor *p_masked(void *c, bn_tensor *const *x, int n)
{
    return bn_masked_fill(x[0], ctx_t(c), 7.0);
}
static bn_tensor *p_mul(void *c, bn_tensor *const *x, int n) { return bn_mul(x[0], x[1]); }
static bn_tensor *p_to_f64(void *c, bn_tensor *const *x, int n)
{
    return bn_mul_scalar(bn_to_dtype(x[0], BN_F64), 3);
}

typedef struct torch_case {
    const char *name;
    bnt_fn fn;
    int ninputs;
    const char *extra; /* a bool tensor of the case handed to fn as ctx, or NULL */
} torch_case;

static const torch_case torch_cases[] = {
    {"relu_at_zero", p_relu, 1, NULL},
    {"abs_at_zero", p_abs, 1, NULL},
    {"leaky_relu_at_zero", p_leaky, 1, NULL},
    {"elu_at_zero", p_elu, 1, NULL},
    {"clamp_at_bounds", p_clamp, 1, NULL},
    {"clamp_min_at_bound", p_clamp_min, 1, NULL},
    {"clamp_max_at_bound", p_clamp_max, 1, NULL},
    {"floor_is_flat", p_floor, 1, NULL},
    {"sign_is_flat", p_sign, 1, NULL},
    {"tanh", p_tanh, 1, NULL},
    {"sigmoid", p_sigmoid, 1, NULL},
    {"gelu", p_gelu, 1, NULL},
    {"gelu_tanh", p_gelu_tanh, 1, NULL},
    {"silu", p_silu, 1, NULL},
    {"softplus", p_softplus, 1, NULL},
    {"erf", p_erf, 1, NULL},
    {"rsqrt", p_rsqrt, 1, NULL},
    {"log1p", p_log1p, 1, NULL},
    {"maximum_ties", p_maximum, 2, NULL},
    {"minimum_ties", p_minimum, 2, NULL},
    {"pow_zero_base_and_exponent", p_pow, 2, NULL},
    {"pow_scalar_exponent", p_pow3, 1, NULL},
    {"pow_scalar_zero_exponent", p_pow0, 1, NULL},
    {"rpow_zero_base", p_rpow0, 1, NULL},
    {"rpow", p_rpow, 1, NULL},
    {"remainder_broadcast", p_rem, 2, NULL},
    {"maximum_scalar_ties", p_max_s, 1, NULL},
    {"minimum_scalar_ties", p_min_s, 1, NULL},
    {"maximum_nan", p_maximum, 2, NULL},
    {"relu_nan", p_relu, 1, NULL},
    {"clamp_nan", p_clamp_nan, 1, NULL},
    {"elu_nan", p_elu, 1, NULL},
    {"where_broadcast", p_where, 2, "cond"},
    {"masked_fill_broadcast", p_masked, 1, "mask"},
    {"sigmoid_bf16", p_sigmoid, 1, NULL},
    {"mul_f16", p_mul, 2, NULL},
    {"to_f64_from_f32", p_to_f64, 1, NULL},
};

/* Runs one fixture case: the output and the gradients of its float inputs against PyTorch. */
static void run_torch_case(fx_file *f, const torch_case *c)
{
    static const char *const in_names[2] = {"a", "b"}, *const grad_names[2] = {"ga", "gb"};
    bn_scope_begin();
    bn_tensor *in[2] = {NULL, NULL};
    for (int i = 0; i < c->ninputs; i++) {
        in[i] = bnt_keep(fx_tensor(f, c->name, in_names[i]));
        cr_assert_eq(bn_set_requires_grad(in[i], true), BN_OK);
    }
    void *ctx = c->extra ? bnt_keep(fx_tensor(f, c->name, c->extra)) : NULL;
    bn_tensor *out = c->fn(ctx, in, c->ninputs);
    cr_assert_not_null(out, "%s: %s", c->name, bn_error_message());
    bn_tensor *want = bnt_keep(fx_tensor(f, c->name, "out"));
    double rtol = bnt_rtol(bn_dtype_of(want)), atol = bnt_atol(bn_dtype_of(want));
    bnt_assert_close(out, want, rtol, atol, c->name);
    bn_tensor *g = bnt_keep(fx_tensor(f, c->name, "g"));
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = g}), BN_OK, "%s: %s", c->name,
                 bn_error_message());
    for (int i = 0; i < c->ninputs; i++) {
        bn_tensor *got = bn_grad(in[i]);
        bn_tensor *exp = bnt_keep(fx_tensor(f, c->name, grad_names[i]));
        char what[96];
        snprintf(what, sizeof what, "%s: %s", c->name, grad_names[i]);
        cr_assert_not_null(got, "%s: no gradient", what);
        bnt_assert_close(got, exp, 4 * rtol, 4 * atol, what);
    }
    bn_scope_end();
}

Test(grad_elementwise, gradients_match_pytorch_at_kinks_and_ties)
{
    fx_file *f = fx_open("grad_elementwise.txt");
    for (size_t i = 0; i < sizeof torch_cases / sizeof torch_cases[0]; i++)
        run_torch_case(f, &torch_cases[i]);
    fx_close(f);
}

/* ---- bad input ----------------------------------------------------------------------------- */
Test(grad_elementwise, saved_tensors_modified_in_place_are_caught)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(3), -1, 1));
        bn_tensor *y = bn_exp(x); /* ExpBackward keeps (a view of) y */
        bn_tensor *loss = bn_sum(y, BN_ALL, false);
        bn_no_grad_begin();
        cr_assert_eq(bn_fill_(y, 0), BN_OK);
        bn_no_grad_end();
        cr_assert_eq(bn_backward(loss), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "ExpBackward", "modified in place", NULL);
        bn_tensor *b = bnt_keep(bnt_param(BN_SHAPE(3), 1, 2));
        bn_tensor *p = bn_sum(bn_pow(x, b), BN_ALL, false);
        bn_no_grad_begin();
        cr_assert_eq(bn_fill_(b, 2), BN_OK);
        bn_no_grad_end();
        cr_assert_eq(bn_backward(p), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "PowBackward", "modified in place", NULL);
        bn_scope_end();
        bnt_release_kept();
    });
}

Test(grad_elementwise, bad_inputs_fail_without_recording_or_leaking)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(2, 3), -1, 1));
        cr_assert_null(bn_add(x, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_add", "b", NULL);
        cr_assert_null(bn_mul(x, bnt_keep(bnt_param(BN_SHAPE(4), -1, 1))));
        bnt_assert_error(BN_ERR_SHAPE, "bn_mul", "[2, 3]", "[4]", NULL);
        cr_assert_null(bn_where(x, x, x));
        bnt_assert_error(BN_ERR_DTYPE, "bn_where", "cond", "bool", NULL);
        cr_assert_null(bn_masked_fill(x, NULL, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_masked_fill", "mask", NULL);
        cr_assert_null(bn_softplus(x, 0, 20));
        bnt_assert_error(BN_ERR_ARG, "bn_softplus", "beta", NULL);
        cr_assert_null(bn_to_dtype(x, (bn_dtype)99));
        bnt_assert_error(BN_ERR_DTYPE, "bn_to_dtype", "99", NULL);
        cr_assert_null(bn_exp(NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_exp", "x", NULL);
        bn_scope_end();
        bnt_release_kept();
    });
}

Test(grad_elementwise, forward_and_backward_of_every_op_leak_nothing)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(2, 3), 0.5, 2));
        bn_tensor *b = bnt_keep(bnt_param(BN_SHAPE(3), 0.5, 2));
        bn_tensor *acc = bn_zeros(BN_SHAPE(2, 3), BN_F64);
        for (int i = 0; i < N_UNARY; i++) acc = bn_add(acc, unary_cases[i].op(x));
        for (int i = 0; i < N_BINARY; i++) acc = bn_add(acc, binary_cases[i].op(x, b));
        acc = bn_where(bn_gt_scalar(x, 1), acc, bn_clone(x));
        bn_tensor *loss = bn_sum(acc, BN_ALL, false);
        cr_assert_eq(bn_backward_ex(loss, (bn_backward_opts){.retain_graph = true}), BN_OK, "%s",
                     bn_error_message());
        bn_tensor *g[2] = {NULL, NULL};
        bn_tensor *const in[2] = {x, b};
        cr_assert_eq(bn_autograd_grad(&loss, NULL, 1, in, 2, g,
                                      (bn_backward_opts){.create_graph = true}),
                     BN_OK, "%s", bn_error_message());
        bn_tensor *second =
            bn_sum(bn_add(bn_sum(g[0], BN_ALL, false), bn_sum(g[1], BN_ALL, false)), BN_ALL, false);
        cr_assert_eq(bn_backward(second), BN_OK, "%s", bn_error_message());
        bn_scope_end();
        bnt_release_kept();
    });
}

/* ---- fused activation gradients ------------------------------------------------------------ */
/* gelu, gelu_tanh and silu backward in one pass (BN_BINARY_*_GRAD) against the same rule composed
 * of ops, which create_graph selects; f32 and bf16 (computed in f32, rounded once) */
Test(grad_elementwise, fused_activation_gradients_equal_the_composed_rules)
{
    static const unary_fn ops[] = {bn_gelu, bn_gelu_tanh, bn_silu};
    static const char *const names[] = {"gelu", "gelu_tanh", "silu"};
    BNT_ASSERT_NO_LEAK({
        for (int dt = 0; dt < 2; dt++) {
            for (int k = 0; k < 3; k++) {
                bn_scope_begin();
                bn_dtype d = dt ? BN_BF16 : BN_F32;
                bn_tensor *x = bn_to_dtype(bn_mul_scalar(bn_randn(BN_SHAPE(7, 301), BN_F32), 3), d);
                bn_tensor *g = bn_to_dtype(bn_randn(BN_SHAPE(7, 301), BN_F32), d);
                cr_assert_eq(bn_set_requires_grad(x, true), BN_OK);
                bn_tensor *y = ops[k](x), *fused = NULL, *composed = NULL;
                cr_assert_eq(bn_autograd_grad(&y, &g, 1, &x, 1, &fused,
                                              (bn_backward_opts){.retain_graph = true}),
                             BN_OK, "%s", bn_error_message());
                cr_assert_eq(bn_autograd_grad(&y, &g, 1, &x, 1, &composed,
                                              (bn_backward_opts){.create_graph = true}),
                             BN_OK, "%s", bn_error_message());
                char what[64];
                snprintf(what, sizeof what, "%s %s fused vs composed", names[k], bn_dtype_name(d));
                /* the composed rule rounds every intermediate (to bf16 there), the fused one its result */
                bnt_assert_close(fused, bn_detach(composed), dt ? 3e-2 : 1e-5, dt ? 3e-2 : 1e-6,
                                 what);
                bn_scope_end();
            }
        }
    });
}
