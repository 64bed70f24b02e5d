/* autograd/grad_reduce.c — derivative rules for reductions; ops/reduce.c calls
 * bn__grad_reduce after computing its result. */
#include "autograd/grad.h"

#include "born/ops.h"

/* The gradient of a reduction's output, reshaped with the reduced dims kept as size 1 and
 * expanded back to the input's shape. node->i[0] holds the reduce mask. */
static bn_tensor *expand_back(bn_node *n, const bn_tensor *g)
{
    bn_shape in = n->in_shape[0];
    bn_shape kept = in;
    uint32_t mask = (uint32_t)n->i[0];
    for (int d = 0; d < in.ndim; d++)
        if (mask & (1u << d)) kept.dims[d] = 1;
    return bn_expand(bn_reshape(g, kept), in);
}

/* d sum = g broadcast back */
static bn_status sum_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = expand_back(n, g);
    return BN_OK;
}

/* d mean = g / count, broadcast back; node->f[0] holds the count */
static bn_status mean_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_div_scalar(expand_back(n, g), n->f[0]);
    return BN_OK;
}

bn_tensor *bn__grad_reduce(bn_reduce_op op, const bn_tensor *t, uint32_t mask, int correction,
                           bn_tensor *out)
{
    if (!out || !bn__grad_needed1(t) || !bn_dtype_is_float(out->dtype)) return out;
    if (t->ndim == 0) mask = 0;
    const bn_tensor *in[1] = {t};
    int64_t count = 1;
    for (int d = 0; d < t->ndim; d++)
        if (mask & (1u << d)) count *= t->shape[d];
    bn_node *n = NULL;
    switch (op) {
    case BN_REDUCE_SUM: n = bn__grad_record(out, "SumBackward", sum_backward, in, 1); break;
    case BN_REDUCE_MEAN:
        if ((n = bn__grad_record(out, "MeanBackward", mean_backward, in, 1)))
            n->f[0] = (double)count;
        break;
    default: return out; /* argmax/argmin/all/any have no gradient; the rest land later */
    }
    (void)correction;
    if (!n) {
        bn_release(out);
        return NULL;
    }
    n->i[0] = (int64_t)mask;
    return out;
}
