/* amp/grad_scaler.c — dynamic loss scaling (born/amp.h), the rules of torch.cuda.amp.GradScaler
 * (torch 1.13): the scale is an f32 value; unscaling multiplies each gradient by the f32
 * reciprocal of the scale and flags inf/NaN in the gradient as it was before; the update backs
 * off on an overflow and grows after growth_interval clean steps, but never to inf.
 *
 * The gradients stay on their device: the inf/NaN check is sum(g * 0) per gradient (0 for
 * finite values, NaN as soon as one element is inf or NaN), the per-gradient sums are added on
 * the device and read back once per unscale. Not done here: fused multi-tensor kernels for the
 * check and the division (two element-wise passes and a reduction per gradient). */
#include "amp/amp_internal.h"
#include "optim/optim_internal.h"

#include "born/autograd.h"

#include <float.h>
#include <math.h>

typedef enum stage { STAGE_READY = 0, STAGE_UNSCALED, STAGE_STEPPED } stage;

/* What one optimizer did since the last update (torch's per-optimizer state). */
typedef struct optim_record {
    const bn_optim *optim;
    stage stage;
    bool found_inf;
} optim_record;

struct bn_grad_scaler {
    bool enabled;
    float scale; /* torch keeps the scale in an f32 tensor */
    int64_t growth_tracker;
    double growth_factor, backoff_factor;
    int64_t growth_interval;
    optim_record *records; /* this iteration's optimizers */
    int nrecords, cap;
};

bn_grad_scaler *bn_grad_scaler_new(bn_grad_scaler_opts o)
{
    const char *fn = "bn_grad_scaler_new";
    double init = o.init_scale ? o.init_scale : 65536.0;
    double growth = o.growth_factor ? o.growth_factor : 2.0;
    double backoff = o.backoff_factor ? o.backoff_factor : 0.5;
    int64_t interval = o.growth_interval ? o.growth_interval : 2000;
    if (!(init > 0 && init <= FLT_MAX))
        return bn__error_null(BN_ERR_ARG, "%s: init_scale must be finite and > 0 in f32, got %g",
                              fn, init);
    if (!(growth > 1) || !isfinite(growth))
        return bn__error_null(BN_ERR_ARG, "%s: growth_factor must be finite and > 1, got %g", fn,
                              growth);
    if (!(backoff > 0 && backoff < 1))
        return bn__error_null(BN_ERR_ARG, "%s: backoff_factor must be in (0, 1), got %g", fn,
                              backoff);
    if (interval < 1)
        return bn__error_null(BN_ERR_ARG, "%s: growth_interval must be >= 1, got %lld", fn,
                              (long long)interval);
    bn_grad_scaler *s = calloc(1, sizeof *s);
    if (!s) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    s->enabled = !o.disabled;
    s->scale = (float)init;
    s->growth_factor = growth;
    s->backoff_factor = backoff;
    s->growth_interval = interval;
    return s;
}

void bn_grad_scaler_free(bn_grad_scaler *s)
{
    if (!s) return;
    free(s->records);
    free(s);
}

/* This iteration's record of o, created READY on first use (NULL with BN_ERR_OOM). */
static optim_record *record_of(const char *fn, bn_grad_scaler *s, const bn_optim *o)
{
    for (int i = 0; i < s->nrecords; i++)
        if (s->records[i].optim == o) return &s->records[i];
    if (s->nrecords == s->cap) {
        int ncap = s->cap ? 2 * s->cap : 4;
        optim_record *n = realloc(s->records, sizeof *n * (size_t)ncap);
        if (!n) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
        s->records = n;
        s->cap = ncap;
    }
    s->records[s->nrecords] = (optim_record){.optim = o, .stage = STAGE_READY};
    return &s->records[s->nrecords++];
}

/* ---- scale ------------------------------------------------------------------------------------ */
bn_tensor *bn_grad_scaler_scale(bn_grad_scaler *s, const bn_tensor *loss)
{
    const char *fn = "bn_grad_scaler_scale";
    BN_CHECK_NULL(fn, s);
    BN_CHECK_NULL(fn, loss);
    if (!bn_dtype_is_float(loss->dtype))
        return bn__error_null(BN_ERR_DTYPE, "%s: loss must have a float dtype, not %s", fn,
                              bn_dtype_name(loss->dtype));
    if (!s->enabled) {
        bn_retain((bn_tensor *)loss);
        return bn__out((bn_tensor *)loss);
    }
    bn__scope_suspend();
    bn_tensor *r = bn_mul_scalar(loss, (double)s->scale);
    bn__scope_resume();
    return bn__out(r);
}

