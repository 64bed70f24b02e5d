/* autograd/grad_elementwise.c — derivative rules for the element-wise ops on two tensors, their
 * tensor-with-scalar variants, where / masked_fill and the copying conversions (clone,
 * contiguous, to_dtype, tensor_to); ops/elementwise_*.c and ops/copy.c call the hooks at the
 * bottom after computing their result. (The ops on one tensor: grad_elementwise_unary.c.)
 *
 * Rules may return gradients in the broadcast output shape; the engine sums them back into each
 * input's shape and dtype. Every rule uses differentiable public ops, so create_graph gives
 * higher derivatives. Conventions follow PyTorch 1.13: pow's gradients are 0 where the exponent
 * is 0 (for the base) and where the base is 0 and the exponent >= 0 (for the exponent);
 * maximum/minimum split the gradient half and half between tied operands; comparisons and
 * logical ops give bool and record nothing.
 *
 * Node state (scalar variants): f[0] the scalar. */
#include "autograd/grad_elementwise.h"

#include "born/autograd.h"
#include "born/ops.h"

#include <math.h>

/* d(a+b) = g, g;  d(a-b) = g, -g */
static bn_status add_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    if (bn__node_needs(n, 0)) grads[0] = (bn_tensor *)g;
    if (bn__node_needs(n, 1)) grads[1] = (bn_tensor *)g;
    return BN_OK;
}

static bn_status sub_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    if (bn__node_needs(n, 0)) grads[0] = (bn_tensor *)g;
    if (bn__node_needs(n, 1)) grads[1] = bn_neg(g);
    return BN_OK;
}

/* d(a*b) = g*b, g*a */
static bn_status mul_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    if (bn__node_needs(n, 0)) grads[0] = bn_mul(g, bn__node_saved(n, 1));
    if (bn__node_needs(n, 1)) grads[1] = bn_mul(g, bn__node_saved(n, 0));
    return BN_OK;
}

/* d(a/b) = g/b, -g*a/b^2 */
static bn_status div_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *a = bn__node_saved(n, 0), *b = bn__node_saved(n, 1);
    if (bn__node_needs(n, 0)) grads[0] = bn_div(g, b);
    if (bn__node_needs(n, 1)) grads[1] = bn_neg(bn_div(bn_mul(g, a), bn_mul(b, b)));
    return BN_OK;
}

/* d a^b = g b a^(b-1) (0 where b == 0);  d/db = g a^b log(a) (0 where a == 0 and b >= 0) */
static bn_status pow_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *a = bn__node_saved(n, 0), *b = bn__node_saved(n, 1);
    if (!a || !b) return bn_error_code(); /* modified in place */
    if (bn__node_needs(n, 0)) {
        /* an integer or bool exponent: b - 1 in a's float dtype */
        bn_tensor *bf = bn_dtype_is_float(b->dtype) ? b : bn_to_dtype(b, a->dtype);
        bn_tensor *d = bn_mul(g, bn_mul(b, bn_pow(a, bn_sub_scalar(bf, 1.0))));
        grads[0] = bn_masked_fill(d, bn_eq_scalar(b, 0.0), 0.0);
    }
    if (bn__node_needs(n, 1)) {
        bn_tensor *d = bn_mul(g, bn_mul(bn_pow(a, b), bn_log(a)));
        bn_tensor *zero_base = bn_logical_and(bn_eq_scalar(a, 0.0), bn_ge_scalar(b, 0.0));
        grads[1] = bn_masked_fill(d, zero_base, 0.0);
    }
    return BN_OK;
}

/* g, halved where a == b (torch splits ties) */
static bn_tensor *halve_ties(const bn_tensor *g, const bn_tensor *tie)
{
    return bn_where(tie, bn_mul_scalar(g, 0.5), g);
}

/* maximum: a gets g where a > b, b where a < b, each half on ties (minimum: the reverse). A NaN
 * operand gives both the full gradient, as in torch. */
static bn_status extreme_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads, bool is_max)
{
    bn_tensor *a = bn__node_saved(n, 0), *b = bn__node_saved(n, 1);
    bn_tensor *split = halve_ties(g, bn_eq(a, b));
    bn_tensor *a_loses = is_max ? bn_lt(a, b) : bn_gt(a, b);
    bn_tensor *b_loses = is_max ? bn_gt(a, b) : bn_lt(a, b);
    if (bn__node_needs(n, 0)) grads[0] = bn_masked_fill(split, a_loses, 0.0);
    if (bn__node_needs(n, 1)) grads[1] = bn_masked_fill(split, b_loses, 0.0);
    return BN_OK;
}

