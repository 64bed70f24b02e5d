/* ops/pool.c — bn_max_pool2d, bn_avg_pool2d and bn_adaptive_avg_pool2d with PyTorch's window
 * rules and output sizes (ceil_mode included), on (N, C, H, W) or unbatched (C, H, W) input;
 * plus the ops-level backward products the rules in autograd/grad_conv.c call. f16 and bf16
 * compute in f32 and are rounded once. */
#include "autograd/grad_conv.h"
#include "backend/backend_conv.h"
#include "ops/conv_buffers.h"

static bn_dtype compute_dtype(bn_dtype dt) { return dt == BN_F64 ? BN_F64 : BN_F32; }

static const bn_backend *pool_backend(const char *fn, const bn_tensor *t)
{
    const bn_backend *be = bn__backend(fn, t->storage->device);
    if (be && (!be->conv || !be->conv->max_pool2d)) {
        bn__error(BN_ERR_UNSUPPORTED, "%s: the %s backend has no pooling kernels", fn, be->name);
        return NULL;
    }
    return be;
}

/* x must be a float (C, H, W) or (N, C, H, W) tensor; fills g's N, C, H, W. */
static bool pool_input(const char *fn, const bn_tensor *x, bn_window_geom *g)
{
    if (!bn_dtype_is_float(x->dtype)) {
        bn__error(BN_ERR_DTYPE, "%s: x is %s; pooling needs a float dtype (f32, f64, f16, bf16)",
                  fn, bn_dtype_name(x->dtype));
        return false;
    }
    if (x->ndim != 3 && x->ndim != 4) {
        bn__error(BN_ERR_SHAPE, "%s: x must be 3-D (C, H, W) or 4-D (N, C, H, W), got %s", fn,
                  bn__tshape(x));
        return false;
    }
    int o = x->ndim - 3;
    *g = (bn_window_geom){0};
    g->N = o ? x->shape[0] : 1;
    g->C = x->shape[o], g->H = x->shape[o + 1], g->W = x->shape[o + 2];
    return true;
}

/* torch's pooling_output_shape for one dim; false with BN_ERR_SHAPE when it is < 1. */
static bool pool_out_size(const char *fn, const bn_tensor *x, int64_t in, int64_t k, int64_t s,
                          int64_t p, int64_t d, bool ceil_mode, int64_t *out)
{
    int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil_mode && (o - 1) * s >= in + p) o--;
    if (o < 1) {
        bn__error(BN_ERR_SHAPE,
                  "%s: the output would be empty (%lld): x %s is too small for kernel %lld "
                  "(dilation %lld, padding %lld, stride %lld)",
                  fn, (long long)o, bn__tshape(x), (long long)k, (long long)d, (long long)p,
                  (long long)s);
        return false;
    }
    *out = o;
    return true;
}

/* The window geometry of a square-kernel pool, with the defaults filled in. */
static bool pool_geometry(const char *fn, const bn_tensor *x, int64_t kernel, bn_pool_opts o,
                          bn_window_geom *g)
{
    if (!pool_input(fn, x, g)) return false;
    if (kernel <= 0 || o.stride < 0 || o.padding < 0 || o.dilation < 0) {
        bn__error(BN_ERR_ARG,
                  "%s: kernel must be positive and stride, padding, dilation not negative (got "
                  "kernel %lld, stride %lld, padding %lld, dilation %lld)",
                  fn, (long long)kernel, (long long)o.stride, (long long)o.padding,
                  (long long)o.dilation);
        return false;
    }
    if (o.padding > kernel / 2) {
        bn__error(BN_ERR_ARG, "%s: padding %lld must be at most half the kernel %lld", fn,
                  (long long)o.padding, (long long)kernel);
        return false;
    }
    g->KH = g->KW = kernel;
    g->stride_h = g->stride_w = o.stride ? o.stride : kernel;
    g->pad_h = g->pad_w = o.padding;
    g->dil_h = g->dil_w = o.dilation ? o.dilation : 1;
    return pool_out_size(fn, x, g->H, kernel, g->stride_h, g->pad_h, g->dil_h, o.ceil_mode,
                         &g->OH) &&
           pool_out_size(fn, x, g->W, kernel, g->stride_w, g->pad_w, g->dil_w, o.ceil_mode,
                         &g->OW);
}

