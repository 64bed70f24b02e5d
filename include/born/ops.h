/* born/ops.h — math and shape operations on tensors.
 *
 * Every function returns a new reference (or NULL with an error, see tensor.h). Inputs are never
 * modified; binary ops broadcast like NumPy; dims may be negative (counting from the end).
 * Result dtypes follow PyTorch's promotion rules: integer inputs to ops that produce
 * fractions (exp, sqrt, div, mean, …) give f32, comparisons give bool. */
#ifndef BORN_OPS_H
#define BORN_OPS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- conversion and copies -------------------------------------------------------------- */
BN_API bn_tensor *bn_to_dtype(const bn_tensor *t, bn_dtype dt);
BN_API bn_tensor *bn_tensor_to(const bn_tensor *t, bn_device d);
BN_API bn_tensor *bn_contiguous(const bn_tensor *t); /* copies only if needed */
BN_API bn_tensor *bn_clone(const bn_tensor *t);      /* always a fresh contiguous copy */
/* Copies src (broadcast to dst's shape, cast to dst's dtype) into dst's elements, in place. */
BN_API bn_status bn_copy_(bn_tensor *dst, const bn_tensor *src);
BN_API bn_status bn_fill_(bn_tensor *dst, double v);

/* ---- unary (element-wise) ---------------------------------------------------------------- */
BN_API bn_tensor *bn_neg(const bn_tensor *x);
BN_API bn_tensor *bn_abs(const bn_tensor *x);
BN_API bn_tensor *bn_exp(const bn_tensor *x);
BN_API bn_tensor *bn_log(const bn_tensor *x);
BN_API bn_tensor *bn_log1p(const bn_tensor *x);
BN_API bn_tensor *bn_sqrt(const bn_tensor *x);
BN_API bn_tensor *bn_rsqrt(const bn_tensor *x);
BN_API bn_tensor *bn_sin(const bn_tensor *x);
BN_API bn_tensor *bn_cos(const bn_tensor *x);
BN_API bn_tensor *bn_tanh(const bn_tensor *x);
BN_API bn_tensor *bn_sigmoid(const bn_tensor *x);
BN_API bn_tensor *bn_relu(const bn_tensor *x);
BN_API bn_tensor *bn_leaky_relu(const bn_tensor *x, double negative_slope);
BN_API bn_tensor *bn_elu(const bn_tensor *x, double alpha);
BN_API bn_tensor *bn_gelu(const bn_tensor *x);      /* exact: x * Phi(x) (erf form) */
BN_API bn_tensor *bn_gelu_tanh(const bn_tensor *x); /* the tanh approximation */
BN_API bn_tensor *bn_silu(const bn_tensor *x);
/* log(1 + exp(beta x)) / beta, linear above threshold (torch defaults: beta 1, threshold 20). */
BN_API bn_tensor *bn_softplus(const bn_tensor *x, double beta, double threshold);
BN_API bn_tensor *bn_erf(const bn_tensor *x);
BN_API bn_tensor *bn_floor(const bn_tensor *x);
BN_API bn_tensor *bn_ceil(const bn_tensor *x);
BN_API bn_tensor *bn_round(const bn_tensor *x); /* half to even, like torch.round */
BN_API bn_tensor *bn_sign(const bn_tensor *x);
BN_API bn_tensor *bn_clamp(const bn_tensor *x, double lo, double hi);
BN_API bn_tensor *bn_clamp_min(const bn_tensor *x, double lo);
BN_API bn_tensor *bn_clamp_max(const bn_tensor *x, double hi);
BN_API bn_tensor *bn_logical_not(const bn_tensor *x);

