/* optim/clip.c — gradient clipping by total norm and by value, like torch.nn.utils.clip_grad_*,
 * on any device.
 *
 * By norm, two paths:
 *  - fused: when every gradient lives on one device, shares one dtype and that device's backend
 *    has the clipping entries of backend_optim.h, one multi-tensor grad_norm call writes the
 *    total (sum of |g|^p, f64, in a fixed order) into a 0-d f64 tensor on the device and one
 *    scale_grads call multiplies every gradient by the clipping coefficient, which the device
 *    computes from that total itself: no launch per parameter, and bn_clip_grad_norm_async reads
 *    nothing back to the host. A gradient is scaled in place only when its parameter alone owns
 *    it (one reference, its own storage from a backend allocator, contiguous, outside autograd);
 *    any other gradient is replaced by a scaled copy, never written (it may be shared).
 *  - composed (mixed devices or dtypes, a gradient listed twice, backends without the entries):
 *    public ops (abs, sum/max reductions, mul); each gradient's part is reduced in f64 on its
 *    own device, the parts are summed (or maxed) on the first gradient's device, and gradients
 *    are replaced by clipped copies.
 * Both give the same total (up to the summation order) and the same clipped gradients. */
#include "backend/backend_optim.h"
#include "born/autograd.h"
#include "born/optim.h"
#include "core/internal.h"

#include <math.h>
#include <string.h>

static bool check_grads(const char *fn, bn_tensor *const *params, int n)
{
    if (!params) return bn__null_arg(fn, "params"), false;
    if (n < 0) return bn__error(BN_ERR_ARG, "%s: n = %d is negative", fn, n), false;
    for (int i = 0; i < n; i++) {
        if (!params[i]) return bn__error(BN_ERR_ARG, "%s: params[%d] is NULL", fn, i), false;
        const bn_tensor *g = params[i]->grad;
        if (g && !bn_dtype_is_float(g->dtype))
            return bn__error(BN_ERR_DTYPE, "%s: params[%d] has a %s gradient", fn, i,
                             bn_dtype_name(g->dtype)),
                   false;
    }
    return true;
}

static bool check_norm_args(const char *fn, bn_tensor *const *params, int n, double max_norm,
                            double norm_type)
{
    if (!check_grads(fn, params, n)) return false;
    if (!(norm_type > 0))
        return bn__error(BN_ERR_ARG, "%s: norm_type = %g must be positive (2, INFINITY, …)", fn,
                         norm_type),
               false;
    if (!(max_norm >= 0))
        return bn__error(BN_ERR_ARG, "%s: max_norm = %g must be >= 0", fn, max_norm), false;
    return true;
}

/* The norm from the total of |g|^p (or the largest |g|), as the backends' scale_grads finds it */
static double norm_of_total(double total, double p)
{
    return isinf(p) || p == 1 ? total : p == 2 ? sqrt(total) : pow(total, 1.0 / p);
}

/* ---- the composed path -------------------------------------------------------------------------- */
/* |g|^p summed (or the largest |g| when p is infinite) over one gradient: a 0-d f64 tensor on
 * g's device, or NULL with an error. Runs in the caller's scope. */
static bn_tensor *norm_part(const bn_tensor *g, double p)
{
    bn_tensor *a = bn_abs(bn_to_dtype(g, BN_F64));
    if (isinf(p)) return bn_max(a, BN_ALL, false);
    if (p == 1) return bn_sum(a, BN_ALL, false);
    return bn_sum(bn_pow_scalar(a, p), BN_ALL, false); /* p == 2: a * a exactly */
}

/* The total of the parts (sum of |g|^p, or the largest |g|) as a 0-d f64 tensor on the first
 * gradient's device, in the caller's scope; *acc stays NULL when no gradient has an element.
 * False with an error on failure. */
