/* ops/positional.c — position encodings (transformer.h): rotary embeddings (RoPE) with their
 * frequency scalings, ALiBi slopes and biases, the sinusoidal table.
 *
 * Tables (frequencies, angles, slopes, biases) are computed on the host in double and cast once
 * per call. bn_rope then takes one of two paths that give the same bits:
 *   fused:    the backend's rope kernel (backend_attn.h) reads x once and writes the result once;
 *             its rule (autograd/grad_transformer.c) is the same kernel rotating by -angle;
 *   composed: public ops (narrow, mul, sub, add, cat) on the tables, differentiated by autograd,
 *             for backends without the kernel. */
#include "autograd/grad_transformer.h"
#include "born/transformer.h"

#include <math.h>

static const double PI = 3.14159265358979323846;

/* ---- frequencies ------------------------------------------------------------------------------ */
typedef struct rope_cfg {
    double base;
    int64_t rd; /* rotary dims */
    bool interleaved;
    int64_t offset;
    const bn_tensor *positions;
    bn_rope_scaling scaling;
    double factor, low, high;
    int64_t orig;
} rope_cfg;

/* Fills cfg from opts (NULL: defaults) for head dim D, validating every field. */
static bool rope_config(const char *fn, const bn_rope_opts *opts, int64_t D, rope_cfg *c)
{
    bn_rope_opts o = opts ? *opts : (bn_rope_opts){0};
    c->base = o.base != 0.0 ? o.base : 10000.0;
    c->rd = o.rotary_dim != 0 ? o.rotary_dim : D;
    c->interleaved = o.interleaved;
    c->offset = o.offset;
    c->positions = o.positions;
    c->scaling = o.scaling;
    c->factor = o.factor;
    c->low = o.low_freq_factor != 0.0 ? o.low_freq_factor : 1.0;
    c->high = o.high_freq_factor != 0.0 ? o.high_freq_factor : 4.0;
    c->orig = o.original_max_positions != 0 ? o.original_max_positions : 8192;
    if (!(c->base > 0.0) || !isfinite(c->base))
        return bn__error(BN_ERR_ARG, "%s: base %g must be a finite number > 0", fn, o.base),
               false;
    if (c->rd < 2 || c->rd % 2 != 0 || c->rd > D)
        return bn__error(BN_ERR_ARG,
                         "%s: rotary_dim %lld must be even, >= 2 and <= the head dim %lld", fn,
                         (long long)c->rd, (long long)D),
               false;
    if (c->offset < 0)
        return bn__error(BN_ERR_ARG, "%s: offset %lld must be >= 0", fn, (long long)c->offset),
               false;
    if ((unsigned)c->scaling > BN_ROPE_SCALING_LLAMA3)
        return bn__error(BN_ERR_ARG, "%s: scaling %d is not a bn_rope_scaling", fn,
                         (int)c->scaling),
               false;
    if (c->scaling != BN_ROPE_SCALING_NONE && (!(c->factor > 0.0) || !isfinite(c->factor)))
        return bn__error(BN_ERR_ARG, "%s: factor %g must be a finite number > 0 with scaling", fn,
                         c->factor),
               false;
    if (c->scaling == BN_ROPE_SCALING_NTK && c->rd == 2)
        return bn__error(BN_ERR_ARG, "%s: NTK scaling needs rotary_dim > 2, got 2", fn), false;
    if (c->scaling == BN_ROPE_SCALING_LLAMA3 &&
        (!(c->low > 0.0) || !(c->high > c->low) || !isfinite(c->high) || c->orig < 1))
        return bn__error(BN_ERR_ARG,
                         "%s: LLAMA3 scaling needs 0 < low_freq_factor (%g) < high_freq_factor "
                         "(%g) and original_max_positions (%lld) >= 1",
                         fn, c->low, c->high, (long long)c->orig),
               false;
    return true;
}

