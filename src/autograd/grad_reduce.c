/* autograd/grad_reduce.c — derivative rules for reductions (sum, mean, prod, max/min, var, std,
 * logsumexp) and the ops along one dim (cumsum, softmax, log_softmax); ops/reduce.c calls the
 * hooks at the bottom after computing its result.
 *
 * Every rule is written with differentiable public ops, so create_graph gives higher
 * derivatives. A rule that needs the forward's output (std, logsumexp, softmax) saves a
 * detached view of it (saving the output itself would make a cycle: out -> node -> out); while
 * the rule is itself recorded (create_graph) it reads that view through a temporary tensor whose
 * grad_fn is the node itself, as torch unpacks a saved output, so the second derivative flows
 * through the output back into the node.
 *
 * Node state: i[0] reduce mask (or the dim, for the ops along one dim), i[1] correction (var,
 * std) or the dim (max/min at a dim), i[2] the bn_reduce_op; f[0] the element count (mean) or
 * the divisor N - correction (var, std). Saved: 0 the input (prod, var, std, logsumexp, max/min
 * over all dims) or the selected index (max/min at a dim); 1 the detached output (std,
 * logsumexp, softmax, log_softmax, max/min over all dims). */
#include "autograd/grad_reduce.h"

#include "born/ops.h"

/* ---- shared pieces ------------------------------------------------------------------------ */
/* The input shape with the reduced dims kept as size 1. */
static bn_shape kept_shape(const bn_node *n)
{
    bn_shape kept = n->in_shape[0];
    uint32_t mask = (uint32_t)n->i[0];
    for (int d = 0; d < kept.ndim; d++)
        if (mask & (1u << d)) kept.dims[d] = 1;
    return kept;
}

/* The reduced dims as a list; returns how many. */
static int reduced_dims(const bn_node *n, int *dims)
{
    int k = 0;
    for (int d = 0; d < n->in_shape[0].ndim; d++)
        if ((uint32_t)n->i[0] & (1u << d)) dims[k++] = d;
    return k;
}

/* The gradient of a reduction's output, reshaped with the reduced dims kept as size 1 and
 * expanded back to the input's shape. */
static bn_tensor *expand_back(bn_node *n, const bn_tensor *g)
{
    return bn_expand(bn_reshape(g, kept_shape(n)), n->in_shape[0]);
}

/* Keeps a detached view of out (no graph, same storage and version counter) in slot. */
static bool save_output(bn_node *n, int slot, const bn_tensor *out)
{
    bn_tensor *v = bn__view(out, out->ndim, out->shape, out->strides, out->offset);
    if (!v) return false;
    bn__node_save(n, slot, v);
    bn_release(v);
    return true;
}

/* The saved output (slot) for a rule to compute with. While the rule is recorded (create_graph)
 * it is a view of it whose grad_fn is n, so the recorded ops differentiate through the output
 * into n; the view lives only in the rule's scope, so no cycle outlives the rule. */
static bn_tensor *saved_output(bn_node *n, int slot)
{
    bn_tensor *y = bn__node_saved(n, slot);
    if (!y || !bn_grad_enabled()) return y;
    bn_tensor *v = bn__view(y, y->ndim, y->shape, y->strides, y->offset);
    if (!v) return NULL;
    bn__node_retain(n);
    v->grad_fn = n; /* released with v */
    v->requires_grad = true;
    return bn__out(v);
}

/* x == y, NaN matching NaN: the elements a max/min selected (y broadcasts). */
static bn_tensor *selected(const bn_tensor *x, const bn_tensor *y)
{
    return bn_logical_or(bn_eq(x, y), bn_logical_and(bn_ne(x, x), bn_ne(y, y)));
}

/* ---- sum, mean ---------------------------------------------------------------------------- */
/* d sum = g broadcast back */
static bn_status sum_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = expand_back(n, g);
    return BN_OK;
}

/* d mean = g / count, broadcast back */
static bn_status mean_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    grads[0] = bn_div_scalar(expand_back(n, g), n->f[0]);
    return BN_OK;
}

/* ---- prod --------------------------------------------------------------------------------- */
/* v is (..., m): for each element the product of those before it along the last dim (prefix)
 * or after it (suffix), 1 at the ends. A doubling scan: log2(m) shifted products. */
