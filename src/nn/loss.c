/* nn/loss.c — element-wise losses: MSE, L1, SmoothL1, Huber, BCE, BCE with logits and KL
 * divergence, with reductions none / mean / sum, like torch.nn.functional.
 *
 * Each loss computes its forward with public ops (grad mode off) and records one node whose
 * rule, written with differentiable public ops next to the forward, gives the gradient with
 * respect to the input (and the target where PyTorch has one). Input and target broadcast
 * (PyTorch warns and broadcasts; so does born, silently). Cross entropy and NLL live in
 * loss_ce.c. */
#include "amp/amp_internal.h"
#include "nn/loss_internal.h"

#include <math.h>

/* node layout shared by the rules in this file */
enum { SAVED_INPUT, SAVED_TARGET, SAVED_WEIGHT, SAVED_POS_WEIGHT };
enum { F_DIVISOR, F_PARAM }; /* f[0]: what mean divides by (1 otherwise); f[1]: beta / delta */
enum { I_LOG_TARGET };

/* ---- checks --------------------------------------------------------------------------------- */
static bool shapes_broadcast(const bn_tensor *a, const bn_tensor *b, int64_t *out, int *nout)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int ia = a->ndim - n + i, ib = b->ndim - n + i;
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) return false;
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return true;
}

/* input and target: float, on one device, broadcastable; *count gets the broadcast numel */
static bool check_pair(const char *fn, const bn_tensor *input, const bn_tensor *target,
                       bn_reduction r, int64_t *count)
{
    if (!input) return bn__null_arg(fn, "input"), false;
    if (!target) return bn__null_arg(fn, "target"), false;
    if (!loss_check_reduction(fn, r)) return false;
    if (!bn_dtype_is_float(input->dtype))
        return bn__error(BN_ERR_DTYPE, "%s: input must be a float tensor, got %s", fn,
                         bn_dtype_name(input->dtype)),
               false;
    if (!bn_dtype_is_float(target->dtype))
        return bn__error(BN_ERR_DTYPE, "%s: target must be a float tensor, got %s", fn,
                         bn_dtype_name(target->dtype)),
               false;
    if (!bn__same_device(fn, input, target)) return false;
    int64_t shape[BN_MAX_DIMS];
    int nd;
    if (!shapes_broadcast(input, target, shape, &nd))
        return bn__error(BN_ERR_SHAPE, "%s: input %s and target %s have different shapes", fn,
                         bn__tshape(input), bn__tshape(target)),
               false;
    *count = 1;
    for (int i = 0; i < nd; i++) *count *= shape[i];
    return true;
}

/* an optional weight tensor that must broadcast to the input */
static bool check_weight(const char *fn, const char *arg, const bn_tensor *w,
                         const bn_tensor *input)
{
    if (!w) return true;
    if (!bn_dtype_is_float(w->dtype))
        return bn__error(BN_ERR_DTYPE, "%s: %s must be a float tensor, got %s", fn, arg,
                         bn_dtype_name(w->dtype)),
               false;
    int64_t shape[BN_MAX_DIMS];
    int nd;
    if (!shapes_broadcast(input, w, shape, &nd) || nd != input->ndim)
        return bn__error(BN_ERR_SHAPE, "%s: %s %s does not broadcast to input %s", fn, arg,
                         bn__tshape(w), bn__tshape(input)),
               false;
    for (int i = 0; i < nd; i++)
        if (shape[i] != input->shape[i])
            return bn__error(BN_ERR_SHAPE, "%s: %s %s does not broadcast to input %s", fn, arg,
                             bn__tshape(w), bn__tshape(input)),
                   false;
    if (bn_grad_enabled() && w->requires_grad)
        return bn__error(BN_ERR_UNSUPPORTED,
                         "%s: the gradient with respect to %s is not implemented", fn, arg),
               false;
    return bn__same_device(fn, input, w);
}

/* ---- recording ------------------------------------------------------------------------------- */
/* Attaches rule to out when input or target requires grad; returns out registered with the
 * caller's scope (or NULL after releasing it). */
