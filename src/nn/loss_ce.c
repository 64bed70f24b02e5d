/* nn/loss_ce.c — cross entropy (fused log-softmax + NLL) and NLL, like
 * torch.nn.functional.cross_entropy / nll_loss: class-index or probability targets, label
 * smoothing, ignore_index, per-class weights with torch's exact weighted-mean normalisation.
 *
 * Both losses are written as loss_b = -sum_c A[b, c] * logp[b, c] over the batch elements b,
 * where the coefficients A fold in the target, the smoothing, the weights, ignore_index and
 * the mean's divisor. On the CPU the forward runs in double; on another device (CUDA) it is
 * built from public ops on that device in the compute dtype (f64 for f64 logits, else f32), and
 * the host reads only one flag (is a class-index target out of range?). The backward is one
 * fused rule:
 *     d/dlogits = g * (softmax(logits) * sum_c A - A)          (cross entropy)
 *     d/dlog_probs = -g * A                                    (NLL)
 * written with public ops, so it can be differentiated again.
 *
 * Layout: logits (N, C, d1, …) or (C); B = N * S batch elements with S = d1 * …; element
 * (n, c, s) sits at (n * C + c) * S + s in a contiguous copy. */
#include "amp/amp_internal.h"
#include "nn/loss_internal.h"

#include <math.h>

enum { SAVED_X, SAVED_A, SAVED_ROWSUM, SAVED_K };
enum { I_REDUCTION, I_CDIM };

typedef struct ce_shape {
    int64_t N, C, S;
    int cdim;
} ce_shape;

typedef struct ce_problem {
    const char *fn;
    bool nll;        /* input is already log-probabilities */
    bool prob;       /* target holds probabilities (logits' shape) */
    double smoothing;
    ce_shape sh;
} ce_problem;

/* ---- checks --------------------------------------------------------------------------------- */
static bool check_target_shape(const char *fn, const bn_tensor *x, const bn_tensor *t, int cdim)
{
    bool ok = t->ndim == x->ndim - 1;
    for (int i = 0, j = 0; ok && i < x->ndim; i++) {
        if (i == cdim) continue;
        ok = t->shape[j++] == x->shape[i];
    }
    if (ok) return true;
    int64_t want[BN_MAX_DIMS];
    int nw = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != cdim) want[nw++] = x->shape[i];
    char buf[BN_SHAPE_STR_MAX];
    bn__error(BN_ERR_SHAPE, "%s: target %s does not match input %s (expected target %s)", fn,
              bn__tshape(t), bn__tshape(x), bn__dims_str(want, nw, buf, sizeof buf));
    return false;
}

