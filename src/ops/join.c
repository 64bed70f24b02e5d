/* ops/join.c — shape ops that copy or cut: cat, stack, split / split_sizes / chunk (views),
 * repeat, tril / triu, pad.
 *
 * Everything here is device-agnostic: results are built with the backend's strided `copy` into
 * views of a fresh output (cat, stack, repeat, constant pad), its `index_select` (reflect and
 * replicate pad), its `fill` and its `tri`. Zero-copy views that need no data (reshape, slice,
 * …) live in ops/shape.c. */
#include "autograd/grad_shape.h"
#include "backend/backend.h"

#include <string.h>

/* ---- shared helpers ------------------------------------------------------------------------ */

/* Copies src_base viewed as (shape, src_strides, src_off) into dst_base viewed as (shape,
 * dst_strides, dst_off). */
static bn_status copy_region(const bn_backend *be, const bn_tensor *dst_base, int nd,
                             const int64_t *shape, const int64_t *dst_strides, int64_t dst_off,
                             const bn_tensor *src_base, const int64_t *src_strides, int64_t src_off)
{
    bn_tensor *dv = bn__view(dst_base, nd, shape, dst_strides, dst_off);
    bn_tensor *sv = dv ? bn__view(src_base, nd, shape, src_strides, src_off) : NULL;
    bn_status st = BN_ERR_OOM; /* bn__view only fails for memory, and reported it */
    if (dv && sv) {
        bn_tview s = bn__tview(sv), d = bn__tview(dv);
        st = be->copy(&s, &d);
    }
    bn_release(dv);
    bn_release(sv);
    return st;
}

/* Copies the whole of src into dst_base viewed with src's shape at (dst_strides, dst_off). */
static bn_status copy_into(const bn_backend *be, const bn_tensor *dst_base,
                           const int64_t *dst_strides, int64_t dst_off, const bn_tensor *src)
{
    return copy_region(be, dst_base, src->ndim, src->shape, dst_strides, dst_off, src, src->strides,
                       src->offset);
}

/* Every entry of ts is non-NULL and on ts[0]'s device. */
static bool check_list(const char *fn, bn_tensor *const *ts, int n)
{
    for (int i = 0; i < n; i++) {
        if (ts[i]) continue;
        char arg[32];
        snprintf(arg, sizeof arg, "ts[%d]", i);
        bn__null_arg(fn, arg);
        return false;
    }
    for (int i = 1; i < n; i++)
        if (!bn__same_device(fn, ts[0], ts[i])) return false;
    return true;
}

static bn_dtype promote_list(bn_tensor *const *ts, int n)
{
    bn_dtype dt = ts[0]->dtype;
    for (int i = 1; i < n; i++) dt = bn_promote_types(dt, ts[i]->dtype);
    return dt;
}

/* ---- cat ----------------------------------------------------------------------------------- */

/* torch.cat skips 1-D tensors of size 0 whatever the other tensors' shapes (legacy behaviour). */
static bool cat_skips(const bn_tensor *t) { return t->ndim == 1 && t->shape[0] == 0; }

/* All non-skipped tensors match ts[ref] except along d; sums their sizes along d. */
static bool cat_check_shapes(bn_tensor *const *ts, int n, int ref, int d, int64_t *total)
{
    const bn_tensor *r = ts[ref];
    *total = 0;
    for (int i = 0; i < n; i++) {
        const bn_tensor *t = ts[i];
        if (cat_skips(t)) continue;
        if (t->ndim != r->ndim) {
            bn__error(BN_ERR_SHAPE, "bn_cat: ts[%d] %s has %d dims but ts[%d] %s has %d", i,
                      bn__tshape(t), t->ndim, ref, bn__tshape(r), r->ndim);
            return false;
        }
        for (int k = 0; k < r->ndim; k++)
            if (k != d && t->shape[k] != r->shape[k]) {
                bn__error(BN_ERR_SHAPE,
                          "bn_cat: ts[%d] is %s but ts[%d] is %s: sizes must match except in "
                          "dim %d (dim %d: %lld != %lld)",
                          i, bn__tshape(t), ref, bn__tshape(r), d, k, (long long)t->shape[k],
                          (long long)r->shape[k]);
                return false;
            }
        *total += t->shape[d];
    }
    return true;
}