/* t as (N, C, H', W') per g (a new view), whether t is batched or not. */
static bn_tensor *as_4d(const bn_tensor *t, int64_t N)
{
    int o = t->ndim - 3;
    int64_t s[4] = {N, t->shape[o], t->shape[o + 1], t->shape[o + 2]};
    return bn__reshape(t, s, 4);
}

/* y4 (N, C, OH, OW) in x's rank and dtype (consumes y4). */
static bn_tensor *like_x(bn_tensor *y4, const bn_tensor *x)
{
    if (!y4) return NULL;
    bn_tensor *c = bn__to_dtype(y4, x->dtype);
    bn_release(y4);
    if (!c || x->ndim == 4) return c;
    bn_tensor *out = bn__reshape(c, c->shape + 1, 3);
    bn_release(c);
    return out;
}

/* A contiguous (N, C, OH, OW) tensor of dtype dt. */
static bn_tensor *pool_out(const bn_window_geom *g, bn_dtype dt, bn_device d)
{
    int64_t s[4] = {g->N, g->C, g->OH, g->OW};
    return bn__conv_empty(s, 4, dt, d);
}

/* ---- public --------------------------------------------------------------------------------- */
bn_tensor *bn_max_pool2d(const bn_tensor *x, int64_t kernel, bn_pool_opts o)
{
    static const char fn[] = "bn_max_pool2d";
    BN_CHECK_NULL(fn, x);
    bn_window_geom g;
    if (!pool_geometry(fn, x, kernel, o, &g)) return NULL;
    const bn_backend *be = pool_backend(fn, x);
    if (!be) return NULL;
    bn_tensor *xc = bn__to_dtype(x, compute_dtype(x->dtype));
    bn_tensor *x4 = xc ? as_4d(xc, g.N) : NULL;
    bn_tensor *y = x4 ? pool_out(&g, x4->dtype, x->storage->device) : NULL;
    /* the argmax is kept only for the backward: without one the kernel writes no indices */
    bool need_idx = bn__grad_needed1(x);
    bn_tensor *idx = y && need_idx ? pool_out(&g, BN_I64, x->storage->device) : NULL;
    bn_release(xc);
    if (idx || (y && !need_idx)) {
        bn_tview xv = bn__tview(x4), yv = bn__tview(y), iv = {.data = NULL, .dtype = BN_I64};
        if (idx) iv = bn__tview(idx);
        if (be->conv->max_pool2d(&xv, &yv, &iv, &g) != BN_OK) bn_release(y), y = NULL;
    } else {
        bn_release(y), y = NULL;
    }
    bn_release(x4);
    bn_tensor *out = bn__grad_max_pool2d(x, idx, &g, like_x(y, x));
    bn_release(idx);
    return bn__out(out);
}

bn_tensor *bn_avg_pool2d(const bn_tensor *x, int64_t kernel, bn_pool_opts o)
{
    static const char fn[] = "bn_avg_pool2d";
    BN_CHECK_NULL(fn, x);
    if (o.dilation > 1)
        return bn__error_null(BN_ERR_ARG,
                              "%s: dilation %lld is not supported for average pooling (use 0 or 1)",
                              fn, (long long)o.dilation);
    bn_window_geom g;
    if (!pool_geometry(fn, x, kernel, o, &g)) return NULL;
    const bn_backend *be = pool_backend(fn, x);
    if (!be) return NULL;
    bn_tensor *xc = bn__to_dtype(x, compute_dtype(x->dtype));
    bn_tensor *x4 = xc ? as_4d(xc, g.N) : NULL;
    bn_tensor *y = x4 ? pool_out(&g, x4->dtype, x->storage->device) : NULL;
    bn_release(xc);
    if (y) {
        bn_tview xv = bn__tview(x4), yv = bn__tview(y);
        if (be->conv->avg_pool2d(&xv, &yv, &g, o.exclude_padding) != BN_OK)
            bn_release(y), y = NULL;
    }
    bn_release(x4);
    return bn__out(bn__grad_avg_pool2d(x, &g, o.exclude_padding, like_x(y, x)));
}

