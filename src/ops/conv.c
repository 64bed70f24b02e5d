/* ops/conv.c — bn_conv1d, bn_conv2d and bn_conv_transpose2d: validation, output shapes, and the
 * three products of autograd/grad_conv.h that every convolution and its gradients are made of.
 *
 * A product is im2col (or col2im) plus one batched GEMM through the backend's matmul slot, with
 * the groups (and, for the forward, the images) as the GEMM's batch dims. The forward multiplies
 * each image's columns (C*KH*KW, OH*OW) straight into the output's layout; the gradients lay the
 * columns out (C*KH*KW, N*OH*OW) so a group's weight meets all N images in one wide GEMM (for the
 * weight's gradient that sums over the batch inside the GEMM, in a fixed order). f16 and bf16
 * compute in f32 and are rounded once at the end.
 * conv1d is conv2d with H = KH = 1. Not done here: fused or direct (no im2col) kernels, winograd. */
#include "autograd/grad_conv.h"
#include "backend/backend_conv.h"

/* ---- helpers -------------------------------------------------------------------------------- */
static bn_dtype compute_dtype(bn_dtype dt) { return dt == BN_F64 ? BN_F64 : BN_F32; }

/* The backend of t's device, when it has convolution kernels. */
static const bn_backend *conv_backend(const char *fn, const bn_tensor *t)
{
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (be && (!be->conv || !be->conv->im2col || !be->conv->col2im || !be->matmul)) {
        bn__error(BN_ERR_UNSUPPORTED, "%s: the %s backend has no convolution kernels", fn,
                  be->name);
        return NULL;
    }
    return be;
}

/* A 3-D view (d0, d1, d2) with strides (s0, s1, s2) over t's data. */
static bn_tview view3(const bn_tensor *t, int64_t d0, int64_t d1, int64_t d2, int64_t s0,
                      int64_t s1, int64_t s2)
{
    bn_tview v = bn__tview(t);
    v.ndim = 3;
    v.shape[0] = d0, v.shape[1] = d1, v.shape[2] = d2;
    v.strides[0] = s0, v.strides[1] = s1, v.strides[2] = s2;
    return v;
}

static bn_tensor *release_null(bn_tensor *a, bn_tensor *b, bn_tensor *c)
{
    bn_release(a);
    bn_release(b);
    bn_release(c);
    return NULL;
}

/* t in dtype dt and contiguous (a new reference). */
static bn_tensor *contiguous_as(const bn_tensor *t, bn_dtype dt)
{
    bn_tensor *c = bn__to_dtype(t, dt);
    if (!c) return NULL;
    bn_tensor *r = bn__contiguous(c);
    bn_release(c);
    return r;
}

/* The columns of img (N, C, H, W), dtype img's, in one of two layouts:
 *   per_sample   (N, C*KH*KW, OH*OW): image n's group g is one (C/G*KH*KW, OH*OW) matrix,
 *   otherwise    (C*KH*KW, N*OH*OW): group g of all images is one (C/G*KH*KW, N*OH*OW) matrix. */
static bn_tensor *columns(const bn_backend *be, const bn_tensor *img, const bn_window_geom *g,
                          bool per_sample)
{
    int64_t CKK = g->C * g->KH * g->KW, L = g->OH * g->OW;
    int64_t shape[3] = {g->N, CKK, L};
    bn_tensor *cols = bn__empty(shape, 3, img->dtype, img->storage->device);
    if (!cols) return NULL;
    bn_tview x = bn__tview(img);
    bn_tview c = per_sample ? view3(cols, g->N, CKK, L, CKK * L, L, 1)
                            : view3(cols, g->N, CKK, L, L, g->N * L, 1);
    if (be->conv->im2col(&x, &c, g) != BN_OK) return release_null(cols, NULL, NULL);
    return cols;
}

/* t (N, K, OH, OW) copied channels-first into (K, N, OH, OW) contiguous, so group g's channels
 * form one (K/G, N*OH*OW) matrix. */
static bn_tensor *channels_first(const bn_backend *be, const bn_tensor *t)
{
    int64_t shape[4] = {t->shape[1], t->shape[0], t->shape[2], t->shape[3]};
    bn_tensor *out = bn__empty(shape, 4, t->dtype, t->storage->device);
    if (!out) return NULL;
    bn_tview src = bn__tview(t), dst = bn__tview(out);
    src.shape[0] = t->shape[1], src.shape[1] = t->shape[0];
    src.strides[0] = t->strides[1], src.strides[1] = t->strides[0];
    if (be->copy(&src, &dst) != BN_OK) return release_null(out, NULL, NULL);
    return out;
}