static bool check_ce(ce_problem *p, const bn_tensor *x, const bn_tensor *t, const bn_ce_opts *o)
{
    const char *fn = p->fn;
    const char *xname = p->nll ? "log_probs" : "logits";
    if (!x) return bn__null_arg(fn, xname), false;
    if (!t) return bn__null_arg(fn, "target"), false;
    if (!loss_check_reduction(fn, o->reduction)) return false;
    if (!bn_dtype_is_float(x->dtype))
        return bn__error(BN_ERR_DTYPE, "%s: %s must be a float tensor, got %s", fn, xname,
                         bn_dtype_name(x->dtype)),
               false;
    if (x->ndim < 1)
        return bn__error(BN_ERR_SHAPE, "%s: %s must have a class dim, got shape %s", fn, xname,
                         bn__tshape(x)),
               false;
    if (!bn__same_device(fn, x, t)) return false;
    if (!p->nll && !(o->label_smoothing >= 0 && o->label_smoothing <= 1))
        return bn__error(BN_ERR_ARG, "%s: label_smoothing = %g is outside [0, 1]", fn,
                         o->label_smoothing),
               false;
    p->smoothing = p->nll ? 0 : o->label_smoothing;
    p->sh.cdim = x->ndim >= 2 ? 1 : 0;
    p->sh.C = x->shape[p->sh.cdim];
    p->sh.N = x->ndim >= 2 ? x->shape[0] : 1;
    p->sh.S = 1;
    for (int i = 2; i < x->ndim; i++) p->sh.S *= x->shape[i];
    p->prob = bn_dtype_is_float(t->dtype);
    if (p->prob) {
        if (p->nll)
            return bn__error(BN_ERR_DTYPE, "%s: target must hold class indices (an integer "
                                           "tensor), got %s", fn, bn_dtype_name(t->dtype)),
                   false;
        if (!bn_shape_equal(bn_shape_of(t), bn_shape_of(x)))
            return bn__error(BN_ERR_SHAPE,
                             "%s: probability target %s must have the shape of logits %s", fn,
                             bn__tshape(t), bn__tshape(x)),
                   false;
        if (o->use_ignore_index)
            return bn__error(BN_ERR_ARG, "%s: ignore_index is only for class-index targets", fn),
                   false;
    } else {
        if (!bn_dtype_is_int(t->dtype))
            return bn__error(BN_ERR_DTYPE,
                             "%s: target must be class indices (i64) or probabilities (float), "
                             "got %s",
                             fn, bn_dtype_name(t->dtype)),
                   false;
        if (!check_target_shape(fn, x, t, p->sh.cdim)) return false;
    }
    const bn_tensor *w = o->weight;
    if (w) {
        if (!bn_dtype_is_float(w->dtype))
            return bn__error(BN_ERR_DTYPE, "%s: weight must be a float tensor, got %s", fn,
                             bn_dtype_name(w->dtype)),
                   false;
        if (w->ndim != 1 || w->shape[0] != p->sh.C)
            return bn__error(BN_ERR_SHAPE, "%s: weight %s must be [%lld] (one per class)", fn,
                             bn__tshape(w), (long long)p->sh.C),
                   false;
        if (bn_grad_enabled() && w->requires_grad)
            return bn__error(BN_ERR_UNSUPPORTED,
                             "%s: the gradient with respect to weight is not implemented", fn),
                   false;
        if (!bn__same_device(fn, x, w)) return false;
    }
    return true;
}

/* ---- host copies ---------------------------------------------------------------------------- */
/* a contiguous copy of t as dt (new reference) */
static bn_tensor *host_copy(const bn_tensor *t, bn_dtype dt)
{
    bn_tensor *c = bn__to_dtype(t, dt);
    if (!c) return NULL;
    bn_tensor *r = bn__contiguous(c);
    bn_release(c);
    return r;
}

/* a new f64 tensor of the given shape (not registered) */
static bn_tensor *new_f64(const int64_t *shape, int ndim)
{
    return bn__empty(shape, ndim, BN_F64, bn_cpu());
}

/* ---- the forward ------------------------------------------------------------------------------ */
typedef struct ce_result {
    bn_tensor *loss;   /* f64: batch shape (none) or 0-d */
    bn_tensor *A;      /* f64, logits' shape */
    bn_tensor *rowsum; /* f64, logits' shape with the class dim 1 */
    bn_tensor *K;      /* f64, probability targets only: d loss / d target = K * logp */
} ce_result;

static void ce_result_free(ce_result *r)
{
    bn_release(r->loss);
    bn_release(r->A);
    bn_release(r->rowsum);
    bn_release(r->K);
}

/* log-softmax over the class dim of every batch element (or a copy for NLL) */
static void log_probs(const ce_problem *p, const double *x, double *logp)
{
    int64_t C = p->sh.C, S = p->sh.S;
    for (int64_t n = 0; n < p->sh.N; n++)
        for (int64_t s = 0; s < S; s++) {
            const double *xb = x + n * C * S + s;
            double *lb = logp + n * C * S + s;
            if (p->nll) {
                for (int64_t c = 0; c < C; c++) lb[c * S] = xb[c * S];
                continue;
            }
            double m = -INFINITY;
            for (int64_t c = 0; c < C; c++) m = xb[c * S] > m ? xb[c * S] : m;
            if (isinf(m)) m = 0; /* all -inf (or +inf): let the arithmetic give inf/nan */
            double sum = 0;
            for (int64_t c = 0; c < C; c++) sum += exp(xb[c * S] - m);
            double lse = m + log(sum);
            for (int64_t c = 0; c < C; c++) lb[c * S] = xb[c * S] - lse;
        }
}

/* Fills A for class-index targets and gives the weight sum of the counted targets; returns
 * false with an error for an index out of range. */
