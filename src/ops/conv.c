/* ops/conv.c — bn_conv1d, bn_conv2d and bn_conv_transpose2d: validation, output shapes, and the
 * three products of autograd/grad_conv.h that every convolution and its gradients are made of.
 *
 * A product is im2col (or col2im) plus batched GEMMs through the backend's matmul slot, done a
 * block of images at a time (see BLOCK_BYTES) so the columns stay in the cache. For images with
 * many output positions (CPU, OH*OW > CPU_CF_MAX_L) the forward multiplies each image's columns
 * (C*KH*KW, OH*OW) straight into the output's layout (and adds the bias to the block), and the
 * input gradient multiplies each image's output gradient straight from its layout into the
 * block's columns and col2im's them; for small images (the CNN's) and on GPUs both run
 * channels-first instead: one wide GEMM per block and group, and one copy between the
 * (Ocols, images*OH*OW) and the (images, Ocols, OH*OW) layouts. The weight gradient lays a block's
 * columns out (C*KH*KW, nb*OH*OW) and its output gradient channels-first, so a group's weight
 * meets the block in one wide GEMM that sums over its images, and adds the blocks in order.
 * f16 and bf16 compute in f32 and are rounded once at the end. Buffers come from
 * conv_buffers.c's cache (no fresh pages to fault in on every training step).
 * conv1d is conv2d with H = KH = 1. Inside an autocast region (born/amp.h) the public functions
 * cast x, w and b to the region's dtype first. Not done here: fused or direct (no im2col)
 * kernels, winograd. */
#include "amp/amp_internal.h"
#include "autograd/grad_conv.h"
#include "backend/backend_conv.h"
#include "ops/conv_buffers.h"

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

/* y += bias along dim 1 of the 4-D view y (contiguous); bc (y.shape[1]) in y's dtype. */
static bn_status add_bias_view(const bn_backend *be, const bn_tview *y, const bn_tensor *bc)
{
    bn_tview bv = *y;
    bv.data = bn__tview(bc).data;
    for (int d = 0; d < 4; d++) bv.strides[d] = d == 1 ? bc->strides[0] : 0;
    return be->binary(BN_BINARY_ADD, y, &bv, y);
}

/* y += bias along dim 1 of the 4-D contiguous y; bias (y.shape[1]). */
static bn_status add_bias(const bn_backend *be, bn_tensor *y, const bn_tensor *bias)
{
    bn_tensor *bc = bn__to_dtype(bias, y->dtype);
    if (!bc) return bn_error_code();
    bn_tview yv = bn__tview(y);
    bn_status st = add_bias_view(be, &yv, bc);
    bn_release(bc);
    return st;
}

/* ---- the three products --------------------------------------------------------------------- */
/* All three work through the batch a block of images at a time: each block's columns (about
 * BLOCK_BYTES) are still in the cache when the GEMM reads them, and one buffer of a block's
 * size serves the whole batch. The forward and input gradient compute every image alone, so the
 * block size changes nothing in their results; the weight gradient sums the blocks' products in
 * order, and the block size depends only on the shapes, never on the thread count. (4 MB beat
 * 1 MB by ~10% at 2 threads: fewer, larger GEMMs and parallel regions.) */
#define BLOCK_BYTES ((int64_t)4 << 20)
#define GPU_BLOCK_BYTES ((int64_t)1 << 30)

/* The images per block for per-image columns of CKK x L elements of dtype cd (0 for N = 0).
 * The batch is cut into blocks of near-equal size (64 images of 139 KB columns: 22 + 21 + 21,
 * not 30 + 30 + 4, whose last GEMM would be a thin one). */
