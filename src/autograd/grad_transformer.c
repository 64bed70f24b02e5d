/* autograd/grad_transformer.c — derivative rules of the fused transformer ops:
 *   - gated activation (ops/glu.c): the backend's glu_backward writes dA and dB in one pass; with
 *     create_graph (or a backend without the kernel) the same derivative is composed of public
 *     ops, which record their own graph;
 *   - rotary embedding (ops/positional.c): the rotation by the opposite angle, through the same
 *     fused front end (bn__rope_apply), so it is differentiable again;
 *   - chunked classifier + cross-entropy (ops/linear_ce.c): recomputes each row chunk's logits
 *     from x, w, b and the saved log-sum-exp, forms d loss / d logits for the chunk and
 *     accumulates dx (its rows), dw and db chunk by chunk in a fixed order, so the (N, V) logits
 *     or their gradient never exist whole and the result does not depend on the thread count.
 *     d loss / d logits comes from the backend's ce_rows_backward in one pass (backend_nn.h),
 *     or, on a backend without it, is composed of public ops (exp, scatter_add, ...). */
#include "autograd/grad_transformer.h"
#include "backend/backend_nn.h"

#include "born/autograd.h"
#include "born/ops.h"
#include "born/transformer.h"

#include <math.h>

/* the constants of grad_elementwise_unary.c's rules */
#define SQRT_2 1.41421356237309504880
#define SQRT_2_OVER_PI 0.79788456080286535588
#define INV_SQRT_2PI 0.39894228040143267794
#define GELU_TANH_C 0.044715

/* ---- gated activation ------------------------------------------------------------------------ */
/* act(a) and act'(a) of a bn_glu_kind from public ops (registered with the rule's scope);
 * relu's derivative is a mask, applied by the caller */
static bn_tensor *glu_act(const bn_tensor *a, int kind)
{
    switch (kind) {
    case BN_GLU_SWIGLU: return bn_silu(a);
    case BN_GLU_GEGLU: return bn_gelu(a);
    case BN_GLU_GEGLU_TANH: return bn_gelu_tanh(a);
    case BN_GLU_REGLU: return bn_relu(a);
    default: return bn_sigmoid(a);
    }
}

static bn_tensor *one_minus(const bn_tensor *t) { return bn_add_scalar(bn_neg(t), 1.0); }

static bn_tensor *glu_dact(const bn_tensor *a, int kind)
{
    switch (kind) {
    case BN_GLU_SWIGLU: {
        bn_tensor *s = bn_sigmoid(a);
        return bn_mul(s, bn_add_scalar(bn_mul(a, one_minus(s)), 1.0));
    }
    case BN_GLU_GEGLU: {
        bn_tensor *cdf = bn_mul_scalar(bn_add_scalar(bn_erf(bn_div_scalar(a, SQRT_2)), 1.0), 0.5);
        bn_tensor *pdf = bn_mul_scalar(bn_exp(bn_mul_scalar(bn_mul(a, a), -0.5)), INV_SQRT_2PI);
        return bn_add(cdf, bn_mul(a, pdf));
    }
    case BN_GLU_GEGLU_TANH: {
        bn_tensor *x2 = bn_mul(a, a);
        bn_tensor *inner = bn_mul(a, bn_add_scalar(bn_mul_scalar(x2, GELU_TANH_C), 1.0));
        bn_tensor *t = bn_tanh(bn_mul_scalar(inner, SQRT_2_OVER_PI));
        bn_tensor *left = bn_mul_scalar(bn_add_scalar(t, 1.0), 0.5);
        bn_tensor *dinner =
            bn_mul_scalar(bn_add_scalar(bn_mul_scalar(x2, 3 * GELU_TANH_C), 1.0), SQRT_2_OVER_PI);
        return bn_add(left, bn_mul(bn_mul_scalar(a, 0.5), bn_mul(one_minus(bn_mul(t, t)), dinner)));
    }
    default: {
        bn_tensor *y = bn_sigmoid(a);
        return bn_mul(y, one_minus(y));
    }
    }
}

