/* born/optim.h — optimizers, gradient clipping and learning-rate schedules (DESIGN §8).
 *
 * An optimizer is an opaque object over a list of parameter tensors (float32 or float64,
 * contiguous, all on one device whose backend has optimizer kernels — CPU or CUDA — requiring
 * grad; L-BFGS runs on the CPU only). It holds its own references to them and owns its
 * per-parameter state; bn_optim_free gives everything back. Every update follows PyTorch 1.13's
 * single-tensor implementation step for step (the same formulas in the same order), so the
 * first steps match torch.optim on the same problem. Parameters whose gradient is NULL are
 * skipped (their state does not advance). Updates run without recording autograd nodes and
 * bump each parameter's version, so a graph that saved it notices.
 *
 * All parameters share one learning rate (one PyTorch param group).
 *
 * Options: zero means PyTorch's default. Where the default is not zero but zero is still a
 * value one may want (Adam's betas, RMSProp's alpha, AdaDelta's rho, AdamW's weight decay …),
 * pass BN_ZERO (negative zero, -0.0) to ask for an exact 0. */
#ifndef BORN_OPTIM_H
#define BORN_OPTIM_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An explicit zero for option fields whose plain 0 means a non-zero default. */
#define BN_ZERO (-0.0)

typedef struct bn_optim bn_optim;
typedef struct bn_module bn_module; /* nn.h */

typedef struct bn_sgd_opts {
    double lr;           /* 0: 1e-3 (torch has no default) */
    double momentum;     /* 0 */
    double dampening;    /* 0 */
    double weight_decay; /* 0 (L2 penalty added to the gradient) */
    bool nesterov;       /* needs momentum > 0 and dampening 0 */
    bool maximize;
} bn_sgd_opts;

/* Adam and AdamW. AdamW decays weights decoupled (p *= 1 - lr*wd); its weight_decay 0 means
 * torch's 1e-2 (BN_ZERO for none). Adam's weight_decay 0 means none (L2 added to the grad). */
typedef struct bn_adam_opts {
    double lr;           /* 0: 1e-3 */
    double beta1, beta2; /* 0: 0.9, 0.999 */
    double eps;          /* 0: 1e-8 */
    double weight_decay;
    bool amsgrad;
    bool maximize;
} bn_adam_opts;

typedef struct bn_rmsprop_opts {
    double lr;    /* 0: 1e-2 */
    double alpha; /* 0: 0.99 */
    double eps;   /* 0: 1e-8 */
    double weight_decay, momentum; /* 0 */
    bool centered;
    bool maximize;
} bn_rmsprop_opts;

typedef struct bn_adagrad_opts {
    double lr;                        /* 0: 1e-2 */
    double lr_decay, weight_decay;    /* 0 */
    double initial_accumulator_value; /* 0 */
    double eps;                       /* 0: 1e-10 */
    bool maximize;
} bn_adagrad_opts;

typedef struct bn_adadelta_opts {
    double lr;  /* 0: 1.0 */
    double rho; /* 0: 0.9 */
    double eps; /* 0: 1e-6 */
    double weight_decay;
    bool maximize;
} bn_adadelta_opts;

typedef struct bn_nadam_opts {
    double lr;             /* 0: 2e-3 */
    double beta1, beta2;   /* 0: 0.9, 0.999 */
    double eps;            /* 0: 1e-8 */
    double weight_decay;   /* 0 */
    double momentum_decay; /* 0: 4e-3 */
} bn_nadam_opts;

typedef struct bn_lbfgs_opts {
    double lr;               /* 0: 1 */
    int max_iter;            /* 0: 20 */
    int max_eval;            /* 0: max_iter * 5 / 4 */
    double tolerance_grad;   /* 0: 1e-7 */
    double tolerance_change; /* 0: 1e-9 */
    int history_size;        /* 0: 100 */
    bool strong_wolfe;       /* line search 'strong_wolfe' (false: fixed step lr) */
} bn_lbfgs_opts;