static int64_t block_images(const bn_window_geom *g, int64_t CKK, int64_t L, bn_dtype cd,
                            bn_device dev)
{
    /* a GPU gains nothing from cache-sized blocks and loses a launch per block: there the whole
     * batch is one block, up to GPU_BLOCK_BYTES of columns */
    int64_t limit = dev.type == BN_DEVICE_CPU ? BLOCK_BYTES : GPU_BLOCK_BYTES;
    int64_t per_image = CKK * L * (int64_t)bn_dtype_size(cd);
    int64_t nb = per_image > 0 ? limit / per_image : g->N;
    nb = nb < 1 ? 1 : nb > g->N ? g->N : nb;
    if (nb > 1 && nb < g->N) {
        int64_t blocks = (g->N + nb - 1) / nb;
        nb = (g->N + blocks - 1) / blocks;
    }
    return nb;
}

/* Below this many output positions per image a CPU forward or input gradient runs channels-first
 * (one wide GEMM per block and group, then one copy between layouts) instead of one GEMM per
 * image: an image's GEMM is then too narrow (N = OH*OW) to keep the micro-kernel busy, and its
 * weight is packed again for every image. The CNN's second layer (L = 121): 5.8 ms of per-image
 * GEMMs against 3.9 ms channels-first for the forward, 5.5 against 3.3 for the input gradient
 * (1 thread). Above it the per-image GEMMs are wide already and the copy would be pure cost. */
#define CPU_CF_MAX_L 256

/* Whether the forward and input gradient take the channels-first path. */
static bool channels_first(bn_device dev, int64_t L)
{
    return dev.type != BN_DEVICE_CPU || L <= CPU_CF_MAX_L;
}

/* t's view with its first dim narrowed to [n0, n0 + nb). */
static bn_tview batch_slice(const bn_tensor *t, int64_t n0, int64_t nb)
{
    bn_tview v = bn__tview(t);
    v.data = (char *)v.data + (size_t)(n0 * t->strides[0]) * bn_dtype_size(t->dtype);
    v.shape[0] = nb;
    return v;
}

/* y[n0 : n0+nb] = w @ columns of img[n0 : n0+nb] (per image and group) + bc (bias in y's dtype,
 * or NULL), while the block is in the cache; cols a buffer of at least nb images' columns. */
static bn_status forward_block(const bn_backend *be, const bn_tensor *x, const bn_tensor *wc,
                               const bn_tensor *bc, const bn_tensor *cols, const bn_tensor *y,
                               const bn_conv_plan *p, int64_t n0, int64_t nb)
{
    bn_window_geom g = p->g;
    g.N = nb;
    int64_t G = p->groups, CgKK = g.C / G * g.KH * g.KW, Og = p->ocols / G, L = g.OH * g.OW,
            CKK = g.C * g.KH * g.KW;
    bn_tview xv = batch_slice(x, n0, nb);
    bn_tview cv = view3(cols, nb, CKK, L, CKK * L, L, 1);
    bn_status st = be->conv->im2col(&xv, &cv, &g);
    if (st != BN_OK) return st;
    /* per image n and group: y[n, g] (Og, L) = w[g] (Og, CgKK) @ cols[n, g] (CgKK, L) */
    bn_tview a = bn__tview(wc), b = bn__tview(cols), o = batch_slice(y, n0, nb);
    a.ndim = b.ndim = o.ndim = 4;
    int64_t ad[4] = {nb, G, Og, CgKK}, as[4] = {0, Og * CgKK, CgKK, 1};
    int64_t bd[4] = {nb, G, CgKK, L}, bs[4] = {G * CgKK * L, CgKK * L, L, 1};
    int64_t od[4] = {nb, G, Og, L}, os[4] = {G * Og * L, Og * L, L, 1};
    for (int d = 0; d < 4; d++) {
        a.shape[d] = ad[d], a.strides[d] = as[d];
        b.shape[d] = bd[d], b.strides[d] = bs[d];
        o.shape[d] = od[d], o.strides[d] = os[d];
    }
    st = be->matmul(&a, &b, &o);
    if (st != BN_OK || !bc) return st;
    o.ndim = 4; /* the block as (nb, Ocols, OH, OW) */
    o.shape[1] = G * Og, o.shape[2] = g.OH, o.shape[3] = g.OW;
    o.strides[0] = G * Og * L, o.strides[1] = L, o.strides[2] = g.OW, o.strides[3] = 1;
    return add_bias_view(be, &o, bc);
}

