/* optim/optim_update.c — one optimizer step on the host side: the per-step scalars of every
 * parameter (bias corrections, step sizes, NAdam's mu products, Adagrad's decayed rate) computed
 * exactly as PyTorch 1.13's _single_tensor_<name> computes them, then one multi-tensor call of
 * the device backend's optimizer kernels (backend_optim.h) per dtype. The element-wise update
 * formulas themselves live in the backends (backend/cpu/optim.c is the reference). */
#include "optim/optim_internal.h"

#include <math.h>
#include <stdio.h>

const char *bn__optim_device_str(bn_device d)
{
    static _Thread_local char ring[4][32];
    static _Thread_local int next;
    char *buf = ring[next++ & 3];
    const char *type = d.type == BN_DEVICE_CPU    ? "cpu"
                       : d.type == BN_DEVICE_CUDA ? "cuda"
                       : d.type == BN_DEVICE_VULKAN ? "vulkan"
                                                    : "?";
    snprintf(buf, sizeof ring[0], "%s:%d", type, d.index);
    return buf;
}

/* The hyper-parameters the kernels share, for o's rule. */
static bn_optim_hparams hparams_of(const bn_optim *o, bn_optim_rule *rule)
{
    const optim_hyper *h = &o->h;
    bn_optim_hparams k = {.lr = h->lr,
                          .weight_decay = h->weight_decay,
                          .momentum = h->momentum,
                          .dampening = h->dampening,
                          .beta1 = h->beta1,
                          .beta2 = h->beta2,
                          .alpha = h->alpha,
                          .rho = h->rho,
                          .eps = h->eps,
                          .decay = 1,
                          .nesterov = h->nesterov,
                          .maximize = h->maximize};
    switch (o->kind) {
    case OPTIM_SGD: *rule = BN_OPTIM_RULE_SGD; break;
    case OPTIM_ADAM: *rule = BN_OPTIM_RULE_ADAM; break;
    case OPTIM_ADAMW: /* decoupled: p *= 1 - lr*wd, no L2 on the gradient */
        *rule = BN_OPTIM_RULE_ADAM;
        k.decay = 1 - h->lr * h->weight_decay;
        k.weight_decay = 0;
        break;
    case OPTIM_RMSPROP: *rule = BN_OPTIM_RULE_RMSPROP; break;
    case OPTIM_ADAGRAD: *rule = BN_OPTIM_RULE_ADAGRAD; break;
    case OPTIM_ADADELTA: *rule = BN_OPTIM_RULE_ADADELTA; break;
    case OPTIM_NADAM:
        *rule = BN_OPTIM_RULE_NADAM;
        k.maximize = false;
        break;
    case OPTIM_LBFGS: BN_ASSERT(!"L-BFGS updates through bn_optim_lbfgs_step"); break;
    }
    return k;
}

/* torch keeps state['mu_product'] as a float32 tensor: every product rounds to float. */
static void nadam_coefs(bn_optim *o, int i, double t, double *coef)
{
    const optim_hyper *h = &o->h;
    double mu = h->beta1 * (1. - 0.5 * pow(0.96, t * h->momentum_decay));
    double mu_next = h->beta1 * (1. - 0.5 * pow(0.96, (t + 1) * h->momentum_decay));
    /* a float32 tensor times a Python float: the float is rounded to float32 first */
    float prod = (float)o->mu_product[i] * (float)mu;
    o->mu_product[i] = prod;
    /* torch 1.13 multiplies mu in a second time here (a bug fixed later); parity keeps it */
    float prod_next = prod * (float)mu * (float)mu_next;
    coef[0] = 1.0 - pow(h->beta2, t);
    coef[1] = -h->lr * (1. - mu) / (1. - (double)prod);
    coef[2] = -h->lr * mu_next / (1. - (double)prod_next);
}

/* Parameter i's arrays and scalars for its step number t (already advanced). */
static void describe(bn_optim *o, int i, const bn_tensor *g, bn_optim_tensor *d)
{
    const optim_hyper *h = &o->h;
    bn_tensor *const *st = o->state + (size_t)i * (size_t)o->nstate;
    double t = (double)o->param_steps[i];
    *d = (bn_optim_tensor){.param = bn__data(o->params[i]),
                           .grad = bn__data(g),
                           .numel = bn__numel(o->params[i])};
    /* the rule's state slots (backend_optim.h) from the optimizer's named state */
    if (o->kind == OPTIM_RMSPROP) {
        int s = 1;
        d->state[0] = bn__data(st[0]);
        if (h->momentum > 0) d->state[1] = bn__data(st[s++]);
        if (h->centered) d->state[2] = bn__data(st[s]);
    } else {
        for (int s = 0; s < o->nstate; s++) d->state[s] = bn__data(st[s]);
    }
    switch (o->kind) {
    case OPTIM_SGD: d->coef[0] = o->param_steps[i] == 1; break;
    case OPTIM_ADAM:
    case OPTIM_ADAMW:
        d->coef[0] = h->lr / (1 - pow(h->beta1, t));
        d->coef[1] = sqrt(1 - pow(h->beta2, t));
        break;
    case OPTIM_ADAGRAD: d->coef[0] = h->lr / (1 + (t - 1) * h->lr_decay); break;
    case OPTIM_NADAM: nadam_coefs(o, i, t, d->coef); break;
    default: break;
    }
}

bn_status bn__optim_apply(bn_optim *o, const bn_backend_optim *k)
{
    int n = o->n;
    bn_tensor **grads = calloc((size_t)n, sizeof(*grads));
    bn_optim_tensor *list = malloc(sizeof(*list) * (size_t)n);
    bn_status st = BN_OK;
    if (!grads || !list) st = bn__error(BN_ERR_OOM, "bn_optim_step: out of memory (%d params)", n);
    /* contiguous gradients first: the only step that can fail before anything changes */
    for (int i = 0; st == BN_OK && i < n; i++) {
        bn_tensor *g = o->params[i]->grad;
        if (g && !(grads[i] = bn__contiguous(g))) st = bn_error_code();
    }
    if (st == BN_OK) {
        bn_optim_rule rule = BN_OPTIM_RULE_SGD;
        bn_optim_hparams hp = hparams_of(o, &rule);
        const bn_dtype dtypes[2] = {BN_F32, BN_F64};
        for (int d = 0; st == BN_OK && d < 2; d++) {
            int count = 0;
            for (int i = 0; i < n; i++) {
                if (!grads[i] || o->params[i]->dtype != dtypes[d]) continue;
                o->param_steps[i]++;
                describe(o, i, grads[i], &list[count++]);
            }
            if (count == 0) continue;
            st = k->update(rule, dtypes[d], &hp, list, count);
            for (int i = 0; i < n; i++)
                if (grads[i] && o->params[i]->dtype == dtypes[d]) bn__bump_version(o->params[i]);
        }
    }
    if (grads)
        for (int i = 0; i < n; i++) bn_release(grads[i]);
    free(grads);
    free(list);
    return st;
}