/* Over n parameter tensors (not owned: the optimizer retains them). */
BN_API bn_optim *bn_optim_sgd_params(bn_tensor *const *params, int n, bn_sgd_opts o);
BN_API bn_optim *bn_optim_adam_params(bn_tensor *const *params, int n, bn_adam_opts o);
BN_API bn_optim *bn_optim_adamw_params(bn_tensor *const *params, int n, bn_adam_opts o);
BN_API bn_optim *bn_optim_rmsprop_params(bn_tensor *const *params, int n, bn_rmsprop_opts o);
BN_API bn_optim *bn_optim_adagrad_params(bn_tensor *const *params, int n, bn_adagrad_opts o);
BN_API bn_optim *bn_optim_adadelta_params(bn_tensor *const *params, int n, bn_adadelta_opts o);
BN_API bn_optim *bn_optim_nadam_params(bn_tensor *const *params, int n, bn_nadam_opts o);
BN_API bn_optim *bn_optim_lbfgs_params(bn_tensor *const *params, int n, bn_lbfgs_opts o);

/* Over a module's parameters (bn_module_parameters, in state-dict order). */
BN_API bn_optim *bn_optim_sgd(bn_module *m, bn_sgd_opts o);
BN_API bn_optim *bn_optim_adam(bn_module *m, bn_adam_opts o);
BN_API bn_optim *bn_optim_adamw(bn_module *m, bn_adam_opts o);
BN_API bn_optim *bn_optim_rmsprop(bn_module *m, bn_rmsprop_opts o);
BN_API bn_optim *bn_optim_adagrad(bn_module *m, bn_adagrad_opts o);
BN_API bn_optim *bn_optim_adadelta(bn_module *m, bn_adadelta_opts o);
BN_API bn_optim *bn_optim_nadam(bn_module *m, bn_nadam_opts o);
BN_API bn_optim *bn_optim_lbfgs(bn_module *m, bn_lbfgs_opts o);

/* One update from the parameters' current gradients (not for L-BFGS: see below). */
BN_API bn_status bn_optim_step(bn_optim *o);
/* Clears every parameter's gradient (sets it to NULL, like set_to_none=True). */
BN_API void bn_optim_zero_grad(bn_optim *o);
BN_API void bn_optim_free(bn_optim *o);

/* L-BFGS re-evaluates the objective: closure clears the gradients, computes the loss, runs
 * bn_backward on it and returns its value (NaN with an error set on failure). *loss receives
 * the first loss evaluated in this step (may be NULL), like torch's step(closure). */
typedef double (*bn_optim_closure)(void *ctx);
BN_API bn_status bn_optim_lbfgs_step(bn_optim *o, bn_optim_closure closure, void *ctx,
                                     double *loss);

BN_API double bn_optim_get_lr(const bn_optim *o); /* NaN for NULL */
BN_API bn_status bn_optim_set_lr(bn_optim *o, double lr);
/* "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam", "LBFGS". */
BN_API const char *bn_optim_name(const bn_optim *o);
BN_API int bn_optim_num_params(const bn_optim *o);

/* State for checkpoints: the number of steps taken, and the per-parameter state tensors by
 * name ("<param index>.<state name>", e.g. "0.exp_avg", "1.momentum_buffer"). The tensors are
 * the live state (a new reference to it), on the parameters' device: copy into them (bn_copy_
 * from a tensor on that device) to restore a checkpoint.
 * L-BFGS exposes only its step count. */
BN_API int64_t bn_optim_step_count(const bn_optim *o);
BN_API bn_status bn_optim_set_step_count(bn_optim *o, int64_t steps);
BN_API int bn_optim_state_count(const bn_optim *o);
BN_API bn_tensor *bn_optim_state(const bn_optim *o, int i, const char **name);

/* ---- gradient clipping -------------------------------------------------------------------------
 * Scales every gradient by max_norm / (total_norm + 1e-6) when that is below 1, where total_norm
 * is the norm of all gradients together (norm_type 2, or INFINITY for the largest |g|), like
 * torch.nn.utils.clip_grad_norm_. Returns total_norm (-1 with an error set on failure). Params
 * without a gradient are skipped. */
BN_API double bn_clip_grad_norm(bn_tensor *const *params, int n, double max_norm,
                                double norm_type);
/* The same clipping without reading anything back to the host: returns the total norm as a 0-d
 * f64 tensor on the gradients' device (the first gradient's when they are on several; the CPU
 * when no parameter has a gradient), a new reference registered with the current scope, so a
 * training loop reads it only when it logs. NULL with an error on failure (the errors of
 * bn_clip_grad_norm). A gradient shared with another tensor is replaced by a copy even when
 * nothing is clipped. */