/* f[i] (rd / 2 entries) = base^(-2i / rd) after the scaling. */
static void rope_freqs(const rope_cfg *c, double *f)
{
    int64_t half = c->rd / 2;
    double base = c->base;
    if (c->scaling == BN_ROPE_SCALING_NTK)
        base *= pow(c->factor, (double)c->rd / (double)(c->rd - 2));
    for (int64_t i = 0; i < half; i++) {
        double fi = pow(base, -(double)(2 * i) / (double)c->rd);
        if (c->scaling == BN_ROPE_SCALING_LINEAR) fi /= c->factor;
        if (c->scaling == BN_ROPE_SCALING_LLAMA3) {
            /* long wavelengths (past the original context / low) are slowed by factor, short
             * ones (under the original context / high) kept, the band between interpolated */
            double wavelen = 2.0 * PI / fi;
            double low_wl = (double)c->orig / c->low, high_wl = (double)c->orig / c->high;
            if (wavelen > low_wl) {
                fi /= c->factor;
            } else if (!(wavelen < high_wl)) {
                double smooth = ((double)c->orig / wavelen - c->low) / (c->high - c->low);
                fi = (1.0 - smooth) * fi / c->factor + smooth * fi;
            }
        }
        f[i] = fi;
    }
}

bn_tensor *bn_rope_frequencies(int64_t head_dim, const bn_rope_opts *opts)
{
    const char *fn = "bn_rope_frequencies";
    if (head_dim < 2)
        return bn__error_null(BN_ERR_ARG, "%s: head_dim %lld must be >= 2", fn,
                              (long long)head_dim);
    rope_cfg c;
    if (!rope_config(fn, opts, head_dim, &c)) return NULL;
    int64_t half = c.rd / 2;
    double *f = malloc(sizeof(double) * (size_t)half);
    bn_tensor *t = f ? bn__empty(&half, 1, BN_F32, bn_cpu()) : NULL;
    if (!t) {
        free(f);
        return f ? NULL : bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    }
    rope_freqs(&c, f);
    float *p = bn__data(t);
    for (int64_t i = 0; i < half; i++) p[i] = (float)f[i];
    free(f);
    return bn__out(t);
}

/* ---- rope -------------------------------------------------------------------------------------- */
/* A host f64 tensor (the data of a new contiguous CPU tensor) converted to dtype dt on device d.
 * Consumes t. */
static bn_tensor *finish_table(bn_tensor *t, bn_dtype dt, bn_device d)
{
    if (!t) return NULL;
    bn_tensor *c = bn__to_dtype(t, dt);
    bn_release(t);
    if (!c || d.type == BN_DEVICE_CPU) return c;
    bn__scope_suspend();
    bn_tensor *m = bn_tensor_to(c, d);
    bn__scope_resume();
    bn_release(c);
    return m;
}