static bool coefs_index(const ce_problem *p, const bn_ce_opts *o, const int64_t *t,
                        const double *w, double *A, double *wsum_out)
{
    int64_t C = p->sh.C, S = p->sh.S, B = p->sh.N * S, counted = 0;
    double eps = p->smoothing, wsum = 0;
    for (int64_t b = 0; b < B; b++) {
        if (o->use_ignore_index && t[b] == o->ignore_index) continue;
        if (t[b] < 0 || t[b] >= C) {
            bn__error(BN_ERR_ARG, "%s: target %lld is out of range for %lld classes", p->fn,
                      (long long)t[b], (long long)C);
            return false;
        }
        wsum += w[t[b]];
        counted++;
    }
    *wsum_out = wsum;
    /* torch 1.13 divides both the NLL part and the smoothing part of a mean by the weight sum
     * of the targets it counts (their number without weights), ignored ones left out */
    bool mean = o->reduction == BN_REDUCTION_MEAN;
    double nll_div = mean ? wsum : 1;
    double smooth_div = mean ? (o->weight ? wsum : (double)counted) : 1;
    for (int64_t b = 0; b < B; b++) {
        int64_t n = b / S, s = b % S;
        double *ab = A + n * C * S + s;
        bool ignored = o->use_ignore_index && t[b] == o->ignore_index;
        for (int64_t c = 0; c < C; c++) {
            double a = 0;
            if (!ignored) {
                if (c == t[b]) a += (1 - eps) * w[c] / nll_div;
                if (eps != 0) a += eps / (double)C * w[c] / smooth_div;
            }
            ab[c * S] = a;
        }
    }
    return true;
}

static void coefs_prob(const ce_problem *p, const bn_ce_opts *o, const double *q,
                       const double *w, double *A, double *K)
{
    int64_t C = p->sh.C, S = p->sh.S, B = p->sh.N * S;
    double eps = p->smoothing;
    double div = o->reduction == BN_REDUCTION_MEAN ? (double)B : 1;
    for (int64_t b = 0; b < B; b++) {
        int64_t off = (b / S) * C * S + b % S;
        for (int64_t c = 0; c < C; c++) {
            int64_t i = off + c * S;
            A[i] = w[c] * ((1 - eps) * q[i] + eps / (double)C) / div;
            K[i] = -(1 - eps) * w[c] / div;
        }
    }
}

/* loss values and row sums of A from A and logp; empty_mean: mean over nothing (NaN) */
static void ce_losses(const ce_problem *p, const bn_ce_opts *o, const double *A,
                      const double *logp, double *rowsum, double *loss, bool empty_mean)
{
    int64_t C = p->sh.C, S = p->sh.S, B = p->sh.N * S;
    double total = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t off = (b / S) * C * S + b % S;
        double l = 0, r = 0;
        for (int64_t c = 0; c < C; c++) {
            double a = A[off + c * S];
            if (a != 0) l -= a * logp[off + c * S];
            r += a;
        }
        rowsum[b] = r;
        if (o->reduction == BN_REDUCTION_NONE) loss[b] = l;
        else total += l;
    }
    if (o->reduction != BN_REDUCTION_NONE) loss[0] = empty_mean ? NAN : total;
}

/* ---- the forward on another device ------------------------------------------------------------ */
/* a 0-d tensor of value v on device d, owned by the current scope */
static bn_tensor *dev_scalar(double v, bn_dtype dt, bn_device d)
{
    int64_t unused[1] = {1};
    return bn__out(bn__full(unused, 0, v, dt, d));
}

/* After the device said a class-index target is out of range: names the first one in order
 * with the CPU path's message (the targets come to the host only on this error path). */
static void report_bad_target(const ce_problem *p, const bn_ce_opts *o, const bn_tensor *t)
{
    bn_tensor *h = bn_contiguous(bn_to_dtype(bn_tensor_to(t, bn_cpu()), BN_I64));
    if (!h) return;
    const int64_t *v = bn__data(h);
    for (int64_t b = 0, n = bn__numel(h); b < n; b++) {
        if (o->use_ignore_index && v[b] == o->ignore_index) continue;
        if (v[b] < 0 || v[b] >= p->sh.C) {
            bn__error(BN_ERR_ARG, "%s: target %lld is out of range for %lld classes", p->fn,
                      (long long)v[b], (long long)p->sh.C);
            return;
        }
    }
    bn__error(BN_ERR_INTERNAL, "%s: the device found a target out of range, the host none", p->fn);
}