static bool composed_total(bn_tensor *const *params, int n, double p, bn_tensor **acc)
{
    *acc = NULL;
    for (int i = 0; i < n; i++) {
        const bn_tensor *g = params[i]->grad;
        if (!g || bn_numel(g) == 0) continue; /* an empty gradient adds 0 (and has no max) */
        bn_tensor *part = norm_part(g, p);
        if (!part) return false;
        if (*acc) {
            bn_device da = bn_device_of(*acc), dp = bn_device_of(part);
            if (da.type != dp.type || da.index != dp.index) part = bn_tensor_to(part, da);
            if (!part) return false;
        }
        *acc = !*acc ? part : isinf(p) ? bn_maximum(*acc, part) : bn_add(*acc, part);
        if (!*acc) return false;
    }
    return true;
}

/* The total norm of the gradients read back to the host (the caller's scope owns the
 * temporaries); -1 on failure. */
static double composed_norm(bn_tensor *const *params, int n, double p)
{
    bn_tensor *acc;
    if (!composed_total(params, n, p, &acc)) return -1;
    double total = 0;
    if (acc && bn_copy_to_host(acc, &total, sizeof total) != BN_OK) return -1;
    return norm_of_total(total, p);
}

/* Replaces every gradient by itself times coef (rounded to its dtype first, as torch does). */
static bool composed_scale(bn_tensor *const *params, int n, double coef)
{
    for (int i = 0; i < n; i++) {
        bn_tensor *p = params[i];
        if (!p->grad) continue;
        bn_tensor *scaled = bn_mul_scalar(p->grad, coef);
        if (!scaled || bn_set_grad(p, scaled) != BN_OK) return false;
    }
    return true;
}

/* ---- the fused path ---------------------------------------------------------------------------- */
typedef struct fused {
    const bn_backend_optim *k;
    bn_device dev;
    bn_dtype dt;
    int m;           /* gradients taking part */
    int *idx;        /* their parameters' indices */
    bool *own;       /* the parameter alone owns its gradient: it may be written in place */
    bn_tensor **src; /* contiguous gradient values (the gradient itself, or a copy), in scope */
    void **ptr;      /* element 0 of each array the kernels see */
    int64_t *numel;
    void *mem;
} fused;

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

/* Whether g may be written in place: no other reference to the tensor or its storage (which a
 * backend allocated, so it is no wrapped or mapped buffer), contiguous, outside autograd. */
static bool sole_owner(const bn_tensor *g)
{
    return __atomic_load_n(&g->refcount, __ATOMIC_ACQUIRE) == 1 &&
           __atomic_load_n(&g->storage->refcount, __ATOMIC_ACQUIRE) == 1 && !g->storage->free_fn &&
           !g->requires_grad && !g->grad_fn && bn__is_contiguous(g);
}

static void fused_free(fused *f) { free(f->mem); }

/* Plans the fused path: 1 when it applies (f filled; the contiguous values in the caller's
 * scope), 0 when the composed path must run, -1 with an error. */
static int fused_plan(const char *fn, bn_tensor *const *params, int n, fused *f)
{
    memset(f, 0, sizeof *f);
    int m = 0;
    const bn_tensor *g0 = NULL;
    for (int i = 0; i < n; i++) {
        const bn_tensor *g = params[i]->grad;
        if (!g) continue;
        if (!g0) g0 = g;
        bn_device d = g->storage->device, d0 = g0->storage->device;
        if (g->dtype != g0->dtype || d.type != d0.type || d.index != d0.index) return 0;
        m++;
    }
    if (m == 0) return 0;
    const bn_backend *be = bn__backend(fn, g0->storage->device);
    if (!be) return -1;
    if (!be->optim || !be->optim->grad_norm || !be->optim->scale_grads) return 0;
    size_t um = (size_t)m;
    size_t bytes = um * (sizeof(int) + sizeof(bool) + sizeof(bn_tensor *) + 2 * sizeof(void *) +
                         sizeof(int64_t));
    char *mem = malloc(bytes);
    if (!mem) return bn__error(BN_ERR_OOM, "%s: out of memory (%d gradients)", fn, m), -1;
    /* pointers and sizes first (aligned), then ints and bools */
    f->mem = mem;
    f->src = (bn_tensor **)(void *)mem;
    f->ptr = (void **)(void *)(f->src + um);
    f->numel = (int64_t *)(void *)(f->ptr + um);
    void **sorted = (void **)(void *)(f->numel + um);
    f->idx = (int *)(void *)(sorted + um);
    f->own = (bool *)(void *)(f->idx + um);
    f->k = be->optim;
    f->dev = g0->storage->device;
    f->dt = g0->dtype;
    f->m = m;
    /* a gradient listed twice would be scaled twice (as the composed path does): not fused */
    for (int i = 0, j = 0; i < n; i++)
        if (params[i]->grad) sorted[j++] = params[i]->grad;
    qsort(sorted, um, sizeof *sorted, cmp_ptr);
    for (size_t j = 1; j < um; j++)
        if (sorted[j] == sorted[j - 1]) return fused_free(f), 0;
    for (int i = 0, j = 0; i < n; i++) {
        bn_tensor *g = params[i]->grad;
        if (!g) continue;
        f->idx[j] = i;
        f->own[j] = sole_owner(g); /* before bn_contiguous takes a reference */
        f->src[j] = bn_contiguous(g);
        if (!f->src[j]) return fused_free(f), -1;
        f->ptr[j] = bn__data(f->src[j]);
        f->numel[j] = bn__numel(g);
        j++;
    }
    return 1;
}