/* The positions as host int64 (rows * T entries); NULL on failure. */
static int64_t *rope_positions(const char *fn, const rope_cfg *c, const bn_tensor *x, int64_t T,
                               int64_t *rows)
{
    const bn_tensor *p = c->positions;
    *rows = 1;
    if (!p) {
        int64_t *pos = malloc(sizeof(int64_t) * (size_t)(T ? T : 1));
        if (!pos) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
        for (int64_t t = 0; t < T; t++) pos[t] = c->offset + t;
        return pos;
    }
    if (p->dtype != BN_I64 && p->dtype != BN_I32)
        return bn__error_null(BN_ERR_DTYPE, "%s: positions must be i64 or i32, not %s", fn,
                              bn_dtype_name(p->dtype));
    bool ok = (p->ndim == 1 && p->shape[0] == T) ||
              (p->ndim == 2 && p->shape[1] == T && x->ndim >= 3 && p->shape[0] == x->shape[0]);
    if (!ok)
        return bn__error_null(BN_ERR_SHAPE,
                              "%s: positions %s must be (T) = [%lld] or (B, T) = [%lld, %lld] for "
                              "x %s",
                              fn, bn__tshape(p), (long long)T,
                              (long long)(x->ndim >= 3 ? x->shape[0] : 1), (long long)T,
                              bn__tshape(x));
    if (!bn__same_device(fn, x, p)) return NULL;
    *rows = p->ndim == 2 ? p->shape[0] : 1;
    int64_t n = *rows * T;
    bn_tensor *h = bn__to_dtype(p, BN_I64), *hc = NULL;
    if (h && h->storage->device.type != BN_DEVICE_CPU) {
        bn__scope_suspend();
        hc = bn_tensor_to(h, bn_cpu());
        bn__scope_resume();
    } else if (h) {
        bn_retain(h);
        hc = h;
    }
    bn_tensor *cc = hc ? bn__contiguous(hc) : NULL;
    int64_t *pos = cc ? malloc(sizeof(int64_t) * (size_t)(n ? n : 1)) : NULL;
    if (cc && !pos) bn__error(BN_ERR_OOM, "%s: out of memory", fn);
    if (pos)
        for (int64_t i = 0; i < n; i++) pos[i] = ((const int64_t *)bn__data(cc))[i];
    bn_release(h);
    bn_release(hc);
    bn_release(cc);
    return pos;
}

/* cos and sin tables (rows, T, half) in dtype dt on device d, shaped to broadcast against x
 * (..., T, half): (T, half), or (B, 1, ..., 1, T, half) of x's ndim. */
static bool rope_tables(const char *fn, const rope_cfg *c, const bn_tensor *x, bn_dtype dt,
                        bn_tensor **cosp, bn_tensor **sinp)
{
    int64_t T = x->shape[x->ndim - 2], half = c->rd / 2, rows;
    int64_t *pos = rope_positions(fn, c, x, T, &rows);
    if (!pos) return false;
    double *f = malloc(sizeof(double) * (size_t)half);
    int64_t shape[BN_MAX_DIMS];
    int nd = 2;
    if (rows > 1 || (c->positions && c->positions->ndim == 2)) {
        nd = x->ndim;
        shape[0] = rows;
        for (int i = 1; i < nd - 2; i++) shape[i] = 1;
    }
    shape[nd - 2] = T, shape[nd - 1] = half;
    bn_tensor *ct = f ? bn__empty(shape, nd, BN_F64, bn_cpu()) : NULL;
    bn_tensor *st = ct ? bn__empty(shape, nd, BN_F64, bn_cpu()) : NULL;
    if (!st) {
        if (!f) bn__error(BN_ERR_OOM, "%s: out of memory", fn);
        free(pos);
        free(f);
        bn_release(ct);
        return false;
    }
    rope_freqs(c, f);
    double *cp = bn__data(ct), *sp = bn__data(st);
    for (int64_t r = 0; r < rows * T; r++)
        for (int64_t i = 0; i < half; i++) {
            double a = (double)pos[r] * f[i];
            cp[r * half + i] = cos(a);
            sp[r * half + i] = sin(a);
        }
    free(pos);
    free(f);
    bn_device d = x->storage->device;
    *cosp = finish_table(ct, dt, d);
    *sinp = finish_table(st, dt, d);
    return *cosp && *sinp;
}