/* y += bias along dim 1 of the 4-D contiguous y; bias (y.shape[1]). */
static bn_status add_bias(const bn_backend *be, bn_tensor *y, const bn_tensor *bias)
{
    bn_tensor *bc = bn__to_dtype(bias, y->dtype);
    if (!bc) return bn_error_code();
    bn_tview yv = bn__tview(y), bv = bn__tview(y);
    bv.data = bn__data(bc);
    for (int d = 0; d < 4; d++) bv.strides[d] = d == 1 ? bc->strides[0] : 0;
    bn_status st = be->binary(BN_BINARY_ADD, &yv, &bv, &yv);
    bn_release(bc);
    return st;
}

/* ---- the three products --------------------------------------------------------------------- */
bn_tensor *bn__conv_forward_4d(const char *fn, const bn_tensor *img, const bn_tensor *w,
                               const bn_tensor *bias, const bn_conv_plan *p)
{
    const bn_window_geom *g = &p->g;
    const bn_backend *be = conv_backend(fn, img);
    if (!be) return NULL;
    bn_dtype cd = compute_dtype(img->dtype);
    int64_t G = p->groups, CgKK = g->C / G * g->KH * g->KW, Og = p->ocols / G,
            L = g->OH * g->OW;
    bn_tensor *x = bn__to_dtype(img, cd), *wc = contiguous_as(w, cd);
    bn_tensor *cols = x && wc ? columns(be, x, g, true) : NULL;
    int64_t yshape[4] = {g->N, p->ocols, g->OH, g->OW};
    bn_tensor *y = cols ? bn__empty(yshape, 4, cd, img->storage->device) : NULL;
    if (!y) return release_null(x, wc, cols);
    /* per image n and group: y[n, g] (Og, L) = w[g] (Og, CgKK) @ cols[n, g] (CgKK, L) */
    bn_tview a = bn__tview(wc), b = bn__tview(cols), o = bn__tview(y);
    a.ndim = b.ndim = o.ndim = 4;
    int64_t ad[4] = {g->N, G, Og, CgKK}, as[4] = {0, Og * CgKK, CgKK, 1};
    int64_t bd[4] = {g->N, G, CgKK, L}, bs[4] = {G * CgKK * L, CgKK * L, L, 1};
    int64_t od[4] = {g->N, G, Og, L}, os[4] = {G * Og * L, Og * L, L, 1};
    for (int d = 0; d < 4; d++) {
        a.shape[d] = ad[d], a.strides[d] = as[d];
        b.shape[d] = bd[d], b.strides[d] = bs[d];
        o.shape[d] = od[d], o.strides[d] = os[d];
    }
    bn_status st = be->matmul(&a, &b, &o);
    release_null(x, wc, cols);
    if (st == BN_OK && bias) st = add_bias(be, y, bias);
    if (st != BN_OK) return release_null(y, NULL, NULL);
    bn_tensor *out = bn__to_dtype(y, img->dtype);
    bn_release(y);
    return out;
}

bn_tensor *bn__conv_input_grad_4d(const char *fn, const bn_tensor *cols_side, const bn_tensor *w,
                                  const bn_tensor *bias, const bn_conv_plan *p)
{
    const bn_window_geom *g = &p->g;
    const bn_backend *be = conv_backend(fn, cols_side);
    if (!be) return NULL;
    bn_dtype cd = compute_dtype(cols_side->dtype);
    int64_t G = p->groups, CgKK = g->C / G * g->KH * g->KW, Og = p->ocols / G,
            L = g->OH * g->OW, NL = g->N * L;
    bn_tensor *cs = bn__to_dtype(cols_side, cd), *wc = contiguous_as(w, cd);
    bn_tensor *gy = cs && wc ? channels_first(be, cs) : NULL;
    int64_t cshape[2] = {g->C * g->KH * g->KW, NL};
    bn_tensor *gcols = gy ? bn__empty(cshape, 2, cd, cols_side->storage->device) : NULL;
    bn_release(cs);
    if (!gcols) return release_null(wc, gy, NULL);
    bn_tview a = view3(wc, G, CgKK, Og, Og * CgKK, 1, CgKK); /* w^T per group */
    bn_tview b = view3(gy, G, Og, NL, Og * NL, NL, 1);
    bn_tview o = view3(gcols, G, CgKK, NL, CgKK * NL, NL, 1);
    bn_status st = be->matmul(&a, &b, &o);
    release_null(wc, gy, NULL);
    int64_t ishape[4] = {g->N, g->C, g->H, g->W};
    bn_tensor *img = st == BN_OK ? bn__empty(ishape, 4, cd, cols_side->storage->device) : NULL;
    if (img) {
        bn_tview c = view3(gcols, g->N, g->C * g->KH * g->KW, L, L, NL, 1), x = bn__tview(img);
        st = be->conv->col2im(&c, &x, g);
        if (st == BN_OK && bias) st = add_bias(be, img, bias);
    }
    bn_release(gcols);
    if (!img || st != BN_OK) return release_null(img, NULL, NULL);
    bn_tensor *out = bn__to_dtype(img, cols_side->dtype);
    bn_release(img);
    return out;
}