/* d/dx of act(x[..., :F]) * x[..., F:] composed of public ops: [g b act'(a), g act(a)] */
static bn_tensor *glu_backward_composed(const bn_tensor *x, const bn_tensor *g, int kind)
{
    int last = x->ndim - 1;
    int64_t F = x->shape[last] / 2;
    bn_tensor *a = bn_narrow(x, last, 0, F), *b = bn_narrow(x, last, F, F);
    bn_tensor *gb = bn_mul(g, b);
    bn_tensor *da = kind == BN_GLU_REGLU ? bn_masked_fill(gb, bn_le_scalar(a, 0.0), 0.0)
                                         : bn_mul(gb, glu_dact(a, kind));
    bn_tensor *parts[2] = {da, bn_mul(g, glu_act(a, kind))};
    return bn_cat(parts, 2, last);
}

/* The (rows, cols) view of a contiguous tensor. */
static bn_tview view2(const bn_tensor *t, int64_t rows, int64_t cols)
{
    bn_tview v = bn__tview(t);
    v.ndim = 2;
    v.shape[0] = rows, v.shape[1] = cols;
    v.strides[0] = cols, v.strides[1] = 1;
    return v;
}

/* saved: 0 x (the op's input), 1 its contiguous copy the kernel read; i[0] the kind */
static bn_status glu_backward(bn_node *n, const bn_tensor *grad, bn_tensor **grads)
{
    int kind = (int)n->i[0];
    bn_tensor *x = bn__node_saved(n, 0), *xc = bn__node_saved(n, 1);
    if (bn_error_code() != BN_OK) return bn_error_code();
    const bn_backend *be = bn__backend("bn_backward", x->storage->device);
    if (!be) return bn_error_code();
    if (bn_grad_enabled() || !be->attn || !be->attn->glu_backward) {
        grads[0] = glu_backward_composed(x, grad, kind);
        return bn_error_code();
    }
    int64_t F2 = xc->shape[xc->ndim - 1], rows = F2 ? bn__numel(xc) / F2 : 0;
    bn_tensor *gc = bn_contiguous(bn_to_dtype(grad, xc->dtype));
    bn_tensor *dx = bn__out(bn__empty_like(xc));
    if (!gc || !dx) return bn_error_code() != BN_OK ? bn_error_code() : BN_ERR_OOM;
    if (rows > 0 && F2 > 0) {
        bn_tview xv = view2(xc, rows, F2), gv = view2(gc, rows, F2 / 2), dv = view2(dx, rows, F2);
        bn_status st = be->attn->glu_backward(kind, &xv, &gv, &dv);
        if (st != BN_OK) return st;
    }
    grads[0] = dx;
    return BN_OK;
}

bn_tensor *bn__grad_glu(const bn_tensor *x, const bn_tensor *xc, int kind, bn_tensor *out)
{
    const bn_tensor *in[1] = {x};
    if (!out || !bn__grad_needed(in, 1)) return out;
    bn_node *n = bn__grad_record(out, "GatedActivationBackward", glu_backward, in, 1);
    if (!n) {
        bn_release(out);
        return NULL;
    }
    bn__node_save(n, 0, x);
    bn__node_save(n, 1, xc);
    n->i[0] = kind;
    return out;
}

/* ---- rotary embedding ------------------------------------------------------------------------ */
typedef struct rope_ctx {
    bn_tensor *cos, *sin;
} rope_ctx;

static void rope_ctx_free(void *p)
{
    rope_ctx *c = p;
    bn_release(c->cos);
    bn_release(c->sin);
    free(c);
}

/* i[0] rd, i[1] interleaved, i[2] inverse; the tables in ctx */
static bn_status rope_backward(bn_node *n, const bn_tensor *grad, bn_tensor **grads)
{
    const rope_ctx *c = n->ctx;
    bn_rope_geom g = {.rd = n->i[0], .interleaved = n->i[1] != 0, .inverse = n->i[2] == 0};
    grads[0] = bn__out(bn__rope_apply(grad, c->cos, c->sin, g));
    return bn_error_code();
}

