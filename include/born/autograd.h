/* born/autograd.h — reverse-mode automatic differentiation (DESIGN §7).
 *
 * Eager and define-by-run, like PyTorch: an op whose input requires grad records a node
 * (grad_fn) on its output; bn_backward(loss) walks the graph in reverse topological order and
 * accumulates into the .grad of leaf tensors that require grad (and of non-leaves that asked
 * for it with bn_retain_grad). Grad mode is per thread. */
#ifndef BORN_AUTOGRAD_H
#define BORN_AUTOGRAD_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a leaf tensor as a parameter to differentiate with respect to (float dtypes only).
 * Turning it off on a non-leaf is an error, as in PyTorch. */
BN_API bn_status bn_set_requires_grad(bn_tensor *t, bool on);
BN_API bool bn_requires_grad(const bn_tensor *t);
/* A leaf has no grad_fn: created by the user, or by an op while no input required grad. */
BN_API bool bn_is_leaf(const bn_tensor *t);
/* The recording node's name ("MulBackward", …) or NULL for a leaf. */
BN_API const char *bn_grad_fn_name(const bn_tensor *t);

typedef struct bn_backward_opts {
    const bn_tensor *grad; /* gradient of the output; NULL: ones (the output must be one element) */
    bool retain_graph;     /* keep the graph for another backward */
    bool create_graph;     /* record the backward ops too, for higher derivatives */
} bn_backward_opts;

/* loss.backward(): loss must hold one element. */
BN_API bn_status bn_backward(bn_tensor *loss);
BN_API bn_status bn_backward_ex(bn_tensor *t, bn_backward_opts o);

/* torch.autograd.grad: the gradients of the outputs with respect to inputs, returned in grads
 * (new references; NULL where an input is not reached) without touching any .grad. grad_outputs
 * may be NULL (all outputs then need one element). */
BN_API bn_status bn_autograd_grad(bn_tensor *const *outputs, bn_tensor *const *grad_outputs,
                                  int noutputs, bn_tensor *const *inputs, int ninputs,
                                  bn_tensor **grads, bn_backward_opts o);

/* The accumulated gradient: a new reference, or NULL (with no error) when there is none. */
BN_API bn_tensor *bn_grad(const bn_tensor *t);
/* Replaces t's gradient (NULL clears it); g must have t's shape and dtype. */
BN_API bn_status bn_set_grad(bn_tensor *t, const bn_tensor *g);
/* Non-leaf t keeps its gradient in the next backward. */
BN_API bn_status bn_retain_grad(bn_tensor *t);
/* A new tensor sharing t's data, cut from the graph (a leaf that does not require grad). */
BN_API bn_tensor *bn_detach(const bn_tensor *t);

/* Grad mode (per thread, nestable): inside no-grad, ops record nothing. */
BN_API void bn_no_grad_begin(void);
BN_API void bn_no_grad_end(void);
BN_API bool bn_grad_enabled(void);

/* Gradient checkpointing: runs fn without recording and, in backward, runs it again (with the
 * random generator state it first saw) to get the gradients. Saves the memory of everything fn
 * computes inside. born opens a scope around each call of fn: fn returns the result of ordinary
 * ops (owned by that scope) and releases nothing. */
typedef bn_tensor *(*bn_checkpoint_fn)(void *ctx, bn_tensor *const *inputs, int ninputs);
BN_API bn_tensor *bn_checkpoint(bn_checkpoint_fn fn, void *ctx, bn_tensor *const *inputs,
                                int ninputs);

#ifdef __cplusplus
}
#endif
#endif