/* The forward of a block channels-first (GPUs, and small images on the CPU): one GEMM per group
 * over the whole block instead of one per image. The columns are laid out channels-first,
 * (CKK, nb*L), so y_cf (Ocols, nb*L) = w @ cols is a single large product; it is then copied
 * into y's (nb, Ocols, L) layout with the bias added on the way. ycf is a buffer of at least
 * Ocols * nb * L elements. */
static bn_status forward_block_cf(const bn_backend *be, const bn_tensor *x, const bn_tensor *wc,
                                  const bn_tensor *bc, const bn_tensor *cols, const bn_tensor *ycf,
                                  const bn_tensor *y, const bn_conv_plan *p, int64_t n0, int64_t nb)
{
    bn_window_geom g = p->g;
    g.N = nb;
    int64_t G = p->groups, CgKK = g.C / G * g.KH * g.KW, Og = p->ocols / G, L = g.OH * g.OW,
            CKK = g.C * g.KH * g.KW, nbL = nb * L, O = p->ocols;
    bn_tview xv = batch_slice(x, n0, nb);
    bn_tview cv = view3(cols, nb, CKK, L, L, nbL, 1);
    bn_status st = be->conv->im2col(&xv, &cv, &g);
    if (st != BN_OK) return st;
    bn_tview a = view3(wc, G, Og, CgKK, Og * CgKK, CgKK, 1);
    bn_tview b = view3(cols, G, CgKK, nbL, CgKK * nbL, nbL, 1);
    bn_tview o = view3(ycf, G, Og, nbL, Og * nbL, nbL, 1);
    if ((st = be->matmul(&a, &b, &o)) != BN_OK) return st;
    /* y[n0 + n, c, l] = ycf[c, n * L + l] (+ bias[c]), seen as (Ocols, nb, L) */
    bn_tview src = view3(ycf, O, nb, L, nbL, L, 1);
    bn_tview dst = batch_slice(y, n0, nb);
    dst.ndim = 3;
    dst.shape[0] = O, dst.shape[1] = nb, dst.shape[2] = L;
    dst.strides[0] = L, dst.strides[1] = O * L, dst.strides[2] = 1;
    if (!bc) return be->copy(&src, &dst);
    bn_tview bv = view3(bc, O, nb, L, bc->strides[0], 0, 0);
    return be->binary(BN_BINARY_ADD, &src, &bv, &dst);
}

bn_tensor *bn__conv_forward_4d(const char *fn, const bn_tensor *img, const bn_tensor *w,
                               const bn_tensor *bias, const bn_conv_plan *p)
{
    const bn_window_geom *g = &p->g;
    const bn_backend *be = conv_backend(fn, img);
    if (!be) return NULL;
    bn_dtype cd = compute_dtype(img->dtype);
    int64_t CKK = g->C * g->KH * g->KW, L = g->OH * g->OW,
            nb = block_images(g, CKK, L, cd, img->storage->device);
    bn_tensor *x = bn__to_dtype(img, cd), *wc = contiguous_as(w, cd), *cols = NULL;
    bn_tensor *bc = bias && x && wc ? bn__to_dtype(bias, cd) : NULL;
    int64_t cshape[3] = {nb, CKK, L}, yshape[4] = {g->N, p->ocols, g->OH, g->OW};
    if (x && wc && (bc || !bias)) cols = bn__conv_empty(cshape, 3, cd, img->storage->device);
    bn_tensor *y = cols ? bn__conv_empty(yshape, 4, cd, img->storage->device) : NULL;
    /* the channels-first path needs a block-sized staging buffer for y */
    bool cf = channels_first(img->storage->device, L);
    int64_t fshape[2] = {p->ocols, nb * L};
    bn_tensor *ycf = y && cf ? bn__conv_empty(fshape, 2, cd, img->storage->device) : NULL;
    if (!y || (cf && !ycf)) {
        bn_release(bc);
        bn_release(y);
        return release_null(x, wc, cols);
    }
    bn_status st = BN_OK;
    for (int64_t n0 = 0; n0 < g->N && st == BN_OK; n0 += nb) {
        int64_t m = g->N - n0 < nb ? g->N - n0 : nb;
        st = cf ? forward_block_cf(be, x, wc, bc, cols, ycf, y, p, n0, m)
                : forward_block(be, x, wc, bc, cols, y, p, n0, m);
    }
    bn_release(ycf);
    release_null(x, wc, cols);
    bn_release(bc);
    if (st != BN_OK) return release_null(y, NULL, NULL);
    bn_tensor *out = bn__to_dtype(y, img->dtype);
    bn_release(y);
    return out;
}

