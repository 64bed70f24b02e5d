/* autograd/grad_nn.h — the hooks ops/nn.c calls to record the derivative rules of linear, the
 * norms and embedding (grad_nn.c). Like grad.h's hooks, each records a node on out when an input
 * requires grad (and grad mode is on) and returns out, or NULL after releasing out. Dropout needs
 * no hook: it is x * mask, recorded by bn_mul. */
#ifndef BORN_AUTOGRAD_GRAD_NN_H
#define BORN_AUTOGRAD_GRAD_NN_H

#include "autograd/autograd.h"
#include "backend/backend_nn.h"

/* out = x @ w^T + b; b may be NULL */
bn_tensor *bn__grad_linear(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                           bn_tensor *out);

/* Layer / RMS / group norm. x, weight, bias are the op's inputs (weight, bias may be NULL);
 * xc is x contiguous in the compute dtype, wc the weight in it (or NULL); mean, rstd (rows) are
 * what the forward kernel wrote. */
bn_tensor *bn__grad_row_norm(const char *name, const bn_tensor *x, const bn_tensor *weight,
                             const bn_tensor *bias, const bn_tensor *xc, const bn_tensor *wc,
                             const bn_tensor *mean, const bn_tensor *rstd,
                             const bn_row_norm_geom *g, bn_tensor *out);

/* Batch norm of x viewed as (N, C, S): xc, wc as above; mean, var (C) are the statistics the
 * output was normalised with (the batch's when training, fresh copies of the running ones
 * otherwise). */
bn_tensor *bn__grad_batch_norm(const bn_tensor *x, const bn_tensor *weight, const bn_tensor *bias,
                               const bn_tensor *xc, const bn_tensor *wc, const bn_tensor *mean,
                               const bn_tensor *var, int64_t N, int64_t C, int64_t S, double eps,
                               bool training, bn_tensor *out);

/* out = weight[indices]; indices_c is the contiguous i32/i64 index tensor the kernel read. */
bn_tensor *bn__grad_embedding(const bn_tensor *weight, const bn_tensor *indices_c, bn_tensor *out);

#endif
