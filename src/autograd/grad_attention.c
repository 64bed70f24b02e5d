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

/* The 4-D (batch, h, t, e) view of a contiguous tensor whose last three dims are (h, t, e). */
static bn_tview view4(const bn_tensor *t, int64_t batch, int64_t h, int64_t n, int64_t e)
{
    bn_tview v = bn__tview(t);
    v.ndim = 4;
    v.shape[0] = batch, v.shape[1] = h, v.shape[2] = n, v.shape[3] = e;
    v.strides[3] = 1, v.strides[2] = e, v.strides[1] = n * e, v.strides[0] = h * n * e;
    return v;
}

/* saved: 0 q, 1 k, 2 v, 3 out (contiguous, compute dtype); ctx: lse, mask, geometry */
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
    bn_tensor *gc = bn_contiguous(bn_to_dtype(grad, dt));
    if (bn_error_code() != BN_OK) return bn_error_code();
    if (!dq || !dk || !dv || !gc) return BN_ERR_OOM;
    bn_tview qv = view4(q, g->batch, g->hq, g->tq, g->d), kv = view4(k, g->batch, g->hkv, g->tk, g->d);
    bn_tview vv = view4(v, g->batch, g->hkv, g->tk, g->dv);
    bn_tview ov = view4(o, g->batch, g->hq, g->tq, g->dv);
    bn_tview gv = view4(gc, g->batch, g->hq, g->tq, g->dv), lv = bn__tview(c->lse);
    bn_tview dqv = view4(dq, g->batch, g->hq, g->tq, g->d);
    bn_tview dkv = view4(dk, g->batch, g->hkv, g->tk, g->d);
    bn_tview dvv = view4(dv, g->batch, g->hkv, g->tk, g->dv);
    bn_tview mv = c->mask ? bn__tview(c->mask) : (bn_tview){0};
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
