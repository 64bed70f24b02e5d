/* optim/lbfgs.c — L-BFGS with an optional strong-Wolfe line search: a line-by-line port of
 * torch.optim.LBFGS (1.13), including its line search (_strong_wolfe) and cubic interpolation,
 * so the iterates match PyTorch's. All parameters are handled as one flat vector of N doubles;
 * the history keeps up to history_size (y, s) pairs of N doubles each. */
#include "optim/optim_internal.h"

#include <math.h>
#include <string.h>

typedef struct lbfgs_state {
    int64_t N;
    double *d, *prev_g, *al, *ro;
    double **dirs, **stps; /* hs + 1 slots; the first nold are in use, oldest first */
    int nold, hs;
    double t, H_diag, prev_loss;
    int64_t n_iter, func_evals;
    bool have_prev;
} lbfgs_state;

void bn__lbfgs_free(lbfgs_state *s)
{
    if (!s) return;
    for (int i = 0; i <= s->hs; i++) {
        if (s->dirs) free(s->dirs[i]);
        if (s->stps) free(s->stps[i]);
    }
    free(s->dirs);
    free(s->stps);
    free(s->d);
    free(s->prev_g);
    free(s->al);
    free(s->ro);
    free(s);
}

bn_optim *bn__lbfgs_new(bn_optim *o);
bn_optim *bn__lbfgs_new(bn_optim *o)
{
    lbfgs_state *s = calloc(1, sizeof(*s));
    int hs = o->h.lbfgs.history_size;
    if (s) {
        for (int i = 0; i < o->n; i++) s->N += bn__numel(o->params[i]);
        size_t nb = sizeof(double) * (size_t)(s->N ? s->N : 1);
        s->d = malloc(nb);
        s->prev_g = malloc(nb);
        s->al = calloc((size_t)hs + 1, sizeof(double));
        s->ro = calloc((size_t)hs + 1, sizeof(double));
        s->hs = hs;
        s->dirs = calloc((size_t)hs + 1, sizeof(double *));
        s->stps = calloc((size_t)hs + 1, sizeof(double *));
        s->H_diag = 1;
    }
    o->lbfgs = s;
    if (!s || !s->d || !s->prev_g || !s->al || !s->ro || !s->dirs || !s->stps) {
        bn_optim_free(o);
        return bn__error_null(BN_ERR_OOM, "bn_optim_lbfgs: out of memory");
    }
    return o;
}

/* ---- the flat vector view of the parameters -------------------------------------------------- */
static double load(const void *p, bn_dtype dt, int64_t i)
{
    return dt == BN_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

/* flat gradient (zeros where a parameter has none) */
static bn_status gather_grad(bn_optim *o, double *g)
{
    int64_t off = 0;
    for (int k = 0; k < o->n; k++) {
        bn_tensor *p = o->params[k];
        int64_t n = bn__numel(p);
        if (!p->grad) {
            memset(g + off, 0, sizeof(double) * (size_t)n);
        } else {
            bn_tensor *c = bn__contiguous(p->grad);
            if (!c) return bn_error_code();
            const void *data = bn__data(c);
            for (int64_t i = 0; i < n; i++) g[off + i] = load(data, c->dtype, i);
            bn_release(c);
        }
        off += n;
    }
    return BN_OK;
}

/* params += step * v */
static void add_to_params(bn_optim *o, double step, const double *v)
{
    int64_t off = 0;
    for (int k = 0; k < o->n; k++) {
        bn_tensor *p = o->params[k];
        int64_t n = bn__numel(p);
        void *data = bn__data(p);
        if (p->dtype == BN_F32) {
            float *f = data, fs = (float)step;
            for (int64_t i = 0; i < n; i++) f[i] = f[i] + fs * (float)v[off + i];
        } else {
            double *f = data;
            for (int64_t i = 0; i < n; i++) f[i] = f[i] + step * v[off + i];
        }
        bn__bump_version(p);
        off += n;
    }
}

static void get_params(bn_optim *o, double *x)
{
    int64_t off = 0;
    for (int k = 0; k < o->n; k++) {
        bn_tensor *p = o->params[k];
        int64_t n = bn__numel(p);
        const void *data = bn__data(p);
        for (int64_t i = 0; i < n; i++) x[off + i] = load(data, p->dtype, i);
        off += n;
    }
}

static void set_params(bn_optim *o, const double *x)
{
    int64_t off = 0;
    for (int k = 0; k < o->n; k++) {
        bn_tensor *p = o->params[k];
        int64_t n = bn__numel(p);
        void *data = bn__data(p);
        for (int64_t i = 0; i < n; i++) {
            if (p->dtype == BN_F32) ((float *)data)[i] = (float)x[off + i];
            else ((double *)data)[i] = x[off + i];
        }
        bn__bump_version(p);
        off += n;
    }
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double abs_max(const double *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(a[i]) > m || isnan(a[i]) ? fabs(a[i]) : m;
    return m;
}

/* ---- line search ------------------------------------------------------------------------------ */
typedef struct objective {
    bn_optim *o;
    bn_optim_closure closure;
    void *ctx;
    const double *x; /* the parameters at the start of the search */
    const double *d;
    bn_status status;
} objective;

/* loss and flat gradient at x + t*d; the parameters are put back to x afterwards */
static double directional_evaluate(objective *ob, double t, double *g)
{
    add_to_params(ob->o, t, ob->d);
    double loss = ob->closure(ob->ctx);
    if (isnan(loss) && bn_error_code() != BN_OK && ob->status == BN_OK)
        ob->status = bn_error_code();
    bn_status st = gather_grad(ob->o, g);
    if (st != BN_OK && ob->status == BN_OK) ob->status = st;
    set_params(ob->o, ob->x);
    return loss;
}

static double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2,
                                const double *bounds)
{
    double lo, hi;
    if (bounds) lo = bounds[0], hi = bounds[1];
    else if (x1 <= x2) lo = x1, hi = x2;
    else lo = x2, hi = x1;
    double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
    double d2_square = d1 * d1 - g1 * g2;
    if (d2_square >= 0) {
        double d2 = sqrt(d2_square), min_pos;
        if (x1 <= x2) min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2));
        else min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
        return fmin(fmax(min_pos, lo), hi);
    }
    return (lo + hi) / 2.;
}