bn_tensor *bn_cat(bn_tensor *const *ts, int n, int dim)
{
    const char *fn = "bn_cat";
    BN_CHECK_NULL(fn, ts);
    if (n <= 0)
        return bn__error_null(BN_ERR_ARG, "bn_cat: expected at least one tensor, n is %d", n);
    if (!check_list(fn, ts, n)) return NULL;
    bn_dtype dt = promote_list(ts, n);
    bn_device dev = ts[0]->storage->device;
    const bn_backend *be = bn__backend(fn, dev);
    if (!be) return NULL;
    int ref = -1;
    for (int i = 0; i < n; i++) {
        if (cat_skips(ts[i])) continue;
        if (ts[i]->ndim == 0)
            return bn__error_null(BN_ERR_SHAPE,
                                  "bn_cat: ts[%d] is 0-d and cannot be "
                                  "concatenated (use bn_stack)",
                                  i);
        if (ref < 0) ref = i;
    }
    if (ref < 0) return bn__out(bn__grad_cat(ts, n, 0, bn__empty((int64_t[]){0}, 1, dt, dev)));
    int d, nd = ts[ref]->ndim;
    int64_t shape[BN_MAX_DIMS];
    if (!bn__norm_dim(fn, "dim", dim, nd, &d)) return NULL;
    memcpy(shape, ts[ref]->shape, sizeof shape);
    if (!cat_check_shapes(ts, n, ref, d, &shape[d])) return NULL;
    bn_tensor *out = bn__empty(shape, nd, dt, dev);
    if (!out) return NULL;
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        const bn_tensor *t = ts[i];
        if (cat_skips(t)) continue;
        if (bn__numel(t) > 0 &&
            copy_into(be, out, out->strides, out->offset + at * out->strides[d], t) != BN_OK) {
            bn_release(out);
            return NULL;
        }
        at += t->shape[d];
    }
    return bn__out(bn__grad_cat(ts, n, d, out));
}

/* ---- stack --------------------------------------------------------------------------------- */
bn_tensor *bn_stack(bn_tensor *const *ts, int n, int dim)
{
    const char *fn = "bn_stack";
    BN_CHECK_NULL(fn, ts);
    if (n <= 0)
        return bn__error_null(BN_ERR_ARG, "bn_stack: expected at least one tensor, n is %d", n);
    if (!check_list(fn, ts, n)) return NULL;
    const bn_tensor *t0 = ts[0];
    for (int i = 1; i < n; i++)
        if (!bn_shape_equal(bn_shape_of(ts[i]), bn_shape_of(t0)))
            return bn__error_null(BN_ERR_SHAPE,
                                  "bn_stack: ts[%d] is %s but ts[0] is %s (all shapes must "
                                  "match)",
                                  i, bn__tshape(ts[i]), bn__tshape(t0));
    int nd = t0->ndim;
    if (nd == BN_MAX_DIMS)
        return bn__error_null(BN_ERR_SHAPE, "bn_stack: tensors %s already have %d dims",
                              bn__tshape(t0), BN_MAX_DIMS);
    if (dim < -(nd + 1) || dim > nd)
        return bn__error_null(BN_ERR_ARG,
                              "bn_stack: dim %d is out of range for stacking tensors of %d dims "
                              "(expected %d..%d)",
                              dim, nd, -(nd + 1), nd);
    int d = dim < 0 ? dim + nd + 1 : dim;
    bn_device dev = t0->storage->device;
    const bn_backend *be = bn__backend(fn, dev);
    if (!be) return NULL;
    int64_t shape[BN_MAX_DIMS], strides[BN_MAX_DIMS];
    for (int i = 0, j = 0; i <= nd; i++) shape[i] = i == d ? n : t0->shape[j++];
    bn_tensor *out = bn__empty(shape, nd + 1, promote_list(ts, n), dev);
    if (!out) return NULL;
    for (int i = 0, j = 0; i <= nd; i++)
        if (i != d) strides[j++] = out->strides[i];
    for (int i = 0; i < n && bn__numel(out) > 0; i++)
        if (copy_into(be, out, strides, out->offset + i * out->strides[d], ts[i]) != BN_OK) {
            bn_release(out);
            return NULL;
        }
    return bn__out(bn__grad_stack(ts, n, d, out));
}

