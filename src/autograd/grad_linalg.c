/* autograd/grad_linalg.c — the derivative of bn_matmul in every torch.matmul case; ops/linalg.c
 * calls bn__grad_matmul after computing its result.
 *
 * For out = a @ b the gradients are g @ b^T and a^T @ g, with the 1-D operands' implied dims
 * put back and taken out again. The engine sums a gradient over leading and size-1 batch dims,
 * but a 1-D operand's gradient must lose dims that are not leading (the implied row or column),
 * so the rules return those already in the operand's shape. Written with public ops only, so
 * create_graph gives second derivatives. Saved: 0 a (when b needs a gradient), 1 b (when a
 * does). */
#include "autograd/grad_reduce.h"

#include "born/ops.h"

/* t summed over its leading dims, down to its last `keep` dims. */
static bn_tensor *sum_leading(const bn_tensor *t, int keep)
{
    int lead = bn_ndim(t) - keep, dims[BN_MAX_DIMS];
    if (lead <= 0) return (bn_tensor *)t;
    for (int d = 0; d < lead; d++) dims[d] = d;
    return bn_sum_dims(t, dims, lead, false);
}

/* a (K), b (..., K, N), g (..., N): da = sum over batch of b @ g as a column → (K);
 * db = a outer g → (..., K, N) */
static void vec_mat_grads(bn_node *n, const bn_tensor *a, const bn_tensor *b, const bn_tensor *g,
                          bn_tensor **grads)
{
    if (bn__node_needs(n, 0))
        grads[0] = sum_leading(bn_squeeze(bn_matmul(b, bn_unsqueeze(g, -1)), -1), 1);
    if (bn__node_needs(n, 1)) grads[1] = bn_mul(bn_unsqueeze(a, -1), bn_unsqueeze(g, -2));
}

/* a (..., M, K), b (K), g (..., M): da = g as a column times b → (..., M, K);
 * db = sum over batch and rows of g as a row @ a → (K) */
static void mat_vec_grads(bn_node *n, const bn_tensor *a, const bn_tensor *b, const bn_tensor *g,
                          bn_tensor **grads)
{
    if (bn__node_needs(n, 0)) grads[0] = bn_mul(bn_unsqueeze(g, -1), b);
    if (bn__node_needs(n, 1)) grads[1] = sum_leading(bn_matmul(bn_unsqueeze(g, -2), a), 1);
}

/* a (..., M, K), b (..., K, N), g (..., M, N) with broadcast batch dims: da = g @ b^T,
 * db = a^T @ g; the engine sums them over the batch dims each operand was broadcast along. A 2-D
 * b under a batched a (x @ W) folds a's batch into its rows, so db is one (K, N) product. */
static void mat_mat_grads(bn_node *n, const bn_tensor *a, const bn_tensor *b, const bn_tensor *g,
                          bn_tensor **grads)
{
    if (bn__node_needs(n, 0)) grads[0] = bn_matmul(g, bn_transpose(b, -1, -2));
    if (!bn__node_needs(n, 1)) return;
    if (n->in_shape[1].ndim == 2 &&
        n->in_shape[0].ndim > 2) { /* b is not saved when a needs none */
        int64_t rows = 1;
        for (int d = 0; d < bn_ndim(a) - 1; d++) rows *= bn_dim(a, d);
        bn_tensor *a2 = bn_reshape(a, bn_shape_make(2, (int64_t[]){rows, bn_dim(a, -1)}));
        bn_tensor *g2 = bn_reshape(g, bn_shape_make(2, (int64_t[]){rows, bn_dim(g, -1)}));
        grads[1] = bn_matmul(bn_transpose(a2, 0, 1), g2);
    } else {
        grads[1] = bn_matmul(bn_transpose(a, -1, -2), g);
    }
}

static bn_status matmul_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    bn_tensor *a = bn__node_saved(n, 0), *b = bn__node_saved(n, 1);
    if (bn_error_code() != BN_OK) return bn_error_code(); /* modified in place */
    bool a_vec = n->in_shape[0].ndim == 1, b_vec = n->in_shape[1].ndim == 1;
    if (a_vec && b_vec) { /* dot: g is 0-d */
        if (bn__node_needs(n, 0)) grads[0] = bn_mul(g, b);
        if (bn__node_needs(n, 1)) grads[1] = bn_mul(g, a);
    } else if (a_vec) {
        vec_mat_grads(n, a, b, g, grads);
    } else if (b_vec) {
        mat_vec_grads(n, a, b, g, grads);
    } else {
        mat_mat_grads(n, a, b, g, grads);
    }
    return BN_OK;
}

bn_tensor *bn__grad_matmul(const bn_tensor *a, const bn_tensor *b, bn_tensor *out)
{
    if (!out || !bn__grad_needed2(a, b) || !bn_dtype_is_float(out->dtype)) return out;
    const bn_tensor *in[2] = {a, b};
    bn_node *n = bn__grad_record(out, "MatmulBackward", matmul_backward, in, 2);
    if (!n) {
        bn_release(out);
        return NULL;
    }
    /* each gradient needs only the other operand */
    if (bn__node_needs(n, 1)) bn__node_save(n, 0, a);
    if (bn__node_needs(n, 0)) bn__node_save(n, 1, b);
    return out;
}