static bn_tensor *exclusive_product(const bn_tensor *v, int64_t m, bool prefix)
{
    int64_t pads[2] = {prefix ? 1 : 0, prefix ? 0 : 1};
    bn_tensor *s = bn_narrow(bn_pad(v, pads, 2, BN_PAD_CONSTANT, 1.0), -1, prefix ? 0 : 1, m);
    for (int64_t step = 1; step < m; step *= 2) {
        int64_t p[2] = {prefix ? step : 0, prefix ? 0 : step};
        bn_tensor *shifted =
            bn_narrow(bn_pad(s, p, 2, BN_PAD_CONSTANT, 1.0), -1, prefix ? 0 : step, m);
        s = bn_mul(s, shifted);
    }
    return s;
}

/* For each element of x, the product of the other elements of its reduced slice. Exact with
 * zeros (no division): the reduced dims move last and flatten to one dim of length m, whose
 * exclusive prefix and suffix products multiply. */
static bn_tensor *product_of_others(const bn_tensor *x, uint32_t mask)
{
    int nd = bn_ndim(x), perm[BN_MAX_DIMS], inv[BN_MAX_DIMS], k = 0, nf = 0;
    int64_t flat[BN_MAX_DIMS], m = 1;
    for (int d = 0; d < nd; d++)
        if (!(mask & (1u << d))) perm[k++] = d, flat[nf++] = bn_dim(x, d);
    for (int d = 0; d < nd; d++)
        if (mask & (1u << d)) perm[k++] = d, m *= bn_dim(x, d);
    flat[nf++] = m;
    for (int i = 0; i < nd; i++) inv[perm[i]] = i;
    bn_tensor *xp = bn_permute(x, perm, nd);
    bn_tensor *v = bn_reshape(xp, bn_shape_make(nf, flat));
    bn_tensor *e = bn_mul(exclusive_product(v, m, true), exclusive_product(v, m, false));
    return bn_permute(bn_reshape(e, bn_shape_of(xp)), inv, nd);
}

/* d prod / d x_i = g * prod of the others */
static bn_status prod_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = bn__node_saved(n, 0);
    if (!x) return bn_error_code();
    bn_tensor *ge = expand_back(n, g);
    if (x->ndim == 0 || bn__numel(x) == 0) {
        grads[0] = ge;
        return BN_OK;
    }
    grads[0] = bn_mul(ge, product_of_others(x, (uint32_t)n->i[0]));
    return BN_OK;
}

/* ---- max, min ------------------------------------------------------------------------------ */
/* Over all dims (or as amax): the gradient is split evenly among the tied extremes.
 * Saved: 0 the input, 1 the output (detached; only compared, so never recomputed). */
static bn_status extreme_even_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = bn__node_saved(n, 0), *y = bn__node_saved(n, 1);
    if (!x || !y) return bn_error_code();
    int dims[BN_MAX_DIMS];
    int nd = reduced_dims(n, dims);
    bn_tensor *mask = selected(x, bn_reshape(y, kept_shape(n)));
    bn_tensor *count = bn_sum_dims(mask, dims, nd, true); /* nd 0 (a 0-d x): its one element */
    grads[0] = bn_masked_fill(bn_div(expand_back(n, g), count), bn_logical_not(mask), 0.0);
    return BN_OK;
}

/* At a dim: the gradient goes to the index the forward selected (saved 0, i64, kept shape). */
static bn_status extreme_at_dim_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *idx = bn__node_saved(n, 0);
    if (!idx) return bn_error_code();
    bn_shape in = n->in_shape[0];
    if (in.ndim == 0) {
        grads[0] = (bn_tensor *)g;
        return BN_OK;
    }
    int dim = (int)n->i[1];
    bn_shape along = in; /* (1, …, size, …, 1) */
    for (int d = 0; d < along.ndim; d++)
        if (d != dim) along.dims[d] = 1;
    bn_tensor *pos = bn_reshape(
        bn_tensor_to(bn_arange(0, (double)in.dims[dim], 1, BN_I64), bn_device_of(g)), along);
    grads[0] = bn_masked_fill(expand_back(n, g), bn_ne(pos, idx), 0.0);
    return BN_OK;
}

/* The first selected index along dim (keepdim), computed at forward time (bool and integer
 * results: nothing is recorded). */