/* ---- split / split_sizes / chunk: views ------------------------------------------------------ */

/* Clears the caller's out array so no entry is left dangling on an error. */
static void clear_out(bn_tensor **out, int n)
{
    for (int i = 0; i < n; i++) out[i] = NULL;
}

/* count views of t along d into out: piece i has length sizes[i] when sizes is given, else
 * min(piece, what is left). Registers them all, or on failure none (and returns -1). */
static int emit_pieces(const bn_tensor *t, int d, int count, const int64_t *sizes, int64_t piece,
                       bn_tensor **out)
{
    int64_t shape[BN_MAX_DIMS], start = 0, n = t->shape[d];
    memcpy(shape, t->shape, sizeof shape);
    for (int i = 0; i < count; i++) {
        int64_t left = n - start;
        shape[d] = sizes ? sizes[i] : piece < left ? piece : left;
        out[i] = bn__view(t, t->ndim, shape, t->strides, t->offset + start * t->strides[d]);
        out[i] = bn__grad_slice("SplitBackward", t, d, start, 1, false, out[i]);
        if (!out[i]) {
            for (int k = 0; k < i; k++) bn_release(out[k]);
            clear_out(out, count);
            return -1;
        }
        start += shape[d];
    }
    for (int i = 0; i < count; i++) bn__out(out[i]);
    return count;
}

/* Shared checks of split and chunk; returns false with an error. */
static bool split_args(const char *fn, const bn_tensor *t, int dim, bn_tensor **out, int max_out,
                       int *d)
{
    if (!t || !out) {
        bn__null_arg(fn, t ? "out" : "t");
        return false;
    }
    if (t->ndim == 0) {
        bn__error(BN_ERR_SHAPE, "%s: cannot split a 0-d tensor", fn);
        return false;
    }
    if (max_out < 0) {
        bn__error(BN_ERR_ARG, "%s: max_out %d is negative", fn, max_out);
        return false;
    }
    return bn__norm_dim(fn, "dim", dim, t->ndim, d);
}

static bool pieces_fit(const char *fn, int64_t count, int max_out)
{
    if (count <= max_out) return true;
    bn__error(BN_ERR_ARG, "%s: the %lld pieces do not fit in out (max_out is %d)", fn,
              (long long)count, max_out);
    return false;
}

int bn_split(const bn_tensor *t, int64_t split_size, int dim, bn_tensor **out, int max_out)
{
    const char *fn = "bn_split";
    int d;
    if (out && max_out > 0) clear_out(out, max_out);
    if (!split_args(fn, t, dim, out, max_out, &d)) return -1;
    int64_t n = t->shape[d];
    if (split_size < 0 || (split_size == 0 && n > 0)) {
        bn__error(BN_ERR_ARG, "bn_split: split_size %lld must be positive for dim %d of size %lld",
                  (long long)split_size, dim, (long long)n);
        return -1;
    }
    int64_t count = n == 0 ? 1 : (n + split_size - 1) / split_size;
    if (!pieces_fit(fn, count, max_out)) return -1;
    return emit_pieces(t, d, (int)count, NULL, split_size, out);
}

