/* ops/attention.c — scaled dot-product attention (transformer.h): validation, then one of two
 * paths that give the same numbers:
 *   fused:     the backend's attention family (backend_attn.h): online softmax over key blocks,
 *              the output and one log-sum-exp per query row, no (Tq, Tk) matrix; its own
 *              derivative rule (autograd/grad_attention.c) recomputes the weights.
 *   reference: composed of public ops (matmul, masked_fill / add, softmax, dropout, matmul), so
 *              autograd records every step; kept for BN_ATTN_REFERENCE, for backends without the
 *              fused family, and as the tests' independent check of the fused one.
 * Grouped-query heads never copy k or v: q (B..., Hq, Tq, D) is viewed as
 * (B..., Hkv, G Tq, D) with G = Hq / Hkv, which puts each kv head's G query heads in one matmul. */
#include "amp/amp_internal.h"
#include "autograd/grad_attention.h"
#include "backend/backend_attn.h"
#include "born/autograd.h"
#include "born/transformer.h"

#include <math.h>

typedef struct attn_dims {
    int nlead;                  /* leading dims B... */
    int64_t lead[BN_MAX_DIMS];  /* their sizes */
    int64_t batch;              /* their product */
    int64_t hq, hkv, tq, tk, d, dv;
} attn_dims;

static bool check_float(const char *fn, const char *arg, const bn_tensor *t)
{
    if (bn_dtype_is_float(t->dtype)) return true;
    bn__error(BN_ERR_DTYPE, "%s: %s must have a float dtype, not %s", fn, arg,
              bn_dtype_name(t->dtype));
    return false;
}

static bool check_shapes(const char *fn, const bn_tensor *q, const bn_tensor *k,
                         const bn_tensor *v, attn_dims *s)
{
    if (q->ndim < 3) {
        bn__error(BN_ERR_SHAPE, "%s: q must be (B..., Hq, Tq, D) with at least 3 dims, got %s", fn,
                  bn__tshape(q));
        return false;
    }
    if (k->ndim != q->ndim || v->ndim != q->ndim) {
        bn__error(BN_ERR_SHAPE, "%s: q %s, k %s and v %s must have the same number of dims", fn,
                  bn__tshape(q), bn__tshape(k), bn__tshape(v));
        return false;
    }
    int nl = q->ndim - 3;
    s->nlead = nl;
    s->batch = 1;
    for (int d = 0; d < nl; d++) {
        if (k->shape[d] != q->shape[d] || v->shape[d] != q->shape[d]) {
            bn__error(BN_ERR_SHAPE,
                      "%s: the leading dims of q %s, k %s and v %s differ (dim %d: %lld, %lld, "
                      "%lld)",
                      fn, bn__tshape(q), bn__tshape(k), bn__tshape(v), d, (long long)q->shape[d],
                      (long long)k->shape[d], (long long)v->shape[d]);
            return false;
        }
        s->lead[d] = q->shape[d];
        s->batch *= q->shape[d];
    }
    s->hq = q->shape[nl], s->tq = q->shape[nl + 1], s->d = q->shape[nl + 2];
    s->hkv = k->shape[nl], s->tk = k->shape[nl + 1], s->dv = v->shape[nl + 2];
    if (k->shape[nl + 2] != s->d) {
        bn__error(BN_ERR_SHAPE, "%s: k %s has head dim %lld but q %s has %lld", fn, bn__tshape(k),
                  (long long)k->shape[nl + 2], bn__tshape(q), (long long)s->d);
        return false;
    }
    if (v->shape[nl] != s->hkv || v->shape[nl + 1] != s->tk) {
        bn__error(BN_ERR_SHAPE,
                  "%s: v %s must have the heads and keys of k %s (expected (..., %lld, %lld, Dv))",
                  fn, bn__tshape(v), bn__tshape(k), (long long)s->hkv, (long long)s->tk);
        return false;
    }
    if (s->hkv < 1 || s->hq % s->hkv != 0) {
        bn__error(BN_ERR_SHAPE,
                  "%s: the %lld query heads of q %s must be a multiple of the %lld kv heads of "
                  "k %s",
                  fn, (long long)s->hq, bn__tshape(q), (long long)s->hkv, bn__tshape(k));
        return false;
    }
    return true;
}

