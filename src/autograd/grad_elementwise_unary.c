/* autograd/grad_elementwise_unary.c — derivative rules for the element-wise ops on one tensor:
 * math (exp, log, …), activations (relu, gelu, …), rounding and sign (zero gradient, like torch)
 * and clamp; ops/elementwise_unary.c calls bn__grad_unary after computing its result.
 *
 * Conventions at kinks follow PyTorch 1.13: relu'(0) = 0, abs'(0) = 0, leaky_relu'(0) = slope,
 * elu'(0) = alpha, clamp passes the gradient where lo <= x <= hi (bounds included, NaN gets 0).
 * Every rule uses differentiable public ops, so create_graph gives higher derivatives. A rule
 * that needs the forward's output (exp, sqrt, rsqrt, tanh, sigmoid) reads a detached view of it;
 * while the rule is itself recorded (create_graph) it recomputes the output from the saved
 * input instead, so the second derivative sees how the output depends on the input.
 *
 * Node state: saved 0 the input x, 1 the detached output (when the rule needs it); i[0] the
 * bn_unary_op; f[0] alpha (slope, elu's alpha, softplus's beta), f[1] softplus's threshold,
 * f[2]/f[3] clamp's lo/hi with i[1]/i[2] saying whether each is present. */
#include "autograd/grad_elementwise.h"

#include "born/autograd.h"
#include "born/ops.h"

#include <math.h>

#define SQRT_2 1.41421356237309504880
#define SQRT_2_OVER_PI 0.79788456080286535588 /* sqrt(2 / pi) */
#define INV_SQRT_2PI 0.39894228040143267794   /* 1 / sqrt(2 pi) */
#define TWO_OVER_SQRT_PI 1.12837916709551257390
#define GELU_TANH_C 0.044715

static bn_tensor *saved_x(bn_node *n) { return bn__node_saved(n, 0); }

/* The forward's output: the saved detached view, or recomputed from x while recorded. */
static bn_tensor *output(bn_node *n)
{
    if (!bn_grad_enabled()) return bn__node_saved(n, 1);
    bn_tensor *x = saved_x(n);
    switch ((bn_unary_op)n->i[0]) {
    case BN_UNARY_EXP: return bn_exp(x);
    case BN_UNARY_SQRT: return bn_sqrt(x);
    case BN_UNARY_RSQRT: return bn_rsqrt(x);
    case BN_UNARY_TANH: return bn_tanh(x);
    default: return bn_sigmoid(x);
    }
}

/* 1 - t */
static bn_tensor *one_minus(const bn_tensor *t) { return bn_add_scalar(bn_neg(t), 1.0); }

/* ---- math ----------------------------------------------------------------------------------- */
/* d(-x) = -g;  d|x| = g * sign(x) (0 at 0) */
static bn_status neg_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    (void)n;
    grads[0] = bn_neg(g);
    return BN_OK;
}

static bn_status abs_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_mul(g, bn_sign(saved_x(n)));
    return BN_OK;
}

/* d exp(x) = g * exp(x) */
static bn_status exp_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_mul(g, output(n));
    return BN_OK;
}

/* d log(x) = g / x;  d log1p(x) = g / (1 + x) */
static bn_status log_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_div(g, saved_x(n));
    return BN_OK;
}

static bn_status log1p_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_div(g, bn_add_scalar(saved_x(n), 1.0));
    return BN_OK;
}

/* d sqrt(x) = g / (2 sqrt(x));  d x^-1/2 = -g/2 * (x^-1/2)^3 */
static bn_status sqrt_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_div(g, bn_mul_scalar(output(n), 2.0));
    return BN_OK;
}

static bn_status rsqrt_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_mul(bn_mul_scalar(g, -0.5), bn_pow_scalar(output(n), 3.0));
    return BN_OK;
}

/* d sin(x) = g cos(x);  d cos(x) = -g sin(x) */
static bn_status sin_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_mul(g, bn_cos(saved_x(n)));
    return BN_OK;
}

static bn_status cos_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_neg(bn_mul(g, bn_sin(saved_x(n))));
    return BN_OK;
}

/* d tanh = g (1 - y^2);  d sigmoid = g y (1 - y) */
static bn_status tanh_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *y = output(n);
    grads[0] = bn_mul(g, one_minus(bn_mul(y, y)));
    return BN_OK;
}

static bn_status sigmoid_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *y = output(n);
    grads[0] = bn_mul(g, bn_mul(y, one_minus(y)));
    return BN_OK;
}