bn_tensor *bn__conv_weight_grad_4d(const char *fn, const bn_tensor *cols_side,
                                   const bn_tensor *img, const bn_conv_plan *p)
{
    const bn_window_geom *g = &p->g;
    const bn_backend *be = conv_backend(fn, img);
    if (!be) return NULL;
    bn_dtype cd = compute_dtype(img->dtype);
    int64_t G = p->groups, CgKK = g->C / G * g->KH * g->KW, Og = p->ocols / G,
            NL = g->N * g->OH * g->OW;
    bn_tensor *cs = bn__to_dtype(cols_side, cd), *x = bn__to_dtype(img, cd);
    bn_tensor *gy = cs ? channels_first(be, cs) : NULL;
    bn_tensor *cols = x && gy ? columns(be, x, g, false) : NULL;
    release_null(cs, x, NULL);
    int64_t wshape[4] = {p->ocols, g->C / G, g->KH, g->KW};
    bn_tensor *gw = cols ? bn__empty(wshape, 4, cd, img->storage->device) : NULL;
    if (!gw) return release_null(gy, cols, NULL);
    bn_tview a = view3(gy, G, Og, NL, Og * NL, NL, 1);
    bn_tview b = view3(cols, G, NL, CgKK, CgKK * NL, 1, NL); /* cols^T per group */
    bn_tview o = view3(gw, G, Og, CgKK, Og * CgKK, CgKK, 1);
    bn_status st = be->matmul(&a, &b, &o);
    release_null(gy, cols, NULL);
    if (st != BN_OK) return release_null(gw, NULL, NULL);
    bn_tensor *out = bn__to_dtype(gw, img->dtype);
    bn_release(gw);
    return out;
}

bn_tensor *bn__conv_as_4d(const bn_tensor *t, const bn_conv_plan *p)
{
    int off = p->batched ? 1 : 0;
    int64_t s[4] = {p->batched ? t->shape[0] : 1, t->shape[off], 1, 1};
    if (p->one_d)
        s[3] = t->shape[off + 1];
    else
        s[2] = t->shape[off + 1], s[3] = t->shape[off + 2];
    return bn__reshape(t, s, 4);
}

/* ---- validation ----------------------------------------------------------------------------- */
/* The options with their defaults filled in, or false with BN_ERR_ARG. */
static bool conv_options(const char *fn, bn_conv_opts *o, bool transpose)
{
    if (o->stride < 0 || o->padding < 0 || o->dilation < 0 || o->groups < 0 ||
        o->output_padding < 0) {
        bn__error(BN_ERR_ARG,
                  "%s: stride, padding, dilation, groups and output_padding must not be negative "
                  "(got stride %lld, padding %lld, dilation %lld, groups %lld, output_padding "
                  "%lld)",
                  fn, (long long)o->stride, (long long)o->padding, (long long)o->dilation,
                  (long long)o->groups, (long long)o->output_padding);
        return false;
    }
    if (!o->stride) o->stride = 1;
    if (!o->dilation) o->dilation = 1;
    if (!o->groups) o->groups = 1;
    if (!transpose && o->output_padding) {
        bn__error(BN_ERR_ARG,
                  "%s: output_padding %lld applies only to bn_conv_transpose2d (use 0)", fn,
                  (long long)o->output_padding);
        return false;
    }
    if (transpose && o->output_padding >= o->stride && o->output_padding >= o->dilation) {
        bn__error(BN_ERR_ARG,
                  "%s: output_padding %lld must be smaller than either stride %lld or dilation "
                  "%lld",
                  fn, (long long)o->output_padding, (long long)o->stride, (long long)o->dilation);
        return false;
    }
    if (o->same && (transpose || o->stride != 1 || o->padding != 0)) {
        bn__error(BN_ERR_ARG,
                  "%s: same padding needs stride 1 and padding 0 and no transposed convolution "
                  "(got stride %lld, padding %lld)",
                  fn, (long long)o->stride, (long long)o->padding);
        return false;
    }
    return true;
}