typedef struct ls_result {
    double f, t;
    int evals;
} ls_result;

/* torch's _strong_wolfe. g (N) holds the gradient at t = 0 on entry and the gradient at the
 * chosen t on return; scratch holds 4 vectors of N. */
static ls_result strong_wolfe(objective *ob, double t, double f, double *g, double gtd,
                              double tolerance_change, double *scratch)
{
    const double c1 = 1e-4, c2 = 0.9;
    const int max_ls = 25;
    int64_t N = ((lbfgs_state *)ob->o->lbfgs)->N;
    const double *d = ob->d;
    double d_norm = abs_max(d, N);
    double *g_new = scratch, *g_prev = scratch + N, *bg0 = scratch + 2 * N, *bg1 = scratch + 3 * N;
    double *g0 = malloc(sizeof(double) * (size_t)(N ? N : 1));
    if (!g0) {
        ob->status = bn__error(BN_ERR_OOM, "bn_optim_lbfgs_step: out of memory");
        return (ls_result){f, 0, 0};
    }
    memcpy(g0, g, sizeof(double) * (size_t)N);
    double f_new = directional_evaluate(ob, t, g_new);
    int evals = 1;
    double gtd_new = dot(g_new, d, N);
    double t_prev = 0, f_prev = f, gtd_prev = gtd;
    memcpy(g_prev, g0, sizeof(double) * (size_t)N);
    bool done = false;
    int ls_iter = 0, nb = 0;
    double br[2] = {0}, br_f[2] = {0}, br_gtd[2] = {0};
    double *br_g[2] = {bg0, bg1};
    while (ls_iter < max_ls && ob->status == BN_OK) {
        bool bracketed = f_new > (f + c1 * t * gtd) || (ls_iter > 1 && f_new >= f_prev);
        if (!bracketed && fabs(gtd_new) <= -c2 * gtd) {
            nb = 1;
            br[0] = t, br_f[0] = f_new;
            memcpy(bg0, g_new, sizeof(double) * (size_t)N);
            done = true;
            break;
        }
        if (bracketed || gtd_new >= 0) {
            nb = 2;
            br[0] = t_prev, br[1] = t;
            br_f[0] = f_prev, br_f[1] = f_new;
            memcpy(bg0, g_prev, sizeof(double) * (size_t)N);
            memcpy(bg1, g_new, sizeof(double) * (size_t)N);
            br_gtd[0] = gtd_prev, br_gtd[1] = gtd_new;
            break;
        }
        double min_step = t + 0.01 * (t - t_prev), max_step = t * 10, tmp = t;
        double bounds[2] = {min_step, max_step};
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds);
        t_prev = tmp;
        f_prev = f_new;
        memcpy(g_prev, g_new, sizeof(double) * (size_t)N);
        gtd_prev = gtd_new;
        f_new = directional_evaluate(ob, t, g_new);
        evals++;
        gtd_new = dot(g_new, d, N);
        ls_iter++;
    }
    if (ls_iter == max_ls) {
        nb = 2;
        br[0] = 0, br[1] = t;
        br_f[0] = f, br_f[1] = f_new;
        memcpy(bg0, g0, sizeof(double) * (size_t)N);
        memcpy(bg1, g_new, sizeof(double) * (size_t)N);
    }
    bool insuf_progress = false;
    int low = (br_f[0] <= br_f[nb - 1]) ? 0 : 1, high = 1 - low;
    while (!done && ls_iter < max_ls && ob->status == BN_OK) {
        if (fabs(br[1] - br[0]) * d_norm < tolerance_change) break;
        t = cubic_interpolate(br[0], br_f[0], br_gtd[0], br[1], br_f[1], br_gtd[1], NULL);
        double bmax = fmax(br[0], br[1]), bmin = fmin(br[0], br[1]);
        double eps = 0.1 * (bmax - bmin);
        if (fmin(bmax - t, t - bmin) < eps) {
            if (insuf_progress || t >= bmax || t <= bmin) {
                t = fabs(t - bmax) < fabs(t - bmin) ? bmax - eps : bmin + eps;
                insuf_progress = false;
            } else {
                insuf_progress = true;
            }
        } else {
            insuf_progress = false;
        }
        f_new = directional_evaluate(ob, t, g_new);
        evals++;
        gtd_new = dot(g_new, d, N);
        ls_iter++;
        if (f_new > (f + c1 * t * gtd) || f_new >= br_f[low]) {
            br[high] = t, br_f[high] = f_new, br_gtd[high] = gtd_new;
            memcpy(br_g[high], g_new, sizeof(double) * (size_t)N);
            low = br_f[0] <= br_f[1] ? 0 : 1;
            high = 1 - low;
        } else {
            if (fabs(gtd_new) <= -c2 * gtd) {
                done = true;
            } else if (gtd_new * (br[high] - br[low]) >= 0) {
                br[high] = br[low], br_f[high] = br_f[low], br_gtd[high] = br_gtd[low];
                memcpy(br_g[high], br_g[low], sizeof(double) * (size_t)N);
            }
            br[low] = t, br_f[low] = f_new, br_gtd[low] = gtd_new;
            memcpy(br_g[low], g_new, sizeof(double) * (size_t)N);
        }
    }
    memcpy(g, br_g[low], sizeof(double) * (size_t)N);
    free(g0);
    return (ls_result){br_f[low], br[low], evals};
}

