/* autograd/grad_join.c — derivative rules for the shape ops that copy: cat, stack, repeat,
 * tril / triu, pad (constant, reflect, replicate). ops/join.c calls the hooks. Split and chunk
 * return narrow views: their rule is the slice rule in grad_shape.c.
 *
 * Every rule uses differentiable public ops only (narrow, select, reshape, sum, tril, pad,
 * scatter_add), so create_graph gives higher derivatives. */
#include "autograd/grad_shape.h"

#include <string.h>

/* Records a node with n inputs on out when one of them requires grad; releases out on failure. */
static bn_node *record(bn_tensor **out, const char *name, bn_backward_fn fn,
                       const bn_tensor *const *in, int n)
{
    if (!*out || !bn__grad_needed(in, n) || !bn_dtype_is_float((*out)->dtype)) return NULL;
    bn_node *node = bn__grad_record(*out, name, fn, in, n);
    if (!node) {
        bn_release(*out);
        *out = NULL;
    }
    return node;
}

/* ---- cat: each input's gradient is its narrow of g. node->i[0] holds the dim ---------------- */

/* torch.cat skips 1-D tensors of size 0 (see ops/join.c) */
static bool cat_skipped(bn_shape s) { return s.ndim == 1 && s.dims[0] == 0; }

static bn_status cat_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    int d = (int)n->i[0];
    int64_t at = 0;
    for (int k = 0; k < n->ninputs; k++) {
        bn_shape s = n->in_shape[k];
        if (cat_skipped(s)) {
            if (bn__node_needs(n, k)) grads[k] = bn__grad_zeros(s, bn_dtype_of(g), g);
            continue;
        }
        if (bn__node_needs(n, k)) grads[k] = bn_narrow(g, d, at, s.dims[d]);
        at += s.dims[d];
    }
    return BN_OK;
}

bn_tensor *bn__grad_cat(bn_tensor *const *ts, int n, int d, bn_tensor *out)
{
    bn_node *node = record(&out, "CatBackward", cat_backward, (const bn_tensor *const *)ts, n);
    if (node) node->i[0] = d;
    return out;
}

/* ---- stack: input k's gradient is g selected at k along the new dim ------------------------ */
static bn_status stack_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    for (int k = 0; k < n->ninputs; k++)
        if (bn__node_needs(n, k)) grads[k] = bn_select(g, (int)n->i[0], k);
    return BN_OK;
}

bn_tensor *bn__grad_stack(bn_tensor *const *ts, int n, int d, bn_tensor *out)
{
    bn_node *node = record(&out, "StackBackward", stack_backward, (const bn_tensor *const *)ts, n);
    if (node) node->i[0] = d;
    return out;
}

/* ---- repeat: g summed over the tiles. node->i[k] holds repeats[k] ---------------------------
 * g is (…, r*m, …) along each dim, tile-major: reshaped to (…, r, m, …) and summed over r, one
 * dim at a time (so it never needs more than one extra dim). */

/* g's dim i, of r tiles of m, summed over the tiles. */
static bn_tensor *sum_tiles(const bn_tensor *g, int i, int64_t r, int64_t m)
{
    int nd = bn_ndim(g);
    if (nd < BN_MAX_DIMS) {
        int64_t shape[BN_MAX_DIMS];
        for (int k = 0, j = 0; k < nd; k++) {
            if (k == i) shape[j++] = r;
            shape[j++] = k == i ? m : bn_dim(g, k);
        }
        return bn_sum(bn_reshape(g, bn_shape_make(nd + 1, shape)), i, false);
    }
    /* no room for the extra dim: add the tiles up one by one */
    if (r == 0) {
        bn_shape s = bn_shape_of(g);
        s.dims[i] = m;
        return bn__grad_zeros(s, bn_dtype_of(g), g);
    }
    bn_tensor *acc = bn_narrow(g, i, 0, m);
    for (int64_t k = 1; k < r; k++) acc = bn_add(acc, bn_narrow(g, i, k * m, m));
    return acc;
}

static bn_status repeat_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_shape in = n->in_shape[0];
    int nd = bn_ndim(g), lead = nd - in.ndim;
    bn_tensor *r = (bn_tensor *)g;
    for (int i = 0; r && i < nd; i++) {
        int64_t m = i < lead ? 1 : in.dims[i - lead];
        if (n->i[i] != 1) r = sum_tiles(r, i, n->i[i], m);
    }
    grads[0] = bn_reshape(r, in);
    return BN_OK;
}

