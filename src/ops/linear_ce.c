/* ops/linear_ce.c — the fused classifier + cross-entropy (transformer.h):
 * cross_entropy(x @ w^T + b, target) computed in row chunks, so the (N, V) logits never exist
 * whole. Each chunk's logits (bn__lce_chunk_rows rows: a few MB) give its rows' log-sum-exp,
 * the logit of the target and (with label smoothing) the logits' sum, then the chunk is freed:
 *     loss_r = lse_r - (1 - eps) z_{r, t_r} - eps / V sum_c z_rc     (0 for an ignored row)
 * which is -sum_c A_rc log_softmax(z_r)_c with bn_cross_entropy's coefficients A (one-hot
 * smoothed; the mean divides by the number of counted rows, and is NaN when there are none).
 * The node keeps x, w, b, the targets and the (N) log-sum-exp; its rule
 * (autograd/grad_transformer.c) recomputes the chunks. With the fused row kernels, a loss reduced
 * to a scalar whose (N, V) logits gradient fits the stash budget (grad_transformer.h) instead
 * keeps the (N, V) d loss / d logits for an upstream gradient of 1, each chunk's rows made by the
 * row kernel right after its statistics; the backward then runs two products over all rows
 * (scaled by the real upstream gradient) instead of recomputing the logits chunk by chunk. Everything is composed of public ops on
 * the inputs' device (matmul, logsumexp, gather, sum): it runs wherever those do. On the CPU
 * f16/bf16 inputs are computed in f32. On a GPU they stay in their dtype for the three products
 * (tensor cores, f32 accumulation; under autocast the inputs are cast to the region's dtype,
 * like bn_linear) and each logits chunk is widened to f32 for the softmax statistics; per-row
 * losses and their reduction are in f64 everywhere. A backend with the cross-entropy row kernels
 * (backend_nn.h: ce_rows_forward / ce_rows_backward; the CPU and CUDA ones have them) gets each
 * chunk's logits as the product left them (f16/bf16 on a GPU, no widening copy) and gives the
 * log-sum-exp, the target's logit and the row sum in one pass; the rule's chunks then come back
 * as d loss / d logits in the products' dtype, also in one pass. */
#include "amp/amp_internal.h"
#include "autograd/grad_transformer.h"
#include "backend/backend_nn.h"
#include "born/transformer.h"

#include <math.h>

static bool check_inputs(const char *fn, const bn_tensor *x, const bn_tensor *w,
                         const bn_tensor *b, const bn_tensor *target, const bn_ce_opts *o)
{
    if (o->weight)
        return bn__error(BN_ERR_ARG, "%s: o.weight (class weights) is not supported here", fn),
               false;
    if ((unsigned)o->reduction > BN_REDUCTION_NONE)
        return bn__error(BN_ERR_ARG, "%s: reduction %d is not a bn_reduction", fn,
                         (int)o->reduction),
               false;
    if (!(o->label_smoothing >= 0 && o->label_smoothing <= 1))
        return bn__error(BN_ERR_ARG, "%s: label_smoothing = %g is outside [0, 1]", fn,
                         o->label_smoothing),
               false;
    const bn_tensor *fl[3] = {x, w, b};
    const char *names[3] = {"x", "w", "b"};
    for (int i = 0; i < 3; i++)
        if (fl[i] && !bn_dtype_is_float(fl[i]->dtype))
            return bn__error(BN_ERR_DTYPE, "%s: %s must have a float dtype, not %s", fn, names[i],
                             bn_dtype_name(fl[i]->dtype)),
                   false;
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
        return bn__error(BN_ERR_DTYPE, "%s: x (%s), w (%s) and b (%s) must share one dtype", fn,
                         bn_dtype_name(x->dtype), bn_dtype_name(w->dtype),
                         b ? bn_dtype_name(b->dtype) : "none"),
               false;
    if (!bn_dtype_is_int(target->dtype))
        return bn__error(BN_ERR_DTYPE, "%s: target must hold class indices (i64 or i32), not %s",
                         fn, bn_dtype_name(target->dtype)),
               false;
    if (!bn__same_device(fn, x, w) || (b && !bn__same_device(fn, x, b)) ||
        !bn__same_device(fn, x, target))
        return false;
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1])
        return bn__error(BN_ERR_SHAPE, "%s: x %s must be (N, D) and w %s (V, D)", fn,
                         bn__tshape(x), bn__tshape(w)),
               false;
    if (w->shape[0] < 1)
        return bn__error(BN_ERR_SHAPE, "%s: w %s has no classes (V must be >= 1)", fn,
                         bn__tshape(w)),
               false;
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return bn__error(BN_ERR_SHAPE, "%s: b %s must be (V) = [%lld] for w %s", fn,
                         bn__tshape(b), (long long)w->shape[0], bn__tshape(w)),
               false;
    if (target->ndim != 1 || target->shape[0] != x->shape[0])
        return bn__error(BN_ERR_SHAPE, "%s: target %s must be (N) = [%lld] for x %s", fn,
                         bn__tshape(target), (long long)x->shape[0], bn__tshape(x)),
               false;
    return true;
}

