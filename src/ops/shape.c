/* ops/shape.c — zero-copy views: reshape/view/flatten, permute/transpose, squeeze/unsqueeze,
 * expand, slice/narrow/select, as_strided. They share storage with their input; reshape copies
 * only when no strides can describe the new shape. Copying shape ops (cat, pad, repeat, …) live
 * in ops/join.c. */
#include "autograd/grad_shape.h"
#include "backend/backend.h"

#include <string.h>

static bool check_user_shape(const char *fn, const char *arg, bn_shape s)
{
    if (s.ndim < 0 || s.ndim > BN_MAX_DIMS) {
        bn__error(BN_ERR_SHAPE, "%s: %s has %d dims (allowed 0..%d)", fn, arg, s.ndim,
                  BN_MAX_DIMS);
        return false;
    }
    return true;
}

/* Strides that let (shape, strides) be read as new_shape without moving data, if any exist.
 * Walks the old dims from the innermost in runs that are contiguous with each other and
 * matches each run against a run of new dims with the same element count. */
static bool view_strides(const bn_tensor *t, const int64_t *nshape, int nn, int64_t *nstrides)
{
    int64_t numel = bn__numel(t);
    if (numel == 0 || t->ndim == 0) {
        bn__contiguous_strides(nshape, nn, nstrides);
        return true;
    }
    int view_d = nn - 1;
    int64_t chunk_stride = t->strides[t->ndim - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        bool run_ends =
            d == 0 || (t->shape[d - 1] != 1 && t->strides[d - 1] != tensor_numel * chunk_stride);
        if (!run_ends) continue;
        while (view_d >= 0 && (view_numel < tensor_numel || nshape[view_d] == 1)) {
            nstrides[view_d] = view_numel * chunk_stride;
            view_numel *= nshape[view_d];
            view_d--;
        }
        if (view_numel != tensor_numel) return false;
        if (d > 0) {
            chunk_stride = t->strides[d - 1];
            tensor_numel = 1;
            view_numel = 1;
        }
    }
    return view_d == -1;
}

/* Resolves a -1 in the requested shape; checks the element count. */
static bool infer_shape(const char *fn, const bn_tensor *t, bn_shape s, int64_t *out)
{
    if (!check_user_shape(fn, "shape", s)) return false;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < s.ndim; i++) {
        if (s.dims[i] == -1) {
            if (infer >= 0) {
                bn__error(BN_ERR_SHAPE, "%s: shape %s has more than one -1", fn, bn__sshape(s));
                return false;
            }
            infer = i;
        } else if (s.dims[i] < 0) {
            bn__error(BN_ERR_SHAPE, "%s: shape %s has a negative size at dim %d", fn,
                      bn__sshape(s), i);
            return false;
        } else {
            known *= s.dims[i];
        }
        out[i] = s.dims[i];
    }
    int64_t numel = bn__numel(t);
    if (infer >= 0) {
        if (known == 0 || numel % known != 0) {
            bn__error(BN_ERR_SHAPE, "%s: cannot reshape tensor %s (%lld elements) into %s", fn,
                      bn__tshape(t), (long long)numel, bn__sshape(s));
            return false;
        }
        out[infer] = numel / known;
    } else if (known != numel) {
        bn__error(BN_ERR_SHAPE, "%s: cannot reshape tensor %s (%lld elements) into %s (%lld)", fn,
                  bn__tshape(t), (long long)numel, bn__sshape(s), (long long)known);
        return false;
    }
    return true;
}

bn_tensor *bn__reshape(const bn_tensor *t, const int64_t *shape, int ndim)
{
    int64_t strides[BN_MAX_DIMS];
    if (view_strides(t, shape, ndim, strides)) return bn__view(t, ndim, shape, strides, t->offset);
    bn_tensor *c = bn__contiguous(t);
    if (!c) return NULL;
    bn__contiguous_strides(shape, ndim, strides);
    bn_tensor *v = bn__view(c, ndim, shape, strides, c->offset);
    bn_release(c);
    return v;
}

bn_tensor *bn_reshape(const bn_tensor *t, bn_shape s)
{
    int64_t shape[BN_MAX_DIMS];
    BN_CHECK_NULL("bn_reshape", t);
    if (!infer_shape("bn_reshape", t, s, shape)) return NULL;
    return bn__out(bn__grad_reshape("ReshapeBackward", t, bn__reshape(t, shape, s.ndim)));
}

