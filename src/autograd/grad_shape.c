/* autograd/grad_shape.c — derivative rules for views: reshape / view / flatten / squeeze /
 * unsqueeze, permute / transpose, expand / broadcast_to, slice / narrow / select (and the split
 * and chunk pieces, which are narrows), as_strided. ops/shape.c and ops/join.c call the hooks.
 *
 * A view shares its input's storage, but for autograd it is a new tensor computed from the
 * input: a view of a tensor that requires grad gets a node, so gradients reach the input. Every
 * rule is written with differentiable public ops (reshape, permute, pad, scatter_add, gather),
 * so create_graph gives higher derivatives through views too. */
#include "autograd/grad_shape.h"

#include <string.h>

/* Records a one-input node on out when t requires grad; releases out on failure. */
static bn_node *record1(bn_tensor **out, const char *name, bn_backward_fn fn, const bn_tensor *t)
{
    if (!*out || !bn__grad_needed1(t)) return NULL;
    const bn_tensor *in[1] = {t};
    bn_node *n = bn__grad_record(*out, name, fn, in, 1);
    if (!n) {
        bn_release(*out);
        *out = NULL;
    }
    return n;
}

/* ---- reshape and friends: g reshaped to the input's shape ---------------------------------- */
static bn_status reshape_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_reshape(g, n->in_shape[0]);
    return BN_OK;
}

bn_tensor *bn__grad_reshape(const char *name, const bn_tensor *t, bn_tensor *out)
{
    record1(&out, name, reshape_backward, t);
    return out;
}

/* ---- permute / transpose: g permuted back. node->i[k] holds perm[k] ------------------------- */
static bn_status permute_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    int nd = n->in_shape[0].ndim, inv[BN_MAX_DIMS];
    if (nd == 0) {
        grads[0] = (bn_tensor *)g;
        return BN_OK;
    }
    for (int k = 0; k < nd; k++) inv[n->i[k]] = k;
    grads[0] = bn_permute(g, inv, nd);
    return BN_OK;
}

bn_tensor *bn__grad_permute(const char *name, const bn_tensor *t, const int *perm, bn_tensor *out)
{
    bn_node *n = record1(&out, name, permute_backward, t);
    for (int k = 0; n && k < t->ndim; k++) n->i[k] = perm[k];
    return out;
}

/* ---- expand: the engine sums g over the broadcast dims into the input's shape ---------------- */
static bn_status expand_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    (void)n;
    grads[0] = (bn_tensor *)g;
    return BN_OK;
}

bn_tensor *bn__grad_expand(const char *name, const bn_tensor *t, bn_tensor *out)
{
    record1(&out, name, expand_backward, t);
    return out;
}

/* ---- slice / narrow / select ----------------------------------------------------------------
 * g is the input's shape `in` except along d, where it has len elements that came from
 * start, start + step, … The gradient puts them back among zeros: a constant pad for step 1
 * (its own backward is a narrow again), a scatter_add of the positions otherwise. */
static bn_tensor *unslice(const bn_tensor *g, bn_shape in, int d, int64_t start, int64_t step)
{
    int nd = in.ndim;
    int64_t len = g->shape[d], n = in.dims[d];
    if (step == 1 || len <= 1) {
        int64_t pads[2 * BN_MAX_DIMS] = {0};
        int k = nd - 1 - d;
        pads[2 * k] = start;
        pads[2 * k + 1] = n - start - len;
        return bn_pad(g, pads, 2 * (k + 1), BN_PAD_CONSTANT, 0.0);
    }
    /* positions start + j*step along d, broadcast over the other dims of g */
    int64_t ishape[BN_MAX_DIMS];
    for (int i = 0; i < nd; i++) ishape[i] = i == d ? len : 1;
    bn_tensor *pos =
        bn_tensor_to(bn_arange((double)start, (double)(start + len * step), (double)step, BN_I64),
                     bn_device_of(g));
    bn_tensor *idx = bn_expand(bn_reshape(pos, bn_shape_make(nd, ishape)), bn_shape_of(g));
    bn_tensor *zeros = bn__grad_zeros(in, bn_dtype_of(g), g);
    return bn_scatter_add(zeros, d, idx, g);
}

/* node->i: [0] dim, [1] start, [2] step, [3] whether the dim was removed (select) */
static bn_status slice_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    int d = (int)n->i[0];
    const bn_tensor *gg = n->i[3] ? bn_unsqueeze(g, d) : g;
    if (!gg) return bn_error_code();
    grads[0] = unslice(gg, n->in_shape[0], d, n->i[1], n->i[2]);
    return BN_OK;
}

bn_tensor *bn__grad_slice(const char *name, const bn_tensor *t, int d, int64_t start, int64_t step,
                          bool removed, bn_tensor *out)
{
    bn_node *n = record1(&out, name, slice_backward, t);
    if (n) {
        n->i[0] = d;
        n->i[1] = start;
        n->i[2] = step;
        n->i[3] = removed;
    }
    return out;
}

/* ---- as_strided ------------------------------------------------------------------------------
 * out reads the storage at its own (shape, strides, offset); t is the storage at t's layout.
 * The gradient adds g into a buffer covering the storage elements out touches (scatter_add, so
 * overlapping outputs sum) and reads t's elements back from it (gather). Elements of out that
 * lie outside t get no gradient. An input whose own elements overlap (stride-0 dims, …) is not
 * a function of distinct elements, so it is refused. */