/* Makes every array the kernels will scale writable: an owned gradient stays; any other one is
 * replaced by a fresh copy (the contiguous copy when one was made), which becomes the
 * parameter's gradient. ptr[] then points at what scale_grads may write. */
static bool fused_targets(fused *f, bn_tensor *const *params)
{
    for (int j = 0; j < f->m; j++) {
        bn_tensor *g = params[f->idx[j]]->grad;
        if (f->own[j]) continue;
        bn_tensor *c = f->src[j] != g ? f->src[j] : bn_clone(g);
        if (!c || bn_set_grad(params[f->idx[j]], c) != BN_OK) return false;
        f->src[j] = c;
        f->ptr[j] = bn__data(c);
    }
    return true;
}

/* Scales the targets in place by the coefficient the device derives from *total; bumps the
 * version of every gradient written in place. */
static bn_status fused_scale(fused *f, bn_tensor *const *params, const bn_tensor *total,
                             double max_norm, double p)
{
    bn_status st = f->k->scale_grads(f->dt, f->ptr, f->numel, f->m, bn__data(total), max_norm, p);
    if (st != BN_OK) return st;
    for (int j = 0; j < f->m; j++)
        if (f->own[j]) bn__bump_version(params[f->idx[j]]->grad);
    return BN_OK;
}

/* A new 0-d f64 tensor on f's device holding the total of |g|^p (or the largest |g|), in the
 * caller's scope; NULL with an error. */
static bn_tensor *fused_total(fused *f, double p)
{
    bn_tensor *out = bn__out(bn__empty(NULL, 0, BN_F64, f->dev));
    if (!out) return NULL;
    bn_status st =
        f->k->grad_norm(f->dt, (const void *const *)f->ptr, f->numel, f->m, p, bn__data(out));
    return st == BN_OK ? out : NULL;
}

/* ---- public ------------------------------------------------------------------------------------ */
double bn_clip_grad_norm(bn_tensor *const *params, int n, double max_norm, double norm_type)
{
    const char *fn = "bn_clip_grad_norm";
    if (!check_norm_args(fn, params, n, max_norm, norm_type)) return -1;
    const double p = norm_type;
    double norm = -1;
    bn_scope_begin();
    bn_no_grad_begin();
    fused f;
    int plan = fused_plan(fn, params, n, &f);
    if (plan > 0) {
        bn_tensor *total = fused_total(&f, p);
        double t = 0;
        if (total && bn_copy_to_host(total, &t, sizeof t) == BN_OK) {
            norm = norm_of_total(t, p);
            double coef = max_norm / (norm + 1e-6);
            if ((coef < 1 || isnan(coef)) && (!fused_targets(&f, params) ||
                                              fused_scale(&f, params, total, max_norm, p) != BN_OK))
                norm = -1;
        }
        fused_free(&f);
    } else if (plan == 0) {
        norm = composed_norm(params, n, p);
        double coef = max_norm / (norm + 1e-6);
        if ((norm >= 0 || isnan(norm)) && (coef < 1 || isnan(coef)) &&
            !composed_scale(params, n, coef))
            norm = -1;
    }
    bn_no_grad_end();
    bn_scope_end();
    return norm;
}