/* Fails naming the first class index out of [0, V) that is not ignored; the targets come to the
 * host only when the device found one. While a CUDA graph is captured nothing can be read back:
 * *poison then gets the 0-d bool "some target is out of range", which makes the loss NaN. In a
 * private scope. */
static bool check_targets(const char *fn, const bn_tensor *t, const bn_tensor *valid, int64_t V,
                          bn_tensor **poison)
{
    bn_tensor *bad = bn_logical_or(bn_lt_scalar(t, 0), bn_ge_scalar(t, (double)V));
    if (valid) bad = bn_logical_and(bad, valid);
    bn_tensor *any = bn_any(bad, BN_ALL, false);
    if (!any) return false;
    if (bn__capturing()) return *poison = any, true;
    if (bn_item(any) == 0) return true;
    bn_tensor *h = bn_contiguous(bn_tensor_to(t, bn_cpu()));
    bn_tensor *hv = valid ? bn_contiguous(bn_tensor_to(valid, bn_cpu())) : NULL;
    if (!h || (valid && !hv)) return false;
    const int64_t *p = bn__data(h);
    const bool *ok = hv ? bn__data(hv) : NULL;
    for (int64_t i = 0, n = bn__numel(h); i < n; i++)
        if ((!ok || ok[i]) && (p[i] < 0 || p[i] >= V))
            return bn__error(BN_ERR_ARG, "%s: target %lld (row %lld) is out of range for %lld "
                                         "classes",
                             fn, (long long)p[i], (long long)i, (long long)V),
                   false;
    return bn__error(BN_ERR_INTERNAL, "%s: the device found a target out of range, the host none",
                     fn),
           false;
}

/* One chunk's statistics through the backend's ce_rows_forward: z (R, V) in its product dtype,
 * tc (R) i64; *lse, *zt and (with label smoothing) *zsum (R) in the compute dtype. With gr (R,
 * the rows' upstream gradients) also dz (R, V) contiguous in z's dtype = d loss / d z, through
 * ce_rows_fused (one read of z) or ce_rows_backward. In the caller's scope. */
static bool rows_fused(const bn_backend *be, const bn_lce_problem *p, const bn_tensor *z,
                       const bn_tensor *tc, const bn_tensor *gr, const bn_tensor *dz,
                       bn_tensor **lse, bn_tensor **zt, bn_tensor **zsum)
{
    *lse = *zt = *zsum = NULL;
    if (!z || !tc || (gr && !dz)) return false;
    bn_tview zv = bn__tview(z);
    if (zv.ndim != 2 || (zv.shape[1] > 1 && zv.strides[1] != 1) || (gr && !bn_is_contiguous(z))) {
        z = bn_contiguous(z);
        if (!z) return false;
        zv = bn__tview(z);
    }
    bn_device dev = z->storage->device;
    bn_dtype cdt = z->dtype == BN_F64 ? BN_F64 : BN_F32;
    int64_t rows[1] = {zv.shape[0]};
    *lse = bn__out(bn__empty(rows, 1, cdt, dev));
    *zt = bn__out(bn__empty(rows, 1, cdt, dev));
    if (p->smoothing != 0) *zsum = bn__out(bn__empty(rows, 1, cdt, dev));
    bn_tensor *gc = gr ? bn_contiguous(gr) : NULL;
    if (!*lse || !*zt || (p->smoothing != 0 && !*zsum) || (gr && !gc)) return false;
    bn_tview tv = bn__tview(tc), lv = bn__tview(*lse), ztv = bn__tview(*zt);
    bn_tview sv = *zsum ? bn__tview(*zsum) : (bn_tview){0};
    bn_tview gv = gc ? bn__tview(gc) : (bn_tview){0}, dv = dz ? bn__tview(dz) : (bn_tview){0};
    if (gr && be->nn->ce_rows_fused)
        return be->nn->ce_rows_fused(&zv, &tv, &lv, &ztv, *zsum ? &sv : NULL, &gv, p->smoothing,
                                     &dv) == BN_OK;
    if (be->nn->ce_rows_forward(&zv, &tv, &lv, &ztv, *zsum ? &sv : NULL) != BN_OK) return false;
    return !gr || be->nn->ce_rows_backward(&zv, &tv, &lv, &gv, p->smoothing, &dv) == BN_OK;
}