int bn_split_sizes(const bn_tensor *t, const int64_t *sizes, int nsizes, int dim, bn_tensor **out)
{
    const char *fn = "bn_split_sizes";
    int d;
    if (out && nsizes > 0) clear_out(out, nsizes);
    if (!split_args(fn, t, dim, out, 0, &d)) return -1;
    if (nsizes > 0 && !sizes) {
        bn__null_arg(fn, "sizes");
        return -1;
    }
    if (nsizes <= 0) {
        bn__error(BN_ERR_ARG, "bn_split_sizes: nsizes %d must be positive", nsizes);
        return -1;
    }
    int64_t sum = 0;
    for (int i = 0; i < nsizes; i++) {
        if (sizes[i] < 0) {
            bn__error(BN_ERR_ARG, "bn_split_sizes: sizes[%d] is %lld (must be >= 0)", i,
                      (long long)sizes[i]);
            return -1;
        }
        sum += sizes[i];
    }
    if (sum != t->shape[d]) {
        char buf[BN_SHAPE_STR_MAX];
        bn__error(BN_ERR_ARG,
                  "bn_split_sizes: sizes %s sum to %lld, but dim %d of %s has size %lld",
                  bn__dims_str(sizes, nsizes, buf, sizeof buf), (long long)sum, dim, bn__tshape(t),
                  (long long)t->shape[d]);
        return -1;
    }
    return emit_pieces(t, d, nsizes, sizes, 0, out);
}

int bn_chunk(const bn_tensor *t, int chunks, int dim, bn_tensor **out, int max_out)
{
    const char *fn = "bn_chunk";
    int d;
    if (out && max_out > 0) clear_out(out, max_out);
    if (!split_args(fn, t, dim, out, max_out, &d)) return -1;
    if (chunks <= 0) {
        bn__error(BN_ERR_ARG, "bn_chunk: chunks %d must be positive", chunks);
        return -1;
    }
    int64_t n = t->shape[d];
    /* torch.chunk: pieces of ceil(n / chunks), so fewer than chunks may come back; an empty
     * dim gives chunks empty pieces */
    int64_t piece = (n + chunks - 1) / chunks;
    int64_t count = n == 0 ? chunks : (n + piece - 1) / piece;
    if (!pieces_fit(fn, count, max_out)) return -1;
    return emit_pieces(t, d, (int)count, NULL, piece, out);
}

/* ---- repeat -------------------------------------------------------------------------------- */

/* The copy of t into out, as views: a dim repeated r times that is also longer than 1 becomes
 * a (r, size) pair of dims in the out view (a 0-stride r dim in the t view); other dims stay
 * one dim (size-1 dims take r with stride 0). When pairs would pass BN_MAX_DIMS, the first
 * split dims are instead looped over here, one copy per tile. */
typedef struct repeat_plan {
    int nd;
    int64_t shape[BN_MAX_DIMS], dst[BN_MAX_DIMS], src[BN_MAX_DIMS];
    int nloop;
    int64_t loop_tiles[BN_MAX_DIMS], loop_step[BN_MAX_DIMS]; /* step: dst elements per tile */
} repeat_plan;

static void plan_dim(repeat_plan *p, int64_t size, int64_t dst, int64_t src)
{
    p->shape[p->nd] = size;
    p->dst[p->nd] = dst;
    p->src[p->nd] = src;
    p->nd++;
}

static void repeat_make_plan(const int64_t *r, const int64_t *in, const int64_t *in_strides,
                             const int64_t *out_strides, int nd, repeat_plan *p)
{
    int splits = 0;
    for (int i = 0; i < nd; i++) splits += r[i] > 1 && in[i] > 1;
    int looped = nd + splits > BN_MAX_DIMS ? nd + splits - BN_MAX_DIMS : 0;
    p->nd = p->nloop = 0;
    for (int i = 0; i < nd; i++) {
        if (r[i] > 1 && in[i] > 1 && looped > 0) {
            looped--;
            p->loop_tiles[p->nloop] = r[i];
            p->loop_step[p->nloop++] = in[i] * out_strides[i];
            plan_dim(p, in[i], out_strides[i], in_strides[i]);
        } else if (r[i] > 1 && in[i] > 1) {
            plan_dim(p, r[i], in[i] * out_strides[i], 0);
            plan_dim(p, in[i], out_strides[i], in_strides[i]);
        } else if (in[i] == 1) {
            plan_dim(p, r[i], out_strides[i], 0);
        } else {
            plan_dim(p, in[i], out_strides[i], in_strides[i]);
        }
    }
}

