/* optim/optim_internal.h — the private shape of an optimizer, shared by optim.c (lifecycle,
 * state), optim_update.c (one step: per-step scalars and the backend's multi-tensor update) and
 * lbfgs.c. */
#ifndef BORN_OPTIM_INTERNAL_H
#define BORN_OPTIM_INTERNAL_H

#include "backend/backend_optim.h"
#include "born/optim.h"
#include "core/internal.h"

typedef enum optim_kind {
    OPTIM_SGD,
    OPTIM_ADAM,
    OPTIM_ADAMW,
    OPTIM_RMSPROP,
    OPTIM_ADAGRAD,
    OPTIM_ADADELTA,
    OPTIM_NADAM,
    OPTIM_LBFGS,
} optim_kind;

#define OPTIM_MAX_STATE 3

/* Hyper-parameters with defaults already applied. */
typedef struct optim_hyper {
    double lr, momentum, dampening, weight_decay;
    double beta1, beta2, eps;
    double alpha, rho, lr_decay, initial_accumulator_value, momentum_decay;
    bool nesterov, maximize, amsgrad, centered;
    bn_lbfgs_opts lbfgs;
} optim_hyper;

struct bn_optim {
    optim_kind kind;
    optim_hyper h;
    int n;
    bn_device device;     /* every parameter's (and state tensor's) device */
    bn_tensor **params;   /* retained */
    int nstate;           /* state tensors per parameter */
    const char *state_names[OPTIM_MAX_STATE];
    bn_tensor **state;    /* n * nstate, zero-initialised, each like its parameter */
    int64_t *param_steps; /* updates each parameter has seen */
    double *mu_product;   /* NAdam: per parameter, kept in float32 like torch's tensor */
    int64_t steps;        /* bn_optim_step / bn_optim_lbfgs_step calls that succeeded */
    struct lbfgs_state *lbfgs;
};

/* One step of every parameter that has a gradient (already checked: same dtype, shape and
 * device as its parameter), through k->update: one multi-tensor call per dtype. Advances each
 * updated parameter's step count and bumps its version. */
bn_status bn__optim_apply(bn_optim *o, const bn_backend_optim *k);
/* "cpu:0", "cuda:1", … for messages (a thread-local ring of 4 buffers). */
const char *bn__optim_device_str(bn_device d);
/* L-BFGS state lifecycle (lbfgs.c). */
void bn__lbfgs_free(struct lbfgs_state *s);

#endif