/* The per-row losses (N) in f64 and the log-sum-exps (N) in the compute dtype, chunk by chunk.
 * With gr (N, the rows' d loss / d loss_r for an upstream gradient of 1) it also writes the
 * rows' d loss / d logits into dz (N, V) contiguous (the fused row kernels only). In a private
 * scope (the results belong to it). */
static bool lce_rows(const bn_lce_problem *p, const bn_tensor *x, const bn_tensor *w,
                     const bn_tensor *b, const bn_tensor *t, const bn_tensor *gr,
                     const bn_tensor *dz, bn_tensor **loss, bn_tensor **lse)
{
    const bn_backend *be = bn__backend("bn_linear_cross_entropy", x->storage->device);
    if (!be) return false;
    bool fused = be->nn && be->nn->ce_rows_forward;
    int64_t R = bn__lce_chunk_rows(p, x->dtype == BN_F64 ? 8 : 4, x->storage->device);
    int64_t nchunks = (p->n + R - 1) / R;
    bn_tensor **parts = calloc((size_t)(2 * nchunks + 1), sizeof *parts);
    if (!parts) return bn__error(BN_ERR_OOM, "bn_linear_cross_entropy: out of memory"), false;
    bool ok = true;
    for (int64_t k = 0; ok && k < nchunks; k++) {
        int64_t r0 = k * R, rows = p->n - r0 < R ? p->n - r0 : R;
        bn_scope_begin();
        bn_tensor *z = bn_linear(bn_narrow(x, 0, r0, rows), w, b); /* (R, V) */
        bn_tensor *lse_c = NULL, *zt = NULL, *zsum = NULL;
        if (fused) {
            if (!rows_fused(be, p, z, bn_narrow(t, 0, r0, rows),
                            gr ? bn_narrow(gr, 0, r0, rows) : NULL,
                            gr ? bn_narrow(dz, 0, r0, rows) : NULL, &lse_c, &zt, &zsum))
                lse_c = zt = zsum = NULL; /* the error is set */
        } else {
            if (z && z->dtype != BN_F64) z = bn_to_dtype(z, BN_F32);
            bn_tensor *tc = bn_unsqueeze(bn_narrow(t, 0, r0, rows), 1);
            lse_c = bn_logsumexp(z, 1, false);
            zt = bn_squeeze(bn_gather(z, 1, tc), 1);
            if (p->smoothing != 0) zsum = bn_sum(z, 1, false);
        }
        bn_tensor *l = bn_sub(bn_to_dtype(lse_c, BN_F64),
                              bn_mul_scalar(bn_to_dtype(zt, BN_F64), 1 - p->smoothing));
        if (p->smoothing != 0)
            l = bn_sub(l, bn_mul_scalar(bn_to_dtype(zsum, BN_F64), p->smoothing / (double)p->v));
        ok = l && lse_c;
        if (ok) {
            parts[k] = bn_scope_keep(l);
            parts[nchunks + k] = bn_scope_keep(lse_c);
        }
        bn_scope_end();
    }
    if (!ok) {
        free(parts);
        return false;
    }
    if (nchunks == 0) {
        *loss = bn__out(bn__full((int64_t[]){0}, 1, 0.0, BN_F64, x->storage->device));
        *lse = bn__out(bn__full((int64_t[]){0}, 1, 0.0, x->dtype == BN_F64 ? BN_F64 : BN_F32,
                                x->storage->device));
    } else {
        *loss = bn_cat(parts, (int)nchunks, 0);
        *lse = bn_cat(parts + nchunks, (int)nchunks, 0);
    }
    free(parts);
    return *loss && *lse;
}