/* ---- binary (element-wise, broadcasting) ------------------------------------------------- */
BN_API bn_tensor *bn_add(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_sub(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_mul(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_div(const bn_tensor *a, const bn_tensor *b); /* true division */
BN_API bn_tensor *bn_pow(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_maximum(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_minimum(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_remainder(const bn_tensor *a, const bn_tensor *b); /* sign of the divisor */
BN_API bn_tensor *bn_eq(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_ne(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_lt(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_le(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_gt(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_ge(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_logical_and(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_logical_or(const bn_tensor *a, const bn_tensor *b);
BN_API bn_tensor *bn_logical_xor(const bn_tensor *a, const bn_tensor *b);

/* Scalar variants: the scalar does not raise an integer tensor's dtype unless it has a
 * fraction-bearing category (int tensor + 0.5 gives f32), like a Python scalar in PyTorch. */
BN_API bn_tensor *bn_add_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_sub_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_mul_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_div_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_pow_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_rpow_scalar(double s, const bn_tensor *a); /* s ** a */
BN_API bn_tensor *bn_maximum_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_minimum_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_remainder_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_eq_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_ne_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_lt_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_le_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_gt_scalar(const bn_tensor *a, double s);
BN_API bn_tensor *bn_ge_scalar(const bn_tensor *a, double s);

/* cond ? a : b with broadcasting over all three; cond must be bool. */
BN_API bn_tensor *bn_where(const bn_tensor *cond, const bn_tensor *a, const bn_tensor *b);
/* x with value where mask (bool, broadcastable to x) is true. */
BN_API bn_tensor *bn_masked_fill(const bn_tensor *x, const bn_tensor *mask, double value);

/* ---- reductions (dim, or BN_ALL for every dim) -------------------------------------------
 * sum, prod and cumsum of integers or bool give i64; max/min keep the dtype; argmax/argmin give
 * i64 (the first extreme; NaN counts as the largest); mean, var, std, softmax and log_softmax
 * need a float dtype (BN_ERR_DTYPE otherwise, like torch); logsumexp of integers gives f32;
 * all/any give bool. Floats accumulate in double, in fixed blocks, so the result does not depend
 * on the thread count. */
BN_API bn_tensor *bn_sum(const bn_tensor *t, int dim, bool keepdim);
BN_API bn_tensor *bn_mean(const bn_tensor *t, int dim, bool keepdim);
BN_API bn_tensor *bn_prod(const bn_tensor *t, int dim, bool keepdim);
BN_API bn_tensor *bn_max(const bn_tensor *t, int dim, bool keepdim);
BN_API bn_tensor *bn_min(const bn_tensor *t, int dim, bool keepdim);
BN_API bn_tensor *bn_argmax(const bn_tensor *t, int dim, bool keepdim); /* i64, first occurrence */
BN_API bn_tensor *bn_argmin(const bn_tensor *t, int dim, bool keepdim);
/* correction = 1 gives the unbiased estimate (torch's default), 0 the population one. */
BN_API bn_tensor *bn_var(const bn_tensor *t, int dim, int correction, bool keepdim);
BN_API bn_tensor *bn_std(const bn_tensor *t, int dim, int correction, bool keepdim);
BN_API bn_tensor *bn_logsumexp(const bn_tensor *t, int dim, bool keepdim);
BN_API bn_tensor *bn_all(const bn_tensor *t, int dim, bool keepdim); /* bool */
BN_API bn_tensor *bn_any(const bn_tensor *t, int dim, bool keepdim);
/* Reduce over several dims at once (ndims entries, distinct). */
BN_API bn_tensor *bn_sum_dims(const bn_tensor *t, const int *dims, int ndims, bool keepdim);
BN_API bn_tensor *bn_mean_dims(const bn_tensor *t, const int *dims, int ndims, bool keepdim);
BN_API bn_tensor *bn_cumsum(const bn_tensor *t, int dim);
BN_API bn_tensor *bn_softmax(const bn_tensor *t, int dim);
BN_API bn_tensor *bn_log_softmax(const bn_tensor *t, int dim);

/* ---- linear algebra ---------------------------------------------------------------------- */
/* torch.matmul semantics: 1-D·1-D dot, 2-D·2-D, 1-D promoted and squeezed, batched with
 * broadcast batch dims. */
BN_API bn_tensor *bn_matmul(const bn_tensor *a, const bn_tensor *b);

/* ---- shape (views where the layout allows: they share storage with their input) ---------- */
BN_API bn_tensor *bn_reshape(const bn_tensor *t, bn_shape s); /* one dim may be -1 */
BN_API bn_tensor *bn_view(const bn_tensor *t, bn_shape s);    /* error if it would need a copy */
BN_API bn_tensor *bn_flatten(const bn_tensor *t, int start_dim, int end_dim);
BN_API bn_tensor *bn_permute(const bn_tensor *t, const int *dims, int ndims);
BN_API bn_tensor *bn_transpose(const bn_tensor *t, int d0, int d1);
BN_API bn_tensor *bn_squeeze(const bn_tensor *t, int dim); /* BN_ALL: every size-1 dim */
BN_API bn_tensor *bn_unsqueeze(const bn_tensor *t, int dim);
BN_API bn_tensor *bn_expand(const bn_tensor *t, bn_shape s); /* -1 keeps a dim */
BN_API bn_tensor *bn_broadcast_to(const bn_tensor *t, bn_shape s);
/* Elements start, start+step, … < end along dim (end clamped like Python slicing; step > 0). */
BN_API bn_tensor *bn_slice(const bn_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
BN_API bn_tensor *bn_narrow(const bn_tensor *t, int dim, int64_t start, int64_t length);
BN_API bn_tensor *bn_select(const bn_tensor *t, int dim, int64_t index); /* removes dim */
BN_API bn_tensor *bn_as_strided(const bn_tensor *t, bn_shape s, const int64_t *strides,
                                int64_t offset);

BN_API bn_tensor *bn_cat(bn_tensor *const *ts, int n, int dim);
BN_API bn_tensor *bn_stack(bn_tensor *const *ts, int n, int dim);
/* split into pieces of split_size along dim (the last may be smaller); out receives views,
 * up to max_out of them; returns the count (or -1 with an error). Caller releases each. */
BN_API int bn_split(const bn_tensor *t, int64_t split_size, int dim, bn_tensor **out, int max_out);
BN_API int bn_split_sizes(const bn_tensor *t, const int64_t *sizes, int nsizes, int dim,
                          bn_tensor **out);
BN_API int bn_chunk(const bn_tensor *t, int chunks, int dim, bn_tensor **out, int max_out);
BN_API bn_tensor *bn_repeat(const bn_tensor *t, bn_shape repeats);
BN_API bn_tensor *bn_tril(const bn_tensor *t, int64_t diagonal);
BN_API bn_tensor *bn_triu(const bn_tensor *t, int64_t diagonal);

typedef enum bn_pad_mode { BN_PAD_CONSTANT = 0, BN_PAD_REFLECT, BN_PAD_REPLICATE } bn_pad_mode;
/* pads like torch.nn.functional.pad: pads holds (before, after) pairs starting from the LAST dim:
 * {left, right, top, bottom, …}; npads is even and <= 2*ndim. Negative pads crop. */
BN_API bn_tensor *bn_pad(const bn_tensor *t, const int64_t *pads, int npads, bn_pad_mode mode,
                         double value);

/* ---- indexing ------------------------------------------------------------------------------ */
BN_API bn_tensor *bn_index_select(const bn_tensor *t, int dim, const bn_tensor *index);
BN_API bn_tensor *bn_gather(const bn_tensor *t, int dim, const bn_tensor *index);
BN_API bn_tensor *bn_scatter(const bn_tensor *t, int dim, const bn_tensor *index,
                             const bn_tensor *src);
BN_API bn_tensor *bn_scatter_add(const bn_tensor *t, int dim, const bn_tensor *index,
                                 const bn_tensor *src);
/* values and indices (i64) of the k largest (or smallest) along dim, sorted. Either out pointer
 * may be NULL. */
BN_API bn_status bn_topk(const bn_tensor *t, int64_t k, int dim, bool largest, bn_tensor **values,
                         bn_tensor **indices);
/* Stable sort along dim. */
BN_API bn_status bn_sort(const bn_tensor *t, int dim, bool descending, bn_tensor **values,
                         bn_tensor **indices);
BN_API bn_tensor *bn_argsort(const bn_tensor *t, int dim, bool descending);
/* i64 tensor of shape t.shape + [num_classes]; num_classes <= 0 infers max + 1. */
BN_API bn_tensor *bn_one_hot(const bn_tensor *t, int64_t num_classes);

/* ---- neural-network functions (differentiable; modules in nn.h wrap them) ------------------ */
/* x @ w^T + b: x (..., in), w (out, in), b (out) or NULL. */
BN_API bn_tensor *bn_linear(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b);

/* Zero means the default: stride 1, padding 0, dilation 1, groups 1, output_padding 0.
 * same = true pads so the output has the input's spatial size (stride 1 only), like
 * padding='same' in PyTorch. */
typedef struct bn_conv_opts {
    int64_t stride, padding, dilation, groups, output_padding;
    bool same;
} bn_conv_opts;
/* x (N, C, L), w (O, C/groups, K), b (O) or NULL → (N, O, L') */
BN_API bn_tensor *bn_conv1d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                            bn_conv_opts o);
/* x (N, C, H, W), w (O, C/groups, KH, KW), b (O) or NULL → (N, O, H', W') */
BN_API bn_tensor *bn_conv2d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                            bn_conv_opts o);
/* x (N, C, H, W), w (C, O/groups, KH, KW), b (O) or NULL → (N, O, H', W') */
BN_API bn_tensor *bn_conv_transpose2d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                                      bn_conv_opts o);

/* Zero means the default: stride = kernel, padding 0, dilation 1, floor mode, and (for average
 * pooling) padding counted in the divisor like PyTorch's count_include_pad=True. */
typedef struct bn_pool_opts {
    int64_t stride, padding, dilation;
    bool ceil_mode;
    bool exclude_padding; /* avg pooling: divide by the elements inside the input only */
} bn_pool_opts;
/* x (N, C, H, W) or (C, H, W), square kernel */
BN_API bn_tensor *bn_max_pool2d(const bn_tensor *x, int64_t kernel, bn_pool_opts o);
BN_API bn_tensor *bn_avg_pool2d(const bn_tensor *x, int64_t kernel, bn_pool_opts o);
BN_API bn_tensor *bn_adaptive_avg_pool2d(const bn_tensor *x, int64_t out_h, int64_t out_w);

/* x (N, C, ...). Training: normalises with the batch statistics and, when running_mean/var are
 * given, updates them in place (momentum like PyTorch, unbiased variance); eval: uses them.
 * weight/bias (C) may be NULL. */
BN_API bn_tensor *bn_batch_norm(const bn_tensor *x, bn_tensor *running_mean, bn_tensor *running_var,
                                const bn_tensor *weight, const bn_tensor *bias, bool training,
                                double momentum, double eps);
/* Normalises over the last normalized_ndim dims; weight/bias have those dims' shape or NULL. */
BN_API bn_tensor *bn_layer_norm(const bn_tensor *x, int normalized_ndim, const bn_tensor *weight,
                                const bn_tensor *bias, double eps);
BN_API bn_tensor *bn_rms_norm(const bn_tensor *x, int normalized_ndim, const bn_tensor *weight,
                              double eps);
/* x (N, C, ...), C divisible by groups; weight/bias (C) or NULL. */
BN_API bn_tensor *bn_group_norm(const bn_tensor *x, int64_t groups, const bn_tensor *weight,
                                const bn_tensor *bias, double eps);
/* Zeroes each element with probability p and scales the rest by 1/(1-p) when training; the
 * identity otherwise. Draws from the thread's Philox generator. */
BN_API bn_tensor *bn_dropout(const bn_tensor *x, double p, bool training);
/* Rows of weight (num, dim) picked by integer indices (any shape) → indices.shape + [dim]. */
BN_API bn_tensor *bn_embedding(const bn_tensor *weight, const bn_tensor *indices);

/* ---- losses ----------------------------------------------------------------------------------- */
typedef enum bn_reduction { BN_REDUCTION_MEAN = 0, BN_REDUCTION_SUM, BN_REDUCTION_NONE } bn_reduction;

typedef struct bn_loss_opts {
    bn_reduction reduction;
    double beta; /* smooth_l1 / huber threshold (0: 1.0) */
} bn_loss_opts;
BN_API bn_tensor *bn_mse_loss(const bn_tensor *input, const bn_tensor *target, bn_loss_opts o);
BN_API bn_tensor *bn_l1_loss(const bn_tensor *input, const bn_tensor *target, bn_loss_opts o);
BN_API bn_tensor *bn_smooth_l1_loss(const bn_tensor *input, const bn_tensor *target,
                                    bn_loss_opts o);
BN_API bn_tensor *bn_huber_loss(const bn_tensor *input, const bn_tensor *target, bn_loss_opts o);

typedef struct bn_ce_opts {
    bn_reduction reduction;
    double label_smoothing;   /* in [0, 1] */
    const bn_tensor *weight;  /* per-class weights (C) or NULL */
    bool use_ignore_index;    /* targets equal to ignore_index contribute nothing */
    int64_t ignore_index;
} bn_ce_opts;
/* logits (N, C) or (N, C, d1, …); target: class indices (N) / (N, d1, …) as i64, or
 * probabilities with logits' shape (float). */
BN_API bn_tensor *bn_cross_entropy(const bn_tensor *logits, const bn_tensor *target, bn_ce_opts o);
/* log_probs (N, C, …), target class indices. label_smoothing is not used. */
BN_API bn_tensor *bn_nll_loss(const bn_tensor *log_probs, const bn_tensor *target, bn_ce_opts o);

typedef struct bn_bce_opts {
    bn_reduction reduction;
    const bn_tensor *weight;     /* broadcast to the input, or NULL */
    const bn_tensor *pos_weight; /* with logits: weight of positive examples per class, or NULL */
} bn_bce_opts;
BN_API bn_tensor *bn_binary_cross_entropy(const bn_tensor *probs, const bn_tensor *target,
                                          bn_bce_opts o);
BN_API bn_tensor *bn_binary_cross_entropy_with_logits(const bn_tensor *logits,
                                                      const bn_tensor *target, bn_bce_opts o);
/* KL(target || input) with input as log-probabilities, like torch.nn.functional.kl_div;
 * log_target: target is given as log-probabilities. BN_REDUCTION_MEAN averages over every
 * element (PyTorch's 'mean'); batchmean is sum / N. */
typedef struct bn_kl_opts {
    bn_reduction reduction;
    bool batchmean;
    bool log_target;
} bn_kl_opts;
BN_API bn_tensor *bn_kl_div(const bn_tensor *input, const bn_tensor *target, bn_kl_opts o);

#ifdef __cplusplus
}
#endif
#endif