BN_API bn_tensor *bn_clip_grad_norm_async(bn_tensor *const *params, int n, double max_norm,
                                          double norm_type);
/* Clamps every gradient element into [-clip_value, clip_value]. */
BN_API bn_status bn_clip_grad_value(bn_tensor *const *params, int n, double clip_value);

/* ---- learning-rate schedules -------------------------------------------------------------------
 * A schedule sets its optimizer's learning rate (the optimizer must outlive it). Creating one
 * sets the rate for step 0, as PyTorch's constructors do; bn_sched_step advances one epoch (or
 * one batch, for OneCycle and warmup-cosine) — call it after bn_optim_step. The rates equal
 * torch.optim.lr_scheduler's, computed with the same (chained) formulas. */
typedef struct bn_sched bn_sched;

BN_API bn_sched *bn_sched_step_lr(bn_optim *o, int64_t step_size, double gamma); /* gamma 0: 0.1 */
BN_API bn_sched *bn_sched_multistep_lr(bn_optim *o, const int64_t *milestones, int n,
                                       double gamma); /* gamma 0: 0.1 */
BN_API bn_sched *bn_sched_exponential_lr(bn_optim *o, double gamma);
BN_API bn_sched *bn_sched_cosine_annealing_lr(bn_optim *o, int64_t t_max, double eta_min);

typedef struct bn_one_cycle_opts {
    double pct_start;        /* 0: 0.3 */
    double div_factor;       /* 0: 25 */
    double final_div_factor; /* 0: 1e4 */
    bool three_phase;
    bool linear;             /* anneal linearly instead of by cosine */
} bn_one_cycle_opts;
/* The learning rate only (torch's cycle_momentum=False). */
BN_API bn_sched *bn_sched_one_cycle_lr(bn_optim *o, double max_lr, int64_t total_steps,
                                       bn_one_cycle_opts opts);
/* lr * step / warmup_steps during warmup, then cosine from lr down to min_lr at total_steps
 * (and min_lr after), like transformers' get_cosine_schedule_with_warmup (min_lr 0). */
BN_API bn_sched *bn_sched_warmup_cosine(bn_optim *o, int64_t warmup_steps, int64_t total_steps,
                                        double min_lr);

typedef enum bn_plateau_mode { BN_PLATEAU_MIN = 0, BN_PLATEAU_MAX } bn_plateau_mode;
typedef struct bn_plateau_opts {
    bn_plateau_mode mode;
    double factor;    /* 0: 0.1 */
    int patience;     /* 0: 10 (a negative value asks for 0) */
    double threshold; /* relative; 0: 1e-4 (BN_ZERO for none) */
    int cooldown;     /* 0 */
    double min_lr;    /* 0 */
    double eps;       /* 0: 1e-8 */
} bn_plateau_opts;
BN_API bn_sched *bn_sched_reduce_on_plateau(bn_optim *o, bn_plateau_opts opts);

/* Advances one step; ReduceLROnPlateau needs bn_sched_step_metric (which the other schedules
 * accept, ignoring the metric). */
BN_API bn_status bn_sched_step(bn_sched *s);
BN_API bn_status bn_sched_step_metric(bn_sched *s, double metric);
BN_API double bn_sched_get_lr(const bn_sched *s); /* NaN for NULL */
BN_API int64_t bn_sched_last_epoch(const bn_sched *s);
/* Everything a schedule carries from step to step, for checkpoints: restoring it continues the
 * sequence exactly (ReduceLROnPlateau's best value and counters included). */
typedef struct bn_sched_state {
    int64_t last_epoch;
    double lr;
    double best;          /* ReduceLROnPlateau only */
    int bad_epochs;       /* ReduceLROnPlateau only */
    int cooldown_counter; /* ReduceLROnPlateau only */
} bn_sched_state;
BN_API bn_sched_state bn_sched_get_state(const bn_sched *s); /* last_epoch -1 for NULL */
/* Restores s and sets its optimizer's learning rate to st.lr. */
BN_API bn_status bn_sched_set_state(bn_sched *s, bn_sched_state st);
BN_API void bn_sched_free(bn_sched *s);

#ifdef __cplusplus
}
#endif
#endif