/* img[n0 : n0+nb] = col2im(w^T @ cs[n0 : n0+nb]) per image and group; cs contiguous, gcols a
 * buffer of at least nb images' columns. */
static bn_status input_grad_block(const bn_backend *be, const bn_tensor *cs, const bn_tensor *wc,
                                  const bn_tensor *gcols, const bn_tensor *img,
                                  const bn_conv_plan *p, int64_t n0, int64_t nb)
{
    bn_window_geom g = p->g;
    g.N = nb;
    int64_t G = p->groups, CgKK = g.C / G * g.KH * g.KW, Og = p->ocols / G, L = g.OH * g.OW;
    /* per image n and group: gcols[n, g] (CgKK, L) = w[g]^T (CgKK, Og) @ cs[n, g] (Og, L) */
    bn_tview a = bn__tview(wc), b = batch_slice(cs, n0, nb), o = bn__tview(gcols);
    a.ndim = b.ndim = o.ndim = 4;
    int64_t ad[4] = {nb, G, CgKK, Og}, as[4] = {0, Og * CgKK, 1, CgKK};
    int64_t bd[4] = {nb, G, Og, L}, bs[4] = {G * Og * L, Og * L, L, 1};
    int64_t od[4] = {nb, G, CgKK, L}, os[4] = {G * CgKK * L, CgKK * L, L, 1};
    for (int d = 0; d < 4; d++) {
        a.shape[d] = ad[d], a.strides[d] = as[d];
        b.shape[d] = bd[d], b.strides[d] = bs[d];
        o.shape[d] = od[d], o.strides[d] = os[d];
    }
    bn_status st = be->matmul(&a, &b, &o);
    if (st != BN_OK) return st;
    bn_tview c = view3(gcols, nb, g.C * g.KH * g.KW, L, G * CgKK * L, L, 1);
    bn_tview x = batch_slice(img, n0, nb);
    return be->conv->col2im(&c, &x, &g);
}

/* The input gradient of a block channels-first (GPUs, small images on the CPU): the block's
 * output gradient copied channels-first into gcf (Ocols, nb*L), then one GEMM per group
 * gcols (CKK, nb*L) = w^T @ gcf, then col2im reading those channels-first columns. */
static bn_status input_grad_block_cf(const bn_backend *be, const bn_tensor *cs,
                                     const bn_tensor *wc, const bn_tensor *gcols,
                                     const bn_tensor *gcf, const bn_tensor *img,
                                     const bn_conv_plan *p, int64_t n0, int64_t nb)
{
    bn_window_geom g = p->g;
    g.N = nb;
    int64_t G = p->groups, CgKK = g.C / G * g.KH * g.KW, Og = p->ocols / G, L = g.OH * g.OW,
            CKK = g.C * g.KH * g.KW, nbL = nb * L, O = p->ocols;
    bn_tview src = batch_slice(cs, n0, nb);
    src.ndim = 3;
    src.shape[0] = O, src.shape[1] = nb, src.shape[2] = L;
    src.strides[0] = L, src.strides[1] = O * L, src.strides[2] = 1;
    bn_tview dst = view3(gcf, O, nb, L, nbL, L, 1);
    bn_status st = be->copy(&src, &dst);
    if (st != BN_OK) return st;
    bn_tview a = view3(wc, G, CgKK, Og, Og * CgKK, 1, CgKK);
    bn_tview b = view3(gcf, G, Og, nbL, Og * nbL, nbL, 1);
    bn_tview o = view3(gcols, G, CgKK, nbL, CgKK * nbL, nbL, 1);
    if ((st = be->matmul(&a, &b, &o)) != BN_OK) return st;
    bn_tview c = view3(gcols, nb, CKK, L, L, nbL, 1);
    bn_tview x = batch_slice(img, n0, nb);
    return be->conv->col2im(&c, &x, &g);
}