/* Runs inside a private scope: (x1 cos - x2 sin, x1 sin + x2 cos) in the chosen layout. */
static bn_tensor *rope_compose(const bn_tensor *x, const rope_cfg *c, bn_tensor *cs, bn_tensor *sn)
{
    int last = x->ndim - 1;
    int64_t D = x->shape[last], half = c->rd / 2;
    bn_dtype cdt = x->dtype == BN_F64 ? BN_F64 : BN_F32;
    bn_tensor *xc = bn_to_dtype(x, cdt);
    bn_tensor *xr = c->rd < D ? bn_narrow(xc, last, 0, c->rd) : xc;
    bn_tensor *x1, *x2;
    if (c->interleaved) {
        bn_shape s = bn_shape_of(xr);
        s.dims[last] = half;
        s.dims[s.ndim++] = 2;
        bn_tensor *pairs = bn_reshape(xr, s);
        x1 = bn_select(pairs, last + 1, 0);
        x2 = bn_select(pairs, last + 1, 1);
    } else {
        x1 = bn_narrow(xr, last, 0, half);
        x2 = bn_narrow(xr, last, half, half);
    }
    bn_tensor *o1 = bn_sub(bn_mul(x1, cs), bn_mul(x2, sn));
    bn_tensor *o2 = bn_add(bn_mul(x1, sn), bn_mul(x2, cs));
    bn_tensor *rot;
    if (c->interleaved) {
        bn_tensor *pair[2] = {o1, o2};
        bn_shape s = bn_shape_of(xr);
        rot = bn_reshape(bn_stack(pair, 2, last + 1), s);
    } else {
        bn_tensor *pair[2] = {o1, o2};
        rot = bn_cat(pair, 2, last);
    }
    if (c->rd < D) {
        bn_tensor *parts[2] = {rot, bn_narrow(xc, last, c->rd, D - c->rd)};
        rot = bn_cat(parts, 2, last);
    }
    return bn_to_dtype(rot, x->dtype);
}

bn_tensor *bn_rope(const bn_tensor *x, const bn_rope_opts *opts)
{
    const char *fn = "bn_rope";
    BN_CHECK_NULL(fn, x);
    if (!bn_dtype_is_float(x->dtype))
        return bn__error_null(BN_ERR_DTYPE, "%s: x must have a float dtype, not %s", fn,
                              bn_dtype_name(x->dtype));
    if (x->ndim < 2)
        return bn__error_null(BN_ERR_SHAPE, "%s: x must be (..., T, D) with at least 2 dims, got %s",
                              fn, bn__tshape(x));
    rope_cfg c;
    if (!rope_config(fn, opts, x->shape[x->ndim - 1], &c)) return NULL;
    bn_dtype cdt = x->dtype == BN_F64 ? BN_F64 : BN_F32;
    bn_tensor *cs = NULL, *sn = NULL;
    if (!rope_tables(fn, &c, x, cdt, &cs, &sn)) {
        bn_release(cs);
        bn_release(sn);
        return NULL;
    }
    const bn_backend *be = bn__backend(fn, x->storage->device);
    bn_tensor *out = NULL;
    if (be && be->attn && be->attn->rope) {
        out = bn__rope_apply(x, cs, sn,
                             (bn_rope_geom){.rd = c.rd, .interleaved = c.interleaved});
    } else if (be) {
        bn__scope_suspend();
        bn_scope_begin();
        out = rope_compose(x, &c, cs, sn);
        if (out) bn_retain(out);
        bn_scope_end();
        bn__scope_resume();
    }
    bn_release(cs);
    bn_release(sn);
    return bn__out(out);
}

/* ---- the fused front end (also the rule's: autograd/grad_transformer.c) -------------------- */
/* Whether dims [lo, hi) of t can be read as one dim: each stride is the next one's span (size-1
 * dims are free). Its stride goes to *stride (1 for no dims). */
static bool merge_dims(const bn_tensor *t, int lo, int hi, int64_t *size, int64_t *stride)
{
    *size = 1, *stride = 1;
    int64_t want = -1;
    for (int d = hi - 1; d >= lo; d--) {
        if (t->shape[d] == 1) continue;
        if (want >= 0 && t->strides[d] != want) return false;
        if (want < 0) *stride = t->strides[d];
        want = t->strides[d] * t->shape[d];
        *size *= t->shape[d];
    }
    for (int d = lo; d < hi; d++)
        if (t->shape[d] == 0) *size = 0;
    return true;
}

/* x (..., T, D) as the kernel's (nb, nh, T, D) view with last stride 1: nb is dim 0 when the
 * tables have one row per batch element (rows > 1), else 1; nh the dims between. False when
 * the layout does not allow it (the caller copies x). */