/* The scores' shape (B..., Hq, Tq, Tk) into shape; returns its ndim. */
static int score_shape(const attn_dims *s, int64_t *shape)
{
    for (int d = 0; d < s->nlead; d++) shape[d] = s->lead[d];
    shape[s->nlead] = s->hq, shape[s->nlead + 1] = s->tq, shape[s->nlead + 2] = s->tk;
    return s->nlead + 3;
}

static bool check_mask(const char *fn, const bn_tensor *mask, const bn_tensor *q,
                       const attn_dims *s)
{
    if (!mask) return true;
    if (mask->dtype != BN_BOOL && !bn_dtype_is_float(mask->dtype)) {
        bn__error(BN_ERR_DTYPE, "%s: mask must be bool or a float dtype, not %s", fn,
                  bn_dtype_name(mask->dtype));
        return false;
    }
    if (!bn__same_device(fn, q, mask)) return false;
    int64_t want[BN_MAX_DIMS];
    int nd = score_shape(s, want);
    bool ok = mask->ndim <= nd;
    for (int d = 0; ok && d < mask->ndim; d++) {
        int64_t m = mask->shape[mask->ndim - 1 - d], w = want[nd - 1 - d];
        ok = m == w || m == 1;
    }
    if (ok) return true;
    char buf[BN_SHAPE_STR_MAX];
    bn__error(BN_ERR_SHAPE,
              "%s: mask %s does not broadcast to the scores (B..., Hq, Tq, Tk) = %s", fn,
              bn__tshape(mask), bn__dims_str(want, nd, buf, sizeof buf));
    return false;
}

static bool check_opts(const char *fn, const bn_attention_opts *o)
{
    if (!(o->dropout_p >= 0.0 && o->dropout_p < 1.0)) {
        bn__error(BN_ERR_ARG, "%s: dropout_p %g must be in [0, 1)", fn, o->dropout_p);
        return false;
    }
    if (!isfinite(o->scale)) {
        bn__error(BN_ERR_ARG, "%s: scale %g must be finite (0 means 1/sqrt(D))", fn, o->scale);
        return false;
    }
    if (o->impl != BN_ATTN_AUTO && o->impl != BN_ATTN_FUSED && o->impl != BN_ATTN_REFERENCE) {
        bn__error(BN_ERR_ARG,
                  "%s: impl %d is not BN_ATTN_AUTO, BN_ATTN_FUSED or BN_ATTN_REFERENCE", fn,
                  (int)o->impl);
        return false;
    }
    return true;
}

/* ---- the reference path: public ops inside a private scope ---------------------------------- */
static bn_shape shape_of(int nlead, const int64_t *lead, int64_t a, int64_t b, int64_t c)
{
    bn_shape sh = {.ndim = nlead + 3};
    for (int d = 0; d < nlead; d++) sh.dims[d] = lead[d];
    sh.dims[nlead] = a, sh.dims[nlead + 1] = b, sh.dims[nlead + 2] = c;
    return sh;
}

/* The (Tq, Tk) bool mask of the keys each query may NOT see under the causal rule, on dev. */
static bn_tensor *causal_blocked(int64_t tq, int64_t tk, bn_device dev)
{
    bn_tensor *m = bn_zeros(BN_SHAPE(tq, tk), BN_BOOL);
    bool *p = m ? bn_tensor_data_bool(m) : NULL;
    if (!p) return NULL;
    for (int64_t i = 0; i < tq; i++)
        for (int64_t j = 0; j < tk; j++) p[i * tk + j] = j > i + (tk - tq);
    return dev.type == BN_DEVICE_CPU ? m : bn_tensor_to(m, dev);
}

