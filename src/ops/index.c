/* ops/index.c — indexing and sorting: index_select, gather, scatter / scatter_add, sort,
 * argsort, topk, one_hot.
 *
 * Index tensors are i64 (i32 is accepted too). Shapes follow PyTorch: gather and scatter want
 * index, input (and src) to have the same number of dims (a 0-d tensor counts as 1-D of one
 * element), index no larger than the input in every dim but `dim`, and no larger than src in
 * any dim. Index values are checked by the kernels (only they see the data); their message is
 * prefixed here with the public function's name. */
#include "autograd/grad_shape.h"
#include "backend/backend.h"

#include <string.h>

/* ---- shared checks ----------------------------------------------------------------------- */

/* A kernel view in which a 0-d tensor is 1-D of one element (the kernels index a dim). */
static bn_tview view_nd1(const bn_tensor *t)
{
    bn_tview v = bn__tview(t);
    if (v.ndim == 0) {
        v.ndim = 1;
        v.shape[0] = 1;
        v.strides[0] = 1;
    }
    return v;
}

static int ndim1(const bn_tensor *t) { return t->ndim ? t->ndim : 1; }
static int64_t size1(const bn_tensor *t, int d) { return t->ndim ? t->shape[d] : 1; }

static bool check_index_dtype(const char *fn, const bn_tensor *index)
{
    if (index->dtype == BN_I64 || index->dtype == BN_I32) return true;
    bn__error(BN_ERR_DTYPE, "%s: index must be i64 or i32, got %s", fn,
              bn_dtype_name(index->dtype));
    return false;
}

/* Prefixes the kernel's message (which names no public function) with fn. */
static bn_status kernel_failed(const char *fn, bn_status st)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", bn_error_message());
    return bn__error(st, "%s: %s", fn, msg);
}

