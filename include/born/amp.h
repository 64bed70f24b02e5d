/* born/amp.h — mixed precision: autocast regions and dynamic loss scaling (issue 5).
 *
 * Autocast. Between bn_autocast_begin(BN_BF16 or BN_F16) and bn_autocast_end() on one thread,
 * the ops that gain from low precision cast their floating inputs to that dtype and compute in
 * it, and the ops that need range compute in f32, like torch.autocast on CUDA. The casts are
 * ordinary differentiable conversions: gradients flow back through them to f32 master weights
 * and arrive as f32. Regions are per thread and nest (the innermost dtype applies); the state
 * and a small cache live with the thread.
 *
 *   low precision (inputs f32/f16/bf16 -> the region's dtype; f64 and integers are left alone):
 *     bn_matmul, bn_linear, bn_conv1d, bn_conv2d, bn_conv_transpose2d, bn_attention
 *     (and whatever is built on them: nn Linear/Conv modules, RNN cells, the GPT blocks)
 *   f32 (inputs f16/bf16 -> f32; the result is f32):
 *     bn_exp, bn_log, bn_log1p, bn_rsqrt, bn_pow, bn_pow_scalar, bn_rpow_scalar, bn_softplus,
 *     bn_sum, bn_sum_dims, bn_mean, bn_mean_dims, bn_prod, bn_cumsum, bn_logsumexp,
 *     bn_softmax, bn_log_softmax, bn_layer_norm, bn_rms_norm, bn_group_norm,
 *     bn_mse_loss, bn_l1_loss, bn_smooth_l1_loss, bn_huber_loss, bn_cross_entropy,
 *     bn_nll_loss, bn_binary_cross_entropy, bn_binary_cross_entropy_with_logits, bn_kl_div,
 *     bn_linear_cross_entropy
 *   everything else runs in the dtype of its inputs; binary ops promote mixed inputs
 *   (bf16 + f32 gives f32), like torch's "promote" list.
 *
 * These follow PyTorch's CUDA lists (torch 1.13, plus scaled_dot_product_attention from 2.x),
 * with three differences: mean and logsumexp are in the f32 list (they reduce like sum);
 * rms_norm is there like layer_norm; and binary_cross_entropy, which torch refuses under
 * autocast, is computed in f32. batch_norm keeps its input's dtype, as in torch (its kernels
 * accumulate in f32 anyway).
 *
 * A cast of a leaf that requires grad (a weight) is cached while grad mode is on, keyed by the
 * tensor, its dtype and its storage version, so a weight used several times in a region is cast
 * once; an in-place update (an optimizer step) or a backward through the cast makes the entry
 * stale and the next use casts again. The cache is emptied when the outermost region ends.
 * End regions before the thread exits (their cache would leak otherwise).
 *
 * Run only the forward pass (and the loss) inside a region; call bn_backward after
 * bn_autocast_end: the backward then runs in the dtypes the forward chose.
 *
 * Loss scaling. f16 gradients underflow: bn_grad_scaler multiplies the loss by a scale before
 * backward, divides the gradients by it before the optimizer step, skips the step when any
 * gradient is inf or NaN, and adapts the scale like torch.cuda.amp.GradScaler: halve it
 * (backoff_factor) after an overflow, double it (growth_factor) after growth_interval steps
 * without one. bf16 has f32's range and usually needs no scaler. A step (see docs/AMP.md):
 *
 *     bn_autocast_begin(BN_F16);
 *     bn_tensor *loss = bn_cross_entropy(bn_module_forward(model, x), y, (bn_ce_opts){0});
 *     bn_autocast_end();
 *     bn_backward(bn_grad_scaler_scale(scaler, loss));
 *     bn_grad_scaler_step(scaler, opt);    // unscales, steps unless inf/NaN was found
 *     bn_grad_scaler_update(scaler);
 *     bn_optim_zero_grad(opt);
 */
#ifndef BORN_AMP_H
#define BORN_AMP_H

