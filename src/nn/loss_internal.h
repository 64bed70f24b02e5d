/* nn/loss_internal.h — what the loss files share: argument checks, the no-grad forward
 * bracket, reductions and the node each loss records for its own backward rule. */
#ifndef BORN_NN_LOSS_INTERNAL_H
#define BORN_NN_LOSS_INTERNAL_H

#include "autograd/autograd.h"
#include "born/autograd.h"
#include "born/ops.h"
#include "core/internal.h"

/* Every loss computes its forward with public ops inside a private scope with grad mode off,
 * then records one node of its own (so its derivative does not depend on the graph of the
 * ops it happens to use). */
static inline void loss_forward_begin(void)
{
    bn_scope_begin();
    bn_no_grad_begin();
}

/* Ends the forward bracket keeping out (unregistered, one reference), or NULL. */
static inline bn_tensor *loss_forward_end(bn_tensor *out)
{
    bn_no_grad_end();
    if (out) bn_retain(out);
    bn_scope_end();
    return out;
}

/* mean / sum over every element, or the elements themselves */
static inline bn_tensor *loss_reduce(bn_tensor *l, bn_reduction r)
{
    if (r == BN_REDUCTION_MEAN) return bn_mean(l, BN_ALL, false);
    if (r == BN_REDUCTION_SUM) return bn_sum(l, BN_ALL, false);
    return l;
}

static inline bool loss_check_reduction(const char *fn, bn_reduction r)
{
    if (r == BN_REDUCTION_MEAN || r == BN_REDUCTION_SUM || r == BN_REDUCTION_NONE) return true;
    bn__error(BN_ERR_ARG, "%s: reduction %d is not BN_REDUCTION_MEAN, _SUM or _NONE", fn, (int)r);
    return false;
}

#endif