static bn_tensor *selected_index(const bn_tensor *t, int dim, const bn_tensor *out)
{
    int64_t kept[BN_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) kept[d] = d == dim ? 1 : t->shape[d];
    enum { Y, EQ, X_NAN, Y_NAN, BOTH_NAN, MASK, MASK_U8, NTMP };
    bn_tensor *tmp[NTMP] = {bn__reshape(out, kept, t->ndim)};
    bn__scope_suspend(); /* the temporaries are released here, not by the caller's scope */
    tmp[EQ] = bn_eq(t, tmp[Y]);
    tmp[X_NAN] = bn_ne(t, t);
    tmp[Y_NAN] = bn_ne(tmp[Y], tmp[Y]);
    tmp[BOTH_NAN] = bn_logical_and(tmp[X_NAN], tmp[Y_NAN]);
    tmp[MASK] = bn_logical_or(tmp[EQ], tmp[BOTH_NAN]);
    tmp[MASK_U8] = bn_to_dtype(tmp[MASK], BN_U8);
    bn_tensor *idx = bn_argmax(tmp[MASK_U8], dim, true);
    bn__scope_resume();
    for (int i = 0; i < NTMP; i++) bn_release(tmp[i]);
    return idx;
}

/* ---- var, std, logsumexp ------------------------------------------------------------------ */
/* The forward's output with the reduced dims kept as size 1. */
static bn_tensor *kept_output(bn_node *n) { return bn_reshape(saved_output(n, 1), kept_shape(n)); }

/* d var = g * 2 (x - mean) / (N - correction) */
static bn_tensor *var_grad(bn_node *n, bn_tensor *ge, bn_tensor *x)
{
    int dims[BN_MAX_DIMS];
    int nd = reduced_dims(n, dims);
    bn_tensor *mean = bn_mean_dims(x, dims, nd, true);
    return bn_mul(ge, bn_mul_scalar(bn_sub(x, mean), 2.0 / n->f[0]));
}

static bn_status var_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = bn__node_saved(n, 0);
    if (!x) return bn_error_code();
    grads[0] = var_grad(n, expand_back(n, g), x);
    return BN_OK;
}

/* d std = d var / (2 std), and 0 where std is 0 (like torch) */
static bn_status std_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = bn__node_saved(n, 0);
    if (!x) return bn_error_code();
    bn_tensor *y = kept_output(n);
    bn_tensor *gv =
        bn_masked_fill(bn_div(expand_back(n, g), bn_mul_scalar(y, 2.0)), bn_eq_scalar(y, 0.0), 0.0);
    grads[0] = var_grad(n, gv, x);
    return BN_OK;
}

/* d logsumexp = g * exp(x - logsumexp) */
static bn_status logsumexp_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *x = bn__node_saved(n, 0);
    if (!x) return bn_error_code();
    grads[0] = bn_mul(expand_back(n, g), bn_exp(bn_sub(x, kept_output(n))));
    return BN_OK;
}

/* ---- cumsum, softmax, log_softmax (i[0] = dim) -------------------------------------------- */
static bn_tensor *flip(const bn_tensor *t, int dim)
{
    double size = (double)bn_dim(t, dim);
    return bn_index_select(t, dim,
                           bn_tensor_to(bn_arange(size - 1, -1, -1, BN_I64), bn_device_of(t)));
}

/* d cumsum = the reverse cumulative sum of g */
static bn_status cumsum_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    int dim = (int)n->i[0];
    if (g->ndim == 0 || bn__numel(g) == 0) {
        grads[0] = (bn_tensor *)g;
        return BN_OK;
    }
    grads[0] = flip(bn_cumsum(flip(g, dim), dim), dim);
    return BN_OK;
}

/* d softmax = y * (g - sum(g * y)) */
static bn_status softmax_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    int dim = (int)n->i[0];
    bn_tensor *y = saved_output(n, 1); /* the output */
    grads[0] = bn_mul(y, bn_sub(g, bn_sum(bn_mul(g, y), dim, true)));
    return BN_OK;
}

/* d log_softmax = g - exp(y) * sum(g) */
static bn_status log_softmax_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    int dim = (int)n->i[0];
    bn_tensor *y = saved_output(n, 1); /* the output */
    grads[0] = bn_sub(g, bn_mul(bn_exp(y), bn_sum(g, dim, true)));
    return BN_OK;
}

/* ---- hooks -------------------------------------------------------------------------------- */
static bn_tensor *fail(bn_tensor *out)
{
    bn_release(out);
    return NULL;
}