static bn_status maximum_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    return extreme_backward(n, g, grads, true);
}

static bn_status minimum_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    return extreme_backward(n, g, grads, false);
}

/* remainder(a, b) = a - b floor(a/b): d/da = g, d/db = -g floor(a/b) */
static bn_status remainder_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    if (bn__node_needs(n, 0)) grads[0] = (bn_tensor *)g;
    if (bn__node_needs(n, 1)) {
        bn_tensor *q = bn_floor(bn_div(bn__node_saved(n, 0), bn__node_saved(n, 1)));
        grads[1] = bn_neg(bn_mul(g, q));
    }
    return BN_OK;
}

static bn_tensor *fail(bn_tensor *out)
{
    bn_release(out);
    return NULL;
}

/* Saves a in slot 0 and b in slot 1. */
static bn_node *record_saving_both(bn_tensor *out, const char *name, bn_backward_fn fn,
                                   const bn_tensor *const *in)
{
    bn_node *n = bn__grad_record(out, name, fn, in, 2);
    if (n) {
        bn__node_save(n, 0, in[0]);
        bn__node_save(n, 1, in[1]);
    }
    return n;
}

bn_tensor *bn__grad_binary(bn_binary_op op, const bn_tensor *a, const bn_tensor *b, bn_tensor *out)
{
    if (!out || !bn__grad_needed2(a, b) || !bn_dtype_is_float(out->dtype)) return out;
    const bn_tensor *in[2] = {a, b};
    bn_node *n = NULL;
    switch (op) {
    case BN_BINARY_ADD: n = bn__grad_record(out, "AddBackward", add_backward, in, 2); break;
    case BN_BINARY_SUB: n = bn__grad_record(out, "SubBackward", sub_backward, in, 2); break;
    case BN_BINARY_MUL:
        if ((n = bn__grad_record(out, "MulBackward", mul_backward, in, 2))) {
            if (bn__node_needs(n, 1)) bn__node_save(n, 0, a);
            if (bn__node_needs(n, 0)) bn__node_save(n, 1, b);
        }
        break;
    case BN_BINARY_DIV: n = record_saving_both(out, "DivBackward", div_backward, in); break;
    case BN_BINARY_POW: n = record_saving_both(out, "PowBackward", pow_backward, in); break;
    case BN_BINARY_MAXIMUM:
        n = record_saving_both(out, "MaximumBackward", maximum_backward, in);
        break;
    case BN_BINARY_MINIMUM:
        n = record_saving_both(out, "MinimumBackward", minimum_backward, in);
        break;
    case BN_BINARY_REMAINDER:
        n = record_saving_both(out, "RemainderBackward", remainder_backward, in);
        break;
    default: return out; /* comparisons and logicals have no gradient */
    }
    return n ? out : fail(out);
}

/* ---- scalar variants (s = f[0]) ----------------------------------------------------------- */
/* a + s, a - s, remainder(a, s): g */
static bn_status identity_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    (void)n;
    grads[0] = (bn_tensor *)g;
    return BN_OK;
}

/* a * s: g s;  a / s: g / s */
static bn_status mul_scalar_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_mul_scalar(g, n->f[0]);
    return BN_OK;
}

static bn_status div_scalar_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_div_scalar(g, n->f[0]);
    return BN_OK;
}

/* a^s: g s a^(s-1), zeros when s == 0 */
static bn_status pow_scalar_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    double s = n->f[0];
    if (s == 0) {
        grads[0] = bn_zeros_like(g);
        return BN_OK;
    }
    grads[0] = bn_mul(g, bn_mul_scalar(bn_pow_scalar(bn__node_saved(n, 0), s - 1), s));
    return BN_OK;
}

/* s^a: g s^a log(s); with s == 0, 0 where a >= 0 */
static bn_status rpow_scalar_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    double s = n->f[0];
    bn_tensor *a = bn__node_saved(n, 0);
    bn_tensor *d = bn_mul(g, bn_mul_scalar(bn_rpow_scalar(s, a), log(s)));
    grads[0] = s == 0 ? bn_masked_fill(d, bn_ge_scalar(a, 0.0), 0.0) : d;
    return BN_OK;
}

/* maximum(a, s): g where a > s, g/2 where a == s (minimum: where a < s) */
static bn_status extreme_scalar_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads,
                                         bool is_max)
{
    bn_tensor *a = bn__node_saved(n, 0);
    double s = n->f[0];
    bn_tensor *loses = is_max ? bn_lt_scalar(a, s) : bn_gt_scalar(a, s);
    grads[0] = bn_masked_fill(halve_ties(g, bn_eq_scalar(a, s)), loses, 0.0);
    return BN_OK;
}