#include "born/optim.h"
#include "born/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- autocast ------------------------------------------------------------------------------ */
/* Opens a region computing the low-precision ops in low (BN_BF16 or BN_F16; anything else is
 * BN_ERR_DTYPE). Regions nest up to 64 deep (BN_ERR_ARG beyond). */
BN_API bn_status bn_autocast_begin(bn_dtype low);
/* Closes the innermost region (BN_ERR_ARG when none is open); the outermost one empties the
 * cast cache. */
BN_API bn_status bn_autocast_end(void);
/* The innermost region's dtype, or BN_F32 when no region is open. */
BN_API bn_dtype bn_autocast_dtype(void);
BN_API bool bn_autocast_enabled(void);
BN_API int bn_autocast_depth(void); /* regions open on this thread */

/* ---- dynamic loss scaling ------------------------------------------------------------------ */
typedef struct bn_grad_scaler bn_grad_scaler;

/* Zero means torch's default. */
typedef struct bn_grad_scaler_opts {
    double init_scale;       /* 0: 65536 (2^16); finite and > 0 */
    double growth_factor;    /* 0: 2; > 1 */
    double backoff_factor;   /* 0: 0.5; in (0, 1) */
    int64_t growth_interval; /* 0: 2000; clean steps before the scale grows */
    bool disabled;           /* torch's enabled=False: every call passes through, scale 1 */
} bn_grad_scaler_opts;

BN_API bn_grad_scaler *bn_grad_scaler_new(bn_grad_scaler_opts o);
BN_API void bn_grad_scaler_free(bn_grad_scaler *s); /* NULL is ignored */

/* loss * scale (differentiable; loss itself when disabled). The scale is an f32 value, as in
 * torch. */
BN_API bn_tensor *bn_grad_scaler_scale(bn_grad_scaler *s, const bn_tensor *loss);
/* Divides every gradient of o's parameters by the scale (multiplies by the f32 reciprocal, like
 * torch) and records whether any of them held inf or NaN (checked before dividing). The work
 * stays on the gradients' device; the flag is read back to the host once. At most once per
 * optimizer between two bn_grad_scaler_update calls, and not after bn_grad_scaler_step. */
BN_API bn_status bn_grad_scaler_unscale(bn_grad_scaler *s, bn_optim *o);
/* Unscales o's gradients unless bn_grad_scaler_unscale already did, then runs bn_optim_step
 * unless inf/NaN was found (then the parameters and the optimizer's state stay untouched).
 * Once per optimizer between two updates. */
BN_API bn_status bn_grad_scaler_step(bn_grad_scaler *s, bn_optim *o);
/* Adapts the scale from this iteration's checks (at least one unscale or step must have run):
 * an overflow multiplies it by backoff_factor and restarts the count of clean steps; otherwise
 * the count grows and, on reaching growth_interval, the scale is multiplied by growth_factor
 * (unless that would overflow f32) and the count restarts. */
BN_API bn_status bn_grad_scaler_update(bn_grad_scaler *s);

BN_API double bn_grad_scaler_get_scale(const bn_grad_scaler *s); /* 1 when disabled; NaN: NULL */
BN_API bool bn_grad_scaler_is_enabled(const bn_grad_scaler *s);
/* Whether an unscale since the last update found inf or NaN (the step was or will be skipped). */
BN_API bool bn_grad_scaler_found_inf(const bn_grad_scaler *s);

/* What a checkpoint keeps (torch's state_dict: scale and _growth_tracker). */
typedef struct bn_grad_scaler_state {
    double scale;           /* finite, > 0 (stored as f32) */
    int64_t growth_tracker; /* clean steps since the last change, in [0, growth_interval) */
} bn_grad_scaler_state;
BN_API bn_status bn_grad_scaler_get_state(const bn_grad_scaler *s, bn_grad_scaler_state *out);
BN_API bn_status bn_grad_scaler_set_state(bn_grad_scaler *s, bn_grad_scaler_state st);

#ifdef __cplusplus
}
#endif
#endif
