/* autograd/grad_nn.c — derivative rules for linear, the norms and embedding (ops/nn.c records
 * them through the hooks in grad_nn.h).
 *
 * Linear's rule is written with differentiable public ops, so create_graph gives its higher
 * derivatives. The norm and embedding rules call fused backward kernels (backend_nn.h) whose
 * results carry no graph: asked for a second derivative (create_graph), they fail with
 * BN_ERR_UNSUPPORTED rather than return a gradient that silently drops it. */
#include "autograd/grad_nn.h"

#include "born/ops.h"

static bn_status no_double_backward(const bn_node *n)
{
    return bn__error(BN_ERR_UNSUPPORTED,
                     "bn_backward: %s has no second derivative (create_graph is not supported "
                     "through it)",
                     n->name);
}

static bn_tview opt_view(const bn_tensor *t) { return t ? bn__tview(t) : (bn_tview){0}; }

/* A new contiguous tensor of the given shape, owned by the rule's scope. */
static bn_tensor *rule_empty(bn_shape s, bn_dtype dt, bn_device d)
{
    return bn__out(bn__empty(s.dims, s.ndim, dt, d));
}

/* g in the compute dtype dt, contiguous (owned by the rule's scope) */
static bn_tensor *rule_grad(const bn_tensor *g, bn_dtype dt)
{
    return bn_contiguous(bn_to_dtype(g, dt));
}

static bn_status record_failed(bn_tensor *out)
{
    bn_release(out);
    return bn_error_code();
}

/* ---- linear: y = x @ w^T + b ------------------------------------------------------------------
 * dx = g @ w;  dw = g2^T @ x2 with g, x flattened to (M, out), (M, in);  db = g (summed by the
 * engine over the leading dims). */
static bn_status linear_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = bn__node_saved(n, 0), *w = bn__node_saved(n, 1);
    if (bn_error_code() != BN_OK) return bn_error_code();
    if (bn__node_needs(n, 0)) grads[0] = bn_matmul(g, w);
    if (bn__node_needs(n, 1)) {
        int64_t out = n->in_shape[1].dims[0], in = n->in_shape[1].dims[1];
        int64_t M = in ? bn__numel(x) / in : 0;
        bn_tensor *g2 = bn_reshape(g, BN_SHAPE(M, out)), *x2 = bn_reshape(x, BN_SHAPE(M, in));
        grads[1] = bn_matmul(bn_transpose(g2, 0, 1), x2);
    }
    if (n->ninputs > 2 && bn__node_needs(n, 2)) grads[2] = (bn_tensor *)g;
    return bn_error_code();
}

bn_tensor *bn__grad_linear(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                           bn_tensor *out)
{
    const bn_tensor *in[3] = {x, w, b};
    int nin = b ? 3 : 2;
    if (!out || !bn__grad_needed(in, nin)) return out;
    bn_node *n = bn__grad_record(out, "LinearBackward", linear_backward, in, nin);
    if (!n) {
        record_failed(out);
        return NULL;
    }
    if (bn__node_needs(n, 1)) bn__node_save(n, 0, x);
    if (bn__node_needs(n, 0)) bn__node_save(n, 1, w);
    return out;
}

/* ---- layer / RMS / group norm -------------------------------------------------------------------
 * saved: 0 x (compute dtype, contiguous), 1 mean, 2 rstd, 3 weight (or none);
 * i: rows, cols, groups, inner, rms. */
static bn_row_norm_geom node_geom(const bn_node *n)
{
    return (bn_row_norm_geom){
        .rows = n->i[0], .cols = n->i[1], .groups = n->i[2], .inner = n->i[3], .rms = n->i[4] != 0};
}

