/* autograd/grad_index.c — derivative rules for indexing: index_select, gather, scatter,
 * scatter_add, and the values of sort / topk. ops/index.c calls the hooks. Index tensors get no
 * gradient (they are integers); one_hot and argsort return integers and record nothing.
 *
 * Reading at indices (index_select, gather, sort) is differentiated by adding the gradient
 * back at the same indices (scatter_add, so repeated indices sum); writing at indices
 * (scatter) by reading the gradient there (gather). These are pairs of public ops that are
 * each other's derivative, so create_graph works. */
#include "autograd/grad_shape.h"

/* Records a node on out when t (or src) requires grad; releases out on failure. */
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

/* g (shaped like index) added into zeros of shape `in` at index along d. */
static bn_tensor *add_at(const bn_tensor *g, bn_shape in, int d, const bn_tensor *index)
{
    return bn_scatter_add(bn__grad_zeros(in, bn_dtype_of(g), g), d, index, g);
}

/* ---- index_select: out (…, m, …) = t (…, n, …) at index (m) along d ------------------------
 * node->i[0]: d; saved[0]: index. */
static bn_status index_select_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_shape in = n->in_shape[0];
    if (in.ndim == 0) { /* a 0-d t: out is t */
        grads[0] = (bn_tensor *)g;
        return BN_OK;
    }
    int d = (int)n->i[0];
    bn_tensor *index = bn__node_saved(n, 0);
    if (!index) return bn_error_code();
    /* index broadcast over g's other dims, as scatter_add wants an index shaped like src */
    int64_t ishape[BN_MAX_DIMS];
    for (int i = 0; i < in.ndim; i++) ishape[i] = i == d ? bn_numel(index) : 1;
    bn_tensor *idx = bn_expand(bn_reshape(index, bn_shape_make(in.ndim, ishape)), bn_shape_of(g));
    grads[0] = add_at(g, in, d, idx);
    return BN_OK;
}

bn_tensor *bn__grad_index_select(const bn_tensor *t, int d, const bn_tensor *index, bn_tensor *out)
{
    bn_node *n =
        record(&out, "IndexSelectBackward", index_select_backward, (const bn_tensor *[]){t}, 1);
    if (n) {
        n->i[0] = d;
        bn__node_save(n, 0, index);
    }
    return out;
}

/* ---- gather: out (shape of index) = t at index along d --------------------------------------
 * node->i[0]: d; saved[0]: index. */
static bn_status gather_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *index = bn__node_saved(n, 0);
    if (!index) return bn_error_code();
    grads[0] = add_at(g, n->in_shape[0], (int)n->i[0], index);
    return BN_OK;
}

bn_tensor *bn__grad_gather(const bn_tensor *t, int d, const bn_tensor *index, bn_tensor *out)
{
    bn_node *n = record(&out, "GatherBackward", gather_backward, (const bn_tensor *[]){t}, 1);
    if (n) {
        n->i[0] = d;
        bn__node_save(n, 0, index);
    }
    return out;
}

/* ---- scatter / scatter_add: out = t with src (the part of it index covers) written or added
 * at index along d. Inputs: 0 t, 1 src. node->i: [0] d, [1] the bn_scatter_op; saved[0]: index.
 * d t = g, with the overwritten positions zeroed for scatter; d src = g gathered at index,
 * zero-padded to src's shape where src is larger than index. */

/* x (shaped like index) padded with zeros at the end of each dim to shape s. */
static bn_tensor *pad_to(const bn_tensor *x, bn_shape s)
{
    int nd = bn_ndim(x);
    if (bn_shape_equal(bn_shape_of(x), s) || nd != s.ndim) return (bn_tensor *)x;
    int64_t pads[2 * BN_MAX_DIMS];
    for (int k = 0; k < nd; k++) {
        pads[2 * k] = 0;
        pads[2 * k + 1] = s.dims[nd - 1 - k] - bn_dim(x, nd - 1 - k);
    }
    return bn_pad(x, pads, 2 * nd, BN_PAD_CONSTANT, 0.0);
}

static bn_status scatter_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    int d = (int)n->i[0];
    bn_tensor *index = bn__node_saved(n, 0);
    if (!index) return bn_error_code();
    if (bn__node_needs(n, 0)) {
        if (n->i[1] == BN_SCATTER_ADD)
            grads[0] = (bn_tensor *)g;
        else
            grads[0] = bn_scatter(g, d, index,
                                  bn__grad_zeros(bn_shape_of(index), bn_dtype_of(g), g));
    }
    if (bn__node_needs(n, 1)) grads[1] = pad_to(bn_gather(g, d, index), n->in_shape[1]);
    return BN_OK;
}

bn_tensor *bn__grad_scatter(bn_scatter_op op, const bn_tensor *t, int d, const bn_tensor *index,
                            const bn_tensor *src, bn_tensor *out)
{
    bn_node *n = record(&out, op == BN_SCATTER_ADD ? "ScatterAddBackward" : "ScatterBackward",
                        scatter_backward, (const bn_tensor *[]){t, src}, 2);
    if (n) {
        n->i[0] = d;
        n->i[1] = op;
        bn__node_save(n, 0, index);
    }
    return out;
}

/* ---- sort / topk values: values = t gathered at indices along d -----------------------------
 * node->i[0]: d; saved[0]: indices. */
bn_tensor *bn__grad_sorted(const char *name, const bn_tensor *t, int d, const bn_tensor *indices,
                           bn_tensor *values)
{
    bn_node *n = record(&values, name, gather_backward, (const bn_tensor *[]){t}, 1);
    if (n) {
        n->i[0] = d;
        bn__node_save(n, 0, indices);
    }
    return values;
}