/* A for class-index targets on x's device (cshape: 1 but C at the class dim); *empty gets a
 * 0-d bool that is true where a mean has no weight to divide by (NULL unless a mean). NULL with
 * an error for a target out of range. */
static bn_tensor *coefs_index_device(const ce_problem *p, const bn_ce_opts *o, const bn_tensor *t,
                                     const bn_tensor *wb, bn_shape cshape, bn_dtype cdt,
                                     bn_tensor **empty)
{
    bn_device dev = t->storage->device;
    double eps = p->smoothing;
    int64_t C = p->sh.C;
    bool mean = o->reduction == BN_REDUCTION_MEAN;
    bn_tensor *tu = bn_unsqueeze(t, p->sh.cdim); /* logits' shape with 1 at the class dim */
    bn_tensor *valid = o->use_ignore_index ? bn_ne_scalar(tu, (double)o->ignore_index) : NULL;
    bn_tensor *bad = bn_logical_or(bn_lt_scalar(tu, 0), bn_ge_scalar(tu, (double)C));
    if (valid) bad = bn_logical_and(bad, valid);
    bn_tensor *any = bn_any(bad, BN_ALL, false);
    if (!any) return NULL;
    /* while a CUDA graph is captured there is no value to read: a bad target makes the
     * coefficients (so the loss and its gradient) NaN instead */
    bool capturing = bn__capturing();
    if (!capturing && bn_item(any) != 0) {
        report_bad_target(p, o, t);
        return NULL;
    }
    bn_tensor *classes =
        bn_reshape(bn_tensor_to(bn_arange(0, (double)C, 1, BN_I64), dev), cshape);
    bn_tensor *hit = bn_eq(tu, classes); /* the target's class of each counted element */
    if (valid) hit = bn_logical_and(hit, valid);
    bn_tensor *hitf = bn_to_dtype(hit, cdt);
    /* a mean divides by the weight sum of the counted targets (smoothing: by their number when
     * there are no weights), as in coefs_index */
    bn_tensor *wsum = NULL, *counted = NULL;
    if (mean) {
        counted = bn_sum(hitf, BN_ALL, false);
        wsum = wb ? bn_sum(bn_mul(hitf, wb), BN_ALL, false) : counted;
        *empty = bn_eq_scalar(wsum, 0);
    }
    bn_tensor *zero = dev_scalar(0, cdt, dev);
    bn_tensor *coef = wb ? bn_mul_scalar(wb, 1 - eps) : dev_scalar(1 - eps, cdt, dev);
    if (mean) coef = bn_div(coef, wsum);
    bn_tensor *A = bn_where(hit, coef, zero); /* 0, not 0 * inf, off the target */
    if (eps != 0) {
        bn_tensor *sm = wb ? bn_mul_scalar(wb, eps / (double)C) : dev_scalar(eps / (double)C, cdt, dev);
        if (mean) sm = bn_div(sm, wb ? wsum : counted);
        if (valid) sm = bn_where(valid, sm, zero);
        A = bn_add(A, sm);
    }
    if (capturing) A = bn_where(any, dev_scalar(NAN, cdt, dev), A);
    return A;
}