/* Runs inside a scope the caller opened: every tensor made here belongs to it. */
static bn_tensor *attention_reference(const bn_tensor *q, const bn_tensor *k, const bn_tensor *v,
                                      const bn_attention_opts *o, const attn_dims *s, double scale)
{
    bn_dtype dt = q->dtype, cdt = dt == BN_F64 ? BN_F64 : BN_F32;
    bn_device dev = q->storage->device;
    const int64_t *L = s->lead;
    int nl = s->nlead;
    int64_t g = s->hq / s->hkv;
    bn_tensor *qc = bn_to_dtype(q, cdt), *kc = bn_to_dtype(k, cdt), *vc = bn_to_dtype(v, cdt);
    /* (B..., Hkv, G Tq, D) @ (B..., Hkv, D, Tk) -> (B..., Hq, Tq, Tk) */
    bn_tensor *qg = bn_reshape(qc, shape_of(nl, L, s->hkv, g * s->tq, s->d));
    bn_tensor *scores = bn_matmul(qg, bn_transpose(kc, -2, -1));
    scores = bn_mul_scalar(bn_reshape(scores, shape_of(nl, L, s->hq, s->tq, s->tk)), scale);
    bool masked = false;
    if (o->mask) {
        if (o->mask->dtype == BN_BOOL)
            scores = bn_masked_fill(scores, bn_logical_not(o->mask), -INFINITY);
        else
            scores = bn_add(scores, bn_to_dtype(o->mask, cdt));
        masked = true;
    }
    if (o->causal) {
        scores = bn_masked_fill(scores, causal_blocked(s->tq, s->tk, dev), -INFINITY);
        masked = true;
    }
    bn_tensor *valid = NULL; /* (B..., Hq, Tq, 1): the row sees at least one key */
    if (masked && s->tk > 0 && bn_numel(scores) > 0) {
        bn_tensor *rowmax = bn_max(scores, -1, true);
        valid = bn_gt_scalar(rowmax, -INFINITY);
        bn_tensor *all = bn_all(valid, BN_ALL, false);
        if (all && bn_item(all) != 0.0) valid = NULL; /* no empty row: nothing to fix */
        if (valid) scores = bn_masked_fill(scores, bn_logical_not(valid), 0.0);
    }
    bn_tensor *w = bn_softmax(scores, -1);
    if (valid) w = bn_mul(w, bn_to_dtype(valid, cdt));
    if (o->training && o->dropout_p > 0) w = bn_dropout(w, o->dropout_p, true);
    /* (B..., Hkv, G Tq, Tk) @ (B..., Hkv, Tk, Dv) -> (B..., Hq, Tq, Dv) */
    bn_tensor *out = bn_matmul(bn_reshape(w, shape_of(nl, L, s->hkv, g * s->tq, s->tk)), vc);
    out = bn_reshape(out, shape_of(nl, L, s->hq, s->tq, s->dv));
    return bn_to_dtype(out, dt);
}

/* ---- the fused path ------------------------------------------------------------------------- */
/* t in dtype dt as a view the kernels take (autograd/grad_attention.h's bn__attn_view4): t itself
 * (a new reference) when it already is one, else a contiguous copy. */
static bn_tensor *prep(const bn_tensor *t, bn_dtype dt)
{
    bn_tensor *c = bn__to_dtype(t, dt);
    bn_tview v;
    if (!c || bn__attn_view4(c, &v)) return c;
    bn_tensor *r = bn__contiguous(c);
    bn_release(c);
    return r;
}

/* The geometry of s, with the dropout reservation when o drops weights. */
static bn_attn_geom geom_of(const attn_dims *s, const bn_attention_opts *o, double scale)
{
    bn_attn_geom g = {.batch = s->batch, .hq = s->hq, .hkv = s->hkv, .tq = s->tq, .tk = s->tk,
                      .d = s->d, .dv = s->dv, .scale = scale, .causal = o->causal};
    if (o->training && o->dropout_p > 0) {
        g.dropout_p = o->dropout_p;
        uint64_t n = (uint64_t)s->batch * (uint64_t)s->hq * (uint64_t)s->tq * (uint64_t)s->tk;
        bn__rng_take((n + 3) / 4, &g.seed, &g.counter);
    }
    return g;
}