static bn_tensor *record(bn_tensor *out, const char *name, bn_backward_fn rule,
                         const bn_tensor *input, const bn_tensor *target, const bn_tensor *weight,
                         const bn_tensor *pos_weight, double divisor, double param)
{
    if (!out) return NULL;
    const bn_tensor *in[2] = {input, target};
    if (bn__grad_needed(in, 2)) {
        bn_node *n = bn__grad_record(out, name, rule, in, 2);
        if (!n) {
            bn_release(out);
            return NULL;
        }
        bn__node_save(n, SAVED_INPUT, input);
        bn__node_save(n, SAVED_TARGET, target);
        if (weight) bn__node_save(n, SAVED_WEIGHT, weight);
        if (pos_weight) bn__node_save(n, SAVED_POS_WEIGHT, pos_weight);
        n->f[F_DIVISOR] = divisor;
        n->f[F_PARAM] = param;
    }
    return bn__out(out);
}

/* the incoming gradient, divided by the element count for mean */
static const bn_tensor *scaled(bn_node *n, const bn_tensor *g)
{
    return n->f[F_DIVISOR] != 1 ? bn_div_scalar(g, n->f[F_DIVISOR]) : g;
}

static bn_tensor *one_minus(const bn_tensor *x) { return bn_add_scalar(bn_neg(x), 1); }

static double divisor_for(bn_reduction r, int64_t count)
{
    return r == BN_REDUCTION_MEAN ? (double)count : 1.0;
}

/* grads[0] = s * dx and grads[1] = s * dt, where the rule needs them (dt may be NULL for -dx) */
static bn_status deliver(bn_node *n, bn_tensor **grads, const bn_tensor *s, const bn_tensor *dx,
                         const bn_tensor *dt)
{
    if (bn__node_needs(n, 0)) grads[0] = bn_mul(s, dx);
    if (bn__node_needs(n, 1)) grads[1] = dt ? bn_mul(s, dt) : bn_neg(bn_mul(s, dx));
    return bn_error_code();
}

/* ---- MSE: (x - t)^2; d/dx = 2 (x - t) ------------------------------------------------------- */
static bn_status mse_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *d = bn_sub(bn__node_saved(n, SAVED_INPUT), bn__node_saved(n, SAVED_TARGET));
    return deliver(n, grads, scaled(n, g), bn_mul_scalar(d, 2.0), NULL);
}

bn_tensor *bn_mse_loss(const bn_tensor *input, const bn_tensor *target, bn_loss_opts o)
{
    int64_t count;
    BN_AUTOCAST_F32(bn_mse_loss(ac[0], ac[1], o), input, target);
    if (!check_pair("bn_mse_loss", input, target, o.reduction, &count)) return NULL;
    loss_forward_begin();
    bn_tensor *d = bn_sub(input, target);
    bn_tensor *out = loss_forward_end(loss_reduce(bn_mul(d, d), o.reduction));
    return record(out, "MseLossBackward", mse_backward, input, target, NULL, NULL,
                  divisor_for(o.reduction, count), 0);
}

/* ---- L1: |x - t|; d/dx = sign(x - t) --------------------------------------------------------- */
static bn_status l1_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *d = bn_sub(bn__node_saved(n, SAVED_INPUT), bn__node_saved(n, SAVED_TARGET));
    return deliver(n, grads, scaled(n, g), bn_sign(d), NULL);
}

bn_tensor *bn_l1_loss(const bn_tensor *input, const bn_tensor *target, bn_loss_opts o)
{
    int64_t count;
    BN_AUTOCAST_F32(bn_l1_loss(ac[0], ac[1], o), input, target);
    if (!check_pair("bn_l1_loss", input, target, o.reduction, &count)) return NULL;
    loss_forward_begin();
    bn_tensor *out = loss_forward_end(loss_reduce(bn_abs(bn_sub(input, target)), o.reduction));
    return record(out, "L1LossBackward", l1_backward, input, target, NULL, NULL,
                  divisor_for(o.reduction, count), 0);
}