static bn_status repeat_copy(const bn_backend *be, bn_tensor *out, const bn_tensor *t,
                             const repeat_plan *p)
{
    int64_t tile[BN_MAX_DIMS] = {0};
    for (;;) {
        int64_t off = out->offset;
        for (int k = 0; k < p->nloop; k++) off += tile[k] * p->loop_step[k];
        bn_status st = copy_region(be, out, p->nd, p->shape, p->dst, off, t, p->src, t->offset);
        if (st != BN_OK) return st;
        int k = p->nloop - 1;
        while (k >= 0 && ++tile[k] == p->loop_tiles[k]) tile[k--] = 0;
        if (k < 0) return BN_OK;
    }
}

bn_tensor *bn_repeat(const bn_tensor *t, bn_shape repeats)
{
    const char *fn = "bn_repeat";
    BN_CHECK_NULL(fn, t);
    int nd = repeats.ndim;
    if (nd < t->ndim || nd > BN_MAX_DIMS)
        return bn__error_null(BN_ERR_ARG, "bn_repeat: repeats %s has %d dims; t %s needs %d..%d",
                              bn__sshape(repeats), nd, bn__tshape(t), t->ndim, BN_MAX_DIMS);
    int lead = nd - t->ndim;
    int64_t in[BN_MAX_DIMS], in_strides[BN_MAX_DIMS], shape[BN_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int64_t r = repeats.dims[i];
        in[i] = i < lead ? 1 : t->shape[i - lead];
        in_strides[i] = i < lead ? 0 : t->strides[i - lead];
        if (r < 0 || (r > 0 && in[i] > INT64_MAX / r))
            return bn__error_null(BN_ERR_ARG, "bn_repeat: repeats %s: %lld at dim %d is %s",
                                  bn__sshape(repeats), (long long)r, i,
                                  r < 0 ? "negative" : "too large");
        shape[i] = r * in[i];
    }
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (!be) return NULL;
    bn_tensor *out = bn__empty(shape, nd, t->dtype, t->storage->device);
    if (!out) return NULL;
    if (bn__numel(out) > 0) {
        repeat_plan plan;
        repeat_make_plan(repeats.dims, in, in_strides, out->strides, nd, &plan);
        if (repeat_copy(be, out, t, &plan) != BN_OK) {
            bn_release(out);
            return NULL;
        }
    }
    return bn__out(bn__grad_repeat(t, repeats, out));
}

/* ---- tril / triu --------------------------------------------------------------------------- */
static bn_tensor *tri_op(const char *fn, const bn_tensor *t, int64_t diagonal, bool upper)
{
    BN_CHECK_NULL(fn, t);
    if (t->ndim < 2)
        return bn__error_null(BN_ERR_SHAPE, "%s: t must have at least 2 dims, got %s", fn,
                              bn__tshape(t));
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (!be) return NULL;
    bn_tensor *out = bn__empty_like(t);
    if (!out) return NULL;
    if (bn__numel(out) > 0) {
        bn_tview x = bn__tview(t), o = bn__tview(out);
        if (be->tri(&x, &o, diagonal, upper) != BN_OK) {
            bn_release(out);
            return NULL;
        }
    }
    return bn__out(bn__grad_tri(t, diagonal, upper, out));
}

bn_tensor *bn_tril(const bn_tensor *t, int64_t diagonal)
{
    return tri_op("bn_tril", t, diagonal, false);
}

bn_tensor *bn_triu(const bn_tensor *t, int64_t diagonal)
{
    return tri_op("bn_triu", t, diagonal, true);
}

/* ---- pad ----------------------------------------------------------------------------------- */

