/* optim/sched.c — learning-rate schedules: objects that set an optimizer's learning rate each
 * step, with torch.optim.lr_scheduler's formulas (the chained, recursive forms where torch uses
 * them, so the rates agree to the last bits). */
#include "born/optim.h"
#include "core/internal.h"

#include <math.h>
#include <string.h>

typedef enum sched_kind {
    SCHED_STEP,
    SCHED_MULTISTEP,
    SCHED_EXPONENTIAL,
    SCHED_COSINE,
    SCHED_ONE_CYCLE,
    SCHED_WARMUP_COSINE,
    SCHED_PLATEAU,
} sched_kind;

struct bn_sched {
    sched_kind kind;
    bn_optim *opt;
    int64_t last_epoch;
    double base_lr, lr;
    double gamma;
    int64_t step_size, t_max, warmup, total;
    double eta_min;
    int64_t *milestones; /* sorted copy; repeats count twice like torch's Counter */
    int nmilestones;
    /* OneCycle */
    double initial_lr, max_lr, min_lr;
    double phase_end[3], phase_start_lr[3], phase_end_lr[3];
    int nphases;
    bool linear;
    /* ReduceLROnPlateau */
    bn_plateau_opts plateau;
    double best;
    int bad_epochs, cooldown_counter;
};

/* Python's a % b for b > 0 (never negative). */
static int64_t py_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

