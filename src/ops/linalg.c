/* ops/linalg.c — matrix products with torch.matmul's semantics:
 *   1-D @ 1-D   dot product, a 0-d result
 *   2-D @ 2-D   the matrix product
 *   1-D @ N-D   a is read as (1, K) and the 1 is dropped from the result
 *   N-D @ 1-D   b is read as (K, 1) and the 1 is dropped from the result
 *   N-D @ N-D   batched over the leading dims, which broadcast: [2,1,3,4] @ [5,4,6] -> [2,5,3,6]
 * Both operands must have one dtype (no promotion, as in torch); bool is refused. Nothing is
 * copied here: the kernel gets views whose broadcast batch dims have stride 0. The derivative
 * lives in autograd/grad_linalg.c. Inside an autocast region (born/amp.h) float operands are cast
 * to the region's dtype first. */
#include "amp/amp_internal.h"
#include "autograd/grad_reduce.h"
#include "backend/backend.h"

/* An operand as the kernel sees it: (batch..., rows, cols) with nbd batch dims aligned to the
 * right of out's batch dims (missing or broadcast ones get stride 0). */
static bn_tview operand_view(const bn_tensor *t, bool as_row, bool as_col, const int64_t *bshape,
                             int nbd)
{
    bn_tview v = bn__tview(t);
    int nd = nbd + 2;
    int64_t rows, cols, rs, cs;
    if (as_row) { /* a 1-D a: (1, K) */
        rows = 1, cols = t->shape[0], rs = 0, cs = t->strides[0];
    } else if (as_col) { /* a 1-D b: (K, 1) */
        rows = t->shape[0], cols = 1, rs = t->strides[0], cs = 0;
    } else {
        rows = t->shape[t->ndim - 2], cols = t->shape[t->ndim - 1];
        rs = t->strides[t->ndim - 2], cs = t->strides[t->ndim - 1];
    }
    int tb = t->ndim >= 2 ? t->ndim - 2 : 0; /* t's own batch dims */
    for (int d = 0; d < nbd; d++) {
        int td = d - (nbd - tb);
        v.shape[d] = bshape[d];
        v.strides[d] = td >= 0 && t->shape[td] == bshape[d] ? t->strides[td] : 0;
    }
    v.ndim = nd;
    v.shape[nd - 2] = rows, v.shape[nd - 1] = cols;
    v.strides[nd - 2] = rs, v.strides[nd - 1] = cs;
    return v;
}

static bool check_operands(const bn_tensor *a, const bn_tensor *b)
{
    if (a->ndim == 0 || b->ndim == 0) {
        bn__error(BN_ERR_SHAPE,
                  "bn_matmul: both arguments need at least 1 dim, but a is %d-D %s and b is "
                  "%d-D %s",
                  a->ndim, bn__tshape(a), b->ndim, bn__tshape(b));
        return false;
    }
    if (a->dtype != b->dtype) {
        bn__error(BN_ERR_DTYPE,
                  "bn_matmul: a is %s and b is %s; both need the same dtype (convert one with "
                  "bn_to_dtype)",
                  bn_dtype_name(a->dtype), bn_dtype_name(b->dtype));
        return false;
    }
    if (a->dtype == BN_BOOL) {
        bn__error(BN_ERR_DTYPE, "bn_matmul: dtype bool is not supported (a and b are bool)");
        return false;
    }
    int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim >= 2 ? b->ndim - 2 : 0];
    if (ka != kb) {
        bn__error(BN_ERR_SHAPE,
                  "bn_matmul: inner dimensions differ: a is %s, b is %s (%lld != %lld)",
                  bn__tshape(a), bn__tshape(b), (long long)ka, (long long)kb);
        return false;
    }
    return true;
}

/* Broadcasts the batch dims (all but the last two; none for a 1-D operand) into bshape. */
static bool batch_shape(const bn_tensor *a, const bn_tensor *b, int64_t *bshape, int *nbd)
{
    int na = a->ndim >= 2 ? a->ndim - 2 : 0, nb = b->ndim >= 2 ? b->ndim - 2 : 0;
    int n = na > nb ? na : nb;
    for (int d = 0; d < n; d++) {
        int da_i = d - (n - na), db_i = d - (n - nb);
        int64_t da = da_i >= 0 ? a->shape[da_i] : 1, db = db_i >= 0 ? b->shape[db_i] : 1;
        if (da != db && da != 1 && db != 1) {
            bn__error(BN_ERR_SHAPE,
                      "bn_matmul: batch dimensions do not broadcast: a is %s, b is %s (%lld vs "
                      "%lld at batch dim %d)",
                      bn__tshape(a), bn__tshape(b), (long long)da, (long long)db, d);
            return false;
        }
        bshape[d] = da == 1 ? db : da;
    }
    *nbd = n;
    return true;
}

bn_tensor *bn_matmul(const bn_tensor *a, const bn_tensor *b)
{
    BN_CHECK_NULL("bn_matmul", a);
    BN_CHECK_NULL("bn_matmul", b);
    BN_AUTOCAST_LOW(bn_matmul(ac[0], ac[1]), a, b);
    if (!bn__same_device("bn_matmul", a, b)) return NULL;
    if (!check_operands(a, b)) return NULL;
    int64_t bshape[BN_MAX_DIMS];
    int nbd;
    if (!batch_shape(a, b, bshape, &nbd)) return NULL;

    bool a_vec = a->ndim == 1, b_vec = b->ndim == 1;
    int64_t M = a_vec ? 1 : a->shape[a->ndim - 2], N = b_vec ? 1 : b->shape[b->ndim - 1];
    /* the result drops the rows of a 1-D a and the columns of a 1-D b */
    int64_t shape[BN_MAX_DIMS];
    int nout = 0;
    for (int d = 0; d < nbd; d++) shape[nout++] = bshape[d];
    if (!a_vec) shape[nout++] = M;
    if (!b_vec) shape[nout++] = N;

    const bn_backend *be = bn__backend("bn_matmul", a->storage->device);
    if (!be) return NULL;
    bn_tensor *out = bn__empty(shape, nout, a->dtype, a->storage->device);
    if (!out) return NULL;
    if (bn__numel(out) == 0) return bn__out(bn__grad_matmul(a, b, out));

    /* out as (batch..., M, N): the dropped dims have size 1, so contiguous strides fit */
    bn_tview ov = bn__tview(out);
    ov.ndim = nbd + 2;
    for (int d = 0; d < nbd; d++) ov.shape[d] = bshape[d];
    ov.shape[nbd] = M, ov.shape[nbd + 1] = N;
    bn__contiguous_strides(ov.shape, ov.ndim, ov.strides);
    bn_tview av = operand_view(a, a_vec, false, bshape, nbd);
    bn_tview bv = operand_view(b, false, b_vec, bshape, nbd);
    if (be->matmul(&av, &bv, &ov) != BN_OK) {
        bn_release(out);
        return NULL;
    }
    return bn__out(bn__grad_matmul(a, b, out));
}
