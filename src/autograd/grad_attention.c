/* autograd/grad_attention.c — the derivative rule of the fused attention (ops/attention.c).
 * The node keeps q, k, v, the output and the per-row log-sum-exp — never the (Tq, Tk) weights —
 * and the backend's backward kernel recomputes the weights block by block, replaying the same
 * dropout draws from the saved Philox reservation. The kernel's results carry no graph: asked
 * for a second derivative (create_graph) the rule fails with BN_ERR_UNSUPPORTED (the reference
 * path, BN_ATTN_REFERENCE, is composed of differentiable ops and has them). */
#include "autograd/grad_attention.h"

#include "born/ops.h"

/* What does not fit the node's four saved slots. */
typedef struct attn_ctx {
    bn_tensor *lse, *mask;
    bn_attn_geom g;
} attn_ctx;

static void attn_ctx_free(void *p)
{
    attn_ctx *c = p;
    bn_release(c->lse);
    bn_release(c->mask);
    free(c);
}

bool bn__attn_view4(const bn_tensor *t, bn_tview *v)
{
    int nd = t->ndim, nl = nd - 3;
    if (nd < 3 || (t->strides[nd - 1] != 1 && t->shape[nd - 1] > 1)) return false;
    /* the leading dims merge into one when each non-unit dim steps over the ones inside it */
    int64_t batch = 1, sb = 0, span = -1;
    for (int i = nl - 1; i >= 0; i--) {
        batch *= t->shape[i];
        if (t->shape[i] == 1) continue;
        if (span >= 0 && t->strides[i] != span) return false;
        if (span < 0) sb = t->strides[i];
        span = t->strides[i] * t->shape[i];
    }
    *v = bn__tview(t);
    v->ndim = 4;
    v->shape[0] = batch, v->shape[1] = t->shape[nl], v->shape[2] = t->shape[nl + 1];
    v->shape[3] = t->shape[nl + 2];
    v->strides[0] = sb, v->strides[1] = t->strides[nl], v->strides[2] = t->strides[nl + 1];
    v->strides[3] = 1;
    return true;
}

/* t as a kernel view (a new reference: t itself, or a contiguous copy when its dims do not
 * merge). */
static bn_tensor *viewable(bn_tensor *t)
{
    bn_tview v;
    if (!t || bn__attn_view4(t, &v)) return t;
    bn_tensor *c = bn__contiguous(t);
    bn_release(t);
    return c;
}

/* saved: 0 q, 1 k, 2 v, 3 out (kernel views, compute dtype); ctx: lse, mask, geometry */
static bn_status attention_backward(bn_node *n, const bn_tensor *grad, bn_tensor **grads)
{
    if (bn_grad_enabled())
        return bn__error(BN_ERR_UNSUPPORTED,
                         "bn_backward: %s has no second derivative (create_graph is not "
                         "supported through the fused kernel; use BN_ATTN_REFERENCE)",
                         n->name);
    bn_tensor *q = bn__node_saved(n, 0), *k = bn__node_saved(n, 1);
    bn_tensor *v = bn__node_saved(n, 2), *o = bn__node_saved(n, 3);
    if (bn_error_code() != BN_OK) return bn_error_code();
    const attn_ctx *c = n->ctx;
    const bn_attn_geom *g = &c->g;
    bn_dtype dt = q->dtype;
    bn_device dev = q->storage->device;
    const bn_backend *be = bn__backend("bn_backward", dev);
    if (!be) return bn_error_code();
    bn_tensor *dq = bn__out(bn__empty_like(q)), *dk = bn__out(bn__empty_like(k));
    bn_tensor *dv = bn__out(bn__empty_like(v));
    bn_tensor *gc = bn__out(viewable(bn__to_dtype(grad, dt)));
    if (bn_error_code() != BN_OK) return bn_error_code();
    if (!dq || !dk || !dv || !gc) return BN_ERR_OOM;
    bn_tview qv, kv, vv, ov, gv, dqv, dkv, dvv, lv = bn__tview(c->lse);
    bn_tview mv = c->mask ? bn__tview(c->mask) : (bn_tview){0};
    /* the saved tensors are the views the forward read; the others are contiguous */
    if (!bn__attn_view4(q, &qv) || !bn__attn_view4(k, &kv) || !bn__attn_view4(v, &vv) ||
        !bn__attn_view4(o, &ov) || !bn__attn_view4(gc, &gv) || !bn__attn_view4(dq, &dqv) ||
        !bn__attn_view4(dk, &dkv) || !bn__attn_view4(dv, &dvv))
        return bn__error(BN_ERR_INTERNAL, "bn_backward: %s: a saved tensor is not a kernel view",
                         n->name);
    bn_status st = be->attn->backward(&qv, &kv, &vv, c->mask ? &mv : NULL, &ov, &gv, &lv, &dqv,
                                      &dkv, &dvv, g);
    if (st != BN_OK) return st;
    grads[0] = bn__node_needs(n, 0) ? dq : NULL;
    grads[1] = bn__node_needs(n, 1) ? dk : NULL;
    grads[2] = bn__node_needs(n, 2) ? dv : NULL;
    return BN_OK;
}