bn_tensor *bn__grad_rope(const bn_tensor *x, const bn_tensor *cos, const bn_tensor *sin,
                         bn_rope_geom g, bn_tensor *out)
{
    const bn_tensor *in[1] = {x};
    if (!out || !bn__grad_needed(in, 1)) return out;
    bn_node *n = bn__grad_record(out, "RopeBackward", rope_backward, in, 1);
    rope_ctx *c = n ? bn__node_ctx_alloc(n, sizeof *c) : NULL;
    if (!c) {
        bn_release(out);
        return NULL;
    }
    n->ctx_free = rope_ctx_free;
    bn_retain((bn_tensor *)cos);
    bn_retain((bn_tensor *)sin);
    c->cos = (bn_tensor *)cos, c->sin = (bn_tensor *)sin;
    n->i[0] = g.rd, n->i[1] = g.interleaved, n->i[2] = g.inverse;
    return out;
}

/* ---- classifier + cross-entropy --------------------------------------------------------------- */
typedef struct lce_ctx {
    bn_tensor *lse, *valid;
    bn_tensor *dz; /* the forward's (N, V) d loss / d logits for an upstream 1, or NULL */
    bn_lce_problem p;
} lce_ctx;

static void lce_ctx_free(void *p)
{
    lce_ctx *c = p;
    bn_release(c->lse);
    bn_release(c->valid);
    bn_release(c->dz);
    free(c);
}

/* Replaces *acc (a held reference, or NULL) by *acc + t, holding the sum. */
static void accumulate(bn_tensor **acc, bn_tensor *t)
{
    bn_tensor *s = *acc ? bn_add(*acc, t) : t;
    if (s) bn_retain(s);
    bn_release(*acc);
    *acc = s;
}

/* The chunk's d loss / d logits through the backend's ce_rows_backward: z (R, V) as the product
 * left it, written straight into dz (R, V) of dtype kdt. In the caller's scope. */
static bn_tensor *lce_chunk_grad_fused(const bn_backend *be, const bn_lce_problem *p,
                                       bn_dtype kdt, const bn_tensor *z, const bn_tensor *t,
                                       const bn_tensor *lse, const bn_tensor *gr, int64_t r0,
                                       int64_t R)
{
    if (!z) return NULL;
    bn_tview zv = bn__tview(z);
    if (zv.ndim != 2 || (zv.shape[1] > 1 && zv.strides[1] != 1)) {
        z = bn_contiguous(z);
        if (!z) return NULL;
        zv = bn__tview(z);
    }
    bn_tensor *tc = bn_narrow(t, 0, r0, R);
    bn_tensor *lc = bn_contiguous(bn_narrow(lse, 0, r0, R));
    bn_tensor *gc = bn_contiguous(bn_narrow(gr, 0, r0, R));
    bn_tensor *dz = bn__out(bn__empty(zv.shape, 2, kdt, z->storage->device));
    if (!tc || !lc || !gc || !dz) return NULL;
    bn_tview tv = bn__tview(tc), lv = bn__tview(lc), gv = bn__tview(gc), dv = bn__tview(dz);
    if (be->nn->ce_rows_backward(&zv, &tv, &lv, &gv, p->smoothing, &dv) != BN_OK) return NULL;
    return dz;
}

/* d loss / d logits of rows [r0, r0 + R) in the products' dtype kdt: gr_r (softmax(z_r) - eps / V
 * - (1 - eps) onehot(t_r)) with z = x w^T + b recomputed and softmax = exp(z - lse); one pass of
 * the backend's row kernel when it has one, composed of generic ops otherwise. In the caller's
 * scope. */