typedef struct strided_layout {
    int ndim;
    int64_t shape[BN_MAX_DIMS], strides[BN_MAX_DIMS], offset;
} strided_layout;

typedef struct as_strided_ctx {
    strided_layout in, out;
} as_strided_ctx;

static strided_layout layout_of(const bn_tensor *t)
{
    strided_layout l = {.ndim = t->ndim, .offset = t->offset};
    memcpy(l.shape, t->shape, sizeof l.shape);
    memcpy(l.strides, t->strides, sizeof l.strides);
    return l;
}

static int64_t layout_numel(const strided_layout *l)
{
    int64_t n = 1;
    for (int i = 0; i < l->ndim; i++) n *= l->shape[i];
    return n;
}

/* True when no two elements of l share a storage element (sufficient test: sorted by stride,
 * each stride passes the extent of the dims below it). */
static bool layout_is_distinct(const strided_layout *l)
{
    int order[BN_MAX_DIMS], m = 0;
    for (int i = 0; i < l->ndim; i++) {
        if (l->shape[i] == 0) return true;
        if (l->shape[i] > 1) order[m++] = i;
    }
    for (int a = 1; a < m; a++)
        for (int b = a; b > 0 && l->strides[order[b]] < l->strides[order[b - 1]]; b--) {
            int tmp = order[b];
            order[b] = order[b - 1];
            order[b - 1] = tmp;
        }
    int64_t extent = 1; /* one past the farthest element the dims below reach */
    for (int k = 0; k < m; k++) {
        int64_t s = l->strides[order[k]];
        if (s < extent) return false;
        extent += s * (l->shape[order[k]] - 1);
    }
    return true;
}

/* The storage position of every element of l, in row-major order, minus base (host array). */
static int64_t *layout_positions(const strided_layout *l, int64_t base, int64_t count)
{
    int64_t *p = malloc((size_t)(count ? count : 1) * sizeof *p);
    if (!p) return bn__error_null(BN_ERR_OOM, "AsStridedBackward: out of memory");
    int64_t idx[BN_MAX_DIMS] = {0};
    for (int64_t e = 0; e < count; e++) {
        int64_t at = l->offset - base;
        for (int i = 0; i < l->ndim; i++) at += idx[i] * l->strides[i];
        p[e] = at;
        for (int i = l->ndim - 1; i >= 0 && ++idx[i] == l->shape[i]; i--) idx[i] = 0;
    }
    return p;
}

static bn_tensor *positions_tensor(const strided_layout *l, int64_t base, int64_t count,
                                   bn_device dev)
{
    int64_t *p = layout_positions(l, base, count);
    if (!p) return NULL;
    bn_tensor *t = bn_from_data(p, bn_shape_make(1, &count), BN_I64);
    free(p);
    return bn_tensor_to(t, dev);
}

static int64_t layout_min(const strided_layout *l) { return l->offset; }

static int64_t layout_max(const strided_layout *l)
{
    int64_t m = l->offset;
    for (int i = 0; i < l->ndim; i++) m += (l->shape[i] - 1) * l->strides[i];
    return m;
}

static bn_status as_strided_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    const as_strided_ctx *c = n->ctx;
    int64_t nin = layout_numel(&c->in), nout = layout_numel(&c->out);
    bn_dtype dt = bn_dtype_of(g);
    if (nin == 0 || nout == 0) {
        grads[0] = bn__grad_zeros(n->in_shape[0], dt, g);
        return BN_OK;
    }
    int64_t lo =
        layout_min(&c->in) < layout_min(&c->out) ? layout_min(&c->in) : layout_min(&c->out);
    int64_t hi =
        layout_max(&c->in) > layout_max(&c->out) ? layout_max(&c->in) : layout_max(&c->out);
    int64_t span = hi - lo + 1;
    bn_tensor *pos_out = positions_tensor(&c->out, lo, nout, bn_device_of(g));
    bn_tensor *pos_in = positions_tensor(&c->in, lo, nin, bn_device_of(g));
    if (!pos_out || !pos_in) return bn_error_code();
    bn_tensor *buf = bn_scatter_add(bn__grad_zeros(bn_shape_make(1, &span), dt, g), 0, pos_out,
                                    bn_reshape(g, bn_shape_make(1, &nout)));
    grads[0] = bn_reshape(bn_gather(buf, 0, pos_in), n->in_shape[0]);
    return BN_OK;
}

bn_tensor *bn__grad_as_strided(const bn_tensor *t, bn_tensor *out)
{
    if (!out || !bn__grad_needed1(t)) return out;
    strided_layout in = layout_of(t);
    if (!layout_is_distinct(&in)) {
        bn__error(BN_ERR_UNSUPPORTED,
                  "bn_as_strided: cannot differentiate through t %s whose elements overlap in "
                  "storage (strides %s); make it contiguous first",
                  bn__tshape(t),
                  bn__dims_str(t->strides, t->ndim, (char[BN_SHAPE_STR_MAX]){0}, BN_SHAPE_STR_MAX));
        bn_release(out);
        return NULL;
    }
    bn_node *n = record1(&out, "AsStridedBackward", as_strided_backward, t);
    as_strided_ctx *c = n ? bn__node_ctx_alloc(n, sizeof *c) : NULL;
    if (n && !c) {
        bn_release(out);
        return NULL;
    }
    if (c) {
        c->in = in;
        c->out = layout_of(out);
    }
    return out;
}