static bn_status maximum_scalar_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    return extreme_scalar_backward(n, g, grads, true);
}

static bn_status minimum_scalar_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    return extreme_scalar_backward(n, g, grads, false);
}

bn_tensor *bn__grad_binary_scalar(bn_binary_op op, const bn_tensor *a, double s, bool scalar_first,
                                  bn_tensor *out)
{
    if (!out || !bn__grad_needed1(a) || !bn_dtype_is_float(out->dtype)) return out;
    const char *name;
    bn_backward_fn fn;
    bool saves_a = true;
    switch (op) {
    case BN_BINARY_ADD: name = "AddBackward", fn = identity_backward, saves_a = false; break;
    case BN_BINARY_SUB: name = "SubBackward", fn = identity_backward, saves_a = false; break;
    case BN_BINARY_REMAINDER:
        name = "RemainderBackward", fn = identity_backward, saves_a = false;
        break;
    case BN_BINARY_MUL: name = "MulBackward", fn = mul_scalar_backward, saves_a = false; break;
    case BN_BINARY_DIV: name = "DivBackward", fn = div_scalar_backward, saves_a = false; break;
    case BN_BINARY_POW:
        name = "PowBackward", fn = scalar_first ? rpow_scalar_backward : pow_scalar_backward;
        break;
    case BN_BINARY_MAXIMUM: name = "MaximumBackward", fn = maximum_scalar_backward; break;
    case BN_BINARY_MINIMUM: name = "MinimumBackward", fn = minimum_scalar_backward; break;
    default: return out; /* comparisons and logicals have no gradient */
    }
    const bn_tensor *in[1] = {a};
    bn_node *n = bn__grad_record(out, name, fn, in, 1);
    if (!n) return fail(out);
    if (saves_a) bn__node_save(n, 0, a);
    n->f[0] = s;
    return out;
}

/* ---- where, masked_fill ------------------------------------------------------------------- */
/* cond ? a : b: a gets g where cond, b where not (saved 0: cond) */
static bn_status where_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *cond = bn__node_saved(n, 0);
    if (bn__node_needs(n, 0)) grads[0] = bn_masked_fill(g, bn_logical_not(cond), 0.0);
    if (bn__node_needs(n, 1)) grads[1] = bn_masked_fill(g, cond, 0.0);
    return BN_OK;
}

bn_tensor *bn__grad_where(const bn_tensor *cond, const bn_tensor *a, const bn_tensor *b,
                          bn_tensor *out)
{
    if (!out || !bn__grad_needed2(a, b) || !bn_dtype_is_float(out->dtype)) return out;
    const bn_tensor *in[2] = {a, b};
    bn_node *n = bn__grad_record(out, "WhereBackward", where_backward, in, 2);
    if (!n) return fail(out);
    bn__node_save(n, 0, cond);
    return out;
}

/* masked_fill: g where the mask is not set (saved 0: mask) */
static bn_status masked_fill_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_masked_fill(g, bn__node_saved(n, 0), 0.0);
    return BN_OK;
}

bn_tensor *bn__grad_masked_fill(const bn_tensor *x, const bn_tensor *mask, bn_tensor *out)
{
    if (!out || !bn__grad_needed1(x) || !bn_dtype_is_float(out->dtype)) return out;
    const bn_tensor *in[1] = {x};
    bn_node *n = bn__grad_record(out, "MaskedFillBackward", masked_fill_backward, in, 1);
    if (!n) return fail(out);
    bn__node_save(n, 0, mask);
    return out;
}

/* ---- copies ------------------------------------------------------------------------------- */
/* g itself, moved back to the input's device (i[0] type, i[1] index) when the copy moved it;
 * the engine casts it to the input's dtype. */
static bn_status copy_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_device src = {.type = (bn_device_type)n->i[0], .index = (int)n->i[1]};
    bn_device cur = g->storage->device;
    if (cur.type == src.type && cur.index == src.index)
        grads[0] = (bn_tensor *)g;
    else
        grads[0] = bn_tensor_to(g, src);
    return BN_OK;
}

bn_tensor *bn__grad_copy(const char *name, const bn_tensor *t, bn_tensor *out)
{
    if (!out || !bn__grad_needed1(t) || !bn_dtype_is_float(out->dtype)) return out;
    const bn_tensor *in[1] = {t};
    bn_node *n = bn__grad_record(out, name, copy_backward, in, 1);
    if (!n) return fail(out);
    n->i[0] = t->storage->device.type;
    n->i[1] = t->storage->device.index;
    return out;
}
