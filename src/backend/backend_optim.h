/* backend/backend_optim.h — the optimizer-update kernel family (issues 4 and 5).
 *
 * One call updates MANY parameters in place with one rule (multi-tensor: one fused pass over
 * each parameter, its gradient and its state, and on a GPU one launch for a whole list). Every
 * array is contiguous, of the call's dtype (f32 or f64; any other dtype is BN_ERR_UNSUPPORTED),
 * and lives on the backend's device; the pointers are element 0 of each array.
 *
 * Every per-step scalar (bias corrections, step sizes, NAdam's mu products, Adagrad's decayed
 * rate, SGD's first-step flag) is computed on the host by src/optim/ and passed per tensor in
 * coef[], so the kernels are pure element-wise passes. Scalars are rounded once to the element
 * type before use and each element follows the exact operation order of PyTorch 1.13's
 * _single_tensor_<name> (a + alpha*b with alpha in the element type, addcdiv as a + (v*b)/c, no
 * fused multiply-add), so a backend's f32 results equal the CPU's up to its division and square
 * root rounding (bit for bit where both are correctly rounded). Elements are independent:
 * results never depend on the thread count or the launch geometry. */
#ifndef BORN_BACKEND_OPTIM_H
#define BORN_BACKEND_OPTIM_H

#include "backend/backend.h"

/* The update rules, with the state slots each one uses (state[k] NULL where unused) and the
 * meaning of its per-tensor coef[]. g is the gradient, negated when maximize; "+ wd*p" is added
 * to g only when weight_decay != 0.
 *
 *  SGD      state[0] momentum_buffer (NULL: no momentum)
 *           coef[0] != 0 on the tensor's first step (the buffer starts as d, not from 0)
 *           d = g + wd*p; buf = first ? d : buf*momentum + (1-dampening)*d;
 *           d = nesterov ? d + momentum*buf : buf; p = p + (-lr)*d
 *  ADAM     state[0] exp_avg m, state[1] exp_avg_sq v, state[2] max_exp_avg_sq (amsgrad) or NULL
 *           coef[0] step_size = lr / (1 - beta1^t), coef[1] sqrt(1 - beta2^t)
 *           p = p*decay (decay != 1: AdamW); g = g + wd*p (Adam's L2; wd 0 for AdamW);
 *           m = m*b1 + (1-b1)*g; v = v*b2 + (1-b2)*g*g; vmax = max(vmax, v) (NaN wins);
 *           p = p + (-step_size)*m / (sqrt(v or vmax)/coef[1] + eps)
 *  RMSPROP  state[0] square_avg, state[1] momentum_buffer or NULL, state[2] grad_avg or NULL
 *           (centered); no coef
 *  ADAGRAD  state[0] sum; coef[0] clr = lr / (1 + (t-1)*lr_decay)
 *  ADADELTA state[0] square_avg, state[1] acc_delta; no coef
 *  NADAM    state[0] exp_avg, state[1] exp_avg_sq (never maximize)
 *           coef[0] 1 - beta2^t, coef[1] -lr*(1-mu)/(1-mu_product),
 *           coef[2] -lr*mu_next/(1-mu_product_next)
 * The CPU backend (backend/cpu/optim.c) is the reference for the exact expressions. */
typedef enum bn_optim_rule {
    BN_OPTIM_RULE_SGD,
    BN_OPTIM_RULE_ADAM, /* Adam and AdamW */
    BN_OPTIM_RULE_RMSPROP,
    BN_OPTIM_RULE_ADAGRAD,
    BN_OPTIM_RULE_ADADELTA,
    BN_OPTIM_RULE_NADAM,
    BN_OPTIM_RULE_COUNT
} bn_optim_rule;

/* The hyper-parameters shared by every tensor of one call (PyTorch's defaults applied). */
typedef struct bn_optim_hparams {
    double lr;           /* SGD, RMSprop, Adadelta */
    double weight_decay; /* L2 added to the gradient (Adam: 0 for AdamW) */
    double momentum;     /* SGD, RMSprop */
    double dampening;    /* SGD */
    double beta1, beta2; /* Adam, NAdam */
    double alpha;        /* RMSprop */
    double rho;          /* Adadelta */
    double eps;          /* Adam, RMSprop, Adagrad, Adadelta, NAdam */
    double decay;        /* Adam: p *= decay first when != 1 (AdamW: 1 - lr*weight_decay) */
    bool nesterov;       /* SGD */
    bool maximize;       /* every rule but NAdam */
} bn_optim_hparams;

#define BN_OPTIM_MAX_STATE 3
#define BN_OPTIM_MAX_COEF 3

/* One parameter of a call: (numel) arrays on the backend's device. */
typedef struct bn_optim_tensor {
    void *param;                        /* updated in place */
    const void *grad;                   /* read only */
    void *state[BN_OPTIM_MAX_STATE];    /* updated in place; NULL where the rule has none */
    int64_t numel;                      /* may be 0 */
    double coef[BN_OPTIM_MAX_COEF];     /* per-tensor step scalars (see the rule) */
} bn_optim_tensor;

typedef struct bn_backend_optim {
    /* Updates ts[0 .. n) (n >= 0) in place with rule; every array has dtype dt. No two tensors
     * of a call overlap. Asynchronous on devices with a stream (returns once queued). */
    bn_status (*update)(bn_optim_rule rule, bn_dtype dt, const bn_optim_hparams *h,
                        const bn_optim_tensor *ts, int n);

    /* ---- gradient clipping (optim/clip.c); optional: NULL where a backend lacks them ----
     * grads[0 .. n) (n >= 0) are contiguous arrays of numel[i] (>= 0; a 0-length array's
     * pointer may be NULL) elements of dtype dt (f32, f64, f16 or bf16; anything else is
     * BN_ERR_UNSUPPORTED) on the backend's device. Both are asynchronous on devices with a
     * stream. */
    /* Writes into the device f64 scalar *out_f64 the sum over every element of every array of
     * |g|^p (p == 2: g*g, p == 1: |g|, otherwise pow(|g|, p), each in f64 from the exactly
     * widened element), or the largest |g| (0 when there is no element) when p is infinite;
     * NaN anywhere gives NaN. Deterministic: each array (or fixed-size piece of one) is summed
     * in a fixed order into a partial and the partials are combined in array order, so the
     * result never depends on thread counts, timing or launch geometry (no float atomics). */
    bn_status (*grad_norm)(bn_dtype dt, const void *const *grads, const int64_t *numel, int n,
                           double p, void *out_f64);
    /* Multiplies every element of every array in place by coef, computed on the device from
     * the f64 scalar *total_f64 that grad_norm wrote: norm = total (p infinite or 1),
     * sqrt(total) (p == 2) or pow(total, 1/p); coef = max_norm / (norm + 1e-6). Nothing is
     * written unless coef < 1 or coef is NaN (torch's clamp to 1); coef is rounded to dt first
     * and each element becomes round(g * coef) computed in f32 for f16/bf16 — exactly what
     * bn_mul_scalar(g, coef) gives. No host read. */
    bn_status (*scale_grads)(bn_dtype dt, void *const *grads, const int64_t *numel, int n,
                             const void *total_f64, double max_norm, double p);
} bn_backend_optim;

#endif