/* Checks pads against t and mode; fills the padded shape and per-dim (before, after). */
static bool pad_shape(const bn_tensor *t, const int64_t *pads, int npads, bn_pad_mode mode,
                      int64_t *shape, int64_t *before, int64_t *after)
{
    memcpy(shape, t->shape, sizeof(int64_t) * BN_MAX_DIMS);
    for (int d = 0; d < t->ndim; d++) before[d] = after[d] = 0;
    for (int i = 0; i < npads / 2; i++) {
        int d = t->ndim - 1 - i;
        int64_t n = t->shape[d], b = pads[2 * i], a = pads[2 * i + 1];
        before[d] = b;
        after[d] = a;
        shape[d] = n + b + a;
        if (shape[d] < 0) {
            bn__error(BN_ERR_ARG,
                      "bn_pad: pads (%lld, %lld) on dim %d of size %lld leave a "
                      "negative size (%lld)",
                      (long long)b, (long long)a, d, (long long)n, (long long)shape[d]);
            return false;
        }
        if (mode == BN_PAD_REFLECT && (b || a) && (b >= n || a >= n)) {
            bn__error(BN_ERR_ARG,
                      "bn_pad: reflect pads (%lld, %lld) on dim %d must be smaller "
                      "than its size %lld",
                      (long long)b, (long long)a, d, (long long)n);
            return false;
        }
        if (mode == BN_PAD_REPLICATE && n == 0 && shape[d] > 0) {
            bn__error(BN_ERR_ARG,
                      "bn_pad: replicate cannot pad dim %d of size 0 (pads %lld, "
                      "%lld)",
                      d, (long long)b, (long long)a);
            return false;
        }
    }
    return true;
}

/* Fills out's elements whose index along d lies in [begin, end) (all of every other dim). */
static bn_status fill_band(const bn_backend *be, bn_tensor *out, int d, int64_t begin, int64_t end,
                           double value)
{
    if (begin >= end) return BN_OK;
    int64_t shape[BN_MAX_DIMS];
    memcpy(shape, out->shape, sizeof shape);
    shape[d] = end - begin;
    bn_tensor *band =
        bn__view(out, out->ndim, shape, out->strides, out->offset + begin * out->strides[d]);
    if (!band) return BN_ERR_OOM;
    bn_tview v = bn__tview(band);
    bn_status st = be->fill(&v, value);
    bn_release(band);
    return st;
}

/* Constant mode: copy the part of t that survives any cropping, fill the bands around it. */
static bn_tensor *pad_constant(const bn_backend *be, const bn_tensor *t, const int64_t *shape,
                               const int64_t *before, const int64_t *after, double value)
{
    bn_tensor *out = bn__empty(shape, t->ndim, t->dtype, t->storage->device);
    if (!out) return NULL;
    int64_t region[BN_MAX_DIMS], src_off = t->offset, dst_off = out->offset;
    bool empty = false;
    for (int d = 0; d < t->ndim; d++) {
        int64_t crop_b = before[d] < 0 ? -before[d] : 0, crop_a = after[d] < 0 ? -after[d] : 0;
        region[d] = t->shape[d] - crop_b - crop_a;
        if (region[d] <= 0) empty = true;
        src_off += crop_b * t->strides[d];
        dst_off += (before[d] > 0 ? before[d] : 0) * out->strides[d];
    }
    bn_status st;
    if (empty) {
        bn_tview v = bn__tview(out);
        st = be->fill(&v, value);
    } else {
        st = copy_region(be, out, t->ndim, region, out->strides, dst_off, t, t->strides, src_off);
        for (int d = 0; d < t->ndim && st == BN_OK; d++) {
            int64_t b = before[d] > 0 ? before[d] : 0;
            st = fill_band(be, out, d, 0, b, value);
            if (st == BN_OK) st = fill_band(be, out, d, b + region[d], shape[d], value);
        }
    }
    if (st != BN_OK) {
        bn_release(out);
        return NULL;
    }
    return out;
}

/* An i64 tensor of n elements on dev holding host[0..n). */
static bn_tensor *upload_i64(const bn_backend *be, const int64_t *host, int64_t n, bn_device dev)
{
    bn_tensor *ix = bn__empty(&n, 1, BN_I64, dev);
    if (ix && be->copy_from_host(bn__data(ix), host, (size_t)n * sizeof *host) != BN_OK) {
        bn_release(ix);
        return NULL;
    }
    return ix;
}