/* ---- index_select ------------------------------------------------------------------------ */
bn_tensor *bn_index_select(const bn_tensor *t, int dim, const bn_tensor *index)
{
    const char *fn = "bn_index_select";
    BN_CHECK_NULL(fn, t);
    BN_CHECK_NULL(fn, index);
    int d;
    if (!bn__norm_dim(fn, "dim", dim, t->ndim, &d)) return NULL;
    if (!check_index_dtype(fn, index)) return NULL;
    if (index->ndim > 1)
        return bn__error_null(BN_ERR_SHAPE, "%s: index must be 1-D (or 0-d), got %s", fn,
                              bn__tshape(index));
    if (!bn__same_device(fn, t, index)) return NULL;
    int64_t m = bn__numel(index);
    if (t->ndim == 0 && m != 1)
        return bn__error_null(BN_ERR_SHAPE,
                              "%s: a 0-d t takes an index of one element, got index %s", fn,
                              bn__tshape(index));
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (!be) return NULL;
    int64_t shape[BN_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    if (t->ndim) shape[d] = m;
    bn_tensor *out = bn__empty(shape, t->ndim, t->dtype, t->storage->device);
    if (!out) return NULL;
    if (bn__numel(out) > 0 || m > 0) {
        bn_tview xv = view_nd1(t), iv = bn__tview(index), ov = view_nd1(out);
        bn_status st = be->index_select(&xv, d, &iv, &ov);
        if (st != BN_OK) {
            bn_release(out);
            kernel_failed(fn, st);
            return NULL;
        }
    }
    return bn__out(bn__grad_index_select(t, d, index, out));
}

/* ---- gather / scatter shape rules ---------------------------------------------------------- */

/* index has t's number of dims and is no larger than t in every dim but d. */
static bool check_index_fits(const char *fn, const bn_tensor *t, int d, const bn_tensor *index)
{
    if (ndim1(index) != ndim1(t)) {
        bn__error(BN_ERR_SHAPE, "%s: index %s must have as many dims as t %s (%d != %d)", fn,
                  bn__tshape(index), bn__tshape(t), index->ndim, t->ndim);
        return false;
    }
    for (int i = 0; i < ndim1(t); i++) {
        if (i == d || size1(index, i) <= size1(t, i)) continue;
        bn__error(BN_ERR_SHAPE,
                  "%s: index %s is larger than t %s in dim %d (%lld > %lld); only dim %d may "
                  "differ",
                  fn, bn__tshape(index), bn__tshape(t), i, (long long)size1(index, i),
                  (long long)size1(t, i), d);
        return false;
    }
    return true;
}

bn_tensor *bn_gather(const bn_tensor *t, int dim, const bn_tensor *index)
{
    const char *fn = "bn_gather";
    BN_CHECK_NULL(fn, t);
    BN_CHECK_NULL(fn, index);
    int d;
    if (!bn__norm_dim(fn, "dim", dim, t->ndim, &d)) return NULL;
    if (!check_index_dtype(fn, index) || !check_index_fits(fn, t, d, index) ||
        !bn__same_device(fn, t, index))
        return NULL;
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (!be) return NULL;
    bn_tensor *out = bn__empty(index->shape, index->ndim, t->dtype, t->storage->device);
    if (!out) return NULL;
    if (bn__numel(out) > 0) {
        bn_tview xv = view_nd1(t), iv = view_nd1(index), ov = view_nd1(out);
        bn_status st = be->gather(&xv, d, &iv, &ov);
        if (st != BN_OK) {
            bn_release(out);
            kernel_failed(fn, st);
            return NULL;
        }
    }
    return bn__out(bn__grad_gather(t, d, index, out));
}

static bn_tensor *scatter_op(const char *fn, bn_scatter_op op, const bn_tensor *t, int dim,
                             const bn_tensor *index, const bn_tensor *src)
{
    BN_CHECK_NULL(fn, t);
    BN_CHECK_NULL(fn, index);
    BN_CHECK_NULL(fn, src);
    int d;
    if (!bn__norm_dim(fn, "dim", dim, t->ndim, &d)) return NULL;
    if (!check_index_dtype(fn, index)) return NULL;
    if (src->dtype != t->dtype)
        return bn__error_null(BN_ERR_DTYPE, "%s: src is %s but t is %s (they must match)", fn,
                              bn_dtype_name(src->dtype), bn_dtype_name(t->dtype));
    if (!check_index_fits(fn, t, d, index)) return NULL;
    if (ndim1(src) != ndim1(index))
        return bn__error_null(BN_ERR_SHAPE, "%s: src %s must have as many dims as index %s", fn,
                              bn__tshape(src), bn__tshape(index));
    for (int i = 0; i < ndim1(index); i++)
        if (size1(index, i) > size1(src, i))
            return bn__error_null(BN_ERR_SHAPE,
                                  "%s: index %s is larger than src %s in dim %d (%lld > %lld)", fn,
                                  bn__tshape(index), bn__tshape(src), i, (long long)size1(index, i),
                                  (long long)size1(src, i));
    if (!bn__same_device(fn, t, index) || !bn__same_device(fn, t, src)) return NULL;
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (!be) return NULL;
    bn_tensor *out = bn__empty_like(t);
    if (!out) return NULL;
    bn_tview tv = bn__tview(t), ov = bn__tview(out);
    bn_status st = be->copy(&tv, &ov);
    if (st == BN_OK && bn__numel(index) > 0) {
        bn_tview o1 = view_nd1(out), iv = view_nd1(index), sv = view_nd1(src);
        st = be->scatter(op, &o1, d, &iv, &sv);
        if (st != BN_OK) kernel_failed(fn, st);
    }
    if (st != BN_OK) {
        bn_release(out);
        return NULL;
    }
    return bn__out(bn__grad_scatter(op, t, d, index, src, out));
}

bn_tensor *bn_scatter(const bn_tensor *t, int dim, const bn_tensor *index, const bn_tensor *src)
{
    return scatter_op("bn_scatter", BN_SCATTER_SET, t, dim, index, src);
}

bn_tensor *bn_scatter_add(const bn_tensor *t, int dim, const bn_tensor *index, const bn_tensor *src)
{
    return scatter_op("bn_scatter_add", BN_SCATTER_ADD, t, dim, index, src);
}

/* ---- sort / argsort / topk ------------------------------------------------------------------ */

/* Runs the sort (k < 0) or topk (k >= 0) kernel into fresh values / indices (either may be
 * unwanted); on success *values / *indices get unregistered new references. */
static bn_status sort_into(const char *fn, const bn_tensor *t, int d, int64_t k, bool flag,
                           bn_tensor **values, bn_tensor **indices)
{
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (!be) return bn_error_code();
    int64_t shape[BN_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    if (k >= 0 && t->ndim) shape[d] = k;
    bn_tensor *v = values ? bn__empty(shape, t->ndim, t->dtype, t->storage->device) : NULL;
    bn_tensor *ix = indices ? bn__empty(shape, t->ndim, BN_I64, t->storage->device) : NULL;
    bn_status st = BN_OK;
    if ((values && !v) || (indices && !ix)) {
        st = bn_error_code();
    } else {
        bn_tview xv = view_nd1(t), vv = {0}, iv = {0};
        if (v) vv = view_nd1(v);
        if (ix) iv = view_nd1(ix);
        if (k < 0)
            st = be->sort(&xv, d, flag, v ? &vv : NULL, ix ? &iv : NULL);
        else
            st = be->topk(&xv, t->ndim ? k : 1, d, flag, v ? &vv : NULL, ix ? &iv : NULL);
        if (st != BN_OK) kernel_failed(fn, st);
    }
    if (st != BN_OK) {
        bn_release(v);
        bn_release(ix);
        return st;
    }
    if (values) *values = v;
    if (indices) *indices = ix;
    return BN_OK;
}

/* sort_into, then the values' autograd node (which needs the indices even when the caller
 * does not want them), then registration of what the caller asked for. */
static bn_status sorted_result(const char *fn, const bn_tensor *t, int d, int64_t k, bool flag,
                               bn_tensor **values, bn_tensor **indices)
{
    bn_tensor *ix = NULL;
    bool need_ix = indices || (values && bn__grad_needed1(t));
    bn_status st = sort_into(fn, t, d, k, flag, values, need_ix ? &ix : NULL);
    if (st != BN_OK) return st;
    if (values) {
        *values = bn__grad_sorted(k < 0 ? "SortBackward" : "TopkBackward", t, d, ix, *values);
        if (!*values) {
            bn_release(ix);
            return bn_error_code();
        }
        bn__out(*values);
    }
    if (indices)
        *indices = bn__out(ix);
    else
        bn_release(ix);
    return BN_OK;
}

bn_status bn_sort(const bn_tensor *t, int dim, bool descending, bn_tensor **values,
                  bn_tensor **indices)
{
    const char *fn = "bn_sort";
    if (values) *values = NULL;
    if (indices) *indices = NULL;
    BN_CHECK_NULL_STATUS(fn, t);
    int d;
    if (!bn__norm_dim(fn, "dim", dim, t->ndim, &d)) return BN_ERR_ARG;
    return sorted_result(fn, t, d, -1, descending, values, indices);
}

bn_tensor *bn_argsort(const bn_tensor *t, int dim, bool descending)
{
    const char *fn = "bn_argsort";
    BN_CHECK_NULL(fn, t);
    int d;
    if (!bn__norm_dim(fn, "dim", dim, t->ndim, &d)) return NULL;
    bn_tensor *ix = NULL;
    if (sort_into(fn, t, d, -1, descending, NULL, &ix) != BN_OK) return NULL;
    return bn__out(ix);
}

bn_status bn_topk(const bn_tensor *t, int64_t k, int dim, bool largest, bn_tensor **values,
                  bn_tensor **indices)
{
    const char *fn = "bn_topk";
    if (values) *values = NULL;
    if (indices) *indices = NULL;
    BN_CHECK_NULL_STATUS(fn, t);
    int d;
    if (!bn__norm_dim(fn, "dim", dim, t->ndim, &d)) return BN_ERR_ARG;
    int64_t n = size1(t, d);
    if (k < 0 || k > n)
        return bn__error(BN_ERR_ARG,
                         "bn_topk: k %lld is out of range for dim %d of size %lld "
                         "(expected 0..%lld)",
                         (long long)k, dim, (long long)n, (long long)n);
    return sorted_result(fn, t, d, k, largest, values, indices);
}

/* ---- one_hot -------------------------------------------------------------------------------- */

/* Smallest and largest value of an i64 tensor with at least one element, read on the host. */
static bool int64_range(const char *fn, const bn_tensor *t, int64_t *lo, int64_t *hi)
{
    bn_tensor *c = bn__contiguous(t);
    if (!c) return false;
    int64_t n = bn__numel(c);
    const int64_t *p = NULL;
    int64_t *host = NULL;
    if (c->storage->device.type == BN_DEVICE_CPU) {
        p = bn__data(c);
    } else {
        const bn_backend *be = bn__backend(fn, c->storage->device);
        host = be ? malloc((size_t)n * sizeof *host) : NULL;
        if (be && !host) bn__error(BN_ERR_OOM, "%s: out of memory reading t to the host", fn);
        if (host && be->copy_to_host(host, bn__data(c), (size_t)n * sizeof *host) != BN_OK) {
            free(host);
            host = NULL;
        }
        p = host;
    }
    if (p) {
        *lo = *hi = p[0];
        for (int64_t i = 1; i < n; i++) {
            if (p[i] < *lo) *lo = p[i];
            if (p[i] > *hi) *hi = p[i];
        }
    }
    free(host);
    bn_release(c);
    return p != NULL;
}

bn_tensor *bn_one_hot(const bn_tensor *t, int64_t num_classes)
{
    const char *fn = "bn_one_hot";
    BN_CHECK_NULL(fn, t);
    if (t->dtype != BN_I64)
        return bn__error_null(BN_ERR_DTYPE, "%s: t must be i64 (class indices), got %s", fn,
                              bn_dtype_name(t->dtype));
    if (t->ndim == BN_MAX_DIMS)
        return bn__error_null(BN_ERR_SHAPE, "%s: t %s already has %d dims; no room for classes", fn,
                              bn__tshape(t), BN_MAX_DIMS);
    int64_t n = bn__numel(t), lo = 0, hi = -1;
    if (n > 0 && !int64_range(fn, t, &lo, &hi)) return NULL;
    if (lo < 0)
        return bn__error_null(BN_ERR_ARG, "%s: class value %lld is negative", fn, (long long)lo);
    if (num_classes <= 0) {
        if (n == 0)
            return bn__error_null(BN_ERR_ARG,
                                  "%s: cannot infer num_classes from an empty tensor %s", fn,
                                  bn__tshape(t));
        num_classes = hi + 1;
    } else if (hi >= num_classes) {
        return bn__error_null(BN_ERR_ARG,
                              "%s: class value %lld is out of range for num_classes "
                              "%lld",
                              fn, (long long)hi, (long long)num_classes);
    }
    int nd = t->ndim + 1;
    int64_t shape[BN_MAX_DIMS], istrides[BN_MAX_DIMS];
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    memcpy(istrides, t->strides, sizeof(int64_t) * (size_t)t->ndim);
    shape[nd - 1] = num_classes;
    bn_device dev = t->storage->device;
    const bn_backend *be = bn__backend(fn, dev);
    if (!be) return NULL;
    bn_tensor *out = bn__full(shape, nd, 0, BN_I64, dev);
    if (!out || n == 0) return out ? bn__out(out) : NULL;
    /* out[..., t[...]] = 1: a scatter along the class dim of a stride-0 one */
    bn_tensor *one = bn__full(shape, 0, 1, BN_I64, dev);
    if (!one) {
        bn_release(out);
        return NULL;
    }
    bn_tview ov = bn__tview(out), iv = bn__tview(t), sv = bn__tview(one);
    iv.ndim = sv.ndim = nd;
    for (int i = 0; i < nd; i++) {
        iv.shape[i] = sv.shape[i] = i < nd - 1 ? shape[i] : 1;
        iv.strides[i] = i < nd - 1 ? istrides[i] : 1;
        sv.strides[i] = 0;
    }
    bn_status st = be->scatter(BN_SCATTER_SET, &ov, nd - 1, &iv, &sv);
    bn_release(one);
    if (st != BN_OK) {
        kernel_failed(fn, st);
        bn_release(out);
        return NULL;
    }
    return bn__out(out);
}