bn_tensor *bn_view(const bn_tensor *t, bn_shape s)
{
    int64_t shape[BN_MAX_DIMS], strides[BN_MAX_DIMS];
    BN_CHECK_NULL("bn_view", t);
    if (!infer_shape("bn_view", t, s, shape)) return NULL;
    if (!view_strides(t, shape, s.ndim, strides))
        return bn__error_null(BN_ERR_SHAPE,
                              "bn_view: tensor %s with strides %s cannot be viewed as %s without a "
                              "copy (use bn_reshape)",
                              bn__tshape(t),
                              bn__dims_str(t->strides, t->ndim, (char[BN_SHAPE_STR_MAX]){0},
                                           BN_SHAPE_STR_MAX),
                              bn__sshape(s));
    return bn__out(
        bn__grad_reshape("ViewBackward", t, bn__view(t, s.ndim, shape, strides, t->offset)));
}

bn_tensor *bn_flatten(const bn_tensor *t, int start_dim, int end_dim)
{
    int s, e;
    BN_CHECK_NULL("bn_flatten", t);
    if (t->ndim == 0)
        return bn__out(bn__grad_reshape("FlattenBackward", t, bn__reshape(t, (int64_t[]){1}, 1)));
    if (!bn__norm_dim("bn_flatten", "start_dim", start_dim, t->ndim, &s) ||
        !bn__norm_dim("bn_flatten", "end_dim", end_dim, t->ndim, &e))
        return NULL;
    if (s > e)
        return bn__error_null(BN_ERR_ARG, "bn_flatten: start_dim %d comes after end_dim %d",
                              start_dim, end_dim);
    int64_t shape[BN_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < s; i++) shape[n++] = t->shape[i];
    int64_t m = 1;
    for (int i = s; i <= e; i++) m *= t->shape[i];
    shape[n++] = m;
    for (int i = e + 1; i < t->ndim; i++) shape[n++] = t->shape[i];
    return bn__out(bn__grad_reshape("FlattenBackward", t, bn__reshape(t, shape, n)));
}

bn_tensor *bn_permute(const bn_tensor *t, const int *dims, int ndims)
{
    BN_CHECK_NULL("bn_permute", t);
    if (!dims && ndims > 0) return bn__null_arg("bn_permute", "dims");
    if (ndims != t->ndim)
        return bn__error_null(BN_ERR_ARG, "bn_permute: %d dims given for a tensor %s of %d dims",
                              ndims, bn__tshape(t), t->ndim);
    int64_t shape[BN_MAX_DIMS], strides[BN_MAX_DIMS];
    bool seen[BN_MAX_DIMS] = {0};
    int perm[BN_MAX_DIMS];
    for (int i = 0; i < ndims; i++) {
        int d;
        if (!bn__norm_dim("bn_permute", "dims[i]", dims[i], t->ndim, &d)) return NULL;
        perm[i] = d;
        if (seen[d])
            return bn__error_null(BN_ERR_ARG, "bn_permute: dim %d appears twice", dims[i]);
        seen[d] = true;
        shape[i] = t->shape[d];
        strides[i] = t->strides[d];
    }
    return bn__out(bn__grad_permute("PermuteBackward", t, perm,
                                    bn__view(t, t->ndim, shape, strides, t->offset)));
}

