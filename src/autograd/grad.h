/* autograd/grad.h — the hooks ops/ calls to record derivative rules, one per op family. Each
 * takes the op's inputs and its freshly computed result `out`, records a node when an input
 * requires grad (and grad mode is on), and returns out — or NULL after releasing out when the
 * node cannot be recorded. out may be NULL (the op failed): it is passed through. */
#ifndef BORN_AUTOGRAD_GRAD_H
#define BORN_AUTOGRAD_GRAD_H

#include "autograd/autograd.h"
#include "backend/backend.h"

/* grad_elementwise.c */
bn_tensor *bn__grad_binary(bn_binary_op op, const bn_tensor *a, const bn_tensor *b,
                           bn_tensor *out);
/* grad_reduce.c: mask flags the reduced dims of t; correction is var/std's */
bn_tensor *bn__grad_reduce(bn_reduce_op op, const bn_tensor *t, uint32_t mask, int correction,
                           bn_tensor *out);

#endif
