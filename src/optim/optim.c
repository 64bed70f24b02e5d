/* optim/optim.c — optimizer objects: creation over parameter lists (and modules), options with
 * PyTorch's defaults, step / zero_grad, learning rate, and the state accessors for checkpoints.
 * Parameters may live on any device whose backend has optimizer kernels (backend_optim.h), all on
 * one device; state tensors are created beside them. optim_update.c computes each step's scalars
 * and calls those kernels. */
#include "optim/optim_internal.h"

#include "born/autograd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {"SGD",     "Adam",     "AdamW", "RMSprop",
                                         "Adagrad", "Adadelta", "NAdam", "LBFGS"};

/* 0 means the default; BN_ZERO (-0.0) means an exact 0. */
static double or_default(double v, double def)
{
    if (v == 0.0) return signbit(v) ? 0.0 : def;
    return v;
}

/* The parameters' checks; with need_kernels, their device's backend must also have optimizer
 * kernels (L-BFGS checks its device itself). */
static bool check_params(const char *fn, bn_tensor *const *params, int n, bool need_kernels)
{
    if (!params) return bn__null_arg(fn, "params"), false;
    if (n <= 0) return bn__error(BN_ERR_ARG, "%s: got %d parameters (need at least one)", fn, n),
                       false;
    for (int i = 0; i < n; i++) {
        const bn_tensor *p = params[i];
        if (!p) {
            bn__error(BN_ERR_ARG, "%s: params[%d] is NULL", fn, i);
            return false;
        }
        if (p->dtype != BN_F32 && p->dtype != BN_F64) {
            bn__error(BN_ERR_DTYPE, "%s: params[%d] is %s (optimizers update f32 or f64)", fn,
                      i, bn_dtype_name(p->dtype));
            return false;
        }
        if (!bn__is_contiguous(p)) {
            bn__error(BN_ERR_ARG, "%s: params[%d] %s must be contiguous", fn, i, bn__tshape(p));
            return false;
        }
        bn_device d0 = params[0]->storage->device, d = p->storage->device;
        if (d.type != d0.type || d.index != d0.index) {
            bn__error(BN_ERR_DEVICE,
                      "%s: params[0] is on %s but params[%d] is on %s (all parameters must be on "
                      "one device)",
                      fn, bn__optim_device_str(d0), i, bn__optim_device_str(d));
            return false;
        }
        if (p->grad_fn) {
            bn__error(BN_ERR_ARG, "%s: params[%d] %s is not a leaf tensor", fn, i, bn__tshape(p));
            return false;
        }
        for (int j = 0; j < i; j++)
            if (params[j] == p) {
                bn__error(BN_ERR_ARG, "%s: params[%d] and params[%d] are the same tensor", fn, j,
                          i);
                return false;
            }
    }
    if (need_kernels) {
        bn_device d = params[0]->storage->device;
        const bn_backend *be = bn__backend(fn, d);
        if (!be) return false;
        if (!be->optim) {
            bn__error(BN_ERR_UNSUPPORTED,
                      "%s: the %s backend has no optimizer kernels (the parameters are on %s)", fn,
                      be->name, bn__optim_device_str(d));
            return false;
        }
    }
    return true;
}

static bool check_hyper(const char *fn, const char *name, double v, double lo, double hi)
{
    if (!(v >= lo && v <= hi)) {
        bn__error(BN_ERR_ARG, "%s: %s = %g is outside [%g, %g]", fn, name, v, lo, hi);
        return false;
    }
    return true;
}

/* A new optimizer of kind k over params with nstate zeroed state tensors per parameter. */
static bn_optim *optim_new(optim_kind k, optim_hyper h, bn_tensor *const *params, int n,
                           int nstate, const char *const *names)
{
    bn_optim *o = calloc(1, sizeof(*o));
    if (!o) return bn__error_null(BN_ERR_OOM, "bn_optim: out of memory");
    o->kind = k;
    o->h = h;
    o->n = n;
    o->device = params[0]->storage->device;
    o->nstate = nstate;
    for (int s = 0; s < nstate; s++) o->state_names[s] = names[s];
    o->params = calloc((size_t)n, sizeof(*o->params));
    o->param_steps = calloc((size_t)n, sizeof(*o->param_steps));
    o->mu_product = calloc((size_t)n, sizeof(*o->mu_product));
    o->state = nstate ? calloc((size_t)(n * nstate), sizeof(*o->state)) : NULL;
    if (!o->params || !o->param_steps || !o->mu_product || (nstate && !o->state)) {
        bn_optim_free(o);
        return bn__error_null(BN_ERR_OOM, "bn_optim: out of memory");
    }
    for (int i = 0; i < n; i++) {
        bn_retain(params[i]);
        o->params[i] = params[i];
        o->mu_product[i] = 1.0;
        for (int s = 0; s < nstate; s++) {
            const bn_tensor *p = params[i];
            bn_tensor *st = bn__full(p->shape, p->ndim, 0.0, p->dtype, p->storage->device);
            if (!st) {
                bn_optim_free(o);
                return NULL;
            }
            o->state[i * nstate + s] = st;
        }
    }
    return o;
}