static bn_status row_norm_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    if (bn_grad_enabled()) return no_double_backward(n);
    bn_tensor *x = bn__node_saved(n, 0), *mean = bn__node_saved(n, 1);
    bn_tensor *rstd = bn__node_saved(n, 2), *w = bn__node_saved(n, 3);
    if (bn_error_code() != BN_OK) return bn_error_code();
    bn_dtype dt = x->dtype;
    bn_device dev = x->storage->device;
    bn_tensor *gx = bn__node_needs(n, 0) ? rule_empty(n->in_shape[0], dt, dev) : NULL;
    bn_tensor *gw =
        n->ninputs > 1 && bn__node_needs(n, 1) ? rule_empty(n->in_shape[1], dt, dev) : NULL;
    bn_tensor *gb =
        n->ninputs > 2 && bn__node_needs(n, 2) ? rule_empty(n->in_shape[2], dt, dev) : NULL;
    bn_tensor *gc = rule_grad(g, dt);
    if (bn_error_code() != BN_OK) return bn_error_code();
    if (bn__numel(x) == 0) {
        if (gw) bn_fill_(gw, 0);
        if (gb) bn_fill_(gb, 0);
    } else {
        bn_row_norm_geom geom = node_geom(n);
        bn_tview gv = bn__tview(gc), xv = bn__tview(x), mv = bn__tview(mean), rv = bn__tview(rstd);
        bn_tview wv = opt_view(w), gxv = opt_view(gx), gwv = opt_view(gw), gbv = opt_view(gb);
        const bn_backend *be = bn__backend("bn_backward", dev);
        if (!be) return bn_error_code();
        bn_status st =
            be->nn->row_norm_backward(&gv, &xv, &mv, &rv, w ? &wv : NULL, gx ? &gxv : NULL,
                                      gw ? &gwv : NULL, gb ? &gbv : NULL, &geom);
        if (st != BN_OK) return st;
    }
    grads[0] = gx;
    if (n->ninputs > 1) grads[1] = gw;
    if (n->ninputs > 2) grads[2] = gb;
    return BN_OK;
}

bn_tensor *bn__grad_row_norm(const char *name, const bn_tensor *x, const bn_tensor *weight,
                             const bn_tensor *bias, const bn_tensor *xc, const bn_tensor *wc,
                             const bn_tensor *mean, const bn_tensor *rstd,
                             const bn_row_norm_geom *g, bn_tensor *out)
{
    const bn_tensor *in[3] = {x, weight, bias};
    if (!out || !bn__grad_needed(in, 3)) return out;
    bn_node *n = bn__grad_record(out, name, row_norm_backward, in, 3);
    if (!n) {
        record_failed(out);
        return NULL;
    }
    bn__node_save(n, 0, xc);
    bn__node_save(n, 1, mean);
    bn__node_save(n, 2, rstd);
    if (wc) bn__node_save(n, 3, wc);
    n->i[0] = g->rows, n->i[1] = g->cols, n->i[2] = g->groups, n->i[3] = g->inner;
    n->i[4] = g->rms;
    return out;
}

/* ---- batch norm -----------------------------------------------------------------------------------
 * saved: 0 x, 1 mean, 2 var, 3 weight (or none); i: N, C, S, training; f: eps. */
static bn_tview view3(const bn_tensor *t, const bn_node *n)
{
    bn_tview v = bn__tview(t);
    int64_t N = n->i[0], C = n->i[1], S = n->i[2];
    v.ndim = 3;
    v.shape[0] = N, v.shape[1] = C, v.shape[2] = S;
    v.strides[0] = C * S, v.strides[1] = S, v.strides[2] = 1;
    return v;
}