/* The dtype the kernels compute in: f16/bf16 stay as they are where the backend has
 * tensor-core kernels for the problem, the rest runs in f32 (f64 in f64). */
static bn_dtype kernel_dtype(const bn_backend *be, bn_dtype dt, const bn_attn_geom *g,
                             bool has_mask)
{
    bool low = (dt == BN_F16 || dt == BN_BF16) && be->attn->takes_low_precision &&
               be->attn->takes_low_precision(dt, g, has_mask);
    return low ? dt : dt == BN_F64 ? BN_F64 : BN_F32;
}

/* The mask as the kernels read it: expanded to the scores' shape, bool or the compute dtype. */
static bn_tensor *prep_mask(const bn_tensor *mask, bn_dtype cdt, const attn_dims *s)
{
    int64_t sshape[BN_MAX_DIMS];
    int snd = score_shape(s, sshape);
    bn_tensor *m = mask->dtype == BN_BOOL ? bn__contiguous(mask) : prep(mask, cdt);
    bn_tensor *mc = m ? bn__expand(m, sshape, snd) : NULL;
    bn_release(m);
    return mc;
}

static bn_tensor *attention_fused(const bn_backend *be, const bn_tensor *q, const bn_tensor *k,
                                  const bn_tensor *v, const bn_attention_opts *o,
                                  const attn_dims *s, double scale)
{
    bn_dtype dt = q->dtype, cdt = dt == BN_F64 ? BN_F64 : BN_F32;
    bn_device dev = q->storage->device;
    bn_attn_geom g = geom_of(s, o, scale);
    bn_dtype kdt = kernel_dtype(be, dt, &g, o->mask != NULL);
    bn_tensor *qc = prep(q, kdt), *kc = prep(k, kdt), *vc = prep(v, kdt);
    bn_tensor *mc = o->mask ? prep_mask(o->mask, cdt, s) : NULL;
    int64_t oshape[BN_MAX_DIMS];
    int ond = score_shape(s, oshape);
    oshape[ond - 1] = s->dv;
    bn_tensor *out = bn__empty(oshape, ond, kdt, dev);
    int64_t lshape[3] = {s->batch, s->hq, s->tq};
    bn_tensor *lse = bn__empty(lshape, 3, cdt, dev);
    bn_tensor *tmp[6] = {qc, kc, vc, mc, out, lse};
    bn_tensor *res = NULL;
    bn_tview qv, kv, vv, ov, lv, mv;
    if (qc && kc && vc && (!o->mask || mc) && out && lse && bn__attn_view4(qc, &qv) &&
        bn__attn_view4(kc, &kv) && bn__attn_view4(vc, &vv) && bn__attn_view4(out, &ov)) {
        lv = bn__tview(lse);
        if (mc) mv = bn__tview(mc);
        if (be->attn->forward(&qv, &kv, &vv, mc ? &mv : NULL, &ov, &lv, &g) == BN_OK) {
            /* a header of its own: the node saves `out`, and must not hold the tensor it
             * returns */
            res = dt == kdt ? bn__view(out, out->ndim, out->shape, out->strides, out->offset)
                            : bn__to_dtype(out, dt);
            res = bn__grad_attention(q, k, v, qc, kc, vc, mc, out, lse, &g, res);
        }
    }
    for (int i = 0; i < 6; i++) bn_release(tmp[i]);
    return res;
}

/* ---- attention of packed q, k, v rows (core/internal.h) ----------------------------------- */
/* qkv (B, T, (hq + 2 hkv) hd) viewed as one head tensor: the hq query heads, then the hkv key
 * heads, then the hkv value heads of each row; part 0, 1 or 2 as a (B, h, T, hd) view. */