static bool rope_view(const bn_tensor *x, int64_t rows, bn_tview *v)
{
    int nd = x->ndim;
    if (x->strides[nd - 1] != 1 && x->shape[nd - 1] > 1) return false;
    *v = bn__tview(x);
    v->ndim = 4;
    int64_t T = x->shape[nd - 2], D = x->shape[nd - 1], ts = x->strides[nd - 2];
    int lo = rows > 1 ? 1 : 0;
    int64_t nb = 1, bs = 0, nh, hs;
    if (rows > 1) nb = x->shape[0], bs = x->strides[0];
    if (!merge_dims(x, lo, nd - 2, &nh, &hs)) return false;
    v->shape[0] = nb, v->shape[1] = nh, v->shape[2] = T, v->shape[3] = D;
    v->strides[0] = bs, v->strides[1] = hs, v->strides[2] = ts, v->strides[3] = 1;
    return true;
}

bn_tensor *bn__rope_apply(const bn_tensor *x, const bn_tensor *cos, const bn_tensor *sin,
                          bn_rope_geom g)
{
    const char *fn = "bn_rope";
    if (!x || !cos || !sin) return bn__null_arg(fn, !x ? "x" : "table");
    const bn_backend *be = bn__backend(fn, x->storage->device);
    if (!be) return NULL;
    if (!be->attn || !be->attn->rope)
        return bn__error_null(BN_ERR_UNSUPPORTED, "%s: the %s backend has no rope kernel", fn,
                              be->name);
    int64_t rows = cos->ndim > 2 ? cos->shape[0] : 1;
    bn_tview xv;
    bn_tensor *xc = NULL;
    if (!rope_view(x, rows, &xv)) {
        xc = bn__contiguous(x);
        if (!xc) return NULL;
        rope_view(xc, rows, &xv);
    }
    bn_tensor *out = bn__empty(x->shape, x->ndim, x->dtype, x->storage->device);
    bn_status st = out ? BN_OK : BN_ERR_OOM;
    if (out && bn__numel(out) > 0) {
        bn_tview ov = bn__tview(out), cv = bn__tview(cos), sv = bn__tview(sin);
        ov.ndim = 4;
        for (int d = 0; d < 4; d++) ov.shape[d] = xv.shape[d];
        bn__contiguous_strides(ov.shape, 4, ov.strides);
        /* the tables as (rows, T, rd / 2) */
        int64_t T = x->shape[x->ndim - 2], half = g.rd / 2;
        cv.ndim = sv.ndim = 3;
        cv.shape[0] = sv.shape[0] = rows, cv.shape[1] = sv.shape[1] = T;
        cv.shape[2] = sv.shape[2] = half;
        bn__contiguous_strides(cv.shape, 3, cv.strides);
        bn__contiguous_strides(sv.shape, 3, sv.strides);
        st = be->attn->rope(&xv, &cv, &sv, &ov, &g);
    }
    bn_release(xc);
    if (st != BN_OK) {
        bn_release(out);
        return NULL;
    }
    return bn__grad_rope(x, cos, sin, g, out);
}

/* ---- ALiBi ------------------------------------------------------------------------------------- */
/* slopes[h] for h < heads: 2^(-8 i / n) for the closest power of two n <= heads, then the odd
 * powers of 2^(-8 / 2n) for the rest. */
static void alibi_slopes(int64_t heads, double *s)
{
    int64_t n = 1;
    while (n * 2 <= heads) n *= 2;
    for (int64_t i = 0; i < n; i++) s[i] = pow(2.0, -8.0 * (double)(i + 1) / (double)n);
    for (int64_t i = n; i < heads; i++)
        s[i] = pow(2.0, -8.0 * (double)(2 * (i - n) + 1) / (double)(2 * n));
}