bn_tensor *bn_linear_cross_entropy(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                                   const bn_tensor *target, bn_ce_opts o)
{
    const char *fn = "bn_linear_cross_entropy";
    BN_CHECK_NULL(fn, x);
    BN_CHECK_NULL(fn, w);
    BN_CHECK_NULL(fn, target);
    if (x->storage->device.type == BN_DEVICE_CPU)
        BN_AUTOCAST_F32(bn_linear_cross_entropy(ac[0], ac[1], ac[2], ac[3], o), x, w, b, target);
    else
        BN_AUTOCAST_LOW(bn_linear_cross_entropy(ac[0], ac[1], ac[2], ac[3], o), x, w, b, target);
    if (!check_inputs(fn, x, w, b, target, &o)) return NULL;
    bn_dtype cdt = x->dtype == BN_F64 ? BN_F64 : BN_F32;
    /* the products' dtype (see the top) */
    bn_dtype kdt = (x->dtype == BN_F16 || x->dtype == BN_BF16) &&
                           x->storage->device.type != BN_DEVICE_CPU
                       ? x->dtype
                       : cdt;
    bn_lce_problem p = {.n = x->shape[0], .d = x->shape[1], .v = w->shape[0],
                        .smoothing = o.label_smoothing, .reduction = (int)o.reduction};
    const bn_tensor *in[3] = {x, w, b};
    bool want_grad = bn__grad_needed(in, 3);
    /* the chunks' ops record nothing (the one node is recorded below) and compute in kdt:
     * the caller's autocast region does not reach them */
    int grad_mode = bn__grad_override(BN_GRAD_OFF);
    int autocast_saved = bn__autocast_suspend();
    bn__scope_suspend();
    bn_scope_begin();
    bn_tensor *xc = bn_to_dtype(x, kdt), *wc = bn_to_dtype(w, kdt);
    bn_tensor *bc = b ? bn_to_dtype(b, kdt) : NULL;
    bn_tensor *t = bn_to_dtype(target, BN_I64);
    bn_tensor *valid = NULL, *loss = NULL, *lse = NULL, *out = NULL;
    bool ok = xc && wc && (!b || bc) && t;
    if (ok && o.use_ignore_index) {
        valid = bn_ne_scalar(t, (double)o.ignore_index);
        ok = valid != NULL;
    }
    bn_tensor *poison = NULL, *count = NULL;
    ok = ok && check_targets(fn, t, valid, p.v, &poison);
    if (ok) {
        p.counted = (double)p.n;
        if (valid) {
            /* the mean's divisor stays on the device: no host read (the backward sums valid
             * again) */
            count = bn_to_dtype(bn_sum(valid, BN_ALL, false), BN_F64);
            t = bn_masked_fill(t, bn_logical_not(valid), 0.0); /* ignored rows read class 0 */
            ok = count && t;
        }
    }
    /* a reduced loss whose logits gradient fits the stash budget keeps that gradient (for an
     * upstream 1) from the forward, so the backward does not recompute the logits: d loss /
     * d loss_r is 1 / counted (mean) or 1 (sum), 0 on ignored rows */
    const bn_backend *be = bn__backend(fn, x->storage->device);
    int64_t stash_bytes = x->storage->device.type == BN_DEVICE_CPU ? BN_LCE_STASH_BYTES
                                                                    : BN_LCE_GPU_STASH_BYTES;
    bool stash = ok && want_grad && be && be->nn && be->nn->ce_rows_forward &&
                 be->nn->ce_rows_backward && o.reduction != BN_REDUCTION_NONE && p.n > 0 &&
                 p.n <= stash_bytes / (int64_t)bn_dtype_size(kdt) / (p.v > 0 ? p.v : 1);
    bn_tensor *gr = NULL, *dz = NULL;
    if (stash) {
        dz = bn__out(bn__empty((int64_t[]){p.n, p.v}, 2, kdt, x->storage->device));
        gr = bn__out(bn__full((int64_t[]){p.n}, 1, 1.0, cdt, x->storage->device));
        if (o.reduction == BN_REDUCTION_MEAN)
            gr = count ? bn_div(gr, bn_to_dtype(count, cdt)) : bn_div_scalar(gr, p.counted);
        if (valid) gr = bn_masked_fill(gr, bn_logical_not(valid), 0.0);
        ok = gr && dz;
    }
    ok = ok && lce_rows(&p, xc, wc, bc, t, gr, dz, &loss, &lse);
    if (ok) {
        if (valid) loss = bn_masked_fill(loss, bn_logical_not(valid), 0.0);
        if (o.reduction != BN_REDUCTION_NONE) loss = bn_sum(loss, BN_ALL, false);
        if (o.reduction == BN_REDUCTION_MEAN) /* 0/0: NaN */
            loss = count ? bn_div(loss, count) : bn_div_scalar(loss, p.counted);
        if (poison) loss = bn_masked_fill(loss, poison, NAN);
        /* f16/bf16 products give an f32 loss (the loss needs range and digits, like
         * bn_cross_entropy under autocast) */
        out = bn_to_dtype(loss, kdt != cdt ? cdt : x->dtype);
        ok = out != NULL;
    }
    /* what outlives the scope: the result, and what the node keeps */
    bn_tensor *keep[8] = {out, xc, wc, bc, t, valid, lse, dz};
    for (int i = 0; ok && i < 8; i++)
        if (keep[i]) bn_retain(keep[i]);
    bn_scope_end();
    bn__scope_resume();
    bn__autocast_resume(autocast_saved);
    bn__grad_override(grad_mode);
    if (!ok) return NULL;
    out = bn__grad_linear_ce(x, w, b, xc, wc, bc, t, valid, lse, dz, &p, out);
    for (int i = 1; i < 8; i++) bn_release(keep[i]);
    return bn__out(out);
}