/* ---- SmoothL1 (beta): |d| < beta ? d^2 / (2 beta) : |d| - beta/2; d/dx = clamp(d/beta, -1, 1)
 * ---- Huber (delta):   |d| < delta ? d^2 / 2 : delta (|d| - delta/2); d/dx = clamp(d, ±delta) */
static bn_status smooth_l1_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    double beta = n->f[F_PARAM];
    bn_tensor *d = bn_sub(bn__node_saved(n, SAVED_INPUT), bn__node_saved(n, SAVED_TARGET));
    return deliver(n, grads, scaled(n, g), bn_clamp(bn_div_scalar(d, beta), -1, 1), NULL);
}

static bn_status huber_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    double delta = n->f[F_PARAM];
    bn_tensor *d = bn_sub(bn__node_saved(n, SAVED_INPUT), bn__node_saved(n, SAVED_TARGET));
    return deliver(n, grads, scaled(n, g), bn_clamp(d, -delta, delta), NULL);
}

static bn_tensor *smooth_family(const char *fn, const bn_tensor *input, const bn_tensor *target,
                                bn_loss_opts o, bool huber)
{
    int64_t count;
    if (!check_pair(fn, input, target, o.reduction, &count)) return NULL;
    double beta = o.beta == 0 ? 1.0 : o.beta;
    if (!(beta > 0) || isinf(beta))
        return bn__error_null(BN_ERR_ARG, "%s: %s = %g must be positive", fn,
                              huber ? "beta (delta)" : "beta", beta);
    loss_forward_begin();
    bn_tensor *z = bn_abs(bn_sub(input, target));
    bn_tensor *quad = huber ? bn_mul(bn_mul_scalar(z, 0.5), z)
                            : bn_div_scalar(bn_mul(bn_mul_scalar(z, 0.5), z), beta);
    bn_tensor *lin = huber ? bn_mul_scalar(bn_sub_scalar(z, 0.5 * beta), beta)
                           : bn_sub_scalar(z, 0.5 * beta);
    bn_tensor *l = bn_where(bn_lt_scalar(z, beta), quad, lin);
    bn_tensor *out = loss_forward_end(loss_reduce(l, o.reduction));
    return record(out, huber ? "HuberLossBackward" : "SmoothL1LossBackward",
                  huber ? huber_backward : smooth_l1_backward, input, target, NULL, NULL,
                  divisor_for(o.reduction, count), beta);
}

bn_tensor *bn_smooth_l1_loss(const bn_tensor *input, const bn_tensor *target, bn_loss_opts o)
{
    BN_AUTOCAST_F32(bn_smooth_l1_loss(ac[0], ac[1], o), input, target);
    return smooth_family("bn_smooth_l1_loss", input, target, o, false);
}

bn_tensor *bn_huber_loss(const bn_tensor *input, const bn_tensor *target, bn_loss_opts o)
{
    BN_AUTOCAST_F32(bn_huber_loss(ac[0], ac[1], o), input, target);
    return smooth_family("bn_huber_loss", input, target, o, true);
}

/* ---- BCE: -w (t log p + (1 - t) log(1 - p)), each log clamped at -100 like torch;
 * d/dp = w (p - t) / max(p (1 - p), 1e-12). torch has no gradient for the target. */
static bn_status bce_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    const bn_tensor *p = bn__node_saved(n, SAVED_INPUT), *t = bn__node_saved(n, SAVED_TARGET);
    const bn_tensor *w = bn__node_saved(n, SAVED_WEIGHT);
    const bn_tensor *s = scaled(n, g);
    if (w) s = bn_mul(s, w);
    bn_tensor *denom = bn_clamp_min(bn_mul(p, one_minus(p)), 1e-12);
    grads[0] = bn_mul(s, bn_div(bn_sub(p, t), denom));
    return bn_error_code();
}