static bool check_heads(const char *fn, int64_t heads)
{
    if (heads >= 1 && heads <= (INT64_C(1) << 24)) return true;
    bn__error(BN_ERR_ARG, "%s: heads %lld must be in [1, 2^24]", fn, (long long)heads);
    return false;
}

bn_tensor *bn_alibi_slopes(int64_t heads)
{
    const char *fn = "bn_alibi_slopes";
    if (!check_heads(fn, heads)) return NULL;
    double *s = malloc(sizeof(double) * (size_t)heads);
    bn_tensor *t = s ? bn__empty(&heads, 1, BN_F32, bn_cpu()) : NULL;
    if (!t) {
        free(s);
        return s ? NULL : bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    }
    alibi_slopes(heads, s);
    float *p = bn__data(t);
    for (int64_t i = 0; i < heads; i++) p[i] = (float)s[i];
    free(s);
    return bn__out(t);
}

static bool check_table_dtype(const char *fn, bn_dtype dt, bn_device d)
{
    if (!bn__dtype_valid(dt) || !bn_dtype_is_float(dt)) {
        bn__error(BN_ERR_DTYPE, "%s: dt must be a float dtype, not %s", fn,
                  bn__dtype_valid(dt) ? bn_dtype_name(dt) : "an unknown dtype");
        return false;
    }
    return bn__backend(fn, d) != NULL;
}

bn_tensor *bn_alibi_bias(int64_t heads, int64_t tq, int64_t tk, bn_dtype dt, bn_device d)
{
    const char *fn = "bn_alibi_bias";
    if (!check_heads(fn, heads)) return NULL;
    if (tq < 0 || tk < 0)
        return bn__error_null(BN_ERR_ARG, "%s: tq %lld and tk %lld must be >= 0", fn,
                              (long long)tq, (long long)tk);
    if (!check_table_dtype(fn, dt, d)) return NULL;
    int64_t shape[3] = {heads, tq, tk};
    double *s = malloc(sizeof(double) * (size_t)heads);
    bn_tensor *t = s ? bn__empty(shape, 3, BN_F64, bn_cpu()) : NULL;
    if (!t) {
        free(s);
        return s ? NULL : bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    }
    alibi_slopes(heads, s);
    double *p = bn__data(t);
    for (int64_t h = 0; h < heads; h++)
        for (int64_t i = 0; i < tq; i++)
            for (int64_t j = 0; j < tk; j++)
                p[(h * tq + i) * tk + j] = s[h] * (double)(j - i - (tk - tq));
    free(s);
    return bn__out(finish_table(t, dt, d));
}

/* ---- sinusoidal ------------------------------------------------------------------------------- */
bn_tensor *bn_sinusoidal_positions(int64_t positions, int64_t dim, double base, bn_dtype dt,
                                   bn_device d)
{
    const char *fn = "bn_sinusoidal_positions";
    if (positions < 0 || dim < 0 || dim % 2 != 0)
        return bn__error_null(BN_ERR_ARG, "%s: positions %lld must be >= 0 and dim %lld even and >= 0",
                              fn, (long long)positions, (long long)dim);
    if (base == 0.0) base = 10000.0;
    if (!(base > 0.0) || !isfinite(base))
        return bn__error_null(BN_ERR_ARG, "%s: base %g must be a finite number > 0", fn, base);
    if (!check_table_dtype(fn, dt, d)) return NULL;
    int64_t shape[2] = {positions, dim};
    bn_tensor *t = bn__empty(shape, 2, BN_F64, bn_cpu());
    if (!t) return NULL;
    double *p = bn__data(t);
    for (int64_t i = 0; i < dim / 2; i++) {
        double w = pow(base, -(double)(2 * i) / (double)dim);
        for (int64_t r = 0; r < positions; r++) {
            p[r * dim + 2 * i] = sin((double)r * w);
            p[r * dim + 2 * i + 1] = cos((double)r * w);
        }
    }
    return bn__out(finish_table(t, dt, d));
}