bn_tensor *bn_transpose(const bn_tensor *t, int d0, int d1)
{
    int a, b;
    BN_CHECK_NULL("bn_transpose", t);
    if (!bn__norm_dim("bn_transpose", "d0", d0, t->ndim, &a) ||
        !bn__norm_dim("bn_transpose", "d1", d1, t->ndim, &b))
        return NULL;
    int perm[BN_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) perm[i] = i == a ? b : i == b ? a : i;
    if (t->ndim == 0)
        return bn__out(
            bn__grad_permute("TransposeBackward", t, perm, bn__view(t, 0, NULL, NULL, t->offset)));
    int64_t shape[BN_MAX_DIMS], strides[BN_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(strides, t->strides, sizeof strides);
    shape[a] = t->shape[b];
    shape[b] = t->shape[a];
    strides[a] = t->strides[b];
    strides[b] = t->strides[a];
    return bn__out(bn__grad_permute("TransposeBackward", t, perm,
                                    bn__view(t, t->ndim, shape, strides, t->offset)));
}

bn_tensor *bn_squeeze(const bn_tensor *t, int dim)
{
    BN_CHECK_NULL("bn_squeeze", t);
    int64_t shape[BN_MAX_DIMS], strides[BN_MAX_DIMS];
    int n = 0, d = -1;
    if (dim != BN_ALL && !bn__norm_dim("bn_squeeze", "dim", dim, t->ndim, &d)) return NULL;
    for (int i = 0; i < t->ndim; i++) {
        bool drop = t->shape[i] == 1 && (dim == BN_ALL || i == d);
        if (drop) continue;
        shape[n] = t->shape[i];
        strides[n] = t->strides[i];
        n++;
    }
    return bn__out(
        bn__grad_reshape("SqueezeBackward", t, bn__view(t, n, shape, strides, t->offset)));
}

bn_tensor *bn_unsqueeze(const bn_tensor *t, int dim)
{
    BN_CHECK_NULL("bn_unsqueeze", t);
    if (t->ndim == BN_MAX_DIMS)
        return bn__error_null(BN_ERR_SHAPE, "bn_unsqueeze: tensor %s already has %d dims",
                              bn__tshape(t), BN_MAX_DIMS);
    int d;
    /* the new dim may go at any of ndim + 1 places */
    if (dim < -(t->ndim + 1) || dim > t->ndim)
        return bn__error_null(BN_ERR_ARG,
                              "bn_unsqueeze: dim %d is out of range for a tensor of %d dims "
                              "(expected %d..%d)",
                              dim, t->ndim, -(t->ndim + 1), t->ndim);
    d = dim < 0 ? dim + t->ndim + 1 : dim;
    int64_t shape[BN_MAX_DIMS], strides[BN_MAX_DIMS];
    for (int i = 0, j = 0; i <= t->ndim; i++) {
        if (i == d) {
            shape[i] = 1;
            strides[i] = d < t->ndim ? t->strides[d] * t->shape[d] : 1;
        } else {
            shape[i] = t->shape[j];
            strides[i] = t->strides[j];
            j++;
        }
    }
    return bn__out(bn__grad_reshape("UnsqueezeBackward", t,
                                    bn__view(t, t->ndim + 1, shape, strides, t->offset)));
}

bn_tensor *bn__expand(const bn_tensor *t, const int64_t *shape, int ndim)
{
    int64_t strides[BN_MAX_DIMS];
    BN_ASSERT(ndim >= t->ndim);
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        if (i < lead) {
            strides[i] = 0;
            continue;
        }
        int64_t have = t->shape[i - lead];
        if (have == shape[i])
            strides[i] = t->strides[i - lead];
        else if (have == 1)
            strides[i] = 0;
        else
            return bn__error_null(BN_ERR_SHAPE, "expand: tensor %s cannot expand to %s",
                                  bn__tshape(t),
                                  bn__dims_str(shape, ndim, (char[BN_SHAPE_STR_MAX]){0},
                                               BN_SHAPE_STR_MAX));
    }
    return bn__view(t, ndim, shape, strides, t->offset);
}

static bn_tensor *expand_named(const char *fn, const bn_tensor *t, bn_shape s, bool keep_minus1)
{
    BN_CHECK_NULL(fn, t);
    if (!check_user_shape(fn, "shape", s)) return NULL;
    if (s.ndim < t->ndim)
        return bn__error_null(BN_ERR_SHAPE, "%s: shape %s has fewer dims than tensor %s", fn,
                              bn__sshape(s), bn__tshape(t));
    int64_t shape[BN_MAX_DIMS];
    int lead = s.ndim - t->ndim;
    for (int i = 0; i < s.ndim; i++) {
        int64_t want = s.dims[i];
        if (keep_minus1 && want == -1 && i >= lead) want = t->shape[i - lead];
        if (want < 0)
            return bn__error_null(BN_ERR_SHAPE, "%s: shape %s has a negative size at dim %d", fn,
                                  bn__sshape(s), i);
        int64_t have = i >= lead ? t->shape[i - lead] : 1;
        if (have != want && have != 1)
            return bn__error_null(BN_ERR_SHAPE,
                                  "%s: tensor %s cannot expand to %s (dim %d: %lld is not 1 or "
                                  "%lld)",
                                  fn, bn__tshape(t), bn__sshape(s), i, (long long)have,
                                  (long long)want);
        shape[i] = want;
    }
    return bn__out(bn__grad_expand("ExpandBackward", t, bn__expand(t, shape, s.ndim)));
}

bn_tensor *bn_expand(const bn_tensor *t, bn_shape s) { return expand_named("bn_expand", t, s, 1); }
bn_tensor *bn_broadcast_to(const bn_tensor *t, bn_shape s)
{
    return expand_named("bn_broadcast_to", t, s, 0);
}

