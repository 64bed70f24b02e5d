/* autograd/grad_reduce.h — the hooks ops/reduce.c and ops/linalg.c call to record derivative
 * rules for max/min over a dim, the ops along one dim (cumsum, softmax, log_softmax) and matmul.
 * (sum, mean, prod, var, std, logsumexp and amax-style max/min go through bn__grad_reduce in
 * autograd/grad.h.) Like every hook, each takes the op's inputs and its fresh result out, records
 * a node when an input requires grad and grad mode is on, and returns out — or NULL after
 * releasing out when the node cannot be recorded; a NULL out is passed through. */
#ifndef BORN_AUTOGRAD_GRAD_REDUCE_H
#define BORN_AUTOGRAD_GRAD_REDUCE_H

#include "autograd/grad.h"

/* bn_max / bn_min (op BN_REDUCE_MAX or BN_REDUCE_MIN) over dim, mask flagging the reduced dims:
 * dim == BN_ALL spreads the gradient evenly over tied extremes (like torch.max(x)); a single dim
 * sends it to the first extreme along that dim (the index torch.max(x, dim) returns). */
bn_tensor *bn__grad_extreme(bn_reduce_op op, const bn_tensor *t, int dim, uint32_t mask,
                            bn_tensor *out);

/* Ops along one dim that keep the shape; dim is already normalised (0 for a 0-d t). */
typedef enum bn_along_grad {
    BN_ALONG_GRAD_CUMSUM,
    BN_ALONG_GRAD_SOFTMAX,
    BN_ALONG_GRAD_LOG_SOFTMAX
} bn_along_grad;
bn_tensor *bn__grad_along(bn_along_grad op, const bn_tensor *t, int dim, bn_tensor *out);

/* grad_linalg.c: bn_matmul in every torch.matmul case. */
bn_tensor *bn__grad_matmul(const bn_tensor *a, const bn_tensor *b, bn_tensor *out);

#endif