bn_optim *bn_optim_sgd_params(bn_tensor *const *params, int n, bn_sgd_opts op)
{
    const char *fn = "bn_optim_sgd";
    if (!check_params(fn, params, n, true)) return NULL;
    optim_hyper h = {.lr = or_default(op.lr, 1e-3),
                     .momentum = op.momentum,
                     .dampening = op.dampening,
                     .weight_decay = op.weight_decay,
                     .nesterov = op.nesterov,
                     .maximize = op.maximize};
    if (!check_hyper(fn, "lr", h.lr, 0, INFINITY) ||
        !check_hyper(fn, "momentum", h.momentum, 0, INFINITY) ||
        !check_hyper(fn, "weight_decay", h.weight_decay, 0, INFINITY))
        return NULL;
    if (h.nesterov && (h.momentum <= 0 || h.dampening != 0))
        return bn__error_null(BN_ERR_ARG,
                              "%s: nesterov needs momentum > 0 and dampening 0 (got momentum %g, "
                              "dampening %g)",
                              fn, h.momentum, h.dampening);
    const char *names[] = {"momentum_buffer"};
    return optim_new(OPTIM_SGD, h, params, n, h.momentum != 0 ? 1 : 0, names);
}

static bn_optim *adam_like(const char *fn, optim_kind k, bn_tensor *const *params, int n,
                           bn_adam_opts op)
{
    if (!check_params(fn, params, n, true)) return NULL;
    optim_hyper h = {.lr = or_default(op.lr, 1e-3),
                     .beta1 = or_default(op.beta1, 0.9),
                     .beta2 = or_default(op.beta2, 0.999),
                     .eps = or_default(op.eps, 1e-8),
                     .weight_decay = k == OPTIM_ADAMW ? or_default(op.weight_decay, 1e-2)
                                                      : op.weight_decay,
                     .amsgrad = op.amsgrad,
                     .maximize = op.maximize};
    if (!check_hyper(fn, "lr", h.lr, 0, INFINITY) || !check_hyper(fn, "eps", h.eps, 0, INFINITY) ||
        !check_hyper(fn, "beta1", h.beta1, 0, 0x1.fffffffffffffp-1) ||
        !check_hyper(fn, "beta2", h.beta2, 0, 0x1.fffffffffffffp-1) ||
        !check_hyper(fn, "weight_decay", h.weight_decay, 0, INFINITY))
        return NULL;
    const char *names[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    return optim_new(k, h, params, n, h.amsgrad ? 3 : 2, names);
}

bn_optim *bn_optim_adam_params(bn_tensor *const *params, int n, bn_adam_opts o)
{
    return adam_like("bn_optim_adam", OPTIM_ADAM, params, n, o);
}

bn_optim *bn_optim_adamw_params(bn_tensor *const *params, int n, bn_adam_opts o)
{
    return adam_like("bn_optim_adamw", OPTIM_ADAMW, params, n, o);
}

bn_optim *bn_optim_rmsprop_params(bn_tensor *const *params, int n, bn_rmsprop_opts op)
{
    const char *fn = "bn_optim_rmsprop";
    if (!check_params(fn, params, n, true)) return NULL;
    optim_hyper h = {.lr = or_default(op.lr, 1e-2),
                     .alpha = or_default(op.alpha, 0.99),
                     .eps = or_default(op.eps, 1e-8),
                     .weight_decay = op.weight_decay,
                     .momentum = op.momentum,
                     .centered = op.centered,
                     .maximize = op.maximize};
    if (!check_hyper(fn, "lr", h.lr, 0, INFINITY) || !check_hyper(fn, "eps", h.eps, 0, INFINITY) ||
        !check_hyper(fn, "alpha", h.alpha, 0, INFINITY) ||
        !check_hyper(fn, "momentum", h.momentum, 0, INFINITY) ||
        !check_hyper(fn, "weight_decay", h.weight_decay, 0, INFINITY))
        return NULL;
    /* square_avg always; momentum_buffer and grad_avg only when used (named in this order) */
    const char *names[3] = {"square_avg", NULL, NULL};
    int ns = 1;
    if (h.momentum > 0) names[ns++] = "momentum_buffer";
    if (h.centered) names[ns++] = "grad_avg";
    return optim_new(OPTIM_RMSPROP, h, params, n, ns, names);
}

bn_optim *bn_optim_adagrad_params(bn_tensor *const *params, int n, bn_adagrad_opts op)
{
    const char *fn = "bn_optim_adagrad";
    if (!check_params(fn, params, n, true)) return NULL;
    optim_hyper h = {.lr = or_default(op.lr, 1e-2),
                     .lr_decay = op.lr_decay,
                     .weight_decay = op.weight_decay,
                     .initial_accumulator_value = op.initial_accumulator_value,
                     .eps = or_default(op.eps, 1e-10),
                     .maximize = op.maximize};
    if (!check_hyper(fn, "lr", h.lr, 0, INFINITY) ||
        !check_hyper(fn, "lr_decay", h.lr_decay, 0, INFINITY) ||
        !check_hyper(fn, "initial_accumulator_value", h.initial_accumulator_value, 0, INFINITY) ||
        !check_hyper(fn, "weight_decay", h.weight_decay, 0, INFINITY))
        return NULL;
    const char *names[] = {"sum"};
    bn_optim *o = optim_new(OPTIM_ADAGRAD, h, params, n, 1, names);
    if (o && h.initial_accumulator_value != 0)
        for (int i = 0; i < n; i++) bn_fill_(o->state[i], h.initial_accumulator_value);
    return o;
}

bn_optim *bn_optim_adadelta_params(bn_tensor *const *params, int n, bn_adadelta_opts op)
{
    const char *fn = "bn_optim_adadelta";
    if (!check_params(fn, params, n, true)) return NULL;
    optim_hyper h = {.lr = or_default(op.lr, 1.0),
                     .rho = or_default(op.rho, 0.9),
                     .eps = or_default(op.eps, 1e-6),
                     .weight_decay = op.weight_decay,
                     .maximize = op.maximize};
    if (!check_hyper(fn, "lr", h.lr, 0, INFINITY) || !check_hyper(fn, "rho", h.rho, 0, 1) ||
        !check_hyper(fn, "eps", h.eps, 0, INFINITY) ||
        !check_hyper(fn, "weight_decay", h.weight_decay, 0, INFINITY))
        return NULL;
    const char *names[] = {"square_avg", "acc_delta"};
    return optim_new(OPTIM_ADADELTA, h, params, n, 2, names);
}

bn_optim *bn_optim_nadam_params(bn_tensor *const *params, int n, bn_nadam_opts op)
{
    const char *fn = "bn_optim_nadam";
    if (!check_params(fn, params, n, true)) return NULL;
    optim_hyper h = {.lr = or_default(op.lr, 2e-3),
                     .beta1 = or_default(op.beta1, 0.9),
                     .beta2 = or_default(op.beta2, 0.999),
                     .eps = or_default(op.eps, 1e-8),
                     .weight_decay = op.weight_decay,
                     .momentum_decay = or_default(op.momentum_decay, 4e-3)};
    if (!check_hyper(fn, "lr", h.lr, 0, INFINITY) || !check_hyper(fn, "eps", h.eps, 0, INFINITY) ||
        !check_hyper(fn, "beta1", h.beta1, 0, 0x1.fffffffffffffp-1) ||
        !check_hyper(fn, "beta2", h.beta2, 0, 0x1.fffffffffffffp-1) ||
        !check_hyper(fn, "momentum_decay", h.momentum_decay, 0, INFINITY) ||
        !check_hyper(fn, "weight_decay", h.weight_decay, 0, INFINITY))
        return NULL;
    const char *names[] = {"exp_avg", "exp_avg_sq"};
    return optim_new(OPTIM_NADAM, h, params, n, 2, names);
}

bn_optim *bn__lbfgs_new(bn_optim *o); /* lbfgs.c: allocates o->lbfgs */

bn_optim *bn_optim_lbfgs_params(bn_tensor *const *params, int n, bn_lbfgs_opts op)
{
    const char *fn = "bn_optim_lbfgs";
    if (!check_params(fn, params, n, false)) return NULL;
    if (params[0]->storage->device.type != BN_DEVICE_CPU)
        return bn__error_null(BN_ERR_UNSUPPORTED,
                              "%s: L-BFGS runs on the CPU only (the parameters are on %s)", fn,
                              bn__optim_device_str(params[0]->storage->device));
    bn_lbfgs_opts l = op;
    l.lr = or_default(op.lr, 1.0);
    if (l.max_iter <= 0) l.max_iter = 20;
    if (l.max_eval <= 0) l.max_eval = l.max_iter * 5 / 4;
    l.tolerance_grad = or_default(op.tolerance_grad, 1e-7);
    l.tolerance_change = or_default(op.tolerance_change, 1e-9);
    if (l.history_size <= 0) l.history_size = 100;
    if (!check_hyper(fn, "lr", l.lr, 0, INFINITY)) return NULL;
    optim_hyper h = {.lr = l.lr, .lbfgs = l};
    bn_optim *o = optim_new(OPTIM_LBFGS, h, params, n, 0, NULL);
    return o ? bn__lbfgs_new(o) : NULL;
}

bn_status bn_optim_step(bn_optim *o)
{
    BN_CHECK_NULL_STATUS("bn_optim_step", o);
    if (o->kind == OPTIM_LBFGS)
        return bn__error(BN_ERR_ARG, "bn_optim_step: L-BFGS needs a closure: use "
                                     "bn_optim_lbfgs_step");
    for (int i = 0; i < o->n; i++) {
        bn_tensor *p = o->params[i], *g = p->grad;
        if (!g) continue;
        if (g->dtype != p->dtype || !bn_shape_equal(bn_shape_of(g), bn_shape_of(p)))
            return bn__error(BN_ERR_SHAPE, "bn_optim_step: params[%d] is %s %s but its grad is %s %s",
                             i, bn_dtype_name(p->dtype), bn__tshape(p), bn_dtype_name(g->dtype),
                             bn__tshape(g));
        bn_device gd = g->storage->device;
        if (gd.type != o->device.type || gd.index != o->device.index)
            return bn__error(BN_ERR_DEVICE, "bn_optim_step: params[%d] is on %s but its grad is on %s",
                             i, bn__optim_device_str(o->device), bn__optim_device_str(gd));
    }
    const bn_backend *be = bn__backend("bn_optim_step", o->device);
    if (!be) return bn_error_code();
    if (!be->optim)
        return bn__error(BN_ERR_UNSUPPORTED, "bn_optim_step: the %s backend has no optimizer kernels",
                         be->name);
    bn_status st = bn__optim_apply(o, be->optim);
    if (st != BN_OK) return st;
    o->steps++;
    return BN_OK;
}

void bn_optim_zero_grad(bn_optim *o)
{
    if (!o) return;
    for (int i = 0; i < o->n; i++) bn_set_grad(o->params[i], NULL);
}

void bn_optim_free(bn_optim *o)
{
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        if (o->params) bn_release(o->params[i]);
        if (o->state)
            for (int s = 0; s < o->nstate; s++) bn_release(o->state[i * o->nstate + s]);
    }
    bn__lbfgs_free(o->lbfgs);
    free(o->params);
    free(o->state);
    free(o->param_steps);
    free(o->mu_product);
    free(o);
}