bn_tensor *bn_slice(const bn_tensor *t, int dim, int64_t start, int64_t end, int64_t step)
{
    int d;
    BN_CHECK_NULL("bn_slice", t);
    if (t->ndim == 0) return bn__error_null(BN_ERR_ARG, "bn_slice: cannot slice a 0-d tensor");
    if (!bn__norm_dim("bn_slice", "dim", dim, t->ndim, &d)) return NULL;
    if (step <= 0)
        return bn__error_null(BN_ERR_ARG, "bn_slice: step %lld must be positive", (long long)step);
    int64_t n = t->shape[d];
    /* Python slicing: negatives count from the end, then clamp into [0, n] */
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < start ? start : end > n ? n : end;
    int64_t len = (end - start + step - 1) / step;
    int64_t shape[BN_MAX_DIMS], strides[BN_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(strides, t->strides, sizeof strides);
    shape[d] = len;
    strides[d] = t->strides[d] * step;
    bn_tensor *out = bn__view(t, t->ndim, shape, strides, t->offset + start * t->strides[d]);
    return bn__out(bn__grad_slice("SliceBackward", t, d, start, step, false, out));
}

bn_tensor *bn_narrow(const bn_tensor *t, int dim, int64_t start, int64_t length)
{
    int d;
    BN_CHECK_NULL("bn_narrow", t);
    if (t->ndim == 0) return bn__error_null(BN_ERR_ARG, "bn_narrow: cannot narrow a 0-d tensor");
    if (!bn__norm_dim("bn_narrow", "dim", dim, t->ndim, &d)) return NULL;
    int64_t n = t->shape[d];
    if (start < -n || start > n)
        return bn__error_null(BN_ERR_ARG,
                              "bn_narrow: start %lld is out of range for dim %d of size %lld",
                              (long long)start, dim, (long long)n);
    if (start < 0) start += n;
    if (length < 0 || start + length > n)
        return bn__error_null(BN_ERR_ARG,
                              "bn_narrow: start %lld + length %lld exceeds dim %d of size %lld",
                              (long long)start, (long long)length, dim, (long long)n);
    int64_t shape[BN_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[d] = length;
    bn_tensor *out = bn__view(t, t->ndim, shape, t->strides, t->offset + start * t->strides[d]);
    return bn__out(bn__grad_slice("NarrowBackward", t, d, start, 1, false, out));
}

bn_tensor *bn_select(const bn_tensor *t, int dim, int64_t index)
{
    int d;
    BN_CHECK_NULL("bn_select", t);
    if (t->ndim == 0) return bn__error_null(BN_ERR_ARG, "bn_select: cannot index a 0-d tensor");
    if (!bn__norm_dim("bn_select", "dim", dim, t->ndim, &d)) return NULL;
    int64_t n = t->shape[d];
    if (index < -n || index >= n)
        return bn__error_null(BN_ERR_ARG,
                              "bn_select: index %lld is out of range for dim %d of size %lld",
                              (long long)index, dim, (long long)n);
    if (index < 0) index += n;
    int64_t shape[BN_MAX_DIMS], strides[BN_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == d) continue;
        shape[k] = t->shape[i];
        strides[k] = t->strides[i];
        k++;
    }
    bn_tensor *out = bn__view(t, k, shape, strides, t->offset + index * t->strides[d]);
    return bn__out(bn__grad_slice("SelectBackward", t, d, index, 1, true, out));
}

bn_tensor *bn_as_strided(const bn_tensor *t, bn_shape s, const int64_t *strides, int64_t offset)
{
    BN_CHECK_NULL("bn_as_strided", t);
    if (!check_user_shape("bn_as_strided", "shape", s)) return NULL;
    if (!strides && s.ndim > 0) return bn__null_arg("bn_as_strided", "strides");
    int64_t capacity = (int64_t)(t->storage->nbytes / bn_dtype_size(t->dtype));
    if (offset < 0)
        return bn__error_null(BN_ERR_ARG, "bn_as_strided: offset %lld is negative",
                              (long long)offset);
    int64_t last = offset;
    bool empty = false;
    for (int i = 0; i < s.ndim; i++) {
        if (s.dims[i] < 0 || strides[i] < 0)
            return bn__error_null(BN_ERR_ARG,
                                  "bn_as_strided: dim %d has size %lld and stride %lld (both must "
                                  "be >= 0)",
                                  i, (long long)s.dims[i], (long long)strides[i]);
        if (s.dims[i] == 0) empty = true;
        else last += (s.dims[i] - 1) * strides[i];
    }
    if (!empty && last >= capacity)
        return bn__error_null(BN_ERR_ARG,
                              "bn_as_strided: shape %s with offset %lld reaches element %lld of a "
                              "storage of %lld elements",
                              bn__sshape(s), (long long)offset, (long long)last,
                              (long long)capacity);
    return bn__out(bn__grad_as_strided(t, bn__view(t, s.ndim, s.dims, strides, offset)));
}