static bn_tensor *lce_chunk_grad(const bn_backend *be, const bn_lce_problem *p, bn_dtype kdt,
                                 const bn_tensor *xch, const bn_tensor *w, const bn_tensor *b,
                                 const bn_tensor *t, const bn_tensor *lse, const bn_tensor *gr,
                                 int64_t r0, int64_t R)
{
    bn_tensor *z = bn_linear(xch, w, b);
    if (be->nn && be->nn->ce_rows_backward)
        return lce_chunk_grad_fused(be, p, kdt, z, t, lse, gr, r0, R);
    if (z && z->dtype != BN_F64) z = bn_to_dtype(z, BN_F32); /* f16/bf16 products: widen */
    bn_tensor *pz = bn_exp(bn_sub(z, bn_unsqueeze(bn_narrow(lse, 0, r0, R), 1)));
    if (p->smoothing != 0) pz = bn_sub_scalar(pz, p->smoothing / (double)p->v);
    bn_tensor *tc = bn_unsqueeze(bn_narrow(t, 0, r0, R), 1);
    bn_tensor *hit = pz ? bn__out(bn__full((int64_t[]){R, 1}, 2, -(1 - p->smoothing), pz->dtype,
                                           pz->storage->device))
                        : NULL;
    pz = bn_scatter_add(pz, 1, tc, hit);
    bn_tensor *dz = bn_mul(pz, bn_unsqueeze(bn_narrow(gr, 0, r0, R), 1));
    if (dz && dz->dtype != kdt) dz = bn_to_dtype(dz, kdt); /* the products on tensor cores */
    return dz;
}

/* saved: 0 x, 1 w, 2 b (compute dtype; b may be absent), 3 target (i64, ignored rows 0) */
static bn_status lce_backward(bn_node *n, const bn_tensor *grad, bn_tensor **grads)
{
    if (bn_grad_enabled())
        return bn__error(BN_ERR_UNSUPPORTED,
                         "bn_backward: %s has no second derivative (create_graph is not "
                         "supported through the chunked kernel; compose bn_linear and "
                         "bn_cross_entropy for it)",
                         n->name);
    bn_tensor *x = bn__node_saved(n, 0), *w = bn__node_saved(n, 1);
    bn_tensor *b = bn__node_saved(n, 2), *t = bn__node_saved(n, 3);
    if (bn_error_code() != BN_OK) return bn_error_code();
    const lce_ctx *c = n->ctx;
    const bn_lce_problem *p = &c->p;
    /* kdt: the products' dtype (f16/bf16 on a GPU, see ops/linear_ce.c), cdt: the rest's */
    bn_dtype kdt = x->dtype, cdt = kdt == BN_F64 ? BN_F64 : BN_F32;
    bn_device dev = x->storage->device;
    bool need_x = bn__node_needs(n, 0), need_w = bn__node_needs(n, 1);
    bool need_b = b && bn__node_needs(n, 2);
    if (c->dz) {
        /* the forward's d loss / d logits is for an upstream gradient of 1 (the reduced loss's
         * one value): two products over all rows, scaled through their small operands —
         * g dz @ w = dz @ w * g and dz^T @ (g x) */
        bn_tensor *g = bn_to_dtype(grad, kdt);
        if (need_x) grads[0] = bn_mul(bn_matmul(c->dz, w), g);
        if (need_w) grads[1] = bn_matmul(bn_transpose(c->dz, 0, 1), bn_mul(x, g));
        if (need_b)
            grads[2] = bn_to_dtype(bn_mul(bn_sum(c->dz, 0, false), bn_to_dtype(grad, cdt)), kdt);
        return bn_error_code();
    }
    /* gr: each row's d loss / d loss_row, 0 on ignored rows */
    bn_tensor *gr = bn_to_dtype(grad, cdt);
    if (p->reduction == BN_REDUCTION_MEAN) /* the counted rows, summed on the device */
        gr = c->valid ? bn_div(gr, bn_to_dtype(bn_sum(c->valid, BN_ALL, false), cdt))
                      : bn_div_scalar(gr, p->counted);
    if (p->reduction != BN_REDUCTION_NONE) gr = bn_expand(gr, BN_SHAPE(p->n));
    if (c->valid) gr = bn_masked_fill(gr, bn_logical_not(c->valid), 0.0);
    if (!gr) return bn_error_code();
    if (p->n == 0) {
        if (need_x) grads[0] = bn__out(bn__full(x->shape, 2, 0.0, kdt, dev));
        if (need_w) grads[1] = bn__out(bn__full(w->shape, 2, 0.0, kdt, dev));
        if (need_b) grads[2] = bn__out(bn__full(b->shape, 1, 0.0, kdt, dev));
        return bn_error_code();
    }
    const bn_backend *be = bn__backend("bn_backward", dev);
    if (!be) return bn_error_code();
    int64_t R = bn__lce_chunk_rows(p, bn_dtype_size(cdt), dev);
    int64_t nchunks = (p->n + R - 1) / R;
    bn_tensor **dxs = need_x ? calloc((size_t)nchunks, sizeof *dxs) : NULL;
    if (need_x && !dxs) return bn__error(BN_ERR_OOM, "bn_backward: %s: out of memory", n->name);
    bn_tensor *dw = NULL, *db = NULL; /* held references */
    bool ok = true;
    for (int64_t k = 0; ok && k < nchunks; k++) {
        int64_t r0 = k * R, rows = p->n - r0 < R ? p->n - r0 : R;
        bn_scope_begin();
        bn_tensor *xch = bn_narrow(x, 0, r0, rows);
        bn_tensor *dz = lce_chunk_grad(be, p, kdt, xch, w, b, t, c->lse, gr, r0, rows);
        if (need_x) {
            dxs[k] = bn_matmul(dz, w); /* (R, V) @ (V, D) */
            if (dxs[k]) bn_retain(dxs[k]);
            ok = dxs[k] != NULL;
        }
        if (ok && need_w) {
            /* (V, R) @ (R, D), summed over the chunks in f32 */
            accumulate(&dw, bn_to_dtype(bn_matmul(bn_transpose(dz, 0, 1), xch), cdt));
            ok = dw != NULL;
        }
        if (ok && need_b) {
            accumulate(&db, bn_to_dtype(bn_sum(dz, 0, false), cdt));
            ok = db != NULL;
        }
        ok = ok && dz != NULL;
        bn_scope_end();
    }
    if (ok && need_x) grads[0] = bn_cat(dxs, (int)nchunks, 0);
    for (int64_t k = 0; need_x && k < nchunks; k++) bn_release(dxs[k]);
    free(dxs);
    if (ok) {
        grads[1] = dw ? bn__out(bn__to_dtype(dw, kdt)) : NULL;
        grads[2] = db ? bn__out(bn__to_dtype(db, kdt)) : NULL;
        bn_release(dw);
        bn_release(db);
    } else {
        bn_release(dw);
        bn_release(db);
    }
    return ok ? bn_error_code() : (bn_error_code() != BN_OK ? bn_error_code() : BN_ERR_OOM);
}