/* ---- unscale ---------------------------------------------------------------------------------- */
/* Divides o's gradients by the scale in place of the old ones and sets *found_inf. Runs without
 * recording, inside a scope of its own. */
static bn_status unscale_grads(const char *fn, bn_grad_scaler *s, bn_optim *o, bool *found_inf)
{
    /* torch: inv_scale = scale.double().reciprocal().float() */
    double inv = (double)(float)(1.0 / (double)s->scale);
    bn_status st = BN_OK;
    bool found = false;
    bn_tensor *flag = NULL; /* sum of the per-gradient checks, on the first gradient's device */
    bn_no_grad_begin();
    bn_scope_begin();
    for (int i = 0; i < o->n && st == BN_OK; i++) {
        bn_tensor *p = o->params[i];
        if (!p->grad) continue;
        bn_tensor *g = p->grad;
        if (!bn_dtype_is_float(g->dtype)) {
            st = bn__error(BN_ERR_DTYPE, "%s: the gradient of parameter %d is %s, not a float", fn,
                           i, bn_dtype_name(g->dtype));
            break;
        }
        /* 0 for finite values, NaN for inf or NaN (checked before dividing, like torch) */
        bn_tensor *check = bn_sum(bn_mul_scalar(g, 0.0), BN_ALL, false);
        bn_tensor *unscaled = bn_mul_scalar(g, inv);
        if (!check || !unscaled) {
            st = bn_error_code();
            break;
        }
        bn_device fd = flag ? bn_device_of(flag) : bn_device_of(check);
        bn_device cd = bn_device_of(check);
        if (!flag) {
            flag = check;
        } else if (fd.type == cd.type && fd.index == cd.index) {
            flag = bn_add(flag, check);
        } else { /* another device: read this one on its own */
            bn_error_clear();
            double v = bn_item(check);
            st = bn_error_code();
            found = found || !isfinite(v);
        }
        if (st == BN_OK && !flag) st = bn_error_code();
        if (st == BN_OK) st = bn_set_grad(p, unscaled);
    }
    if (st == BN_OK && flag) {
        bn_error_clear();
        double v = bn_item(flag); /* the one host read */
        st = bn_error_code();
        found = found || !isfinite(v);
    }
    bn_scope_end();
    bn_no_grad_end();
    *found_inf = found;
    return st;
}

/* Checks that o may be unscaled now; returns its record, or NULL with an error. */
static optim_record *ready_record(const char *fn, bn_grad_scaler *s, bn_optim *o)
{
    optim_record *r = record_of(fn, s, o);
    if (!r) return NULL;
    if (r->stage == STAGE_UNSCALED)
        return bn__error_null(BN_ERR_ARG,
                              "%s: the gradients of this optimizer were already unscaled since "
                              "the last bn_grad_scaler_update",
                              fn);
    if (r->stage == STAGE_STEPPED)
        return bn__error_null(BN_ERR_ARG,
                              "%s: bn_grad_scaler_step already ran for this optimizer since the "
                              "last bn_grad_scaler_update",
                              fn);
    return r;
}

bn_status bn_grad_scaler_unscale(bn_grad_scaler *s, bn_optim *o)
{
    const char *fn = "bn_grad_scaler_unscale";
    BN_CHECK_NULL_STATUS(fn, s);
    BN_CHECK_NULL_STATUS(fn, o);
    if (!s->enabled) return BN_OK;
    optim_record *r = ready_record(fn, s, o);
    if (!r) return bn_error_code();
    bool found;
    bn_status st = unscale_grads(fn, s, o, &found);
    if (st != BN_OK) return st;
    r->found_inf = found;
    r->stage = STAGE_UNSCALED;
    return BN_OK;
}