/* The composed path without a host read: the norm and the coefficient stay tensors on the first
 * gradient's device; each gradient is replaced by itself times the coefficient (1 when nothing
 * is clipped). NULL with an error. */
static bn_tensor *composed_async(bn_tensor *const *params, int n, double max_norm, double p)
{
    bn_tensor *acc;
    if (!composed_total(params, n, p, &acc)) return NULL;
    if (!acc) { /* no element anywhere: norm 0, nothing to scale */
        bn_device d = bn_cpu();
        for (int i = 0; i < n; i++)
            if (params[i]->grad) {
                d = params[i]->grad->storage->device;
                break;
            }
        return bn_tensor_to(bn_zeros(BN_SCALAR, BN_F64), d);
    }
    bn_tensor *norm = isinf(p) || p == 1 ? acc : p == 2 ? bn_sqrt(acc) : bn_pow_scalar(acc, 1 / p);
    bn_tensor *num = bn_tensor_to(bn_full(BN_SCALAR, max_norm, BN_F64), bn_device_of(acc));
    bn_tensor *coef = bn_minimum_scalar(bn_div(num, bn_add_scalar(norm, 1e-6)), 1.0);
    if (!coef) return NULL;
    for (int i = 0; i < n; i++) {
        bn_tensor *g = params[i]->grad;
        if (!g) continue;
        bn_device d = bn_device_of(coef), dg = g->storage->device;
        bn_tensor *c = d.type == dg.type && d.index == dg.index ? coef : bn_tensor_to(coef, dg);
        /* rounded to the gradient's dtype first, as bn_mul_scalar rounds its scalar */
        bn_tensor *scaled = bn_mul(g, bn_to_dtype(c, g->dtype));
        if (!scaled || bn_set_grad(params[i], scaled) != BN_OK) return NULL;
    }
    return norm;
}

bn_tensor *bn_clip_grad_norm_async(bn_tensor *const *params, int n, double max_norm,
                                   double norm_type)
{
    const char *fn = "bn_clip_grad_norm_async";
    if (!check_norm_args(fn, params, n, max_norm, norm_type)) return NULL;
    const double p = norm_type;
    bn_tensor *norm = NULL;
    bn_scope_begin();
    bn_no_grad_begin();
    fused f;
    int plan = fused_plan(fn, params, n, &f);
    if (plan > 0) {
        bn_tensor *total = fused_total(&f, p);
        if (total && fused_targets(&f, params) &&
            fused_scale(&f, params, total, max_norm, p) == BN_OK)
            norm = isinf(p) || p == 1 ? total
                   : p == 2           ? bn_sqrt(total)
                                      : bn_pow_scalar(total, 1 / p);
        fused_free(&f);
    } else if (plan == 0) {
        norm = composed_async(params, n, max_norm, p);
    }
    if (norm) bn_retain(norm);
    bn_no_grad_end();
    bn_scope_end();
    return norm ? bn__out(norm) : NULL;
}

bn_status bn_clip_grad_value(bn_tensor *const *params, int n, double clip_value)
{
    const char *fn = "bn_clip_grad_value";
    if (!check_grads(fn, params, n)) return bn_error_code();
    if (!(clip_value >= 0))
        return bn__error(BN_ERR_ARG, "%s: clip_value = %g must be >= 0", fn, clip_value);
    bn_status st = BN_OK;
    bn_scope_begin();
    bn_no_grad_begin();
    for (int i = 0; st == BN_OK && i < n; i++) {
        bn_tensor *p = params[i];
        if (!p->grad) continue;
        bn_tensor *c = bn_clamp(p->grad, -clip_value, clip_value);
        st = c ? bn_set_grad(p, c) : bn_error_code();
    }
    bn_no_grad_end();
    bn_scope_end();
    return st;
}