static bn_tview packed_part(const bn_tview *base, int64_t hq, int64_t hkv, int64_t hd, int part)
{
    int64_t h = part == 0 ? hq : hkv, first = part == 0 ? 0 : part == 1 ? hq : hq + hkv;
    bn_tview v = *base;
    v.ndim = 4;
    v.data = (char *)base->data + first * hd * base->strides[2] * bn_dtype_size(base->dtype);
    v.shape[0] = base->shape[0], v.shape[1] = h, v.shape[2] = base->shape[1], v.shape[3] = hd;
    v.strides[0] = base->strides[0], v.strides[1] = hd, v.strides[2] = base->strides[1];
    v.strides[3] = 1;
    return v;
}

/* The composed form, for backends without the fused family and for BN_ATTN_REFERENCE: public
 * views of the parts, bn_attention, and the heads merged back. Runs inside the caller's scope. */
static bn_tensor *packed_composed(const bn_tensor *qkv, int64_t hq, int64_t hkv, int64_t hd,
                                  const bn_attention_opts *o)
{
    int64_t B = qkv->shape[0], T = qkv->shape[1];
    bn_tensor *part[3];
    for (int i = 0; i < 3; i++) {
        int64_t h = i == 0 ? hq : hkv, first = i == 0 ? 0 : i == 1 ? hq : hq + hkv;
        part[i] = bn_transpose(bn_reshape(bn_narrow(qkv, 2, first * hd, h * hd),
                                          BN_SHAPE(B, T, h, hd)),
                               1, 2);
    }
    bn_tensor *y = bn_attention(part[0], part[1], part[2], o);
    return bn_reshape(bn_transpose(y, 1, 2), BN_SHAPE(B, T, hq * hd));
}

bn_tensor *bn__attention_packed(const bn_tensor *qkv, int64_t hq, int64_t hkv,
                                const bn_attention_opts *opts)
{
    const char *fn = "bn__attention_packed";
    BN_AUTOCAST_LOW(bn__attention_packed(ac[0], hq, hkv, opts), qkv);
    BN_CHECK_NULL(fn, qkv);
    bn_attention_opts o = opts ? *opts : (bn_attention_opts){0};
    if (!check_float(fn, "qkv", qkv) || !check_opts(fn, &o)) return NULL;
    if (qkv->ndim != 3 || hq < 1 || hkv < 1 || hq % hkv != 0 ||
        qkv->shape[2] % (hq + 2 * hkv) != 0)
        return bn__error_null(BN_ERR_SHAPE,
                              "%s: qkv %s must be (B, T, (hq + 2 hkv) hd) with hkv dividing hq "
                              "(hq %lld, hkv %lld)",
                              fn, bn__tshape(qkv), (long long)hq, (long long)hkv);
    int64_t hd = qkv->shape[2] / (hq + 2 * hkv);
    attn_dims s = {.nlead = 1, .lead = {qkv->shape[0]}, .batch = qkv->shape[0], .hq = hq,
                   .hkv = hkv, .tq = qkv->shape[1], .tk = qkv->shape[1], .d = hd, .dv = hd};
    if (!check_mask(fn, o.mask, qkv, &s)) return NULL;
    double scale = o.scale != 0.0 ? o.scale : (hd > 0 ? 1.0 / sqrt((double)hd) : 1.0);
    const bn_backend *be = bn__backend(fn, qkv->storage->device);
    if (!be) return NULL;
    if (!be->attn || !be->attn->forward || o.impl == BN_ATTN_REFERENCE || hd == 0) {
        bn__scope_suspend();
        bn_scope_begin();
        bn_tensor *out = packed_composed(qkv, hq, hkv, hd, &o);
        if (out) bn_retain(out);
        bn_scope_end();
        bn__scope_resume();
        return bn__out(out);
    }
    bn_dtype dt = qkv->dtype, cdt = dt == BN_F64 ? BN_F64 : BN_F32;
    bn_device dev = qkv->storage->device;
    bn_attn_geom g = geom_of(&s, &o, scale);
    bn_dtype kdt = kernel_dtype(be, dt, &g, o.mask != NULL);
    bn_tensor *qc = bn__to_dtype(qkv, kdt);
    if (qc && qc->strides[2] != 1) {
        bn_tensor *c = bn__contiguous(qc);
        bn_release(qc);
        qc = c;
    }
    bn_tensor *mc = o.mask ? prep_mask(o.mask, cdt, &s) : NULL;
    /* the output rows stay in (B, T, hq, hd) order: the merged (B, T, hq hd) result is a view */
    bn_tensor *out = bn__empty((int64_t[]){s.batch, s.tq, hq * hd}, 3, kdt, dev);
    bn_tensor *lse = bn__empty((int64_t[]){s.batch, hq, s.tq}, 3, cdt, dev);
    bn_tensor *tmp[4] = {qc, mc, out, lse};
    bn_tensor *res = NULL;
    if (qc && (!o.mask || mc) && out && lse) {
        bn_tview base = bn__tview(qc), ob = bn__tview(out), lv = bn__tview(lse), mv;
        bn_tview qv = packed_part(&base, hq, hkv, hd, 0), kv = packed_part(&base, hq, hkv, hd, 1);
        bn_tview vv = packed_part(&base, hq, hkv, hd, 2), ov = packed_part(&ob, hq, 0, hd, 0);
        if (mc) mv = bn__tview(mc);
        if (be->attn->forward(&qv, &kv, &vv, mc ? &mv : NULL, &ov, &lv, &g) == BN_OK) {
            res = dt == kdt ? bn__view(out, out->ndim, out->shape, out->strides, out->offset)
                            : bn__to_dtype(out, dt);
            res = bn__grad_attention_packed(qkv, qc, mc, out, lse, &g, res);
        }
    }
    for (int i = 0; i < 4; i++) bn_release(tmp[i]);
    return bn__out(res);
}