bn_tensor *bn_adaptive_avg_pool2d(const bn_tensor *x, int64_t out_h, int64_t out_w)
{
    static const char fn[] = "bn_adaptive_avg_pool2d";
    BN_CHECK_NULL(fn, x);
    bn_window_geom g;
    if (!pool_input(fn, x, &g)) return NULL;
    if (out_h < 0 || out_w < 0)
        return bn__error_null(BN_ERR_ARG, "%s: the output size [%lld, %lld] must not be negative",
                              fn, (long long)out_h, (long long)out_w);
    if (g.C == 0 || g.H == 0 || g.W == 0)
        return bn__error_null(BN_ERR_SHAPE,
                              "%s: x %s must have non-zero channels, height and width", fn,
                              bn__tshape(x));
    g.OH = out_h, g.OW = out_w;
    g.KH = g.KW = g.stride_h = g.stride_w = g.dil_h = g.dil_w = 1;
    const bn_backend *be = pool_backend(fn, x);
    if (!be) return NULL;
    bn_tensor *xc = bn__to_dtype(x, compute_dtype(x->dtype));
    bn_tensor *x4 = xc ? as_4d(xc, g.N) : NULL;
    bn_tensor *y = x4 ? pool_out(&g, x4->dtype, x->storage->device) : NULL;
    bn_release(xc);
    if (y) {
        bn_tview xv = bn__tview(x4), yv = bn__tview(y);
        if (be->conv->adaptive_avg_pool2d(&xv, &yv, &g) != BN_OK) bn_release(y), y = NULL;
    }
    bn_release(x4);
    return bn__out(bn__grad_adaptive_avg_pool2d(x, &g, like_x(y, x)));
}

/* ---- backward products ---------------------------------------------------------------------- */
/* What the three backward products share: grad_out in compute dtype and contiguous, a fresh
 * grad_in, the kernel call (kind 0 max, 1 avg, 2 adaptive), and the cast back. */
static bn_tensor *pool_backward(int kind, const bn_tensor *grad_out, const bn_tensor *indices,
                                const bn_window_geom *g, bool exclude_padding)
{
    static const char *const names[3] = {"MaxPool2dBackward", "AvgPool2dBackward",
                                         "AdaptiveAvgPool2dBackward"};
    const bn_backend *be = pool_backend(names[kind], grad_out);
    if (!be) return NULL;
    bn_dtype cd = compute_dtype(grad_out->dtype);
    bn_tensor *gc = bn__to_dtype(grad_out, cd);
    bn_tensor *go = gc ? bn__contiguous(gc) : NULL;
    bn_release(gc);
    int64_t s[4] = {g->N, g->C, g->H, g->W};
    bn_tensor *gi = go ? bn__conv_empty(s, 4, cd, grad_out->storage->device) : NULL;
    bn_status st = BN_ERR_OOM;
    if (gi) {
        bn_tview gov = bn__tview(go), giv = bn__tview(gi);
        if (kind == 0) {
            bn_tview iv = bn__tview(indices);
            st = be->conv->max_pool2d_backward(&gov, &iv, &giv, g);
        } else if (kind == 1) {
            st = be->conv->avg_pool2d_backward(&gov, &giv, g, exclude_padding);
        } else {
            st = be->conv->adaptive_avg_pool2d_backward(&gov, &giv, g);
        }
    }
    bn_release(go);
    if (st != BN_OK) {
        bn_release(gi);
        return NULL;
    }
    bn_tensor *out = bn__to_dtype(gi, grad_out->dtype);
    bn_release(gi);
    return out;
}

bn_tensor *bn__max_pool2d_backward_4d(const bn_tensor *grad_out, const bn_tensor *indices,
                                      const bn_window_geom *g)
{
    return pool_backward(0, grad_out, indices, g, false);
}

bn_tensor *bn__avg_pool2d_backward_4d(const bn_tensor *grad_out, const bn_window_geom *g,
                                      bool exclude_padding)
{
    return pool_backward(1, grad_out, NULL, g, exclude_padding);
}

bn_tensor *bn__adaptive_avg_pool2d_backward_4d(const bn_tensor *grad_out, const bn_window_geom *g)
{
    return pool_backward(2, grad_out, NULL, g, false);
}
