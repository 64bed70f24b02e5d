/* autograd/grad_shape.h — the hooks ops/shape.c, ops/join.c and ops/index.c call to record the
 * derivative rules of views, joins and indexing (grad_shape.c, grad_join.c, grad_index.c).
 * Like the hooks in grad.h, each takes the op's inputs and its freshly computed, not yet
 * registered result `out`, records a node when an input requires grad (and grad mode is on),
 * and returns out — or NULL after releasing out when the node cannot be recorded. out may be
 * NULL (the op failed): it is passed through. Dims passed here are already normalised. */
#ifndef BORN_AUTOGRAD_GRAD_SHAPE_H
#define BORN_AUTOGRAD_GRAD_SHAPE_H

#include "autograd/autograd.h"
#include "backend/backend.h"
#include "born/ops.h"

/* ---- grad_shape.c: views ---- */
/* Ops that only regroup the elements (reshape, view, flatten, squeeze, unsqueeze): the gradient
 * is reshaped back. name is the node's name ("ViewBackward", …). */
bn_tensor *bn__grad_reshape(const char *name, const bn_tensor *t, bn_tensor *out);
/* out dim i is t dim perm[i] (permute, transpose). */
bn_tensor *bn__grad_permute(const char *name, const bn_tensor *t, const int *perm, bn_tensor *out);
/* expand / broadcast_to: the gradient is summed back over the broadcast dims. */
bn_tensor *bn__grad_expand(const char *name, const bn_tensor *t, bn_tensor *out);
/* out is t's elements start, start + step, … along dim d (slice, narrow, split, chunk); with
 * removed, dim d is gone from out (select, one element). */
bn_tensor *bn__grad_slice(const char *name, const bn_tensor *t, int d, int64_t start, int64_t step,
                          bool removed, bn_tensor *out);
/* out reads t's storage with its own (shape, strides, offset). */
bn_tensor *bn__grad_as_strided(const bn_tensor *t, bn_tensor *out);

/* ---- grad_join.c: ops that copy or cut ---- */
bn_tensor *bn__grad_cat(bn_tensor *const *ts, int n, int d, bn_tensor *out);
bn_tensor *bn__grad_stack(bn_tensor *const *ts, int n, int d, bn_tensor *out);
bn_tensor *bn__grad_repeat(const bn_tensor *t, bn_shape repeats, bn_tensor *out);
bn_tensor *bn__grad_tri(const bn_tensor *t, int64_t diagonal, bool upper, bn_tensor *out);
bn_tensor *bn__grad_pad(const bn_tensor *t, const int64_t *pads, int npads, bn_pad_mode mode,
                        bn_tensor *out);

/* ---- grad_index.c ---- */
bn_tensor *bn__grad_index_select(const bn_tensor *t, int d, const bn_tensor *index, bn_tensor *out);
bn_tensor *bn__grad_gather(const bn_tensor *t, int d, const bn_tensor *index, bn_tensor *out);
bn_tensor *bn__grad_scatter(bn_scatter_op op, const bn_tensor *t, int d, const bn_tensor *index,
                            const bn_tensor *src, bn_tensor *out);
/* values = t gathered along d at indices (sort, topk). */
bn_tensor *bn__grad_sorted(const char *name, const bn_tensor *t, int d, const bn_tensor *indices,
                           bn_tensor *values);

#endif
