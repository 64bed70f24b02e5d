/* autograd/grad_elementwise.h — the hooks ops/elementwise_*.c and ops/copy.c call to record
 * derivative rules for the element-wise ops with one tensor, the tensor-with-scalar variants,
 * where / masked_fill and the copying conversions (bn_add & co. go through bn__grad_binary in
 * autograd/grad.h). Like every hook, each takes the op's inputs and its fresh result out,
 * records a node when an input requires grad and grad mode is on, and returns out — or NULL
 * after releasing out when the node cannot be recorded; a NULL out is passed through. Results
 * that are not floating point (comparisons, logicals, integer casts) record nothing. */
#ifndef BORN_AUTOGRAD_GRAD_ELEMENTWISE_H
#define BORN_AUTOGRAD_GRAD_ELEMENTWISE_H

#include "autograd/grad.h"

/* grad_elementwise_unary.c: out = op(x) with p's parameters (slope, alpha, beta/threshold,
 * clamp bounds). */
bn_tensor *bn__grad_unary(bn_unary_op op, const bn_tensor *x, const bn_unary_params *p,
                          bn_tensor *out);

/* grad_elementwise.c: out = a op s, or s op a when scalar_first (only pow: bn_rpow_scalar). */
bn_tensor *bn__grad_binary_scalar(bn_binary_op op, const bn_tensor *a, double s, bool scalar_first,
                                  bn_tensor *out);

/* out = cond ? a : b (cond gets no gradient). */
bn_tensor *bn__grad_where(const bn_tensor *cond, const bn_tensor *a, const bn_tensor *b,
                          bn_tensor *out);

/* out = x with value where mask is set (mask gets no gradient). */
bn_tensor *bn__grad_masked_fill(const bn_tensor *x, const bn_tensor *mask, bn_tensor *out);

/* out is a fresh copy of t (bn_clone, bn_contiguous, bn_to_dtype, bn_tensor_to), perhaps in
 * another dtype or on another device: the gradient flows back unchanged, cast to t's dtype and
 * moved to t's device. Must not be called when out is t itself. */
bn_tensor *bn__grad_copy(const char *name, const bn_tensor *t, bn_tensor *out);

#endif