bn_tensor *bn_binary_cross_entropy(const bn_tensor *probs, const bn_tensor *target,
                                   bn_bce_opts o)
{
    const char *fn = "bn_binary_cross_entropy";
    BN_AUTOCAST_F32(bn_binary_cross_entropy(ac[0], ac[1], o), probs, target);
    const bn_tensor *input = probs;
    int64_t count;
    if (!check_pair(fn, input, target, o.reduction, &count)) return NULL;
    if (!check_weight(fn, "weight", o.weight, input)) return NULL;
    if (o.pos_weight)
        return bn__error_null(BN_ERR_ARG, "%s: pos_weight is only for "
                                          "bn_binary_cross_entropy_with_logits", fn);
    if (bn_grad_enabled() && target->requires_grad)
        return bn__error_null(BN_ERR_UNSUPPORTED,
                              "%s: the gradient with respect to target is not implemented "
                              "(as in PyTorch); detach it",
                              fn);
    loss_forward_begin();
    bn_tensor *outside = bn_logical_or(bn_lt_scalar(input, 0), bn_gt_scalar(input, 1));
    bn_tensor *bad = bn_any(outside, BN_ALL, false);
    if (bad && bn_item(bad) != 0) {
        loss_forward_end(NULL);
        return bn__error_null(BN_ERR_ARG, "%s: all elements of probs %s should be in [0, 1]", fn,
                              bn__tshape(input));
    }
    bn_tensor *logp = bn_clamp_min(bn_log(input), -100);
    bn_tensor *log1mp = bn_clamp_min(bn_log1p(bn_neg(input)), -100);
    bn_tensor *l = bn_sub(bn_mul(bn_sub_scalar(target, 1), log1mp), bn_mul(target, logp));
    if (o.weight) l = bn_mul(l, o.weight);
    bn_tensor *out = loss_forward_end(loss_reduce(l, o.reduction));
    return record(out, "BinaryCrossEntropyBackward", bce_backward, input, target, o.weight, NULL,
                  divisor_for(o.reduction, count), 0);
}

/* ---- BCE with logits: w [(1 - t) x + c softplus(-x)], c = 1 + (pw - 1) t, computed as torch
 * does: softplus(-x) = log(exp(-m) + exp(-x - m)) + m with m = max(-x, 0).
 * d/dx = w (c sigmoid(x) - pw t); d/dt = w ((pw - 1) softplus(-x) - x). */
static bn_tensor *softplus_neg(const bn_tensor *x)
{
    bn_tensor *m = bn_clamp_min(bn_neg(x), 0);
    return bn_add(bn_log(bn_add(bn_exp(bn_neg(m)), bn_exp(bn_sub(bn_neg(x), m)))), m);
}

static bn_status bce_logits_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    const bn_tensor *x = bn__node_saved(n, SAVED_INPUT), *t = bn__node_saved(n, SAVED_TARGET);
    const bn_tensor *w = bn__node_saved(n, SAVED_WEIGHT);
    const bn_tensor *pw = bn__node_saved(n, SAVED_POS_WEIGHT);
    const bn_tensor *s = scaled(n, g);
    if (w) s = bn_mul(s, w);
    bn_tensor *dx, *dt = NULL;
    if (pw) {
        bn_tensor *pw1 = bn_sub_scalar(pw, 1);
        bn_tensor *c = bn_add_scalar(bn_mul(pw1, t), 1);
        dx = bn_sub(bn_mul(c, bn_sigmoid(x)), bn_mul(pw, t));
        if (bn__node_needs(n, 1)) dt = bn_sub(bn_mul(pw1, softplus_neg(x)), x);
    } else {
        dx = bn_sub(bn_sigmoid(x), t);
        if (bn__node_needs(n, 1)) dt = bn_neg(x);
    }
    if (bn__node_needs(n, 0)) grads[0] = bn_mul(s, dx);
    if (bn__node_needs(n, 1)) grads[1] = bn_mul(s, dt);
    return bn_error_code();
}