/* d erf(x) = g * 2/sqrt(pi) * exp(-x^2) */
static bn_status erf_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = saved_x(n);
    bn_tensor *d = bn_mul_scalar(bn_exp(bn_neg(bn_mul(x, x))), TWO_OVER_SQRT_PI);
    grads[0] = bn_mul(g, d);
    return BN_OK;
}

/* ---- activations ---------------------------------------------------------------------------- */
/* relu: g where x > 0, else 0 (0 at 0; NaN passes g, like torch's threshold_backward) */
static bn_status relu_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    /* one fused pass; composed (differentiable in g) when a second derivative is recorded */
    grads[0] = bn_grad_enabled() ? bn_masked_fill(g, bn_le_scalar(saved_x(n), 0.0), 0.0)
                                 : bn__relu_grad(g, saved_x(n));
    return BN_OK;
}

/* leaky_relu: g where x > 0, else slope * g */
static bn_status leaky_relu_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_where(bn_gt_scalar(saved_x(n), 0.0), g, bn_mul_scalar(g, n->f[0]));
    return BN_OK;
}

/* elu: g where x > 0, else g * alpha * exp(x) (exp of min(x, 0): no overflow on the side not
 * taken) */
static bn_status elu_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = saved_x(n);
    bn_tensor *neg = bn_mul(g, bn_mul_scalar(bn_exp(bn_clamp_max(x, 0.0)), n->f[0]));
    grads[0] = bn_where(bn_le_scalar(x, 0.0), neg, g); /* NaN: g, like torch */
    return BN_OK;
}

/* gelu = x Phi(x): d = Phi(x) + x phi(x). Each of these three rules is one fused pass
 * (backend.h's BN_BINARY_*_GRAD, the same formula) unless a second derivative is recorded; then
 * it is composed of differentiable ops. */
static bn_status gelu_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = saved_x(n);
    if (!bn_grad_enabled()) {
        grads[0] = bn__act_grad(BN_BINARY_GELU_GRAD, g, x);
        return BN_OK;
    }
    bn_tensor *cdf = bn_mul_scalar(bn_add_scalar(bn_erf(bn_div_scalar(x, SQRT_2)), 1.0), 0.5);
    bn_tensor *pdf = bn_mul_scalar(bn_exp(bn_mul_scalar(bn_mul(x, x), -0.5)), INV_SQRT_2PI);
    grads[0] = bn_mul(g, bn_add(cdf, bn_mul(x, pdf)));
    return BN_OK;
}

/* gelu_tanh = x/2 (1 + t), t = tanh(k (x + c x^3)):
 * d = (1 + t)/2 + x/2 (1 - t^2) k (1 + 3 c x^2) */
static bn_status gelu_tanh_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = saved_x(n);
    if (!bn_grad_enabled()) {
        grads[0] = bn__act_grad(BN_BINARY_GELU_TANH_GRAD, g, x);
        return BN_OK;
    }
    bn_tensor *x2 = bn_mul(x, x);
    bn_tensor *inner = bn_mul(x, bn_add_scalar(bn_mul_scalar(x2, GELU_TANH_C), 1.0));
    bn_tensor *t = bn_tanh(bn_mul_scalar(inner, SQRT_2_OVER_PI));
    bn_tensor *left = bn_mul_scalar(bn_add_scalar(t, 1.0), 0.5);
    bn_tensor *dinner =
        bn_mul_scalar(bn_add_scalar(bn_mul_scalar(x2, 3 * GELU_TANH_C), 1.0), SQRT_2_OVER_PI);
    bn_tensor *right = bn_mul(bn_mul_scalar(x, 0.5), bn_mul(one_minus(bn_mul(t, t)), dinner));
    grads[0] = bn_mul(g, bn_add(left, right));
    return BN_OK;
}

/* silu = x s, s = sigmoid(x): d = s (1 + x (1 - s)) */
static bn_status silu_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = saved_x(n);
    if (!bn_grad_enabled()) {
        grads[0] = bn__act_grad(BN_BINARY_SILU_GRAD, g, x);
        return BN_OK;
    }
    bn_tensor *s = bn_sigmoid(x);
    grads[0] = bn_mul(g, bn_mul(s, bn_add_scalar(bn_mul(x, one_minus(s)), 1.0)));
    return BN_OK;
}

/* softplus: z = beta x; g where z > threshold (the linear part), else g sigmoid(z) */
static bn_status softplus_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *z = bn_mul_scalar(saved_x(n), n->f[0]);
    grads[0] = bn_where(bn_gt_scalar(z, n->f[1]), g, bn_mul(g, bn_sigmoid(z)));
    return BN_OK;
}

/* ---- piecewise constant, clamp -------------------------------------------------------------- */
/* floor, ceil, round, sign: zero almost everywhere (torch returns zeros too) */
static bn_status zero_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    (void)n;
    grads[0] = bn_zeros_like(g);
    return BN_OK;
}

