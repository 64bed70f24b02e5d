/* ops/copy.c — conversions and copies: contiguous, clone, to_dtype, tensor_to, copy_, fill_.
 * The copying conversions record a node (the gradient flows back unchanged, cast to the input's
 * dtype); when they return their input itself they record nothing. */
#include "autograd/grad_elementwise.h"
#include "backend/backend.h"

/* Copies src into a fresh contiguous tensor of dtype dt on src's device. */
static bn_tensor *copy_as(const char *fn, const bn_tensor *src, bn_dtype dt)
{
    const bn_backend *be = bn__backend(fn, src->storage->device);
    if (!be) return NULL;
    bn_tensor *out = bn__empty(src->shape, src->ndim, dt, src->storage->device);
    if (!out) return NULL;
    bn_tview s = bn__tview(src), d = bn__tview(out);
    bn_status st = be->copy(&s, &d);
    if (st != BN_OK) {
        bn_release(out);
        return NULL;
    }
    return out;
}

bn_tensor *bn__contiguous(const bn_tensor *t)
{
    if (bn__is_contiguous(t)) {
        bn_retain((bn_tensor *)t);
        return (bn_tensor *)t;
    }
    return copy_as("bn_contiguous", t, t->dtype);
}

bn_tensor *bn__to_dtype(const bn_tensor *t, bn_dtype dt)
{
    if (t->dtype == dt) {
        bn_retain((bn_tensor *)t);
        return (bn_tensor *)t;
    }
    return copy_as("bn_to_dtype", t, dt);
}

bn_tensor *bn_contiguous(const bn_tensor *t)
{
    BN_CHECK_NULL("bn_contiguous", t);
    bn_tensor *out = bn__contiguous(t);
    if (out && out != t) out = bn__grad_copy("CloneBackward", t, out);
    return bn__out(out);
}

bn_tensor *bn_clone(const bn_tensor *t)
{
    BN_CHECK_NULL("bn_clone", t);
    return bn__out(bn__grad_copy("CloneBackward", t, copy_as("bn_clone", t, t->dtype)));
}

bn_tensor *bn_to_dtype(const bn_tensor *t, bn_dtype dt)
{
    BN_CHECK_NULL("bn_to_dtype", t);
    if (!bn__dtype_valid(dt))
        return bn__error_null(BN_ERR_DTYPE, "bn_to_dtype: dt %d is not a valid dtype", (int)dt);
    bn_tensor *out = bn__to_dtype(t, dt);
    if (out && out != t) out = bn__grad_copy("ToCopyBackward", t, out);
    return bn__out(out);
}

bn_tensor *bn_tensor_to(const bn_tensor *t, bn_device d)
{
    BN_CHECK_NULL("bn_tensor_to", t);
    bn_device cur = t->storage->device;
    const bn_backend *dst_be = bn__backend("bn_tensor_to", d);
    if (!dst_be) return NULL;
    if (cur.type == d.type && cur.index == d.index) {
        bn_retain((bn_tensor *)t);
        return bn__out((bn_tensor *)t);
    }
    /* Between two devices: through host memory (the only pairing there is until a GPU backend
     * adds a direct path). */
    const bn_backend *src_be = bn__backend("bn_tensor_to", cur);
    if (!src_be) return NULL;
    bn_tensor *c = bn__contiguous(t);
    if (!c) return NULL;
    size_t nbytes = (size_t)bn__numel(c) * bn_dtype_size(c->dtype);
    void *host = bn__alloc_aligned(nbytes ? nbytes : 1);
    bn_tensor *out = host ? bn__empty(c->shape, c->ndim, c->dtype, d) : NULL;
    bn_status st = BN_ERR_OOM;
    if (out) {
        st = src_be->copy_to_host(host, bn__data(c), nbytes);
        if (st == BN_OK) st = dst_be->copy_from_host(bn__data(out), host, nbytes);
    } else if (!host) {
        bn__error(BN_ERR_OOM, "bn_tensor_to: out of memory for a %zu-byte staging buffer", nbytes);
    }
    bn__free_aligned(host);
    bn_release(c);
    if (st != BN_OK) {
        bn_release(out);
        return NULL;
    }
    return bn__out(bn__grad_copy("ToCopyBackward", t, out));
}

bn_status bn_copy_(bn_tensor *dst, const bn_tensor *src)
{
    BN_CHECK_NULL_STATUS("bn_copy_", dst);
    BN_CHECK_NULL_STATUS("bn_copy_", src);
    if (!bn__same_device("bn_copy_", dst, src)) return bn_error_code();
    if (!bn__check_inplace("bn_copy_", dst)) return bn_error_code();
    int64_t shape[BN_MAX_DIMS];
    int nd;
    if (!bn__broadcast_shapes("bn_copy_", dst->shape, dst->ndim, src->shape, src->ndim, shape,
                              &nd))
        return bn_error_code();
    if (nd != dst->ndim || !bn_shape_equal(bn_shape_make(nd, shape), bn_shape_of(dst)))
        return bn__error(BN_ERR_SHAPE, "bn_copy_: src %s does not broadcast to dst %s",
                         bn__tshape(src), bn__tshape(dst));
    /* A destination with 0 strides would be written several times: refuse it. */
    for (int i = 0; i < dst->ndim; i++)
        if (dst->strides[i] == 0 && dst->shape[i] > 1)
            return bn__error(BN_ERR_ARG,
                             "bn_copy_: dst %s is an expanded view (stride 0 on dim %d); writing "
                             "into it would be ambiguous",
                             bn__tshape(dst), i);
    bn_tensor *s = bn__expand(src, dst->shape, dst->ndim);
    if (!s) return bn_error_code();
    /* overlapping src and dst: go through a copy of src */
    if (s->storage == dst->storage) {
        bn_tensor *c = copy_as("bn_copy_", s, s->dtype);
        bn_release(s);
        if (!c) return bn_error_code();
        s = c;
    }
    const bn_backend *be = bn__backend("bn_copy_", dst->storage->device);
    bn_tview sv = bn__tview(s), dv = bn__tview(dst);
    bn__bump_version(dst);
    bn_status st = be->copy(&sv, &dv);
    bn_release(s);
    return st;
}

bn_status bn_fill_(bn_tensor *dst, double v)
{
    BN_CHECK_NULL_STATUS("bn_fill_", dst);
    if (!bn__check_inplace("bn_fill_", dst)) return bn_error_code();
    bn__bump_version(dst);
    const bn_backend *be = bn__backend("bn_fill_", dst->storage->device);
    if (!be) return bn_error_code();
    bn_tview dv = bn__tview(dst);
    return be->fill(&dv, v);
}