/* ---- the public entry ------------------------------------------------------------------------ */
bn_tensor *bn_attention(const bn_tensor *q, const bn_tensor *k, const bn_tensor *v,
                        const bn_attention_opts *opts)
{
    const char *fn = "bn_attention";
    BN_AUTOCAST_LOW(bn_attention(ac[0], ac[1], ac[2], opts), q, k, v);
    BN_CHECK_NULL(fn, q);
    BN_CHECK_NULL(fn, k);
    BN_CHECK_NULL(fn, v);
    bn_attention_opts o = opts ? *opts : (bn_attention_opts){0};
    if (!check_float(fn, "q", q) || !check_float(fn, "k", k) || !check_float(fn, "v", v))
        return NULL;
    if (k->dtype != q->dtype || v->dtype != q->dtype)
        return bn__error_null(BN_ERR_DTYPE, "%s: q (%s), k (%s) and v (%s) must share one dtype",
                              fn, bn_dtype_name(q->dtype), bn_dtype_name(k->dtype),
                              bn_dtype_name(v->dtype));
    if (!bn__same_device(fn, q, k) || !bn__same_device(fn, q, v)) return NULL;
    attn_dims s;
    if (!check_shapes(fn, q, k, v, &s) || !check_mask(fn, o.mask, q, &s) || !check_opts(fn, &o))
        return NULL;
    double scale = o.scale != 0.0 ? o.scale : (s.d > 0 ? 1.0 / sqrt((double)s.d) : 1.0);
    const bn_backend *be = bn__backend(fn, q->storage->device);
    if (!be) return NULL;
    bool fused = be->attn && be->attn->forward && o.impl != BN_ATTN_REFERENCE;
    if (o.impl == BN_ATTN_FUSED && !fused)
        return bn__error_null(BN_ERR_UNSUPPORTED,
                              "%s: the %s backend has no fused attention kernel (use "
                              "BN_ATTN_AUTO or BN_ATTN_REFERENCE)",
                              fn, be->name);
    if (fused) return bn__out(attention_fused(be, q, k, v, &o, &s, scale));
    bn__scope_suspend();
    bn_scope_begin();
    bn_tensor *out = attention_reference(q, k, v, &o, &s, scale);
    if (out) bn_retain(out);
    bn_scope_end();
    bn__scope_resume();
    return bn__out(out);
}