/* clamp: g where lo <= x <= hi (the bounds that are present), else 0 */
static bn_status clamp_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = saved_x(n);
    bn_tensor *keep = NULL;
    if (n->i[1]) keep = bn_ge_scalar(x, n->f[2]);
    if (n->i[2]) {
        bn_tensor *below = bn_le_scalar(x, n->f[3]);
        keep = keep ? bn_logical_and(keep, below) : below;
    }
    grads[0] = bn_masked_fill(g, bn_logical_not(keep), 0.0);
    return BN_OK;
}

/* ---- hook ----------------------------------------------------------------------------------- */
typedef struct unary_rule {
    const char *name;
    bn_backward_fn fn;
    bool saves_x, saves_out;
} unary_rule;

static const unary_rule rules[BN_UNARY_COUNT] = {
    [BN_UNARY_NEG] = {"NegBackward", neg_backward, false, false},
    [BN_UNARY_ABS] = {"AbsBackward", abs_backward, true, false},
    [BN_UNARY_EXP] = {"ExpBackward", exp_backward, true, true},
    [BN_UNARY_LOG] = {"LogBackward", log_backward, true, false},
    [BN_UNARY_LOG1P] = {"Log1pBackward", log1p_backward, true, false},
    [BN_UNARY_SQRT] = {"SqrtBackward", sqrt_backward, true, true},
    [BN_UNARY_RSQRT] = {"RsqrtBackward", rsqrt_backward, true, true},
    [BN_UNARY_SIN] = {"SinBackward", sin_backward, true, false},
    [BN_UNARY_COS] = {"CosBackward", cos_backward, true, false},
    [BN_UNARY_TANH] = {"TanhBackward", tanh_backward, true, true},
    [BN_UNARY_SIGMOID] = {"SigmoidBackward", sigmoid_backward, true, true},
    [BN_UNARY_RELU] = {"ReluBackward", relu_backward, true, false},
    [BN_UNARY_LEAKY_RELU] = {"LeakyReluBackward", leaky_relu_backward, true, false},
    [BN_UNARY_ELU] = {"EluBackward", elu_backward, true, false},
    [BN_UNARY_GELU] = {"GeluBackward", gelu_backward, true, false},
    [BN_UNARY_GELU_TANH] = {"GeluBackward", gelu_tanh_backward, true, false},
    [BN_UNARY_SILU] = {"SiluBackward", silu_backward, true, false},
    [BN_UNARY_SOFTPLUS] = {"SoftplusBackward", softplus_backward, true, false},
    [BN_UNARY_ERF] = {"ErfBackward", erf_backward, true, false},
    [BN_UNARY_FLOOR] = {"FloorBackward", zero_backward, false, false},
    [BN_UNARY_CEIL] = {"CeilBackward", zero_backward, false, false},
    [BN_UNARY_ROUND] = {"RoundBackward", zero_backward, false, false},
    [BN_UNARY_SIGN] = {"SignBackward", zero_backward, false, false},
    [BN_UNARY_CLAMP] = {"ClampBackward", clamp_backward, true, false},
};

/* Keeps a detached view of out (no graph, same storage and version counter) in slot. */
static bool save_output(bn_node *n, int slot, const bn_tensor *out)
{
    bn_tensor *v = bn__view(out, out->ndim, out->shape, out->strides, out->offset);
    if (!v) return false;
    bn__node_save(n, slot, v);
    bn_release(v);
    return true;
}

bn_tensor *bn__grad_unary(bn_unary_op op, const bn_tensor *x, const bn_unary_params *p,
                          bn_tensor *out)
{
    if (!out || !bn__grad_needed1(x) || !bn_dtype_is_float(out->dtype)) return out;
    if ((unsigned)op >= BN_UNARY_COUNT || !rules[op].fn) return out; /* logical_not: bool */
    const unary_rule *r = &rules[op];
    const bn_tensor *in[1] = {x};
    bn_node *n = bn__grad_record(out, r->name, r->fn, in, 1);
    if (n && r->saves_x) bn__node_save(n, 0, x);
    if (n && r->saves_out && !save_output(n, 1, out)) n = NULL;
    if (!n) {
        bn_release(out);
        return NULL;
    }
    n->i[0] = op;
    n->f[0] = op == BN_UNARY_CLAMP ? 0.0 : p->alpha;
    n->f[1] = p->beta;
    n->f[2] = p->lo;
    n->f[3] = p->hi;
    n->i[1] = p->has_lo;
    n->i[2] = p->has_hi;
    return out;
}