bn_tensor *bn_binary_cross_entropy_with_logits(const bn_tensor *logits, const bn_tensor *target,
                                               bn_bce_opts o)
{
    const char *fn = "bn_binary_cross_entropy_with_logits";
    BN_AUTOCAST_F32(bn_binary_cross_entropy_with_logits(ac[0], ac[1], o), logits, target);
    const bn_tensor *x = logits;
    int64_t count;
    if (!check_pair(fn, x, target, o.reduction, &count)) return NULL;
    if (!check_weight(fn, "weight", o.weight, x) ||
        !check_weight(fn, "pos_weight", o.pos_weight, x))
        return NULL;
    loss_forward_begin();
    bn_tensor *sp = softplus_neg(x);
    bn_tensor *l = bn_mul(one_minus(target), x);
    if (o.pos_weight) {
        bn_tensor *c = bn_add_scalar(bn_mul(bn_sub_scalar(o.pos_weight, 1), target), 1);
        l = bn_add(l, bn_mul(c, sp));
    } else {
        l = bn_add(l, sp);
    }
    if (o.weight) l = bn_mul(l, o.weight);
    bn_tensor *out = loss_forward_end(loss_reduce(l, o.reduction));
    return record(out, "BinaryCrossEntropyWithLogitsBackward", bce_logits_backward, x, target,
                  o.weight, o.pos_weight, divisor_for(o.reduction, count), 0);
}

/* ---- KL divergence, input as log-probabilities:
 * t log t - t x (0 where t = 0), or exp(t) (t - x) for log targets.
 * d/dx = -t (or -exp(t)); d/dt = log t + 1 - x (or exp(t) (t - x + 1)). */
static bn_status kl_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    const bn_tensor *x = bn__node_saved(n, SAVED_INPUT), *t = bn__node_saved(n, SAVED_TARGET);
    bool log_target = n->f[F_PARAM] != 0;
    const bn_tensor *s = scaled(n, g);
    if (log_target) {
        bn_tensor *et = bn_exp(t);
        if (bn__node_needs(n, 0)) grads[0] = bn_neg(bn_mul(s, et));
        if (bn__node_needs(n, 1))
            grads[1] = bn_mul(s, bn_mul(et, bn_add_scalar(bn_sub(t, x), 1)));
    } else {
        if (bn__node_needs(n, 0)) grads[0] = bn_neg(bn_mul(s, t));
        if (bn__node_needs(n, 1))
            grads[1] = bn_mul(s, bn_sub(bn_add_scalar(bn_log(t), 1), x));
    }
    return bn_error_code();
}

bn_tensor *bn_kl_div(const bn_tensor *input, const bn_tensor *target, bn_kl_opts o)
{
    const char *fn = "bn_kl_div";
    BN_AUTOCAST_F32(bn_kl_div(ac[0], ac[1], o), input, target);
    int64_t count;
    if (!check_pair(fn, input, target, o.reduction, &count)) return NULL;
    if (o.batchmean && o.reduction == BN_REDUCTION_NONE)
        return bn__error_null(BN_ERR_ARG, "%s: batchmean needs a reduction (not _NONE)", fn);
    loss_forward_begin();
    bn_tensor *l;
    if (o.log_target) {
        l = bn_mul(bn_exp(target), bn_sub(target, input));
    } else {
        bn_tensor *tlogt =
            bn_masked_fill(bn_mul(target, bn_log(target)), bn_eq_scalar(target, 0), 0.0);
        l = bn_sub(tlogt, bn_mul(target, input));
    }
    double divisor = divisor_for(o.reduction, count);
    bn_tensor *out;
    if (o.batchmean) {
        divisor = input->ndim > 0 ? (double)input->shape[0] : 1.0;
        out = bn_div_scalar(bn_sum(l, BN_ALL, false), divisor);
    } else {
        out = loss_reduce(l, o.reduction);
    }
    out = loss_forward_end(out);
    return record(out, "KlDivBackward", kl_backward, input, target, NULL, NULL, divisor,
                  o.log_target ? 1 : 0);
}