bn_tensor *bn__grad_attention(const bn_tensor *q, const bn_tensor *k, const bn_tensor *v,
                              const bn_tensor *qc, const bn_tensor *kc, const bn_tensor *vc,
                              const bn_tensor *mc, const bn_tensor *out_c, const bn_tensor *lse,
                              const bn_attn_geom *g, bn_tensor *out)
{
    const bn_tensor *in[3] = {q, k, v};
    if (!out || !bn__grad_needed(in, 3)) return out;
    bn_node *n = bn__grad_record(out, "AttentionBackward", attention_backward, in, 3);
    attn_ctx *c = n ? bn__node_ctx_alloc(n, sizeof *c) : NULL;
    if (!c) {
        bn_release(out);
        return NULL;
    }
    n->ctx_free = attn_ctx_free;
    bn__node_save(n, 0, qc);
    bn__node_save(n, 1, kc);
    bn__node_save(n, 2, vc);
    bn__node_save(n, 3, out_c);
    bn_retain((bn_tensor *)lse);
    c->lse = (bn_tensor *)lse;
    if (mc) bn_retain((bn_tensor *)mc);
    c->mask = (bn_tensor *)mc;
    c->g = *g;
    return out;
}

/* ---- packed q, k, v rows (ops/attention.c's bn__attention_packed) -------------------------
 * saved: 0 the qkv the kernel read (B, T, (hq + 2 hkv) hd) in the compute dtype, 1 the output
 * (B, T, hq hd); ctx as above. The gradient is one (B, T, (hq + 2 hkv) hd) tensor whose three
 * head ranges the kernel writes directly, so nothing is copied, padded or summed. */
static bn_tview packed_view(const bn_tensor *t, int64_t first, int64_t h, int64_t hd)
{
    bn_tview v = bn__tview(t);
    v.ndim = 4;
    v.data = (char *)v.data + first * hd * bn_dtype_size(t->dtype);
    v.shape[0] = t->shape[0], v.shape[1] = h, v.shape[2] = t->shape[1], v.shape[3] = hd;
    v.strides[0] = t->strides[0], v.strides[1] = hd, v.strides[2] = t->strides[1];
    v.strides[3] = 1;
    return v;
}

static bn_status attention_packed_backward(bn_node *n, const bn_tensor *grad, bn_tensor **grads)
{
    if (bn_grad_enabled())
        return bn__error(BN_ERR_UNSUPPORTED,
                         "bn_backward: %s has no second derivative (create_graph is not "
                         "supported through the fused kernel)",
                         n->name);
    bn_tensor *qkv = bn__node_saved(n, 0), *o = bn__node_saved(n, 1);
    if (bn_error_code() != BN_OK) return bn_error_code();
    const attn_ctx *c = n->ctx;
    const bn_attn_geom *g = &c->g;
    const bn_backend *be = bn__backend("bn_backward", qkv->storage->device);
    if (!be) return bn_error_code();
    bn_tensor *gc = bn__out(bn__to_dtype(grad, qkv->dtype));
    if (gc && gc->strides[2] != 1) gc = bn__out(bn__contiguous(gc));
    bn_tensor *d = bn__out(bn__empty_like(qkv));
    if (bn_error_code() != BN_OK) return bn_error_code();
    if (!gc || !d) return BN_ERR_OOM;
    int64_t hq = g->hq, hkv = g->hkv, hd = g->d;
    bn_tview qv = packed_view(qkv, 0, hq, hd), kv = packed_view(qkv, hq, hkv, hd);
    bn_tview vv = packed_view(qkv, hq + hkv, hkv, hd), ov = packed_view(o, 0, hq, hd);
    bn_tview gv = packed_view(gc, 0, hq, hd), lv = bn__tview(c->lse);
    bn_tview dqv = packed_view(d, 0, hq, hd), dkv = packed_view(d, hq, hkv, hd);
    bn_tview dvv = packed_view(d, hq + hkv, hkv, hd);
    bn_tview mv = c->mask ? bn__tview(c->mask) : (bn_tview){0};
    bn_status st = be->attn->backward(&qv, &kv, &vv, c->mask ? &mv : NULL, &ov, &gv, &lv, &dqv,
                                      &dkv, &dvv, g);
    if (st != BN_OK) return st;
    grads[0] = d;
    return BN_OK;
}

bn_tensor *bn__grad_attention_packed(const bn_tensor *qkv, const bn_tensor *qkv_c,
                                     const bn_tensor *mc, const bn_tensor *out_c,
                                     const bn_tensor *lse, const bn_attn_geom *g, bn_tensor *out)
{
    if (!out || !bn__grad_needed1(qkv)) return out;
    bn_node *n = bn__grad_record(out, "AttentionPackedBackward", attention_packed_backward, &qkv, 1);
    attn_ctx *c = n ? bn__node_ctx_alloc(n, sizeof *c) : NULL;
    if (!c) {
        bn_release(out);
        return NULL;
    }
    n->ctx_free = attn_ctx_free;
    bn__node_save(n, 0, qkv_c);
    bn__node_save(n, 1, out_c);
    bn_retain((bn_tensor *)lse);
    c->lse = (bn_tensor *)lse;
    if (mc) bn_retain((bn_tensor *)mc);
    c->mask = (bn_tensor *)mc;
    c->g = *g;
    return out;
}