/* Device, dtypes and ranks of x, w, b; sd spatial dims. */
static bool conv_operands(const char *fn, const bn_tensor *x, const bn_tensor *w,
                          const bn_tensor *b, int sd)
{
    if (!bn__same_device(fn, x, w) || (b && !bn__same_device(fn, x, b))) return false;
    if (!bn_dtype_is_float(x->dtype)) {
        bn__error(BN_ERR_DTYPE, "%s: x is %s; convolution needs a float dtype (f32, f64, f16, bf16)",
                  fn, bn_dtype_name(x->dtype));
        return false;
    }
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype)) {
        bn__error(BN_ERR_DTYPE, "%s: x is %s, w is %s%s%s; all need the same dtype", fn,
                  bn_dtype_name(x->dtype), bn_dtype_name(w->dtype), b ? " and b is " : "",
                  b ? bn_dtype_name(b->dtype) : "");
        return false;
    }
    if (x->ndim != sd + 1 && x->ndim != sd + 2) {
        bn__error(BN_ERR_SHAPE, "%s: x must be %d-D (C, %s) or %d-D (N, C, %s), got %s", fn,
                  sd + 1, sd == 1 ? "L" : "H, W", sd + 2, sd == 1 ? "L" : "H, W", bn__tshape(x));
        return false;
    }
    if (w->ndim != sd + 2) {
        bn__error(BN_ERR_SHAPE, "%s: w must be %d-D (out, in/groups, %s), got %s", fn, sd + 2,
                  sd == 1 ? "K" : "KH, KW", bn__tshape(w));
        return false;
    }
    return true;
}

/* Channels and groups: fills ocols (the columns side's channels) and the image's channels. */
static bool conv_channels(const char *fn, const bn_tensor *x, const bn_tensor *w,
                          const bn_tensor *b, int64_t groups, bool transpose, bn_conv_plan *p)
{
    int64_t C = x->shape[x->ndim == w->ndim ? 1 : 0];
    int64_t w0 = w->shape[0], w1 = w->shape[1];
    int64_t need = transpose ? w0 : w1 * groups, out = transpose ? w1 * groups : w0;
    if (C != need) {
        bn__error(BN_ERR_SHAPE,
                  "%s: x %s has %lld channels but w %s expects %lld (groups %lld)", fn,
                  bn__tshape(x), (long long)C, bn__tshape(w), (long long)need, (long long)groups);
        return false;
    }
    if ((transpose ? C : w0) % groups != 0) {
        bn__error(BN_ERR_SHAPE, "%s: %s channels %lld (w %s) are not divisible by groups %lld",
                  fn, transpose ? "input" : "output", (long long)(transpose ? C : w0),
                  bn__tshape(w), (long long)groups);
        return false;
    }
    if (b && (b->ndim != 1 || b->shape[0] != out)) {
        bn__error(BN_ERR_SHAPE, "%s: b must be (%lld) for %lld output channels (w %s), got %s",
                  fn, (long long)out, (long long)out, bn__tshape(w), bn__tshape(b));
        return false;
    }
    p->groups = groups;
    p->ocols = transpose ? C : out;
    p->g.C = transpose ? out : C;
    return true;
}