bn_tensor *bn__conv_input_grad_4d(const char *fn, const bn_tensor *cols_side, const bn_tensor *w,
                                  const bn_tensor *bias, const bn_conv_plan *p)
{
    const bn_window_geom *g = &p->g;
    const bn_backend *be = conv_backend(fn, cols_side);
    if (!be) return NULL;
    bn_dtype cd = compute_dtype(cols_side->dtype);
    int64_t CKK = g->C * g->KH * g->KW, L = g->OH * g->OW,
            nb = block_images(g, CKK, L, cd, cols_side->storage->device);
    bn_tensor *cs = contiguous_as(cols_side, cd), *wc = contiguous_as(w, cd), *gcols = NULL;
    int64_t cshape[3] = {nb, CKK, L}, ishape[4] = {g->N, g->C, g->H, g->W};
    if (cs && wc) gcols = bn__conv_empty(cshape, 3, cd, cols_side->storage->device);
    bn_tensor *img = gcols ? bn__conv_empty(ishape, 4, cd, cols_side->storage->device) : NULL;
    bool cf = channels_first(cols_side->storage->device, L);
    int64_t fshape[2] = {p->ocols, nb * L};
    bn_tensor *gcf = img && cf ? bn__conv_empty(fshape, 2, cd, cols_side->storage->device) : NULL;
    if (!img || (cf && !gcf)) {
        bn_release(img);
        return release_null(cs, wc, gcols);
    }
    bn_status st = BN_OK;
    for (int64_t n0 = 0; n0 < g->N && st == BN_OK; n0 += nb) {
        int64_t m = g->N - n0 < nb ? g->N - n0 : nb;
        st = cf ? input_grad_block_cf(be, cs, wc, gcols, gcf, img, p, n0, m)
                : input_grad_block(be, cs, wc, gcols, img, p, n0, m);
    }
    bn_release(gcf);
    release_null(cs, wc, gcols);
    if (st == BN_OK && bias) st = add_bias(be, img, bias);
    if (st != BN_OK) return release_null(img, NULL, NULL);
    bn_tensor *out = bn__to_dtype(img, cols_side->dtype);
    bn_release(img);
    return out;
}

/* The weight's gradient from images [n0, n0+nb) into o (G, Og, CgKK): the block's output
 * gradient channels-first (Ocols, nb*L) into gyb, the block's columns (CKK, nb*L) into cols,
 * then per group o = gyb[g] @ cols[g]^T. */
static bn_status weight_grad_block(const bn_backend *be, const bn_tensor *cs,
                                   const bn_tensor *x, const bn_tensor *gyb,
                                   const bn_tensor *cols, const bn_tview *o,
                                   const bn_conv_plan *p, int64_t n0, int64_t nb)
{
    bn_window_geom g = p->g;
    g.N = nb;
    int64_t G = p->groups, CgKK = g.C / G * g.KH * g.KW, Og = p->ocols / G, L = g.OH * g.OW,
            CKK = g.C * g.KH * g.KW, nbL = nb * L;
    bn_tview src = batch_slice(cs, n0, nb), dst = bn__tview(gyb);
    src.shape[0] = p->ocols, src.shape[1] = nb;
    src.strides[0] = cs->strides[1], src.strides[1] = cs->strides[0];
    dst.ndim = 4;
    dst.shape[0] = p->ocols, dst.shape[1] = nb, dst.shape[2] = g.OH, dst.shape[3] = g.OW;
    dst.strides[0] = nbL, dst.strides[1] = L, dst.strides[2] = g.OW, dst.strides[3] = 1;
    bn_status st = be->copy(&src, &dst);
    bn_tview xv = batch_slice(x, n0, nb), cv = view3(cols, nb, CKK, L, L, nbL, 1);
    if (st == BN_OK) st = be->conv->im2col(&xv, &cv, &g);
    if (st != BN_OK) return st;
    bn_tview a = view3(gyb, G, Og, nbL, Og * nbL, nbL, 1);
    bn_tview b = view3(cols, G, nbL, CgKK, CgKK * nbL, 1, nbL); /* cols^T per group */
    return be->matmul(&a, &b, o);
}