/* ---- the step ----------------------------------------------------------------------------------- */
/* two-loop recursion: d = -H g with the stored history */
static void lbfgs_direction(lbfgs_state *s, const double *g)
{
    int64_t N = s->N;
    double *q = s->d;
    for (int64_t i = 0; i < N; i++) q[i] = -g[i];
    for (int i = s->nold - 1; i >= 0; i--) {
        s->al[i] = dot(s->stps[i], q, N) * s->ro[i];
        for (int64_t j = 0; j < N; j++) q[j] += -s->al[i] * s->dirs[i][j];
    }
    for (int64_t j = 0; j < N; j++) q[j] *= s->H_diag;
    for (int i = 0; i < s->nold; i++) {
        double be_i = dot(s->dirs[i], q, N) * s->ro[i];
        for (int64_t j = 0; j < N; j++) q[j] += (s->al[i] - be_i) * s->stps[i][j];
    }
}

/* records y = g - prev_g, s = d*t when y.s > 1e-10, dropping the oldest pair when the history
 * is full. The arrays have hs + 1 slots: slot nold is always free for the candidate pair. */
static bool lbfgs_remember(lbfgs_state *s, const double *g)
{
    int64_t N = s->N;
    int k = s->nold, hs = s->hs;
    if (!s->dirs[k]) s->dirs[k] = malloc(sizeof(double) * (size_t)(N ? N : 1));
    if (!s->stps[k]) s->stps[k] = malloc(sizeof(double) * (size_t)(N ? N : 1));
    if (!s->dirs[k] || !s->stps[k]) return false;
    double *y = s->dirs[k], *st = s->stps[k];
    for (int64_t i = 0; i < N; i++) {
        y[i] = g[i] - s->prev_g[i];
        st[i] = s->d[i] * s->t;
    }
    double ys = dot(y, st, N);
    if (ys > 1e-10) {
        s->ro[k] = 1. / ys;
        s->H_diag = ys / dot(y, y, N);
        if (k < hs) {
            s->nold++;
        } else { /* drop the oldest: rotate its buffers into the free slot */
            double *y0 = s->dirs[0], *s0 = s->stps[0];
            memmove(s->dirs, s->dirs + 1, sizeof(double *) * (size_t)hs);
            memmove(s->stps, s->stps + 1, sizeof(double *) * (size_t)hs);
            memmove(s->ro, s->ro + 1, sizeof(double) * (size_t)hs);
            s->dirs[hs] = y0, s->stps[hs] = s0;
        }
    }
    return true;
}

