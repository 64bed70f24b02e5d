/* autograd/grad_conv.h — the private link between the convolution and pooling ops
 * (ops/conv.c, ops/pool.c) and their derivative rules (autograd/grad_conv.c): the geometry an op
 * records, the ops-level products the rules are made of, and the hooks the ops call.
 *
 * One picture covers every convolution here. An image (N, C, H, W) is read by a window into
 * columns; a weight (Ocols, C/groups, KH, KW) maps the columns to (N, Ocols, OH, OW):
 *   conv2d             image = x, columns side = the output
 *   conv_transpose2d   image = the output, columns side = x (its weight (Cin, O/groups, KH, KW)
 *                      is exactly such a weight, with Ocols = Cin)
 * so three products give every forward and backward:
 *   forward_4d      image → columns side        (conv2d forward, conv_transpose2d grad x)
 *   input_grad_4d   columns side → image        (conv2d grad x, conv_transpose2d forward)
 *   weight_grad_4d  columns side x image → weight */
#ifndef BORN_AUTOGRAD_GRAD_CONV_H
#define BORN_AUTOGRAD_GRAD_CONV_H

#include "autograd/autograd.h"
#include "backend/backend_conv.h"

typedef struct bn_conv_plan {
    bn_window_geom g;  /* N, C, H, W: the image; OH, OW: the columns side */
    int64_t groups;
    int64_t ocols;     /* channels on the columns side */
    bool transpose;    /* conv_transpose2d (x is the columns side) */
    int x_ndim;        /* the user's x: 2 or 3 (conv1d), 3 or 4 (conv2d / conv_transpose2d) */
    bool batched;
    bool one_d;        /* conv1d: H and KH are 1 and the user's tensors have no H dim */
} bn_conv_plan;

/* ---- ops/conv.c: the three products (4-D, one float dtype, any strides) -------------------
 * New references, not registered with a scope; NULL with the error set (naming fn). */
/* img (N, C, H, W), w (Ocols, C/groups, KH, KW), bias (Ocols) or NULL → (N, Ocols, OH, OW) */
bn_tensor *bn__conv_forward_4d(const char *fn, const bn_tensor *img, const bn_tensor *w,
                               const bn_tensor *bias, const bn_conv_plan *p);
/* cols_side (N, Ocols, OH, OW), w (Ocols, C/groups, KH, KW), bias (C) or NULL → (N, C, H, W) */
bn_tensor *bn__conv_input_grad_4d(const char *fn, const bn_tensor *cols_side, const bn_tensor *w,
                                  const bn_tensor *bias, const bn_conv_plan *p);
/* cols_side (N, Ocols, OH, OW), img (N, C, H, W) → (Ocols, C/groups, KH, KW) */
bn_tensor *bn__conv_weight_grad_4d(const char *fn, const bn_tensor *cols_side,
                                   const bn_tensor *img, const bn_conv_plan *p);
/* t reshaped to 4-D as the plan reads the user's x-like or output-like tensors: a missing batch
 * dim becomes 1 and conv1d's missing H dim becomes 1. New reference, not registered. */
bn_tensor *bn__conv_as_4d(const bn_tensor *t, const bn_conv_plan *p);

/* ---- ops/pool.c: the pooling backward kernels at ops level ---------------------------------
 * grad_out (N, C, OH, OW) of any float dtype → grad_in (N, C, H, W) of that dtype. New
 * references, not registered. indices (N, C, OH, OW) i64 from the forward. */
bn_tensor *bn__max_pool2d_backward_4d(const bn_tensor *grad_out, const bn_tensor *indices,
                                      const bn_window_geom *g);
bn_tensor *bn__avg_pool2d_backward_4d(const bn_tensor *grad_out, const bn_window_geom *g,
                                      bool exclude_padding);
bn_tensor *bn__adaptive_avg_pool2d_backward_4d(const bn_tensor *grad_out,
                                               const bn_window_geom *g);

/* ---- autograd/grad_conv.c: hooks (same contract as those in grad.h) ------------------------ */
/* x, w, b (b may be NULL) as the user passed them; out the op's result. */
bn_tensor *bn__grad_conv(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                         const bn_conv_plan *p, bn_tensor *out);
/* x as the user passed it ((N, C, H, W) or (C, H, W)); g describes it as 4-D. */
bn_tensor *bn__grad_max_pool2d(const bn_tensor *x, const bn_tensor *indices,
                               const bn_window_geom *g, bn_tensor *out);
bn_tensor *bn__grad_avg_pool2d(const bn_tensor *x, const bn_window_geom *g, bool exclude_padding,
                               bn_tensor *out);
bn_tensor *bn__grad_adaptive_avg_pool2d(const bn_tensor *x, const bn_window_geom *g,
                                        bn_tensor *out);

#endif