bn_tensor *bn__conv_weight_grad_4d(const char *fn, const bn_tensor *cols_side,
                                   const bn_tensor *img, const bn_conv_plan *p)
{
    const bn_window_geom *g = &p->g;
    const bn_backend *be = conv_backend(fn, img);
    if (!be) return NULL;
    bn_dtype cd = compute_dtype(img->dtype);
    int64_t G = p->groups, CgKK = g->C / G * g->KH * g->KW, Og = p->ocols / G,
            CKK = g->C * g->KH * g->KW, L = g->OH * g->OW,
            nb = block_images(g, CKK, L, cd, img->storage->device);
    bn_tensor *cs = bn__to_dtype(cols_side, cd), *x = bn__to_dtype(img, cd);
    int64_t gshape[2] = {p->ocols, nb * L}, cshape[2] = {CKK, nb * L};
    int64_t wshape[4] = {p->ocols, g->C / G, g->KH, g->KW};
    bn_device dev = img->storage->device;
    bn_tensor *gyb = cs && x ? bn__conv_empty(gshape, 2, cd, dev) : NULL;
    bn_tensor *cols = gyb ? bn__conv_empty(cshape, 2, cd, dev) : NULL;
    bn_tensor *gw = !cols ? NULL
                    : g->N ? bn__empty(wshape, 4, cd, dev)
                           : bn__full(wshape, 4, 0.0, cd, dev); /* no images: no blocks */
    bn_tensor *part = gw && nb < g->N ? bn__empty(wshape, 4, cd, dev) : NULL;
    bn_status st = gw && (part || nb >= g->N) ? BN_OK : bn_error_code();
    /* blocks in a fixed order (their size does not depend on the thread count): gw = block 0's
     * product, then gw += each next block's */
    bn_tview gv = view3(gw, G, Og, CgKK, Og * CgKK, CgKK, 1), pv = gv;
    if (part) pv.data = bn__tview(part).data;
    for (int64_t n0 = 0; n0 < g->N && st == BN_OK; n0 += nb) {
        int64_t m = g->N - n0 < nb ? g->N - n0 : nb;
        st = weight_grad_block(be, cs, x, gyb, cols, n0 ? &pv : &gv, p, n0, m);
        if (st == BN_OK && n0) {
            bn_tview acc = bn__tview(gw), add = bn__tview(part);
            st = be->binary(BN_BINARY_ADD, &acc, &add, &acc);
        }
    }
    release_null(cs, x, gyb);
    release_null(cols, part, NULL);
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
    BN_AUTOCAST_LOW(bn_conv1d(ac[0], ac[1], ac[2], o), x, w, b);
    return bn__out(conv_any("bn_conv1d", x, w, b, o, 1, false));
}

bn_tensor *bn_conv2d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b, bn_conv_opts o)
{
    BN_CHECK_NULL("bn_conv2d", x);
    BN_CHECK_NULL("bn_conv2d", w);
    BN_AUTOCAST_LOW(bn_conv2d(ac[0], ac[1], ac[2], o), x, w, b);
    return bn__out(conv_any("bn_conv2d", x, w, b, o, 2, false));
}

bn_tensor *bn_conv_transpose2d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                               bn_conv_opts o)
{
    BN_CHECK_NULL("bn_conv_transpose2d", x);
    BN_CHECK_NULL("bn_conv_transpose2d", w);
    BN_AUTOCAST_LOW(bn_conv_transpose2d(ac[0], ac[1], ac[2], o), x, w, b);
    return bn__out(conv_any("bn_conv_transpose2d", x, w, b, o, 2, true));
}
