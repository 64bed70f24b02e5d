/* autograd/grad_elementwise.c — derivative rules for element-wise ops, next to nothing but the
 * math: ops/elementwise_*.c call the bn__grad_* hooks below after computing their result.
 * Rules may return gradients in the broadcast output shape; the engine sums them back into each
 * input's shape and dtype. */
#include "autograd/grad.h"

#include "born/ops.h"

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
    case BN_BINARY_DIV:
        if ((n = bn__grad_record(out, "DivBackward", div_backward, in, 2))) {
            bn__node_save(n, 0, a);
            bn__node_save(n, 1, b);
        }
        break;
    default: return out; /* comparisons and logicals have no gradient */
    }
    if (!n) {
        bn_release(out);
        return NULL;
    }
    return out;
}