/* Where padded position o (0..m) of a dim of size n reads from. */
static int64_t pad_source(bn_pad_mode mode, int64_t o, int64_t before, int64_t n)
{
    int64_t i = o - before;
    if (mode == BN_PAD_REPLICATE) return i < 0 ? 0 : i >= n ? n - 1 : i;
    if (i < 0) i = -i;
    return i >= n ? 2 * (n - 1) - i : i;
}

/* cur padded along d by index_select with the mapped positions; a new tensor. */
static bn_tensor *pad_dim_by_index(const bn_backend *be, const bn_tensor *cur, int d,
                                   int64_t before, int64_t m, bn_pad_mode mode)
{
    int64_t *host = malloc((size_t)(m ? m : 1) * sizeof *host);
    if (!host)
        return bn__error_null(BN_ERR_OOM, "bn_pad: out of memory for %lld indices", (long long)m);
    for (int64_t o = 0; o < m; o++) host[o] = pad_source(mode, o, before, cur->shape[d]);
    bn_tensor *ix = upload_i64(be, host, m, cur->storage->device);
    free(host);
    int64_t shape[BN_MAX_DIMS];
    memcpy(shape, cur->shape, sizeof shape);
    shape[d] = m;
    bn_tensor *next = ix ? bn__empty(shape, cur->ndim, cur->dtype, cur->storage->device) : NULL;
    if (next && bn__numel(next) > 0) {
        bn_tview x = bn__tview(cur), iv = bn__tview(ix), o = bn__tview(next);
        if (be->index_select(&x, d, &iv, &o) != BN_OK) {
            bn_release(next);
            next = NULL;
        }
    }
    bn_release(ix);
    return next;
}

/* Reflect / replicate: one index_select per padded dim. */
static bn_tensor *pad_by_index(const bn_backend *be, const bn_tensor *t, const int64_t *shape,
                               const int64_t *before, const int64_t *after, bn_pad_mode mode)
{
    bn_tensor *cur = NULL;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (before[d] == 0 && after[d] == 0) continue;
        bn_tensor *next = pad_dim_by_index(be, cur ? cur : t, d, before[d], shape[d], mode);
        bn_release(cur);
        if (!next) return NULL;
        cur = next;
    }
    if (cur) return cur;
    /* nothing padded: still a fresh copy, as torch gives */
    bn_tensor *copy = bn__empty_like(t);
    bn_tview s = bn__tview(t), d = copy ? bn__tview(copy) : (bn_tview){0};
    if (copy && be->copy(&s, &d) != BN_OK) {
        bn_release(copy);
        return NULL;
    }
    return copy;
}

bn_tensor *bn_pad(const bn_tensor *t, const int64_t *pads, int npads, bn_pad_mode mode,
                  double value)
{
    const char *fn = "bn_pad";
    BN_CHECK_NULL(fn, t);
    if (!pads && npads > 0) return bn__null_arg(fn, "pads");
    if (npads < 0 || npads % 2 || npads > 2 * t->ndim)
        return bn__error_null(BN_ERR_ARG,
                              "bn_pad: npads %d must be even and at most 2 * ndim (%d) for t %s",
                              npads, 2 * t->ndim, bn__tshape(t));
    if (mode != BN_PAD_CONSTANT && mode != BN_PAD_REFLECT && mode != BN_PAD_REPLICATE)
        return bn__error_null(BN_ERR_ARG, "bn_pad: mode %d is not a bn_pad_mode", (int)mode);
    int64_t shape[BN_MAX_DIMS], before[BN_MAX_DIMS], after[BN_MAX_DIMS];
    if (!pad_shape(t, pads, npads, mode, shape, before, after)) return NULL;
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (!be) return NULL;
    bn_tensor *out = mode == BN_PAD_CONSTANT ? pad_constant(be, t, shape, before, after, value)
                                             : pad_by_index(be, t, shape, before, after, mode);
    return bn__out(bn__grad_pad(t, pads, npads, mode, out));
}