/* ---- step and update -------------------------------------------------------------------------- */
bn_status bn_grad_scaler_step(bn_grad_scaler *s, bn_optim *o)
{
    const char *fn = "bn_grad_scaler_step";
    BN_CHECK_NULL_STATUS(fn, s);
    BN_CHECK_NULL_STATUS(fn, o);
    if (!s->enabled) return bn_optim_step(o);
    optim_record *r = record_of(fn, s, o);
    if (!r) return bn_error_code();
    if (r->stage == STAGE_STEPPED)
        return bn__error(BN_ERR_ARG,
                         "%s: already called for this optimizer since the last "
                         "bn_grad_scaler_update",
                         fn);
    if (r->stage == STAGE_READY) {
        bool found;
        bn_status st = unscale_grads(fn, s, o, &found);
        if (st != BN_OK) return st;
        r->found_inf = found;
    }
    r->stage = STAGE_STEPPED;
    return r->found_inf ? BN_OK : bn_optim_step(o);
}

bn_status bn_grad_scaler_update(bn_grad_scaler *s)
{
    const char *fn = "bn_grad_scaler_update";
    BN_CHECK_NULL_STATUS(fn, s);
    if (!s->enabled) return BN_OK;
    if (s->nrecords == 0)
        return bn__error(BN_ERR_ARG,
                         "%s: no inf/NaN check ran since the last update (call "
                         "bn_grad_scaler_step or bn_grad_scaler_unscale first)",
                         fn);
    bool found = false;
    for (int i = 0; i < s->nrecords; i++) found = found || s->records[i].found_inf;
    /* torch's _amp_update_scale_: the products are taken in double and stored as f32 */
    if (found) {
        s->scale = (float)((double)s->scale * s->backoff_factor);
        s->growth_tracker = 0;
    } else if (s->growth_tracker + 1 == s->growth_interval) {
        /* below FLT_MAX + half an ulp the product rounds to a finite f32 (torch keeps the old
         * scale when it would round to inf) */
        double grown = (double)s->scale * s->growth_factor;
        if (grown < (double)FLT_MAX + ldexp(1.0, 103)) s->scale = (float)grown;
        s->growth_tracker = 0;
    } else {
        s->growth_tracker++;
    }
    s->nrecords = 0;
    return BN_OK;
}

/* ---- inspection and state --------------------------------------------------------------------- */
double bn_grad_scaler_get_scale(const bn_grad_scaler *s)
{
    if (!s) return bn__null_arg("bn_grad_scaler_get_scale", "s"), NAN;
    return s->enabled ? (double)s->scale : 1.0;
}

bool bn_grad_scaler_is_enabled(const bn_grad_scaler *s)
{
    if (!s) return bn__null_arg("bn_grad_scaler_is_enabled", "s"), false;
    return s->enabled;
}

bool bn_grad_scaler_found_inf(const bn_grad_scaler *s)
{
    if (!s) return bn__null_arg("bn_grad_scaler_found_inf", "s"), false;
    for (int i = 0; i < s->nrecords; i++)
        if (s->records[i].found_inf) return true;
    return false;
}

bn_status bn_grad_scaler_get_state(const bn_grad_scaler *s, bn_grad_scaler_state *out)
{
    BN_CHECK_NULL_STATUS("bn_grad_scaler_get_state", s);
    BN_CHECK_NULL_STATUS("bn_grad_scaler_get_state", out);
    *out = (bn_grad_scaler_state){.scale = s->scale, .growth_tracker = s->growth_tracker};
    return BN_OK;
}

bn_status bn_grad_scaler_set_state(bn_grad_scaler *s, bn_grad_scaler_state st)
{
    const char *fn = "bn_grad_scaler_set_state";
    BN_CHECK_NULL_STATUS(fn, s);
    if (!(st.scale > 0 && st.scale <= FLT_MAX))
        return bn__error(BN_ERR_ARG, "%s: scale must be finite and > 0 in f32, got %g", fn,
                         st.scale);
    if (st.growth_tracker < 0 || st.growth_tracker >= s->growth_interval)
        return bn__error(BN_ERR_ARG, "%s: growth_tracker %lld is outside [0, %lld)", fn,
                         (long long)st.growth_tracker, (long long)s->growth_interval);
    s->scale = (float)st.scale;
    s->growth_tracker = st.growth_tracker;
    return BN_OK;
}