bn_tensor *bn__grad_repeat(const bn_tensor *t, bn_shape repeats, bn_tensor *out)
{
    bn_node *n = record(&out, "RepeatBackward", repeat_backward, (const bn_tensor *[]){t}, 1);
    for (int k = 0; n && k < repeats.ndim; k++) n->i[k] = repeats.dims[k];
    return out;
}

/* ---- tril / triu: the same mask on g. node->i: [0] diagonal, [1] upper ---------------------- */
static bn_status tri_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = n->i[1] ? bn_triu(g, n->i[0]) : bn_tril(g, n->i[0]);
    return BN_OK;
}

bn_tensor *bn__grad_tri(const bn_tensor *t, int64_t diagonal, bool upper, bn_tensor *out)
{
    bn_node *n = record(&out, upper ? "TriuBackward" : "TrilBackward", tri_backward,
                        (const bn_tensor *[]){t}, 1);
    if (n) {
        n->i[0] = diagonal;
        n->i[1] = upper;
    }
    return out;
}

/* ---- pad ----------------------------------------------------------------------------------
 * constant: g cropped back, which is a pad by the negated amounts (a negative pad that cropped
 * the input becomes zeros).
 * reflect / replicate: the forward index_selects each padded dim (last dim first) with a map
 * from padded position to source position; the backward undoes the dims in reverse order,
 * adding each padded position's gradient into its source (scatter_add along the dim). */
typedef struct pad_ctx {
    int npads;
    int64_t pads[2 * BN_MAX_DIMS];
    bn_pad_mode mode;
} pad_ctx;

/* Where padded position o of a dim of size n reads from (ops/join.c's map). */
static int64_t pad_source(bn_pad_mode mode, int64_t o, int64_t before, int64_t n)
{
    int64_t i = o - before;
    if (mode == BN_PAD_REPLICATE) return i < 0 ? 0 : i >= n ? n - 1 : i;
    if (i < 0) i = -i;
    return i >= n ? 2 * (n - 1) - i : i;
}

/* g (padded along d to m = before + n + after) folded back to n along d. */
static bn_tensor *unpad_dim(const bn_tensor *g, int d, int64_t before, int64_t n, bn_pad_mode mode)
{
    int nd = bn_ndim(g);
    int64_t m = bn_dim(g, d);
    int64_t *host = malloc((size_t)(m ? m : 1) * sizeof *host);
    if (!host)
        return bn__error_null(BN_ERR_OOM, "PadBackward: out of memory for %lld indices",
                              (long long)m);
    for (int64_t o = 0; o < m; o++) host[o] = pad_source(mode, o, before, n);
    int64_t ishape[BN_MAX_DIMS];
    for (int i = 0; i < nd; i++) ishape[i] = i == d ? m : 1;
    bn_tensor *map = bn_from_data(host, bn_shape_make(nd, ishape), BN_I64);
    free(host);
    bn_tensor *idx = bn_expand(bn_tensor_to(map, bn_device_of(g)), bn_shape_of(g));
    bn_shape s = bn_shape_of(g);
    s.dims[d] = n;
    return bn_scatter_add(bn__grad_zeros(s, bn_dtype_of(g), g), d, idx, g);
}

static bn_status pad_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    const pad_ctx *c = n->ctx;
    bn_shape in = n->in_shape[0];
    if (c->mode == BN_PAD_CONSTANT) {
        int64_t neg[2 * BN_MAX_DIMS];
        for (int k = 0; k < c->npads; k++) neg[k] = -c->pads[k];
        grads[0] = bn_pad(g, neg, c->npads, BN_PAD_CONSTANT, 0.0);
        return BN_OK;
    }
    bn_tensor *r = (bn_tensor *)g;
    for (int d = 0; r && d < in.ndim; d++) {
        int k = in.ndim - 1 - d;
        if (2 * k >= c->npads) continue;
        int64_t before = c->pads[2 * k], after = c->pads[2 * k + 1];
        if (before || after) r = unpad_dim(r, d, before, in.dims[d], c->mode);
    }
    grads[0] = r;
    return BN_OK;
}

bn_tensor *bn__grad_pad(const bn_tensor *t, const int64_t *pads, int npads, bn_pad_mode mode,
                        bn_tensor *out)
{
    bn_node *n = record(&out, "PadBackward", pad_backward, (const bn_tensor *[]){t}, 1);
    pad_ctx *c = n ? bn__node_ctx_alloc(n, sizeof *c) : NULL;
    if (n && !c) {
        bn_release(out);
        return NULL;
    }
    if (c) {
        c->npads = npads;
        if (npads) memcpy(c->pads, pads, (size_t)npads * sizeof *pads);
        c->mode = mode;
    }
    return out;
}