bn_status bn_optim_lbfgs_step(bn_optim *o, bn_optim_closure closure, void *ctx, double *loss_out)
{
    const char *fn = "bn_optim_lbfgs_step";
    BN_CHECK_NULL_STATUS(fn, o);
    BN_CHECK_NULL_STATUS(fn, closure);
    if (o->kind != OPTIM_LBFGS)
        return bn__error(BN_ERR_ARG, "%s: the optimizer is %s, not LBFGS", fn, bn_optim_name(o));
    lbfgs_state *s = o->lbfgs;
    const bn_lbfgs_opts *h = &o->h.lbfgs;
    int64_t N = s->N;
    size_t nb = sizeof(double) * (size_t)(N ? N : 1);
    double *g = malloc(nb), *x = malloc(nb), *scratch = malloc(nb * 4);
    bn_status st = BN_OK;
    if (!g || !x || !scratch) {
        st = bn__error(BN_ERR_OOM, "%s: out of memory", fn);
        goto done;
    }
    double loss = closure(ctx);
    if (isnan(loss) && bn_error_code() != BN_OK) {
        st = bn_error_code();
        goto done;
    }
    if (loss_out) *loss_out = loss;
    s->func_evals++;
    int current_evals = 1;
    if ((st = gather_grad(o, g)) != BN_OK) goto done;
    bool opt_cond = abs_max(g, N) <= h->tolerance_grad;
    if (opt_cond) goto finish;
    for (int n_iter = 1; n_iter <= h->max_iter; n_iter++) {
        s->n_iter++;
        if (s->n_iter == 1) {
            for (int64_t i = 0; i < N; i++) s->d[i] = -g[i];
            s->nold = 0;
            s->H_diag = 1;
        } else {
            if (!lbfgs_remember(s, g)) {
                st = bn__error(BN_ERR_OOM, "%s: out of memory for the history", fn);
                goto done;
            }
            lbfgs_direction(s, g);
        }
        memcpy(s->prev_g, g, nb);
        s->have_prev = true;
        s->prev_loss = loss;
        if (s->n_iter == 1) {
            double sum = 0;
            for (int64_t i = 0; i < N; i++) sum += fabs(g[i]);
            s->t = fmin(1., 1. / sum) * h->lr;
        } else {
            s->t = h->lr;
        }
        double gtd = dot(g, s->d, N);
        if (gtd > -h->tolerance_change) break;
        int ls_evals = 0;
        if (h->strong_wolfe) {
            get_params(o, x);
            objective ob = {o, closure, ctx, x, s->d, BN_OK};
            ls_result r = strong_wolfe(&ob, s->t, loss, g, gtd, h->tolerance_change, scratch);
            if ((st = ob.status) != BN_OK) goto done;
            loss = r.f, s->t = r.t, ls_evals = r.evals;
            add_to_params(o, s->t, s->d);
            opt_cond = abs_max(g, N) <= h->tolerance_grad;
        } else {
            add_to_params(o, s->t, s->d);
            if (n_iter != h->max_iter) {
                loss = closure(ctx);
                if (isnan(loss) && bn_error_code() != BN_OK) {
                    st = bn_error_code();
                    goto done;
                }
                if ((st = gather_grad(o, g)) != BN_OK) goto done;
                opt_cond = abs_max(g, N) <= h->tolerance_grad;
                ls_evals = 1;
            }
        }
        current_evals += ls_evals;
        s->func_evals += ls_evals;
        if (n_iter == h->max_iter || current_evals >= h->max_eval || opt_cond) break;
        double dmax = 0;
        for (int64_t i = 0; i < N; i++) dmax = fmax(dmax, fabs(s->d[i] * s->t));
        if (dmax <= h->tolerance_change) break;
        if (fabs(loss - s->prev_loss) < h->tolerance_change) break;
    }
finish:
    o->steps++;
done:
    free(g);
    free(x);
    free(scratch);
    return st;
}