static bn_node *record_reduce(bn_reduce_op op, const bn_tensor *t, uint32_t mask, int correction,
                              bn_tensor *out)
{
    const bn_tensor *in[1] = {t};
    int64_t count = 1;
    for (int d = 0; d < t->ndim; d++)
        if (mask & (1u << d)) count *= t->shape[d];
    bn_node *n = NULL;
    switch (op) {
    case BN_REDUCE_SUM: return bn__grad_record(out, "SumBackward", sum_backward, in, 1);
    case BN_REDUCE_MEAN:
        if ((n = bn__grad_record(out, "MeanBackward", mean_backward, in, 1)))
            n->f[0] = (double)count;
        return n;
    case BN_REDUCE_PROD:
        if ((n = bn__grad_record(out, "ProdBackward", prod_backward, in, 1)))
            bn__node_save(n, 0, t);
        return n;
    case BN_REDUCE_MAX:
    case BN_REDUCE_MIN:
        n = bn__grad_record(out, op == BN_REDUCE_MAX ? "MaxBackward" : "MinBackward",
                            extreme_even_backward, in, 1);
        if (n) bn__node_save(n, 0, t);
        return n && save_output(n, 1, out) ? n : NULL;
    case BN_REDUCE_VAR:
    case BN_REDUCE_STD: {
        bool is_std = op == BN_REDUCE_STD;
        n = bn__grad_record(out, is_std ? "StdBackward" : "VarBackward",
                            is_std ? std_backward : var_backward, in, 1);
        if (!n) return NULL;
        n->f[0] = count > correction ? (double)(count - correction) : 0.0;
        bn__node_save(n, 0, t);
        return !is_std || save_output(n, 1, out) ? n : NULL;
    }
    case BN_REDUCE_LOGSUMEXP:
        n = bn__grad_record(out, "LogsumexpBackward", logsumexp_backward, in, 1);
        if (n) bn__node_save(n, 0, t);
        return n && save_output(n, 1, out) ? n : NULL;
    default: return NULL; /* not reached: the caller filters the ops without a gradient */
    }
}

bn_tensor *bn__grad_reduce(bn_reduce_op op, const bn_tensor *t, uint32_t mask, int correction,
                           bn_tensor *out)
{
    if (!out || !bn__grad_needed1(t) || !bn_dtype_is_float(out->dtype)) return out;
    /* argmax/argmin/all/any give integers or bool: no gradient */
    if (op == BN_REDUCE_ARGMAX || op == BN_REDUCE_ARGMIN || op == BN_REDUCE_ALL ||
        op == BN_REDUCE_ANY)
        return out;
    if (t->ndim == 0) mask = 0;
    bn_node *n = record_reduce(op, t, mask, correction, out);
    if (!n) return fail(out);
    n->i[0] = (int64_t)mask;
    n->i[1] = correction;
    n->i[2] = op;
    return out;
}

bn_tensor *bn__grad_extreme(bn_reduce_op op, const bn_tensor *t, int dim, uint32_t mask,
                            bn_tensor *out)
{
    if (dim == BN_ALL || t->ndim == 0) return bn__grad_reduce(op, t, mask, 0, out);
    if (!out || !bn__grad_needed1(t) || !bn_dtype_is_float(out->dtype)) return out;
    int d = 0;
    while (!(mask & (1u << d))) d++;
    bn_tensor *idx = selected_index(t, d, out);
    if (!idx) return fail(out);
    const bn_tensor *in[1] = {t};
    bn_node *n = bn__grad_record(out, op == BN_REDUCE_MAX ? "MaxBackward" : "MinBackward",
                                 extreme_at_dim_backward, in, 1);
    if (n) bn__node_save(n, 0, idx);
    bn_release(idx);
    if (!n) return fail(out);
    n->i[0] = (int64_t)mask;
    n->i[1] = d;
    n->i[2] = op;
    return out;
}

bn_tensor *bn__grad_along(bn_along_grad op, const bn_tensor *t, int dim, bn_tensor *out)
{
    if (!out || !bn__grad_needed1(t) || !bn_dtype_is_float(out->dtype)) return out;
    const bn_tensor *in[1] = {t};
    bn_node *n = NULL;
    switch (op) {
    case BN_ALONG_GRAD_CUMSUM:
        n = bn__grad_record(out, "CumsumBackward", cumsum_backward, in, 1);
        break;
    case BN_ALONG_GRAD_SOFTMAX:
    case BN_ALONG_GRAD_LOG_SOFTMAX: {
        bool log = op == BN_ALONG_GRAD_LOG_SOFTMAX;
        n = bn__grad_record(out, log ? "LogSoftmaxBackward" : "SoftmaxBackward",
                            log ? log_softmax_backward : softmax_backward, in, 1);
        if (n && !save_output(n, 1, out)) n = NULL;
        break;
    }
    }
    if (!n) return fail(out);
    n->i[0] = dim;
    return out;
}