double bn_optim_get_lr(const bn_optim *o) { return o ? o->h.lr : NAN; }

bn_status bn_optim_set_lr(bn_optim *o, double lr)
{
    BN_CHECK_NULL_STATUS("bn_optim_set_lr", o);
    if (!(lr >= 0) || isinf(lr))
        return bn__error(BN_ERR_ARG, "bn_optim_set_lr: lr = %g must be finite and >= 0", lr);
    o->h.lr = lr;
    o->h.lbfgs.lr = lr;
    return BN_OK;
}

const char *bn_optim_name(const bn_optim *o) { return o ? kind_names[o->kind] : NULL; }
int bn_optim_num_params(const bn_optim *o) { return o ? o->n : 0; }
int64_t bn_optim_step_count(const bn_optim *o) { return o ? o->steps : 0; }

bn_status bn_optim_set_step_count(bn_optim *o, int64_t steps)
{
    BN_CHECK_NULL_STATUS("bn_optim_set_step_count", o);
    if (steps < 0)
        return bn__error(BN_ERR_ARG, "bn_optim_set_step_count: steps = %lld is negative",
                         (long long)steps);
    o->steps = steps;
    for (int i = 0; i < o->n; i++) {
        o->param_steps[i] = steps;
        /* NAdam's running product of momentum coefficients follows from the step count */
        if (o->kind == OPTIM_NADAM) {
            float prod = 1.0f;
            for (int64_t t = 1; t <= steps; t++)
                prod *= (float)(o->h.beta1 *
                                (1.0 - 0.5 * pow(0.96, (double)t * o->h.momentum_decay)));
            o->mu_product[i] = prod;
        }
    }
    return BN_OK;
}

int bn_optim_state_count(const bn_optim *o) { return o ? o->n * o->nstate : 0; }

bn_tensor *bn_optim_state(const bn_optim *o, int i, const char **name)
{
    BN_CHECK_NULL("bn_optim_state", o);
    if (i < 0 || i >= o->n * o->nstate)
        return bn__error_null(BN_ERR_ARG, "bn_optim_state: index %d is outside [0, %d)", i,
                              o->n * o->nstate);
    static _Thread_local char buf[64];
    if (name) {
        snprintf(buf, sizeof buf, "%d.%s", i / o->nstate, o->state_names[i % o->nstate]);
        *name = buf;
    }
    bn_retain(o->state[i]);
    return bn__out(o->state[i]);
}