bn_tensor *bn__grad_linear_ce(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                              const bn_tensor *xc, const bn_tensor *wc, const bn_tensor *bc,
                              const bn_tensor *target, const bn_tensor *valid,
                              const bn_tensor *lse, const bn_tensor *dz, const bn_lce_problem *p,
                              bn_tensor *out)
{
    const bn_tensor *in[3] = {x, w, b};
    if (!out || !bn__grad_needed(in, 3)) return out;
    bn_node *n = bn__grad_record(out, "LinearCrossEntropyBackward", lce_backward, in, 3);
    lce_ctx *c = n ? bn__node_ctx_alloc(n, sizeof *c) : NULL;
    if (!c) {
        bn_release(out);
        return NULL;
    }
    n->ctx_free = lce_ctx_free;
    bn__node_save(n, 0, xc);
    bn__node_save(n, 1, wc);
    bn__node_save(n, 2, bc);
    bn__node_save(n, 3, target);
    bn_retain((bn_tensor *)lse);
    c->lse = (bn_tensor *)lse;
    if (valid) bn_retain((bn_tensor *)valid);
    c->valid = (bn_tensor *)valid;
    c->p = *p;
    if (dz) bn_retain((bn_tensor *)dz);
    c->dz = (bn_tensor *)dz;
    return out;
}