static bool ce_compute_device(const ce_problem *p, const bn_tensor *x, const bn_tensor *t,
                              const bn_ce_opts *o, ce_result *r)
{
    bn_dtype cdt = x->dtype == BN_F64 ? BN_F64 : BN_F32;
    bn_device dev = x->storage->device;
    int cdim = p->sh.cdim, nd = x->ndim;
    int64_t C = p->sh.C, B = p->sh.N * p->sh.S;
    double eps = p->smoothing;
    bool mean = o->reduction == BN_REDUCTION_MEAN;
    bn_shape cshape = {.ndim = nd};
    for (int i = 0; i < nd; i++) cshape.dims[i] = i == cdim ? C : 1;
    loss_forward_begin();
    bn_tensor *xc = bn_to_dtype(x, cdt);
    bn_tensor *logp = p->nll ? xc : bn_log_softmax(xc, cdim);
    bn_tensor *wb = o->weight ? bn_reshape(bn_to_dtype(o->weight, cdt), cshape) : NULL;
    bn_tensor *A = NULL, *K = NULL, *empty = NULL;
    bool ok = logp && (!o->weight || wb);
    if (ok && p->prob) {
        double div = mean ? (double)B : 1;
        A = bn_add_scalar(bn_mul_scalar(bn_to_dtype(t, cdt), 1 - eps), eps / (double)C);
        if (wb) A = bn_mul(wb, A);
        A = bn_div_scalar(A, div);
        K = bn__out(bn__full(x->shape, nd, -(1 - eps), cdt, dev));
        if (wb) K = bn_mul(K, wb);
        K = bn_div_scalar(K, div);
        if (mean && B == 0) empty = bn_eq_scalar(dev_scalar(0, cdt, dev), 0);
    } else if (ok) {
        A = coefs_index_device(p, o, t, wb, cshape, cdt, &empty);
    }
    ok = ok && A && (!p->prob || K) && (p->prob || !mean || empty);
    bn_tensor *rowsum = NULL, *loss = NULL;
    if (ok) {
        /* loss_b = -sum_c A logp, skipping A == 0 (0 * -inf would be NaN), as ce_losses */
        bn_tensor *prod = bn_where(bn_ne_scalar(A, 0), bn_mul(A, logp), dev_scalar(0, cdt, dev));
        rowsum = bn_sum(A, cdim, true);
        loss = bn_neg(o->reduction == BN_REDUCTION_NONE ? bn_sum(prod, cdim, false)
                                                        : bn_sum(prod, BN_ALL, false));
        if (empty) loss = bn_where(empty, dev_scalar(NAN, cdt, dev), loss);
        ok = rowsum && loss;
    }
    if (ok) {
        r->loss = loss, r->A = A, r->rowsum = rowsum, r->K = p->prob ? K : NULL;
        bn_retain(loss);
        bn_retain(A);
        bn_retain(rowsum);
        if (r->K) bn_retain(r->K);
    }
    loss_forward_end(NULL);
    return ok;
}

static bool ce_compute(const ce_problem *p, const bn_tensor *x, const bn_tensor *t,
                       const bn_ce_opts *o, ce_result *r)
{
    if (x->storage->device.type != BN_DEVICE_CPU) return ce_compute_device(p, x, t, o, r);
    int64_t C = p->sh.C, B = p->sh.N * p->sh.S;
    bn_tensor *x64 = host_copy(x, BN_F64), *t64 = host_copy(t, p->prob ? BN_F64 : BN_I64);
    bn_tensor *w64 = o->weight ? host_copy(o->weight, BN_F64) : NULL;
    bn_tensor *logp = x64 ? bn__empty_like(x64) : NULL;
    double *ones = malloc(sizeof(double) * (size_t)(C ? C : 1));
    bool ok = x64 && t64 && logp && ones && (!o->weight || w64);
    if (ok) {
        for (int64_t c = 0; c < C; c++) ones[c] = 1;
        const double *w = w64 ? bn__data(w64) : ones;
        int64_t rs_shape[BN_MAX_DIMS], batch[BN_MAX_DIMS];
        int nb = 0;
        for (int i = 0; i < x->ndim; i++) {
            rs_shape[i] = i == p->sh.cdim ? 1 : x->shape[i];
            if (i != p->sh.cdim) batch[nb++] = x->shape[i];
        }
        r->A = new_f64(x->shape, x->ndim);
        r->rowsum = new_f64(rs_shape, x->ndim);
        r->K = p->prob ? new_f64(x->shape, x->ndim) : NULL;
        bool none = o->reduction == BN_REDUCTION_NONE;
        r->loss = new_f64(batch, none ? nb : 0);
        ok = r->A && r->rowsum && r->loss && (!p->prob || r->K);
        if (ok) {
            log_probs(p, bn__data(x64), bn__data(logp));
            bool empty_mean = o->reduction == BN_REDUCTION_MEAN;
            if (p->prob) {
                coefs_prob(p, o, bn__data(t64), w, bn__data(r->A), bn__data(r->K));
                empty_mean = empty_mean && B == 0;
            } else {
                double wsum = 0;
                ok = coefs_index(p, o, bn__data(t64), w, bn__data(r->A), &wsum);
                /* torch: 0 / 0 when every target is ignored (or the weights sum to 0) */
                empty_mean = empty_mean && wsum == 0;
            }
            if (ok)
                ce_losses(p, o, bn__data(r->A), bn__data(logp), bn__data(r->rowsum),
                          bn__data(r->loss), empty_mean);
        }
    }
    free(ones);
    bn_release(x64);
    bn_release(t64);
    bn_release(w64);
    bn_release(logp);
    if (!ok) ce_result_free(r);
    return ok;
}