static bn_status batch_norm_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    if (bn_grad_enabled()) return no_double_backward(n);
    bn_tensor *x = bn__node_saved(n, 0), *mean = bn__node_saved(n, 1);
    bn_tensor *var = bn__node_saved(n, 2), *w = bn__node_saved(n, 3);
    if (bn_error_code() != BN_OK) return bn_error_code();
    bn_dtype dt = x->dtype;
    bn_device dev = x->storage->device;
    bn_tensor *gx = bn__node_needs(n, 0) ? rule_empty(n->in_shape[0], dt, dev) : NULL;
    bn_tensor *gw = bn__node_needs(n, 1) ? rule_empty(n->in_shape[1], dt, dev) : NULL;
    bn_tensor *gb = bn__node_needs(n, 2) ? rule_empty(n->in_shape[2], dt, dev) : NULL;
    bn_tensor *gc = rule_grad(g, dt);
    if (bn_error_code() != BN_OK) return bn_error_code();
    bn_tview gv = view3(gc, n), xv = view3(x, n), mv = bn__tview(mean), vv = bn__tview(var);
    bn_tview wv = opt_view(w), gwv = opt_view(gw), gbv = opt_view(gb);
    bn_tview gxv = gx ? view3(gx, n) : (bn_tview){0};
    const bn_backend *be = bn__backend("bn_backward", dev);
    if (!be) return bn_error_code();
    bn_status st =
        be->nn->batch_norm_backward(&gv, &xv, &mv, &vv, w ? &wv : NULL, gx ? &gxv : NULL,
                                    gw ? &gwv : NULL, gb ? &gbv : NULL, n->f[0], n->i[3] != 0);
    if (st != BN_OK) return st;
    grads[0] = gx, grads[1] = gw, grads[2] = gb;
    return BN_OK;
}

bn_tensor *bn__grad_batch_norm(const bn_tensor *x, const bn_tensor *weight, const bn_tensor *bias,
                               const bn_tensor *xc, const bn_tensor *wc, const bn_tensor *mean,
                               const bn_tensor *var, int64_t N, int64_t C, int64_t S, double eps,
                               bool training, bn_tensor *out)
{
    const bn_tensor *in[3] = {x, weight, bias};
    if (!out || !bn__grad_needed(in, 3)) return out;
    bn_node *n = bn__grad_record(out, "BatchNormBackward", batch_norm_backward, in, 3);
    if (!n) {
        record_failed(out);
        return NULL;
    }
    bn__node_save(n, 0, xc);
    bn__node_save(n, 1, mean);
    bn__node_save(n, 2, var);
    if (wc) bn__node_save(n, 3, wc);
    n->i[0] = N, n->i[1] = C, n->i[2] = S, n->i[3] = training;
    n->f[0] = eps;
    return out;
}

/* ---- embedding: dweight = scatter-add of g's rows at indices ------------------------------------
 * saved: 0 indices (contiguous, i32/i64) */
static bn_status embedding_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    if (bn_grad_enabled()) return no_double_backward(n);
    bn_tensor *idx = bn__node_saved(n, 0);
    if (bn_error_code() != BN_OK) return bn_error_code();
    bn_dtype dt = g->dtype == BN_F64 ? BN_F64 : BN_F32;
    bn_device dev = g->storage->device;
    bn_tensor *gw = rule_empty(n->in_shape[0], dt, dev);
    bn_tensor *gc = rule_grad(g, dt);
    if (bn_error_code() != BN_OK) return bn_error_code();
    int64_t M = bn__numel(idx), dim = n->in_shape[0].dims[1];
    bn_tview gv = bn__tview(gc), iv = bn__tview(idx), wv = bn__tview(gw);
    gv.ndim = 2, gv.shape[0] = M, gv.shape[1] = dim, gv.strides[0] = dim, gv.strides[1] = 1;
    iv.ndim = 1, iv.shape[0] = M, iv.strides[0] = 1;
    const bn_backend *be = bn__backend("bn_backward", dev);
    if (!be) return bn_error_code();
    bn_status st = be->nn->embedding_backward(&gv, &iv, &wv);
    if (st != BN_OK) return st;
    grads[0] = gw;
    return BN_OK;
}

bn_tensor *bn__grad_embedding(const bn_tensor *weight, const bn_tensor *indices_c, bn_tensor *out)
{
    if (!out || !bn__grad_needed1(weight) || !bn_dtype_is_float(out->dtype)) return out;
    const bn_tensor *in[1] = {weight};
    bn_node *n = bn__grad_record(out, "EmbeddingBackward", embedding_backward, in, 1);
    if (!n) {
        record_failed(out);
        return NULL;
    }
    bn__node_save(n, 0, indices_c);
    return out;
}