static double anneal(const bn_sched *s, double start, double end, double pct)
{
    if (s->linear) return (end - start) * pct + start;
    double cos_out = cos(M_PI * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
}

/* The rate for s->last_epoch, from the current rate s->lr (torch's get_lr). */
static double next_lr(const bn_sched *s)
{
    int64_t e = s->last_epoch;
    switch (s->kind) {
    case SCHED_STEP: return (e == 0 || e % s->step_size != 0) ? s->lr : s->lr * s->gamma;
    case SCHED_MULTISTEP: {
        int count = 0;
        for (int i = 0; i < s->nmilestones; i++) count += s->milestones[i] == e;
        return count ? s->lr * pow(s->gamma, count) : s->lr;
    }
    case SCHED_EXPONENTIAL: return e == 0 ? s->lr : s->lr * s->gamma;
    case SCHED_COSINE: {
        double T = (double)s->t_max;
        if (e == 0) return s->lr;
        if (py_mod(e - 1 - s->t_max, 2 * s->t_max) == 0)
            return s->lr + (s->base_lr - s->eta_min) * (1 - cos(M_PI / T)) / 2;
        return (1 + cos(M_PI * (double)e / T)) / (1 + cos(M_PI * (double)(e - 1) / T)) *
                   (s->lr - s->eta_min) +
               s->eta_min;
    }
    case SCHED_ONE_CYCLE: {
        double start_step = 0;
        for (int i = 0; i < s->nphases; i++) {
            double end_step = s->phase_end[i];
            if ((double)e <= end_step || i == s->nphases - 1) {
                double pct = ((double)e - start_step) / (end_step - start_step);
                return anneal(s, s->phase_start_lr[i], s->phase_end_lr[i], pct);
            }
            start_step = end_step;
        }
        return s->lr;
    }
    case SCHED_WARMUP_COSINE: {
        if (e < s->warmup) return s->base_lr * ((double)e / (double)s->warmup);
        double span = (double)(s->total > s->warmup ? s->total - s->warmup : 1);
        double progress = fmin(1.0, (double)(e - s->warmup) / span);
        return s->eta_min + (s->base_lr - s->eta_min) * 0.5 * (1.0 + cos(M_PI * progress));
    }
    case SCHED_PLATEAU: return s->lr;
    }
    return s->lr;
}

static bn_sched *sched_new(const char *fn, bn_optim *o, sched_kind k)
{
    if (!o) return bn__null_arg(fn, "o");
    bn_sched *s = calloc(1, sizeof(*s));
    if (!s) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    s->kind = k;
    s->opt = o;
    s->base_lr = s->lr = bn_optim_get_lr(o);
    s->last_epoch = -1;
    return s;
}

/* torch's constructors end with one step(): epoch 0's rate. */
static bn_sched *sched_start(bn_sched *s)
{
    if (bn_sched_step(s) != BN_OK) {
        bn_sched_free(s);
        return NULL;
    }
    return s;
}

static double gamma_or_default(double g) { return g == 0 && !signbit(g) ? 0.1 : g; }

bn_sched *bn_sched_step_lr(bn_optim *o, int64_t step_size, double gamma)
{
    const char *fn = "bn_sched_step_lr";
    if (o && step_size <= 0)
        return bn__error_null(BN_ERR_ARG, "%s: step_size = %lld must be positive", fn,
                              (long long)step_size);
    bn_sched *s = sched_new(fn, o, SCHED_STEP);
    if (!s) return NULL;
    s->step_size = step_size;
    s->gamma = gamma_or_default(gamma);
    return sched_start(s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

bn_sched *bn_sched_multistep_lr(bn_optim *o, const int64_t *milestones, int n, double gamma)
{
    const char *fn = "bn_sched_multistep_lr";
    if (o && n > 0 && !milestones) return bn__null_arg(fn, "milestones");
    if (o && n < 0) return bn__error_null(BN_ERR_ARG, "%s: n = %d is negative", fn, n);
    bn_sched *s = sched_new(fn, o, SCHED_MULTISTEP);
    if (!s) return NULL;
    s->gamma = gamma_or_default(gamma);
    s->nmilestones = n;
    if (n > 0) {
        s->milestones = malloc(sizeof(int64_t) * (size_t)n);
        if (!s->milestones) {
            bn_sched_free(s);
            return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
        }
        memcpy(s->milestones, milestones, sizeof(int64_t) * (size_t)n);
        qsort(s->milestones, (size_t)n, sizeof(int64_t), cmp_i64);
    }
    return sched_start(s);
}

bn_sched *bn_sched_exponential_lr(bn_optim *o, double gamma)
{
    bn_sched *s = sched_new("bn_sched_exponential_lr", o, SCHED_EXPONENTIAL);
    if (!s) return NULL;
    s->gamma = gamma;
    return sched_start(s);
}

bn_sched *bn_sched_cosine_annealing_lr(bn_optim *o, int64_t t_max, double eta_min)
{
    const char *fn = "bn_sched_cosine_annealing_lr";
    if (o && t_max <= 0)
        return bn__error_null(BN_ERR_ARG, "%s: t_max = %lld must be positive", fn,
                              (long long)t_max);
    bn_sched *s = sched_new(fn, o, SCHED_COSINE);
    if (!s) return NULL;
    s->t_max = t_max;
    s->eta_min = eta_min;
    return sched_start(s);
}

bn_sched *bn_sched_one_cycle_lr(bn_optim *o, double max_lr, int64_t total_steps,
                                bn_one_cycle_opts op)
{
    const char *fn = "bn_sched_one_cycle_lr";
    double pct = op.pct_start == 0 ? 0.3 : op.pct_start;
    double div = op.div_factor == 0 ? 25 : op.div_factor;
    double fdiv = op.final_div_factor == 0 ? 1e4 : op.final_div_factor;
    if (o && total_steps <= 0)
        return bn__error_null(BN_ERR_ARG, "%s: total_steps = %lld must be positive", fn,
                              (long long)total_steps);
    if (o && !(pct > 0 && pct < 1))
        return bn__error_null(BN_ERR_ARG, "%s: pct_start = %g must be in (0, 1)", fn, pct);
    if (o && !(max_lr > 0))
        return bn__error_null(BN_ERR_ARG, "%s: max_lr = %g must be positive", fn, max_lr);
    bn_sched *s = sched_new(fn, o, SCHED_ONE_CYCLE);
    if (!s) return NULL;
    s->total = total_steps;
    s->linear = op.linear;
    s->max_lr = max_lr;
    s->initial_lr = max_lr / div;
    s->min_lr = s->initial_lr / fdiv;
    double t = (double)total_steps;
    if (op.three_phase) {
        s->nphases = 3;
        double ends[] = {pct * t - 1, 2 * pct * t - 2, t - 1};
        double from[] = {s->initial_lr, max_lr, s->initial_lr};
        double to[] = {max_lr, s->initial_lr, s->min_lr};
        for (int i = 0; i < 3; i++)
            s->phase_end[i] = ends[i], s->phase_start_lr[i] = from[i], s->phase_end_lr[i] = to[i];
    } else {
        s->nphases = 2;
        double ends[] = {pct * t - 1, t - 1};
        double from[] = {s->initial_lr, max_lr};
        double to[] = {max_lr, s->min_lr};
        for (int i = 0; i < 2; i++)
            s->phase_end[i] = ends[i], s->phase_start_lr[i] = from[i], s->phase_end_lr[i] = to[i];
    }
    s->base_lr = s->initial_lr;
    return sched_start(s);
}

bn_sched *bn_sched_warmup_cosine(bn_optim *o, int64_t warmup_steps, int64_t total_steps,
                                 double min_lr)
{
    const char *fn = "bn_sched_warmup_cosine";
    if (o && (warmup_steps < 0 || total_steps < warmup_steps))
        return bn__error_null(BN_ERR_ARG,
                              "%s: need 0 <= warmup_steps <= total_steps (got %lld and %lld)", fn,
                              (long long)warmup_steps, (long long)total_steps);
    bn_sched *s = sched_new(fn, o, SCHED_WARMUP_COSINE);
    if (!s) return NULL;
    s->warmup = warmup_steps;
    s->total = total_steps;
    s->eta_min = min_lr;
    return sched_start(s);
}

bn_sched *bn_sched_reduce_on_plateau(bn_optim *o, bn_plateau_opts op)
{
    const char *fn = "bn_sched_reduce_on_plateau";
    bn_plateau_opts p = op;
    p.factor = p.factor == 0 ? 0.1 : p.factor;
    p.patience = p.patience == 0 ? 10 : (p.patience < 0 ? 0 : p.patience);
    p.threshold = p.threshold == 0 ? (signbit(p.threshold) ? 0 : 1e-4) : p.threshold;
    p.eps = p.eps == 0 ? 1e-8 : p.eps;
    if (o && !(p.factor > 0 && p.factor < 1))
        return bn__error_null(BN_ERR_ARG, "%s: factor = %g must be in (0, 1)", fn, p.factor);
    if (o && p.mode != BN_PLATEAU_MIN && p.mode != BN_PLATEAU_MAX)
        return bn__error_null(BN_ERR_ARG, "%s: mode %d is not BN_PLATEAU_MIN or _MAX", fn,
                              (int)p.mode);
    bn_sched *s = sched_new(fn, o, SCHED_PLATEAU);
    if (!s) return NULL;
    s->plateau = p;
    s->best = p.mode == BN_PLATEAU_MIN ? INFINITY : -INFINITY;
    s->last_epoch = 0;
    return s;
}

bn_status bn_sched_step(bn_sched *s)
{
    BN_CHECK_NULL_STATUS("bn_sched_step", s);
    if (s->kind == SCHED_PLATEAU)
        return bn__error(BN_ERR_ARG, "bn_sched_step: ReduceLROnPlateau needs the metric: use "
                                     "bn_sched_step_metric");
    if (s->kind == SCHED_ONE_CYCLE && s->last_epoch + 1 > s->total)
        return bn__error(BN_ERR_ARG,
                         "bn_sched_step: OneCycleLR stepped %lld times, past total_steps = %lld",
                         (long long)(s->last_epoch + 1), (long long)s->total);
    s->last_epoch++;
    s->lr = next_lr(s);
    return bn_optim_set_lr(s->opt, s->lr);
}

static bool plateau_better(const bn_sched *s, double a)
{
    const bn_plateau_opts *p = &s->plateau;
    if (p->mode == BN_PLATEAU_MIN) return a < s->best * (1 - p->threshold);
    return a > s->best * (p->threshold + 1);
}

bn_status bn_sched_step_metric(bn_sched *s, double metric)
{
    BN_CHECK_NULL_STATUS("bn_sched_step_metric", s);
    if (s->kind != SCHED_PLATEAU) return bn_sched_step(s);
    const bn_plateau_opts *p = &s->plateau;
    s->last_epoch++;
    if (plateau_better(s, metric)) {
        s->best = metric;
        s->bad_epochs = 0;
    } else {
        s->bad_epochs++;
    }
    if (s->cooldown_counter > 0) {
        s->cooldown_counter--;
        s->bad_epochs = 0;
    }
    if (s->bad_epochs > p->patience) {
        double old = bn_optim_get_lr(s->opt);
        double nw = fmax(old * p->factor, p->min_lr);
        if (old - nw > p->eps) {
            bn_status st = bn_optim_set_lr(s->opt, nw);
            if (st != BN_OK) return st;
        }
        s->cooldown_counter = p->cooldown;
        s->bad_epochs = 0;
    }
    s->lr = bn_optim_get_lr(s->opt);
    return BN_OK;
}

double bn_sched_get_lr(const bn_sched *s) { return s ? s->lr : NAN; }
int64_t bn_sched_last_epoch(const bn_sched *s) { return s ? s->last_epoch : -1; }

bn_sched_state bn_sched_get_state(const bn_sched *s)
{
    if (!s) {
        bn__null_arg("bn_sched_get_state", "s");
        return (bn_sched_state){.last_epoch = -1};
    }
    return (bn_sched_state){s->last_epoch, s->lr, s->best, s->bad_epochs, s->cooldown_counter};
}

bn_status bn_sched_set_state(bn_sched *s, bn_sched_state st)
{
    BN_CHECK_NULL_STATUS("bn_sched_set_state", s);
    if (st.last_epoch < 0 || !isfinite(st.lr) || st.lr < 0 || st.bad_epochs < 0 ||
        st.cooldown_counter < 0)
        return bn__error(BN_ERR_ARG,
                         "bn_sched_set_state: last_epoch %lld, lr %g, bad_epochs %d and "
                         "cooldown_counter %d must be >= 0 (lr finite)",
                         (long long)st.last_epoch, st.lr, st.bad_epochs, st.cooldown_counter);
    bn_status r = bn_optim_set_lr(s->opt, st.lr);
    if (r != BN_OK) return r;
    s->last_epoch = st.last_epoch;
    s->lr = st.lr;
    s->best = st.best;
    s->bad_epochs = st.bad_epochs;
    s->cooldown_counter = st.cooldown_counter;
    return BN_OK;
}

void bn_sched_free(bn_sched *s)
{
    if (!s) return;
    free(s->milestones);
    free(s);
}