/* ---- the backward rules ------------------------------------------------------------------------ */
/* the incoming gradient with the class dim restored for reduction none */
static const bn_tensor *per_class(bn_node *n, const bn_tensor *g)
{
    if (n->i[I_REDUCTION] != BN_REDUCTION_NONE) return g;
    return bn_unsqueeze(g, (int)n->i[I_CDIM]);
}

static bn_status ce_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    const bn_tensor *x = bn__node_saved(n, SAVED_X);
    int cdim = (int)n->i[I_CDIM];
    const bn_tensor *gb = per_class(n, g);
    if (bn__node_needs(n, 0)) {
        bn_tensor *sm = bn_mul(bn_softmax(x, cdim), bn__node_saved(n, SAVED_ROWSUM));
        grads[0] = bn_mul(gb, bn_sub(sm, bn__node_saved(n, SAVED_A)));
    }
    if (bn__node_needs(n, 1))
        grads[1] = bn_mul(gb, bn_mul(bn_log_softmax(x, cdim), bn__node_saved(n, SAVED_K)));
    return bn_error_code();
}

static bn_status nll_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_neg(bn_mul(per_class(n, g), bn__node_saved(n, SAVED_A)));
    return bn_error_code();
}

/* ---- entry points ------------------------------------------------------------------------------ */
static bn_tensor *ce_run(ce_problem *p, const bn_tensor *x, const bn_tensor *t, bn_ce_opts o)
{
    if (!check_ce(p, x, t, &o)) return NULL;
    ce_result r = {0};
    if (!ce_compute(p, x, t, &o, &r)) return NULL;
    bn_tensor *out = bn__to_dtype(r.loss, x->dtype);
    const bn_tensor *in[2] = {x, t};
    if (out && bn__grad_needed(in, 2)) {
        bn_tensor *A = bn__to_dtype(r.A, x->dtype);
        bn_tensor *rs = bn__to_dtype(r.rowsum, x->dtype);
        bn_tensor *K = r.K ? bn__to_dtype(r.K, x->dtype) : NULL;
        bn_node *n = (A && rs && (!r.K || K))
                         ? bn__grad_record(out, p->nll ? "NllLossBackward" : "CrossEntropyBackward",
                                           p->nll ? nll_backward : ce_backward, in, 2)
                         : NULL;
        if (n) {
            bn__node_save(n, SAVED_X, x);
            bn__node_save(n, SAVED_A, A);
            bn__node_save(n, SAVED_ROWSUM, rs);
            if (K) bn__node_save(n, SAVED_K, K);
            n->i[I_REDUCTION] = o.reduction;
            n->i[I_CDIM] = p->sh.cdim;
        } else {
            bn_release(out);
            out = NULL;
        }
        bn_release(A);
        bn_release(rs);
        bn_release(K);
    }
    ce_result_free(&r);
    return bn__out(out);
}

bn_tensor *bn_cross_entropy(const bn_tensor *logits, const bn_tensor *target, bn_ce_opts o)
{
    BN_AUTOCAST_F32(bn_cross_entropy(ac[0], ac[1], o), logits, target);
    ce_problem p = {.fn = "bn_cross_entropy"};
    return ce_run(&p, logits, target, o);
}

bn_tensor *bn_nll_loss(const bn_tensor *log_probs, const bn_tensor *target, bn_ce_opts o)
{
    BN_AUTOCAST_F32(bn_nll_loss(ac[0], ac[1], o), log_probs, target);
    ce_problem p = {.fn = "bn_nll_loss", .nll = true};
    return ce_run(&p, log_probs, target, o);
}