static bool conv_geometry(const char *fn, const bn_tensor *x, const bn_tensor *w,
                          const bn_conv_opts *o, int sd, bool transpose, bn_conv_plan *p)
{
    bn_window_geom *g = &p->g;
    int xs = x->ndim - sd, ws = w->ndim - sd; /* first spatial dim */
    int64_t in_h = sd == 2 ? x->shape[xs] : 1, in_w = x->shape[xs + sd - 1];
    g->KH = sd == 2 ? w->shape[ws] : 1, g->KW = w->shape[ws + sd - 1];
    g->N = p->batched ? x->shape[0] : 1;
    g->stride_h = sd == 2 ? o->stride : 1, g->stride_w = o->stride;
    g->dil_h = sd == 2 ? o->dilation : 1, g->dil_w = o->dilation;
    int64_t ins[2] = {in_h, in_w}, ks[2] = {g->KH, g->KW}, outs[2], pads[2];
    for (int d = 2 - sd; d < 2; d++) {
        int64_t eff = o->dilation * (ks[d] - 1) + 1;
        pads[d] = o->same ? o->dilation * (ks[d] - 1) / 2 : o->padding;
        if (transpose) {
            outs[d] = (ins[d] - 1) * o->stride - 2 * o->padding + eff + o->output_padding;
        } else if (o->same) {
            outs[d] = ins[d];
        } else if (ins[d] + 2 * o->padding < eff) {
            bn__error(BN_ERR_SHAPE,
                      "%s: the kernel (w %s, dilation %lld: %lld wide) is larger than the padded "
                      "input (x %s, padding %lld: %lld wide)",
                      fn, bn__tshape(w), (long long)o->dilation, (long long)eff, bn__tshape(x),
                      (long long)o->padding, (long long)(ins[d] + 2 * o->padding));
            return false;
        } else {
            outs[d] = (ins[d] + 2 * o->padding - eff) / o->stride + 1;
        }
        if (transpose && outs[d] <= 0) {
            bn__error(BN_ERR_SHAPE,
                      "%s: the output would be empty (%lld wide) for x %s, w %s, stride %lld, "
                      "padding %lld",
                      fn, (long long)outs[d], bn__tshape(x), bn__tshape(w), (long long)o->stride,
                      (long long)o->padding);
            return false;
        }
    }
    if (sd == 1) outs[0] = 1, pads[0] = 0;
    g->pad_h = pads[0], g->pad_w = pads[1];
    /* the image is x for conv, the output for conv_transpose */
    g->H = transpose ? outs[0] : in_h, g->W = transpose ? outs[1] : in_w;
    g->OH = transpose ? in_h : outs[0], g->OW = transpose ? in_w : outs[1];
    return true;
}

static bool plan_conv(const char *fn, const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                      bn_conv_opts o, int sd, bool transpose, bn_conv_plan *p)
{
    *p = (bn_conv_plan){0};
    if (!conv_operands(fn, x, w, b, sd) || !conv_options(fn, &o, transpose)) return false;
    p->transpose = transpose;
    p->x_ndim = x->ndim;
    p->batched = x->ndim == sd + 2;
    p->one_d = sd == 1;
    return conv_channels(fn, x, w, b, o.groups, transpose, p) &&
           conv_geometry(fn, x, w, &o, sd, transpose, p);
}

/* ---- public --------------------------------------------------------------------------------- */
/* The user-facing output shape from the 4-D result y4 (N, C', H', W'). */
static bn_tensor *user_shape(bn_tensor *y4, const bn_conv_plan *p)
{
    if (!y4) return NULL;
    int64_t s[4];
    int n = 0;
    if (p->batched) s[n++] = y4->shape[0];
    s[n++] = y4->shape[1];
    if (!p->one_d) s[n++] = y4->shape[2];
    s[n++] = y4->shape[3];
    bn_tensor *out = bn__reshape(y4, s, n);
    bn_release(y4);
    return out;
}

static bn_tensor *conv_any(const char *fn, const bn_tensor *x, const bn_tensor *w,
                           const bn_tensor *b, bn_conv_opts o, int sd, bool transpose)
{
    bn_conv_plan p;
    if (!plan_conv(fn, x, w, b, o, sd, transpose, &p)) return NULL;
    bn_tensor *x4 = bn__conv_as_4d(x, &p);
    int64_t ws[4] = {w->shape[0], w->shape[1], p.g.KH, p.g.KW};
    bn_tensor *w4 = x4 ? bn__reshape(w, ws, 4) : NULL;
    bn_tensor *y4 = NULL;
    if (w4)
        y4 = transpose ? bn__conv_input_grad_4d(fn, x4, w4, b, &p)
                       : bn__conv_forward_4d(fn, x4, w4, b, &p);
    bn_release(x4);
    bn_release(w4);
    return bn__grad_conv(x, w, b, &p, user_shape(y4, &p));
}

bn_tensor *bn_conv1d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b, bn_conv_opts o)
{
    BN_CHECK_NULL("bn_conv1d", x);
    BN_CHECK_NULL("bn_conv1d", w);
    return bn__out(conv_any("bn_conv1d", x, w, b, o, 1, false));
}

bn_tensor *bn_conv2d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b, bn_conv_opts o)
{
    BN_CHECK_NULL("bn_conv2d", x);
    BN_CHECK_NULL("bn_conv2d", w);
    return bn__out(conv_any("bn_conv2d", x, w, b, o, 2, false));
}

bn_tensor *bn_conv_transpose2d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                               bn_conv_opts o)
{
    BN_CHECK_NULL("bn_conv_transpose2d", x);
    BN_CHECK_NULL("bn_conv_transpose2d", w);
    return bn__out(conv_any("bn_conv_transpose2d", x, w, b, o, 2, true));
}
